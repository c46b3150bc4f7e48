//! Collection and cleanup: what a killed process left, and what nothing references.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::copy;
use super::error::SnapshotError;
use super::inuse;
use super::layout;
use super::meta::{self, Index};
use super::store::{SnapshotStore, io_err, remove_tree, unique_name};
use super::{CrashPoint, GcReport, Kind, LABEL_GC_ROOT, LABEL_REF_PREFIX};

/// A directory moved into `tmp/` to be deleted outside the root lock, `flock`ed meanwhile so
/// that another process's cleanup leaves it to us.
pub(super) struct Trash {
    pub(super) path: PathBuf,
    pub(super) _lock: Option<File>,
}

impl Trash {
    /// Move `dir` into `tmp/` and lock it; call with the root lock held.
    pub(super) fn take(root: &Path, dir: PathBuf) -> Option<Trash> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = layout::tmp(root).join(format!("rm-{name}-{}", unique_name()));
        // Not synced: the trash is never a commit point. A snapshot's directory is taken
        // here once `metadata.json` no longer names it (or before the write that drops it):
        // after a crash it is under `tmp/` (emptied at the next open) or still under
        // `snapshots/`, where an unrecorded directory is removed at the next open as well.
        let path = match berth_fsutil::rename_unsynced(&dir, &dest) {
            Ok(()) => dest,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return None,
            Err(_) => dir,
        };
        let lock = File::open(&path).ok().filter(meta::try_lock);
        Some(Trash { path, _lock: lock })
    }

    pub(super) fn delete(self) -> std::io::Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if !m.is_dir() => std::fs::remove_file(&self.path),
            _ => remove_tree(&self.path),
        }
    }
}

/// What a cleanup did.
pub(super) struct Cleanup {
    /// The index changed and must be written.
    pub(super) changed: bool,
    /// Directories to delete after the index is written.
    pub(super) trash: Vec<Trash>,
    /// Snapshots removed (held by a dead lease), with their size.
    pub(super) removed: Vec<(String, u64)>,
}

