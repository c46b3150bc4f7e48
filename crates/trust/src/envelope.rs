//! The Notary Project signature envelope (signature-specification.md v1.1), one typed value for
//! both serialisations: JWS flattened JSON (`application/jose+json`, signature-envelope-jws.md)
//! and COSE_Sign1 (`application/cose`, signature-envelope-cose.md). Parsing refuses what the
//! specification does not allow; it checks no signature (that is [`Envelope::verify_integrity`]).

use crate::cert::{CertError, Certificate, Curve, PublicKey};
use crate::time::Timestamp;
use serde::Deserialize;

/// `application/jose+json`.
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// `application/cose`.
pub const MEDIA_TYPE_COSE: &str = "application/cose";
/// The only payload content type (`cty`) the specification allows.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

pub(crate) const H_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub(crate) const H_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub(crate) const H_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub(crate) const H_EXPIRY: &str = "io.cncf.notary.expiry";
pub(crate) const H_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub(crate) const H_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
pub(crate) const H_SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
pub(crate) const H_TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";

/// Largest envelope berth parses (notation's limit for a signature blob is 4 MiB).
pub const MAX_ENVELOPE_SIZE: usize = 4 * 1024 * 1024;
/// Most certificates an x5c chain may carry.
pub const MAX_CHAIN_LEN: usize = 10;

/// The two envelope serialisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    Jws,
    Cose,
}

impl EnvelopeFormat {
    /// From a signature manifest layer's media type.
    pub fn from_media_type(media_type: &str) -> Result<EnvelopeFormat, EnvelopeError> {
        match media_type {
            MEDIA_TYPE_JWS => Ok(EnvelopeFormat::Jws),
            MEDIA_TYPE_COSE => Ok(EnvelopeFormat::Cose),
            other => Err(EnvelopeError::UnsupportedMediaType(other.to_string())),
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeFormat::Jws => MEDIA_TYPE_JWS,
            EnvelopeFormat::Cose => MEDIA_TYPE_COSE,
        }
    }
}

/// The signature algorithms of the specification's algorithm table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl SignatureAlgorithm {
    /// JWS name (`PS256`…).
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ps256 => "PS256",
            SignatureAlgorithm::Ps384 => "PS384",
            SignatureAlgorithm::Ps512 => "PS512",
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::Es512 => "ES512",
        }
    }

    /// From a JWS `alg` name.
    pub fn from_jws(name: &str) -> Option<SignatureAlgorithm> {
        Some(match name {
            "PS256" => SignatureAlgorithm::Ps256,
            "PS384" => SignatureAlgorithm::Ps384,
            "PS512" => SignatureAlgorithm::Ps512,
            "ES256" => SignatureAlgorithm::Es256,
            "ES384" => SignatureAlgorithm::Es384,
            "ES512" => SignatureAlgorithm::Es512,
            _ => return None,
        })
    }

    /// From a COSE `alg` label value.
    pub fn from_cose(id: i64) -> Option<SignatureAlgorithm> {
        Some(match id {
            -37 => SignatureAlgorithm::Ps256,
            -38 => SignatureAlgorithm::Ps384,
            -39 => SignatureAlgorithm::Ps512,
            -7 => SignatureAlgorithm::Es256,
            -35 => SignatureAlgorithm::Es384,
            -36 => SignatureAlgorithm::Es512,
            _ => return None,
        })
    }

    /// Checks `signature` over `signed` (the JWS signing input or the COSE `Sig_structure`)
    /// with `key` under this algorithm, and nothing else: for tools that judge an envelope
    /// rule by rule instead of refusing it at the first fault ([`Envelope::verify_integrity`]).
    pub fn verify(self, key: &PublicKey, signed: &[u8], signature: &[u8]) -> Result<(), String> {
        crate::crypto::verify_envelope_signature(self, key, signed, signature)
    }

    /// The algorithm the specification's "Algorithm Selection" table derives from a key.
    pub fn for_key(key: &PublicKey) -> Result<SignatureAlgorithm, String> {
        match key {
            PublicKey::Rsa { bits: 2048, .. } => Ok(SignatureAlgorithm::Ps256),
            PublicKey::Rsa { bits: 3072, .. } => Ok(SignatureAlgorithm::Ps384),
            PublicKey::Rsa { bits: 4096, .. } => Ok(SignatureAlgorithm::Ps512),
            PublicKey::Ec {
                curve: Curve::P256, ..
            } => Ok(SignatureAlgorithm::Es256),
            PublicKey::Ec {
                curve: Curve::P384, ..
            } => Ok(SignatureAlgorithm::Es384),
            PublicKey::Ec {
                curve: Curve::P521, ..
            } => Ok(SignatureAlgorithm::Es512),
            other => Err(format!(
                "signing key {} is not allowed (RSA 2048/3072/4096 or EC P-256/P-384/P-521)",
                other.describe()
            )),
        }
    }
}

/// `notary.x509` or `notary.x509.signingAuthority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    X509,
    X509SigningAuthority,
}

