//! The storage driver: the narrow seam between the registry and where bytes live.
//!
//! Everything the registry knows — blobs, manifests, tags, referrers, upload sessions — is a
//! file in a [`Driver`], addressed by a `/`-separated relative path built only in
//! [`crate::paths`]. No registry state lives in process memory, so replicas can share one
//! object store and a restarted server resumes where it stopped. The filesystem driver is
//! [`fs::FsDriver`]; an S3-compatible driver is the next implementation, and both must pass
//! [`testsuite`].
//!
//! Lifecycle of content: a [`Driver::writer`] appends to a path (an upload's data); the
//! registry verifies the digest of what was written and only then [`Driver::move_to`]s it
//! into place. Small metadata files are replaced whole and atomically by
//! [`Driver::put_content`].

pub mod fs;
#[cfg(test)]
mod testsuite;

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
    #[error("invalid storage path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("storage I/O failed on {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
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
    pub modified: SystemTime,
    pub is_dir: bool,
}

/// A reader over stored content, positioned at the requested offset.
pub type BoxReader = Pin<Box<dyn AsyncRead + Send>>;

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

/// A storage backend. Paths are relative, `/`-separated, built by [`crate::paths`].
///
/// Every method is safe to call concurrently from many tasks and from many processes sharing
/// the same backend.
pub trait Driver: Send + Sync + 'static {
    type Writer: UploadWriter;

    /// The whole content of a small file.
    fn get_content(&self, path: &str) -> impl Future<Output = DResult<Bytes>> + Send;
    /// Replace a small file whole, atomically and durably.
    fn put_content(&self, path: &str, data: Bytes) -> impl Future<Output = DResult<()>> + Send;
    /// Stream a file from `offset`; also returns the file's total size.
    fn reader(
        &self,
        path: &str,
        offset: u64,
    ) -> impl Future<Output = DResult<(BoxReader, u64)>> + Send;
    /// Open `path` for appending (created, with its parents, if missing; not durably: see
    /// [`UploadWriter`]).
    fn writer(&self, path: &str) -> impl Future<Output = DResult<Self::Writer>> + Send;
    /// Size, modification time, and whether the path is a directory (prefix).
    fn stat(&self, path: &str) -> impl Future<Output = DResult<FileInfo>> + Send;
    /// Names of the direct children of a directory (prefix), sorted.
    fn list(&self, path: &str) -> impl Future<Output = DResult<Vec<String>>> + Send;
    /// Move a file into place atomically and durably, replacing any file at `to`.
    fn move_to(&self, from: &str, to: &str) -> impl Future<Output = DResult<()>> + Send;
    /// Delete a file, or a directory (prefix) and everything under it.
    fn delete(&self, path: &str) -> impl Future<Output = DResult<()>> + Send;
    /// Set a file's modification time to now (the garbage collector's grace clock).
    fn touch(&self, path: &str) -> impl Future<Output = DResult<()>> + Send;
    /// Bytes an unprivileged writer may still store, when the backend has such a limit
    /// (`None`: unlimited or unknown). Cheap enough to ask while an upload streams.
    fn available_bytes(&self) -> Option<u64> {
        None
    }
}
