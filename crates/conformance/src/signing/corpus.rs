//! The material of the verifier corpus, made at run time: the checker's test PKI (a trusted
//! root and leaves under it, an untrusted root, an expired leaf, a leaf whose
//! extendedKeyUsage is serverAuth), test images pushed to the registry, and signatures over them — made
//! by berth-trust's signer when they are well formed, assembled here byte by byte when the
//! point is that they are not (an unknown critical header, an algorithm that does not match
//! the key, a MAC instead of a signature, a corrupted signature).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_distribution::{BytesSource, Client, Repository};
use berth_oci::Digest;
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_trust::certgen::{self, CertParams};
use berth_trust::envelope::{EnvelopeFormat, PAYLOAD_CONTENT_TYPE};
use berth_trust::repository::{RegistrySignatures, SignatureRepository, SignatureUpload};
use berth_trust::{Certificate, KeySpec, SignOptions, SigningKey, TargetArtifact, Timestamp};
use rand::RngCore;

use super::Error;

const DAY: i64 = 86_400;

/// A key and its chain, leaf first, root last.
pub(crate) struct Identity {
    pub key: SigningKey,
    pub chain: Vec<Certificate>,
}

/// The checker's test PKI.
pub(crate) struct Pki {
    /// The root the trust stores hold.
    pub root: Certificate,
    root_key: SigningKey,
    /// A code-signing leaf under `root`, valid now.
    pub signer: Identity,
    /// A code-signing leaf under a root no trust store holds.
    pub untrusted: Identity,
    /// A code-signing leaf under `root` that expired yesterday (valid for the ten days
    /// before).
    pub expired: Identity,
    /// A leaf under `root` whose extendedKeyUsage is serverAuth, not codeSigning.
    pub server_auth: Identity,
}

fn params(cn: &str, from: i64, to: i64) -> CertParams {
    let mut p = CertParams::test(cn, 1);
    let now = Timestamp::now().0;
    p.not_before = Timestamp(now + from);
    p.not_after = Timestamp(now + to);
    p
}

impl Pki {
    pub fn new() -> Result<Pki, Error> {
        let pki = |e| Error::corpus("test PKI", e);
        let key =
            || SigningKey::generate(KeySpec::EcP256).map_err(|e| Error::corpus("test PKI", e));
        let root_key = key()?;
        let root = certgen::ca(&params("berth conformance root", -DAY, 30 * DAY), &root_key)
            .map_err(pki)?;
        let other_key = key()?;
        let other_root = certgen::ca(
            &params("berth conformance untrusted root", -DAY, 30 * DAY),
            &other_key,
        )
        .map_err(pki)?;
        let leaf = |cn: &str, from: i64, to: i64, issuer: &Certificate, issuer_key: &SigningKey| {
            let k = key()?;
            let c = certgen::leaf(&params(cn, from, to), &k, issuer, issuer_key).map_err(pki)?;
            Ok::<_, Error>(Identity {
                key: k,
                chain: vec![c, issuer.clone()],
            })
        };
        let signer = leaf("berth conformance signer", -DAY, 30 * DAY, &root, &root_key)?;
        let untrusted = leaf(
            "berth conformance signer",
            -DAY,
            30 * DAY,
            &other_root,
            &other_key,
        )?;
        let expired = leaf(
            "berth conformance expired",
            -11 * DAY,
            -DAY,
            &root,
            &root_key,
        )?;
        let k = key()?;
        let c = certgen::leaf_without_code_signing(
            &params("berth conformance server", -DAY, 30 * DAY),
            &k,
            &root,
            &root_key,
        )
        .map_err(pki)?;
        let server_auth = Identity {
            key: k,
            chain: vec![c, root.clone()],
        };
        Ok(Pki {
            root,
            root_key,
            signer,
            untrusted,
            expired,
            server_auth,
        })
    }
}

impl Pki {
    /// A new code-signing leaf under the root that expires `seconds` from now.
    pub fn short_lived(&self, seconds: i64) -> Result<Identity, Error> {
        let key =
            SigningKey::generate(KeySpec::EcP256).map_err(|e| Error::corpus("test PKI", e))?;
        let c = certgen::leaf(
            &params("berth conformance short-lived", -DAY, seconds),
            &key,
            &self.root,
            &self.root_key,
        )
        .map_err(|e| Error::corpus("test PKI", e))?;
        Ok(Identity {
            key,
            chain: vec![c, self.root.clone()],
        })
    }
}

