//! Streaming, resumable blob writes: `ingest/<key>/data` → verify → `blobs/<alg>/<hex>`.
//!
//! Model: containerd `plugins/content/local/writer.go`. Ingest data is scratch space: it is
//! not `fsync`ed while it is written (a crash may lose or garble its tail), because every byte
//! is re-verified before the one durable rename that makes a blob visible.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use berth_oci::{Digest, DigestError, Digester};
use serde::{Deserialize, Serialize};

use crate::content::{BLOB_MODE, touch};
use crate::paths::{StorePaths, ingest};
use crate::{Lease, Result, Store, StoreError};
use berth_fsutil::FileLock;

/// Distinguishes the private ingests of one process.
static PRIVATE: AtomicU64 = AtomicU64::new(0);

/// What the bytes in an ingest's `data` are meant to become.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct IngestRef {
    key: String,
    expected: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected_size: Option<u64>,
    started_at: u64,
}

/// Writes into the store under a [`Lease`]: the only way to add blobs, so that nothing is
/// ingested without protection from a concurrent [`Store::prune`] (containerd's
/// `content.Ingester`, whose writers need a lease in the context; here the type says it).
///
/// Each write first adds its digest to the lease, then writes; the blob stays protected
/// until the lease ends, by which time an image record (or a longer lease) should name it.
/// Cheap to clone and `'static`, for blocking tasks.
#[derive(Debug, Clone)]
pub struct Ingester {
    store: Store,
    lease: Lease,
}

impl Store {
    /// The writer side of the store, under `lease`: there is no other way to write a blob.
    /// Neither of these compiles:
    ///
    /// ```compile_fail
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = berth_store::Store::open(dir.path()).unwrap();
    /// let d = berth_oci::Digest::sha256_of(b"x");
    /// let w = store.ingest("k", &d, None); // a streaming write without a lease
    /// ```
    ///
    /// ```compile_fail
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = berth_store::Store::open(dir.path()).unwrap();
    /// let d = store.put_blob_bytes(b"x", None); // a small write without a lease
    /// ```
    pub fn ingester(&self, lease: &Lease) -> Ingester {
        Ingester {
            store: self.clone(),
            lease: lease.clone(),
        }
    }
}

impl Ingester {
    /// The store written into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The lease every write is added to.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Lease `expected`, then start (or resume) writing it; see [`BlobWriter`] for resuming
    /// and the busy-key case. `key` identifies the ingest (a pull uses something like
    /// `"<repository>@<digest>"`).
    pub fn writer(
        &self,
        key: &str,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter> {
        self.lease.add(expected)?;
        self.store.ingest(key, expected, expected_size)
    }

    /// Lease and store a small blob given in memory (a configuration, a manifest) and
    /// return its digest. With `expected`, the bytes must hash to it (with its algorithm)
    /// or nothing is stored ([`StoreError::Mismatch`]); without, sha256 is used. Storing a
    /// blob that is already present only refreshes its modification time.
    pub fn put_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = match expected {
            Some(d) => d.clone(),
            None => Digest::sha256_of(data),
        };
        self.lease.add(&digest)?;
        self.store.put_blob_bytes(data, Some(&digest))
    }
}

