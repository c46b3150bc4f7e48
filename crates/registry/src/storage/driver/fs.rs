//! The filesystem driver: one file per path under a root directory.
//!
//! Small files are replaced with `berth_fsutil::atomic_write`, and created only-if-absent
//! (`put_new`) by linking a synced temporary file into place (`AtomicFile::commit_new`); moves use
//! `berth_fsutil::rename_durable` (atomic here, though the contract allows copy + delete);
//! appends are flushed with `fsync` on commit. Deleting a file removes its directory when
//! that is left empty (as an object store has no empty prefixes), and a write that finds its
//! directory removed by such a delete meanwhile creates it again. Blocking
//! filesystem calls run on tokio's blocking pool. Every path is joined with
//! `berth_fsutil::join_in_root`, so no path can leave the root even if a caller bug let `..`
//! through.
//!
//! Everything is private whatever the umask: directories are created 0700 and files 0600
//! (pushed images may be private, and the root also holds `token.key`); [`prepare_root`]
//! makes the root itself 0700.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{BoxReader, DResult, Driver, DriverError, FileInfo, UploadWriter};

/// Stores everything under `root`.
#[derive(Debug, Clone)]
pub struct FsDriver {
    root: Arc<PathBuf>,
}

impl FsDriver {
    pub fn new(root: impl Into<PathBuf>) -> FsDriver {
        FsDriver {
            root: Arc::new(root.into()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> DResult<PathBuf> {
        berth_fsutil::join_in_root(&self.root, path).map_err(|_| DriverError::InvalidPath {
            path: path.to_owned(),
            reason: "not a plain relative path",
        })
    }
}

/// Create `dir` and its missing parents with mode 0700 (whatever the umask), `fsync`ing each
/// new level's parent so the entries are durable.
fn create_dir_all_private(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all_private(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // the umask may only have removed bits; make it exactly 0700
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => {
                    berth_fsutil::sync_dir(p).map_err(std::io::Error::other)
                }
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Remove `dir` if it is empty (`rmdir` refuses otherwise, atomically, so a file created in
/// it meanwhile is never lost). Best effort and not made durable: an empty directory left
/// behind (or back, after a crash) is only untidy.
fn remove_if_empty(root: &Path, dir: &Path) {
    if dir == root || !dir.starts_with(root) {
        return;
    }
    let _ = std::fs::remove_dir(dir);
}

/// Create the storage root (and its missing parents) private, and make the root itself 0700
/// if it already existed with wider permissions.
pub fn prepare_root(root: &Path) -> std::io::Result<()> {
    create_dir_all_private(root)?;
    let mode = std::fs::metadata(root)?.permissions().mode() & 0o7777;
    if mode != 0o700 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Write `data` to `full` atomically and durably, as a 0600 file in 0700 directories. With
/// `new`, only if nothing is there: linked into place (`link(2)` never replaces), so exactly
/// one of many concurrent creators succeeds.
fn write_private(full: &Path, data: &[u8], new: bool) -> Result<(), berth_fsutil::FsError> {
    in_parent(
        full,
        || write_private_once(full, data, new),
        |source| berth_fsutil::FsError::CreateDir {
            path: full.parent().unwrap_or(full).to_owned(),
            source,
        },
        |e| e.io_kind() == Some(std::io::ErrorKind::NotFound),
    )
}

fn write_private_once(full: &Path, data: &[u8], new: bool) -> Result<(), berth_fsutil::FsError> {
    let mut f = berth_fsutil::AtomicFile::create(full)?;
    let temp = f.temp_path().to_owned();
    if let Some(file) = f.file() {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| berth_fsutil::FsError::Write {
                path: temp.clone(),
                source,
            })?;
    }
    f.write_all(data)
        .map_err(|source| berth_fsutil::FsError::Write { path: temp, source })?;
    if new {
        f.commit_new()?;
    } else {
        f.commit()?;
    }
    Ok(())
}

/// How often a write retries when a concurrent delete removed the directory it had just
/// created (each retry means another writer or deleter made progress).
const PARENT_RACE_RETRIES: usize = 8;

/// Run `op` after creating `full`'s parent, again when it failed because the parent was
/// removed in between (by a delete pruning a directory it had emptied): the parent is gone
/// now, or `op` found something missing (`not_found`) — the parent may have been removed
/// and created again by another writer before this looks.
fn in_parent<T, E>(
    full: &Path,
    mut op: impl FnMut() -> Result<T, E>,
    mkdir_err: impl Fn(std::io::Error) -> E,
    not_found: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut tries = 0;
    loop {
        if let Some(parent) = full.parent() {
            create_dir_all_private(parent).map_err(&mkdir_err)?;
        }
        match op() {
            Ok(v) => return Ok(v),
            Err(e) => {
                tries += 1;
                let parent_gone = full.parent().is_some_and(|p| !p.is_dir()) || not_found(&e);
                if !parent_gone || tries > PARENT_RACE_RETRIES {
                    return Err(e);
                }
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    path: &str,
    f: impl FnOnce() -> DResult<T> + Send + 'static,
) -> DResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(DriverError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        }),
    }
}

impl Driver for FsDriver {
    type Writer = FsWriter;

    /// Read inline rather than on the blocking pool: `get_content` is only used for small
    /// files (links, revision records, manifests of at most a few MiB) that the page cache
    /// holds, where a thread hand-off costs more than the read.
    async fn get_content(&self, path: &str) -> DResult<Bytes> {
        let full = self.full(path)?;
        std::fs::read(&full)
            .map(Bytes::from)
            .map_err(|e| DriverError::io(path, e))
    }

    async fn put_content(&self, path: &str, data: Bytes) -> DResult<()> {
        let full = self.full(path)?;
        let p = path.to_owned();
        blocking(path, move || {
            write_private(&full, &data, false).map_err(|e| DriverError::fs(&p, e))
        })
        .await
    }

    async fn put_new(&self, path: &str, data: Bytes) -> DResult<()> {
        let full = self.full(path)?;
        let p = path.to_owned();
        blocking(path, move || {
            write_private(&full, &data, true).map_err(|e| {
                if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) {
                    DriverError::AlreadyExists { path: p.clone() }
                } else {
                    DriverError::fs(&p, e)
                }
            })
        })
        .await
    }

    /// Temporary file (0600 like every other file) + rename without `fsync`
    /// (`berth_fsutil::atomic_replace_private`). Nothing touches the file after the rename:
    /// a collector on another replica may delete it at once, and that is not this write's
    /// failure.
    async fn put_hint(&self, path: &str, data: Bytes) -> DResult<()> {
        let full = self.full(path)?;
        let p = path.to_owned();
        blocking(path, move || {
            in_parent(
                &full,
                || {
                    berth_fsutil::atomic_replace_private(&full, &data)
                        .map_err(|e| DriverError::fs(&p, e))
                },
                |e| DriverError::io(&p, e),
                DriverError::is_not_found,
            )
        })
        .await
    }

    async fn reader(&self, path: &str, offset: u64) -> DResult<(BoxReader, u64)> {
        let full = self.full(path)?;
        let p = path.to_owned();
        let (file, size) = blocking(path, move || {
            let mut f = std::fs::File::open(&full).map_err(|e| DriverError::io(&p, e))?;
            let size = f.metadata().map_err(|e| DriverError::io(&p, e))?.len();
            if offset > 0 {
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| DriverError::io(&p, e))?;
            }
            Ok((f, size))
        })
        .await?;
        let mut file = tokio::fs::File::from_std(file);
        file.set_max_buf_size(1 << 20);
        Ok((Box::pin(file), size))
    }

    async fn writer(&self, path: &str) -> DResult<FsWriter> {
        let full = self.full(path)?;
        let p = path.to_owned();
        let file = blocking(path, move || {
            // upload scratch space: durability comes from commit(true) + move_to
            in_parent(
                &full,
                || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(&full)
                },
                |e| e,
                |e| e.kind() == std::io::ErrorKind::NotFound,
            )
            .map_err(|e| DriverError::io(&p, e))
        })
        .await?;
        Ok(FsWriter::spawn(path.to_owned(), file))
    }

    /// Inline for the same reason as `get_content`: one `statx` on cached metadata.
    async fn stat(&self, path: &str) -> DResult<FileInfo> {
        let full = self.full(path)?;
        let m = std::fs::metadata(&full).map_err(|e| DriverError::io(path, e))?;
        Ok(FileInfo {
            size: m.len(),
            modified: m.modified().ok(),
            is_dir: m.is_dir(),
        })
    }

    async fn list(&self, path: &str) -> DResult<Vec<String>> {
        let full = self.full(path)?;
        let p = path.to_owned();
        blocking(path, move || {
            let rd = std::fs::read_dir(&full).map_err(|e| DriverError::io(&p, e))?;
            let mut names = Vec::new();
            for entry in rd {
                let entry = entry.map_err(|e| DriverError::io(&p, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                // temporaries of in-flight atomic writes are not content
                if !name.starts_with('.') {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn move_to(&self, from: &str, to: &str) -> DResult<()> {
        let src = self.full(from)?;
        let dst = self.full(to)?;
        let p = to.to_owned();
        let root = self.root.clone();
        blocking(to, move || {
            in_parent(
                &dst,
                || berth_fsutil::rename_durable(&src, &dst).map_err(|e| DriverError::fs(&p, e)),
                |e| DriverError::io(&p, e),
                DriverError::is_not_found,
            )?;
            // the source's directory may be empty now
            if let Some(parent) = src.parent() {
                remove_if_empty(&root, parent);
            }
            Ok(())
        })
        .await
    }

    async fn delete(&self, path: &str) -> DResult<()> {
        let full = self.full(path)?;
        let p = path.to_owned();
        let root = self.root.clone();
        blocking(path, move || {
            let m = std::fs::symlink_metadata(&full).map_err(|e| DriverError::io(&p, e))?;
            let r = if m.is_dir() {
                std::fs::remove_dir_all(&full)
            } else {
                std::fs::remove_file(&full)
            };
            r.map_err(|e| DriverError::io(&p, e))?;
            if let Some(parent) = full.parent() {
                berth_fsutil::sync_dir(parent).map_err(|e| DriverError::fs(&p, e))?;
                if !m.is_dir() {
                    remove_if_empty(&root, parent);
                }
            }
            Ok(())
        })
        .await
    }

    /// `statvfs` of the root: blocks available to unprivileged users × fragment size.
    fn available_bytes(&self) -> Option<u64> {
        let st = rustix::fs::statvfs(self.root.as_path()).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

enum Op {
    Write(Bytes),
    Commit(bool, oneshot::Sender<DResult<u64>>),
}

/// Appends on a dedicated blocking task fed through a bounded channel, so network reads,
/// hashing and disk writes overlap.
#[derive(Debug)]
pub struct FsWriter {
    path: String,
    tx: mpsc::Sender<Op>,
    failed: Arc<std::sync::Mutex<Option<std::io::Error>>>,
}

impl FsWriter {
    fn spawn(path: String, mut file: std::fs::File) -> FsWriter {
        let (tx, mut rx) = mpsc::channel::<Op>(8);
        let failed = Arc::new(std::sync::Mutex::new(None));
        let failed2 = failed.clone();
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            while let Some(op) = rx.blocking_recv() {
                match op {
                    Op::Write(chunk) => {
                        if let Err(e) = file.write_all(&chunk) {
                            if let Ok(mut g) = failed2.lock() {
                                *g = Some(e);
                            }
                            return;
                        }
                    }
                    Op::Commit(durable, reply) => {
                        let synced = if durable { file.sync_data() } else { Ok(()) };
                        let r = synced
                            .and_then(|()| file.metadata())
                            .map(|m| m.len())
                            .map_err(|e| DriverError::io(&p, e));
                        let _ = reply.send(r);
                        return;
                    }
                }
            }
        });
        FsWriter { path, tx, failed }
    }

    fn take_failure(&self) -> DriverError {
        let err = self
            .failed
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_else(|| std::io::Error::other("writer task ended"));
        DriverError::io(&self.path, err)
    }
}

impl UploadWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> DResult<()> {
        if self.tx.send(Op::Write(chunk)).await.is_err() {
            return Err(self.take_failure());
        }
        Ok(())
    }

    async fn commit(self, durable: bool) -> DResult<u64> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Op::Commit(durable, reply)).await.is_err() {
            return Err(self.take_failure());
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.take_failure()),
        }
    }
}
