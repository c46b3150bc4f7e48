//! Producing Notary Project signature envelopes (signature-specification.md v1.1): the payload
//! `{"targetArtifact": <descriptor>}`, and either the JWS flattened JSON serialisation
//! (signature-envelope-jws.md) or COSE_Sign1 (signature-envelope-cose.md), with the protected
//! headers the specification requires:
//!
//! - `alg` (from the signing key: ES256/ES384, PS256/384/512 by RSA size), `cty`
//!   (`application/vnd.cncf.notary.payload.v1+json`), `crit`;
//! - `io.cncf.notary.signingScheme` (critical);
//! - `io.cncf.notary.signingTime` for `notary.x509` (not critical), or
//!   `io.cncf.notary.authenticSigningTime` for `notary.x509.signingAuthority` (critical);
//! - `io.cncf.notary.expiry` when asked for (critical).
//!
//! JWS times are RFC 3339 with seconds (`2026-12-04T17:52:39Z`), COSE times CBOR tag 1 integer
//! seconds. The chain goes in the unprotected `x5c` (JWS) / label 33 (COSE, always an array),
//! with `io.cncf.notary.signingAgent`. ECDSA signatures are the fixed-width r||s both envelopes
//! use. Every envelope is parsed back by [`Envelope::parse`] and its signature checked before
//! it is returned.

use crate::cbor;
use crate::cbor_writer::Item;
use crate::cert::Certificate;
use crate::envelope::{
    Envelope, EnvelopeFormat, H_AUTHENTIC_SIGNING_TIME, H_EXPIRY, H_SIGNING_AGENT,
    H_SIGNING_SCHEME, H_SIGNING_TIME, H_TIMESTAMP_SIGNATURE, PAYLOAD_CONTENT_TYPE,
    SignatureAlgorithm, SigningScheme, TargetArtifact,
};
use crate::keys::{KeyError, SigningKey};
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use std::collections::BTreeMap;

/// The default `io.cncf.notary.signingAgent`: `berth/VERSION`.
pub fn default_signing_agent() -> String {
    format!("berth/{}", env!("CARGO_PKG_VERSION"))
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// JWS (notation's default) or COSE.
    pub format: EnvelopeFormat,
    /// `notary.x509` (the default) or `notary.x509.signingAuthority`.
    pub signing_scheme: SigningScheme,
    /// `io.cncf.notary.expiry`: after this time verifiers refuse the signature.
    pub expiry: Option<Timestamp>,
    /// `io.cncf.notary.signingAgent`.
    pub signing_agent: String,
    /// The signing time (`signingTime`, or `authenticSigningTime` for the signing-authority
    /// scheme).
    pub signing_time: Timestamp,
}

impl SignOptions {
    /// `notary.x509`, no expiry, agent `berth/VERSION`, signed now.
    pub fn new(format: EnvelopeFormat) -> SignOptions {
        SignOptions {
            format,
            signing_scheme: SigningScheme::X509,
            expiry: None,
            signing_agent: default_signing_agent(),
            signing_time: Timestamp::now(),
        }
    }
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions::new(EnvelopeFormat::Jws)
    }
}

