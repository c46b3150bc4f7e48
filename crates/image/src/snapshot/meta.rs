//! The snapshot metadata: one JSON index, replaced atomically under an exclusive `flock`.
//!
//! Readers read `metadata.json` without the lock (it is only ever replaced by a rename, so a
//! reader sees the old or the new index, never a torn one). Every read-modify-write holds
//! `<root>/lock` from the read to the rename, so two processes never lose each other's
//! changes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use berth_fsutil::FileLock;
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use super::error::SnapshotError;
use super::layout;
use super::{Kind, Usage};

/// One snapshot's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: u64,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub created: String,
    pub updated: String,
    /// The lease holding the snapshot while its creator works on it (see `Lease`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// Committed snapshots: the disk usage measured at commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The whole index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Index {
    pub version: u32,
    pub driver: String,
    pub next_id: u64,
    pub snapshots: BTreeMap<String, Record>,
}

impl Index {
    pub fn new(driver: &str) -> Index {
        Index {
            version: layout::VERSION,
            driver: driver.to_owned(),
            next_id: 1,
            snapshots: BTreeMap::new(),
        }
    }

    /// Keys of the snapshots whose parent is `key`.
    pub fn children<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.snapshots
            .iter()
            .filter(move |(_, r)| r.parent.as_deref() == Some(key))
            .map(|(k, _)| k.as_str())
    }
}

/// Read the index (an empty one when there is none yet).
pub(crate) fn read(root: &Path, driver: &'static str) -> Result<Index, SnapshotError> {
    let path = layout::metadata(root);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::new(driver)),
        Err(source) => {
            return Err(SnapshotError::Io {
                key: String::new(),
                action: "read snapshot metadata",
                path,
                source,
            });
        }
    };
    let index: Index =
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::CorruptMetadata {
            path: path.clone(),
            root: root.to_owned(),
            source,
        })?;
    if index.version != layout::VERSION {
        return Err(SnapshotError::Version {
            path,
            found: index.version,
            expected: layout::VERSION,
        });
    }
    if index.driver != driver {
        return Err(SnapshotError::DriverMismatch {
            root: root.to_owned(),
            found: index.driver,
            expected: driver,
        });
    }
    Ok(index)
}

/// Replace the index atomically and durably.
pub(crate) fn write(root: &Path, index: &Index) -> Result<(), SnapshotError> {
    write_with(root, index, |p, d| berth_fsutil::atomic_write(p, d))
}

/// Replace the index atomically and durably after a snapshot's directory was renamed into
/// `dir` unsynced: the index's content and `dir` are synced at once
/// ([`berth_fsutil::atomic_write_many`]) before the index is renamed into place, so a
/// recorded snapshot's directory is always where the index says.
pub(crate) fn write_after_rename(
    root: &Path,
    index: &Index,
    dir: &Path,
) -> Result<(), SnapshotError> {
    write_with(root, index, |p, d| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        berth_fsutil::atomic_write_many(root, &[(name, d)], &[dir])
    })
}

/// Replace the index atomically after removing snapshots from it: its content durable, the
/// replacement not waited for ([`berth_fsutil::atomic_rewrite`]). A removal lost in a crash
/// is a crash a moment before it: the snapshot is still recorded, its directory is where it
/// was (or in the trash, emptied at the next open), and whoever removed it removes it again.
pub(crate) fn write_removal(root: &Path, index: &Index) -> Result<(), SnapshotError> {
    write_with(root, index, |p, d| berth_fsutil::atomic_rewrite(p, d))
}

fn write_with(
    root: &Path,
    index: &Index,
    write: impl FnOnce(&Path, &[u8]) -> Result<(), berth_fsutil::FsError>,
) -> Result<(), SnapshotError> {
    let mut bytes =
        serde_json::to_vec_pretty(index).map_err(|source| SnapshotError::CorruptMetadata {
            path: layout::metadata(root),
            root: root.to_owned(),
            source,
        })?;
    bytes.push(b'\n');
    write(&layout::metadata(root), &bytes).map_err(|source| SnapshotError::WriteMetadata {
        root: root.to_owned(),
        source,
    })
}

/// Take the root's lock (an exclusive `flock` on `<root>/lock`), blocking until the holder
/// releases it; released on drop or when the process dies.
pub(crate) fn lock(root: &Path) -> Result<FileLock, SnapshotError> {
    let path = layout::lock(root);
    FileLock::exclusive(&path).map_err(|source| SnapshotError::Io {
        key: String::new(),
        action: "lock",
        path,
        source,
    })
}

/// Try to take an exclusive `flock` on an open file or directory without blocking: `true`
/// when taken (nobody holds it: its owner is gone).
pub(crate) fn try_lock(file: &File) -> bool {
    flock(file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Whether the lease file `name` is held by a live process.
pub(crate) fn lease_alive(root: &Path, name: &str) -> bool {
    match File::open(layout::lease(root, name)) {
        Ok(f) => !try_lock(&f),
        Err(_) => false,
    }
}

/// A lease: a file under `<root>/leases/` that its holder keeps `flock`ed. Snapshots created
/// with it (`Opts::lease`) are kept by collection while it lives; when the holding process
/// exits or is killed, the kernel drops the lock and the next open or collection removes the
/// active snapshots it held (a half-unpacked layer) and lets its committed ones be collected
/// like any unreferenced snapshot. Drop it once the snapshots are referenced (an image's or a
/// container's label).
#[derive(Debug)]
pub struct Lease {
    name: String,
    path: PathBuf,
    _file: File,
}

impl Lease {
    pub(crate) fn create(root: &Path, name: String) -> Result<Lease, SnapshotError> {
        let path = layout::lease(root, &name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| SnapshotError::Io {
                key: String::new(),
                action: "create lease",
                path: path.clone(),
                source,
            })?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| SnapshotError::Io {
            key: String::new(),
            action: "lock lease",
            path: path.clone(),
            source: e.into(),
        })?;
        Ok(Lease {
            name,
            path,
            _file: file,
        })
    }

    /// The lease's name, as recorded in the snapshots it holds.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Best effort: a lease file left behind is unlocked, so it is dead all the same.
        let _ = std::fs::remove_file(&self.path);
    }
}
