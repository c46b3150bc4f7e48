//! What failed while allocating an id range or mounting a root filesystem for one.

use std::path::PathBuf;

use crate::snapshot::{ErrorKind, MountError, SnapshotError};

/// A failure of the allocator ([`super::IdAllocator`]) or of [`super::prepare`]/[`super::mount`].
#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error(
        "no subordinate ids for {users} in both {subuid} and {subgid}; hint: add a line \
         `containers:2147483647:2147483648` to both files (as podman's documentation says), \
         or run with --userns=host"
    )]
    NoSubids {
        users: String,
        subuid: PathBuf,
        subgid: PathBuf,
    },
    #[error(
        "no free range of {size} ids left in {subuid} for {user}: {in_use} container(s) hold \
         ranges; hint: remove containers, grant more ids to `{user}` in {subuid} and {subgid}, \
         or run with --userns=host"
    )]
    Exhausted {
        size: u32,
        user: String,
        in_use: usize,
        subuid: PathBuf,
        subgid: PathBuf,
    },
    #[error("invalid id range size {size}: it must be between 1 and 2^32-1")]
    InvalidSize { size: u32 },
    #[error("cannot read {path}")]
    ReadSubids {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {action} the id range state {path}")]
    State {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write the id range state {path}")]
    Persist {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("the id range state {path} is corrupt: {reason}; remove it when no container runs")]
    Corrupt { path: PathBuf, reason: String },
    #[error("failed to {action} for a user namespace mapping 0 to {host_start} ({size} ids)")]
    Userns {
        action: &'static str,
        host_start: u32,
        size: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to make an id-mapped mount of {path}")]
    IdmapMount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {action} {path} while shifting its owners to a container's id range")]
    Shift {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("an id-mapped container root was asked for, but this kernel cannot: {reason}")]
    IdmapUnsupported { reason: String },
    #[error("snapshot {key} for the id range")]
    Snapshot {
        key: String,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error(transparent)]
    Mount(#[from] MountError),
}

impl IdmapError {
    /// The class of the failure (containerd's `errdefs`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdmapError::NoSubids { .. } | IdmapError::Exhausted { .. } => ErrorKind::Unavailable,
            IdmapError::InvalidSize { .. } => ErrorKind::InvalidInput,
            IdmapError::IdmapUnsupported { .. } => ErrorKind::Unavailable,
            IdmapError::Snapshot { source, .. } => source.kind(),
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn snapshot(key: &str) -> impl FnOnce(SnapshotError) -> IdmapError {
        let key = key.to_owned();
        move |e| IdmapError::Snapshot {
            key,
            source: Box::new(e),
        }
    }
}
