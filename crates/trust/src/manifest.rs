//! The signature manifest (signature-specification.md, "OCI Signatures"): an OCI image
//! manifest whose `config.mediaType` is `application/vnd.cncf.notary.signature` (the config
//! blob is `{}`: size 2, `sha256:44136fa3…`), with one layer holding the envelope, `subject` =
//! the signed manifest, and the annotations `io.cncf.notary.x509chain.thumbprint#S256` (a JSON
//! array of the hex SHA-256 of each certificate, leaf first) and
//! `org.opencontainers.image.created`. That is the specification's form and what notation
//! 1.3 writes; an `artifactType` with the OCI empty config is NOT what the specification says,
//! and notation does not find such a signature in an OCI layout (tried by hand with notation
//! v1.3.2), so berth does not write it. Registries report the config media type as the
//! artifact type in the referrers API.
//!
//! The reading side, [`envelope_layer`], accepts both: `config.mediaType` or `artifactType`
//! naming a Notary signature.

use crate::cert::Certificate;
use crate::envelope::{EnvelopeFormat, MAX_ENVELOPE_SIZE};
use crate::time::Timestamp;
use berth_oci::Digest;
use berth_oci::media_type::{OCI_EMPTY_JSON_DIGEST, OCI_MANIFEST};
use berth_oci::oci_spec::image::{Descriptor, ImageManifest, MediaType};

/// The artifact type of Notary Project signatures.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The chain thumbprints annotation.
pub const ANNOTATION_THUMBPRINT: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// The creation time annotation.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Largest signature manifest read.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// Why a manifest is not a usable signature manifest.
#[derive(Debug, thiserror::Error)]
pub enum SignatureManifestError {
    #[error("signature manifest is not JSON: {0}")]
    Json(String),
    #[error("signature manifest is {0} bytes, over the limit")]
    TooLarge(usize),
    #[error("not a signature manifest: {0}")]
    NotSignature(String),
    #[error("invalid signature manifest: {0}")]
    Invalid(String),
}

/// A built signature manifest.
#[derive(Debug, Clone)]
pub struct SignatureManifest {
    /// The manifest bytes to push (their digest is the manifest's).
    pub bytes: Vec<u8>,
    /// The same, parsed.
    pub manifest: ImageManifest,
    /// The descriptor of the manifest itself (for the referrers index / tag).
    pub descriptor: Descriptor,
    /// The envelope layer's descriptor (push the envelope blob under it).
    pub envelope: Descriptor,
}

/// The config blob, `{}` (push it under [`OCI_EMPTY_JSON_DIGEST`] with the config's media
/// type).
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// The hex SHA-256 of each certificate, leaf first, as the annotation's JSON array.
pub fn thumbprints(chain: &[Certificate]) -> String {
    let list: Vec<String> = chain
        .iter()
        .map(|c| Digest::sha256_of(c.der()).hex().to_string())
        .collect();
    serde_json::Value::from(list).to_string()
}

/// The signature manifest of `envelope` (of `format`, signed with `chain`) over `subject`.
pub fn signature_manifest(
    subject: &Descriptor,
    envelope: &[u8],
    format: EnvelopeFormat,
    chain: &[Certificate],
    created: Timestamp,
) -> Result<SignatureManifest, SignatureManifestError> {
    if chain.is_empty() {
        return Err(SignatureManifestError::Invalid(
            "the certificate chain is empty".to_string(),
        ));
    }
    if envelope.len() > MAX_ENVELOPE_SIZE {
        return Err(SignatureManifestError::TooLarge(envelope.len()));
    }
    berth_oci::descriptor_digest(subject)
        .map_err(|e| SignatureManifestError::Invalid(format!("subject digest: {e}")))?;
    let env_digest = Digest::sha256_of(envelope);
    let mut subject_json = serde_json::json!({
        "mediaType": subject.media_type().to_string(),
        "digest": subject.digest().to_string(),
        "size": subject.size(),
    });
    if let Some(a) = subject.annotations() {
        let sorted: std::collections::BTreeMap<_, _> = a.iter().collect();
        subject_json["annotations"] = serde_json::json!(sorted);
    }
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": ARTIFACT_TYPE,
            "digest": OCI_EMPTY_JSON_DIGEST,
            "size": EMPTY_CONFIG.len(),
        },
        "layers": [{
            "mediaType": format.media_type(),
            "digest": env_digest.to_string(),
            "size": envelope.len(),
        }],
        "subject": subject_json,
        "annotations": {
            ANNOTATION_THUMBPRINT: thumbprints(chain),
            ANNOTATION_CREATED: created.to_string(),
        },
    });
    let bytes =
        serde_json::to_vec(&doc).map_err(|e| SignatureManifestError::Json(e.to_string()))?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| SignatureManifestError::Json(e.to_string()))?;
    let envelope_desc = manifest
        .layers()
        .first()
        .cloned()
        .ok_or_else(|| SignatureManifestError::Invalid("no layer".to_string()))?;
    let mut descriptor = Descriptor::new(
        MediaType::ImageManifest,
        bytes.len() as u64,
        oci_digest(&Digest::sha256_of(&bytes))?,
    );
    descriptor.set_artifact_type(Some(MediaType::from(ARTIFACT_TYPE)));
    descriptor.set_annotations(manifest.annotations().clone());
    Ok(SignatureManifest {
        bytes,
        manifest,
        descriptor,
        envelope: envelope_desc,
    })
}

