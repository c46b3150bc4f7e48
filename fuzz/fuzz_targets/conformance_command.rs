//! `berth conformance verify --verifier COMMAND`: the command line is split into words as a
//! shell would and its placeholders checked; then each word is expanded with values that come
//! from the run (image references, paths). Parsing must never panic; an accepted template
//! has words and `{image}` in one of them, and expansion never panics and never adds or removes words
//! (a value with spaces or quotes stays inside its word: there is no shell).
#![no_main]

use std::collections::BTreeMap;

use berth_conformance::signing::verifier::parse_command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the command; the rest, if any, the value of every placeholder.
    let (command, value) = text.split_once('\n').unwrap_or((text, "v a l'u\"e {image}"));
    let Ok(t) = parse_command(command) else {
        return;
    };
    // (the placeholder is found in the words, after quote removal, as a shell would see them:
    // `{i"mage}` is `{image}`)
    let none = t.expand(&BTreeMap::new());
    assert!(!none.is_empty());
    assert!(none.iter().any(|w| w.contains("{image}")), "{none:?}");
    let values = BTreeMap::from([
        ("image", value.to_owned()),
        ("policy", value.to_owned()),
        ("truststore", value.to_owned()),
        ("config", value.to_owned()),
    ]);
    assert_eq!(t.expand(&values).len(), none.len());
});
