//! What the host offers: the cgroup mode, the hierarchies in `/proc/self/mountinfo` and the
//! runtime's own cgroups in `/proc/self/cgroup`.
//!
//! Parsing is pure (tested with fixtures of pure v2, hybrid and legacy hosts); only
//! [`HostCgroups::detect`] and [`detect_mode`] touch the real host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CgroupMode;
use super::error::CgroupError;

/// Where the cgroup hierarchies are mounted on a standard host.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The cgroup mode of this host, from the filesystem type of `/sys/fs/cgroup` (as runc):
/// cgroup2 → unified; tmpfs holding v1 hierarchies → legacy, or hybrid when
/// `/sys/fs/cgroup/unified` is a cgroup2 mount.
pub fn detect_mode() -> Result<CgroupMode, CgroupError> {
    detect_mode_at(Path::new(CGROUP_ROOT))
}

fn fs_type(path: &Path) -> Result<u64, CgroupError> {
    let stat = rustix::fs::statfs(path).map_err(|errno| CgroupError::Statfs {
        path: path.to_owned(),
        source: errno.into(),
    })?;
    // f_type is a signed word on some architectures; magic numbers are positive.
    #[expect(
        clippy::cast_sign_loss,
        reason = "filesystem magic numbers are positive"
    )]
    Ok(stat.f_type as u64)
}

/// [`detect_mode`] for cgroup hierarchies mounted under `root`.
pub(crate) fn detect_mode_at(root: &Path) -> Result<CgroupMode, CgroupError> {
    match fs_type(root)? {
        CGROUP2_SUPER_MAGIC => Ok(CgroupMode::Unified),
        CGROUP_SUPER_MAGIC => Ok(CgroupMode::Legacy),
        TMPFS_MAGIC => {
            let unified = root.join("unified");
            if matches!(fs_type(&unified), Ok(CGROUP2_SUPER_MAGIC)) {
                return Ok(CgroupMode::Hybrid);
            }
            let entries = std::fs::read_dir(root).map_err(|source| CgroupError::ReadDir {
                path: root.to_owned(),
                source,
            })?;
            for entry in entries.flatten() {
                if matches!(fs_type(&entry.path()), Ok(CGROUP_SUPER_MAGIC)) {
                    return Ok(CgroupMode::Legacy);
                }
            }
            Err(CgroupError::NoCgroupFs {
                path: root.to_owned(),
                fs_type: TMPFS_MAGIC,
            })
        }
        other => Err(CgroupError::NoCgroupFs {
            path: root.to_owned(),
            fs_type: other,
        }),
    }
}

pub(crate) use crate::mountinfo::MountInfo;

/// Parse `/proc/<pid>/mountinfo`.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<MountInfo>, CgroupError> {
    crate::mountinfo::parse(text).map_err(|e| CgroupError::Parse {
        path: PathBuf::from("/proc/self/mountinfo"),
        reason: format!("malformed line {:?}", e.line),
    })
}

/// Parse `/proc/<pid>/cgroup` into controller → cgroup path. Each v1 controller of a line gets
/// the line's path ("name=systemd" keeps its prefix); the v2 line ("0::/path") has the key "".
pub(crate) fn parse_proc_cgroup(text: &str) -> Result<BTreeMap<String, String>, CgroupError> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CgroupError::Parse {
                path: PathBuf::from("/proc/self/cgroup"),
                reason: format!("invalid cgroup entry {line:?}: must contain at least two colons"),
            });
        };
        for controller in controllers.split(',') {
            map.insert(controller.to_owned(), path.to_owned());
        }
    }
    Ok(map)
}

/// A mounted cgroup v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers attached to it, as in the mount options ("cpu", "cpuacct", "name=systemd").
    pub controllers: Vec<String>,
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mount_point: PathBuf,
    /// The mount's root within the hierarchy ("/" unless bind-mounted from a sub-cgroup).
    pub root: String,
}

/// The cgroup layout of a host and the runtime's place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCgroups {
    pub mode: CgroupMode,
    /// Mounted v1 hierarchies (legacy and hybrid), the first mount of each, in mountinfo order.
    pub hierarchies: Vec<Hierarchy>,
    /// The cgroup2 mount: `/sys/fs/cgroup` (unified) or `/sys/fs/cgroup/unified` (hybrid).
    pub unified_mount: Option<PathBuf>,
    /// The cgroup2 mount's root within the hierarchy.
    pub unified_root: String,
    /// The runtime's own cgroups (`/proc/self/cgroup`), controller → path, "" for v2.
    pub own: BTreeMap<String, String>,
}

