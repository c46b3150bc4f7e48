//! Reading, writing small, and deleting blobs. Streaming writes are in `ingest.rs`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_fsutil::AtomicFile;
use berth_oci::{Algorithm, Digest, DigestError};

use crate::{Result, Store, StoreError};

/// Largest blob [`Store::read_blob`] reads into memory: 16 MiB, four times the manifest limit
/// of common registries, far more than any image configuration.
pub const MAX_IN_MEMORY_BLOB: u64 = 16 << 20;

/// Mode of committed blobs: content-addressed files never change.
pub(crate) const BLOB_MODE: u32 = 0o444;

impl Store {
    /// Where the blob `digest` lives, whether or not it is present. For callers that hand the
    /// path to another process; within berth prefer [`Store::open_blob`].
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.paths.blob(digest)
    }

    /// The size of blob `digest`, or `None` when it is not in the store.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.paths.blob(digest);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::ReadBlob {
                digest: digest.clone(),
                path,
                source,
            }),
        }
    }

    /// Open blob `digest` for reading. The content was verified when it was committed; wrap
    /// the file in [`berth_oci::VerifyingReader`] to check it again.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.paths.blob(digest);
        File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound {
                    digest: digest.clone(),
                }
            } else {
                StoreError::ReadBlob {
                    digest: digest.clone(),
                    path,
                    source,
                }
            }
        })
    }

    /// Read a small blob (a manifest, an index, a configuration) into memory and verify it
    /// against its digest. Blobs over [`MAX_IN_MEMORY_BLOB`] are refused with
    /// [`StoreError::BlobTooLarge`]; stream those with [`Store::open_blob`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let file = self.open_blob(digest)?;
        let path = self.paths.blob(digest);
        read_verified(file, digest, &path, MAX_IN_MEMORY_BLOB).map_err(|e| match e {
            ReadError::Io(source) => StoreError::ReadBlob {
                digest: digest.clone(),
                path,
                source,
            },
            ReadError::TooLarge(size) => StoreError::BlobTooLarge {
                digest: digest.clone(),
                size,
                limit: MAX_IN_MEMORY_BLOB,
            },
            ReadError::Corrupt(source) => StoreError::BlobCorrupt {
                digest: digest.clone(),
                path,
                source,
            },
        })
    }

    /// Store a small blob given in memory (a configuration, a manifest) and return its
    /// digest. With `expected`, the bytes must hash to it (with its algorithm) or nothing is
    /// stored ([`StoreError::Mismatch`]); without, sha256 is used. Storing a blob that is
    /// already present only refreshes its modification time (the GC grace clock). Callers
    /// go through [`crate::Ingester::put_bytes`], which leases the digest first.
    pub(crate) fn put_blob_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let alg = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let actual = Digest::of(alg, data);
        if let Some(expected) = expected
            && *expected != actual
        {
            return Err(StoreError::Mismatch {
                digest: expected.clone(),
                source: DigestError::Mismatch {
                    expected: expected.clone(),
                    actual,
                },
            });
        }
        let dest = self.paths.blob(&actual);
        if dest.is_file() {
            touch(&dest);
            return Ok(actual);
        }
        let commit_err = |source| StoreError::Commit {
            digest: actual.clone(),
            source,
        };
        let mut f = AtomicFile::create(&dest).map_err(commit_err)?;
        let write = f.write_all(data).and_then(|()| match f.file() {
            Some(file) => file.set_permissions(std::fs::Permissions::from_mode(BLOB_MODE)),
            None => Ok(()),
        });
        if let Err(source) = write {
            return Err(commit_err(berth_fsutil::FsError::Write {
                path: f.temp_path().to_owned(),
                source,
            }));
        }
        f.commit().map_err(commit_err)?;
        tracing::debug!(digest = %actual, size = data.len(), "blob stored");
        Ok(actual)
    }

    /// Remove blob `digest`; returns whether it was present. Images that reference it are
    /// not checked: this is the low-level operation behind garbage collection.
    pub fn delete_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.paths.blob(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::DeleteBlob {
                digest: digest.clone(),
                path,
                source,
            }),
        }
    }
}

/// Set a file's modification time to now, best effort: it only feeds the GC grace period.
pub(crate) fn touch(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Why a verified in-memory read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    TooLarge(u64),
    Corrupt(DigestError),
}

/// Read all of `file` (at most `limit` bytes) and check it against `digest`.
pub(crate) fn read_verified(
    file: File,
    digest: &Digest,
    path: &Path,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        )));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // the file may grow under us: never read past the limit
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
    if len > limit {
        return Err(ReadError::TooLarge(len));
    }
    let actual = Digest::of(digest.algorithm(), &buf);
    if actual != *digest {
        return Err(ReadError::Corrupt(DigestError::Mismatch {
            expected: digest.clone(),
            actual,
        }));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn put_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob_bytes(b"hello", None).unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert_eq!(store.blob_size(&d).unwrap(), Some(5));
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        let mode = std::fs::metadata(store.blob_path(&d))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, BLOB_MODE);
        // idempotent
        assert_eq!(store.put_blob_bytes(b"hello", Some(&d)).unwrap(), d);
        assert!(store.delete_blob(&d).unwrap());
        assert!(!store.delete_blob(&d).unwrap());
        assert_eq!(store.blob_size(&d).unwrap(), None);
        let err = store.read_blob(&d).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn put_with_wrong_digest_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let wrong = Digest::sha256_of(b"other");
        let err = store.put_blob_bytes(b"hello", Some(&wrong)).unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(store.blob_size(&Digest::sha256_of(b"hello")).unwrap(), None);
    }

    #[test]
    fn sha512_blobs_are_supported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(Algorithm::Sha512, b"x");
        assert_eq!(store.put_blob_bytes(b"x", Some(&d)).unwrap(), d);
        assert!(store.blob_path(&d).to_string_lossy().contains("/sha512/"));
        assert_eq!(store.read_blob(&d).unwrap(), b"x");
    }

    #[test]
    fn corrupt_blob_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put_blob_bytes(b"good", None).unwrap();
        let path = store.blob_path(&d);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        berth_fsutil::atomic_write(&path, b"evil").unwrap();
        let err = store.read_blob(&d).unwrap_err();
        assert!(matches!(err, StoreError::BlobCorrupt { .. }), "{err:?}");
    }
}
