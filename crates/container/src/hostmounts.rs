//! The mounts a container without a mount namespace of its own leaves in the runtime's
//! (the host's) mount namespace.
//!
//! A config whose `linux.namespaces` has no `mount` entry inherits the runtime's mount
//! namespace (runtime-spec; runc does the same): the rootfs is bind-mounted onto itself and
//! every `mounts[]` entry is mounted under it there, where nothing unmounts them when the
//! container goes. `create` records which mounts at or under the rootfs existed before the
//! init started ([`snapshot`]) and, once the init is ready, which ones it made
//! ([`made_since`]); `delete` and a failed `create` detach those ([`unmount`]), deepest
//! first, lazily (a container process may still hold one). A mount is identified by its id
//! *and* its mount point, so that an id the kernel reused elsewhere is never touched.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rustix::mount::UnmountFlags;
use serde::{Deserialize, Serialize};

use crate::mountinfo::{self, MountInfo};

/// What failed while reading or undoing the host mounts of a container.
#[derive(Debug, thiserror::Error)]
pub enum HostMountError {
    #[error("failed to read /proc/self/mountinfo")]
    Read(#[source] std::io::Error),
    #[error("failed to parse /proc/self/mountinfo")]
    Parse(#[source] mountinfo::MalformedLine),
    #[error("failed to unmount {mount_point} (mount {id}) from the host's mount namespace")]
    Unmount {
        id: u64,
        mount_point: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One mount in the runtime's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostMount {
    pub id: u64,
    pub mount_point: PathBuf,
}

impl HostMount {
    fn of(m: &MountInfo) -> HostMount {
        HostMount {
            id: m.id,
            mount_point: m.mount_point.clone(),
        }
    }
}

fn current() -> Result<Vec<MountInfo>, HostMountError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(HostMountError::Read)?;
    mountinfo::parse(&text).map_err(HostMountError::Parse)
}

/// The mounts at or under `rootfs` (component-wise: `/b/rootfs-other` is not under
/// `/b/rootfs`) in this process's mount namespace. mountinfo shows mount points with
/// symlinks resolved: so is `rootfs` first (a bundle under `/var/run` → `/run`).
pub fn snapshot(rootfs: &Path) -> Result<Vec<HostMount>, HostMountError> {
    let resolved = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_owned());
    Ok(at_or_under(&current()?, &resolved))
}

fn at_or_under(mounts: &[MountInfo], rootfs: &Path) -> Vec<HostMount> {
    mounts
        .iter()
        .filter(|m| m.mount_point.starts_with(rootfs))
        .map(HostMount::of)
        .collect()
}

/// The mounts at or under `rootfs` that are not in `before`.
pub fn made_since(before: &[HostMount], rootfs: &Path) -> Result<Vec<HostMount>, HostMountError> {
    let before: HashSet<&HostMount> = before.iter().collect();
    Ok(snapshot(rootfs)?
        .into_iter()
        .filter(|m| !before.contains(m))
        .collect())
}

/// Detach every mount of `ours` still mounted (same id, same mount point), with every mount
/// made on top of or beneath one of them since, children before parents. Returns the first
/// failure after trying them all.
pub fn unmount(ours: &[HostMount]) -> Result<(), HostMountError> {
    if ours.is_empty() {
        return Ok(());
    }
    let mounts = current()?;
    let mut last = Ok(());
    for m in plan(&mounts, ours) {
        let target = m.mount_point.as_path();
        match rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
            // gone meanwhile (an ancestor of it was detached by someone else)
            Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => {}
            Err(e) => {
                last = Err(HostMountError::Unmount {
                    id: m.id,
                    mount_point: m.mount_point.clone(),
                    source: e.into(),
                });
            }
        }
    }
    last
}

/// What [`unmount`] detaches, in order: the recorded mounts still present and their
/// descendants, each after all of its children (so the one unmounted by path is always the
/// topmost at that path).
fn plan(mounts: &[MountInfo], ours: &[HostMount]) -> Vec<HostMount> {
    let ours: HashSet<&HostMount> = ours.iter().collect();
    let mut children: HashMap<u64, Vec<&MountInfo>> = HashMap::new();
    for m in mounts {
        children.entry(m.parent).or_default().push(m);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for m in mounts.iter().filter(|m| ours.contains(&HostMount::of(m))) {
        post_order(m, &children, &mut seen, &mut out);
    }
    out
}

fn post_order(
    m: &MountInfo,
    children: &HashMap<u64, Vec<&MountInfo>>,
    seen: &mut HashSet<u64>,
    out: &mut Vec<HostMount>,
) {
    if !seen.insert(m.id) {
        return;
    }
    // a mount whose parent is itself is the namespace's root: never ours, never a loop
    for c in children.get(&m.id).into_iter().flatten() {
        if c.id != m.id {
            post_order(c, children, seen, out);
        }
    }
    out.push(HostMount::of(m));
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
30 22 8:1 /b/rootfs /b/rootfs rw - ext4 /dev/vda rw
40 22 0:40 / /b/rootfs-other/proc rw - proc proc rw
41 30 0:41 / /b/rootfs/proc rw - proc proc rw
42 30 0:42 / /b/rootfs/dev rw - tmpfs tmpfs rw
43 42 0:43 / /b/rootfs/dev/pts rw - devpts devpts rw
44 42 0:44 / /b/rootfs/dev/shm rw - tmpfs shm rw
45 30 8:1 /b/rootfs /b/rootfs rw - ext4 /dev/vda rw
";

    fn hm(id: u64, p: &str) -> HostMount {
        HostMount {
            id,
            mount_point: PathBuf::from(p),
        }
    }

    #[test]
    fn only_mounts_at_or_under_the_rootfs_are_ours() {
        let mounts = mountinfo::parse(TEXT).unwrap();
        let under = at_or_under(&mounts, Path::new("/b/rootfs"));
        let ids: Vec<u64> = under.iter().map(|m| m.id).collect();
        assert_eq!(ids, [30, 41, 42, 43, 44, 45]);
    }

    #[test]
    fn children_are_detached_before_their_parents_and_stacked_mounts_from_the_top() {
        let mounts = mountinfo::parse(TEXT).unwrap();
        let order = plan(&mounts, &[hm(30, "/b/rootfs")]);
        let pos = |id| order.iter().position(|m| m.id == id).unwrap();
        assert_eq!(order.len(), 6, "{order:?}");
        assert!(pos(43) < pos(42) && pos(44) < pos(42), "{order:?}");
        assert!(pos(41) < pos(30) && pos(42) < pos(30), "{order:?}");
        // 45 is stacked on 30 at the same path: it goes first
        assert!(pos(45) < pos(30), "{order:?}");
        assert!(!order.iter().any(|m| m.id == 22 || m.id == 40), "{order:?}");
    }

    #[test]
    fn a_reused_id_at_another_mount_point_is_not_ours() {
        let mounts = mountinfo::parse(TEXT).unwrap();
        // 40 was ours under the rootfs once; the kernel reused the id elsewhere
        assert!(plan(&mounts, &[hm(40, "/b/rootfs/proc")]).is_empty());
        assert_eq!(
            plan(&mounts, &[hm(44, "/b/rootfs/dev/shm")]),
            [hm(44, "/b/rootfs/dev/shm")]
        );
    }
}
