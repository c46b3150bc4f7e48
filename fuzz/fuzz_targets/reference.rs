//! `Reference::parse` on arbitrary UTF-8: never panics, and whatever parses
//! prints (in full and familiar form) to something that parses back to the
//! same reference.
#![no_main]

use berth_oci::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = Reference::parse(input) else {
        return;
    };
    let full = reference.to_string();
    assert_eq!(
        Reference::parse(&full).as_ref(),
        Ok(&reference),
        "full form {full:?} of {input:?} does not round-trip"
    );
    let familiar = reference.familiar();
    assert_eq!(
        Reference::parse(&familiar).as_ref(),
        Ok(&reference),
        "familiar form {familiar:?} of {input:?} does not round-trip"
    );
    assert!(reference.name().len() <= berth_oci::MAX_NAME_LEN);
    assert!(reference.tag().is_some() || reference.digest().is_some());
});
