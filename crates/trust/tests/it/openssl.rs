//! Envelopes signed by an independent implementation (the `openssl` command) with keys the
//! vectors do not cover: ECDSA P-256 and P-384 (ES256/ES384), weak RSA and P-521 refused.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_trust::envelope::MEDIA_TYPE_JWS;
use berth_trust::{
    Envelope, EnvelopeError, Outcome, Timestamp, TrustPolicy, TrustStore, VerifyOptions, verify,
};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl is required for these tests (scripts/test installs it): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A self-signed code-signing certificate (DER) for a new key; the key stays in `dir/key.pem`.
fn self_signed(dir: &Path, newkey: &[&str]) -> Vec<u8> {
    self_signed_with_eku(dir, newkey, Some("codeSigning"))
}

/// [`self_signed`] with another extendedKeyUsage, or none.
fn self_signed_with_eku(dir: &Path, newkey: &[&str], eku: Option<&str>) -> Vec<u8> {
    let eku = eku.map(|e| format!("extendedKeyUsage={e}"));
    let mut args = vec![
        "req", "-x509", "-nodes", "-keyout", "key.pem", "-out", "cert.der", "-outform", "DER",
    ];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-subj",
        "/C=US/ST=WA/O=berth/CN=signer",
        "-days",
        "2",
        "-addext",
        "keyUsage=critical,digitalSignature",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    if let Some(eku) = &eku {
        args.extend_from_slice(&["-addext", eku]);
    }
    openssl(dir, &args);
    std::fs::read(dir.join("cert.der")).expect("cert")
}

/// DER ECDSA-Sig-Value → the fixed-width r||s JWS uses.
fn ecdsa_der_to_raw(der: &[u8], width: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    let (mut i, mut out) = (
        if der[1] & 0x80 != 0 {
            2 + usize::from(der[1] & 0x7f)
        } else {
            2
        },
        Vec::new(),
    );
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let len = usize::from(der[i + 1]);
        let int = &der[i + 2..i + 2 + len];
        let int = if int[0] == 0 { &int[1..] } else { int };
        out.extend(std::iter::repeat_n(0u8, width - int.len()));
        out.extend_from_slice(int);
        i += 2 + len;
    }
    out
}

fn jws(dir: &Path, alg: &str, cert: &[u8], digest: &str, ec_width: Option<usize>) -> Vec<u8> {
    let protected = serde_json::json!({
        "alg": alg,
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
    });
    let payload = serde_json::json!({"targetArtifact": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "a".repeat(64)),
        "size": 7,
    }});
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&protected).expect("json"));
    let b = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("json"));
    std::fs::write(dir.join("input"), format!("{p}.{b}")).expect("write");
    let sig = openssl(dir, &["dgst", digest, "-sign", "key.pem", "input"]);
    let sig = match ec_width {
        Some(w) => ecdsa_der_to_raw(&sig, w),
        None => sig,
    };
    serde_json::to_vec(&serde_json::json!({
        "payload": b,
        "protected": p,
        "header": {"x5c": [STANDARD.encode(cert)]},
        "signature": URL_SAFE_NO_PAD.encode(sig),
    }))
    .expect("json")
}

#[test]
fn ecdsa_envelopes_made_by_openssl_verify() {
    for (curve, alg, digest, width) in [
        ("P-256", "ES256", "-sha256", 32),
        ("P-384", "ES384", "-sha384", 48),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cert = self_signed(
            tmp.path(),
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
            ],
        );
        let env = jws(tmp.path(), alg, &cert, digest, Some(width));
        let parsed = Envelope::parse(&env, MEDIA_TYPE_JWS).expect("parses");
        parsed
            .verify_integrity()
            .unwrap_or_else(|e| panic!("{alg}: {e}"));

        // the whole workflow, with the certificate as its own trust anchor
        let v = verify_self_anchored(
            tmp.path(),
            &env,
            &cert,
            "x509.subject: C=US, ST=WA, O=berth",
        );
        assert!(v.passed, "{alg}: {:?}", v.steps);
        assert!(v.steps.iter().all(|s| s.outcome == Outcome::Passed));

        // the other ECDSA algorithm over the same key is refused (alg must match the key)
        let other = if alg == "ES256" { "ES384" } else { "ES256" };
        let mismatched = jws(tmp.path(), other, &cert, digest, Some(width));
        let why = Envelope::parse(&mismatched, MEDIA_TYPE_JWS)
            .expect("parses")
            .verify_integrity()
            .expect_err("mismatch");
        assert!(why.contains(&format!("requires {alg}")), "{why}");
    }
}

