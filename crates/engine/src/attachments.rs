//! What a caller set up for a container outside its bundle — the mounted root filesystem, the
//! snapshot under it, anonymous volume directories, the user namespace's host ids — recorded
//! in the container's record and undone when the record is removed (`rm`, `container prune`,
//! the monitor of an `--rm` container), so nothing outlives the container.

use std::path::{Path, PathBuf};

use berth_image::snapshot::{Driver, ErrorKind, SnapshotStore};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// A snapshot in a snapshot root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The snapshot root (`DATA/snapshots`).
    pub root: PathBuf,
    /// Its driver's name (`overlay`, `native`).
    pub driver: String,
    /// The snapshot's key.
    pub key: String,
}

/// A range of host ids (`host_start .. host_start + size`) a container's user namespace maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIds {
    pub host_start: u32,
    pub size: u32,
    /// The allocator's state directory and the owner it allocated the range to
    /// (`berth_image::idmap::IdAllocator`), released at teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocator: Option<(PathBuf, String)>,
}

/// Everything set up for a container besides its bundle (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachments {
    /// Where the root filesystem is mounted (unmounted at teardown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_mount: Option<PathBuf>,
    /// The container's writable snapshot (removed at teardown, after the unmount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
    /// Directories made for the container alone (anonymous volumes), removed at teardown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<PathBuf>,
    /// The host ids its user namespace maps (so no other container is given them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ids: Option<HostIds>,
    /// The named volumes it uses (`berth volume rm` refuses them while the record exists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_volumes: Vec<String>,
    /// Mounts made for it on the host besides the root filesystem (a named volume bound
    /// id-mapped for its range), unmounted and their mount points removed at teardown
    /// before anything else: never `remove_dir_all`'d, so a mount still there cannot cost a
    /// volume its data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<PathBuf>,
    /// Its pinned network namespace and CNI networks (detached, then unpinned, at teardown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::NetworkAttachment>,
}

impl Attachments {
    /// Undo everything; what is already gone is not an error, so this may run more than
    /// once (the failure paths of `run` and the record's removal both call it). A network
    /// that cannot be detached (a CNI DEL failing: plugins missing, a plugin's error) does
    /// not keep the rest in place: its namespace and intent stay for a later teardown or
    /// `network::collect_orphans`, the mounts, snapshot and volumes go, and its error is
    /// returned at the end.
    ///
    /// The network's CNI DEL (a plugin process each, most of a teardown's time) runs on a
    /// thread of its own beside the unmounts and removals: the two share nothing (the
    /// plugins work in the pinned namespace and on the host's bridge and firewall, the rest
    /// on the container's mounts and directories).
    pub fn teardown(&self) -> Result<()> {
        self.teardown_leaving()?.delete()
    }

    /// [`Attachments::teardown`], leaving the files of the removed snapshot to the caller:
    /// see [`Leftovers`].
    pub fn teardown_leaving(&self) -> Result<Leftovers> {
        // (released at the container's exit: nothing left to detach)
        let Some(att) = self.network.as_ref().filter(|n| !n.released) else {
            return self.teardown_local();
        };
        std::thread::scope(|s| {
            let network = s.spawn(|| crate::network::detach(att));
            let local = self.teardown_local();
            let network = network.join().unwrap_or_else(|_| {
                Err(EngineError::Network(format!(
                    "detaching container {} from its networks panicked",
                    att.container_id
                )))
            });
            match (local, network) {
                (Ok(left), Ok(())) => Ok(left),
                (Ok(left), Err(e)) => {
                    // the rest went: its files too, before the network's error is returned
                    let _ = left.delete();
                    Err(e)
                }
                (Err(e), _) => Err(e),
            }
        })
    }

    /// Everything but the network.
    fn teardown_local(&self) -> Result<Leftovers> {
        for m in &self.mounts {
            unmount_all(m)?;
            remove_mount_point(m)?;
        }
        if let Some(parent) = self.mounts.first().and_then(|m| m.parent()) {
            remove_mount_point(parent)?;
        }
        if let Some(m) = &self.rootfs_mount {
            unmount_all(m)?;
            remove_mount_point(m)?;
        }
        let left = Leftovers {
            snapshot: match &self.snapshot {
                Some(s) => remove_snapshot(s)?,
                None => None,
            },
            container_dir: None,
        };
        match self.teardown_rest() {
            Ok(()) => Ok(left),
            Err(e) => {
                let _ = left.delete();
                Err(e)
            }
        }
    }

    /// What comes after the snapshot: the volumes and the host ids.
    fn teardown_rest(&self) -> Result<()> {
        for v in &self.volumes {
            match std::fs::remove_dir_all(v) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io("removing the anonymous volume", v, e)),
            }
        }
        if let Some((state, owner)) = self.host_ids.as_ref().and_then(|h| h.allocator.as_ref()) {
            berth_image::idmap::IdAllocator::new(state)
                .release(owner)
                .map_err(|e| {
                    EngineError::Invalid(format!("releasing the host ids of {owner}: {e}"))
                })?;
        }
        Ok(())
    }
}

/// The files of a torn-down container that nothing refers to any more, still to be
/// deleted: its writable snapshot's directory (already out of the snapshot index, under the
/// snapshot root's `tmp/`) and its own directory (already renamed to
/// `containers/.removing-ID`). Everything a user can see is gone when a teardown returns —
/// the mounts, the snapshot, the record, the name — so the monitor of an `--rm` container
/// reports the exit first and deletes these after, as containerd's overlay snapshotter with
/// `async_remove` leaves a removed snapshot's directory to its next `Cleanup`. Files a killed process never deleted
/// are deleted by the next snapshot store open and the engine's next start
/// ([`crate::record::sweep_removals`]).
#[derive(Debug, Default)]
#[must_use = "the files stay on disk until `delete` (or a later sweep)"]
pub struct Leftovers {
    snapshot: Option<berth_image::snapshot::RemovedFiles>,
    /// The container's directory, renamed away.
    pub(crate) container_dir: Option<crate::record::RemovedDir>,
}

