//! The metadata index: image name → top-level manifest, in `store/v1/index.json`.
//!
//! Readers hold a shared `flock` on `store/v1/lock`, writers an exclusive one for the whole
//! read-modify-write, and the file is replaced with [`berth_fsutil::atomic_write`]: two
//! processes never lose each other's updates, and a crash leaves the old file or the new one.

use std::collections::BTreeMap;
use std::io;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::{Result, Store, StoreError};

/// Version of the index file format.
const INDEX_VERSION: u32 = 1;

/// A named image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The full normalised reference (`docker.io/library/busybox:latest`,
    /// `host:port/repo:tag`); the store treats it as an opaque key.
    pub name: String,
    /// The top-level manifest or index, as pulled.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The platform pulled (`linux/amd64`), when one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// When it was pulled (seconds since the Unix epoch).
    pub pulled_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    images: Vec<ImageRecord>,
}

impl Store {
    /// Record `record`, replacing any image of the same name; returns the replaced one.
    ///
    /// The manifest must already be in the store with the recorded size: a name never points
    /// at missing content.
    pub fn put_image(&self, record: ImageRecord) -> Result<Option<ImageRecord>> {
        if record.name.is_empty() {
            return Err(StoreError::InvalidRecord {
                name: record.name,
                reason: "the name is empty",
            });
        }
        if record.name.chars().any(char::is_control) {
            return Err(StoreError::InvalidRecord {
                name: record.name,
                reason: "the name contains control characters",
            });
        }
        let _lock = self.lock_exclusive()?;
        match self.blob_size(&record.digest)? {
            None => {
                return Err(StoreError::BlobNotFound {
                    digest: record.digest,
                });
            }
            Some(size) if size != record.size => {
                return Err(StoreError::InvalidRecord {
                    name: record.name,
                    reason: "its size differs from the stored manifest's",
                });
            }
            Some(_) => {}
        }
        let mut images = self.read_index_locked()?;
        let previous = images.insert(record.name.clone(), record);
        self.write_index_locked(&images)?;
        Ok(previous)
    }

    /// The image named `name`, if any.
    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>> {
        let _lock = self.lock_shared()?;
        Ok(self.read_index_locked()?.remove(name))
    }

    /// Every image, sorted by name.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let _lock = self.lock_shared()?;
        Ok(self.read_index_locked()?.into_values().collect())
    }

    /// Every image whose top-level digest is `digest`, sorted by name.
    pub fn images_by_digest(&self, digest: &Digest) -> Result<Vec<ImageRecord>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|r| r.digest == *digest)
            .collect())
    }

    /// Forget the image named `name`; returns it, or `None` when there was none. Its blobs
    /// stay until [`Store::prune`].
    pub fn remove_image(&self, name: &str) -> Result<Option<ImageRecord>> {
        let _lock = self.lock_exclusive()?;
        let mut images = self.read_index_locked()?;
        let removed = images.remove(name);
        if removed.is_some() {
            self.write_index_locked(&images)?;
        }
        Ok(removed)
    }

    /// Read the index; the caller holds the store lock.
    pub(crate) fn read_index_locked(&self) -> Result<BTreeMap<String, ImageRecord>> {
        let path = self.paths.index();
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(StoreError::ReadIndex { path, source }),
        };
        // look at the version first, so a newer format is reported as such
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version =
            serde_json::from_slice(&raw).map_err(|source| StoreError::CorruptIndex {
                path: path.clone(),
                source,
            })?;
        if version.version != INDEX_VERSION {
            return Err(StoreError::UnsupportedIndexVersion {
                path,
                version: version.version,
            });
        }
        let file: IndexFile = serde_json::from_slice(&raw)
            .map_err(|source| StoreError::CorruptIndex { path, source })?;
        Ok(file
            .images
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect())
    }

    /// Replace the index; the caller holds the exclusive store lock.
    fn write_index_locked(&self, images: &BTreeMap<String, ImageRecord>) -> Result<()> {
        let path = self.paths.index();
        let file = IndexFile {
            version: INDEX_VERSION,
            images: images.values().cloned().collect(),
        };
        let mut json =
            serde_json::to_vec_pretty(&file).map_err(|source| StoreError::CorruptIndex {
                path: path.clone(),
                source,
            })?;
        json.push(b'\n');
        berth_fsutil::atomic_write(&path, &json)
            .map_err(|source| StoreError::WriteIndex { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn record(store: &Store, name: &str, body: &[u8]) -> ImageRecord {
        let digest = store.put_blob_bytes(body, None).unwrap();
        ImageRecord {
            name: name.to_owned(),
            digest,
            media_type: berth_oci::media_type::OCI_MANIFEST.to_owned(),
            size: body.len() as u64,
            platform: Some("linux/amd64".to_owned()),
            pulled_at: 1,
        }
    }

    #[test]
    fn put_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.images().unwrap().is_empty());
        let b = record(&store, "docker.io/library/b:latest", b"b");
        let a = record(&store, "docker.io/library/a:latest", b"a");
        assert_eq!(store.put_image(b.clone()).unwrap(), None);
        assert_eq!(store.put_image(a.clone()).unwrap(), None);
        assert_eq!(store.images().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(store.image(&a.name).unwrap(), Some(a.clone()));
        assert_eq!(store.images_by_digest(&b.digest).unwrap(), vec![b.clone()]);
        // replace by name
        let mut a2 = record(&store, &a.name, b"a2");
        a2.platform = None;
        assert_eq!(store.put_image(a2.clone()).unwrap(), Some(a.clone()));
        assert_eq!(store.image(&a.name).unwrap(), Some(a2.clone()));
        assert_eq!(store.remove_image(&a.name).unwrap(), Some(a2));
        assert_eq!(store.remove_image(&a.name).unwrap(), None);
        assert_eq!(store.images().unwrap(), vec![b]);
    }

    #[test]
    fn record_needs_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut r = record(&store, "x", b"x");
        r.digest = Digest::sha256_of(b"absent");
        assert_eq!(store.put_image(r).unwrap_err().kind(), ErrorKind::NotFound);
        let mut r = record(&store, "x", b"x");
        r.size = 7;
        assert_eq!(
            store.put_image(r).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let r = record(&store, "", b"x");
        assert_eq!(
            store.put_image(r).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn newer_index_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        berth_fsutil::atomic_write(store.paths.index(), br#"{"version":2,"images":[]}"#).unwrap();
        assert!(matches!(
            store.images().unwrap_err(),
            StoreError::UnsupportedIndexVersion { version: 2, .. }
        ));
        berth_fsutil::atomic_write(store.paths.index(), b"{").unwrap();
        assert!(matches!(
            store.images().unwrap_err(),
            StoreError::CorruptIndex { .. }
        ));
    }
}
