//! berth's own signatures: keys berth generates (P-256, P-384) or imports (RSA made by
//! openssl), certificates berth makes, envelopes berth produces in both serialisations — all
//! through the same `verify` that checks notation's signatures. openssl is the independent
//! peer for the certificates, the exported keys and an ECDSA envelope signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_trust::certgen::{self, CertParams};
use berth_trust::envelope::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use berth_trust::keys::{KeySpec, SigningKey, chain_pem, pem_encode};
use berth_trust::manifest::{self, SignatureManifestError};
use berth_trust::sign::{SignError, SignOptions, sign};
use berth_trust::{
    Certificate, Envelope, EnvelopeFormat, Outcome, SignatureAlgorithm, SigningScheme, Step,
    TargetArtifact, Timestamp, TrustPolicy, TrustStore, Verdict, VerifyOptions, verify,
};
use std::path::Path;
use std::process::Command;

const SUBJECT: &str = "CN=berth-test,O=Notary,L=Seattle,ST=WA,C=US";

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
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key made by openssl (`genpkey`), imported.
fn openssl_rsa(bits: u32) -> SigningKey {
    let tmp = tempfile::tempdir().expect("tmp");
    let opt = format!("rsa_keygen_bits:{bits}");
    openssl(
        tmp.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &opt,
            "-out",
            "k.pem",
        ],
    );
    let pem = std::fs::read(tmp.path().join("k.pem")).expect("key");
    SigningKey::from_pem_or_der(&pem).expect("import openssl RSA key")
}

fn artifact() -> TargetArtifact {
    TargetArtifact {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        size: 528,
        annotations: [("io.wabbit-networks.buildId".to_string(), "123".to_string())]
            .into_iter()
            .collect(),
    }
}

fn policy(level: &str, store: &str, identity: &str) -> TrustPolicy {
    let doc = format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"t","registryScopes":["*"],
        "signatureVerification":{{"level":"{level}"}},"trustStores":["{store}"],"trustedIdentities":["{identity}"]}}]}}"#
    );
    TrustPolicy::parse(doc.as_bytes()).expect("test policy")
}

/// A trust store `x509/<ty>/t/` holding `cert`.
fn store_with(ty: &str, cert: &Certificate) -> (tempfile::TempDir, TrustStore) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("x509").join(ty).join("t");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("t.crt"), chain_pem(std::slice::from_ref(cert))).expect("write");
    let store = TrustStore::new(tmp.path());
    (tmp, store)
}

fn check(bytes: &[u8], format: EnvelopeFormat, store: &TrustStore, p: &TrustPolicy) -> Verdict {
    check_at(bytes, format, store, p, Timestamp::now())
}

fn check_at(
    bytes: &[u8],
    format: EnvelopeFormat,
    store: &TrustStore,
    p: &TrustPolicy,
    now: Timestamp,
) -> Verdict {
    let a = artifact();
    verify(
        bytes,
        format.media_type(),
        store,
        &VerifyOptions {
            statement: &p.statements[0],
            artifact: Some(&a),
            now,
            revocation: &berth_trust::revocation::HTTP,
        },
    )
}

fn failed_step(v: &Verdict) -> Option<(Step, String)> {
    v.steps.iter().find_map(|s| match &s.outcome {
        Outcome::Failed(r) => Some((s.step, r.clone())),
        _ => None,
    })
}

fn test_cert(key: &SigningKey) -> Certificate {
    certgen::generate_test("berth-test", key).expect("certificate")
}

