//! OCI image layouts on disk (image-spec "image-layout.md"), as `skopeo` and `umoci` read
//! and write them (`oci:DIR:TAG`).
//!
//! ```text
//! DIR/
//!   oci-layout          {"imageLayoutVersion": "1.0.0"}
//!   index.json          an image index; entries are named by the
//!                       org.opencontainers.image.ref.name annotation
//!   blobs/<alg>/<hex>   content
//! ```
//!
//! Blobs are written to a temporary file in `blobs/<alg>/`, verified, then renamed into place
//! (through `berth-fsutil`); `index.json` is replaced atomically, and `oci-layout` is
//! written last when creating, so a crash never leaves something that looks like a layout
//! but is not. As with skopeo, concurrent writers to one layout are not coordinated: the last
//! `index.json` update wins. Blobs and `index.json` are opened with `openat2(RESOLVE_IN_ROOT)`,
//! so symlinks in a layout from elsewhere cannot point outside it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_fsutil::{AtomicFile, FsError};
use berth_oci::{Digest, DigestError, VerifyingReader, descriptor_digest};
use oci_spec::image::{Descriptor, ImageIndex};
use serde_json::json;

use crate::ErrorKind;
use crate::content::{MAX_IN_MEMORY_BLOB, ReadError, read_verified};

/// The annotation naming an entry of a layout's `index.json` (its "tag").
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const IMAGE_LAYOUT_VERSION: &str = "1.0.0";
/// Largest `index.json` read: room for tens of thousands of entries.
const MAX_INDEX: u64 = 64 << 20;