impl SigningScheme {
    pub(crate) fn parse(s: &str) -> Result<SigningScheme, EnvelopeError> {
        match s {
            "notary.x509" => Ok(SigningScheme::X509),
            "notary.x509.signingAuthority" => Ok(SigningScheme::X509SigningAuthority),
            other => Err(EnvelopeError::Header(format!(
                "unsupported signing scheme {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }
}

/// Why an envelope was refused before any signature was checked.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "unsupported signature envelope media type {0:?} (want application/jose+json or application/cose)"
    )]
    UnsupportedMediaType(String),
    #[error("signature envelope is {size} bytes, over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("malformed JWS envelope: {0}")]
    Jws(String),
    #[error("malformed COSE_Sign1 envelope: {0}")]
    Cose(String),
    #[error("invalid protected header: {0}")]
    Header(String),
    #[error("unknown critical header {0:?}")]
    UnknownCritical(String),
    #[error("payload content type {0:?} is not application/vnd.cncf.notary.payload.v1+json")]
    ContentType(String),
    #[error("invalid certificate chain: {0}")]
    Chain(String),
    #[error("invalid certificate {index} in the chain")]
    Certificate {
        index: usize,
        #[source]
        source: CertError,
    },
    #[error("invalid payload: {0}")]
    Payload(String),
}

/// The target descriptor a payload signs (`{"targetArtifact": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetArtifact {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadJson {
    target_artifact: TargetArtifact,
}

/// A parsed envelope: everything the verification workflow reads.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub format: EnvelopeFormat,
    /// The payload bytes exactly as signed.
    pub payload: Vec<u8>,
    /// `cty` (always [`PAYLOAD_CONTENT_TYPE`] once parsed).
    pub content_type: String,
    pub algorithm: SignatureAlgorithm,
    pub signing_scheme: SigningScheme,
    pub signing_time: Option<Timestamp>,
    pub authentic_signing_time: Option<Timestamp>,
    pub expiry: Option<Timestamp>,
    /// `io.cncf.notary.verificationPlugin`, if the signer requires one.
    pub verification_plugin: Option<String>,
    pub verification_plugin_min_version: Option<String>,
    /// The names in `crit`.
    pub critical: Vec<String>,
    pub signing_agent: Option<String>,
    /// The x5c chain, leaf first.
    pub certificate_chain: Vec<Certificate>,
    /// The RFC 3161 timestamp token over the signature, if any.
    pub timestamp_token: Option<Vec<u8>>,
    pub(crate) signed_bytes: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Header values both parsers feed into the common checks.
pub(crate) struct RawHeaders {
    pub algorithm: SignatureAlgorithm,
    pub content_type: String,
    pub critical: Vec<String>,
    /// names of all protected headers present
    pub present: Vec<String>,
    pub signing_scheme: SigningScheme,
    pub signing_time: Option<Timestamp>,
    pub authentic_signing_time: Option<Timestamp>,
    pub expiry: Option<Timestamp>,
    pub verification_plugin: Option<String>,
    pub verification_plugin_min_version: Option<String>,
}

/// What a parser hands to [`Envelope::assemble`].
pub(crate) struct RawEnvelope {
    pub headers: RawHeaders,
    pub payload: Vec<u8>,
    pub chain_der: Vec<Vec<u8>>,
    pub signing_agent: Option<String>,
    pub timestamp_token: Option<Vec<u8>>,
    /// The bytes the signature is over (JWS signing input, COSE Sig_structure).
    pub signed_bytes: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The Notary header names this implementation understands when they are critical.
const KNOWN_CRITICAL: &[&str] = &[
    H_SIGNING_SCHEME,
    H_EXPIRY,
    H_AUTHENTIC_SIGNING_TIME,
    H_PLUGIN,
    H_PLUGIN_MIN_VERSION,
];

impl Envelope {
    /// Parses an envelope of the given media type.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Envelope, EnvelopeError> {
        let format = EnvelopeFormat::from_media_type(media_type)?;
        if bytes.len() > MAX_ENVELOPE_SIZE {
            return Err(EnvelopeError::TooLarge {
                size: bytes.len(),
                max: MAX_ENVELOPE_SIZE,
            });
        }
        match format {
            EnvelopeFormat::Jws => crate::jws::parse(bytes),
            EnvelopeFormat::Cose => crate::cose::parse(bytes),
        }
    }

    /// The signing certificate (first of the chain).
    pub fn signing_certificate(&self) -> Option<&Certificate> {
        self.certificate_chain.first()
    }

    /// The bytes the TSA countersigned: the envelope's signature value.
    pub fn signature_value(&self) -> &[u8] {
        &self.signature
    }

    /// The signed payload's target artifact.
    pub fn target_artifact(&self) -> Result<TargetArtifact, EnvelopeError> {
        let p: PayloadJson = serde_json::from_slice(&self.payload)
            .map_err(|e| EnvelopeError::Payload(e.to_string()))?;
        berth_oci::Digest::parse(&p.target_artifact.digest)
            .map_err(|e| EnvelopeError::Payload(format!("targetArtifact.digest: {e}")))?;
        Ok(p.target_artifact)
    }