#[test]
fn berth_signatures_round_trip_through_verify_for_every_key_and_envelope() {
    let keys = [
        (
            SigningKey::generate(KeySpec::EcP256).expect("p256"),
            SignatureAlgorithm::Es256,
        ),
        (
            SigningKey::generate(KeySpec::EcP384).expect("p384"),
            SignatureAlgorithm::Es384,
        ),
        (openssl_rsa(2048), SignatureAlgorithm::Ps256),
        (openssl_rsa(3072), SignatureAlgorithm::Ps384),
        (openssl_rsa(4096), SignatureAlgorithm::Ps512),
    ];
    for (key, alg) in &keys {
        let cert = test_cert(key);
        let (_tmp, store) = store_with("ca", &cert);
        for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
            let what = format!("{} {format:?}", key.spec());
            let bytes = sign(
                &artifact(),
                key,
                std::slice::from_ref(&cert),
                &SignOptions::new(format),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            let v = check(
                &bytes,
                format,
                &store,
                &policy("strict", "ca:t", &format!("x509.subject: {SUBJECT}")),
            );
            assert!(v.passed, "{what}: {:?}", v.steps);
            assert_eq!(v.steps.len(), 5, "{what}: every step ran");
            assert!(
                v.steps.iter().all(|s| s.outcome == Outcome::Passed),
                "{what}: {:?}",
                v.steps
            );
            let env = v.envelope.expect("parsed envelope");
            assert_eq!(env.algorithm, *alg, "{what}");
            assert_eq!(env.signing_scheme, SigningScheme::X509);
            assert_eq!(
                env.critical,
                vec!["io.cncf.notary.signingScheme".to_string()]
            );
            assert_eq!(
                env.signing_agent.as_deref(),
                Some(format!("berth/{}", env!("CARGO_PKG_VERSION")).as_str())
            );
            let st = env.signing_time.expect("signing time");
            assert!((Timestamp::now().0 - st.0).abs() < 60, "{what}: {st}");
            assert_eq!(env.target_artifact().expect("payload"), artifact());
            assert!(env.expiry.is_none());
        }
    }
}

#[test]
fn jws_headers_are_the_specifications() {
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = test_cert(&key);
    let mut opts = SignOptions::new(EnvelopeFormat::Jws);
    opts.signing_time = Timestamp::parse_rfc3339("2026-12-04T17:52:39Z").expect("time");
    opts.expiry = Some(Timestamp(opts.signing_time.0 + 86_400 * 30));
    let bytes = sign(&artifact(), &key, std::slice::from_ref(&cert), &opts).expect("sign");
    let env: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let keys: Vec<&str> = env
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["header", "payload", "protected", "signature"]);
    let protected: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(env["protected"].as_str().expect("protected"))
            .expect("b64url"),
    )
    .expect("json");
    assert_eq!(
        protected,
        serde_json::json!({
            "alg": "ES256",
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2026-12-04T17:52:39Z",
            "io.cncf.notary.expiry": "2027-01-03T17:52:39Z",
        })
    );
    let payload: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(env["payload"].as_str().expect("payload"))
            .expect("b64url"),
    )
    .expect("json");
    assert_eq!(
        payload,
        serde_json::json!({"targetArtifact": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": artifact().digest,
            "size": 528,
            "annotations": {"io.wabbit-networks.buildId": "123"},
        }})
    );
    assert_eq!(env["header"]["x5c"].as_array().map(Vec::len), Some(1));
    assert!(env["header"]["io.cncf.notary.signingAgent"].is_string());

    // openssl, an independent ECDSA implementation, verifies the signature over the JWS
    // signing input with the public key berth exports
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("pub.pem"), key.public_key_pem()).expect("pub");
    let input = format!(
        "{}.{}",
        env["protected"].as_str().expect("p"),
        env["payload"].as_str().expect("p")
    );
    std::fs::write(tmp.path().join("input"), &input).expect("input");
    let raw = URL_SAFE_NO_PAD
        .decode(env["signature"].as_str().expect("sig"))
        .expect("b64url");
    assert_eq!(raw.len(), 64, "ES256 signatures are r||s, 64 bytes");
    std::fs::write(tmp.path().join("sig.der"), raw_to_der(&raw)).expect("sig");
    let out = openssl(
        tmp.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "input",
        ],
    );
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
}

