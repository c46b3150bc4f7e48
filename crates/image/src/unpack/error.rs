//! What can go wrong while unpacking a layer.

use std::path::PathBuf;

use berth_oci::Digest;

/// Why unpacking a layer failed.
///
/// **Caller contract**: on any error the target directory may hold a partly unpacked layer.
/// It must be discarded (a snapshotter removes the whole snapshot directory), never used or
/// committed. Nothing outside the target was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    /// The layer is encrypted (`+encrypted`, ocicrypt): berth cannot decrypt layers.
    #[error(
        "layer media type {media_type} is encrypted; berth does not decrypt layers: decrypt the image first (e.g. `skopeo copy --decryption-key`)"
    )]
    Encrypted { media_type: String },
    /// Docker's foreign (non-distributable, Windows base) layers are refused by name.
    #[error(
        "layer media type {media_type} is a foreign Docker layer (Windows base layers fetched from URLs); berth does not unpack foreign layers"
    )]
    Foreign { media_type: String },
    /// Not a layer media type berth knows.
    #[error(
        "unknown layer media type {media_type:?}: expected application/vnd.oci.image.layer.v1.tar[+gzip|+zstd], its nondistributable variants, or application/vnd.docker.image.rootfs.diff.tar.gzip"
    )]
    UnknownMediaType { media_type: String },
    /// The target directory could not be opened.
    #[error("failed to open the unpack target directory {path}")]
    OpenTarget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The compressed stream or the tar stream is corrupt or ends early.
    #[error(
        "failed to read the layer ({compression} tar stream is corrupt or ends early){}; discard the partly unpacked directory",
        at_entry.as_ref().map(|p| format!(" after entry {p:?}")).unwrap_or_default()
    )]
    Read {
        compression: &'static str,
        at_entry: Option<String>,
        #[source]
        source: std::io::Error,
    },
    /// An entry's data ended before the size its header promised.
    #[error(
        "entry {path:?} is truncated: its header says {expected} bytes, the stream ended after {actual}; discard the partly unpacked directory"
    )]
    Truncated {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// A hostile or malformed entry was refused.
    #[error("entry {path:?} refused: {reason}")]
    Refused { path: String, reason: &'static str },
    /// A configured limit was exceeded (decompression bomb protection).
    #[error(
        "layer exceeds the limit {limit} = {value}; if the image is trusted, raise `UnpackOptions::limits.{limit}`"
    )]
    Limit { limit: &'static str, value: u64 },
    /// A file-system operation inside the target failed.
    #[error("failed to {op} {path:?} inside {root}")]
    Fs {
        op: &'static str,
        root: PathBuf,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Creating a device node was not permitted.
    #[error(
        "failed to create device node {path:?} inside {root}: not permitted (no CAP_MKNOD); unpack with `devices: DeviceNodes::Skip` when rootless"
    )]
    DeviceNotPermitted {
        root: PathBuf,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An owner id has no mapping in the id map.
    #[error("entry {path:?}: {kind} {id} has no mapping in the id map of this snapshot")]
    Unmapped {
        path: String,
        kind: &'static str,
        id: u64,
    },
    /// A tar feature berth does not implement.
    #[error("entry {path:?}: {what} is not supported")]
    Unsupported { path: String, what: String },
    /// The uncompressed stream's digest is not the expected diff ID.
    #[error(
        "the uncompressed layer is {actual}, not the expected diff ID {expected}: the layer is corrupt or not the one the image config names; discard the unpacked directory"
    )]
    DiffIdMismatch { expected: Digest, actual: Digest },
}