    /// Integrity (workflow step "Validate Integrity"): the algorithm must be the one the
    /// signing certificate's key selects, and the signature must verify with that key.
    pub fn verify_integrity(&self) -> Result<(), String> {
        let leaf = self
            .signing_certificate()
            .ok_or("the envelope carries no certificate")?;
        let expected = SignatureAlgorithm::for_key(&leaf.public_key)?;
        if expected != self.algorithm {
            return Err(format!(
                "signature algorithm {} does not match the signing certificate's key ({} requires {})",
                self.algorithm.name(),
                leaf.public_key.describe(),
                expected.name()
            ));
        }
        crate::crypto::verify_envelope_signature(
            self.algorithm,
            &leaf.public_key,
            &self.signed_bytes,
            &self.signature,
        )
    }

    pub(crate) fn assemble(
        format: EnvelopeFormat,
        raw: RawEnvelope,
    ) -> Result<Envelope, EnvelopeError> {
        let RawEnvelope {
            headers: h,
            payload,
            chain_der,
            signing_agent,
            timestamp_token,
            signed_bytes,
            signature,
        } = raw;
        if h.content_type != PAYLOAD_CONTENT_TYPE {
            return Err(EnvelopeError::ContentType(h.content_type));
        }
        // crit: each entry understood and present; the spec's required entries listed
        let mut seen = Vec::new();
        for c in &h.critical {
            if seen.contains(&c) {
                return Err(EnvelopeError::Header(format!(
                    "{c:?} is listed twice in crit"
                )));
            }
            seen.push(c);
            if !KNOWN_CRITICAL.contains(&c.as_str()) {
                return Err(EnvelopeError::UnknownCritical(c.clone()));
            }
            if !h.present.iter().any(|p| p == c) {
                return Err(EnvelopeError::Header(format!(
                    "critical header {c:?} is not in the protected header"
                )));
            }
        }
        let must_be_critical = |name: &str, present: bool| -> Result<(), EnvelopeError> {
            if present && !h.critical.iter().any(|c| c == name) {
                return Err(EnvelopeError::Header(format!(
                    "{name} must be listed in crit"
                )));
            }
            Ok(())
        };
        must_be_critical(H_SIGNING_SCHEME, true)?;
        must_be_critical(H_EXPIRY, h.expiry.is_some())?;
        must_be_critical(H_AUTHENTIC_SIGNING_TIME, h.authentic_signing_time.is_some())?;
        must_be_critical(H_PLUGIN, h.verification_plugin.is_some())?;
        must_be_critical(
            H_PLUGIN_MIN_VERSION,
            h.verification_plugin_min_version.is_some(),
        )?;
        match h.signing_scheme {
            SigningScheme::X509 => {
                if h.signing_time.is_none() {
                    return Err(EnvelopeError::Header(format!(
                        "{H_SIGNING_TIME} is required for notary.x509"
                    )));
                }
                if h.authentic_signing_time.is_some() {
                    return Err(EnvelopeError::Header(format!(
                        "{H_AUTHENTIC_SIGNING_TIME} is not allowed for notary.x509"
                    )));
                }
            }
            SigningScheme::X509SigningAuthority => {
                if h.authentic_signing_time.is_none() {
                    return Err(EnvelopeError::Header(format!(
                        "{H_AUTHENTIC_SIGNING_TIME} is required for notary.x509.signingAuthority"
                    )));
                }
            }
        }
        if let (Some(exp), Some(st)) = (h.expiry, h.signing_time.or(h.authentic_signing_time))
            && exp <= st
        {
            return Err(EnvelopeError::Header(
                "expiry is not after the signing time".to_string(),
            ));
        }
        if chain_der.is_empty() {
            return Err(EnvelopeError::Chain("x5c is empty".to_string()));
        }
        if chain_der.len() > MAX_CHAIN_LEN {
            return Err(EnvelopeError::Chain(format!(
                "{} certificates, over the limit of {MAX_CHAIN_LEN}",
                chain_der.len()
            )));
        }
        let certificate_chain = chain_der
            .iter()
            .enumerate()
            .map(|(index, d)| {
                Certificate::from_der(d)
                    .map_err(|source| EnvelopeError::Certificate { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // weak keys are refused before anything else: the leaf must have a key of the table
        if let Some(leaf) = certificate_chain.first() {
            SignatureAlgorithm::for_key(&leaf.public_key).map_err(EnvelopeError::Chain)?;
        }
        let env = Envelope {
            format,
            payload,
            content_type: h.content_type,
            algorithm: h.algorithm,
            signing_scheme: h.signing_scheme,
            signing_time: h.signing_time,
            authentic_signing_time: h.authentic_signing_time,
            expiry: h.expiry,
            verification_plugin: h.verification_plugin,
            verification_plugin_min_version: h.verification_plugin_min_version,
            critical: h.critical,
            signing_agent,
            certificate_chain,
            timestamp_token,
            signed_bytes,
            signature,
        };
        env.target_artifact()?;
        Ok(env)
    }
}
