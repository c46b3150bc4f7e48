//! The storage driver: the narrow seam between the registry and where bytes live.
//!
//! A driver stores opaque files at `/`-separated relative paths (built only in
//! [`crate::storage::paths`]) and knows nothing of blobs, manifests or repositories: that is
//! the semantic layer in [`crate::storage`]. The filesystem driver is [`fs::FsDriver`], the
//! in-memory one [`memory::MemoryDriver`]; an S3-compatible driver is next, and every one
//! must pass [`testsuite`] (compiled for this crate's tests and, for another crate's, with
//! the `driver-testsuite` feature).
//!
//! The contract is an object store's, not POSIX's:
//! - **Consistency.** Every operation is atomic and linearizable: once a `put_content`,
//!   `put_new`, `put_hint`, `move_to` or `delete` has returned, every later call from any task or process sees its
//!   effect. The garbage collector's safety argument rests on this (and on nothing else).
//! - **Prefixes are not objects.** A "directory" exists while something is stored under it;
//!   deleting a file may remove a parent prefix left empty; nothing can be stored in a prefix
//!   and listing or deleting a prefix with nothing under it is [`DriverError::NotFound`].
//! - **Conditional create.** [`Driver::put_new`] stores a file only if nothing is stored at
//!   its path, as one atomic step: of many concurrent calls on one path, from any task or
//!   process, exactly one succeeds (an object store's `If-None-Match: *`, a filesystem's
//!   `link(2)`). It is the only compare-and-set the contract offers; the garbage collector's
//!   lease ([`crate::storage::lease`]) is built on it alone.
//! - **Moves may be copy + delete.** [`Driver::move_to`] replaces `to` whole (a reader sees
//!   the old or the new content, never a mix) and then removes `from`; it need not be one
//!   atomic step and keeps no metadata. In particular a modification time is never a clock
//!   the registry relies on: the garbage collector's "last referenced" time is data the
//!   storage layer writes ([`crate::storage::paths::blob_last_referenced`]).
//! - **Appends are the upload scratch space only.** A [`Driver::writer`] appends to a path;
//!   nothing written is durable until [`UploadWriter::commit`] with `durable = true`.
//! - **Adoption may be by reference.** [`Driver::adopt`] makes a written file the content
//!   of a path stored whole; a driver without a cheap move (an object store, whose move is
//!   a copy of every byte) may store at the target a reference to the written file's
//!   pieces instead ([`Driver::reference_min`]). The target then behaves as a file stored
//!   whole in every method but [`Driver::list_files`], and the pieces stay stored under the
//!   written file's path: the caller keeps that path out of anything that deletes while a
//!   reference may name it, and deletes it when none does ([`Driver::adopted_from`]).

pub mod fs;
pub mod memory;
pub mod s3;
#[cfg(any(test, feature = "driver-testsuite"))]
pub mod testsuite;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::io::AsyncRead;

/// A failed storage operation, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("path not found in storage: {path}")]
    NotFound { path: String },
    #[error("a file is already stored at {path}")]
    AlreadyExists { path: String },
    #[error("invalid storage path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("storage I/O failed on {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A request to a remote storage service (object storage) failed.
    #[error("storage request failed on {path}")]
    Backend {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("storage write failed on {path}")]
    Fs {
        path: String,
        #[source]
        source: berth_fsutil::FsError,
    },
}

impl DriverError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, DriverError::NotFound { .. })
    }

    /// Whether [`Driver::put_new`] found something already stored at its path.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, DriverError::AlreadyExists { .. })
    }

    /// Whether the storage ran out of space (ENOSPC) or quota (EDQUOT).
    pub fn is_storage_full(&self) -> bool {
        let kind = match self {
            DriverError::Io { source, .. } => Some(source.kind()),
            DriverError::Fs { source, .. } => source.io_kind(),
            _ => None,
        };
        matches!(
            kind,
            Some(std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        )
    }

    pub(crate) fn io(path: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            DriverError::NotFound {
                path: path.to_owned(),
            }
        } else {
            DriverError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }

    pub(crate) fn fs(path: &str, source: berth_fsutil::FsError) -> Self {
        if source.io_kind() == Some(std::io::ErrorKind::NotFound) {
            DriverError::NotFound {
                path: path.to_owned(),
            }
        } else {
            DriverError::Fs {
                path: path.to_owned(),
                source,
            }
        }
    }
}

pub type DResult<T> = Result<T, DriverError>;

/// What [`Driver::stat`] knows about a path.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    pub size: u64,
    /// When the file was last written, if the backend records it (an object store's
    /// `Last-Modified`). Used only to judge whether an upload session is idle; never as the
    /// garbage collector's clock, and not preserved by [`Driver::move_to`].
    pub modified: Option<SystemTime>,
    pub is_dir: bool,
}

