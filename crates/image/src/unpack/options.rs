//! The public knobs and results of [`super::unpack`].

use std::sync::Arc;

use berth_oci::Digest;

use super::UnpackError;

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a layer media type, or why berth refuses it.
    pub fn for_media_type(media_type: &str) -> Result<Compression, UnpackError> {
        let mt = media_type.trim();
        if mt.ends_with("+encrypted") {
            return Err(UnpackError::Encrypted {
                media_type: media_type.to_owned(),
            });
        }
        if mt.starts_with("application/vnd.docker.image.rootfs.foreign.") {
            return Err(UnpackError::Foreign {
                media_type: media_type.to_owned(),
            });
        }
        Ok(match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            _ => {
                return Err(UnpackError::UnknownMediaType {
                    media_type: media_type.to_owned(),
                });
            }
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What whiteout entries become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// One layer into its own empty directory, as an overlayfs lower layer.
    Overlay,
    /// Layers applied in order onto one directory: whiteouts delete.
    Apply,
}

/// Which xattr marks an opaque directory in [`WhiteoutMode::Overlay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpaqueXattr {
    /// `trusted.overlay.opaque` (overlayfs mounted by real root).
    #[default]
    Trusted,
    /// `user.overlay.opaque` (overlayfs mounted with `userxattr` in a user namespace).
    User,
}

impl OpaqueXattr {
    pub(super) fn name(self) -> &'static str {
        match self {
            OpaqueXattr::Trusted => "trusted.overlay.opaque",
            OpaqueXattr::User => "user.overlay.opaque",
        }
    }
}

/// Character and block device entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceNodes {
    /// `mknod` them (needs CAP_MKNOD); failing is an error.
    #[default]
    Create,
    /// Skip them and report each in [`UnpackStats::skipped`] (rootless unpacking).
    Skip,
}

type IdFn = dyn Fn(u32) -> Option<u32> + Send + Sync;

/// Maps the uids and gids in a layer to the ids written on disk (a user-namespaced
/// snapshot: container root is an unprivileged host id). An id the map does not cover is an
/// error.
#[derive(Clone)]
pub struct IdMap {
    pub(super) uid: Arc<IdFn>,
    pub(super) gid: Arc<IdFn>,
}

impl IdMap {
    /// A map from two functions, container id → host id.
    pub fn new(
        uid: impl Fn(u32) -> Option<u32> + Send + Sync + 'static,
        gid: impl Fn(u32) -> Option<u32> + Send + Sync + 'static,
    ) -> IdMap {
        IdMap {
            uid: Arc::new(uid),
            gid: Arc::new(gid),
        }
    }

    /// Container ids `0..len` to host ids `host..host+len`, for uids and gids alike (one
    /// `/etc/subuid` range).
    pub fn offset(host: u32, len: u32) -> IdMap {
        let f = move |id: u32| {
            if id < len { host.checked_add(id) } else { None }
        };
        IdMap::new(f, f)
    }
}

impl std::fmt::Debug for IdMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdMap").finish_non_exhaustive()
    }
}

/// Owners of unpacked files.
#[derive(Debug, Clone, Default)]
pub enum Ownership {
    /// The layer's uid/gid (needs CAP_CHOWN).
    #[default]
    Preserve,
    /// The layer's uid/gid through a map.
    Map(IdMap),
    /// Leave files owned by the unpacking user (rootless without a user namespace).
    Ignore,
}

/// Decompression-bomb and resource limits. The defaults are generous: far above any real
/// image layer, far below what would fill a disk or memory by surprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes in the layer (default 64 GiB).
    pub max_uncompressed_bytes: u64,
    /// Tar entries in the layer (default 4 Mi).
    pub max_entries: u64,
    /// Bytes of tar metadata before one entry: headers, GNU long names, PAX records
    /// (xattrs) (default 16 MiB). Bounds the memory one entry's name and xattrs can take.
    pub max_metadata_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_uncompressed_bytes: 64 << 30,
            max_entries: 4 << 20,
            max_metadata_bytes: 16 << 20,
        }
    }
}

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub whiteouts: WhiteoutMode,
    /// When set, a layer whose uncompressed digest differs is an error.
    pub expected_diff_id: Option<Digest>,
    pub limits: Limits,
    pub devices: DeviceNodes,
    pub ownership: Ownership,
    pub opaque_xattr: OpaqueXattr,
}

impl UnpackOptions {
    /// Options for `mode` with every other setting at its default (root: devices created,
    /// owners preserved).
    pub fn new(whiteouts: WhiteoutMode) -> UnpackOptions {
        UnpackOptions {
            whiteouts,
            expected_diff_id: None,
            limits: Limits::default(),
            devices: DeviceNodes::default(),
            ownership: Ownership::default(),
            opaque_xattr: OpaqueXattr::default(),
        }
    }

    /// What this process can do: [`UnpackOptions::new`] in the initial user namespace;
    /// in another one (rootless berth, root of its own user namespace) ownership is kept
    /// (within the namespace's map), device nodes are skipped and opaque directories are
    /// marked with `user.overlay.opaque` (mounts add `userxattr` there).
    pub fn for_this_process(whiteouts: WhiteoutMode) -> UnpackOptions {
        if berth_fsutil::running_in_user_namespace() {
            UnpackOptions {
                devices: DeviceNodes::Skip,
                opaque_xattr: OpaqueXattr::User,
                ..UnpackOptions::new(whiteouts)
            }
        } else {
            UnpackOptions::new(whiteouts)
        }
    }

    /// Rootless defaults: device nodes skipped, owners left to the unpacking user, opaque
    /// directories marked with `user.overlay.opaque` (overlayfs mounted with `userxattr` in a
    /// user namespace; `trusted.*` needs CAP_SYS_ADMIN). Overlay whiteouts need no privilege
    /// (Linux 5.8+ lets anyone create the 0/0 character device).
    pub fn rootless(whiteouts: WhiteoutMode) -> UnpackOptions {
        UnpackOptions {
            devices: DeviceNodes::Skip,
            ownership: Ownership::Ignore,
            opaque_xattr: OpaqueXattr::User,
            ..UnpackOptions::new(whiteouts)
        }
    }
}

/// Something in the layer that was deliberately not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's name (lossy UTF-8, for reports).
    pub path: String,
    pub reason: SkipReason,
}

/// Why an entry or attribute was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A character or block device, with [`DeviceNodes::Skip`].
    Device { kind: char, major: u32, minor: u32 },
    /// An xattr in overlayfs's namespace, never taken from a layer.
    ReservedXattr { name: String },
    /// An xattr the file system or our privileges do not allow (EPERM, ENOTSUP).
    XattrNotPermitted { name: String },
    /// aufs metadata (`.wh..wh.*` other than the opaque marker).
    AufsMetadata,
}

/// What an unpack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Uncompressed bytes (the whole tar stream, padding included).
    pub uncompressed_bytes: u64,
    /// Tar entries, whiteouts included (GNU long-name and PAX headers not counted).
    pub entries: u64,
    pub whiteouts: u64,
    pub skipped: Vec<Skipped>,
}
