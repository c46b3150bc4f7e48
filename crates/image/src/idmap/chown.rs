//! The fallback where id-mapped mounts are unavailable: a copy of a layer's directory with
//! every owner shifted into a container's range (containerd's `remap` snapshot option), by
//! the snapshotter's copy (`crate::snapshot::copy`).
//!
//! Kept: file types (whiteouts, the `0/0` character devices, included), modes with
//! setuid/setgid (restored after the chown, which clears them), hard links within the tree,
//! extended attributes (`trusted.overlay.opaque` too), times; and `security.capability`,
//! rewritten as a version-3 capability whose root id is the range's root, so the file's
//! capabilities apply in the container's user namespace only.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Gid, Uid};

use super::IdmapError;
use crate::snapshot::copy::copy_tree_shifted;
use crate::spec::IdRange;

/// Copy the contents of `src` into the existing directory `dst`, owners shifted by
/// `range.host_start`, then give `dst` the shifted attributes of `src`.
pub(crate) fn copy_shifted(src: &Path, dst: &Path, range: IdRange) -> Result<(), IdmapError> {
    copy_tree_shifted(src, dst, i64::from(range.host_start)).map_err(|e| IdmapError::Shift {
        action: e.action,
        path: e.path,
        source: e.source,
    })
}

/// Shift the owner of `path` itself (not its contents) into `range`, unless it is in the
/// range already (a snapshotter that gave a new upper directory its remapped parent's owner).
pub(crate) fn shift_into(path: &Path, range: IdRange) -> Result<(), IdmapError> {
    let err = |action: &'static str, source: std::io::Error| IdmapError::Shift {
        action,
        path: path.to_owned(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(|e| err("stat", e))?;
    let inside = |id: u32| id >= range.host_start && u64::from(id) < range.end();
    if inside(meta.uid()) && inside(meta.gid()) {
        return Ok(());
    }
    let shift = |id: u32| {
        id.checked_add(range.host_start).ok_or_else(|| {
            err(
                "shift the owner of",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("id {id} + {} is past the id space", range.host_start),
                ),
            )
        })
    };
    rustix::fs::chownat(
        CWD,
        path,
        Some(Uid::from_raw(shift(meta.uid())?)),
        Some(Gid::from_raw(shift(meta.gid())?)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err("change owner of", e.into()))
}
