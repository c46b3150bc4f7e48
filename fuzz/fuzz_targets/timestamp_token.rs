//! RFC 3161 timestamp tokens (CMS SignedData) arrive inside signature envelopes from any
//! registry: checking one must never panic, whatever the bytes. The whole input is the token
//! (so real tokens seed it unchanged); the countersigned value is fixed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = berth_trust::timestamp::verify_token(data, b"signature", &[]);
});
