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
    #[error(
        "invalid image location {location:?}: an archive needs a file\nhint: write docker-archive:PATH[:REF] or oci-archive:PATH[:TAG]"
    )]
    ArchivePathMissing { location: String },
    #[error("refused the archive {path}: entry {entry:?} is {reason}")]
    HostileArchive {
        path: PathBuf,
        entry: String,
        reason: &'static str,
    },
    #[error("the archive {path} is not a complete tar file\nhint: check the file was copied whole")]
    ReadArchive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the archive {path} names {entry:?}, which is not in it\nhint: the archive is incomplete or was not written by an image tool"
    )]
    ArchiveEntryMissing { path: PathBuf, entry: String },
    #[error("the archive {path}: {entry:?} is {size} bytes, more than the {limit} allowed")]
    ArchiveEntryTooLarge {
        path: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("the archive {path}: {entry:?} holds {actual}, not {expected} as it is named")]
    ArchiveDigestMismatch {
        path: PathBuf,
        entry: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("the archive {path}: {entry:?} is unusable: {reason}")]
    BadArchive {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error(
        "{path} is compressed\nhint: decompress it first (gunzip, zstd -d); image archives are plain tar files"
    )]
    CompressedArchive { path: PathBuf },
    #[error(
        "{path} is neither a docker-archive (no manifest.json) nor an oci-archive (no oci-layout)"
    )]
    NotAnArchive { path: PathBuf },
    #[error("{path} is a {found}, not a {expected}\nhint: write {found}:{path}")]
    ArchiveFormatMismatch {
        path: PathBuf,
        expected: crate::ArchiveFormat,
        found: crate::ArchiveFormat,
    },
    #[error("the archive {path} holds no image")]
    ArchiveEmpty { path: PathBuf },
    #[error(
        "the archive {path} holds {count} images\nhint: name one, as docker-archive:PATH:REF or oci-archive:PATH:TAG"
    )]
    ArchiveAmbiguous { path: PathBuf, count: usize },
    #[error("the archive {path} has no image named {name} (it has: {available})")]
    ArchiveImageNotFound {
        path: PathBuf,
        name: String,
        available: String,
    },
    #[error(
        "image {digest} of the archive {path} has no name\nhint: give it one with `berth copy {format}:{path} store:NAME`"
    )]
    ArchiveUnnamed {
        path: PathBuf,
        format: crate::ArchiveFormat,
        digest: Digest,
    },
    #[error("{name:?} (in or for {path}) is not a valid image name")]
    ArchiveBadName { path: PathBuf, name: String },
    #[error(
        "{location} can only be written by `berth save` or `berth copy SRC {location}`, not as part of another copy"
    )]
    ArchiveNotADestination { location: String },
    #[error("failed to create the archive {path}")]
    CreateArchive {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to write {entry} into the archive {path}; nothing was saved")]
    WriteArchive {
        path: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the archive to load is empty (nothing came on standard input)\nhint: berth load -i FILE, or pipe one in (podman save IMAGE | berth load)"
    )]
    EmptyInput,
    #[error("writing an archive needs tokio's multi-threaded runtime")]
    NeedsMultiThread,
    #[error("blob {digest} is {size} bytes, more than the {limit} a config may be")]
    BlobTooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("the image at {image} is not an image manifest (no config)")]
    NotAnImage { image: String },
    #[error("the image config {digest} is unusable: {reason}")]
    BadConfig { digest: Digest, reason: String },
    #[error(
        "layer {digest} has media type {media_type}, which a docker-archive cannot hold\nhint: save it with --format oci-archive"
    )]
    UnsupportedLayer { digest: Digest, media_type: String },
    #[error("failed to decompress layer {digest}")]
    Decompress {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer} does not unpack to its diff_id {diff_id}")]
    DiffIdMismatch {
        layer: Digest,
        diff_id: Digest,
        #[source]
        source: Box<DigestError>,
    },
    #[error("failed to load {name} from {path}{}", entry.as_ref().map(|e| format!(" (at entry {e:?})")).unwrap_or_default())]
    LoadImage {
        path: PathBuf,
        name: String,
        /// The archive entry whose blob failed, when one did.
        entry: Option<String>,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to {action} {source_path} for import")]
    Import {
        source_path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{source_path} is not a tar archive\nhint: import a root filesystem as a directory, a .tar or a .tar.gz"
    )]
    NotATar { source_path: PathBuf },
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
        "a docker-archive cannot hold referrers (signatures, SBOMs), so {path} would lose them\nhint: save with --format oci-archive, or leave out --referrers"
    )]
    ArchiveCannotHoldReferrers { path: PathBuf },
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
            | E::ArchiveCannotHoldReferrers { .. }
            | E::TooManyReferrers { .. }
            | E::ArchivePathMissing { .. }
            | E::HostileArchive { .. }
            | E::ReadArchive { .. }
            | E::ArchiveEntryMissing { .. }
            | E::ArchiveEntryTooLarge { .. }
            | E::ArchiveDigestMismatch { .. }
            | E::BadArchive { .. }
            | E::CompressedArchive { .. }
            | E::NotAnArchive { .. }
            | E::ArchiveFormatMismatch { .. }
            | E::ArchiveEmpty { .. }
            | E::ArchiveAmbiguous { .. }
            | E::ArchiveUnnamed { .. }
            | E::ArchiveBadName { .. }
            | E::ArchiveNotADestination { .. }
            | E::BlobTooLarge { .. }
            | E::NotAnImage { .. }
            | E::BadConfig { .. }
            | E::UnsupportedLayer { .. }
            | E::Decompress { .. }
            | E::DiffIdMismatch { .. }
            | E::NotATar { .. }
            | E::EmptyInput => ErrorKind::InvalidInput,
            E::ArchiveImageNotFound { .. } => ErrorKind::NotFound,
            E::CreateArchive { .. }
            | E::WriteArchive { .. }
            | E::NeedsMultiThread
            | E::Import { .. } => ErrorKind::Internal,
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
    pub(crate) fn wrapped(&self) -> Option<&TransferError> {
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
            | E::ListReferrer { source, .. }
            | E::LoadImage { source, .. } => Some(source),
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
