//! The on-disk layout of a snapshot root: the only place its paths are built.
//!
//! ```text
//! <root>/                       one root per snapshotter (e.g. <data>/snapshots/overlay)
//!   lock                        flock'd exclusively by every metadata change and cleanup
//!   metadata.json               {"version":1,"driver":"overlay","next_id":N,"snapshots":{KEY: record}}
//!   snapshots/<id>/fs           the snapshot's tree (overlay: this layer's upper; native: all of it)
//!   snapshots/<id>/work         overlayfs workdir (active overlay snapshots with a parent)
//!   tmp/<name>/                 a snapshot being created, flock'd by its creator; renamed to
//!                               snapshots/<id> under the lock, or removed at the next open when
//!                               its creator is gone. tmp/rm-<id> is one being removed.
//!   leases/<name>               a lease, flock'd by the process holding it
//!   idmap-probe                 "RELEASE\nok": id-mapped overlay layers worked here on that
//!                               kernel release (`crate::idmap`'s probe, kept)
//! ```
//!
//! A `snapshots/<id>` directory that `metadata.json` does not name is unrecorded: a process
//! was killed between the rename and the metadata write, or while removing. It is never
//! used and is deleted at the next open or collection.

use std::path::{Path, PathBuf};

/// The layout version written in `metadata.json`.
pub(crate) const VERSION: u32 = 1;

pub(crate) fn lock(root: &Path) -> PathBuf {
    root.join("lock")
}

pub(crate) fn metadata(root: &Path) -> PathBuf {
    root.join("metadata.json")
}

pub(crate) fn snapshots(root: &Path) -> PathBuf {
    root.join("snapshots")
}

pub(crate) fn snapshot_dir(root: &Path, id: u64) -> PathBuf {
    snapshots(root).join(id.to_string())
}

pub(crate) fn fs_dir(root: &Path, id: u64) -> PathBuf {
    snapshot_dir(root, id).join("fs")
}

pub(crate) fn work_dir(root: &Path, id: u64) -> PathBuf {
    snapshot_dir(root, id).join("work")
}

pub(crate) fn tmp(root: &Path) -> PathBuf {
    root.join("tmp")
}

pub(crate) fn leases(root: &Path) -> PathBuf {
    root.join("leases")
}

pub(crate) fn lease(root: &Path, name: &str) -> PathBuf {
    leases(root).join(name)
}

pub(crate) fn idmap_probe(root: &Path) -> PathBuf {
    root.join("idmap-probe")
}