impl Store {
    /// Start (or resume) writing the blob `expected`, identified by the caller's `key` (any
    /// string; a pull uses something like `"<repository>@<digest>"`).
    ///
    /// If an earlier writer with the same key left data for the same digest, the
    /// new writer continues after it: [`BlobWriter::offset`] says how many bytes are already
    /// there (re-hashed, so the final digest check covers them), and the caller resumes the
    /// download from that offset (an HTTP `Range` request). Otherwise it starts empty.
    ///
    /// While a writer is open it holds a lock on its ingest. A second writer for the same key
    /// (another thread or process) does not wait: it writes a private ingest of its own, and
    /// both commits succeed (the second finds the blob present). `expected_size`, when given,
    /// is enforced as bytes arrive and again at commit. Callers go through [`Ingester::writer`].
    pub(crate) fn ingest(
        &self,
        key: &str,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter> {
        let dir = self.paths.ingest(key);
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Ingest {
                key: key.to_owned(),
                digest: expected.clone(),
                path,
                source,
            }
        };
        let (dir, lock, resumable) = match lock_ingest(&dir).map_err(io_err(&dir))? {
            Some(lock) => (dir, lock, true),
            None => {
                let n = PRIVATE.fetch_add(1, Ordering::Relaxed);
                let private = self.paths.private_ingest(key, n);
                let lock = lock_ingest(&private)
                    .and_then(|l| {
                        l.ok_or_else(|| io::Error::other("private ingest is locked by another"))
                    })
                    .map_err(io_err(&private))?;
                (private, lock, false)
            }
        };
        let wanted = IngestRef {
            key: key.to_owned(),
            expected: expected.clone(),
            expected_size,
            started_at: crate::unix_now(),
        };
        let data_path = ingest::data(&dir);
        let resumed = resumable
            .then(|| resume(&dir, &wanted))
            .transpose()
            .map_err(io_err(&data_path))?
            .flatten();
        let (file, digester) = match resumed {
            Some(found) => found,
            None => {
                let ref_path = ingest::reference(&dir);
                let json = serde_json::to_vec(&wanted).map_err(|e| io_err(&ref_path)(e.into()))?;
                berth_fsutil::atomic_write(&ref_path, &json)
                    .map_err(|e| io_err(&ref_path)(io::Error::other(e)))?;
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .truncate(false)
                    .open(&data_path)
                    .and_then(|f| f.set_len(0).map(|()| f))
                    .map_err(io_err(&data_path))?;
                (file, Digester::new(expected.algorithm()))
            }
        };
        let resumed_from = digester.bytes_hashed();
        Ok(BlobWriter {
            paths: self.paths.clone(),
            key: key.to_owned(),
            dir,
            file: Some(file),
            behind: berth_fsutil::WriteBehind::new(),
            digester: Some(digester),
            expected: expected.clone(),
            expected_size,
            resumed_from,
            resumable,
            finished: false,
            _lock: lock,
        })
    }
}

/// Lock the ingest directory `dir`, creating it; `None` when another writer holds it.
fn lock_ingest(dir: &Path) -> io::Result<Option<FileLock>> {
    FileLock::try_exclusive_unlinkable(&ingest::lock(dir), || std::fs::create_dir_all(dir))
}

/// The data an earlier writer left in `dir` for the same digest, opened for appending and
/// re-hashed; `None` when there is nothing usable.
fn resume(dir: &Path, wanted: &IngestRef) -> io::Result<Option<(File, Digester)>> {
    let Ok(raw) = std::fs::read(ingest::reference(dir)) else {
        return Ok(None);
    };
    let Ok(found) = serde_json::from_slice::<IngestRef>(&raw) else {
        return Ok(None);
    };
    // the recorded size is informational: the new writer's expectation is what is enforced
    if found.expected != wanted.expected {
        return Ok(None);
    }
    let file = match OpenOptions::new()
        .read(true)
        .append(true)
        .open(ingest::data(dir))
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if wanted.expected_size.is_some_and(|size| len > size) {
        return Ok(None);
    }
    let mut digester = Digester::new(wanted.expected.algorithm());
    let copied = io::copy(&mut (&file).take(len), &mut digester)?;
    if copied != len {
        return Ok(None);
    }
    Ok(Some((file, digester)))
}

/// A blob being written into the store; see [`Ingester::writer`].
///
/// Write the content (from [`BlobWriter::offset`] on), then [`BlobWriter::commit`]: it
/// verifies size and digest and only then makes the blob visible. [`BlobWriter::abort`]
/// throws the data away.
///
/// **Dropping a writer without committing keeps its data** under `ingest/` for a later
/// [`Ingester::writer`] with the same key to resume (a private ingest, made when the key was
/// busy, is removed instead). Data nobody resumes is removed by [`Store::prune`] once it has
/// not been written for [`crate::INGEST_EXPIRY`].
pub struct BlobWriter {
    paths: StorePaths,
    key: String,
    dir: PathBuf,
    file: Option<File>,
    /// Flushes to disk while the blob is still arriving (see `berth_fsutil::WriteBehind`).
    behind: berth_fsutil::WriteBehind,
    digester: Option<Digester>,
    expected: Digest,
    expected_size: Option<u64>,
    resumed_from: u64,
    resumable: bool,
    finished: bool,
    // dropped after `Drop::drop` has removed what it must: the directory is never
    // removed by someone who does not hold this lock
    _lock: FileLock,
}

impl BlobWriter {
    /// Bytes written so far, including those found from an earlier writer: where the
    /// caller's download continues.
    pub fn offset(&self) -> u64 {
        self.digester.as_ref().map_or(0, Digester::bytes_hashed)
    }

    /// How many bytes an earlier writer had left (0 for a fresh ingest).
    pub fn resumed_from(&self) -> u64 {
        self.resumed_from
    }

