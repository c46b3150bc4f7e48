//! The signer rules: berth's signer passes every one (JWS and COSE, with and without expiry,
//! both signature-manifest forms), and each rule fails — alone — against a signature broken
//! in exactly that way (a re-signed header, a swapped subject, a dropped annotation, a leaf
//! certificate made by openssl with one wrong extension…).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_conformance::signing::signer::{HowPushed, RULES, RuleResult, check_signature};
use berth_oci::Digest;
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_test_support::requires_tool;
use berth_trust::cbor_writer::Item;
use berth_trust::keys::{KeySpec, SigningKey};
use berth_trust::manifest::signature_manifest;
use berth_trust::{Certificate, EnvelopeFormat, SignOptions, TargetArtifact, Timestamp, certgen};
use serde_json::{Map, Value, json};

/// A signing key and its chain (leaf first).
pub(crate) struct Pki {
    pub key: SigningKey,
    pub chain: Vec<Certificate>,
}

/// berth's test CA and a leaf under it.
pub(crate) fn pki() -> Pki {
    let key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let (leaf, ca, _) = certgen::generate_test_ca("rules", &key, 2).unwrap();
    Pki {
        key,
        chain: vec![leaf, ca],
    }
}

/// The descriptor of a random image manifest.
pub(crate) fn subject() -> Descriptor {
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::sha256_of(&rand::random::<[u8; 32]>()).to_string(), "size": 32},
        "layers": []})
    .to_string();
    Descriptor::new(
        MediaType::ImageManifest,
        m.len() as u64,
        Digest::sha256_of(m.as_bytes())
            .as_str()
            .parse::<berth_oci::oci_spec::image::Digest>()
            .unwrap(),
    )
}

fn target(subject: &Descriptor) -> TargetArtifact {
    TargetArtifact::from_descriptor(subject)
}

/// berth's signature of `subject`: (manifest, envelope).
pub(crate) fn berth_signs(subject: &Descriptor, p: &Pki, opts: &SignOptions) -> (Vec<u8>, Vec<u8>) {
    let env = berth_trust::sign(&target(subject), &p.key, &p.chain, opts).unwrap();
    let m = signature_manifest(subject, &env, opts.format, &p.chain, opts.signing_time).unwrap();
    (m.bytes, env)
}

fn failed(results: &[RuleResult]) -> BTreeSet<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.id.clone())
        .collect()
}

fn explain(results: &[RuleResult]) -> String {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: expected {}; got {}\n", r.id, r.expected, r.actual))
        .collect()
}

/// Exactly `want` fails.
#[track_caller]
fn fails_exactly(results: &[RuleResult], want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(failed(results), want, "{}", explain(results));
}