impl Leftovers {
    /// Delete the files.
    pub fn delete(self) -> Result<()> {
        let snapshot = match self.snapshot {
            Some(files) => {
                let key = files.key().to_owned();
                files.delete().map_err(|e| EngineError::Snapshot {
                    key,
                    source: Box::new(e),
                })
            }
            None => Ok(()),
        };
        let dir = match self.container_dir {
            Some(dir) => dir.delete(),
            None => Ok(()),
        };
        snapshot.and(dir)
    }
}

/// Where `berth run` sets a container up before its record exists, all under one data
/// directory: the mount point `DIR/rootfs/ID` (made first, so that it marks a set-up in
/// progress), the anonymous volumes `DIR/volumes/ID`, the `/etc` files `DIR/etc/ID`, the host
/// ids allocated to `ID` in `DIR`, and the writable snapshot `ID` in a snapshot root.
#[derive(Debug, Clone)]
pub struct SetUpDirs {
    /// The data directory (`DIR`).
    pub dir: PathBuf,
    /// The snapshot root and its driver's name.
    pub snapshots: (PathBuf, String),
}

impl SetUpDirs {
    /// The mount point of container `id`'s root filesystem.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.dir.join("rootfs").join(id)
    }

    /// Where container `id`'s extra host mounts go (`DIR/volume-mounts/ID/N`).
    pub fn mounts(&self, id: &str) -> PathBuf {
        SetUpDirs::mounts_in(&self.dir, id)
    }

    /// [`SetUpDirs::mounts`] of data directory `dir`.
    pub fn mounts_in(dir: &Path, id: &str) -> PathBuf {
        dir.join("volume-mounts").join(id)
    }

    /// Everything a `run` of container `id` may have set up (whether or not it got that far).
    pub fn attachments_of(&self, id: &str) -> Attachments {
        let mounts = std::fs::read_dir(self.mounts(id))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        Attachments {
            named_volumes: Vec::new(),
            mounts,
            rootfs_mount: Some(self.rootfs(id)),
            snapshot: Some(SnapshotRef {
                root: self.snapshots.0.clone(),
                driver: self.snapshots.1.clone(),
                key: id.to_owned(),
            }),
            volumes: vec![
                self.dir.join("volumes").join(id),
                self.dir.join("etc").join(id),
            ],
            host_ids: Some(HostIds {
                host_start: 0,
                size: 0,
                allocator: Some((self.dir.clone(), id.to_owned())),
            }),
            network: None,
        }
    }

    /// Undo what `run`s killed during set-up left (a mount point with no record: its mount,
    /// snapshot, volumes, `/etc` files and host ids), and return their ids. `live(id)` says
    /// whether a record exists; the caller holds the lock every `run` holds from its set-up to
    /// its record, or a `run` being set up would be taken for a killed one.
    pub fn collect_unrecorded(&self, live: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut cleaned = Vec::new();
        let rootfs = self.dir.join("rootfs");
        let rd = match std::fs::read_dir(&rootfs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cleaned),
            Err(e) => return Err(EngineError::io("listing", &rootfs, e)),
        };
        for e in rd {
            let e = e.map_err(|e| EngineError::io("listing", &rootfs, e))?;
            let name = e.file_name();
            // only what `run` makes: a container id (64 hex digits), never a user's file
            let Some(id) = name.to_str().filter(|n| is_container_id(n)) else {
                continue;
            };
            if live(id) {
                continue;
            }
            self.attachments_of(id).teardown()?;
            remove_mount_point(&self.mounts(id))?;
            cleaned.push(id.to_owned());
        }
        Ok(cleaned)
    }
}

/// Whether `s` has the shape of a container id (64 lowercase hex digits, as `new_id` makes).
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `rmdir` of a mount point (already gone is fine).
fn remove_mount_point(m: &Path) -> Result<()> {
    match std::fs::remove_dir(m) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io("removing the mount point", m, e)),
    }
}

/// Whether something is mounted on `path` (a line of /proc/self/mountinfo names it).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let Some(want) = path.to_str() else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(n as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Unmount everything stacked on `path` (a lazy unmount when a plain one is refused as busy).
fn unmount_all(path: &Path) -> Result<()> {
    use rustix::mount::{UnmountFlags, unmount};
    for _ in 0..16 {
        if !is_mounted(path) {
            return Ok(());
        }
        if let Err(e) = unmount(path, UnmountFlags::empty()) {
            if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT {
                return Ok(());
            }
            unmount(path, UnmountFlags::DETACH)
                .map_err(|e| EngineError::io("unmounting the root filesystem", path, e.into()))?;
        }
    }
    Err(EngineError::Invalid(format!(
        "{} is still mounted after 16 unmounts; unmount it by hand",
        path.display()
    )))
}

fn remove_snapshot(s: &SnapshotRef) -> Result<Option<berth_image::snapshot::RemovedFiles>> {
    if !s.root.is_dir() {
        return Ok(None);
    }
    let driver = match s.driver.as_str() {
        "native" => Driver::Native,
        _ => Driver::Overlay,
    };
    let snapshot_err = |source| EngineError::Snapshot {
        key: s.key.clone(),
        source: Box::new(source),
    };
    let store = SnapshotStore::open(&s.root, driver).map_err(snapshot_err)?;
    match store.remove_later(&s.key) {
        Ok(files) => Ok(files),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(snapshot_err(e)),
    }
}
