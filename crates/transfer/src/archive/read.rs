//! Reading image archives: `docker save`/`podman save` archives (docker-archive) and tars
//! of OCI image layouts (oci-archive), served to the copy engine as a [`Provider`] by
//! offset into the archive file (see `tarindex.rs`), without extracting anything.
//!
//! A docker-archive has no manifest: one is made from `manifest.json` and the config, as
//! containers/image does. Its layers are uncompressed tars whose digest is the config's
//! `rootfs.diff_ids` entry, so they keep the media type
//! `application/vnd.docker.image.rootfs.diff.tar` and are stored as they are; the store's
//! writer verifies each against that digest. A compressed layer (some tools write them)
//! is hashed first.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_distribution::Descriptor;
use berth_oci::{Algorithm, Digest, Digester, ManifestInfo, Reference, media_type};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncSeekExt;

use super::tarindex::{Span, TarIndex};
use super::{ArchiveFormat, DOCKER_LAYER_TAR, MAX_METADATA_BYTES, REF_NAME};
use crate::content::{BoxFuture, Provider, Sink};
use crate::local::digest_of;
use crate::{ManifestBlob, Result, TransferError};

/// One entry of a docker-archive's `manifest.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct DockerManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// An image found in an archive.
#[derive(Debug, Clone)]
pub struct ArchivedImage {
    /// The names it carries (`RepoTags`; `org.opencontainers.image.ref.name`), as written.
    pub names: Vec<String>,
    pub(crate) top: ManifestBlob,
}

impl ArchivedImage {
    /// The digest of its top manifest (made from `manifest.json` for a docker-archive).
    pub fn digest(&self) -> &Digest {
        &self.top.digest
    }
}

/// An opened, indexed archive: its images, and their blobs by digest.
#[derive(Debug)]
pub struct ArchiveSource {
    index: TarIndex,
    format: ArchiveFormat,
    images: Vec<ArchivedImage>,
    /// Untagged manifests of an OCI archive's `index.json` that name a `subject`
    /// (signatures, SBOMs): kept beside their image, not loaded as images of their own.
    referrers: Vec<(Digest, Descriptor)>,
    /// Where each blob is (docker-archive); an OCI archive's are at `blobs/<alg>/<hex>`.
    blobs: HashMap<Digest, String>,
}