/// A JWS envelope edited and signed again with `key`; the manifest is made again over it.
pub(crate) fn jws_edit(
    subject: &Descriptor,
    p: &Pki,
    opts: &SignOptions,
    edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>, &mut Value),
) -> (Vec<u8>, Vec<u8>) {
    let (_, env) = berth_signs(subject, p, opts);
    let top: Value = serde_json::from_slice(&env).unwrap();
    let mut protected: Map<String, Value> = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(top["protected"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut header = top["header"].as_object().unwrap().clone();
    let mut payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(top["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    edit(&mut protected, &mut header, &mut payload);
    let env = jws_assemble(&p.key, &protected, &header, &payload);
    let m = signature_manifest(
        subject,
        &env,
        EnvelopeFormat::Jws,
        &p.chain,
        opts.signing_time,
    )
    .unwrap();
    (m.bytes, env)
}

fn jws_assemble(
    key: &SigningKey,
    protected: &Map<String, Value>,
    header: &Map<String, Value>,
    payload: &Value,
) -> Vec<u8> {
    let p64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(protected).unwrap());
    let q64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap());
    let sig = key
        .sign_envelope(format!("{p64}.{q64}").as_bytes())
        .unwrap();
    serde_json::to_vec(&json!({
        "payload": q64, "protected": p64, "header": header,
        "signature": URL_SAFE_NO_PAD.encode(sig),
    }))
    .unwrap()
}

/// The manifest edited as JSON (the envelope unchanged).
pub(crate) fn manifest_edit(manifest: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(manifest).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn check(m: &[u8], e: &[u8], s: &Descriptor) -> Vec<RuleResult> {
    check_signature(m, e, s, &HowPushed::ReferrersApi)
}

#[test]
fn berth_signatures_pass_every_rule() {
    let p = pki();
    let s = subject();
    let now = Timestamp::now();
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        for expiry in [None, Some(Timestamp(now.0 + 3600))] {
            let mut opts = SignOptions::new(format);
            opts.expiry = expiry;
            let (m, e) = berth_signs(&s, &p, &opts);
            let r = check(&m, &e, &s);
            fails_exactly(&r, &[]);
            assert_eq!(r.len(), RULES.len(), "one result per rule");
            let cose = format == EnvelopeFormat::Cose;
            assert!(r.iter().all(|x| x.spec_url.starts_with(
                "https://github.com/notaryproject/specifications/blob/v1.1.0/specs/"
            ) && x.spec_url.contains('#')));
            assert_eq!(
                r.iter()
                    .any(|x| x.spec_url.contains("signature-envelope-cose.md")),
                cose
            );
            let input = &r[0].input;
            assert!(input.contains("io.cncf.notary.signingScheme"), "{input}");
            assert!(input.contains("certificate chain:"), "{input}");
        }
    }
    // the signature manifest's artifactType form (the main branch's preferred one) passes too
    let (m, e) = berth_signs(&s, &p, &SignOptions::new(EnvelopeFormat::Jws));
    let m = manifest_edit(&m, |v| {
        v["artifactType"] = json!("application/vnd.cncf.notary.signature");
        v["config"]["mediaType"] = json!("application/vnd.oci.empty.v1+json");
    });
    let r = check(&m, &e, &s);
    fails_exactly(&r, &[]);
    let t = r.iter().find(|x| x.id == "manifest.type").unwrap();
    assert!(t.actual.contains("main branch prefers"), "{}", t.actual);
    // signatures given as files are not judged on how they were pushed
    let r = check_signature(&m, &e, &s, &HowPushed::Given);
    assert_eq!(r.len(), RULES.len() - 1);
}

#[test]
fn each_envelope_rule_fails_alone() {
    let p = pki();
    let s = subject();
    let opts = SignOptions::new(EnvelopeFormat::Jws);
    let t = opts.signing_time;
    // (rule, the one thing broken)
    type Edit = Box<dyn FnOnce(&mut Map<String, Value>, &mut Map<String, Value>, &mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "envelope.required-headers",
            Box::new(|p, _, _| {
                p.remove("io.cncf.notary.signingTime");
            }),
        ),
        (
            "envelope.signing-scheme",
            Box::new(|p, _, _| {
                p.insert(
                    "io.cncf.notary.signingScheme".into(),
                    json!("notary.x509.custom"),
                );
            }),
        ),
        (
            "envelope.crit",
            Box::new(|p, _, _| {
                p.insert(
                    "crit".into(),
                    json!(["io.cncf.notary.signingScheme", "io.cncf.notary.signingTime"]),
                );
            }),
        ),
        (
            "envelope.cty",
            Box::new(|p, _, _| {
                p.insert("cty".into(), json!("application/json"));
            }),
        ),
        (
            "envelope.alg",
            Box::new(|p, _, _| {
                p.insert("alg".into(), json!("ES384"));
            }),
        ),
        (
            "envelope.time-format",
            Box::new(|p, _, _| {
                p.insert(
                    "io.cncf.notary.signingTime".into(),
                    json!("2026-12-04 21:00:00"),
                );
            }),
        ),
        (
            "envelope.time-fraction",
            Box::new(move |p, _, _| {
                p.insert(
                    "io.cncf.notary.signingTime".into(),
                    json!(format!("{}", t).replace('Z', ".5Z")),
                );
            }),
        ),
        (
            "envelope.expiry",
            Box::new(move |p, _, _| {
                p.insert(
                    "io.cncf.notary.expiry".into(),
                    json!(Timestamp(t.0 - 60).to_string()),
                );
                p.insert(
                    "crit".into(),
                    json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]),
                );
            }),
        ),
        (
            "envelope.unprotected-headers",
            Box::new(|_, h, _| {
                h.insert("kid".into(), json!("key-1"));
            }),
        ),
        (
            "chain.present",
            Box::new(|_, h, _| {
                h["x5c"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(STANDARD.encode(b"not a certificate")));
            }),
        ),
        (
            "payload.structure",
            Box::new(|_, _, pl| {
                pl["targetArtifact"]["annotations"] = json!({"build": 7});
            }),
        ),
        (
            "payload.target",
            Box::new(|_, _, pl| {
                pl["targetArtifact"]["digest"] =
                    json!(Digest::sha256_of(b"another image").to_string());
            }),
        ),
    ];
    for (rule, edit) in cases {
        let (m, e) = jws_edit(&s, &p, &opts, edit);
        let r = check(&m, &e, &s);
        assert_eq!(
            failed(&r),
            BTreeSet::from([rule.to_owned()]),
            "{rule}: {}",
            explain(&r)
        );
        let f = r.iter().find(|x| x.id == rule).unwrap();
        assert!(!f.actual.is_empty() && !f.expected.is_empty());
    }
    // not flattened: an extra top-level member (the signature still verifies)
    let (m, e) = berth_signs(&s, &p, &opts);
    let mut v: Value = serde_json::from_slice(&e).unwrap();
    v["signatures"] = json!([]);
    let e2 = serde_json::to_vec(&v).unwrap();
    let m2 = signature_manifest(&s, &e2, EnvelopeFormat::Jws, &p.chain, t)
        .unwrap()
        .bytes;
    fails_exactly(&check(&m2, &e2, &s), &["envelope.structure"]);
    // a flipped signature byte
    let sig = v["signature"].as_str().unwrap().to_owned();
    let mut raw = URL_SAFE_NO_PAD.decode(&sig).unwrap();
    raw[5] ^= 1;
    v.as_object_mut().unwrap().remove("signatures");
    v["signature"] = json!(URL_SAFE_NO_PAD.encode(raw));
    let e3 = serde_json::to_vec(&v).unwrap();
    let m3 = signature_manifest(&s, &e3, EnvelopeFormat::Jws, &p.chain, t)
        .unwrap()
        .bytes;
    fails_exactly(&check(&m3, &e3, &s), &["envelope.signature"]);
    let _ = m;
}

