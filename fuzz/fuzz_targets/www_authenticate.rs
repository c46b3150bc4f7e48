//! `WWW-Authenticate` headers come from any registry a user points berth at: parsing must
//! never panic, and every parsed challenge must have a non-empty scheme and parameter names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for challenge in berth_distribution::parse_challenges(header) {
        assert!(!challenge.scheme.is_empty());
        for (name, _) in &challenge.params {
            assert!(!name.is_empty());
        }
        // lookups are case-insensitive and total
        let _ = challenge.param("realm");
        let _ = challenge.param("SCOPE");
    }
});
