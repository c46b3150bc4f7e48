//! A real PKI made at test time with the `openssl` command (a root CA, code-signing leaf
//! certificates, one of them a second certificate for an existing key), and real JWS
//! envelopes signed with those keys (ring, in-process), verified by berth's own `verify`:
//! the role tests evaluate real verdicts.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_test_support::ec_key;
use berth_trust::envelope::MEDIA_TYPE_JWS;
use berth_trust::policy::PolicyStatement;
use berth_trust::{
    Timestamp, TrustStore, VerifiedSignature, VerifyOptions, envelope::TargetArtifact, verify,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
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

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD.decode(body).expect("pem base64")
}

/// A signing key and its certificate.
pub struct Signer {
    pub name: String,
    key: EcdsaKeyPair,
    /// x5c: leaf DER, then the CA's
    chain: Vec<Vec<u8>>,
}

impl Signer {
    pub fn leaf_der(&self) -> &[u8] {
        &self.chain[0]
    }
}

pub struct Pki {
    /// keeps the keys and certificates until the process ends
    _dir: tempfile::TempDir,
    pub store: TrustStore,
    signers: Vec<Signer>,
}

impl Pki {
    pub fn signer(&self, name: &str) -> &Signer {
        self.signers
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no test signer {name}"))
    }
}

fn ca(dir: &Path, name: &str, subj: &str) {
    ec_key(dir, &format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subj,
            "-days",
            "3",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
}

/// A leaf for key `key` (made when missing) with `subj`, issued by CA `ca`.
fn leaf(dir: &Path, ca: &str, key: &str, cert: &str, subj: &str) -> (EcdsaKeyPair, Vec<u8>) {
    if !dir.join(format!("{key}.key")).exists() {
        ec_key(dir, &format!("{key}.key"));
    }
    std::fs::write(
        dir.join("leaf.ext"),
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nbasicConstraints=critical,CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{key}.key"),
            "-subj",
            subj,
            "-out",
            &format!("{cert}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{cert}.csr"),
            "-CA",
            &format!("{ca}.der"),
            "-CAform",
            "DER",
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-outform",
            "DER",
            "-out",
            &format!("{cert}.der"),
        ],
    );
    let pem = std::fs::read_to_string(dir.join(format!("{key}.key"))).expect("key");
    let kp = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pem_body(&pem),
        &SystemRandom::new(),
    )
    .expect("pkcs8");
    (
        kp,
        std::fs::read(dir.join(format!("{cert}.der"))).expect("cert"),
    )
}

/// The trust store directory name the test policies use: `ca:acme`.
pub const STORE: &str = "acme";

/// The shared PKI: root `acme` (trusted), root `other` (not in the store), and signers
///   dev, ci, prod, alice, bob, carol, mallory: keys of their own, under `acme`;
///   devci: a second certificate (CN=ci) for dev's key;
///   outsider: CN=ci under the untrusted `other` root.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        ca(d, "acme", "/C=US/ST=WA/O=Acme/CN=Acme Root");
        ca(d, "other", "/C=US/ST=WA/O=Acme/CN=Other Root");
        let store_dir = d.join("store/x509/ca").join(STORE);
        std::fs::create_dir_all(&store_dir).expect("mkdir");
        std::fs::copy(d.join("acme.der"), store_dir.join("acme.der")).expect("copy");
        let mut signers = Vec::new();
        for (name, key, ca_name, cn) in [
            ("dev", "dev", "acme", "dev"),
            ("ci", "ci", "acme", "ci"),
            ("prod", "prod", "acme", "prod"),
            ("alice", "alice", "acme", "alice"),
            ("bob", "bob", "acme", "bob"),
            ("carol", "carol", "acme", "carol"),
            ("mallory", "mallory", "acme", "mallory"),
            ("devci", "dev", "acme", "ci"),
            ("outsider", "outsider", "other", "ci"),
        ] {
            let subj = format!("/C=US/ST=WA/O=Acme/OU=builds/CN={cn}");
            let (kp, der) = leaf(d, ca_name, key, name, &subj);
            let ca_der = std::fs::read(d.join(format!("{ca_name}.der"))).expect("ca");
            signers.push(Signer {
                name: name.to_string(),
                key: kp,
                chain: vec![der, ca_der],
            });
        }
        Pki {
            store: TrustStore::new(d.join("store")),
            signers,
            _dir: dir,
        }
    })
}

/// The image every test signature is over.
pub fn target() -> TargetArtifact {
    TargetArtifact {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        digest: format!("sha256:{}", "b".repeat(64)),
        size: 517,
        annotations: Default::default(),
    }
}

/// A notary.x509 JWS envelope by `signer` over `artifact`.
pub fn envelope(signer: &Signer, artifact: &TargetArtifact) -> Vec<u8> {
    let protected = serde_json::json!({
        "alg": "ES256",
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": Timestamp::now().to_string(),
    });
    let payload = serde_json::json!({"targetArtifact": {
        "mediaType": artifact.media_type,
        "digest": artifact.digest,
        "size": artifact.size,
    }});
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&protected).expect("json"));
    let b = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("json"));
    let sig = signer
        .key
        .sign(&SystemRandom::new(), format!("{p}.{b}").as_bytes())
        .expect("sign");
    serde_json::to_vec(&serde_json::json!({
        "payload": b,
        "protected": p,
        "header": {"x5c": signer.chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()},
        "signature": URL_SAFE_NO_PAD.encode(sig.as_ref()),
    }))
    .expect("json")
}

/// The signature manifest digest the tests give a signature: its envelope's SHA-256.
pub fn digest_of(env: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, env);
    format!(
        "sha256:{}",
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Verifies `env` with berth's `verify` under `statement`, over the test target.
pub fn verified(env: &[u8], statement: &PolicyStatement) -> VerifiedSignature {
    let t = target();
    let opts = VerifyOptions {
        statement,
        artifact: Some(&t),
        now: Timestamp::now(),
        revocation: &berth_trust::revocation::HTTP,
    };
    let verdict = verify(env, MEDIA_TYPE_JWS, &pki().store, &opts);
    VerifiedSignature::new(digest_of(env), verdict)
}

/// A signature by the named signer over the test target, verified under `statement`.
pub fn signed_by(name: &str, statement: &PolicyStatement) -> VerifiedSignature {
    verified(&envelope(pki().signer(name), &target()), statement)
}

/// A signature whose signature bytes were altered after signing (a forgery).
pub fn forged_by(name: &str, statement: &PolicyStatement) -> VerifiedSignature {
    let env = envelope(pki().signer(name), &target());
    let mut v: serde_json::Value = serde_json::from_slice(&env).expect("json");
    let sig = v["signature"].as_str().expect("sig").to_string();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).expect("b64");
    raw[5] ^= 0x55;
    v["signature"] = URL_SAFE_NO_PAD.encode(raw).into();
    verified(&serde_json::to_vec(&v).expect("json"), statement)
}
