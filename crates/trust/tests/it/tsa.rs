//! RFC 3161 timestamps obtained when signing, from a real TSA: openssl's `ts -reply` behind a
//! small HTTP server on 127.0.0.1 (`berth_test_support::TestTsa`), reached through
//! `berth-distribution`'s client. The token berth attaches verifies with berth's own verifier
//! and with `openssl ts -verify`; every misbehaving TSA is refused with its reason, and
//! nothing is signed.

use berth_distribution::{Client, ClientOptions, RetryPolicy};
use berth_test_support::{TestTsa, TsaMode};
use berth_trust::certgen::{self, CertParams};
use berth_trust::keys::{KeySpec, SigningKey, chain_pem};
use berth_trust::sign::{SignError, SignOptions, prepare};
use berth_trust::tsa::{Timestamper, TsaError};
use berth_trust::{
    Certificate, Envelope, EnvelopeFormat, Outcome, SigningScheme, Step, TargetArtifact, Timestamp,
    TrustPolicy, TrustStore, VerifyOptions, verify,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn artifact() -> TargetArtifact {
    TargetArtifact {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        digest: format!("sha256:{}", "cd".repeat(32)),
        size: 321,
        annotations: Default::default(),
    }
}

fn client() -> Client {
    client_trusting(Vec::new())
}

fn client_trusting(extra_root_certificates: Vec<Vec<u8>>) -> Client {
    Client::new(ClientOptions {
        extra_root_certificates,
        timeout: Duration::from_secs(20),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    })
    .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn root(path: &Path) -> Certificate {
    Certificate::parse_many(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0)
}

/// A trust store with `ca/t` = the signing certificate and `tsa/t` = the TSA root.
fn store(cert: &Certificate, tsa_root: &Path) -> (tempfile::TempDir, TrustStore) {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("x509/ca/t");
    let tsa = tmp.path().join("x509/tsa/t");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::create_dir_all(&tsa).unwrap();
    std::fs::write(ca.join("t.crt"), chain_pem(std::slice::from_ref(cert))).unwrap();
    std::fs::copy(tsa_root, tsa.join("root.crt")).unwrap();
    let store = TrustStore::new(tmp.path());
    (tmp, store)
}

fn policy(stores: &str, verify_timestamp: &str) -> TrustPolicy {
    let doc = format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"t","registryScopes":["*"],
        "signatureVerification":{{"level":"strict","verifyTimestamp":"{verify_timestamp}"}},
        "trustStores":[{stores}],"trustedIdentities":["*"]}}]}}"#
    );
    TrustPolicy::parse(doc.as_bytes()).unwrap()
}

fn signed(
    tsa: &TestTsa,
    root_file: &Path,
    key: &SigningKey,
    cert: &Certificate,
    format: EnvelopeFormat,
) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    signed_via(&client(), tsa, root_file, key, cert, format)
}

fn signed_via(
    client: &Client,
    tsa: &TestTsa,
    root_file: &Path,
    key: &SigningKey,
    cert: &Certificate,
    format: EnvelopeFormat,
) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    let ts = Timestamper::new(&tsa.url(), root(root_file))?;
    let unfinished = prepare(
        &artifact(),
        key,
        std::slice::from_ref(cert),
        &SignOptions::new(format),
    )?;
    let sig = unfinished.signature_value().to_vec();
    let bytes = block_on(ts.finish(client, unfinished))?;
    Ok((bytes, sig))
}