/// What failed on which OCI image layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path} is not an OCI image layout: it has no oci-layout file")]
    NotALayout { path: PathBuf },
    #[error(
        "OCI image layout {path} has imageLayoutVersion {version:?}; only \"1.0.0\" is supported"
    )]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error("{path} is already an OCI image layout")]
    AlreadyExists { path: PathBuf },
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not valid")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write into the OCI image layout {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: FsError,
    },
    #[error("failed to copy blob {digest} into {path}")]
    Copy {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no manifest is tagged {tag:?} in the OCI image layout {path}")]
    TagNotFound { path: PathBuf, tag: String },
    #[error("the OCI image layout {path} has no manifests")]
    Empty { path: PathBuf },
    #[error("the OCI image layout {path} has {count} manifests; name one with a tag")]
    Ambiguous { path: PathBuf, count: usize },
    #[error("invalid OCI image layout tag {tag:?}: {reason}")]
    InvalidTag { tag: String, reason: &'static str },
    #[error("blob {digest} is not in the OCI image layout {path}")]
    BlobNotFound { path: PathBuf, digest: Digest },
    #[error("blob {digest} in {path} has {size} bytes, more than the {limit} read into memory")]
    BlobTooLarge {
        path: PathBuf,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("blob {digest} in the OCI image layout {path} failed verification")]
    Verify {
        path: PathBuf,
        digest: Digest,
        #[source]
        source: DigestError,
    },
    #[error("a descriptor in the OCI image layout {path} has an unusable digest")]
    InvalidDescriptor {
        path: PathBuf,
        #[source]
        source: DigestError,
    },
}

impl LayoutError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LayoutError::NotALayout { .. }
            | LayoutError::TagNotFound { .. }
            | LayoutError::Empty { .. }
            | LayoutError::BlobNotFound { .. } => ErrorKind::NotFound,
            LayoutError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            LayoutError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            LayoutError::UnsupportedVersion { .. }
            | LayoutError::Invalid { .. }
            | LayoutError::Ambiguous { .. }
            | LayoutError::InvalidTag { .. }
            | LayoutError::BlobTooLarge { .. }
            | LayoutError::Verify { .. }
            | LayoutError::InvalidDescriptor { .. } => ErrorKind::InvalidInput,
            LayoutError::Read { .. } | LayoutError::Write { .. } | LayoutError::Copy { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

type Result<T, E = LayoutError> = std::result::Result<T, E>;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Open an existing layout: `path/oci-layout` must say `imageLayoutVersion` "1.0.0".
    pub fn open(path: impl AsRef<Path>) -> Result<OciLayout> {
        let root = path.as_ref().to_owned();
        let file = root.join(LAYOUT_FILE);
        let raw = match std::fs::read(&file) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayoutError::NotALayout { path: root });
            }
            Err(source) => return Err(LayoutError::Read { path: file, source }),
        };
        let value: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|source| LayoutError::Invalid { path: file, source })?;
        let version = value
            .get("imageLayoutVersion")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if version != IMAGE_LAYOUT_VERSION {
            return Err(LayoutError::UnsupportedVersion {
                path: root,
                version: version.to_owned(),
            });
        }
        Ok(OciLayout { root })
    }

    /// Create a new, empty layout in `path` (created if missing; an existing layout there is
    /// [`LayoutError::AlreadyExists`]).
    pub fn create(path: impl AsRef<Path>) -> Result<OciLayout> {
        let root = path.as_ref().to_owned();
        let write_err = |source| LayoutError::Write {
            path: root.clone(),
            source,
        };
        if root.join(LAYOUT_FILE).exists() {
            return Err(LayoutError::AlreadyExists { path: root });
        }
        berth_fsutil::create_dir_all_durable(&root.join("blobs")).map_err(write_err)?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": berth_oci::media_type::OCI_INDEX,
            "manifests": [],
        });
        berth_fsutil::atomic_write(root.join(INDEX_FILE), index.to_string().as_bytes())
            .map_err(write_err)?;
        let layout = json!({ "imageLayoutVersion": IMAGE_LAYOUT_VERSION });
        berth_fsutil::atomic_write(root.join(LAYOUT_FILE), layout.to_string().as_bytes())
            .map_err(write_err)?;
        Ok(OciLayout { root })
    }

    /// Open the layout in `path`, creating it when there is none (as `skopeo copy … oci:DIR`).
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<OciLayout> {
        match OciLayout::open(&path) {
            Err(LayoutError::NotALayout { .. }) => match OciLayout::create(&path) {
                // another writer created it meanwhile
                Err(LayoutError::AlreadyExists { .. }) => OciLayout::open(&path),
                other => other,
            },
            other => other,
        }
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.root.join(INDEX_FILE);
        let file = self
            .open_in_layout(INDEX_FILE)
            .map_err(|source| LayoutError::Read {
                path: path.clone(),
                source,
            })?;
        let mut raw = Vec::new();
        file.take(MAX_INDEX)
            .read_to_end(&mut raw)
            .map_err(|source| LayoutError::Read {
                path: path.clone(),
                source,
            })?;
        serde_json::from_slice(&raw).map_err(|source| LayoutError::Invalid { path, source })
    }

    /// The manifest named `tag` (by its [`REF_NAME_ANNOTATION`]); with `None`, the layout's
    /// only manifest, or [`LayoutError::Ambiguous`] when it has several (as skopeo does).
    pub fn resolve(&self, tag: Option<&str>) -> Result<Descriptor> {
        let index = self.index()?;
        let manifests = index.manifests();
        match tag {
            Some(tag) => manifests
                .iter()
                .find(|d| ref_name(d) == Some(tag))
                .cloned()
                .ok_or_else(|| LayoutError::TagNotFound {
                    path: self.root.clone(),
                    tag: tag.to_owned(),
                }),
            None => match manifests.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(LayoutError::Empty {
                    path: self.root.clone(),
                }),
                many => Err(LayoutError::Ambiguous {
                    path: self.root.clone(),
                    count: many.len(),
                }),
            },
        }
    }

    /// The names of the tagged entries of `index.json`, in its order.
    pub fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(str::to_owned))
            .collect())
    }

    /// Where blob `digest` lives in the layout: `blobs/<alg>/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(blob_rel(digest))
    }

    /// Whether blob `digest` is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.open_in_layout(&blob_rel(digest))
            .and_then(|f| f.metadata())
            .is_ok_and(|m| m.is_file())
    }

    /// Open blob `digest` for reading (not verified: wrap it in
    /// [`berth_oci::VerifyingReader`] when streaming content from someone else's layout).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        self.open_in_layout(&blob_rel(digest))
            .map_err(|source| self.blob_read_err(digest, source))
    }

    /// Read a small blob (manifest, config; at most [`MAX_IN_MEMORY_BLOB`]) and verify it.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let file = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        read_verified(file, digest, &path, MAX_IN_MEMORY_BLOB).map_err(|e| match e {
            ReadError::Io(source) => self.blob_read_err(digest, source),
            ReadError::TooLarge(size) => LayoutError::BlobTooLarge {
                path,
                digest: digest.clone(),
                size,
                limit: MAX_IN_MEMORY_BLOB,
            },
            ReadError::Corrupt(source) => LayoutError::Verify {
                path: self.root.clone(),
                digest: digest.clone(),
                source,
            },
        })
    }

    /// Write blob `expected` from `reader`, verifying digest and (when given) size before it
    /// becomes visible; returns its size. A blob already present is not written again (and
    /// `reader` is not read).
    pub fn write_blob(
        &self,
        reader: impl Read,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<u64> {
        let dest = self.blob_path(expected);
        if let Ok(meta) = std::fs::symlink_metadata(&dest)
            && meta.is_file()
            && size.is_none_or(|s| s == meta.len())
        {
            return Ok(meta.len());
        }
        let mut file = AtomicFile::create(&dest).map_err(|source| LayoutError::Write {
            path: self.root.clone(),
            source,
        })?;
        let mut verifying = VerifyingReader::new(reader, expected.clone(), size);
        let copied = crate::copy_large(&mut verifying, &mut file, size).map_err(|source| {
            match source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<DigestError>())
            {
                Some(digest_error) => LayoutError::Verify {
                    path: self.root.clone(),
                    digest: expected.clone(),
                    source: digest_error.clone(),
                },
                None => LayoutError::Copy {
                    digest: expected.clone(),
                    path: dest.clone(),
                    source,
                },
            }
        })?;
        file.commit().map_err(|source| LayoutError::Write {
            path: self.root.clone(),
            source,
        })?;
        Ok(copied)
    }

    /// Add `desc` (whose blob must be present) to `index.json`, named `tag` when given. As
    /// skopeo does, an entry already named `tag` is replaced; an untagged `desc` replaces an
    /// untagged entry of the same digest, else it is appended.
    pub fn add_manifest(&self, desc: &Descriptor, tag: Option<&str>) -> Result<()> {
        if let Some(tag) = tag {
            validate_ref_name(tag)?;
        }
        let digest = descriptor_digest(desc).map_err(|source| LayoutError::InvalidDescriptor {
            path: self.root.clone(),
            source,
        })?;
        if !self.has_blob(&digest) {
            return Err(LayoutError::BlobNotFound {
                path: self.root.clone(),
                digest,
            });
        }
        let mut entry = desc.clone();
        let mut annotations = entry.annotations().clone().unwrap_or_default();
        annotations.remove(REF_NAME_ANNOTATION);
        if let Some(tag) = tag {
            annotations.insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
        }
        entry.set_annotations((!annotations.is_empty()).then_some(annotations));

        let mut index = self.index()?;
        let mut manifests = index.manifests().clone();
        let same = |d: &Descriptor| match tag {
            Some(tag) => ref_name(d) == Some(tag),
            None => ref_name(d).is_none() && d.digest() == desc.digest(),
        };
        match manifests.iter().position(same) {
            Some(first) => {
                if let Some(slot) = manifests.get_mut(first) {
                    *slot = entry;
                }
                let mut i = 0;
                manifests.retain(|d| {
                    i += 1;
                    i - 1 == first || !same(d)
                });
            }
            None => manifests.push(entry),
        }
        index.set_manifests(manifests);
        let json = serde_json::to_vec(&index).map_err(|source| LayoutError::Invalid {
            path: self.root.join(INDEX_FILE),
            source,
        })?;
        berth_fsutil::atomic_write(self.root.join(INDEX_FILE), &json).map_err(|source| {
            LayoutError::Write {
                path: self.root.clone(),
                source,
            }
        })
    }

    fn open_in_layout(&self, rel: &str) -> io::Result<File> {
        berth_fsutil::open_in_root(&self.root, rel).map_err(|e| match e {
            FsError::Open { source, .. } => source,
            other => io::Error::other(other),
        })
    }

    fn blob_read_err(&self, digest: &Digest, source: io::Error) -> LayoutError {
        if source.kind() == io::ErrorKind::NotFound {
            LayoutError::BlobNotFound {
                path: self.root.clone(),
                digest: digest.clone(),
            }
        } else {
            LayoutError::Read {
                path: self.blob_path(digest),
                source,
            }
        }
    }
}