fn oci_digest(d: &Digest) -> Result<berth_oci::oci_spec::image::Digest, SignatureManifestError> {
    d.to_string()
        .parse()
        .map_err(|e| SignatureManifestError::Invalid(format!("digest {d}: {e}")))
}

/// The envelope layer of a signature manifest: the manifest must be an OCI image manifest
/// whose `config.mediaType` is [`ARTIFACT_TYPE`] (the specification's form) or whose
/// `artifactType` is (the image-spec 1.1 artifact form; another `artifactType` is refused), with exactly one layer of media type `application/jose+json` or `application/cose`,
/// a sha256/sha512 digest and a size within the envelope limit.
pub fn envelope_layer(manifest_bytes: &[u8]) -> Result<Descriptor, SignatureManifestError> {
    if manifest_bytes.len() > MAX_MANIFEST_SIZE {
        return Err(SignatureManifestError::TooLarge(manifest_bytes.len()));
    }
    let value: serde_json::Value = serde_json::from_slice(manifest_bytes)
        .map_err(|e| SignatureManifestError::Json(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| SignatureManifestError::Json("not a JSON object".to_string()))?;
    if let Some(mt) = obj.get("mediaType")
        && mt.as_str() != Some(OCI_MANIFEST)
    {
        return Err(SignatureManifestError::NotSignature(format!(
            "mediaType is {mt}, not {OCI_MANIFEST}"
        )));
    }
    let manifest: ImageManifest = serde_json::from_value(value.clone())
        .map_err(|e| SignatureManifestError::Invalid(format!("not an OCI image manifest: {e}")))?;
    let artifact_type = manifest.artifact_type().as_ref().map(|m| m.to_string());
    let config_type = manifest.config().media_type().to_string();
    match artifact_type.as_deref() {
        Some(ARTIFACT_TYPE) => {}
        Some(other) => {
            return Err(SignatureManifestError::NotSignature(format!(
                "artifactType is {other:?}, not {ARTIFACT_TYPE:?}"
            )));
        }
        None if config_type == ARTIFACT_TYPE => {}
        None => {
            return Err(SignatureManifestError::NotSignature(format!(
                "no artifactType, and config.mediaType is {config_type:?}, not {ARTIFACT_TYPE:?}"
            )));
        }
    }
    let layers = manifest.layers();
    let layer = match layers.as_slice() {
        [one] => one,
        other => {
            return Err(SignatureManifestError::Invalid(format!(
                "{} layers; a signature manifest has exactly one (the envelope)",
                other.len()
            )));
        }
    };
    EnvelopeFormat::from_media_type(layer.media_type().as_ref())
        .map_err(|e| SignatureManifestError::Invalid(format!("envelope layer: {e}")))?;
    berth_oci::descriptor_digest(layer)
        .map_err(|e| SignatureManifestError::Invalid(format!("envelope layer digest: {e}")))?;
    if layer.size() > MAX_ENVELOPE_SIZE as u64 {
        return Err(SignatureManifestError::Invalid(format!(
            "envelope layer is {} bytes, over the {MAX_ENVELOPE_SIZE}-byte limit",
            layer.size()
        )));
    }
    Ok(layer.clone())
}