#[test]
fn signatures_carry_a_timestamp_that_berth_and_openssl_verify() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    // P-256 → SHA-256 imprint, P-384 → SHA-384, RSA 4096 (PS512) → SHA-512
    let rsa = tempfile::tempdir().unwrap();
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:4096",
        ])
        .args(["-out", "k.pem"])
        .current_dir(rsa.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let rsa =
        SigningKey::from_pem_or_der(&std::fs::read(rsa.path().join("k.pem")).unwrap()).unwrap();
    let keys = [
        SigningKey::generate(KeySpec::EcP256).unwrap(),
        SigningKey::generate(KeySpec::EcP384).unwrap(),
        rsa,
    ];
    for key in &keys {
        let spec = key.spec();
        let cert = certgen::generate_test("berth-tsa-test", key).unwrap();
        let (_tmp, store) = store(&cert, &tsa.root());
        for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
            let what = format!("{spec} {format:?}");
            let (bytes, sig) = signed(&tsa, &tsa.root(), key, &cert, format)
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let env = Envelope::parse(&bytes, format.media_type()).unwrap();
            let token = env.timestamp_token.clone().expect("a timestamp token");
            // the independent peer: openssl verifies the token over the signature value
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("sig"), &sig).unwrap();
            std::fs::write(dir.path().join("tok"), &token).unwrap();
            let out = Command::new("openssl")
                .args(["ts", "-verify", "-data", "sig", "-in", "tok", "-token_in"])
                .arg("-CAfile")
                .arg(tsa.root())
                .arg("-untrusted")
                .arg(tsa.tsa_cert())
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{what}: openssl ts -verify: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // berth's verifier, verifyTimestamp always: the authentic timestamp step passes
            let p = policy(r#""ca:t","tsa:t""#, "always");
            let a = artifact();
            let v = verify(
                &bytes,
                format.media_type(),
                &store,
                &VerifyOptions {
                    statement: &p.statements[0],
                    artifact: Some(&a),
                    now: Timestamp::now(),
                    revocation: &berth_trust::revocation::HTTP,
                },
            );
            assert!(v.passed, "{what}: {:?}", v.steps);
            assert!(
                v.steps
                    .iter()
                    .any(|s| s.step == Step::AuthenticTimestamp && s.outcome == Outcome::Passed),
                "{what}: {:?}",
                v.steps
            );
        }
    }
}

#[test]
fn an_expired_certificate_passes_with_its_timestamp_and_fails_without() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let mut params = CertParams::test("berth-tsa-test", 1);
    let now = Timestamp::now();
    params.not_before = Timestamp(now.0 - 3600);
    params.not_after = Timestamp(now.0 + 3600);
    let cert = certgen::self_signed(&params, &key).unwrap();
    let (_tmp, store) = store(&cert, &tsa.root());
    let later = Timestamp(now.0 + 2 * 86_400);
    let p = policy(r#""ca:t","tsa:t""#, "afterCertExpiry");
    let a = artifact();
    let opts = VerifyOptions {
        statement: &p.statements[0],
        artifact: Some(&a),
        now: later,
        revocation: &berth_trust::revocation::HTTP,
    };
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        let (stamped, _) = signed(&tsa, &tsa.root(), &key, &cert, format).unwrap();
        let v = verify(&stamped, format.media_type(), &store, &opts);
        assert!(
            v.passed,
            "{format:?} timestamped, cert expired: {:?}",
            v.steps
        );
        let plain = berth_trust::sign(
            &a,
            &key,
            std::slice::from_ref(&cert),
            &SignOptions::new(format),
        )
        .unwrap();
        let v = verify(&plain, format.media_type(), &store, &opts);
        assert!(!v.passed, "{format:?} without a timestamp: {:?}", v.steps);
        assert!(
            v.failure()
                .is_some_and(|f| f.contains("no timestamp countersignature was found")),
            "{:?}",
            v.failure()
        );
    }
}

#[track_caller]
fn refused(tsa: &TestTsa, root_file: &Path) -> TsaError {
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let cert = certgen::generate_test("berth-tsa-test", &key).unwrap();
    match signed(tsa, root_file, &key, &cert, EnvelopeFormat::Jws) {
        Ok(_) => panic!("signed although the TSA misbehaved"),
        Err(SignError::Timestamp(e)) => e,
        Err(other) => panic!("not a timestamp error: {other:?}"),
    }
}

#[test]
fn a_rejection_is_refused_with_the_tsas_status_text() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    tsa.set_mode(TsaMode::Reject);
    let e = refused(&tsa, &tsa.root());
    let msg = e.to_string();
    assert!(matches!(e, TsaError::Refused { .. }), "{e:?}");
    assert!(
        msg.contains("rejection") && msg.contains("badAlg") && msg.contains("not supported"),
        "{msg}"
    );
}

#[test]
fn a_reply_with_another_nonce_is_refused() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    tsa.set_mode(TsaMode::WrongNonce);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::Mismatch { reason, .. } if reason.contains("nonce")),
        "{e}"
    );
    assert_eq!(tsa.served(), 1);
}

#[test]
fn a_token_over_other_bytes_is_refused() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    tsa.set_mode(TsaMode::OtherImprint);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::Mismatch { reason, .. } if reason.contains("messageImprint")),
        "{e}"
    );
}