/// r||s → ECDSA-Sig-Value DER (for openssl).
fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    let int = |b: &[u8]| {
        let b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        let mut v = if b.first().is_none_or(|x| x & 0x80 != 0) {
            vec![0]
        } else {
            vec![]
        };
        v.extend(b);
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn cose_headers_are_the_specifications() {
    let key = SigningKey::generate(KeySpec::EcP384).expect("key");
    let cert = test_cert(&key);
    let mut opts = SignOptions::new(EnvelopeFormat::Cose);
    opts.signing_time = Timestamp(1_800_000_000);
    opts.expiry = Some(Timestamp(1_900_000_000));
    let bytes = sign(&artifact(), &key, std::slice::from_ref(&cert), &opts).expect("sign");
    // tag 18, array of 4, protected header a bstr
    assert_eq!(&bytes[..2], &[0xd2, 0x84]);
    let env = Envelope::parse(&bytes, MEDIA_TYPE_COSE).expect("parse");
    assert_eq!(env.algorithm, SignatureAlgorithm::Es384);
    assert_eq!(env.signing_time, Some(Timestamp(1_800_000_000)));
    assert_eq!(env.expiry, Some(Timestamp(1_900_000_000)));
    assert_eq!(
        env.critical,
        vec!["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]
    );
    assert_eq!(
        env.signature_value().len(),
        96,
        "ES384: r||s of 48 bytes each"
    );
    // deterministic: the same inputs give the same protected header and payload
    let again = sign(&artifact(), &key, std::slice::from_ref(&cert), &opts).expect("sign");
    let a = Envelope::parse(&again, MEDIA_TYPE_COSE).expect("parse");
    assert_eq!(a.payload, env.payload);
    // the CBOR protected header (a bstr of < 256 bytes): map of 6, the integer labels first,
    // 1 (alg) = -35 (ES384)
    assert_eq!(bytes[2], 0x58, "protected header is a one-byte-length bstr");
    let len = usize::from(bytes[3]);
    let prot = &bytes[4..4 + len];
    assert_eq!(&prot[..4], &[0xa6, 0x01, 0x38, 0x22], "map(6), 1: -35");
}

#[test]
fn signing_authority_scheme_uses_authentic_signing_time() {
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = test_cert(&key);
    let (_tmp, store) = store_with("signingAuthority", &cert);
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        let mut opts = SignOptions::new(format);
        opts.signing_scheme = SigningScheme::X509SigningAuthority;
        let bytes = sign(&artifact(), &key, std::slice::from_ref(&cert), &opts).expect("sign");
        let v = check(
            &bytes,
            format,
            &store,
            &policy("strict", "signingAuthority:t", "*"),
        );
        assert!(v.passed, "{format:?}: {:?}", v.steps);
        let env = v.envelope.expect("env");
        assert!(env.signing_time.is_none());
        assert!(env.authentic_signing_time.is_some());
        assert!(
            env.critical
                .contains(&"io.cncf.notary.authenticSigningTime".to_string())
        );
    }
}

#[test]
fn a_ca_chain_verifies_with_only_the_root_trusted() {
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let (leaf, ca, _ca_key) = certgen::generate_test_ca("berth-test", &key, 30).expect("ca");
    let (_tmp, store) = store_with("ca", &ca);
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        let bytes = sign(
            &artifact(),
            &key,
            &[leaf.clone(), ca.clone()],
            &SignOptions::new(format),
        )
        .expect("sign");
        let v = check(
            &bytes,
            format,
            &store,
            &policy("strict", "ca:t", &format!("x509.subject: {SUBJECT}")),
        );
        assert!(v.passed, "{format:?}: {:?}", v.steps);
        // the leaf alone does not reach the root: authenticity fails
        let bytes = sign(
            &artifact(),
            &key,
            std::slice::from_ref(&leaf),
            &SignOptions::new(format),
        )
        .expect("sign");
        let v = check(&bytes, format, &store, &policy("strict", "ca:t", "*"));
        assert_eq!(
            failed_step(&v).map(|s| s.0),
            Some(Step::Authenticity),
            "{:?}",
            v.steps
        );
    }
}

