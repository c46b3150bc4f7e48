//! What failed while turning an image into snapshots, on which layer, and what to do.

use berth_oci::Digest;

use crate::snapshot::SnapshotError;
use crate::unpack::UnpackError;

/// A failure of [`super::ensure_layers`] or the image resolution before it.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot read blob {digest} ({what}) of the image: {source}; pull the image again")]
    Blob {
        digest: Digest,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {digest} is not valid: {reason}; the image is damaged or not an image")]
    Invalid {
        digest: Digest,
        what: &'static str,
        reason: String,
    },
    #[error(
        "image {digest} is an index with no manifest for platform {platform}; pull it with --platform"
    )]
    NoPlatform { digest: Digest, platform: String },
    #[error(
        "image {digest} has {layers} layers but its config lists {diff_ids} diff_ids; the image is invalid"
    )]
    LayerCount {
        digest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("unpacking layer {index} ({digest}, diff_id {diff_id}) failed: {source}")]
    Unpack {
        index: usize,
        digest: Digest,
        diff_id: Digest,
        #[source]
        source: Box<UnpackError>,
    },
    #[error("snapshot of layer {index} ({chain_id}) failed: {source}")]
    Snapshot {
        index: usize,
        chain_id: Digest,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error("snapshotter: {0}")]
    Snapshotter(#[source] Box<SnapshotError>),
    #[error("layer {index} ({digest}) was not unpacked: {reason}")]
    Download {
        index: usize,
        digest: Digest,
        reason: String,
    },
    #[error("an unpack worker panicked on layer {index}; this is a bug in berth")]
    WorkerPanicked { index: usize },
}

impl From<SnapshotError> for RootfsError {
    fn from(e: SnapshotError) -> RootfsError {
        RootfsError::Snapshotter(Box::new(e))
    }
}
