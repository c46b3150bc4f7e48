//! What a registry needs to know about a pushed manifest, without rejecting
//! manifest types it does not know.
//!
//! Follows distribution-spec v1.1 "Pushing Manifests" and image-spec:
//! - the body must be a JSON object;
//! - its effective media type is the `mediaType` field, else the
//!   `Content-Type` (lowercased, parameters such as `; charset=utf-8`
//!   ignored); when both are present they must agree (ASCII
//!   case-insensitively);
//! - OCI and Docker schema 2 image manifests and OCI indexes / Docker
//!   manifest lists are parsed strictly with `oci-spec` (`schemaVersion` 2);
//! - Docker schema 1 is refused;
//! - anything else (artifacts, vendor types) is accepted as
//!   [`ManifestKind::Unknown`], with `subject`, `config`, `layers`,
//!   `manifests`, `artifactType` and `annotations` picked out when they are
//!   well formed and silently skipped when not;
//! - in image manifests and indexes every descriptor digest must be a
//!   sha256/sha512 digest ([`ManifestError::InvalidDescriptor`] names the
//!   field).

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::de::Error as _;
use serde_json::{Map, Value};

use crate::digest::{Digest, DigestError, truncate};
use crate::media_type;

/// What kind of manifest a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    /// An OCI image manifest or Docker schema 2 manifest.
    Image,
    /// An OCI image index or Docker manifest list.
    Index,
    /// Any other media type (artifact manifests, vendor types): stored as is.
    Unknown,
}

/// The facts a registry needs about a manifest body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// Effective media type: the `mediaType` field, else the Content-Type.
    pub media_type: String,
    /// Image, index or unknown.
    pub kind: ManifestKind,
    /// The config descriptor (always present for images).
    pub config: Option<Descriptor>,
    /// Layer descriptors (images, and `layers` of unknown types).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes, and `manifests` of unknown types).
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (distribution-spec "referrers").
    pub subject: Option<Descriptor>,
    /// `artifactType`, else for images and unknown types with a config the
    /// config's media type (distribution-spec "Listing Referrers").
    pub artifact_type: Option<String>,
    /// Manifest annotations (same map type as `oci-spec`).
    pub annotations: Option<HashMap<String, String>>,
}

/// Why a manifest body was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The body is not JSON, or JSON but not an object.
    #[error("manifest body is not a JSON object")]
    InvalidJson {
        /// serde's description of the problem.
        #[source]
        source: serde_json::Error,
    },
    /// Neither a `mediaType` field nor a Content-Type says what it is.
    #[error("manifest has no media type: no mediaType field and no Content-Type")]
    MissingMediaType,
    /// The `mediaType` field is not a string.
    #[error("manifest mediaType field is not a string")]
    MediaTypeNotString,
    /// The `mediaType` field and the Content-Type disagree.
    #[error("manifest mediaType {body:?} does not match Content-Type {content_type:?}")]
    MediaTypeMismatch {
        /// The `mediaType` field.
        body: String,
        /// The Content-Type, without parameters.
        content_type: String,
    },
    /// A manifest type berth refuses (Docker schema 1).
    #[error("manifest media type {media_type} is not supported (Docker schema 1 is deprecated)")]
    Unsupported {
        /// The refused media type.
        media_type: String,
    },
    /// The body does not have the structure its media type requires.
    #[error("manifest does not follow the {media_type} schema")]
    Invalid {
        /// The effective media type.
        media_type: String,
        /// serde's description of the problem.
        #[source]
        source: serde_json::Error,
    },
    /// A descriptor's digest is malformed or of an unsupported algorithm.
    #[error("manifest descriptor {field} has an unusable digest")]
    InvalidDescriptor {
        /// Which descriptor: `config`, `layers[2]`, `manifests[0]`, `subject`.
        field: String,
        /// What is wrong with the digest.
        #[source]
        source: DigestError,
    },
}

/// The descriptor's digest as a berth [`Digest`] (sha256 or sha512 only).
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, DigestError> {
    Digest::parse(d.digest().as_ref())
}