#[test]
fn cose_structure_faults_fail_the_structure_rule_alone() {
    let p = pki();
    let s = subject();
    let opts = SignOptions::new(EnvelopeFormat::Cose);
    let (_, e) = berth_signs(&s, &p, &opts);
    // the same COSE_Sign1 array, untagged: decode it and write it again without tag 18
    let untagged = {
        let v = berth_trust::cbor::decode(&e).unwrap();
        let berth_trust::cbor::Value::Tag(18, inner) = v else {
            panic!("berth's COSE envelope is not tagged")
        };
        let berth_trust::cbor::Value::Array(items) = *inner else {
            panic!()
        };
        let item = |v: &berth_trust::cbor::Value<'_>| -> Item {
            match v {
                berth_trust::cbor::Value::Bytes(b) => Item::Bytes(b.to_vec()),
                berth_trust::cbor::Value::Map(entries) => Item::Map(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            let key = match k {
                                berth_trust::cbor::Value::Text(t) => Item::text(t),
                                other => Item::Int(other.as_i64().unwrap()),
                            };
                            let val = match v {
                                berth_trust::cbor::Value::Text(t) => Item::text(t),
                                berth_trust::cbor::Value::Array(a) => Item::Array(
                                    a.iter()
                                        .map(|c| match c {
                                            berth_trust::cbor::Value::Bytes(b) => {
                                                Item::Bytes(b.to_vec())
                                            }
                                            _ => panic!(),
                                        })
                                        .collect(),
                                ),
                                _ => panic!(),
                            };
                            (key, val)
                        })
                        .collect(),
                ),
                _ => panic!(),
            }
        };
        Item::Array(items.iter().map(item).collect()).encode()
    };
    let m = signature_manifest(
        &s,
        &untagged,
        EnvelopeFormat::Cose,
        &p.chain,
        opts.signing_time,
    )
    .unwrap()
    .bytes;
    let r = check(&m, &untagged, &s);
    fails_exactly(&r, &["envelope.structure"]);
    assert!(r[0].actual.contains("tag 18"), "{}", r[0].actual);
    assert!(
        r[0].spec_url
            .contains("signature-envelope-cose.md#signature-envelope")
    );
}