#[test]
fn weak_rsa_and_p521_signing_keys_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weak = self_signed(tmp.path(), &["-newkey", "rsa:1024"]);
    let env = jws(tmp.path(), "PS256", &weak, "-sha256", None);
    let err = Envelope::parse(&env, MEDIA_TYPE_JWS).expect_err("weak key");
    assert!(
        matches!(&err, EnvelopeError::Chain(m) if m.contains("RSA 1024")),
        "{err}"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let p521 = self_signed(
        tmp.path(),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
    );
    let env = jws(tmp.path(), "ES512", &p521, "-sha512", Some(66));
    let parsed =
        Envelope::parse(&env, MEDIA_TYPE_JWS).expect("ES512 is in the specification's table");
    let why = parsed.verify_integrity().expect_err("ring has no P-521");
    assert!(why.contains("P-521"), "{why}");
}

/// The whole workflow over `env`, with `cert` as its own trust anchor and `identity` trusted.
fn verify_self_anchored(
    dir: &Path,
    env: &[u8],
    cert: &[u8],
    identity: &str,
) -> berth_trust::Verdict {
    let store_dir = dir.join("store/x509/ca/t");
    std::fs::create_dir_all(&store_dir).expect("mkdir");
    std::fs::write(store_dir.join("c.der"), cert).expect("write");
    let policy = TrustPolicy::parse(
        serde_json::json!({"version": "1.0", "trustPolicies": [{"name": "t",
            "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:t"], "trustedIdentities": [identity]}]})
        .to_string()
        .as_bytes(),
    )
    .expect("policy");
    let opts = VerifyOptions {
        statement: &policy.statements[0],
        artifact: None,
        now: Timestamp::now(),
        revocation: &berth_trust::revocation::HTTP,
    };
    verify(
        env,
        MEDIA_TYPE_JWS,
        &TrustStore::new(dir.join("store")),
        &opts,
    )
}

/// signature-specification.md, "Certificate Requirements": a code-signing certificate's
/// extendedKeyUsage is OPTIONAL; present, it MAY name codeSigning and MUST NOT name
/// anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection or timeStamping (notation-core-go
/// refuses OCSPSigning too).
#[test]
fn a_code_signing_leaf_may_lack_extended_key_usage_but_not_name_another_purpose() {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    for (eku, refused) in [
        (None, None),
        (Some("codeSigning"), None),
        (Some("1.2.3.4"), None),
        (Some("serverAuth"), Some("serverAuth")),
        (Some("codeSigning,clientAuth"), Some("clientAuth")),
        (Some("emailProtection"), Some("emailProtection")),
        (Some("timeStamping"), Some("timeStamping")),
        (Some("OCSPSigning"), Some("OCSPSigning")),
        (
            Some("codeSigning,anyExtendedKeyUsage"),
            Some("anyExtendedKeyUsage"),
        ),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cert = self_signed_with_eku(tmp.path(), &ec, eku);
        let env = jws(tmp.path(), "ES256", &cert, "-sha256", Some(32));
        let v = verify_self_anchored(tmp.path(), &env, &cert, "*");
        match refused {
            None => assert!(v.passed, "{eku:?}: {:?}", v.steps),
            Some(name) => {
                assert!(!v.passed, "{eku:?} must be refused");
                let failed = v
                    .steps
                    .iter()
                    .find_map(|s| match &s.outcome {
                        Outcome::Failed(m) => Some((s.step, m.clone())),
                        _ => None,
                    })
                    .expect("a failed step");
                assert_eq!(failed.0, berth_trust::Step::Authenticity, "{eku:?}");
                assert!(
                    failed.1.contains(&format!("must not contain {name}")),
                    "{eku:?}: {}",
                    failed.1
                );
            }
        }
    }
}