impl HostCgroups {
    /// Read this host: [`detect_mode`], `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Self, CgroupError> {
        let mode = detect_mode()?;
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
                path: PathBuf::from(path),
                source,
            })
        };
        Self::from_parts(
            mode,
            &read("/proc/self/mountinfo")?,
            &read("/proc/self/cgroup")?,
        )
    }

    /// Build from a mode and the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn from_parts(
        mode: CgroupMode,
        mountinfo: &str,
        proc_cgroup: &str,
    ) -> Result<Self, CgroupError> {
        let mounts = parse_mountinfo(mountinfo)?;
        let own = parse_proc_cgroup(proc_cgroup)?;
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        if mode != CgroupMode::Unified {
            for mount in mounts.iter().filter(|m| m.fs_type == "cgroup") {
                let controllers: Vec<String> = mount
                    .super_options
                    .iter()
                    .filter(|opt| !opt.is_empty() && own.contains_key(opt.as_str()))
                    .filter(|opt| !hierarchies.iter().any(|h| h.controllers.contains(opt)))
                    .cloned()
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                hierarchies.push(Hierarchy {
                    controllers,
                    mount_point: mount.mount_point.clone(),
                    root: mount.root.clone(),
                });
            }
        }
        let cgroup2: Vec<&MountInfo> = mounts.iter().filter(|m| m.fs_type == "cgroup2").collect();
        let wanted = match mode {
            CgroupMode::Unified => Some(Path::new(CGROUP_ROOT).to_path_buf()),
            CgroupMode::Hybrid => Some(Path::new(CGROUP_ROOT).join("unified")),
            CgroupMode::Legacy => None,
        };
        let unified = match &wanted {
            None => None,
            Some(wanted) => cgroup2
                .iter()
                .find(|m| &m.mount_point == wanted)
                .or_else(|| cgroup2.first())
                .copied(),
        };
        if mode == CgroupMode::Unified && unified.is_none() {
            return Err(CgroupError::InvalidState {
                reason: "cgroup v2 host without a cgroup2 mount in mountinfo".to_owned(),
            });
        }
        Ok(Self {
            mode,
            hierarchies,
            unified_mount: unified.map(|m| m.mount_point.clone()),
            unified_root: unified.map_or_else(|| "/".to_owned(), |m| m.root.clone()),
            own,
        })
    }

    /// The hierarchy a v1 controller is attached to.
    pub fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        let named = format!("name={controller}");
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller || *c == named))
    }

    /// The runtime's own cgroup directory for a v1 controller (runc's `GetOwnCgroupPath`).
    pub fn own_dir(&self, controller: &str) -> Option<PathBuf> {
        let hierarchy = self.hierarchy(controller)?;
        let own = self
            .own
            .get(controller)
            .or_else(|| self.own.get(&format!("name={controller}")))?;
        Some(join_below(
            &hierarchy.mount_point,
            relative_to_root(&hierarchy.root, own),
        ))
    }

    /// The runtime's own v2 cgroup path ("0::" line), relative to the cgroup2 mount.
    pub fn own_unified(&self) -> Option<&str> {
        self.own
            .get("")
            .map(|own| relative_to_root(&self.unified_root, own))
    }
}

/// `own` relative to a mount's root: a bind-mounted sub-tree shows its cgroups below the mount.
fn relative_to_root<'a>(root: &str, own: &'a str) -> &'a str {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return own;
    }
    match own.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => own,
    }
}

/// `base` joined with an absolute or relative cgroup path (already clean).
pub(crate) fn join_below(base: &Path, path: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push(part);
    }
    out
}

