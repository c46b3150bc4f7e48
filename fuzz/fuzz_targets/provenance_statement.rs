//! Provenance statements (`application/vnd.in-toto+json`) come from any registry an attestation
//! is fetched from, and `--require-source` values from users: reading must never panic, an
//! accepted statement is an in-toto v1 statement with a SLSA provenance v1 predicate, its own
//! serialisation reads back to it, and checking it against any requirement never panics.
#![no_main]

use berth_trust::provenance::{SourceRequirement, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is a `--require-source` value, the rest a statement.
    let (req, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let requirement = SourceRequirement::parse(&String::from_utf8_lossy(req)).ok();
    let Ok(st) = Statement::parse(body) else {
        return;
    };
    assert_eq!(st.type_, berth_trust::provenance::STATEMENT_TYPE);
    assert_eq!(st.predicate_type, berth_trust::provenance::SLSA_PROVENANCE_V1);
    let again = Statement::parse(&st.to_json()).expect("a statement's own JSON reads back");
    assert_eq!(again, st);
    for source in st.sources() {
        assert!(source.commit.len() == 40 || source.commit.len() == 64);
        assert!(!source.repository.is_empty());
    }
    let _ = st.builder_id();
    if let Some(r) = requirement {
        let image = berth_oci::Digest::sha256_of(body);
        let _ = st.check(&image, &r);
        for s in st.subject.iter().flat_map(|s| s.digest.values()) {
            if let Ok(d) = berth_oci::Digest::parse(&format!("sha256:{s}")) {
                let _ = st.check(&d, &r);
            }
        }
    }
});
