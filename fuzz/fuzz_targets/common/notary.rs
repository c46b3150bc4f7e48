//! Checks shared by the Notary envelope targets.

use berth_trust::envelope::{Envelope, PAYLOAD_CONTENT_TYPE};

/// Parses `data` as an envelope of `media_type`; an accepted one must satisfy the invariants
/// the verifier relies on, and checking its signature must not panic either.
pub fn check_envelope(data: &[u8], media_type: &str) {
    let Ok(env) = Envelope::parse(data, media_type) else {
        return;
    };
    assert_eq!(env.content_type, PAYLOAD_CONTENT_TYPE);
    assert!(!env.certificate_chain.is_empty());
    assert!(
        env.critical
            .iter()
            .any(|c| c == "io.cncf.notary.signingScheme")
    );
    match env.signing_scheme {
        berth_trust::SigningScheme::X509 => assert!(env.signing_time.is_some()),
        berth_trust::SigningScheme::X509SigningAuthority => {
            assert!(env.authentic_signing_time.is_some())
        }
    }
    if env.expiry.is_some() {
        assert!(env.critical.iter().any(|c| c == "io.cncf.notary.expiry"));
    }
    assert!(env.target_artifact().is_ok());
    let _ = env.verify_integrity();
    if let Some(token) = &env.timestamp_token {
        let _ = berth_trust::timestamp::verify_token(
            token,
            env.signature_value(),
            &env.certificate_chain,
        );
    }
    let _ = berth_trust::verify::validate_chain(
        &env.certificate_chain,
        berth_trust::verify::ChainPurpose::CodeSigning,
    );
}