fn blob_rel(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

/// image-spec "Pre-Defined Annotation Keys", `org.opencontainers.image.ref.name`:
/// `component ("/" component)*`, `component ::= alphanum (separator alphanum)*`,
/// `alphanum ::= [A-Za-z0-9]+`, `separator ::= [-._:@+] | "--"`.
fn validate_ref_name(tag: &str) -> Result<()> {
    let invalid = |reason| LayoutError::InvalidTag {
        tag: tag.to_owned(),
        reason,
    };
    if tag.is_empty() {
        return Err(invalid("it is empty"));
    }
    for component in tag.split('/') {
        let bytes = component.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return Err(invalid("it has an empty path component"));
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return Err(invalid(
                "each component must start and end with a letter or digit",
            ));
        }
        for run in component.split(|c: char| c.is_ascii_alphanumeric()) {
            let ok = match run.as_bytes() {
                [] => true,
                [c] => b"-._:@+".contains(c),
                _ => run == "--",
            };
            if !ok {
                return Err(invalid(
                    "letters and digits may only be separated by one of - . _ : @ + or by --",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_name_grammar() {
        for good in ["latest", "v1.0", "a--b", "repo/name:tag", "x@y+z", "A_1"] {
            assert!(validate_ref_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a---b", "a//b", "/a", "a b", "é"] {
            assert!(validate_ref_name(bad).is_err(), "{bad}");
        }
    }
}