#[test]
fn tampered_payloads_fail_integrity() {
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = test_cert(&key);
    let (_tmp, store) = store_with("ca", &cert);
    let p = policy("audit", "ca:t", "*");
    // JWS: the payload replaced by one over another digest, the signature kept
    let bytes = sign(
        &artifact(),
        &key,
        std::slice::from_ref(&cert),
        &SignOptions::new(EnvelopeFormat::Jws),
    )
    .expect("sign");
    let mut j: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let mut other = artifact();
    other.digest = format!("sha256:{}", "cd".repeat(32));
    j["payload"] = URL_SAFE_NO_PAD
        .encode(berth_trust::sign::payload(&other).expect("payload"))
        .into();
    let tampered = serde_json::to_vec(&j).expect("json");
    let v = check(&tampered, EnvelopeFormat::Jws, &store, &p);
    let (step, reason) = failed_step(&v).expect("fails");
    assert!(!v.passed);
    assert_eq!(step, Step::Integrity, "{reason}");
    assert!(reason.contains("does not verify"), "{reason}");
    // COSE: one byte of the payload changed ("528" → "529")
    let bytes = sign(
        &artifact(),
        &key,
        std::slice::from_ref(&cert),
        &SignOptions::new(EnvelopeFormat::Cose),
    )
    .expect("sign");
    let at = bytes
        .windows(10)
        .position(|w| w == b"\"size\":528")
        .expect("size in payload");
    let mut tampered = bytes.clone();
    tampered[at + 9] = b'9';
    let v = check(&tampered, EnvelopeFormat::Cose, &store, &p);
    assert_eq!(
        failed_step(&v).map(|s| s.0),
        Some(Step::Integrity),
        "{:?}",
        v.steps
    );
    // untampered it passes (the check can fail only because of the change)
    assert!(check(&bytes, EnvelopeFormat::Cose, &store, &p).passed);
}

#[test]
fn the_wrong_key_is_refused_when_signing_and_when_verifying() {
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let other = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = test_cert(&key);
    let other_cert = test_cert(&other);
    // signing with a key that is not the certificate's
    let err = sign(
        &artifact(),
        &other,
        std::slice::from_ref(&cert),
        &SignOptions::default(),
    )
    .expect_err("mismatch");
    assert!(
        matches!(err, SignError::Invalid(ref m) if m.contains("not the key")),
        "{err}"
    );
    // an envelope whose chain is swapped for another key's certificate: integrity fails
    let bytes = sign(
        &artifact(),
        &other,
        std::slice::from_ref(&other_cert),
        &SignOptions::default(),
    )
    .expect("sign");
    let mut j: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    j["header"]["x5c"] =
        serde_json::json!([base64::engine::general_purpose::STANDARD.encode(cert.der())]);
    let swapped = serde_json::to_vec(&j).expect("json");
    let (_tmp, store) = store_with("ca", &cert);
    let v = check(
        &swapped,
        EnvelopeFormat::Jws,
        &store,
        &policy("strict", "ca:t", "*"),
    );
    assert_eq!(
        failed_step(&v).map(|s| s.0),
        Some(Step::Integrity),
        "{:?}",
        v.steps
    );
    // a valid signature by a key whose certificate is not trusted: authenticity fails
    let v = check(
        &bytes,
        EnvelopeFormat::Jws,
        &store,
        &policy("strict", "ca:t", "*"),
    );
    assert_eq!(
        failed_step(&v).map(|s| s.0),
        Some(Step::Authenticity),
        "{:?}",
        v.steps
    );
    // a P-384 key with a P-256 certificate is refused too
    let p384 = SigningKey::generate(KeySpec::EcP384).expect("key");
    assert!(
        sign(
            &artifact(),
            &p384,
            std::slice::from_ref(&cert),
            &SignOptions::default()
        )
        .is_err()
    );
}