fn bad(path: &Path, entry: &str, reason: impl Into<String>) -> TransferError {
    TransferError::BadArchive {
        path: path.to_owned(),
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

fn io_err<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl Fn(std::io::Error) -> TransferError + 'a {
    move |source| TransferError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

impl ArchiveSource {
    /// Index the archive at `path` and read its images' metadata; the format is detected
    /// (`manifest.json`: docker-archive, else `oci-layout`: oci-archive).
    pub fn open(path: &Path) -> Result<ArchiveSource> {
        let mut magic = [0u8; 4];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(io_err(path, "open the archive"))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(TransferError::CompressedArchive {
                path: path.to_owned(),
            });
        }
        let index = TarIndex::scan(path)?;
        if index.contains("manifest.json") {
            Self::docker(index)
        } else if index.contains("oci-layout") {
            Self::oci(index)
        } else {
            Err(TransferError::NotAnArchive {
                path: path.to_owned(),
            })
        }
    }

    /// docker-archive or oci-archive.
    pub fn format(&self) -> ArchiveFormat {
        self.format
    }

    /// The images, in the archive's order.
    pub fn images(&self) -> &[ArchivedImage] {
        &self.images
    }

    /// The archive file.
    pub fn path(&self) -> &Path {
        &self.index.path
    }

    /// Whether the archive holds referrers (only an OCI archive can).
    pub fn has_referrers(&self) -> bool {
        !self.referrers.is_empty()
    }

    /// The descriptors of the archived manifests whose subject is `subject`.
    pub(crate) fn referrers(&self, subject: &Digest) -> Vec<Descriptor> {
        self.referrers
            .iter()
            .filter(|(s, _)| s == subject)
            .map(|(_, d)| d.clone())
            .collect()
    }

    fn docker(index: TarIndex) -> Result<ArchiveSource> {
        let path = index.path.clone();
        let bytes = index.read_small("manifest.json", MAX_METADATA_BYTES)?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes).map_err(|e| {
            bad(
                &path,
                "manifest.json",
                format!("not a docker-archive manifest: {e}"),
            )
        })?;
        let mut images = Vec::new();
        let mut blobs = HashMap::new();
        for entry in entries {
            let config = index.read_small(&entry.config, MAX_METADATA_BYTES)?;
            let config_digest = Digest::sha256_of(&config);
            let diff_ids = diff_ids(&config).map_err(|reason| bad(&path, &entry.config, reason))?;
            if diff_ids.len() != entry.layers.len() {
                return Err(bad(
                    &path,
                    "manifest.json",
                    format!(
                        "the image of config {} lists {} layers but its config has {} diff_ids",
                        entry.config,
                        entry.layers.len(),
                        diff_ids.len()
                    ),
                ));
            }
            blobs.insert(config_digest.clone(), entry.config.clone());
            let mut layers = Vec::new();
            for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
                let span = index.resolve(name)?;
                let (digest, mt) = match compression(&index.path, span)? {
                    None => (diff_id, DOCKER_LAYER_TAR),
                    Some(mt) => (hash_span(&index.path, span)?, mt),
                };
                layers.push(json!({"mediaType": mt, "size": span.size, "digest": digest.as_str()}));
                blobs.insert(digest, name.clone());
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": media_type::DOCKER_MANIFEST_V2,
                "config": {
                    "mediaType": media_type::DOCKER_CONFIG,
                    "size": config.len(),
                    "digest": config_digest.as_str(),
                },
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest).map_err(|e| {
                bad(
                    &path,
                    "manifest.json",
                    format!("cannot encode a manifest: {e}"),
                )
            })?;
            images.push(ArchivedImage {
                names: entry.repo_tags.unwrap_or_default(),
                top: ManifestBlob {
                    digest: Digest::sha256_of(&bytes),
                    bytes,
                    media_type: media_type::DOCKER_MANIFEST_V2.to_owned(),
                },
            });
        }
        Ok(ArchiveSource {
            index,
            format: ArchiveFormat::Docker,
            images,
            referrers: Vec::new(),
            blobs,
        })
    }

    fn oci(index: TarIndex) -> Result<ArchiveSource> {
        let path = index.path.clone();
        let layout = index.read_small("oci-layout", MAX_METADATA_BYTES)?;
        let version = serde_json::from_slice::<serde_json::Value>(&layout)
            .ok()
            .and_then(|v| v["imageLayoutVersion"].as_str().map(str::to_owned));
        if version.as_deref() != Some("1.0.0") {
            return Err(bad(
                &path,
                "oci-layout",
                "not an OCI image layout of version 1.0.0",
            ));
        }
        let bytes = index.read_small("index.json", MAX_METADATA_BYTES)?;
        let top: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad(&path, "index.json", format!("not JSON: {e}")))?;
        let manifests: Vec<Descriptor> = serde_json::from_value(top["manifests"].clone())
            .map_err(|e| bad(&path, "index.json", format!("not an OCI image index: {e}")))?;
        let mut source = ArchiveSource {
            index,
            format: ArchiveFormat::Oci,
            images: Vec::new(),
            referrers: Vec::new(),
            blobs: HashMap::new(),
        };
        for desc in manifests {
            let digest = digest_of(&desc)?;
            let bytes = source.read_verified(&digest)?;
            let names = desc
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(|n| vec![n.clone()])
                .unwrap_or_default();
            // An untagged manifest that names a subject is a referrer of another image
            // (what `berth save --referrers` and `copy --referrers oci-archive:` write).
            if names.is_empty()
                && let Some(subject) = ManifestInfo::parse(&bytes, Some(desc.media_type().as_ref()))
                    .ok()
                    .and_then(|i| i.subject)
                    .and_then(|s| digest_of(&s).ok())
            {
                source.referrers.push((subject, desc));
                continue;
            }
            source.images.push(ArchivedImage {
                names,
                top: ManifestBlob {
                    bytes,
                    media_type: desc.media_type().to_string(),
                    digest,
                },
            });
        }
        Ok(source)
    }

    /// The archive entry that holds blob `digest`.
    fn entry_of(&self, digest: &Digest) -> String {
        self.blobs
            .get(digest)
            .cloned()
            .unwrap_or_else(|| format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex()))
    }

    /// The archive entry of the blob whose copy failed in `e`, if one did.
    pub(crate) fn failed_entry(&self, e: &TransferError) -> Option<String> {
        match e {
            TransferError::CopyBlob { digest, .. } => Some(self.entry_of(digest)),
            other => other.wrapped().and_then(|inner| self.failed_entry(inner)),
        }
    }

    fn span_of(&self, digest: &Digest) -> Result<Span> {
        self.index.resolve(&self.entry_of(digest))
    }

    /// A small blob, whole and verified.
    fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>> {
        let entry = self.entry_of(digest);
        let bytes = self.index.read_small(&entry, MAX_METADATA_BYTES)?;
        let actual = Digest::of(digest.algorithm(), &bytes);
        if actual != *digest {
            return Err(TransferError::ArchiveDigestMismatch {
                path: self.index.path.clone(),
                entry,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The image named `name` (a reference, compared normalised, or an OCI `ref.name`
    /// as written), or the only image when `name` is `None`.
    pub fn select(&self, name: Option<&str>) -> Result<usize> {
        let path = self.index.path.clone();
        let Some(name) = name else {
            return match self.images.len() {
                1 => Ok(0),
                count => Err(TransferError::ArchiveAmbiguous { path, count }),
            };
        };
        let wanted = normalise(name);
        self.images
            .iter()
            .position(|i| {
                i.names
                    .iter()
                    .any(|n| n == name || wanted.is_some() && normalise(n) == wanted)
            })
            .ok_or_else(|| TransferError::ArchiveImageNotFound {
                path,
                name: name.to_owned(),
                available: self
                    .images
                    .iter()
                    .flat_map(|i| i.names.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The full normalised reference `n` names, if it is one.
pub(crate) fn normalise(n: &str) -> Option<String> {
    Reference::parse(n).ok().map(|r| r.to_string())
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(config: &[u8]) -> std::result::Result<Vec<Digest>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("the image config is not JSON: {e}"))?;
    let ids = v["rootfs"]["diff_ids"]
        .as_array()
        .ok_or("the image config has no rootfs.diff_ids")?;
    ids.iter()
        .map(|d| {
            d.as_str()
                .ok_or_else(|| "a diff_id is not a string".to_owned())
                .and_then(|s| Digest::parse(s).map_err(|e| format!("diff_id {s:?}: {e}")))
        })
        .collect()
}

/// The media type of a compressed layer (by its magic bytes), `None` for a plain tar.
fn compression(path: &Path, span: Span) -> Result<Option<&'static str>> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(io_err(path, "open the archive"))?;
    f.seek(SeekFrom::Start(span.offset))
        .map_err(io_err(path, "read the archive"))?;
    let n = f
        .take(4)
        .read(&mut magic)
        .map_err(io_err(path, "read the archive"))?;
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Some(media_type::DOCKER_LAYER_GZIP)
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Some(media_type::OCI_LAYER_ZSTD)
    } else {
        None
    })
}

/// The sha256 of an entry's bytes, streamed.
fn hash_span(path: &Path, span: Span) -> Result<Digest> {
    let mut f = File::open(path).map_err(io_err(path, "open the archive"))?;
    f.seek(SeekFrom::Start(span.offset))
        .map_err(io_err(path, "read the archive"))?;
    let mut r = f.take(span.size);
    let mut d = Digester::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(io_err(path, "read the archive"))?;
        if n == 0 {
            break;
        }
        d.update(buf.get(..n).unwrap_or_default());
    }
    Ok(d.finalize())
}

/// An image of an archive as a copy source.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveProvider {
    pub source: Arc<ArchiveSource>,
}

impl ArchiveProvider {
    pub fn path(&self) -> PathBuf {
        self.source.index.path.clone()
    }
}

impl Provider for ArchiveProvider {
    fn manifest<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let (source, digest) = (self.source.clone(), digest_of(desc)?);
            crate::local::blocking(move || source.read_verified(&digest)).await
        })
    }

    fn fetch<'a>(
        &'a self,
        desc: &'a Descriptor,
        sink: &'a mut Sink<'_>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let digest = digest_of(desc)?;
            let span = self.source.span_of(&digest)?;
            let path = self.path();
            let mut f = tokio::fs::File::open(&path)
                .await
                .map_err(io_err(&path, "open the archive"))?;
            f.seek(SeekFrom::Start(span.offset))
                .await
                .map_err(io_err(&path, "read the archive"))?;
            let mut r = tokio::io::BufReader::with_capacity(
                1 << 20,
                tokio::io::AsyncReadExt::take(f, span.size),
            );
            tokio::io::copy_buf(&mut r, sink)
                .await
                .map_err(io_err(&path, "read the archive"))?;
            Ok(())
        })
    }
}
