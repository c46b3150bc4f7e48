//! OCSP responses come from any responder a certificate names (over plain HTTP, as the
//! Notary Project specification requires): parsing one and checking it must never panic,
//! and a response accepted for a certificate is about that certificate's serial number.
//! The whole input is the DER OCSPResponse (so `openssl ocsp -respout` files seed it
//! unchanged); each certificate it carries is tried as the subject and as the issuer.
#![no_main]

use berth_trust::Timestamp;
use berth_trust::revocation::ocsp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = ocsp::parse(data) else { return };
    let now = Timestamp::now();
    for cert in &resp.certs {
        for issuer in &resp.certs {
            if resp.check(cert, issuer, now).is_ok() {
                assert!(
                    !resp.responses.is_empty(),
                    "an accepted response has a SingleResponse"
                );
            }
        }
    }
});
