//! What failed in a transfer, on which object, and its class.

use std::path::PathBuf;

use berth_oci::{Digest, DigestError, ManifestError, Platform, ReferenceError};
use berth_store::{LayoutError, StoreError};

/// The class of a failure, shared by berth's libraries (containerd's `errdefs`): a store or
/// registry failure inside a transfer keeps its class.
pub use berth_errdefs::ErrorKind;

/// What failed while copying an image.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(
        "invalid image location {location:?}: `oci:` needs a directory\nhint: write oci:PATH[:TAG]"
    )]
    LayoutPathMissing { location: String },
    #[error("invalid image reference {reference:?}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("the local store is not open")]
    StoreNotOpen,
    #[error("failed to take a lease on the local store")]
    Lease {
        #[source]
        source: Box<StoreError>,
    },
    #[error("failed to open the OCI layout {path}")]
    OpenLayout {
        path: PathBuf,
        #[source]
        source: Box<LayoutError>,
    },
    #[error("failed to open or create the OCI layout {path}")]
    CreateLayout {
        path: PathBuf,
        #[source]
        source: Box<LayoutError>,
    },
    #[error(
        "no image {name} in the local store\nhint: `berth images` lists the images; `berth pull` fetches one"
    )]
    NotInStore { name: String },
    #[error(
        "the local store keeps no referrers\nhint: copy referrers between registries and OCI layouts"
    )]
    StoreKeepsNoReferrers,
    #[error(transparent)]
    Registry(Box<berth_distribution::Error>),
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error(transparent)]
    Layout(Box<LayoutError>),
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} failed verification; nothing was copied")]
    Verify {
        digest: Digest,
        #[source]
        source: DigestError,
    },
    #[error(
        "a writer opened for {opened} ({opened_size} bytes) was committed as {committed} ({committed_size} bytes)"
    )]
    CommitMismatch {
        opened: Digest,
        opened_size: u64,
        committed: Digest,
        committed_size: u64,
    },
    #[error("digest {digest} is not valid for an OCI descriptor")]
    OciDigest {
        digest: Digest,
        #[source]
        source: berth_oci::oci_spec::OciSpecError,
    },
    #[error("a blocking task failed")]
    Task {
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("manifest {digest} cannot be parsed")]
    Manifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("{what} has an invalid descriptor")]
    InvalidDescriptor {
        what: String,
        #[source]
        source: DigestError,
    },
    #[error(
        "the image at {image} has no manifest for platform {platform}\nhint: choose another with --platform, or copy every platform with --all-platforms"
    )]
    NoPlatform { image: String, platform: Platform },
    #[error(
        "{image}: index {index} contains another index ({child}); nested indexes are not supported"
    )]
    NestedIndex {
        image: String,
        index: Digest,
        child: Digest,
    },
    #[error("{subject} has more than {limit} referrers in all")]
    TooManyReferrers { subject: Digest, limit: usize },
    #[error("failed to read the image at {image}")]
    ReadImage {
        image: String,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to read the {platform} manifest of {image}")]
    ReadPlatformManifest {
        image: String,
        platform: Platform,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to read a manifest of {image}")]
    ReadManifest {
        image: String,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to copy blob {digest}")]
    CopyBlob {
        digest: Digest,
        #[source]
        source: Box<TransferError>,
    },
    #[error("the transfer of blob {digest} stopped ({fetch})")]
    WriterFailed {
        digest: Digest,
        /// What the reading side saw when the writer stopped taking bytes.
        fetch: Box<TransferError>,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to write manifest {digest}")]
    WriteManifest {
        digest: Digest,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to record the image at {image}")]
    RecordImage {
        image: String,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to copy the referrers of {subject}")]
    CopyReferrers {
        subject: Digest,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to read referrer {digest}")]
    ReadReferrer {
        digest: Digest,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to list referrer {digest}")]
    ListReferrer {
        digest: Digest,
        #[source]
        source: Box<TransferError>,
    },
}

impl TransferError {
    /// The class of this failure: that of the innermost berth error.
    pub fn kind(&self) -> ErrorKind {
        use TransferError as E;
        if let Some(inner) = self.wrapped() {
            return inner.kind();
        }
        match self {
            E::LayoutPathMissing { .. }
            | E::InvalidReference { .. }
            | E::Verify { .. }
            | E::CommitMismatch { .. }
            | E::OciDigest { .. }
            | E::Manifest { .. }
            | E::InvalidDescriptor { .. }
            | E::NestedIndex { .. }
            | E::TooManyReferrers { .. }
            | E::StoreKeepsNoReferrers => ErrorKind::InvalidInput,
            E::NotInStore { .. } | E::NoPlatform { .. } => ErrorKind::NotFound,
            E::StoreNotOpen | E::Io { .. } | E::Task { .. } => ErrorKind::Internal,
            E::Lease { source } | E::Store(source) => source.kind(),
            E::OpenLayout { source, .. } | E::CreateLayout { source, .. } | E::Layout(source) => {
                source.kind()
            }
            E::Registry(e) => e.kind(),
            // the context variants: classified by what they wrap, above
            _ => ErrorKind::Internal,
        }
    }

    /// What the user can do about a registry failure inside this one ("hint: …"), if the
    /// registry client knows.
    pub fn hint(&self) -> Option<String> {
        match self {
            TransferError::Registry(e) => e.hint(),
            other => other.wrapped().and_then(Self::hint),
        }
    }

    /// The failure a context variant (what was being done) wraps.
    fn wrapped(&self) -> Option<&TransferError> {
        use TransferError as E;
        match self {
            E::ReadImage { source, .. }
            | E::ReadPlatformManifest { source, .. }
            | E::ReadManifest { source, .. }
            | E::CopyBlob { source, .. }
            | E::WriterFailed { source, .. }
            | E::WriteManifest { source, .. }
            | E::RecordImage { source, .. }
            | E::CopyReferrers { source, .. }
            | E::ReadReferrer { source, .. }
            | E::ListReferrer { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<berth_distribution::Error> for TransferError {
    fn from(e: berth_distribution::Error) -> TransferError {
        TransferError::Registry(Box::new(e))
    }
}

impl From<StoreError> for TransferError {
    fn from(e: StoreError) -> TransferError {
        TransferError::Store(Box::new(e))
    }
}

impl From<LayoutError> for TransferError {
    fn from(e: LayoutError) -> TransferError {
        TransferError::Layout(Box::new(e))
    }
}

/// `Result` with [`TransferError`].
pub type Result<T, E = TransferError> = std::result::Result<T, E>;