/// A JWS envelope over `target` by `id`, countersigned by the timestamp authority.
pub(crate) async fn sign_timestamped(
    client: &Client,
    target: &TargetArtifact,
    id: &Identity,
    tsa: &super::verifier::Tsa,
) -> Result<Vec<u8>, Error> {
    let opts = SignOptions::new(EnvelopeFormat::Jws);
    let unfinished = berth_trust::sign::prepare(target, &id.key, &id.chain, &opts)
        .map_err(|e| Error::corpus("signature", e))?;
    let stamper = berth_trust::tsa::Timestamper::new(&tsa.url, tsa.root.clone())
        .map_err(|e| Error::corpus("timestamp authority", e))?;
    stamper
        .finish(client, unfinished)
        .await
        .map_err(|e| Error::corpus(format!("timestamp from {}", tsa.url), e))
}

/// A test image in the registry.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub repo: Repository,
    pub descriptor: Descriptor,
    pub target: TargetArtifact,
    /// `registry/repository@digest`.
    pub reference: String,
}

fn push_error(registry: &str, what: &str) -> impl FnOnce(berth_distribution::Error) -> Error {
    let (registry, what) = (registry.to_owned(), what.to_owned());
    move |e| Error::Push {
        what,
        registry,
        source: Box::new(e),
    }
}

async fn push_blob(
    client: &Client,
    repo: &Repository,
    registry: &str,
    data: Vec<u8>,
) -> Result<(Digest, u64), Error> {
    let digest = Digest::sha256_of(&data);
    let size = data.len() as u64;
    client
        .push_blob(repo, &digest, size, BytesSource(data.into()))
        .await
        .map_err(push_error(registry, &format!("blob {digest}")))?;
    Ok((digest, size))
}