/// Why nothing was signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot sign: {0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the envelope berth made does not verify (a bug in berth): {0}")]
    SelfCheck(String),
    #[error("failed to timestamp the signature")]
    Timestamp(#[from] crate::tsa::TsaError),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PayloadOut<'a> {
    target_artifact: TargetOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetOut<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// The payload bytes for a target.
pub fn payload(target: &TargetArtifact) -> Result<Vec<u8>, SignError> {
    berth_oci::Digest::parse(&target.digest)
        .map_err(|e| SignError::Invalid(format!("target digest {:?}: {e}", target.digest)))?;
    if target.media_type.is_empty() {
        return Err(SignError::Invalid(
            "the target's media type is empty".to_string(),
        ));
    }
    serde_json::to_vec(&PayloadOut {
        target_artifact: TargetOut {
            media_type: &target.media_type,
            digest: &target.digest,
            size: target.size,
            annotations: &target.annotations,
        },
    })
    .map_err(|e| SignError::Invalid(format!("payload: {e}")))
}

impl TargetArtifact {
    /// The target of a signature over the manifest an OCI descriptor points at.
    pub fn from_descriptor(d: &berth_oci::oci_spec::image::Descriptor) -> TargetArtifact {
        TargetArtifact {
            media_type: d.media_type().to_string(),
            digest: d.digest().to_string(),
            size: d.size(),
            annotations: d
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }
    }
}

/// Signs `target` with `key`, whose certificate chain (leaf first, up to the root) is `chain`;
/// returns the envelope bytes (media type: `opts.format.media_type()`).
pub fn sign(
    target: &TargetArtifact,
    key: &SigningKey,
    chain: &[Certificate],
    opts: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    prepare(target, key, chain, opts)?.finish(None)
}

/// A signature made but not yet serialised: what a timestamp countersigns (its signature
/// value) is known, its unprotected header is still open.
#[derive(Debug, Clone)]
pub struct Unfinished {
    format: EnvelopeFormat,
    scheme: SigningScheme,
    algorithm: SignatureAlgorithm,
    /// JWS: BASE64URL(protected); COSE: the protected header's bytes.
    protected: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
    signing_agent: String,
}

/// Signs `target` as [`sign`] does and stops before the unprotected header is written, so
/// that a timestamp over the signature value can be added ([`crate::tsa`]).
pub fn prepare(
    target: &TargetArtifact,
    key: &SigningKey,
    chain: &[Certificate],
    opts: &SignOptions,
) -> Result<Unfinished, SignError> {
    let leaf = chain
        .first()
        .ok_or_else(|| SignError::Invalid("the certificate chain is empty".to_string()))?;
    if chain.len() > crate::envelope::MAX_CHAIN_LEN {
        return Err(SignError::Invalid(format!(
            "the certificate chain has {} certificates, over the limit of {}",
            chain.len(),
            crate::envelope::MAX_CHAIN_LEN
        )));
    }
    if !key.matches(leaf) {
        return Err(SignError::Invalid(format!(
            "the signing key ({}) is not the key of the signing certificate {:?} ({})",
            key.spec(),
            leaf.subject.to_string(),
            leaf.public_key.describe()
        )));
    }
    if let Some(exp) = opts.expiry
        && exp <= opts.signing_time
    {
        return Err(SignError::Invalid(format!(
            "expiry {exp} is not after the signing time {}",
            opts.signing_time
        )));
    }
    let payload = payload(target)?;
    let alg = key.signature_algorithm();
    let (protected, signature) = match opts.format {
        EnvelopeFormat::Jws => sign_jws(&payload, alg, key, opts)?,
        EnvelopeFormat::Cose => sign_cose(&payload, alg, key, opts)?,
    };
    Ok(Unfinished {
        format: opts.format,
        scheme: opts.signing_scheme,
        algorithm: alg,
        protected,
        payload,
        signature,
        chain_der: chain.iter().map(|c| c.der().to_vec()).collect(),
        signing_agent: opts.signing_agent.clone(),
    })
}

impl Unfinished {
    /// The signature value a timestamp countersigns (its messageImprint is a hash of it).
    pub fn signature_value(&self) -> &[u8] {
        &self.signature
    }

    /// The signature algorithm (its hash is the one the timestamp request uses).
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The envelope's format.
    pub fn format(&self) -> EnvelopeFormat {
        self.format
    }

    /// The envelope bytes, with `timestamp` (a DER RFC 3161 token over the signature value)
    /// as the unprotected `io.cncf.notary.timestampSignature` header where notation puts it:
    /// base64 in the JWS `header`, a byte string in the COSE unprotected map. Timestamps
    /// are for `notary.x509` signatures only (the signing-authority scheme's time is
    /// authentic already). The envelope is parsed back and its signature checked.
    pub fn finish(self, timestamp: Option<&[u8]>) -> Result<Vec<u8>, SignError> {
        if timestamp.is_some() && self.scheme != SigningScheme::X509 {
            return Err(SignError::Invalid(format!(
                "a timestamp countersigns notary.x509 signatures only, not {}",
                self.scheme.as_str()
            )));
        }
        let bytes = match self.format {
            EnvelopeFormat::Jws => self.encode_jws(timestamp)?,
            EnvelopeFormat::Cose => self.encode_cose(timestamp),
        };
        // self-check: what we produce must parse and verify as any verifier would read it
        let env = Envelope::parse(&bytes, self.format.media_type())
            .map_err(|e| SignError::SelfCheck(e.to_string()))?;
        env.verify_integrity().map_err(SignError::SelfCheck)?;
        Ok(bytes)
    }

    fn encode_jws(&self, timestamp: Option<&[u8]>) -> Result<Vec<u8>, SignError> {
        let mut header = serde_json::Map::new();
        header.insert(
            "x5c".into(),
            self.chain_der
                .iter()
                .map(|c| STANDARD.encode(c))
                .collect::<Vec<_>>()
                .into(),
        );
        header.insert(H_SIGNING_AGENT.into(), self.signing_agent.clone().into());
        if let Some(t) = timestamp {
            header.insert(H_TIMESTAMP_SIGNATURE.into(), STANDARD.encode(t).into());
        }
        let envelope = serde_json::json!({
            "payload": URL_SAFE_NO_PAD.encode(&self.payload),
            "protected": String::from_utf8_lossy(&self.protected),
            "header": header,
            "signature": URL_SAFE_NO_PAD.encode(&self.signature),
        });
        serde_json::to_vec(&envelope).map_err(|e| SignError::Invalid(format!("envelope: {e}")))
    }

    fn encode_cose(&self, timestamp: Option<&[u8]>) -> Vec<u8> {
        let mut unprotected = vec![
            (
                Item::Int(33),
                Item::Array(
                    self.chain_der
                        .iter()
                        .map(|c| Item::Bytes(c.clone()))
                        .collect(),
                ),
            ),
            (Item::text(H_SIGNING_AGENT), Item::text(&self.signing_agent)),
        ];
        if let Some(t) = timestamp {
            unprotected.push((Item::text(H_TIMESTAMP_SIGNATURE), Item::Bytes(t.to_vec())));
        }
        Item::Tag(
            18,
            Box::new(Item::Array(vec![
                Item::Bytes(self.protected.clone()),
                Item::Map(unprotected),
                Item::Bytes(self.payload.clone()),
                Item::Bytes(self.signature.clone()),
            ])),
        )
        .encode()
    }
}

/// The `crit` list: signingScheme, then the other critical headers present.
fn critical(opts: &SignOptions) -> Vec<&'static str> {
    let mut crit = vec![H_SIGNING_SCHEME];
    if opts.signing_scheme == SigningScheme::X509SigningAuthority {
        crit.push(H_AUTHENTIC_SIGNING_TIME);
    }
    if opts.expiry.is_some() {
        crit.push(H_EXPIRY);
    }
    crit
}