impl ManifestInfo {
    /// Inspects a manifest body pushed with `content_type` (the request's
    /// Content-Type header, if any).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestInfo, ManifestError> {
        let object: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|source| ManifestError::InvalidJson { source })?;
        let media_type = effective_media_type(&object, content_type)?;

        if media_type::is_docker_schema1(&media_type) {
            return Err(ManifestError::Unsupported { media_type });
        }
        if media_type::is_image_manifest(&media_type) {
            check_digests(&object, &["config", "subject"], &["layers"])?;
            let manifest: ImageManifest = from_object(object, &media_type)?;
            check_schema_version(manifest.schema_version(), &media_type)?;
            let config = manifest.config().clone();
            let artifact_type = manifest
                .artifact_type()
                .as_ref()
                .map(|t| t.to_string())
                .or_else(|| Some(config.media_type().to_string()));
            return Ok(ManifestInfo {
                kind: ManifestKind::Image,
                config: Some(config),
                layers: manifest.layers().clone(),
                manifests: Vec::new(),
                subject: manifest.subject().clone(),
                artifact_type,
                annotations: manifest.annotations().clone(),
                media_type,
            });
        }
        if media_type::is_index(&media_type) {
            check_digests(&object, &["subject"], &["manifests"])?;
            let index: ImageIndex = from_object(object, &media_type)?;
            check_schema_version(index.schema_version(), &media_type)?;
            return Ok(ManifestInfo {
                kind: ManifestKind::Index,
                config: None,
                layers: Vec::new(),
                manifests: index.manifests().clone(),
                subject: index.subject().clone(),
                artifact_type: index.artifact_type().as_ref().map(|t| t.to_string()),
                annotations: index.annotations().clone(),
                media_type,
            });
        }
        Ok(lenient(&object, media_type))
    }

    /// Blobs this manifest needs: the config, then the layers (not the subject).
    pub fn referenced_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }

    /// Manifests this one lists (the `manifests` of an index).
    pub fn referenced_manifests(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests.iter()
    }
}

fn effective_media_type(
    object: &Map<String, Value>,
    content_type: Option<&str>,
) -> Result<String, ManifestError> {
    let body = match object.get("mediaType") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ManifestError::MediaTypeNotString),
    };
    let header = content_type
        .map(media_type::essence)
        .filter(|h| !h.is_empty());
    match (body, header) {
        (Some(body), Some(header)) if !body.eq_ignore_ascii_case(header) => {
            Err(ManifestError::MediaTypeMismatch {
                body: truncate(body),
                content_type: truncate(header),
            })
        }
        (Some(body), _) => Ok(body.to_owned()),
        // Media types are case-insensitive (RFC 6838); the constants are lowercase.
        (None, Some(header)) => Ok(header.to_ascii_lowercase()),
        (None, None) => Err(ManifestError::MissingMediaType),
    }
}

fn from_object<T: serde::de::DeserializeOwned>(
    object: Map<String, Value>,
    media_type: &str,
) -> Result<T, ManifestError> {
    serde_json::from_value(Value::Object(object)).map_err(|source| ManifestError::Invalid {
        media_type: truncate(media_type),
        source,
    })
}

fn check_schema_version(version: u32, media_type: &str) -> Result<(), ManifestError> {
    if version == 2 {
        return Ok(());
    }
    Err(ManifestError::Invalid {
        media_type: truncate(media_type),
        source: serde_json::Error::custom(format_args!("schemaVersion must be 2, found {version}")),
    })
}

/// Checks the digest of every descriptor-shaped value (an object with a
/// string `digest`) in the named single fields and array fields, before
/// `oci-spec` sees them, so that the error names the field. Anything not
/// descriptor-shaped is left for the schema check to report.
fn check_digests(
    object: &Map<String, Value>,
    single: &[&str],
    arrays: &[&str],
) -> Result<(), ManifestError> {
    let check =
        |field: &dyn Fn() -> String, value: &Value| -> Result<(), ManifestError> {
            match value.get("digest") {
                Some(Value::String(digest)) => Digest::parse(digest).map(drop).map_err(|source| {
                    ManifestError::InvalidDescriptor {
                        field: field(),
                        source,
                    }
                }),
                _ => Ok(()),
            }
        };
    for &name in single {
        if let Some(value) = object.get(name) {
            check(&|| name.to_owned(), value)?;
        }
    }
    for &name in arrays {
        if let Some(Value::Array(items)) = object.get(name) {
            for (i, value) in items.iter().enumerate() {
                check(&|| format!("{name}[{i}]"), value)?;
            }
        }
    }
    Ok(())
}

/// A descriptor, if `value` is a well-formed one with a usable digest.
fn lenient_descriptor(value: &Value) -> Option<Descriptor> {
    let descriptor: Descriptor = serde_json::from_value(value.clone()).ok()?;
    descriptor_digest(&descriptor).ok()?;
    Some(descriptor)
}

fn lenient_descriptors(value: Option<&Value>) -> Vec<Descriptor> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(lenient_descriptor).collect(),
        _ => Vec::new(),
    }
}

fn lenient(object: &Map<String, Value>, media_type: String) -> ManifestInfo {
    let config = object.get("config").and_then(lenient_descriptor);
    let artifact_type = match object.get("artifactType") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
        _ => config.as_ref().map(|c| c.media_type().to_string()),
    };
    let annotations = object
        .get("annotations")
        .and_then(|a| serde_json::from_value::<HashMap<String, String>>(a.clone()).ok());
    ManifestInfo {
        media_type,
        kind: ManifestKind::Unknown,
        config,
        layers: lenient_descriptors(object.get("layers")),
        manifests: lenient_descriptors(object.get("manifests")),
        subject: object.get("subject").and_then(lenient_descriptor),
        artifact_type,
        annotations,
    }
}

#[cfg(test)]
mod tests;
