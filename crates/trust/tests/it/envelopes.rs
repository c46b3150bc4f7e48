use berth_trust::envelope::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use berth_trust::{
    Envelope, EnvelopeError, Outcome, Step, TargetArtifact, Timestamp, TrustPolicy, TrustStore,
    VerifyOptions, verify,
};
use std::path::Path;

const MOCK: &str = "notation-go/internal/mock/testdata";
const TS: &str = "notation-go/verifier/testdata/timestamp/sigEnv";

fn policy(level: &str, stores: &str, extra: &str) -> TrustPolicy {
    let doc = format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"t","registryScopes":["*"],
        "signatureVerification":{{"level":"{level}"{extra}}},"trustStores":[{stores}],"trustedIdentities":["*"]}}]}}"#
    );
    TrustPolicy::parse(doc.as_bytes()).expect("test policy")
}

fn media_type(bytes: &[u8]) -> &'static str {
    if bytes.first() == Some(&b'{') {
        MEDIA_TYPE_JWS
    } else {
        MEDIA_TYPE_COSE
    }
}

/// A temporary trust store `x509/<ty>/t/` holding `certs` (DER).
fn temp_store(ty: &str, certs: &[&[u8]]) -> (tempfile::TempDir, TrustStore) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("x509").join(ty).join("t");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (i, c) in certs.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.crt")), c).expect("write");
    }
    let store = TrustStore::new(tmp.path());
    (tmp, store)
}

fn vectors_store() -> TrustStore {
    TrustStore::new(crate::vectors().join("notation-go/verifier/testdata/truststore"))
}

fn run(
    bytes: &[u8],
    store: &TrustStore,
    p: &TrustPolicy,
    artifact: Option<&TargetArtifact>,
) -> berth_trust::Verdict {
    let opts = VerifyOptions {
        statement: &p.statements[0],
        artifact,
        now: Timestamp::now(),
        revocation: &berth_trust::revocation::HTTP,
    };
    verify(bytes, media_type(bytes), store, &opts)
}

fn failed_step(v: &berth_trust::Verdict) -> Option<(Step, String)> {
    v.steps.iter().find_map(|s| match &s.outcome {
        Outcome::Failed(r) => Some((s.step, r.clone())),
        _ => None,
    })
}

/// The trust store a self-signed leaf is its own anchor in.
fn own_anchor(bytes: &[u8]) -> (tempfile::TempDir, TrustStore) {
    let env = Envelope::parse(bytes, media_type(bytes)).expect("parses");
    let leaf = env.certificate_chain.last().expect("chain").der().to_vec();
    temp_store("ca", &[&leaf])
}

