//! What the storage layer can fail with, in the registry's terms. Mapped to
//! distribution-spec codes and statuses in exactly one place: `crate::error`
//! (`impl From<StorageError> for RegistryError`).

use std::time::Duration;

use berth_oci::Digest;

use super::driver::DriverError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob {digest} is not in repository {repo}")]
    BlobUnknown { repo: String, digest: Digest },
    #[error("manifest {reference} is not in repository {repo}")]
    ManifestUnknown { repo: String, reference: String },
    #[error("repository {repo} is not known to this registry")]
    RepositoryUnknown { repo: String },
    #[error("upload session {id} is not known to this registry")]
    UploadUnknown { id: String },
    /// A manifest names a blob or child manifest that is not in the repository (or was
    /// removed while the manifest was being stored).
    #[error("{message}")]
    ManifestBlobUnknown { digest: Digest, message: String },
    #[error("invalid descriptor in manifest")]
    InvalidDescriptor {
        #[source]
        source: berth_oci::DigestError,
    },
    #[error("invalid subject in manifest")]
    InvalidSubject {
        #[source]
        source: berth_oci::DigestError,
    },
    #[error(
        "descriptor of {what} {digest} gives size {declared}, but the stored {what} has {stored} bytes; fix the manifest's size field"
    )]
    DescriptorSizeMismatch {
        what: &'static str,
        digest: Digest,
        declared: u64,
        stored: u64,
    },
    #[error("uploaded content has digest {actual}, not {expected}; the upload was discarded")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error(
        "storing the manifest took longer than {window:?}; it was not recorded so that a concurrent garbage collection cannot break it; retry the push"
    )]
    PushWindowExceeded { window: Duration },
    #[error("corrupt {what} in storage")]
    Corrupt {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("failed to re-read upload {path}")]
    Reread {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage operation failed")]
    Driver {
        #[from]
        source: DriverError,
    },
}

impl StorageError {
    /// Whether the storage ran out of space or quota.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StorageError::Driver { source } if source.is_storage_full())
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

pub use berth_errdefs::error_chain;
