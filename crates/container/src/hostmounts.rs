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
use std::os::fd::AsRawFd;
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
pub(crate) struct HostMount {
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
pub(crate) fn snapshot(rootfs: &Path) -> Result<Vec<HostMount>, HostMountError> {
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
pub(crate) fn made_since(
    before: &[HostMount],
    rootfs: &Path,
) -> Result<Vec<HostMount>, HostMountError> {
    let before: HashSet<&HostMount> = before.iter().collect();
    Ok(snapshot(rootfs)?
        .into_iter()
        .filter(|m| !before.contains(m))
        .collect())
}

/// Detach every mount of `ours` still mounted (same id, same mount point), with every mount
/// made on top of or beneath one of them since, children before parents. A mount whose
/// path no longer leads to it without a symlink (the container shares this mount namespace
/// and may have moved things) is left to the detach of its parent, which takes it along;
/// any mount still there at the end is an error.
pub(crate) fn unmount(ours: &[HostMount]) -> Result<(), HostMountError> {
    if ours.is_empty() {
        return Ok(());
    }
    let planned = plan(&current()?, ours);
    let mut last = None;
    for m in &planned {
        if let Err(e) = detach(m) {
            last = Some((m, e));
        }
    }
    let left: HashSet<HostMount> = current()?.iter().map(HostMount::of).collect();
    match planned.iter().find(|m| left.contains(*m)) {
        None => Ok(()),
        Some(m) => Err(HostMountError::Unmount {
            id: m.id,
            mount_point: m.mount_point.clone(),
            source: match last {
                Some((f, e)) if f == m => e.into(),
                _ => std::io::Error::other("still mounted after its parent was detached"),
            },
        }),
    }
}

/// Detach the mount `m` if its mount point still leads to it: resolved without following
/// any symlink (so that a path the container swapped cannot redirect the unmount to a mount
/// of the host's) and checked to be that very mount (by its id) before the unmount, which
/// goes through the descriptor.
fn detach(m: &HostMount) -> Result<(), rustix::io::Errno> {
    use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
    let fd = match rustix::fs::openat2(
        rustix::fs::CWD,
        &m.mount_point,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // moved, replaced by a symlink, or gone: its parent's detach takes it along
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    if st.stx_mnt_id != m.id {
        // what is there now is another mount (covering ours or unrelated): not ours to
        // touch; covered, ours goes with its parent
        return Ok(());
    }
    match rustix::mount::unmount(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        UnmountFlags::DETACH,
    ) {
        // not the root of its mount (the path led inside it) or detached meanwhile
        Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
        Err(e) => Err(e),
    }
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

    /// A tmpfs on `<tmp>/real/m` (this process's mount namespace: root only), lazily
    /// unmounted on drop whatever the test did.
    struct Tmpfs(tempfile::TempDir);

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.0.path().join("real/m"), UnmountFlags::DETACH);
        }
    }

    #[test]
    fn a_mount_point_reached_through_a_symlink_is_not_unmounted() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = Tmpfs(tempfile::tempdir().unwrap());
        let real = t.0.path().join("real");
        std::fs::create_dir_all(real.join("m")).unwrap();
        std::os::unix::fs::symlink(&real, t.0.path().join("link")).unwrap();
        crate::rootfs::mount_raw("tmpfs", &real.join("m").to_string_lossy(), "tmpfs", 0, "")
            .unwrap();
        let ours = snapshot(&real).unwrap();
        assert_eq!(ours.len(), 1, "{ours:?}");
        // as if the container had swapped a directory of the path for a symlink
        let redirected = hm(ours[0].id, &t.0.path().join("link/m").to_string_lossy());
        detach(&redirected).unwrap();
        assert_eq!(
            snapshot(&real).unwrap(),
            ours,
            "unmounted through a symlink"
        );
        unmount(&ours).unwrap();
        assert!(snapshot(&real).unwrap().is_empty());
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