#[test]
fn an_expired_signature_fails_expiry() {
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let cert = test_cert(&key);
    let (_tmp, store) = store_with("ca", &cert);
    let now = Timestamp::now();
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        let mut opts = SignOptions::new(format);
        opts.expiry = Some(Timestamp(now.0 + 3600));
        let bytes = sign(&artifact(), &key, std::slice::from_ref(&cert), &opts).expect("sign");
        let p = policy("strict", "ca:t", "*");
        assert!(check_at(&bytes, format, &store, &p, now).passed);
        let later = Timestamp(now.0 + 7200);
        let v = check_at(&bytes, format, &store, &p, later);
        assert!(!v.passed);
        let (step, reason) = failed_step(&v).expect("fails");
        assert_eq!(step, Step::Expiry, "{format:?}: {reason}");
        // an expiry before the signing time is refused when signing
        opts.expiry = Some(Timestamp(opts.signing_time.0 - 1));
        assert!(sign(&artifact(), &key, std::slice::from_ref(&cert), &opts).is_err());
    }
    // an expired certificate fails authentic timestamp (no timestamp token)
    let mut params = CertParams::test("berth-test", 1);
    params.not_before = Timestamp(now.0 - 3 * 86_400);
    params.not_after = Timestamp(now.0 - 86_400);
    let old = certgen::self_signed(&params, &key).expect("cert");
    let (_tmp2, store2) = store_with("ca", &old);
    let bytes = sign(
        &artifact(),
        &key,
        std::slice::from_ref(&old),
        &SignOptions::default(),
    )
    .expect("sign");
    let v = check(
        &bytes,
        EnvelopeFormat::Jws,
        &store2,
        &policy("strict", "ca:t", "*"),
    );
    assert_eq!(
        failed_step(&v).map(|s| s.0),
        Some(Step::AuthenticTimestamp),
        "{:?}",
        v.steps
    );
}

#[test]
fn openssl_accepts_berths_certificates_and_keys() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    for spec in [KeySpec::EcP256, KeySpec::EcP384] {
        let key = SigningKey::generate(spec).expect("key");
        // self-signed, notation's generate-test shape
        let cert = test_cert(&key);
        std::fs::write(d.join("self.pem"), chain_pem(std::slice::from_ref(&cert))).expect("w");
        let text = String::from_utf8(openssl(d, &["x509", "-noout", "-text", "-in", "self.pem"]))
            .expect("utf8");
        for want in [
            "CN = berth-test",
            "O = Notary",
            "L = Seattle",
            "ST = WA",
            "C = US",
            "X509v3 Key Usage: critical",
            "Digital Signature",
            "Code Signing",
            "CA:FALSE",
            "Subject Key Identifier",
        ] {
            assert!(
                text.contains(want),
                "{spec}: openssl shows no {want:?}:\n{text}"
            );
        }
        openssl(
            d,
            &[
                "verify", "-CAfile", "self.pem", "-purpose", "any", "self.pem",
            ],
        );
        // CA + leaf
        let (leaf, ca, _) = certgen::generate_test_ca("berth-test", &key, 30).expect("ca");
        std::fs::write(d.join("ca.pem"), chain_pem(std::slice::from_ref(&ca))).expect("w");
        std::fs::write(d.join("leaf.pem"), chain_pem(std::slice::from_ref(&leaf))).expect("w");
        let out = openssl(
            d,
            &["verify", "-CAfile", "ca.pem", "-purpose", "any", "leaf.pem"],
        );
        assert!(String::from_utf8_lossy(&out).contains("leaf.pem: OK"));
        let ca_text = String::from_utf8(openssl(d, &["x509", "-noout", "-text", "-in", "ca.pem"]))
            .expect("utf8");
        assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
        assert!(ca_text.contains("Certificate Sign"), "{ca_text}");
        let leaf_text =
            String::from_utf8(openssl(d, &["x509", "-noout", "-text", "-in", "leaf.pem"]))
                .expect("utf8");
        assert!(
            leaf_text.contains("Authority Key Identifier"),
            "{leaf_text}"
        );
        // a leaf is not a CA: openssl refuses a chain that trusts the leaf to issue the CA
        let bad = Command::new("openssl")
            .args(["verify", "-CAfile", "leaf.pem", "-purpose", "any", "ca.pem"])
            .current_dir(d)
            .output()
            .expect("openssl");
        assert!(!bad.status.success());
        // the exported private and public keys are what openssl reads
        std::fs::write(d.join("k.pem"), key.to_pkcs8_pem()).expect("w");
        std::fs::write(d.join("pub.pem"), key.public_key_pem()).expect("w");
        openssl(d, &["pkey", "-in", "k.pem", "-noout"]);
        let pub_from_priv = openssl(d, &["pkey", "-in", "k.pem", "-pubout"]);
        assert_eq!(
            String::from_utf8_lossy(&pub_from_priv),
            key.public_key_pem()
        );
        let cert_pub = openssl(d, &["x509", "-in", "self.pem", "-noout", "-pubkey"]);
        assert_eq!(String::from_utf8_lossy(&cert_pub), key.public_key_pem());
    }
    // an RSA key: berth's self-signed certificate for it (sha256WithRSAEncryption)
    let rsa = openssl_rsa(3072);
    let cert = test_cert(&rsa);
    std::fs::write(d.join("rsa.pem"), chain_pem(std::slice::from_ref(&cert))).expect("w");
    let text = String::from_utf8(openssl(d, &["x509", "-noout", "-text", "-in", "rsa.pem"]))
        .expect("utf8");
    assert!(
        text.contains("sha256WithRSAEncryption") && text.contains("3072 bit"),
        "{text}"
    );
    openssl(
        d,
        &["verify", "-CAfile", "rsa.pem", "-purpose", "any", "rsa.pem"],
    );
}