    /// The digest the content must have.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// The ingest key this writer was opened with.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Write everything `r` yields, in large chunks (one read, one write and one hash update
    /// per up to 1 MiB); the number of bytes written. As with `Write`, the content is only
    /// checked by [`BlobWriter::commit`].
    pub fn write_from(&mut self, mut r: impl Read) -> io::Result<u64> {
        let remaining = self.expected_size.map(|s| s.saturating_sub(self.offset()));
        crate::copy_large(&mut r, self, remaining)
    }

    fn err(&self, path: PathBuf, source: io::Error) -> StoreError {
        StoreError::Ingest {
            key: self.key.clone(),
            digest: self.expected.clone(),
            path,
            source,
        }
    }

    /// Flush the data to disk, check its size and digest, and move it into `blobs/`. On a
    /// mismatch the data is deleted, nothing is stored, and [`StoreError::Mismatch`] says
    /// what differed. If the blob is already present (another writer won), the data is
    /// discarded and the present blob's modification time refreshed.
    pub fn commit(mut self) -> Result<Digest> {
        let data = ingest::data(&self.dir);
        let (Some(file), Some(digester)) = (self.file.take(), self.digester.take()) else {
            return Err(self.err(data, io::Error::other("writer already finished")));
        };
        if let Err(e) = self.behind.finish().and_then(|()| file.sync_all()) {
            return Err(self.err(data, e));
        }
        let actual_size = digester.bytes_hashed();
        let verdict = digester.verify(&self.expected, self.expected_size);
        if let Err(source) = verdict {
            self.discard();
            return Err(StoreError::Mismatch {
                digest: self.expected.clone(),
                source,
            });
        }
        // the blob's mtime is the GC grace clock: make it "now", even for resumed data
        let prepared = file
            .set_modified(SystemTime::now())
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(BLOB_MODE)));
        if let Err(e) = prepared {
            return Err(self.err(data, e));
        }
        drop(file);
        let dest = self.paths.blob(&self.expected);
        let commit_err = |source| StoreError::Commit {
            digest: self.expected.clone(),
            source,
        };
        let blob_dir = self.paths.blob_dir(self.expected.algorithm());
        berth_fsutil::create_dir_all_durable(&blob_dir).map_err(commit_err)?;
        if dest.is_file() {
            touch(&dest);
        } else {
            berth_fsutil::rename_durable(&data, &dest).map_err(commit_err)?;
        }
        self.discard();
        tracing::debug!(digest = %self.expected, size = actual_size, "blob committed");
        Ok(self.expected.clone())
    }

    /// Delete the data written so far (also what an earlier writer left).
    pub fn abort(mut self) -> Result<()> {
        self.file = None;
        self.finished = true;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(self.dir.clone(), e)),
        }
    }

    fn discard(&mut self) {
        self.file = None;
        self.finished = true;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (Some(file), Some(digester)) = (self.file.as_mut(), self.digester.as_mut()) else {
            return Err(io::Error::other("blob writer already finished"));
        };
        let so_far = digester.bytes_hashed();
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if let Some(expected) = self.expected_size
            && so_far.saturating_add(len) > expected
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                DigestError::SizeMismatch {
                    expected,
                    actual: so_far.saturating_add(len),
                },
            ));
        }
        let n = file.write(buf)?;
        self.behind.wrote(file, n);
        digester.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.finished && !self.resumable {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("expected_size", &self.expected_size)
            .field("offset", &self.offset())
            .field("resumable", &self.resumable)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_key_gets_a_private_ingest_that_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"abc");
        let mut a = store.ingest("k", &d, Some(3)).unwrap();
        a.write_all(b"a").unwrap();
        let b = store.ingest("k", &d, Some(3)).unwrap();
        assert!(a.resumable && !b.resumable);
        assert_eq!(b.offset(), 0);
        let private = b.dir.clone();
        assert!(private.is_dir());
        drop(b);
        assert!(!private.exists());
        drop(a);
        // the keyed one stays for resumption
        let a = store.ingest("k", &d, Some(3)).unwrap();
        assert!(a.resumable);
        assert_eq!(a.offset(), 1);
    }

    #[test]
    fn write_past_expected_size_fails_early() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"abc");
        let mut w = store.ingest("k", &d, Some(3)).unwrap();
        let err = w.write_all(b"abcd").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn other_digest_under_the_same_key_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d1 = Digest::sha256_of(b"one");
        let d2 = Digest::sha256_of(b"two");
        let mut w = store.ingest("k", &d1, None).unwrap();
        w.write_all(b"on").unwrap();
        drop(w);
        let w = store.ingest("k", &d2, None).unwrap();
        assert_eq!(w.offset(), 0);
        assert_eq!(w.resumed_from(), 0);
    }
}
