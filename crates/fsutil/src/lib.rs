//! Durable, atomic file writes and in-root path resolution.
//!
//! This crate owns every operation in berth that makes a file visible under its final name:
//! content is written to a temporary file in the destination directory, flushed with `fsync`,
//! optionally verified, renamed over the destination, and the directory is `fsync`ed so the
//! rename itself survives a crash. Nothing here knows about OCI; callers pass bytes and paths.
//!
//! It also resolves caller-supplied relative paths inside a root without letting `..`,
//! absolute components or symlinks escape it ([`join_in_root`], [`open_in_root`], and
//! [`open_dir_in_root_at`] for fd-relative work such as unpacking a layer).
//!
//! It reads `/proc/PID/mountinfo` once for all ([`mountinfo`]).
//!
//! And it waits for helper processes with a bound ([`wait_or_kill_group`]): a helper past
//! its deadline is killed with its process group.
//!
//! Design decision: the temporary file lives in the *destination directory* (never `/tmp`),
//! so the final step is always a same-filesystem `rename(2)`, which is atomic.

mod atomic;
mod lock;
pub mod mountinfo;
mod process;
mod root;
mod userns;
mod writebehind;

pub use atomic::{
    AtomicFile, atomic_replace, atomic_replace_private, atomic_rewrite, atomic_write,
    atomic_write_many, create_dir_all_durable, rename_durable, rename_unsynced, sync_dir,
};
pub use lock::FileLock;
pub use process::wait_or_kill_group;
pub use root::{join_in_root, open_dir_in_root_at, open_in_root};
pub use userns::{is_initial_user_namespace, running_in_user_namespace};
pub use writebehind::WriteBehind;

use std::path::PathBuf;

/// What failed, on which path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("failed to create temporary file in {dir}")]
    CreateTemp {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to flush {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to link {from} to {to}")]
    Link {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("verification of {path} failed before it was made visible")]
    Verify {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("path {path:?} escapes its root {root}: {reason}")]
    Escape {
        root: PathBuf,
        path: String,
        reason: &'static str,
    },
    #[error("failed to open {path} inside {root}")]
    Open {
        root: PathBuf,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl FsError {
    /// The underlying I/O error kind, when there is one (`NotFound`, `AlreadyExists`, …).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            FsError::CreateTemp { source, .. }
            | FsError::Write { source, .. }
            | FsError::Sync { source, .. }
            | FsError::Rename { source, .. }
            | FsError::Link { source, .. }
            | FsError::CreateDir { source, .. }
            | FsError::Open { source, .. } => Some(source.kind()),
            FsError::Verify { .. } | FsError::Escape { .. } => None,
        }
    }
}