fn time_header(opts: &SignOptions) -> &'static str {
    match opts.signing_scheme {
        SigningScheme::X509 => H_SIGNING_TIME,
        SigningScheme::X509SigningAuthority => H_AUTHENTIC_SIGNING_TIME,
    }
}

/// The JWS protected header (BASE64URL) and the signature over the signing input.
fn sign_jws(
    payload: &[u8],
    alg: SignatureAlgorithm,
    key: &SigningKey,
    opts: &SignOptions,
) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    let mut protected = serde_json::Map::new();
    protected.insert("alg".into(), alg.name().into());
    protected.insert("cty".into(), PAYLOAD_CONTENT_TYPE.into());
    protected.insert("crit".into(), critical(opts).into());
    protected.insert(H_SIGNING_SCHEME.into(), opts.signing_scheme.as_str().into());
    protected.insert(
        time_header(opts).into(),
        opts.signing_time.to_string().into(),
    );
    if let Some(exp) = opts.expiry {
        protected.insert(H_EXPIRY.into(), exp.to_string().into());
    }
    let protected_b64 = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&protected)
            .map_err(|e| SignError::Invalid(format!("protected header: {e}")))?,
    );
    let payload_b64 = URL_SAFE_NO_PAD.encode(payload);
    let signing_input = format!("{protected_b64}.{payload_b64}");
    let signature = key.sign_envelope(signing_input.as_bytes())?;
    Ok((protected_b64.into_bytes(), signature))
}

fn cose_alg(alg: SignatureAlgorithm) -> i64 {
    match alg {
        SignatureAlgorithm::Ps256 => -37,
        SignatureAlgorithm::Ps384 => -38,
        SignatureAlgorithm::Ps512 => -39,
        SignatureAlgorithm::Es256 => -7,
        SignatureAlgorithm::Es384 => -35,
        SignatureAlgorithm::Es512 => -36,
    }
}

/// The COSE protected header's bytes and the signature over the Sig_structure.
fn sign_cose(
    payload: &[u8],
    alg: SignatureAlgorithm,
    key: &SigningKey,
    opts: &SignOptions,
) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    let epoch = |t: Timestamp| Item::Tag(1, Box::new(Item::Int(t.0)));
    let mut protected = vec![
        (Item::Int(1), Item::Int(cose_alg(alg))),
        (
            Item::Int(2),
            Item::Array(critical(opts).into_iter().map(Item::text).collect()),
        ),
        (Item::Int(3), Item::text(PAYLOAD_CONTENT_TYPE)),
        (
            Item::text(H_SIGNING_SCHEME),
            Item::text(opts.signing_scheme.as_str()),
        ),
        (Item::text(time_header(opts)), epoch(opts.signing_time)),
    ];
    if let Some(exp) = opts.expiry {
        protected.push((Item::text(H_EXPIRY), epoch(exp)));
    }
    let protected_bytes = Item::Map(protected).encode();
    // Sig_structure = ["Signature1", body_protected, external_aad = h'', payload]
    let mut to_sign = Vec::with_capacity(protected_bytes.len() + payload.len() + 32);
    cbor::write_head(&mut to_sign, 4, 4);
    cbor::write_head(&mut to_sign, 3, 10);
    to_sign.extend_from_slice(b"Signature1");
    cbor::write_head(&mut to_sign, 2, protected_bytes.len() as u64);
    to_sign.extend_from_slice(&protected_bytes);
    cbor::write_head(&mut to_sign, 2, 0);
    cbor::write_head(&mut to_sign, 2, payload.len() as u64);
    to_sign.extend_from_slice(payload);
    let signature = key.sign_envelope(&to_sign)?;
    Ok((protected_bytes, signature))
}