impl SnapshotStore {
    /// With the root locked: remove temporary directories whose creator is gone, active
    /// snapshots and views held by a dead lease, dead lease files, unrecorded snapshot
    /// directories and stray metadata temporaries. Returns whether `index` changed and the
    /// directories to delete once the new index is written (already moved out of
    /// `snapshots/`), with the keys removed.
    pub(super) fn cleanup(&self, index: &mut Index) -> Result<Cleanup, SnapshotError> {
        let root = &self.root;
        let mut trash = Vec::new();
        let mut removed = Vec::new();
        let mut later = Vec::new();
        // 1. tmp/: creations of dead processes, removals that were cut short.
        let tmp = layout::tmp(root);
        for entry in std::fs::read_dir(&tmp).map_err(io_err("", "read", &tmp))? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            match File::open(&path) {
                // Nobody holds it: its creator is gone. Keep the lock while deleting it.
                Ok(f) if meta::try_lock(&f) => later.push(Trash {
                    path,
                    _lock: Some(f),
                }),
                Ok(_) => {} // its creator is alive
                Err(_) => later.push(Trash { path, _lock: None }),
            }
        }
        // 2. Leases whose holder is gone.
        let mut changed = false;
        let mut dead = BTreeSet::new();
        for (key, rec) in &index.snapshots {
            if let Some(l) = &rec.lease
                && !meta::lease_alive(root, l)
            {
                dead.insert(key.clone());
            }
        }
        for key in dead {
            let has_children = index.children(&key).next().is_some();
            let Some(rec) = index.snapshots.get_mut(&key) else {
                continue;
            };
            if rec.kind != Kind::Committed && !has_children {
                let id = rec.id;
                index.snapshots.remove(&key);
                tracing::info!(key, id, "removing a snapshot whose lease holder is gone");
                let size = copy::usage(&layout::fs_dir(root, id)).map_or(0, |u| u.size);
                removed.push((key.clone(), size));
                trash.push(layout::snapshot_dir(root, id));
            } else {
                rec.lease = None;
            }
            changed = true;
        }
        let leases = layout::leases(root);
        for entry in std::fs::read_dir(&leases).map_err(io_err("", "read", &leases))? {
            let Ok(entry) = entry else { continue };
            if let Ok(f) = File::open(entry.path())
                && meta::try_lock(&f)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        // 3. snapshots/<id> not recorded (killed between rename and record, or mid-remove).
        let ids: BTreeSet<String> = index.snapshots.values().map(|r| r.id.to_string()).collect();
        let snaps = layout::snapshots(root);
        for entry in std::fs::read_dir(&snaps).map_err(io_err("", "read", &snaps))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ids.contains(&name) {
                tracing::info!(dir = %entry.path().display(), "removing an unrecorded snapshot directory");
                trash.push(entry.path());
            }
        }
        // 4. metadata.json temporaries of killed writers (every writer holds the lock).
        if let Ok(rd) = std::fs::read_dir(root) {
            for entry in rd.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".metadata.json.tmp.")
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        // Move the doomed directories out of snapshots/ now (under the lock), delete later.
        later.extend(trash.into_iter().filter_map(|d| Trash::take(root, d)));
        Ok(Cleanup {
            changed,
            trash: later,
            removed,
        })
    }

    /// The collection behind [`Snapshotter::gc`](super::Snapshotter::gc): with the root
    /// locked, clean up, mark roots and their ancestors, remove the rest leaves first.
    pub(super) fn collect(&self) -> Result<GcReport, SnapshotError> {
        let lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        let cleanup = self.cleanup(&mut index)?;
        let mut trash = cleanup.trash;
        let mounts =
            inuse::current().map_err(io_err("", "read", Path::new("/proc/self/mountinfo")))?;
        let mut keep: BTreeSet<String> = BTreeSet::new();
        for (key, rec) in &index.snapshots {
            let root = rec.labels.contains_key(LABEL_GC_ROOT)
                || rec.labels.keys().any(|l| l.starts_with(LABEL_REF_PREFIX))
                || rec
                    .lease
                    .as_deref()
                    .is_some_and(|l| meta::lease_alive(&self.root, l))
                || inuse::in_use(&mounts, &layout::snapshot_dir(&self.root, rec.id)).is_some();
            if root {
                let mut next = Some(key.clone());
                while let Some(k) = next {
                    if !keep.insert(k.clone()) {
                        break;
                    }
                    next = index.snapshots.get(&k).and_then(|r| r.parent.clone());
                }
            }
        }
        // Leaves first: a child before its parent.
        let mut doomed: Vec<String> = Vec::new();
        let mut left: BTreeSet<String> = index
            .snapshots
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        while !left.is_empty() {
            let leaves: Vec<String> = left
                .iter()
                .filter(|k| {
                    !left.iter().any(|o| {
                        index.snapshots.get(o).and_then(|r| r.parent.as_deref()) == Some(k.as_str())
                    })
                })
                .cloned()
                .collect();
            if leaves.is_empty() {
                break; // a loop in corrupt metadata: leave it
            }
            for k in leaves {
                left.remove(&k);
                doomed.push(k);
            }
        }
        let mut report = GcReport::default();
        for (key, size) in cleanup.removed {
            report.removed.push(key);
            report.reclaimed += size;
        }
        let mut ids = Vec::new();
        for k in &doomed {
            if let Some(rec) = index.snapshots.remove(k) {
                let size = match rec.usage {
                    Some(u) => u.size,
                    None => copy::usage(&layout::fs_dir(&self.root, rec.id))
                        .map(|u| u.size)
                        .unwrap_or(0),
                };
                report.reclaimed += size;
                ids.push(rec.id);
            }
        }
        report.removed.extend(doomed);
        meta::write(&self.root, &index)?;
        self.crash_point(CrashPoint::Unrecorded);
        trash.extend(ids.into_iter().filter_map(|id| self.unlink_dir(id)));
        drop(lock);
        for t in trash {
            let _ = t.delete();
        }
        Ok(report)
    }
}
