//! RFC 3161 timestamp tokens (CMS SignedData) arrive inside signature envelopes from any
//! registry: checking one must never panic, whatever the bytes and the signature they claim to
//! be over.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the first byte picks how much of the input is the countersigned signature value
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (signature, token) = rest.split_at(split);
    let _ = berth_trust::timestamp::verify_token(token, signature, &[]);
});
