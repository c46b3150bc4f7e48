//! What failed in the snapshotter, on which snapshot and path, and what to do.

use std::path::PathBuf;

/// The class of a [`SnapshotError`], as containerd's `errdefs`: what a caller decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The snapshot (or its parent) does not exist.
    NotFound,
    /// A snapshot with that key already exists.
    AlreadyExists,
    /// The request cannot be satisfied as asked (bad key, wrong kind, bad root).
    InvalidInput,
    /// The snapshot is needed by something else (children, a mount).
    Conflict,
    /// The kernel or filesystem cannot do it here (overlayfs unavailable, too many layers).
    Unavailable,
    /// An I/O failure or corrupt metadata.
    Internal,
}

/// A snapshotter failure.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {key:?} does not exist in {root}")]
    NotFound { key: String, root: PathBuf },
    #[error("snapshot {key:?} already exists in {root}; use it, or remove it first to replace it")]
    AlreadyExists { key: String, root: PathBuf },
    #[error("snapshot {key:?} is {actual}, but {operation} needs {expected} snapshot")]
    WrongKind {
        key: String,
        operation: &'static str,
        actual: &'static str,
        expected: &'static str,
    },
    #[error(
        "parent {parent:?} of snapshot {key:?} is {actual}, not committed; commit it before preparing on top of it"
    )]
    ParentNotCommitted {
        key: String,
        parent: String,
        actual: &'static str,
    },
    #[error(
        "snapshot {key:?} has {count} child snapshot(s) (one is {child:?}); remove the children first"
    )]
    HasChildren {
        key: String,
        count: usize,
        child: String,
    },
    #[error("snapshot {key:?} is in use: {path} is mounted ({how}); unmount it first")]
    InUse {
        key: String,
        path: PathBuf,
        how: String,
    },
    #[error(
        "lease {lease:?} for snapshot {key:?} is not held by a running process; take a new lease with `Snapshotter::lease` and keep it while working"
    )]
    DeadLease { key: String, lease: String },
    #[error("cannot commit snapshot {key:?} onto the given parent: {reason}")]
    Rebase { key: String, reason: &'static str },
    #[error("invalid snapshot key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("snapshot root {root} cannot be used: {reason}")]
    InvalidRoot { root: PathBuf, reason: String },
    #[error("failed to {action} {}{}", .path.display(), key_note(.key))]
    Io {
        key: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write snapshot metadata in {root}")]
    WriteMetadata {
        root: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error(
        "snapshot metadata {path} is unreadable; restore it from a backup, or remove {root} to start again (every snapshot is lost)"
    )]
    CorruptMetadata {
        path: PathBuf,
        root: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "snapshot root {root} was created by the {found} snapshotter, not {expected}; open it with that snapshotter or use another root"
    )]
    DriverMismatch {
        root: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error(
        "snapshot metadata {path} has layout version {found}; this berth reads version {expected}"
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(transparent)]
    Mount(#[from] MountError),
}

/// ` (snapshot "KEY")`, or nothing for an operation on the root itself.
fn key_note(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" (snapshot {key:?})")
    }
}

impl SnapshotError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            SnapshotError::WrongKind { .. }
            | SnapshotError::ParentNotCommitted { .. }
            | SnapshotError::InvalidKey { .. }
            | SnapshotError::DeadLease { .. }
            | SnapshotError::Rebase { .. }
            | SnapshotError::InvalidRoot { .. }
            | SnapshotError::DriverMismatch { .. } => ErrorKind::InvalidInput,
            SnapshotError::HasChildren { .. } | SnapshotError::InUse { .. } => ErrorKind::Conflict,
            SnapshotError::Mount(e) => e.kind(),
            SnapshotError::Io { .. }
            | SnapshotError::WriteMetadata { .. }
            | SnapshotError::CorruptMetadata { .. }
            | SnapshotError::Version { .. } => ErrorKind::Internal,
        }
    }
}

/// A mount or unmount failure.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("failed to mount {fstype} from {source_path} on {target} (options {options})")]
    Mount {
        fstype: String,
        source_path: PathBuf,
        target: PathBuf,
        options: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to unmount {target}; stop the processes using it and retry")]
    Unmount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "overlay mount on {target} has {layers} lower layers: options need {len} bytes even with paths relative to {common}, more than the {limit}-byte mount data page; flatten the image (fewer layers)"
    )]
    TooLong {
        target: PathBuf,
        layers: usize,
        len: usize,
        common: PathBuf,
        limit: usize,
    },
    #[error(
        "overlay mount on {target} has {layers} lower layers, more than overlayfs stacks ({max}); flatten the image (fewer layers)"
    )]
    TooManyLayers {
        target: PathBuf,
        layers: usize,
        max: usize,
    },
    #[error("mount type {fstype:?} on {target} is not supported (only overlay and bind)")]
    Unsupported { fstype: String, target: PathBuf },
    #[error("overlayfs is not usable in {dir}: {reason}; use the native snapshotter")]
    OverlayUnavailable { dir: PathBuf, reason: String },
}

impl MountError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MountError::TooLong { .. }
            | MountError::TooManyLayers { .. }
            | MountError::OverlayUnavailable { .. }
            | MountError::Unsupported { .. } => ErrorKind::Unavailable,
            MountError::Mount { .. } | MountError::Unmount { .. } => ErrorKind::Internal,
        }
    }
}