/// The cgroup directories of process `pid` whose last component contains `id` (runc's and
/// berth's default names end in the container id): what `delete --force` of a container
/// whose record is lost can remove.
pub fn process_dirs_named(pid: i32, id: &str) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let (Ok(mut host), Ok(theirs)) = (HostCgroups::detect(), parse_proc_cgroup(&text)) else {
        return Vec::new();
    };
    host.own = theirs;
    let mut dirs = Vec::new();
    for controller in host.own.keys() {
        let dir = if controller.is_empty() {
            host.unified_mount
                .as_deref()
                .zip(host.own_unified())
                .map(|(m, p)| join_below(m, p))
        } else {
            host.own_dir(controller.trim_start_matches("name="))
        };
        if let Some(dir) = dir
            && dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(id))
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/2690
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    const LEGACY_MOUNTINFO: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
33 25 0:30 /docker/abc /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
34 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset,clone_children
35 25 0:31 / /mnt/cpuset\\040again rw,relatime - cgroup cgroup rw,cpuset,clone_children
";
    const LEGACY_CGROUP: &str = "\
11:pids:/docker/abc/sub
10:cpuset:/
9:devices:/user.slice
8:memory:/user.slice/user-1000.slice
5:net_cls,net_prio:/
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
";

    const UNIFIED_MOUNTINFO: &str = "\
24 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const UNIFIED_CGROUP: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";

    #[test]
    fn hybrid_host_lists_each_v1_hierarchy_and_the_unified_mount() {
        let host =
            HostCgroups::from_parts(CgroupMode::Hybrid, HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        let names: Vec<String> = host
            .hierarchies
            .iter()
            .map(|h| h.controllers.join(","))
            .collect();
        assert_eq!(
            names,
            [
                "cpu",
                "cpuacct",
                "cpuset",
                "memory",
                "devices",
                "freezer",
                "blkio",
                "pids",
                "name=systemd"
            ]
        );
        assert_eq!(
            host.unified_mount.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            host.own_dir("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/2690")
        );
        assert_eq!(
            host.own_dir("cpu").unwrap(),
            Path::new("/sys/fs/cgroup/cpu")
        );
        assert_eq!(
            host.own_dir("name=systemd").unwrap(),
            Path::new("/sys/fs/cgroup/systemd")
        );
        assert_eq!(host.own_unified(), Some("/"));
        assert!(host.hierarchy("net_cls").is_none());
    }

    #[test]
    fn legacy_host_with_comounted_controllers_and_a_bind_mounted_root() {
        let host =
            HostCgroups::from_parts(CgroupMode::Legacy, LEGACY_MOUNTINFO, LEGACY_CGROUP).unwrap();
        let names: Vec<String> = host
            .hierarchies
            .iter()
            .map(|h| h.controllers.join(","))
            .collect();
        // the second cpuset mount is skipped; "xattr", "clone_children" are not controllers
        assert_eq!(
            names,
            [
                "name=systemd",
                "cpu,cpuacct",
                "net_cls,net_prio",
                "memory",
                "devices",
                "pids",
                "cpuset"
            ]
        );
        assert_eq!(host.unified_mount, None);
        assert_eq!(
            host.own_dir("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        // the pids mount's root is /docker/abc: our /docker/abc/sub shows as /sub below it
        assert_eq!(
            host.own_dir("pids").unwrap(),
            Path::new("/sys/fs/cgroup/pids/sub")
        );
        assert_eq!(
            host.own_dir("systemd").unwrap(),
            Path::new("/sys/fs/cgroup/systemd/user.slice/user-1000.slice/session-2.scope")
        );
    }

    #[test]
    fn unified_host_has_no_v1_hierarchies() {
        let host = HostCgroups::from_parts(CgroupMode::Unified, UNIFIED_MOUNTINFO, UNIFIED_CGROUP)
            .unwrap();
        assert!(host.hierarchies.is_empty());
        assert_eq!(
            host.unified_mount.as_deref(),
            Some(Path::new("/sys/fs/cgroup"))
        );
        assert_eq!(
            host.own_unified(),
            Some("/user.slice/user-1000.slice/session-2.scope")
        );
    }

    #[test]
    fn unified_mode_without_a_cgroup2_mount_is_an_error() {
        let err = HostCgroups::from_parts(CgroupMode::Unified, LEGACY_MOUNTINFO, UNIFIED_CGROUP)
            .unwrap_err();
        assert!(matches!(err, CgroupError::InvalidState { .. }), "{err}");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        let mounts = parse_mountinfo(LEGACY_MOUNTINFO).unwrap();
        assert_eq!(
            mounts.last().unwrap().mount_point,
            Path::new("/mnt/cpuset again")
        );
        assert_eq!(mounts[1].super_options[0], "rw");
    }

    #[test]
    fn malformed_inputs_are_errors_naming_the_line() {
        let err = parse_mountinfo("1 2 3\n").unwrap_err();
        assert!(err.to_string().contains("\"1 2 3\""), "{err}");
        let err = parse_proc_cgroup("garbage\n").unwrap_err();
        assert!(err.to_string().contains("garbage"), "{err}");
    }

    #[test]
    fn proc_cgroup_maps_each_controller() {
        let map = parse_proc_cgroup(LEGACY_CGROUP).unwrap();
        assert_eq!(map["net_prio"], "/");
        assert_eq!(map["cpuacct"], "/user.slice");
        assert_eq!(
            map["name=systemd"],
            "/user.slice/user-1000.slice/session-2.scope"
        );
        let map = parse_proc_cgroup("0::/a:b\n").unwrap();
        assert_eq!(map[""], "/a:b");
    }

    #[test]
    fn this_host_is_detected() {
        // whatever this machine runs, detection must give an answer and agree with mountinfo
        let host = HostCgroups::detect().unwrap();
        // scripts/vm-test says which mode its VM has: a mis-detection fails here
        berth_test_support::check_cgroup_mode(match host.mode {
            CgroupMode::Legacy => "v1",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::Unified => "v2",
        });
        match host.mode {
            CgroupMode::Unified => assert!(host.hierarchies.is_empty()),
            CgroupMode::Hybrid => {
                assert!(host.unified_mount.is_some() && !host.hierarchies.is_empty())
            }
            CgroupMode::Legacy => assert!(!host.hierarchies.is_empty()),
        }
    }
}