#[test]
fn notation_go_jws_and_cose_signatures_verify() {
    let artifact = TargetArtifact {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        digest: "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"
            .to_string(),
        size: 481,
        annotations: Default::default(),
    };
    // the signed manifest is in the vectors' OCI layout: check the descriptor is its digest
    let manifest = crate::read(
        "notation-go/internal/testdata/oci-layout/blobs/sha256/19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0",
    );
    assert_eq!(manifest.len(), 481);
    for name in ["jws_signature.sig", "cose_signature.sig"] {
        let bytes = crate::read(&format!("notation-go/internal/testdata/{name}"));
        let (_tmp, store) = own_anchor(&bytes);
        let v = run(
            &bytes,
            &store,
            &policy("strict", r#""ca:t""#, ""),
            Some(&artifact),
        );
        assert!(v.passed, "{name}: {:?}", v.steps);
        assert_eq!(v.steps.len(), 5, "{name}: every step ran");
        // a signature over another digest is refused at integrity, whatever the level
        let mut other = artifact.clone();
        other.digest = format!("sha256:{}", "0".repeat(64));
        let v = run(
            &bytes,
            &store,
            &policy("audit", r#""ca:t""#, ""),
            Some(&other),
        );
        assert!(!v.passed);
        assert_eq!(
            failed_step(&v).map(|(s, _)| s),
            Some(Step::Integrity),
            "{name}"
        );
        // one flipped bit of the signature: integrity fails, whatever the level
        let env = Envelope::parse(&bytes, media_type(&bytes)).expect("parses");
        let mut sig = env.signature_value().to_vec();
        sig[7] ^= 0x10;
        let tampered = reencode_with_signature(&bytes, media_type(&bytes), &sig);
        let v = run(
            &tampered,
            &store,
            &policy("audit", r#""ca:t""#, ""),
            Some(&artifact),
        );
        assert!(!v.passed, "{name}: a tampered signature must fail");
        let (step, reason) = failed_step(&v).expect("failure");
        assert_eq!(step, Step::Integrity, "{name}: {reason}");
        assert!(reason.contains("does not verify"), "{name}: {reason}");
        // a store that does not hold the anchor: authenticity fails (strict), logged (audit)
        let (_t2, wrong) = temp_store(
            "ca",
            &[&crate::read(
                "notation-go/verifier/testdata/truststore/x509/ca/valid-trust-store/GlobalSign.der",
            )],
        );
        let v = run(
            &bytes,
            &wrong,
            &policy("strict", r#""ca:t""#, ""),
            Some(&artifact),
        );
        assert!(!v.passed);
        assert_eq!(
            failed_step(&v).map(|(s, _)| s),
            Some(Step::Authenticity),
            "{name}"
        );
        let v = run(
            &bytes,
            &wrong,
            &policy("audit", r#""ca:t""#, ""),
            Some(&artifact),
        );
        assert!(v.passed, "audit only logs authenticity: {:?}", v.steps);
    }
}

#[test]
fn cose_times_are_cbor_epoch_and_jws_times_carry_offsets() {
    let jws = Envelope::parse(
        &crate::read("notation-go/internal/testdata/jws_signature.sig"),
        MEDIA_TYPE_JWS,
    )
    .expect("jws");
    assert_eq!(
        jws.signing_time,
        Timestamp::parse_rfc3339("2023-03-14T08:10:02Z")
    );
    let cose = Envelope::parse(
        &crate::read("notation-go/internal/testdata/cose_signature.sig"),
        MEDIA_TYPE_COSE,
    )
    .expect("cose");
    assert!(cose.signing_time.is_some());
    assert_eq!(cose.signing_scheme, berth_trust::SigningScheme::X509);
    assert_eq!(cose.certificate_chain.len(), 1);
    // the media type decides the parser: a JWS given as COSE is malformed, not guessed
    assert!(matches!(
        Envelope::parse(
            &crate::read("notation-go/internal/testdata/jws_signature.sig"),
            MEDIA_TYPE_COSE
        ),
        Err(EnvelopeError::Cose(_))
    ));
    assert!(matches!(
        Envelope::parse(b"{}", "application/json"),
        Err(EnvelopeError::UnsupportedMediaType(_))
    ));
}

/// notation-go's mock envelopes: CA and signing-authority schemes, valid, expired, invalid,
/// an unknown critical header, and required verification plugins.
#[test]
fn notation_go_mock_envelopes_get_notations_verdict() {
    let store = vectors_store();
    let ca = policy("strict", r#""ca:valid-trust-store""#, "");
    let sa = policy("strict", r#""signingAuthority:valid-trust-store""#, "");
    let cases: &[(&str, &TrustPolicy, Option<Step>, &str)] = &[
        ("ca_valid_sig_env.json", &ca, None, ""),
        ("sa_valid_sig_env.json", &sa, None, ""),
        (
            "ca_expired_sig_env.json",
            &ca,
            Some(Step::Expiry),
            "expired",
        ),
        (
            "sa_expired_sig_env.json",
            &sa,
            Some(Step::Expiry),
            "expired",
        ),
        // the invalid ones carry a padded (non-base64url) payload
        (
            "ca_invalid_sig_env.json",
            &ca,
            Some(Step::Integrity),
            "base64url",
        ),
        (
            "sa_invalid_sig_env.json",
            &sa,
            Some(Step::Integrity),
            "base64url",
        ),
        (
            "ca_plugin_sig_env.json",
            &ca,
            Some(Step::Integrity),
            "unknown critical header \"SomeKey\"",
        ),
        (
            "sa_plugin_sig_env.json",
            &sa,
            Some(Step::Integrity),
            "unknown critical header \"SomeKey\"",
        ),
    ];
    for (name, p, fails_at, why) in cases {
        let bytes = crate::read(&format!("{MOCK}/{name}"));
        let v = run(&bytes, &store, p, None);
        match fails_at {
            None => assert!(v.passed, "{name}: {:?} {:?}", v.steps, v.error),
            Some(step) => {
                assert!(!v.passed, "{name} must fail");
                let (s, reason) =
                    failed_step(&v).unwrap_or_else(|| panic!("{name}: no failed step"));
                assert_eq!(s, *step, "{name}: {reason}");
                assert!(reason.contains(why), "{name}: {reason:?} lacks {why:?}");
            }
        }
    }
    // an expired signature passes where expiry is only logged (permissive), as notation
    let bytes = crate::read(&format!("{MOCK}/ca_expired_sig_env.json"));
    let v = run(
        &bytes,
        &store,
        &policy("permissive", r#""ca:valid-trust-store""#, ""),
        None,
    );
    assert!(v.passed, "{:?}", v.steps);
    assert_eq!(
        failed_step(&v).map(|(s, _)| s),
        Some(Step::Expiry),
        "the failure is still reported"
    );
    // the signing-authority envelope is not trusted through a ca store
    let bytes = crate::read(&format!("{MOCK}/sa_valid_sig_env.json"));
    let v = run(&bytes, &store, &ca, None);
    assert_eq!(failed_step(&v).map(|(s, _)| s), Some(Step::Authenticity));
    // plugins: berth runs none, so a signature that requires one never passes
    for name in [
        "ca_compatible_pluginver_sig_env_1.0.0.json",
        "ca_compatible_pluginver_sig_env_0.0.9.json",
        "ca_incompatible_pluginver_sig_env_1.2.3.json",
    ] {
        let bytes = crate::read(&format!("{MOCK}/{name}"));
        let v = run(&bytes, &store, &ca, None);
        assert!(!v.passed, "{name}");
        assert!(
            v.error
                .as_deref()
                .is_some_and(|e| e.contains("verification plugin")),
            "{name}: {:?}",
            v.error
        );
    }
}

/// A temporary trust store with the envelope's own root under `ca/t` and notation-go's TSA
/// root (`tsa/test-timestamp/globalsignRoot.cer`) under `tsa/t`.
fn store_with_tsa(bytes: &[u8], tsa_root: &str) -> (tempfile::TempDir, TrustStore) {
    let (tmp, store) = own_anchor(bytes);
    let dir = tmp.path().join("x509/tsa/t");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let root = crate::read(&format!(
        "notation-go/verifier/testdata/truststore/x509/tsa/{tsa_root}"
    ));
    std::fs::write(dir.join("root.cer"), root).expect("write");
    (tmp, store)
}

/// notation-go's timestamped envelopes (RFC 3161 countersignatures by a GlobalSign TSA) get
/// notation's verdicts: valid ones pass, also with a signing certificate that expired after
/// the timestamp; timestamps outside the certificate's validity fail; a wrong or missing TSA
/// root fails; a signature without a timestamp fails a statement with a tsa store and
/// `verifyTimestamp: always` (notation-go `verifier/timestamp_test.go`: "no timestamp
/// countersignature was found in the signature envelope").
#[test]
fn timestamped_signatures_get_notations_verdict() {
    let strict = policy("strict", r#""ca:t","tsa:t""#, "");
    let after_expiry = policy(
        "strict",
        r#""ca:t","tsa:t""#,
        r#","verifyTimestamp":"afterCertExpiry""#,
    );
    let no_tsa = policy("strict", r#""ca:t""#, "");
    let cases: &[(&str, bool)] = &[
        ("withoutTimestamp.sig", false),
        ("jwsWithTimestamp.sig", true),
        ("coseWithTimestamp.sig", true),
        ("jwsExpiredWithTimestamp.sig", true),
        ("coseExpiredWithTimestamp.sig", true),
        ("timestampAfterNotAfter.sig", false),
        ("timestampBeforeNotBefore.sig", false),
    ];
    for (name, passes) in cases {
        let bytes = crate::read(&format!("{TS}/{name}"));
        let (_tmp, store) = store_with_tsa(&bytes, "test-timestamp/globalsignRoot.cer");
        let v = run(&bytes, &store, &strict, None);
        assert_eq!(v.passed, *passes, "{name}: {:?}", v.steps);
        if !passes {
            let (step, reason) = failed_step(&v).expect("failure");
            assert_eq!(step, Step::AuthenticTimestamp, "{name}: {reason}");
            let want = if *name == "withoutTimestamp.sig" {
                "no timestamp countersignature was found"
            } else {
                "not within the validity"
            };
            assert!(reason.contains(want), "{name}: {reason}");
        }
        // afterCertExpiry asks for no timestamp while the chain is valid (as notation)
        let after_passes = *passes || *name == "withoutTimestamp.sig";
        let v = run(&bytes, &store, &after_expiry, None);
        assert_eq!(
            v.passed, after_passes,
            "{name} (afterCertExpiry): {:?}",
            v.steps
        );
    }
    // a timestamped signature cannot pass without the TSA's root, nor with another TSA's root
    for name in ["jwsWithTimestamp.sig", "coseExpiredWithTimestamp.sig"] {
        let bytes = crate::read(&format!("{TS}/{name}"));
        let (_tmp, store) = store_with_tsa(&bytes, "test-timestamp/globalsignRoot.cer");
        let v = run(&bytes, &store, &no_tsa, None);
        assert!(!v.passed, "{name} without a tsa store");
        assert!(failed_step(&v).is_some_and(
            |(s, r)| s == Step::AuthenticTimestamp && r.contains("no tsa trust store")
        ));
        let (_tmp, store) = store_with_tsa(&bytes, "test-mismatch/DigiCertTSARootSHA384.cer");
        let v = run(&bytes, &store, &strict, None);
        assert!(!v.passed, "{name} with another TSA's root");
        assert!(
            failed_step(&v)
                .is_some_and(|(s, r)| s == Step::AuthenticTimestamp && r.contains("tsa stores")),
            "{name}: {:?}",
            v.steps
        );
    }
}

/// notation-go's bare timestamp tokens: the broken ones are refused for what is broken; the
/// valid one gets as far as the message imprint (it is over another signature).
#[test]
fn timestamp_tokens_are_checked_field_by_field() {
    let dir = "notation-go/verifier/testdata/timestamp/countersignature";
    let root = berth_trust::Certificate::parse_many(&crate::read(
        "notation-go/verifier/testdata/truststore/x509/tsa/test-timestamp/globalsignRoot.cer",
    ))
    .expect("root");
    let check = |name: &str| {
        berth_trust::timestamp::verify_token(&crate::read(&format!("{dir}/{name}")), b"x", &root)
    };
    let err = check("TimeStampToken.p7s").expect_err("over another signature");
    assert!(err.contains("messageImprint mismatch"), "{err}");
    let err = check("TimeStampTokenWithoutCertificate.p7s").expect_err("no certificate");
    assert!(err.contains("signer's certificate"), "{err}");
    let err = check("TimeStampTokenWithInvalideContentType.p7s").expect_err("content type");
    assert!(
        err.contains("TSTInfo") || err.contains("SignedData"),
        "{err}"
    );
    assert!(check("TimeStampTokenWithInvalidTSTInfo.p7s").is_err());
}

fn layout_signature(layout: &str) -> (Vec<u8>, String, TargetArtifact) {
    let dir = crate::vectors()
        .join("notation/test/e2e/testdata/registry/oci_layout")
        .join(layout);
    let blob = |digest: &str| -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256");
        std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob")
    };
    // find the signature manifest: its config or artifactType names the notary signature
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).expect("blobs") {
        let path = entry.expect("entry").path();
        let Ok(m) =
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).expect("read"))
        else {
            continue;
        };
        let is_sig = m["config"]["mediaType"] == "application/vnd.cncf.notary.signature"
            || m["artifactType"] == "application/vnd.cncf.notary.signature";
        if !is_sig {
            continue;
        }
        let layer = &m["layers"][0];
        let media = layer["mediaType"]
            .as_str()
            .expect("layer media type")
            .to_string();
        let env = blob(layer["digest"].as_str().expect("digest"));
        let subject = &m["subject"];
        let target = TargetArtifact {
            media_type: subject["mediaType"].as_str().expect("subject").to_string(),
            digest: subject["digest"].as_str().expect("subject").to_string(),
            size: subject["size"].as_u64().expect("size"),
            annotations: Default::default(),
        };
        return (env, media, target);
    }
    panic!("no signature manifest in {}", Path::new(layout).display());
}

/// notation's e2e OCI layouts: signatures in the older manifest form over one image.
#[test]
fn notation_e2e_layout_signatures_get_notations_verdict() {
    let e2e = crate::read("notation/test/e2e/testdata/config/localkeys/e2e.crt");
    // notation's e2e trusts its expired certificate too (expired_e2e.crt, what
    // e2e-with-expired-cert is signed with)
    let expired = crate::read("notation/test/e2e/testdata/config/localkeys/expired_e2e.crt");
    let (_tmp, store) = temp_store("ca", &[&e2e, &expired]);
    let strict = policy("strict", r#""ca:t""#, "");
    let cases: &[(&str, Option<Step>)] = &[
        ("e2e-valid-signature", None),
        ("e2e-invalid-signature", Some(Step::Integrity)),
        ("e2e-expired-signature", Some(Step::Expiry)),
        // expired_e2e.crt has no extendedKeyUsage (optional for a code-signing certificate)
        // and has expired: without a timestamp, notation-go refuses it at the authentic
        // timestamp step (the chain must be valid at verification time)
        ("e2e-with-expired-cert", Some(Step::AuthenticTimestamp)),
    ];
    for (layout, fails_at) in cases {
        let (env, media, target) = layout_signature(layout);
        let opts = VerifyOptions {
            statement: &strict.statements[0],
            artifact: Some(&target),
            now: Timestamp::now(),
            revocation: &berth_trust::revocation::HTTP,
        };
        let v = verify(&env, &media, &store, &opts);
        match fails_at {
            None => assert!(v.passed, "{layout}: {:?}", v.steps),
            Some(step) => {
                assert!(!v.passed, "{layout} must fail");
                assert_eq!(
                    failed_step(&v).map(|(s, _)| s),
                    Some(*step),
                    "{layout}: {:?}",
                    v.steps
                );
            }
        }
    }
    // the timestamped layout: its TSA is Microsoft's, whose root is not among the vectors, so
    // with the GlobalSign TSA root it must fail at the timestamp and nowhere before
    let (env, media, target) = layout_signature("e2e-with-timestamped-signature");
    let (ts_tmp, ts_store) = own_anchor(&env);
    let tsa = tmp_dir_with(
        &ts_tmp,
        "x509/tsa/t",
        "notation/test/e2e/testdata/config/timestamp/globalsignTSARoot.cer",
    );
    // its signature carries an expiry that has passed since it was made: logged here, so the
    // timestamp step is what decides
    let p = policy(
        "strict",
        r#""ca:t","tsa:t""#,
        r#","override":{"expiry":"log"}"#,
    );
    let opts = VerifyOptions {
        statement: &p.statements[0],
        artifact: Some(&target),
        now: Timestamp::now(),
        revocation: &berth_trust::revocation::HTTP,
    };
    let v = verify(&env, &media, &ts_store, &opts);
    assert!(
        !v.passed,
        "e2e-with-timestamped-signature ({tsa}): {:?}",
        v.steps
    );
    assert_eq!(
        v.steps
            .iter()
            .map(|s| (s.step, matches!(s.outcome, Outcome::Passed)))
            .collect::<Vec<_>>(),
        vec![
            (Step::Integrity, true),
            (Step::Authenticity, true),
            (Step::Expiry, false),
            (Step::AuthenticTimestamp, false)
        ]
    );
    let reason = match &v.steps[3].outcome {
        Outcome::Failed(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        reason.contains("Microsoft") && reason.contains("tsa stores"),
        "{reason}"
    );
    assert!(
        v.envelope
            .as_ref()
            .is_some_and(|e| e.timestamp_token.is_some()),
        "it is timestamped"
    );

    // with authenticity only logged, the expired certificate still fails, as in notation
    let (env, media, target) = layout_signature("e2e-with-expired-cert");
    let p = policy(
        "strict",
        r#""ca:t""#,
        r#","override":{"authenticity":"log"}"#,
    );
    let opts = VerifyOptions {
        statement: &p.statements[0],
        artifact: Some(&target),
        now: Timestamp::now(),
        revocation: &berth_trust::revocation::HTTP,
    };
    let v = verify(&env, &media, &store, &opts);
    assert!(!v.passed);
    let last = v.steps.last().expect("steps");
    assert_eq!(last.step, Step::AuthenticTimestamp, "{:?}", v.steps);
    assert!(
        matches!(&last.outcome, Outcome::Failed(r) if r.contains("not valid at")),
        "{:?}",
        last
    );
}

#[test]
fn malformed_envelopes_are_refused_with_a_reason() {
    let bad = crate::read("notation/test/e2e/testdata/signatures/malformed.jws.sig");
    assert!(Envelope::parse(&bad, MEDIA_TYPE_JWS).is_err());
    let good = String::from_utf8(crate::read(
        "notation-go/internal/testdata/jws_signature.sig",
    ))
    .expect("utf8");
    let mut j: serde_json::Value = serde_json::from_str(&good).expect("json");
    // a weak algorithm in the protected header
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let prot = j["protected"].as_str().expect("protected").to_string();
    let mut h: serde_json::Value =
        serde_json::from_slice(&b64.decode(&prot).expect("b64")).expect("json");
    let edit = |h: &serde_json::Value, j: &serde_json::Value| -> Result<Envelope, EnvelopeError> {
        let mut j = j.clone();
        j["protected"] = serde_json::Value::String(b64.encode(serde_json::to_vec(h).expect("ser")));
        Envelope::parse(&serde_json::to_vec(&j).expect("ser"), MEDIA_TYPE_JWS)
    };
    let mut weak = h.clone();
    weak["alg"] = "RS256".into();
    assert!(matches!(edit(&weak, &j), Err(EnvelopeError::Header(m)) if m.contains("RS256")));
    let mut none = h.clone();
    none["alg"] = "none".into();
    assert!(edit(&none, &j).is_err());
    let mut cty = h.clone();
    cty["cty"] = "application/json".into();
    assert!(matches!(edit(&cty, &j), Err(EnvelopeError::ContentType(_))));
    let mut crit = h.clone();
    crit["crit"] = serde_json::json!(["io.cncf.notary.signingScheme", "x-unknown"]);
    crit["x-unknown"] = "1".into();
    assert!(matches!(edit(&crit, &j), Err(EnvelopeError::UnknownCritical(c)) if c == "x-unknown"));
    let mut no_time = h.clone();
    no_time
        .as_object_mut()
        .expect("object")
        .remove("io.cncf.notary.signingTime");
    assert!(
        matches!(edit(&no_time, &j), Err(EnvelopeError::Header(m)) if m.contains("signingTime"))
    );
    let mut scheme_not_crit = h.clone();
    scheme_not_crit["crit"] = serde_json::json!(["io.cncf.notary.expiry"]);
    assert!(edit(&scheme_not_crit, &j).is_err());
    // the algorithm must be the one the leaf's key selects (RSA 2048 → PS256)
    h["alg"] = "PS384".into();
    let env = edit(&h, &j).expect("parses");
    let why = env.verify_integrity().expect_err("mismatch");
    assert!(why.contains("requires PS256"), "{why}");
    // general JWS serialisation / unknown members are not the flattened form
    j["signatures"] = serde_json::json!([]);
    assert!(matches!(
        Envelope::parse(&serde_json::to_vec(&j).expect("ser"), MEDIA_TYPE_JWS),
        Err(EnvelopeError::Jws(_))
    ));
    // truncated COSE
    let cose = crate::read("notation-go/internal/testdata/cose_signature.sig");
    for cut in [1, 10, cose.len() / 2, cose.len() - 1] {
        assert!(
            Envelope::parse(&cose[..cut], MEDIA_TYPE_COSE).is_err(),
            "cut at {cut}"
        );
    }
}

/// Envelopes whose payload carries annotations, and notation's blob signatures (JWS and COSE):
/// they parse, their signatures verify, and the payload is read as signed.
#[test]
fn annotated_and_blob_envelopes_parse_and_verify_integrity() {
    let bytes = crate::read(&format!("{MOCK}/sig_env_with_metadata.json"));
    let env = Envelope::parse(&bytes, MEDIA_TYPE_JWS).expect("parses");
    env.verify_integrity().expect("integrity");
    let target = env.target_artifact().expect("payload");
    assert_eq!(
        target
            .annotations
            .get("io.wabbit-networks.buildId")
            .map(String::as_str),
        Some("123")
    );
    for (name, media) in [
        ("blob.jws.sig", MEDIA_TYPE_JWS),
        ("blob.cose.sig", MEDIA_TYPE_COSE),
    ] {
        let bytes = crate::read(&format!("notation/test/e2e/testdata/signatures/{name}"));
        let env = Envelope::parse(&bytes, media).unwrap_or_else(|e| panic!("{name}: {e}"));
        env.verify_integrity()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // one flipped signature bit and integrity fails
        let mut sig = env.signature_value().to_vec();
        sig[0] ^= 1;
        let tampered = reparse_with_signature(&bytes, media, &sig).expect("re-encoded");
        assert!(
            tampered.verify_integrity().is_err(),
            "{name}: a tampered signature must not verify"
        );
    }
}

/// Re-encodes an envelope with another signature value of the same length.
fn reencode_with_signature(bytes: &[u8], media: &str, sig: &[u8]) -> Vec<u8> {
    use base64::Engine;
    if media == MEDIA_TYPE_JWS {
        let mut j: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        j["signature"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sig)
            .into();
        return serde_json::to_vec(&j).expect("json");
    }
    // COSE: the signature is the last byte string of the array; it ends the encoding
    let mut out = bytes.to_vec();
    let start = out.len() - sig.len();
    out[start..].copy_from_slice(sig);
    out
}

fn reparse_with_signature(bytes: &[u8], media: &str, sig: &[u8]) -> Option<Envelope> {
    Envelope::parse(&reencode_with_signature(bytes, media, sig), media).ok()
}

/// A payload whose target digest is not a digest is refused at parsing.
#[test]
fn payload_digest_must_be_a_digest() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut j: serde_json::Value = serde_json::from_slice(&crate::read(
        "notation-go/internal/testdata/jws_signature.sig",
    ))
    .expect("json");
    let payload = br#"{"targetArtifact":{"digest":"sha256:zz","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1}}"#;
    j["payload"] = b64.encode(payload).into();
    let err = Envelope::parse(&serde_json::to_vec(&j).expect("ser"), MEDIA_TYPE_JWS)
        .expect_err("bad digest");
    assert!(
        matches!(&err, EnvelopeError::Payload(m) if m.contains("targetArtifact.digest")),
        "{err}"
    );
}

/// Writes a vector file into `<tmp>/<sub>/` of a temporary trust store; returns its name.
fn tmp_dir_with(tmp: &tempfile::TempDir, sub: &str, vector: &str) -> String {
    let dir = tmp.path().join(sub);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let name = vector.rsplit('/').next().expect("name").to_string();
    std::fs::write(dir.join(&name), crate::read(vector)).expect("write");
    name
}