/// Pushes a small image of random content (one layer, a config) to `repository`.
pub(crate) async fn push_image(
    client: &Client,
    registry: &str,
    repository: &str,
) -> Result<Image, Error> {
    let repo = Repository::new(registry, repository).map_err(push_error(
        registry,
        &format!("a test image to {repository}"),
    ))?;
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"org.berth.conformance.nonce": hex(&nonce)}},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let (config_digest, config_size) = push_blob(
        client,
        &repo,
        registry,
        serde_json::to_vec(&config).unwrap_or_default(),
    )
    .await?;
    let (layer_digest, layer_size) = push_blob(client, &repo, registry, nonce.to_vec()).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest.to_string(),
            "size": layer_size,
        }],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let digest = Digest::sha256_of(&bytes);
    client
        .put_manifest(
            &repo,
            digest.as_ref(),
            &bytes,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .map_err(push_error(
            registry,
            &format!("the test image {repository}"),
        ))?;
    let oci_digest: berth_oci::oci_spec::image::Digest = digest
        .to_string()
        .parse()
        .map_err(|e| Error::corpus("test image descriptor", e))?;
    let descriptor = Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, oci_digest);
    Ok(Image {
        reference: format!("{registry}/{repository}@{digest}"),
        target: TargetArtifact::from_descriptor(&descriptor),
        descriptor,
        repo,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A well-formed envelope over `target` by berth-trust's signer.
pub(crate) fn sign(
    target: &TargetArtifact,
    id: &Identity,
    format: EnvelopeFormat,
    adjust: impl FnOnce(&mut SignOptions),
) -> Result<Vec<u8>, Error> {
    let mut opts = SignOptions::new(format);
    opts.signing_agent = format!("berth-conformance/{}", env!("CARGO_PKG_VERSION"));
    adjust(&mut opts);
    berth_trust::sign(target, &id.key, &id.chain, &opts).map_err(|e| Error::corpus("signature", e))
}

/// How a hand-made JWS is signed.
pub(crate) enum RawSigner<'a> {
    /// ECDSA P-256 with SHA-256 by this key (what `ES256` means).
    Es256(&'a SigningKey),
    /// HMAC-SHA-256 with a key nobody is given (`HS256`: a MAC, not a signature).
    Hs256,
}

/// A JWS (flattened JSON) with exactly `protected` as its protected header over the payload
/// of `target`, the chain in `x5c`: for the envelopes berth-trust's signer refuses to make.
pub(crate) fn raw_jws(
    target: &TargetArtifact,
    protected: serde_json::Map<String, serde_json::Value>,
    signer: RawSigner<'_>,
    chain: &[Certificate],
) -> Result<Vec<u8>, Error> {
    let jws = JwsInput::new(target, &protected)?;
    let input = jws.signing_input();
    let signature = match signer {
        RawSigner::Es256(key) => es256(key, input.as_bytes())?,
        RawSigner::Hs256 => {
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
    };
    jws.assemble(&signature, chain)
}

/// A hand-made JWS before its signature: the encoded protected header and payload.
pub(crate) struct JwsInput {
    protected_b64: String,
    payload_b64: String,
}

impl JwsInput {
    /// `protected` exactly as given, over the payload of `target`.
    pub(crate) fn new(
        target: &TargetArtifact,
        protected: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<JwsInput, Error> {
        let payload =
            berth_trust::sign::payload(target).map_err(|e| Error::corpus("payload", e))?;
        Ok(JwsInput {
            protected_b64: URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(protected).map_err(|e| Error::corpus("protected header", e))?,
            ),
            payload_b64: URL_SAFE_NO_PAD.encode(payload),
        })
    }

    /// What is signed: `BASE64URL(protected) "." BASE64URL(payload)`.
    pub(crate) fn signing_input(&self) -> String {
        format!("{}.{}", self.protected_b64, self.payload_b64)
    }

    /// The flattened JSON envelope with `signature` and the chain in `x5c`.
    pub(crate) fn assemble(
        self,
        signature: &[u8],
        chain: &[Certificate],
    ) -> Result<Vec<u8>, Error> {
        let x5c: Vec<String> = chain.iter().map(|c| STANDARD.encode(c.der())).collect();
        let envelope = serde_json::json!({
            "payload": self.payload_b64,
            "protected": self.protected_b64,
            "header": {"x5c": x5c, "io.cncf.notary.signingAgent": "berth-conformance"},
            "signature": URL_SAFE_NO_PAD.encode(signature),
        });
        serde_json::to_vec(&envelope).map_err(|e| Error::corpus("envelope", e))
    }
}

/// A minimal CBOR writer for the hand-made COSE_Sign1 (RFC 8949 preferred encoding).
#[derive(Default)]
struct Cbor(Vec<u8>);

impl Cbor {
    fn head(&mut self, major: u8, n: u64) -> &mut Self {
        let m = major << 5;
        match n {
            0..=23 => self.0.push(m | n as u8),
            24..=0xff => self.0.extend_from_slice(&[m | 24, n as u8]),
            0x100..=0xffff => {
                self.0.push(m | 25);
                self.0.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.0.push(m | 26);
                self.0.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.0.push(m | 27);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.head(0, v.unsigned_abs())
        } else {
            self.head(1, (v + 1).unsigned_abs())
        }
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(2, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn text(&mut self, t: &str) -> &mut Self {
        self.head(3, t.len() as u64);
        self.0.extend_from_slice(t.as_bytes());
        self
    }
}

/// A COSE_Sign1 over the payload of `target`, signed ES256 by `key`, whose protected header
/// is berth-trust's for `notary.x509` plus `extra` (text label → text value), every `extra`
/// label listed in `crit`: for the envelopes berth-trust's signer refuses to make.
pub(crate) fn raw_cose_with_critical(
    target: &TargetArtifact,
    extra: &[(&str, &str)],
    key: &SigningKey,
    chain: &[Certificate],
) -> Result<Vec<u8>, Error> {
    let payload = berth_trust::sign::payload(target).map_err(|e| Error::corpus("payload", e))?;
    let mut p = Cbor::default();
    p.head(5, 5 + extra.len() as u64);
    p.int(1).int(-7); // alg: ES256
    p.int(2).head(4, 1 + extra.len() as u64);
    p.text("io.cncf.notary.signingScheme");
    for (label, _) in extra {
        p.text(label);
    }
    p.int(3).text(PAYLOAD_CONTENT_TYPE);
    p.text("io.cncf.notary.signingScheme").text("notary.x509");
    p.text("io.cncf.notary.signingTime")
        .head(6, 1)
        .int(Timestamp::now().0);
    for (label, value) in extra {
        p.text(label).text(value);
    }
    let protected = p.0;
    // Sig_structure = ["Signature1", protected, external_aad = h'', payload]
    let mut to_sign = Cbor::default();
    to_sign
        .head(4, 4)
        .text("Signature1")
        .bytes(&protected)
        .bytes(&[])
        .bytes(&payload);
    let signature = es256(key, &to_sign.0)?;
    let mut out = Cbor::default();
    out.head(6, 18).head(4, 4).bytes(&protected);
    out.head(5, 2).int(33).head(4, chain.len() as u64);
    for c in chain {
        out.bytes(c.der());
    }
    out.text("io.cncf.notary.signingAgent")
        .text("berth-conformance");
    out.bytes(&payload).bytes(&signature);
    Ok(out.0)
}

/// ECDSA P-256 with SHA-256 over `message` by `key` (fixed-width r||s, as both envelopes use).
fn es256(key: &SigningKey, message: &[u8]) -> Result<Vec<u8>, Error> {
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.to_pkcs8_der(),
        &rng,
    )
    .map_err(|e| Error::corpus("ES256 key", KeyRejected(e.to_string())))?;
    Ok(pair
        .sign(&rng, message)
        .map_err(|_| Error::corpus("ES256 signature", KeyRejected("signing failed".into())))?
        .as_ref()
        .to_vec())
}

/// The protected header berth-trust's signer writes for `notary.x509`, signed now.
pub(crate) fn standard_protected(alg: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("alg".into(), alg.into());
    m.insert("cty".into(), PAYLOAD_CONTENT_TYPE.into());
    m.insert("crit".into(), vec!["io.cncf.notary.signingScheme"].into());
    m.insert("io.cncf.notary.signingScheme".into(), "notary.x509".into());
    m.insert(
        "io.cncf.notary.signingTime".into(),
        Timestamp::now().to_string().into(),
    );
    m
}

/// `envelope` (JWS) with the last byte of its signature changed: integrity broken.
pub(crate) fn corrupt_jws(envelope: &[u8]) -> Result<Vec<u8>, Error> {
    let mut v: serde_json::Value =
        serde_json::from_slice(envelope).map_err(|e| Error::corpus("envelope to corrupt", e))?;
    let mut sig = v
        .get("signature")
        .and_then(|s| s.as_str())
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .unwrap_or_default();
    if let Some(last) = sig.last_mut() {
        *last ^= 0x01;
    }
    v["signature"] = URL_SAFE_NO_PAD.encode(sig).into();
    serde_json::to_vec(&v).map_err(|e| Error::corpus("corrupted envelope", e))
}

/// Pushes `envelope` as a signature of `subject` (its signature manifest names `subject`,
/// whatever the envelope signed) into `image`'s repository.
pub(crate) async fn push_signature(
    client: &Client,
    registry: &str,
    image: &Image,
    subject: &Descriptor,
    envelope: &[u8],
    format: EnvelopeFormat,
    chain: &[Certificate],
) -> Result<(), Error> {
    let sm = berth_trust::manifest::signature_manifest(
        subject,
        envelope,
        format,
        chain,
        Timestamp::now(),
    )
    .map_err(|e| Error::corpus("signature manifest", e))?;
    RegistrySignatures::new(client, image.repo.clone())
        .push_signature(SignatureUpload {
            envelope,
            manifest: &sm.bytes,
        })
        .await
        .map_err(|e| Error::Push {
            what: format!("a signature of {}", image.reference),
            registry: registry.to_owned(),
            source: Box::new(e),
        })?;
    Ok(())
}

/// A reason the corpus could not be made, as an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct KeyRejected(pub String);

/// Every member of `m` as pretty JSON.
pub(crate) fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The truststore of a case: stores by reference (`ca:NAME`, `tsa:NAME`) and their
/// certificates.
pub(crate) type Stores = BTreeMap<String, Vec<Certificate>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pki_has_what_each_case_needs() {
        let pki = Pki::new().unwrap();
        let now = Timestamp::now();
        assert!(pki.signer.chain[0].valid_at(now));
        assert!(!pki.expired.chain[0].valid_at(now));
        assert!(pki.expired.chain[0].valid_at(Timestamp(now.0 - 5 * DAY)));
        assert_eq!(pki.signer.chain[1], pki.root);
        assert_ne!(pki.untrusted.chain[1], pki.root);
        assert_eq!(
            pki.server_auth.chain[0].ext_key_usage.as_deref(),
            Some(&["1.3.6.1.5.5.7.3.1".to_owned()][..])
        );
    }

    #[test]
    fn the_hand_made_cose_is_a_valid_envelope_but_for_its_extra_critical_header() {
        let pki = Pki::new().unwrap();
        let target = TargetArtifact {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::sha256_of(b"x").to_string(),
            size: 1,
            annotations: BTreeMap::new(),
        };
        let plain =
            raw_cose_with_critical(&target, &[], &pki.signer.key, &pki.signer.chain).unwrap();
        let env =
            berth_trust::Envelope::parse(&plain, berth_trust::envelope::MEDIA_TYPE_COSE).unwrap();
        env.verify_integrity().unwrap();
        assert_eq!(env.target_artifact().unwrap(), target);
        let extra = [("io.cncf.conformance.unknownCritical", "x")];
        let bad =
            raw_cose_with_critical(&target, &extra, &pki.signer.key, &pki.signer.chain).unwrap();
        let e =
            berth_trust::Envelope::parse(&bad, berth_trust::envelope::MEDIA_TYPE_COSE).unwrap_err();
        assert!(e.to_string().contains("unknownCritical"), "{e}");
    }

    #[test]
    fn corruption_changes_only_the_signature() {
        let env = br#"{"payload":"e30","protected":"e30","signature":"AAAA"}"#;
        let bad: serde_json::Value = serde_json::from_slice(&corrupt_jws(env).unwrap()).unwrap();
        assert_eq!(bad["signature"], "AAAB");
        assert_eq!(bad["payload"], "e30");
    }
}