#[test]
fn a_token_not_chaining_to_the_root_certificate_is_refused() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    let e = refused(&tsa, &tsa.other_root());
    assert!(
        matches!(&e, TsaError::Unverified { reason, .. } if reason.contains("tsa")),
        "{e}"
    );
}

#[test]
fn an_unreachable_or_failing_tsa_is_refused() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    tsa.set_mode(TsaMode::ServerError);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::HttpStatus { status: 500, body, .. } if body.contains("maintenance")),
        "{e}"
    );
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let cert = certgen::generate_test("berth-tsa-test", &key).unwrap();
    let ts = Timestamper::new(&format!("http://127.0.0.1:{port}/tsa"), root(&tsa.root())).unwrap();
    let u = prepare(
        &artifact(),
        &key,
        std::slice::from_ref(&cert),
        &SignOptions::default(),
    )
    .unwrap();
    let e = block_on(ts.finish(&client(), u)).unwrap_err();
    assert!(
        matches!(&e, SignError::Timestamp(TsaError::Transport { .. })),
        "{e:?}"
    );
    assert!(Timestamper::new("ftp://127.0.0.1/tsa", root(&tsa.root())).is_err());
}

#[test]
fn the_signing_authority_scheme_takes_no_timestamp() {
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let cert = certgen::generate_test("berth-tsa-test", &key).unwrap();
    let opts = SignOptions {
        signing_scheme: SigningScheme::X509SigningAuthority,
        ..SignOptions::default()
    };
    let u = prepare(&artifact(), &key, std::slice::from_ref(&cert), &opts).unwrap();
    let e = u.finish(Some(b"token")).unwrap_err();
    assert!(e.to_string().contains("notary.x509 signatures only"), "{e}");
}

#[test]
fn an_https_tsa_is_reached_when_its_server_certificate_is_trusted() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start_tls();
    assert!(tsa.url().starts_with("https://127.0.0.1:"));
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let cert = certgen::generate_test("berth-tsa-test", &key).unwrap();
    let ca = std::fs::read(tsa.tls_ca().unwrap()).unwrap();
    let (bytes, _) = signed_via(
        &client_trusting(vec![ca]),
        &tsa,
        &tsa.root(),
        &key,
        &cert,
        EnvelopeFormat::Cose,
    )
    .unwrap();
    let env = Envelope::parse(&bytes, EnvelopeFormat::Cose.media_type()).unwrap();
    assert!(env.timestamp_token.is_some());
    assert_eq!(tsa.served(), 1);
    // a server certificate nobody trusts: unreachable, with the TLS reason
    match signed(&tsa, &tsa.root(), &key, &cert, EnvelopeFormat::Cose) {
        Err(SignError::Timestamp(TsaError::Transport { reason, .. })) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("signed through an untrusted TLS server: {other:?}"),
    }
}

#[test]
fn replies_that_are_not_a_token_are_refused() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    tsa.set_mode(TsaMode::WrongContentType);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::ContentType { got: Some(ct), .. } if ct == "application/octet-stream"),
        "{e}"
    );
    tsa.set_mode(TsaMode::GrantedWithoutToken);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::Malformed { reason, .. } if reason.contains("no timeStampToken")),
        "{e}"
    );
    tsa.set_mode(TsaMode::NoNonce);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::Mismatch { reason, .. } if reason.contains("no nonce")),
        "{e}"
    );
    tsa.set_mode(TsaMode::Huge);
    let e = refused(&tsa, &tsa.root());
    assert!(
        matches!(&e, TsaError::Transport { reason, .. } if reason.contains("larger than")),
        "{e}"
    );
    assert_eq!(tsa.served(), 4);
}

#[test]
fn the_root_certificate_must_be_a_self_signed_ca() {
    berth_test_support::requires_tool!("openssl");
    let tsa = TestTsa::start();
    // self-signed, but basicConstraints cA=false
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let leaf = certgen::generate_test("not-a-ca", &key).unwrap();
    let e = Timestamper::new(&tsa.url(), leaf).unwrap_err();
    assert!(e.to_string().contains("not a CA certificate"), "{e}");
    // issued by another: the TSA's own certificate
    let e = Timestamper::new(&tsa.url(), root(&tsa.tsa_cert())).unwrap_err();
    assert!(e.to_string().contains("not a root certificate"), "{e}");
}
