//! `berth_conformance::signing::signer::check_signature` on arbitrary bytes: the first two
//! bytes (big-endian) are the manifest's length, the rest is a signature manifest then an
//! envelope (both outside input: what a signer pushed). Never panics, gives one result per
//! rule (all but `manifest.discoverable` for a signature given as files), each with its
//! expectation and spec link, and passes `envelope.signature` only when a signing
//! certificate was read.
#![no_main]

use berth_conformance::signing::signer::{HowPushed, RULES, check_signature};
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [hi, lo, rest @ ..] = data else {
        return;
    };
    let at = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
    let (manifest, envelope) = rest.split_at(at);
    let subject = Descriptor::new(
        MediaType::ImageManifest,
        1234,
        "sha256:73c803930ea3ba1e54bc25c2bdc53edd0284c62ed651fe7b00369da519a3c333"
            .parse::<berth_oci::oci_spec::image::Digest>()
            .unwrap(),
    );
    let results = check_signature(manifest, envelope, &subject, &HowPushed::Given);
    assert_eq!(results.len(), RULES.len() - 1);
    for r in &results {
        assert!(!r.expected.is_empty() && !r.spec_url.is_empty(), "{}", r.id);
    }
    let no_chain = results
        .iter()
        .any(|r| r.id == "chain.key-size" && r.actual == "no certificates");
    let signature_ok = results.iter().any(|r| r.id == "envelope.signature" && r.passed);
    assert!(!(signature_ok && no_chain), "a signature verified without a certificate");
});
