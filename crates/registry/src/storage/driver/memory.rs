//! The in-memory driver: every file a byte buffer in one map, prefixes implicit.
//!
//! It exists to prove that the [`Driver`] contract is not secretly POSIX, and to run the
//! whole registry in tests without a filesystem. It behaves as an object store does: no
//! empty prefixes, and — with [`MemoryDriver::object_store_like`] — moves that are a copy
//! followed by a delete (with a scheduling point between them) and no modification times.
//! Nothing is durable beyond the process, so `durable` commits are trivially satisfied.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;

use super::{BoxReader, DResult, Driver, DriverError, FileInfo, UploadWriter};

#[derive(Debug, Clone)]
struct File {
    data: Vec<u8>,
    modified: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, File>,
}

/// Stores everything in memory; clones share the same storage.
#[derive(Debug, Clone, Default)]
pub struct MemoryDriver {
    state: Arc<Mutex<State>>,
    copy_delete_moves: bool,
    no_mtime: bool,
}

impl MemoryDriver {
    /// Moves are atomic renames; files have modification times.
    pub fn new() -> MemoryDriver {
        MemoryDriver::default()
    }

    /// Behave like object storage: [`Driver::move_to`] is a copy, a yield to the scheduler,
    /// then a delete of the source, and [`Driver::stat`] knows no modification time.
    pub fn object_store_like() -> MemoryDriver {
        MemoryDriver {
            copy_delete_moves: true,
            no_mtime: true,
            ..MemoryDriver::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock cannot leave the map half-updated: every
        // operation is one insert or remove
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Check a path as the filesystem driver's `join_in_root` would: relative, no `.`/`..`, no
/// empty segments.
fn check(path: &str) -> DResult<()> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(DriverError::InvalidPath {
            path: path.to_owned(),
            reason: "not a plain relative path",
        })
    }
}

fn not_found(path: &str) -> DriverError {
    DriverError::NotFound {
        path: path.to_owned(),
    }
}

fn prefix_of(path: &str) -> String {
    format!("{path}/")
}

impl State {
    fn has_prefix(&self, path: &str) -> bool {
        let p = prefix_of(path);
        self.files
            .range(p.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&p))
    }

    /// A file cannot be stored where a prefix is, nor under a file.
    fn check_writable(&self, path: &str) -> DResult<()> {
        if self.has_prefix(path) {
            return Err(DriverError::InvalidPath {
                path: path.to_owned(),
                reason: "a directory is stored there",
            });
        }
        let mut cur = path;
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if self.files.contains_key(parent) {
                return Err(DriverError::InvalidPath {
                    path: path.to_owned(),
                    reason: "a parent is a file",
                });
            }
            cur = parent;
        }
        Ok(())
    }
}

impl State {
    /// Store `data` at `path`, replacing any file there.
    fn insert(&mut self, path: &str, data: &[u8]) -> DResult<()> {
        self.check_writable(path)?;
        self.files.insert(
            path.to_owned(),
            File {
                data: data.to_vec(),
                modified: SystemTime::now(),
            },
        );
        Ok(())
    }
}

impl Driver for MemoryDriver {
    type Writer = MemoryWriter;

    async fn get_content(&self, path: &str) -> DResult<Bytes> {
        check(path)?;
        self.lock()
            .files
            .get(path)
            .map(|f| Bytes::copy_from_slice(&f.data))
            .ok_or_else(|| not_found(path))
    }

    async fn put_content(&self, path: &str, data: Bytes) -> DResult<()> {
        check(path)?;
        self.lock().insert(path, &data)
    }

    /// The check and the insert happen under one hold of the lock.
    async fn put_new(&self, path: &str, data: Bytes) -> DResult<()> {
        check(path)?;
        let mut st = self.lock();
        if st.files.contains_key(path) {
            return Err(DriverError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        st.insert(path, &data)
    }

    async fn reader(&self, path: &str, offset: u64) -> DResult<(BoxReader, u64)> {
        let data = self.get_content(path).await?;
        let size = data.len() as u64;
        let start = usize::try_from(offset.min(size)).unwrap_or(data.len());
        Ok((Box::pin(std::io::Cursor::new(data.slice(start..))), size))
    }

    async fn writer(&self, path: &str) -> DResult<MemoryWriter> {
        check(path)?;
        let mut st = self.lock();
        st.check_writable(path)?;
        st.files.entry(path.to_owned()).or_insert_with(|| File {
            data: Vec::new(),
            modified: SystemTime::now(),
        });
        Ok(MemoryWriter {
            driver: self.clone(),
            path: path.to_owned(),
        })
    }

    async fn stat(&self, path: &str) -> DResult<FileInfo> {
        check(path)?;
        let st = self.lock();
        let modified = |t: SystemTime| (!self.no_mtime).then_some(t);
        if let Some(f) = st.files.get(path) {
            return Ok(FileInfo {
                size: f.data.len() as u64,
                modified: modified(f.modified),
                is_dir: false,
            });
        }
        if st.has_prefix(path) {
            return Ok(FileInfo {
                size: 0,
                modified: None,
                is_dir: true,
            });
        }
        Err(not_found(path))
    }

    async fn list(&self, path: &str) -> DResult<Vec<String>> {
        check(path)?;
        let st = self.lock();
        let p = prefix_of(path);
        // sorted by name, not by key: "b-" sorts after "b" but "b-…" keys before "b/…"
        let mut names = std::collections::BTreeSet::new();
        for k in st.files.range(p.clone()..).map(|(k, _)| k) {
            let Some(rest) = k.strip_prefix(&p) else {
                break;
            };
            names.insert(rest.split('/').next().unwrap_or(rest).to_owned());
        }
        if names.is_empty() {
            return Err(not_found(path));
        }
        Ok(names.into_iter().collect())
    }

    async fn move_to(&self, from: &str, to: &str) -> DResult<()> {
        check(from)?;
        check(to)?;
        if !self.copy_delete_moves {
            let mut st = self.lock();
            let f = st.files.get(from).cloned().ok_or_else(|| not_found(from))?;
            st.check_writable(to)?;
            st.files.remove(from);
            st.files.insert(to.to_owned(), f);
            return Ok(());
        }
        // copy (a new object: a new modification time), let others run, delete
        let data = self.get_content(from).await?;
        self.put_content(to, data).await?;
        tokio::task::yield_now().await;
        match self.lock().files.remove(from) {
            Some(_) => Ok(()),
            // someone else moved or deleted the source meanwhile; the copy is in place
            None => Ok(()),
        }
    }

    async fn delete(&self, path: &str) -> DResult<()> {
        check(path)?;
        let mut st = self.lock();
        if st.files.remove(path).is_some() {
            return Ok(());
        }
        let p = prefix_of(path);
        let doomed: Vec<String> = st
            .files
            .range(p.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&p))
            .cloned()
            .collect();
        if doomed.is_empty() {
            return Err(not_found(path));
        }
        for k in doomed {
            st.files.remove(&k);
        }
        Ok(())
    }
}

/// Appends straight into the stored buffer: what was written is visible at once.
#[derive(Debug)]
pub struct MemoryWriter {
    driver: MemoryDriver,
    path: String,
}

impl UploadWriter for MemoryWriter {
    async fn write(&mut self, chunk: Bytes) -> DResult<()> {
        let mut st = self.driver.lock();
        let f = st
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        f.data.extend_from_slice(&chunk);
        f.modified = SystemTime::now();
        Ok(())
    }

    async fn commit(self, _durable: bool) -> DResult<u64> {
        let st = self.driver.lock();
        st.files
            .get(&self.path)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| not_found(&self.path))
    }
}