#[test]
fn each_manifest_rule_fails_alone() {
    let p = pki();
    let s = subject();
    let (m, e) = berth_signs(&s, &p, &SignOptions::new(EnvelopeFormat::Jws));
    let other = Digest::sha256_of(b"other").to_string();
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "manifest.media-type",
            Box::new(|v| {
                v["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
            }),
        ),
        (
            "manifest.type",
            Box::new(|v| {
                v["config"]["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
            }),
        ),
        (
            "manifest.config",
            Box::new(|v| {
                v["config"]["digest"] = json!(Digest::sha256_of(b"{\"a\":1}").to_string());
                v["config"]["size"] = json!(7);
            }),
        ),
        (
            "manifest.layer",
            Box::new(|v| {
                let l = v["layers"][0].clone();
                v["layers"].as_array_mut().unwrap().push(l);
            }),
        ),
        (
            "manifest.subject",
            Box::new(move |v| {
                v["subject"]["digest"] = json!(other);
            }),
        ),
        (
            "manifest.thumbprints",
            Box::new(|v| {
                v["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("io.cncf.notary.x509chain.thumbprint#S256");
            }),
        ),
    ];
    for (rule, edit) in cases {
        let m2 = manifest_edit(&m, edit);
        let r = check(&m2, &e, &s);
        assert_eq!(
            failed(&r),
            BTreeSet::from([rule.to_owned()]),
            "{rule}: {}",
            explain(&r)
        );
    }
    // the thumbprints of a different chain order
    let m2 = manifest_edit(&m, |v| {
        let a: Vec<String> = serde_json::from_str(
            v["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let rev: Vec<&String> = a.iter().rev().collect();
        v["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"] =
            json!(serde_json::to_string(&rev).unwrap());
    });
    fails_exactly(&check(&m2, &e, &s), &["manifest.thumbprints"]);
    // found under some tag, listed by neither the referrers API nor the tag schema
    let r = check_signature(&m, &e, &s, &HowPushed::NotListed("under the tag x".into()));
    fails_exactly(&r, &["manifest.discoverable"]);
}

#[test]
fn a_chain_without_its_root_fails_the_order_rule_alone() {
    let p = pki();
    let s = subject();
    let leaf_only = Pki {
        key: SigningKey::from_pkcs8_der(&p.key.to_pkcs8_der()).unwrap(),
        chain: vec![p.chain[0].clone()],
    };
    let (m, e) = berth_signs(&s, &leaf_only, &SignOptions::new(EnvelopeFormat::Jws));
    fails_exactly(&check(&m, &e, &s), &["chain.order"]);
    // signed before the certificates were valid
    let mut opts = SignOptions::new(EnvelopeFormat::Cose);
    opts.signing_time = Timestamp(opts.signing_time.0 - 10 * 86_400);
    let (m, e) = berth_signs(&s, &p, &opts);
    fails_exactly(&check(&m, &e, &s), &["chain.validity"]);
}

/// openssl: a key (`ec:P-256`, `ec:P-224`, `rsa:2048`…) and a certificate with the
/// extensions `ext` (an openssl config section body), self-signed or issued by `issuer`
/// (cert, key). Returns (certificate PEM path, key PEM path).
fn openssl_cert(
    dir: &Path,
    name: &str,
    key: &str,
    ext: &str,
    issuer: Option<(&Path, &Path)>,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.pem"));
    let ext_path = dir.join(format!("{name}.ext"));
    berth_fsutil::atomic_write(&ext_path, format!("[v3]\n{ext}\n").as_bytes()).unwrap();
    let mut genkey = Command::new("openssl");
    genkey.args(["genpkey", "-out"]).arg(&key_path);
    match key.split_once(':') {
        Some(("ec", curve)) => genkey.args([
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
        ]),
        Some(("rsa", bits)) => genkey.args([
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
        ]),
        _ => panic!("key {key}"),
    };
    run(&mut genkey);
    let csr = dir.join(format!("{name}.csr"));
    run(Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(&key_path)
        .args(["-subj", &format!("/C=US/O=Notary/CN={name}"), "-out"])
        .arg(&csr));
    let mut x = Command::new("openssl");
    x.args(["x509", "-req", "-in"])
        .arg(&csr)
        .args(["-days", "2", "-sha256", "-extensions", "v3", "-extfile"])
        .arg(&ext_path)
        .arg("-out")
        .arg(&cert_path);
    match issuer {
        Some((c, k)) => x
            .arg("-CA")
            .arg(c)
            .arg("-CAkey")
            .arg(k)
            .arg("-CAcreateserial"),
        None => x.arg("-key").arg(&key_path),
    };
    run(&mut x);
    (cert_path, key_path)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash";
const LEAF_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning";

#[test]
fn each_certificate_rule_fails_alone_with_an_openssl_chain() {
    requires_tool!("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = subject();
    let (ca, ca_key) = openssl_cert(d, "ca", "ec:P-256", CA_EXT, None);
    let chain_of = |leaf: &Path, ca: &Path| -> Vec<Certificate> {
        let mut c = Certificate::parse_many(&std::fs::read(leaf).unwrap()).unwrap();
        c.extend(Certificate::parse_many(&std::fs::read(ca).unwrap()).unwrap());
        c
    };
    let sign_with = |leaf: &Path, key: &Path, ca: &Path| {
        let p = Pki {
            key: SigningKey::from_pem_or_der(&std::fs::read(key).unwrap()).unwrap(),
            chain: chain_of(leaf, ca),
        };
        berth_signs(&s, &p, &SignOptions::new(EnvelopeFormat::Jws))
    };
    // the baseline: openssl's chain made as the specification wants passes
    let (leaf, key) = openssl_cert(d, "good", "ec:P-256", LEAF_EXT, Some((&ca, &ca_key)));
    let (m, e) = sign_with(&leaf, &key, &ca);
    fails_exactly(&check(&m, &e, &s), &[]);
    let cases = [
        (
            "chain.leaf-basic-constraints",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning",
        ),
        (
            "chain.leaf-key-usage",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning",
        ),
        (
            "chain.leaf-key-usage",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=codeSigning",
        ),
        (
            "chain.leaf-eku",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,serverAuth",
        ),
    ];
    for (i, (rule, ext)) in cases.into_iter().enumerate() {
        let (leaf, key) = openssl_cert(
            d,
            &format!("leaf{i}"),
            "ec:P-256",
            ext,
            Some((&ca, &ca_key)),
        );
        let (m, e) = sign_with(&leaf, &key, &ca);
        let r = check(&m, &e, &s);
        assert_eq!(
            failed(&r),
            BTreeSet::from([rule.to_owned()]),
            "{rule}: {}",
            explain(&r)
        );
    }
    // a CA without keyCertSign
    let (bad_ca, bad_ca_key) = openssl_cert(
        d,
        "badca",
        "ec:P-256",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature",
        None,
    );
    let (leaf, key) = openssl_cert(
        d,
        "leafbadca",
        "ec:P-256",
        LEAF_EXT,
        Some((&bad_ca, &bad_ca_key)),
    );
    let (m, e) = sign_with(&leaf, &key, &bad_ca);
    fails_exactly(&check(&m, &e, &s), &["chain.ca-constraints"]);
    // an RSA 1024 leaf, the envelope PS256 by its key (openssl signs: ring cannot): outside
    // the key table, so no alg can match and its signature cannot be checked either (ring
    // verifies RSA from 2048 bits): three rules, each for its reason
    let (leaf, leaf_key) = openssl_cert(d, "weak", "rsa:1024", LEAF_EXT, Some((&ca, &ca_key)));
    let chain = chain_of(&leaf, &ca);
    let (e, m) = openssl_ps256_jws(d, &s, &leaf_key, &chain);
    let r = check(&m, &e, &s);
    fails_exactly(
        &r,
        &["chain.key-size", "envelope.alg", "envelope.signature"],
    );
    let ks = r.iter().find(|x| x.id == "chain.key-size").unwrap();
    assert!(ks.actual.contains("certificate 0"), "{}", ks.actual);
    // the same key size as the root's, under which an EC P-256 leaf signs: the key size, and
    // the order rule, which cannot verify the certificates the weak root signed (ring
    // verifies RSA from 2048 bits)
    let (weak_ca, weak_ca_key) = openssl_cert(d, "weakca", "rsa:1024", CA_EXT, None);
    let (leaf, key) = openssl_cert(
        d,
        "leafweakca",
        "ec:P-256",
        LEAF_EXT,
        Some((&weak_ca, &weak_ca_key)),
    );
    let (m, e) = sign_with(&leaf, &key, &weak_ca);
    let r = check(&m, &e, &s);
    fails_exactly(&r, &["chain.key-size", "chain.order"]);
    let ks = r.iter().find(|x| x.id == "chain.key-size").unwrap();
    assert!(
        ks.actual.contains("certificate 1: RSA 1024"),
        "{}",
        ks.actual
    );
}

/// A JWS over `subject`, PS256 by the RSA key in `key` (PEM) signed by openssl, `chain` in
/// `x5c`: (envelope, signature manifest).
fn openssl_ps256_jws(
    dir: &Path,
    subject: &Descriptor,
    key: &Path,
    chain: &[Certificate],
) -> (Vec<u8>, Vec<u8>) {
    let mut protected = Map::new();
    protected.insert("alg".into(), "PS256".into());
    protected.insert(
        "cty".into(),
        berth_trust::envelope::PAYLOAD_CONTENT_TYPE.into(),
    );
    protected.insert("crit".into(), json!(["io.cncf.notary.signingScheme"]));
    protected.insert("io.cncf.notary.signingScheme".into(), "notary.x509".into());
    protected.insert(
        "io.cncf.notary.signingTime".into(),
        Timestamp::now().to_string().into(),
    );
    let p64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&protected).unwrap());
    let q64 = URL_SAFE_NO_PAD.encode(berth_trust::sign::payload(&target(subject)).unwrap());
    let input = dir.join("ps256.in");
    let sig = dir.join("ps256.sig");
    berth_fsutil::atomic_write(&input, format!("{p64}.{q64}").as_bytes()).unwrap();
    run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .args([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-sigopt",
            "rsa_mgf1_md:sha256",
            "-out",
        ])
        .arg(&sig)
        .arg(&input));
    let x5c: Vec<String> = chain.iter().map(|c| STANDARD.encode(c.der())).collect();
    let e = serde_json::to_vec(&json!({
        "payload": q64, "protected": p64,
        "header": {"x5c": x5c, "io.cncf.notary.signingAgent": "openssl"},
        "signature": URL_SAFE_NO_PAD.encode(std::fs::read(&sig).unwrap()),
    }))
    .unwrap();
    let m = signature_manifest(subject, &e, EnvelopeFormat::Jws, chain, Timestamp::now())
        .unwrap()
        .bytes;
    (e, m)
}

#[test]
fn mutated_signatures_never_panic_and_always_get_every_rule() {
    use rand::Rng;
    let p = pki();
    let s = subject();
    let mut rng = rand::rng();
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        let (m, e) = berth_signs(&s, &p, &SignOptions::new(format));
        for i in 0..300 {
            let (mut m2, mut e2) = (m.clone(), e.clone());
            let target = if i % 3 == 0 { &mut m2 } else { &mut e2 };
            match i % 4 {
                0 => {
                    let at = rng.random_range(0..target.len());
                    target[at] ^= 1 << rng.random_range(0..8);
                }
                1 => target.truncate(rng.random_range(0..target.len())),
                2 => {
                    let at = rng.random_range(0..target.len());
                    target.insert(at, rng.random());
                }
                _ => {
                    let at = rng.random_range(0..target.len());
                    let n = rng.random_range(1..8).min(target.len() - at);
                    target.drain(at..at + n);
                }
            }
            let r = check(&m2, &e2, &s);
            assert_eq!(r.len(), RULES.len());
            // what berth's verifier refuses, some rule refuses too
            let refused = berth_trust::Envelope::parse(&e2, format.media_type())
                .map_err(|e| e.to_string())
                .and_then(|env| env.verify_integrity())
                .err();
            if let Some(why) = refused {
                assert!(
                    r.iter().any(|x| !x.passed),
                    "berth's verifier refuses ({why}) but every rule passed"
                );
            }
            // a change to the signed bytes cannot keep every rule passing
            if e2 != e && r.iter().all(|x| x.passed) {
                // only bytes outside what is signed and judged may change unnoticed
                // (JSON whitespace, an unprotected header value); the envelope must still
                // be one berth's own verifier accepts
                berth_trust::Envelope::parse(&e2, format.media_type())
                    .and_then(|env| {
                        env.verify_integrity()
                            .map_err(berth_trust::EnvelopeError::Header)
                    })
                    .unwrap_or_else(|err| {
                        panic!("every rule passed for an envelope berth refuses: {err}")
                    });
            }
        }
    }
}

#[test]
fn other_valid_forms_pass_every_rule() {
    let p = pki();
    let s = subject();
    // the signing-authority scheme: authenticSigningTime, critical
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        let mut opts = SignOptions::new(format);
        opts.signing_scheme = berth_trust::SigningScheme::X509SigningAuthority;
        let (m, e) = berth_signs(&s, &p, &opts);
        fails_exactly(&check(&m, &e, &s), &[]);
    }
    // a COSE_Sign1 with its x5chain in the protected header (signature-envelope-cose.md:
    // "Optionally, this header can be presented in the protected header"). When this was
    // written, berth's own verifier read x5chain from the unprotected header only and refused
    // this envelope ("x5c is empty"): a verifier deviation, not a signer fault.
    let t = Timestamp::now();
    let payload = berth_trust::sign::payload(&target(&s)).unwrap();
    let protected = Item::Map(vec![
        (Item::Int(1), Item::Int(-7)),
        (
            Item::Int(2),
            Item::Array(vec![Item::text("io.cncf.notary.signingScheme")]),
        ),
        (
            Item::Int(3),
            Item::text("application/vnd.cncf.notary.payload.v1+json"),
        ),
        (
            Item::Int(33),
            Item::Array(
                p.chain
                    .iter()
                    .map(|c| Item::Bytes(c.der().to_vec()))
                    .collect(),
            ),
        ),
        (
            Item::text("io.cncf.notary.signingScheme"),
            Item::text("notary.x509"),
        ),
        (
            Item::text("io.cncf.notary.signingTime"),
            Item::Tag(1, Box::new(Item::Int(t.0))),
        ),
    ])
    .encode();
    let sig = p
        .key
        .sign_envelope(&berth_trust::cbor::cose_sig_structure(&protected, &payload))
        .unwrap();
    let e = Item::Tag(
        18,
        Box::new(Item::Array(vec![
            Item::Bytes(protected),
            Item::Map(vec![]),
            Item::Bytes(payload),
            Item::Bytes(sig),
        ])),
    )
    .encode();
    let m = signature_manifest(&s, &e, EnvelopeFormat::Cose, &p.chain, t)
        .unwrap()
        .bytes;
    let r = check(&m, &e, &s);
    fails_exactly(&r, &[]);
    assert!(r[0].input.contains("x5chain (33)"), "{}", r[0].input);
}
