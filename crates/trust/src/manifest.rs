//! The signature manifest (signature-specification.md, "Storage"): an OCI image manifest with
//! `artifactType` `application/vnd.cncf.notary.signature`, the empty config
//! (`application/vnd.oci.empty.v1+json`, `{}`), one layer holding the envelope, `subject` =
//! the signed manifest, and the annotations `io.cncf.notary.x509chain.thumbprint#S256` (a JSON
//! array of the hex SHA-256 of each certificate, leaf first) and
//! `org.opencontainers.image.created`. Also the reading side: the envelope layer of a
//! signature manifest in this form or in the older one with the type in `config.mediaType`.

use crate::cert::Certificate;
use crate::envelope::{EnvelopeFormat, MAX_ENVELOPE_SIZE};
use crate::time::Timestamp;
use berth_oci::Digest;
use berth_oci::media_type::{OCI_EMPTY_JSON, OCI_EMPTY_JSON_DIGEST, OCI_MANIFEST};
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

/// The empty config blob, `{}`.
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
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": OCI_EMPTY_JSON,
            "digest": OCI_EMPTY_JSON_DIGEST,
            "size": 2,
            "data": "e30=",
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
/// whose `artifactType` is [`ARTIFACT_TYPE`] (or, the older form, whose `config.mediaType`
/// is), with exactly one layer of media type `application/jose+json` or `application/cose`,
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