#[test]
fn older_key_formats_import_and_bad_keys_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    // SEC1 "EC PRIVATE KEY" (openssl ecparam -genkey) and PKCS#1 "RSA PRIVATE KEY"
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ],
    );
    let ec =
        SigningKey::from_pem_or_der(&std::fs::read(d.join("ec.pem")).expect("r")).expect("sec1");
    assert_eq!(ec.spec(), KeySpec::EcP256);
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "r8.pem",
        ],
    );
    openssl(
        d,
        &["rsa", "-in", "r8.pem", "-traditional", "-out", "r1.pem"],
    );
    let pkcs1 = std::fs::read_to_string(d.join("r1.pem")).expect("r");
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
    let rsa = SigningKey::from_pem_or_der(pkcs1.as_bytes()).expect("pkcs1");
    assert_eq!(rsa.spec(), KeySpec::Rsa(2048));
    // DER PKCS#8
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "r8.pem", "-outform", "DER", "-out", "r8.der",
        ],
    );
    let der =
        SigningKey::from_pem_or_der(&std::fs::read(d.join("r8.der")).expect("r")).expect("der");
    assert_eq!(der.public_key(), rsa.public_key());
    // refused: RSA 1024, P-521, Ed25519, encrypted PKCS#8, garbage
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "weak.pem",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-out",
            "p521.pem",
        ],
    );
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-in", "r8.pem", "-passout", "pass:x", "-out", "enc.pem",
        ],
    );
    for (file, want) in [
        ("weak.pem", "1024"),
        ("p521.pem", "P-521"),
        ("ed.pem", "1.3.101.112"),
        ("enc.pem", "encrypted"),
    ] {
        let err = SigningKey::from_pem_or_der(&std::fs::read(d.join(file)).expect("r"))
            .expect_err(file)
            .to_string();
        assert!(err.contains(want), "{file}: {err}");
    }
    assert!(SigningKey::from_pem_or_der(b"not a key").is_err());
    assert!(
        SigningKey::from_pem_or_der(pem_encode("PRIVATE KEY", b"\x30\x03\x02\x01\x00").as_bytes())
            .is_err()
    );
}

