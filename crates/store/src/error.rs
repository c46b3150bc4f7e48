//! The store's errors and their classification.

use std::path::PathBuf;

use berth_fsutil::FsError;
use berth_oci::{Digest, DigestError, ManifestError};

/// The class of a failure, shared by berth's libraries (containerd's `errdefs`). The store
/// reports no `Conflict`: it serialises its own writers with file locks.
pub use berth_errdefs::ErrorKind;

/// What failed in the content store, on which object.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: FsError,
    },
    #[error("failed to lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} is not in the store")]
    BlobNotFound { digest: Digest },
    #[error("failed to read blob {digest} from {path}")]
    ReadBlob {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} has {size} bytes, more than the {limit} bytes read into memory")]
    BlobTooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("stored blob {digest} at {path} does not match its digest")]
    BlobCorrupt {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: DigestError,
    },
    /// Content offered for `digest` did not verify; nothing was stored.
    #[error("content for {digest} failed verification; nothing was stored")]
    Mismatch {
        digest: Digest,
        #[source]
        source: DigestError,
    },
    #[error("failed to write ingest {key:?} for {digest} at {path}")]
    Ingest {
        key: String,
        digest: Digest,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to commit blob {digest} into the store")]
    Commit {
        digest: Digest,
        #[source]
        source: FsError,
    },
    #[error("failed to delete blob {digest} at {path}")]
    DeleteBlob {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the image index {path}")]
    ReadIndex {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image index {path} is corrupt")]
    CorruptIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("image index {path} has version {version}, newer than this berth understands (1)")]
    UnsupportedIndexVersion { path: PathBuf, version: u32 },
    #[error("failed to write the image index {path}")]
    WriteIndex {
        path: PathBuf,
        #[source]
        source: FsError,
    },
    #[error("invalid image record {name:?}: {reason}")]
    InvalidRecord { name: String, reason: &'static str },
    #[error("failed to write lease {id} at {path}")]
    WriteLease {
        id: String,
        path: PathBuf,
        #[source]
        source: FsError,
    },
    #[error("cannot name process {pid} as a lease holder: it is not running")]
    NoSuchHolder {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse manifest {digest} while collecting garbage; nothing was removed")]
    Manifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("failed to list the referrers stored in {path}")]
    Referrers {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to collect garbage in {path}")]
    Prune {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::BlobNotFound { .. } | StoreError::NoSuchHolder { .. } => {
                ErrorKind::NotFound
            }
            StoreError::BlobTooLarge { .. }
            | StoreError::Mismatch { .. }
            | StoreError::InvalidRecord { .. } => ErrorKind::InvalidInput,
            StoreError::ReadBlob { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            StoreError::Open { .. }
            | StoreError::Lock { .. }
            | StoreError::ReadBlob { .. }
            | StoreError::BlobCorrupt { .. }
            | StoreError::Ingest { .. }
            | StoreError::Commit { .. }
            | StoreError::DeleteBlob { .. }
            | StoreError::ReadIndex { .. }
            | StoreError::CorruptIndex { .. }
            | StoreError::UnsupportedIndexVersion { .. }
            | StoreError::WriteIndex { .. }
            | StoreError::WriteLease { .. }
            | StoreError::Manifest { .. }
            | StoreError::Referrers { .. }
            | StoreError::Prune { .. } => ErrorKind::Internal,
        }
    }
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
