//! CRLs are downloaded from any distribution point a certificate names (over plain HTTP):
//! parsing one, checking it against an issuer and looking a certificate up must never panic.
//! The whole input is the DER CertificateList (so `openssl ca -gencrl` files seed it
//! unchanged); the issuer and the looked-up certificate are one generated test certificate.
#![no_main]

use berth_trust::certgen::{self, CertParams};
use berth_trust::revocation::crl;
use berth_trust::{Certificate, KeySpec, SigningKey, Timestamp};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn cert() -> &'static Certificate {
    static C: OnceLock<Certificate> = OnceLock::new();
    C.get_or_init(|| {
        let key = SigningKey::generate(KeySpec::EcP256).expect("key");
        certgen::self_signed(&CertParams::test("fuzz", 1), &key).expect("certificate")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(list) = crl::parse(data) else { return };
    let c = cert();
    let _ = list.validate(c, Timestamp::now());
    match list.lookup(c, Some(Timestamp::now())) {
        Ok(crl::Listing::Revoked { .. }) => {
            assert!(!list.entries.is_empty(), "revoked by an entry");
        }
        Ok(crl::Listing::NotListed) | Err(_) => {}
    }
});