#[test]
fn signature_manifests_are_built_and_read() {
    use berth_oci::oci_spec::image::{Descriptor, MediaType};
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let (leaf, ca, _) = certgen::generate_test_ca("berth-test", &key, 30).expect("ca");
    let chain = [leaf, ca];
    let subject = Descriptor::new(
        MediaType::ImageManifest,
        528,
        artifact()
            .digest
            .parse::<berth_oci::oci_spec::image::Digest>()
            .expect("digest"),
    );
    let target = TargetArtifact::from_descriptor(&subject);
    let envelope = sign(
        &target,
        &key,
        &chain,
        &SignOptions::new(EnvelopeFormat::Cose),
    )
    .expect("sign");
    let created = Timestamp::parse_rfc3339("2026-12-04T18:00:00Z").expect("t");
    let sm =
        manifest::signature_manifest(&subject, &envelope, EnvelopeFormat::Cose, &chain, created)
            .expect("manifest");
    // berth-oci (what berth's registry runs) reads it as a referrer of the subject
    let info = berth_oci::ManifestInfo::parse(&sm.bytes, None).expect("manifest parses");
    assert_eq!(info.artifact_type.as_deref(), Some(manifest::ARTIFACT_TYPE));
    assert_eq!(
        info.subject.as_ref().map(|s| s.digest().to_string()),
        Some(artifact().digest)
    );
    let config = info.config.expect("config");
    // the specification's form: the type in config.mediaType, the config blob `{}`, no
    // artifactType (notation writes the same and finds nothing else in an OCI layout)
    assert_eq!(config.media_type().to_string(), manifest::ARTIFACT_TYPE);
    let raw: serde_json::Value = serde_json::from_slice(&sm.bytes).expect("json");
    assert!(raw.get("artifactType").is_none(), "{raw}");
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(config.size(), 2);
    assert_eq!(
        config.digest().to_string(),
        berth_oci::Digest::sha256_of(manifest::EMPTY_CONFIG).to_string()
    );
    let ann = info.annotations.expect("annotations");
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "2026-12-04T18:00:00Z"
    );
    // thumbprints: openssl's SHA-256 fingerprints of the chain, leaf first
    let tmp = tempfile::tempdir().expect("tmp");
    let mut want = Vec::new();
    for (i, c) in chain.iter().enumerate() {
        let f = format!("{i}.pem");
        std::fs::write(tmp.path().join(&f), chain_pem(std::slice::from_ref(c))).expect("w");
        let out = String::from_utf8(openssl(
            tmp.path(),
            &["x509", "-in", &f, "-noout", "-fingerprint", "-sha256"],
        ))
        .expect("utf8");
        let hex = out
            .trim()
            .rsplit('=')
            .next()
            .expect("fp")
            .replace(':', "")
            .to_lowercase();
        want.push(hex);
    }
    let got: Vec<String> =
        serde_json::from_str(&ann[manifest::ANNOTATION_THUMBPRINT]).expect("json array");
    assert_eq!(got, want);
    // the envelope layer
    let layer = manifest::envelope_layer(&sm.bytes).expect("layer");
    assert_eq!(layer.media_type().to_string(), MEDIA_TYPE_COSE);
    assert_eq!(layer.size(), envelope.len() as u64);
    assert_eq!(
        layer.digest().to_string(),
        berth_oci::Digest::sha256_of(&envelope).to_string()
    );
    assert_eq!(sm.envelope, layer);
    assert_eq!(sm.descriptor.size(), sm.bytes.len() as u64);
    assert_eq!(
        sm.descriptor.digest().to_string(),
        berth_oci::Digest::sha256_of(&sm.bytes).to_string()
    );

    // the image-spec 1.1 artifact form (artifactType, the empty config) is read too
    let mut art: serde_json::Value = serde_json::from_slice(&sm.bytes).expect("json");
    art["artifactType"] = manifest::ARTIFACT_TYPE.into();
    art["config"] = serde_json::json!({
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": berth_oci::media_type::OCI_EMPTY_JSON_DIGEST,
        "size": 2,
    });
    let art_bytes = serde_json::to_vec(&art).expect("json");
    assert_eq!(
        manifest::envelope_layer(&art_bytes).expect("artifact form"),
        layer
    );

    // refused, each with its reason
    let variant = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&sm.bytes).expect("json");
        f(&mut v);
        manifest::envelope_layer(&serde_json::to_vec(&v).expect("json")).expect_err("refused")
    };
    let e = variant(&|v| v["artifactType"] = "application/spdx+json".into());
    assert!(
        matches!(e, SignatureManifestError::NotSignature(ref m) if m.contains("spdx")),
        "{e}"
    );
    let e = variant(&|v| {
        let l = v["layers"][0].clone();
        v["layers"] = serde_json::json!([l.clone(), l]);
    });
    assert!(e.to_string().contains("2 layers"), "{e}");
    let e = variant(&|v| v["layers"] = serde_json::json!([]));
    assert!(e.to_string().contains("0 layers"), "{e}");
    let e = variant(&|v| v["layers"][0]["mediaType"] = "application/json".into());
    assert!(e.to_string().contains("media type"), "{e}");
    let e = variant(&|v| v["layers"][0]["size"] = (5u64 * 1024 * 1024).into());
    assert!(e.to_string().contains("over the"), "{e}");
    let e = variant(&|v| v["mediaType"] = "application/vnd.oci.image.index.v1+json".into());
    assert!(matches!(e, SignatureManifestError::NotSignature(_)), "{e}");
    let e =
        variant(&|v| v["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json".into());
    assert!(e.to_string().contains("config.mediaType"), "{e}");
    assert!(manifest::envelope_layer(b"[]").is_err());
    assert!(manifest::envelope_layer(b"{").is_err());
}