/// A reader over stored content, positioned at the requested offset.
pub type BoxReader = Pin<Box<dyn AsyncRead + Send>>;

/// A file's bytes as owned chunks (what a response body sends).
pub type ByteStream = Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Appends bytes to one stored file: the scratch space of an upload session, which the spec
/// lets a registry lose (the client restarts on BLOB_UPLOAD_UNKNOWN). Nothing written is
/// durable until [`UploadWriter::commit`] with `durable = true` returns; dropping the writer
/// keeps what reached storage (an upload can be resumed from [`Driver::stat`]'s size) but
/// promises nothing about it.
pub trait UploadWriter: Send {
    /// Append `chunk`.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = DResult<()>> + Send;
    /// Finish writing and return the file's total size; with `durable`, first make every
    /// byte written so far durable (before content is moved into place).
    fn commit(self, durable: bool) -> impl Future<Output = DResult<u64>> + Send;
}

/// One of a driver's own figures for `/metrics` ([`Driver::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverMetric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub value: u64,
}

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A level, now.
    Gauge,
    /// A running total since the process started.
    Counter,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// A storage backend. Paths are relative, `/`-separated, built by [`crate::storage::paths`].
///
/// Every method is safe to call concurrently from many tasks and from many processes sharing
/// the same backend.
pub trait Driver: Send + Sync + 'static {
    type Writer: UploadWriter;

    /// The whole content of a small file stored whole (by `put_content`, `put_hint`,
    /// `put_new`, or as the target of `move_to`); a [`Driver::writer`]'s file is read with
    /// [`Driver::reader`] (an object store keeps it in pieces, and a missing small file
    /// then costs one request, not two).
    fn get_content(&self, path: &str) -> impl Future<Output = DResult<Bytes>> + Send;
    /// Replace a small file whole, atomically and durably.
    fn put_content(&self, path: &str, data: Bytes) -> impl Future<Output = DResult<()>> + Send;
    /// Create a small file atomically and durably only if nothing is stored at `path`;
    /// otherwise fail with [`DriverError::AlreadyExists`] and leave what is stored untouched.
    /// Of many concurrent `put_new`s on one path (tasks or processes), exactly one succeeds.
    /// No default: every driver must say how it makes the check and the write one step.
    fn put_new(&self, path: &str, data: Bytes) -> impl Future<Output = DResult<()>> + Send;
    /// Replace a small file whole and atomically, durable only eventually: after a machine
    /// crash it may hold its previous content, be empty, or be missing. For hints whose loss
    /// is safe — the garbage collector's clock (see `gc.rs`). Defaults to
    /// [`Driver::put_content`] (object stores have nothing cheaper).
    fn put_hint(&self, path: &str, data: Bytes) -> impl Future<Output = DResult<()>> + Send {
        self.put_content(path, data)
    }
    /// Stream a file from `offset`; also returns the file's total size.
    fn reader(
        &self,
        path: &str,
        offset: u64,
    ) -> impl Future<Output = DResult<(BoxReader, u64)>> + Send;
    /// [`Driver::reader`] as owned chunks, for a response body: the default copies the
    /// reader's bytes into chunks of `chunk` bytes; a driver whose client yields owned
    /// chunks (S3's) hands them on as they come, without that copy.
    fn stream(
        &self,
        path: &str,
        offset: u64,
        chunk: usize,
    ) -> impl Future<Output = DResult<(ByteStream, u64)>> + Send {
        async move {
            let (r, size) = self.reader(path, offset).await?;
            let s: ByteStream = Box::pin(tokio_util::io::ReaderStream::with_capacity(r, chunk));
            Ok((s, size))
        }
    }
    /// Open `path` for appending (created, with its parents, if missing — at the latest
    /// when the writer commits; not durably: see [`UploadWriter`]).
    fn writer(&self, path: &str) -> impl Future<Output = DResult<Self::Writer>> + Send;
    /// Open for appending a file that only writers have written (never `put_content` and
    /// the like) and that holds `size` bytes, as [`Driver::list_files`] or [`Driver::stat`]
    /// said a moment ago (0: nothing is stored there yet). The driver may take `size` on
    /// trust rather than look again, so it must be a size storage reported. If the file grew
    /// meanwhile, the appends must never overwrite or interleave with what another writer
    /// stored: they fail (an object store's conditional create of the piece starting at
    /// `size`) or land after it (a filesystem's append). Defaults to [`Driver::writer`],
    /// which looks.
    fn writer_at(
        &self,
        path: &str,
        size: u64,
    ) -> impl Future<Output = DResult<Self::Writer>> + Send {
        let _ = size;
        self.writer(path)
    }
    /// Size, modification time, and whether the path is a directory (prefix).
    fn stat(&self, path: &str) -> impl Future<Output = DResult<FileInfo>> + Send;
    /// [`Driver::stat`] of a file stored whole (by `put_content`, `put_hint`, `put_new`, or
    /// as the target of `move_to`): the same answer for such a file, and
    /// [`DriverError::NotFound`] when none is stored at `path` — a written file or a prefix
    /// there may be reported as not found too. For paths the storage layer only ever stores
    /// whole (a blob's content): an object store answers it with one HEAD, where `stat`
    /// needs listings to tell "nothing" from a written file or a prefix. Defaults to `stat`.
    fn stat_stored(&self, path: &str) -> impl Future<Output = DResult<FileInfo>> + Send {
        self.stat(path)
    }
    /// The files and directories directly under the directory `path`, by name (sorted),
    /// each with what [`Driver::stat`] says of it (a written file is one file, of its whole
    /// size); [`DriverError::NotFound`] when nothing is stored under `path`. An upload
    /// session's state in one call: an object store answers it from one listing when the
    /// directory holds few keys. Defaults to [`Driver::list`], then `stat` of each name.
    fn list_files(
        &self,
        path: &str,
    ) -> impl Future<Output = DResult<Vec<(String, FileInfo)>>> + Send {
        async move {
            let names = self.list(path).await?;
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                match self.stat(&format!("{path}/{n}")).await {
                    Ok(info) => out.push((n, info)),
                    // removed since the listing
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        }
    }
    /// Names of the direct children of a directory (prefix), sorted.
    fn list(&self, path: &str) -> impl Future<Output = DResult<Vec<String>>> + Send;
    /// Move a file durably to `to`, replacing any file there whole, then remove `from`.
    /// May be a copy followed by a delete (not one atomic step); metadata such as the
    /// modification time is not kept.
    fn move_to(&self, from: &str, to: &str) -> impl Future<Output = DResult<()>> + Send;
    /// The smallest written file [`Driver::adopt`] stores by reference rather than moves;
    /// `None` (the default) when it always moves. The storage layer keeps the data of upload
    /// sessions apart from the sessions when this is `Some`.
    fn reference_min(&self) -> Option<u64> {
        None
    }
    /// The driver's own figures for `/metrics`: what it holds now, and what it has done.
    /// None by default.
    fn metrics(&self) -> Vec<DriverMetric> {
        Vec::new()
    }
    /// Make the written file `from`, of `size` bytes as [`Driver::stat`] or
    /// [`Driver::list_files`] said, the content of `to`, replacing any file there whole.
    /// Below [`Driver::reference_min`] (and by default) this is [`Driver::move_to`]. At or
    /// above it the driver may store at `to` a reference to `from`'s pieces instead of
    /// copying them: `to` then reads, stats, redirects, moves and deletes as a file stored
    /// whole holding that content (a move moves the reference; a delete deletes only the
    /// reference), and `from` stays stored — never to be written again, and deleted by the
    /// caller only when no reference names it ([`Driver::adopted_from`]).
    fn adopt(&self, from: &str, to: &str, size: u64) -> impl Future<Output = DResult<()>> + Send {
        let _ = size;
        self.move_to(from, to)
    }
    /// The written file whose pieces the file stored at `path` references (made by
    /// [`Driver::adopt`], or moved from such a file); `None` for a file holding its own
    /// content, and [`DriverError::NotFound`] when nothing is stored whole at `path`.
    /// Defaults to `None` after [`Driver::stat_stored`].
    fn adopted_from(&self, path: &str) -> impl Future<Output = DResult<Option<String>>> + Send {
        async move {
            self.stat_stored(path).await?;
            Ok(None)
        }
    }
    /// Delete a file, or a prefix and everything under it. Deleting a file may also remove
    /// its parent prefix when nothing else is left under it.
    fn delete(&self, path: &str) -> impl Future<Output = DResult<()>> + Send;
    /// A URL the client may fetch `path` from directly for a while (an object store's
    /// presigned URL), when the driver is configured to hand them out; `None` otherwise,
    /// and the registry streams the content itself.
    fn redirect_url(&self, path: &str) -> impl Future<Output = DResult<Option<String>>> + Send {
        let _ = path;
        async { Ok(None) }
    }
    /// Bytes an unprivileged writer may still store, when the backend has such a limit
    /// (`None`: unlimited or unknown). Cheap enough to ask while an upload streams.
    fn available_bytes(&self) -> Option<u64> {
        None
    }
}