#[test]
fn payload_and_target_from_a_descriptor() {
    let t = artifact();
    let p = berth_trust::sign::payload(&t).expect("payload");
    let v: serde_json::Value = serde_json::from_slice(&p).expect("json");
    assert_eq!(v["targetArtifact"]["size"], 528);
    let mut bad = t.clone();
    bad.digest = "sha256:nothex".to_string();
    assert!(berth_trust::sign::payload(&bad).is_err());
    let _ = MEDIA_TYPE_JWS;
}

/// A TLS serving certificate from certgen, as `berth admission certs` makes it, is what
/// openssl accepts for an SSL server under its CA, for each DNS name and IP address it
/// names, and for no other.
#[test]
fn openssl_accepts_berths_tls_server_certificates_for_their_names_only() {
    use berth_trust::certgen::SubjectAltName;
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let ca_key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let ca = certgen::ca(&CertParams::test("berth-admission CA", 30), &ca_key).expect("ca");
    let key = SigningKey::generate(KeySpec::EcP256).expect("key");
    let names = ["berth-admission.berth-system.svc", "127.0.0.1"].map(SubjectAltName::parse);
    let leaf = certgen::server_leaf(
        &CertParams::test("berth-admission.berth-system.svc", 30),
        &key,
        &ca,
        &ca_key,
        &names,
    )
    .expect("server leaf");
    std::fs::write(d.join("ca.pem"), chain_pem(std::slice::from_ref(&ca))).expect("w");
    std::fs::write(d.join("leaf.pem"), chain_pem(std::slice::from_ref(&leaf))).expect("w");
    let verify = |check: &[&str]| {
        Command::new("openssl")
            .args(["verify", "-CAfile", "ca.pem", "-purpose", "sslserver"])
            .args(check)
            .arg("leaf.pem")
            .current_dir(d)
            .output()
            .expect("openssl")
    };
    for ok in [
        &["-verify_hostname", "berth-admission.berth-system.svc"][..],
        &["-verify_ip", "127.0.0.1"][..],
    ] {
        let out = verify(ok);
        assert!(
            out.status.success(),
            "{ok:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for bad in [
        &["-verify_hostname", "other.berth-system.svc"][..],
        &["-verify_ip", "127.0.0.2"][..],
    ] {
        assert!(!verify(bad).status.success(), "{bad:?} accepted");
    }
    let text = String::from_utf8(openssl(d, &["x509", "-noout", "-text", "-in", "leaf.pem"]))
        .expect("utf8");
    assert!(
        text.contains("DNS:berth-admission.berth-system.svc, IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("Code Signing"), "{text}");
}
