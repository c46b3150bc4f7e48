//! `linux.cgroupsPath` → the container's cgroup directory in each hierarchy (runc's rules).
//!
//! - cgroupfs driver (default): the path is cleaned lexically (runc `CleanPath`: no `..`
//!   escapes). An absolute path is taken from each hierarchy's root; a relative one from the
//!   runtime's own cgroup in that hierarchy (v1: `/proc/self/cgroup` line of the controller;
//!   v2: the *parent* of the "0::" cgroup, since that one usually has processes in it). An
//!   empty path means the container id, relative (runc: `Name = id, Parent = ""`).
//! - `--systemd-cgroup`: the path is `slice:prefix:name`. systemd is not running here, so the
//!   cgroup is created with cgroupfs exactly where systemd would have put the unit: the slice
//!   expanded as systemd does (`a-b.slice` → `/a.slice/a-b.slice`, `-.slice` → `/`, empty →
//!   `system.slice`), then the unit `prefix-name.scope` (or `name` itself when it ends in
//!   `.slice`). An empty path is `system.slice:runc:<id>`, runc's default. These paths are
//!   absolute.
//! - hybrid hosts: the unified hierarchy is joined at `/sys/fs/cgroup/unified/<path>` whether
//!   the path is absolute or relative (runc's `GetOwnCgroupPath("")` quirk).

use std::path::{Path, PathBuf};

use super::CgroupSpec;
use super::error::CgroupError;
use super::host::join_below;

/// The unit prefix runc uses for a systemd scope when the config gives no cgroupsPath.
pub(crate) const DEFAULT_SCOPE_PREFIX: &str = "runc";
/// The slice runc uses when a systemd cgroupsPath gives none.
pub(crate) const DEFAULT_SLICE: &str = "system.slice";

/// A cleaned cgroup path, before it is placed in a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Inner {
    /// From each hierarchy's root, starting with '/'.
    Absolute(String),
    /// From the runtime's own cgroup, no leading '/'.
    Relative(String),
}

/// runc's `CleanPath`: lexical cleaning; a relative path can never climb above its base.
pub(crate) fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// systemd's slice expansion (runc `ExpandSlice`).
pub(crate) fn expand_slice(slice: &str) -> Result<String, CgroupError> {
    let invalid = || CgroupError::InvalidPath {
        path: slice.to_owned(),
        reason: "invalid slice name".to_owned(),
    };
    let name = slice.strip_suffix(".slice").ok_or_else(invalid)?;
    if name.is_empty() || slice.contains('/') {
        return Err(invalid());
    }
    if name == "-" {
        return Ok("/".to_owned());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in name.split('-') {
        if component.is_empty() {
            return Err(invalid());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(component);
        path.push_str(".slice");
        prefix.push_str(component);
        prefix.push('-');
    }
    Ok(path)
}

/// The cleaned path of the container's cgroup, per the rules in the module doc.
pub(crate) fn inner_path(spec: &CgroupSpec) -> Result<Inner, CgroupError> {
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: spec.path.clone(),
        reason: reason.to_owned(),
    };
    if spec.systemd {
        let (slice, prefix, name) = if spec.path.is_empty() {
            (
                DEFAULT_SLICE,
                DEFAULT_SCOPE_PREFIX,
                spec.container_id.as_str(),
            )
        } else {
            let parts: Vec<&str> = spec.path.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(invalid(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups",
                ));
            };
            (slice, prefix, name)
        };
        let slice = if slice.is_empty() {
            DEFAULT_SLICE
        } else {
            slice
        };
        if name.is_empty() || name.contains('/') || prefix.contains('/') {
            return Err(invalid(
                "the unit name must be non-empty and contain no '/'",
            ));
        }
        let unit = if name.ends_with(".slice") {
            name.to_owned()
        } else {
            format!("{prefix}-{name}.scope")
        };
        let slice_path = expand_slice(slice)?;
        let path = format!("{}/{unit}", slice_path.trim_end_matches('/'));
        return Ok(Inner::Absolute(path));
    }
    let cleaned = clean_path(&spec.path);
    if cleaned.is_empty() {
        let id = clean_path(&spec.container_id);
        if id.is_empty() || id == "." {
            return Err(invalid(
                "no cgroupsPath and no container id to name the cgroup",
            ));
        }
        return Ok(Inner::Relative(id));
    }
    if cleaned == "/" || cleaned == "." {
        return Err(invalid(
            "the container cannot use the root or its own runtime's cgroup",
        ));
    }
    if cleaned.starts_with('/') {
        Ok(Inner::Absolute(cleaned))
    } else {
        Ok(Inner::Relative(cleaned))
    }
}

impl Inner {
    /// The directory in one v1 hierarchy, given its mount point and the runtime's own cgroup
    /// directory in it.
    pub(crate) fn in_v1(&self, mount_point: &Path, own_dir: Option<&Path>) -> PathBuf {
        match self {
            Self::Absolute(path) => join_below(mount_point, path),
            Self::Relative(path) => join_below(own_dir.unwrap_or(mount_point), path),
        }
    }

    /// The directory in a unified (v2) hierarchy: relative paths go below the *parent* of the
    /// runtime's own cgroup (`own`, relative to the mount).
    pub(crate) fn in_v2(&self, mount_point: &Path, own: Option<&str>) -> PathBuf {
        match self {
            Self::Absolute(path) => join_below(mount_point, path),
            Self::Relative(path) => {
                let own = own.unwrap_or("/");
                let parent = own
                    .trim_end_matches('/')
                    .rsplit_once('/')
                    .map_or("", |(p, _)| p);
                join_below(&join_below(mount_point, parent), path)
            }
        }
    }

    /// The directory in the unified hierarchy of a hybrid host (always from its root).
    pub(crate) fn in_hybrid_unified(&self, mount_point: &Path) -> PathBuf {
        match self {
            Self::Absolute(path) | Self::Relative(path) => join_below(mount_point, path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, systemd: bool) -> CgroupSpec {
        CgroupSpec {
            path: path.to_owned(),
            systemd,
            container_id: "ctr1".to_owned(),
        }
    }

    #[test]
    fn clean_path_never_escapes() {
        assert_eq!(clean_path(""), "");
        assert_eq!(clean_path("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean_path("../../../etc"), "etc");
        assert_eq!(clean_path("a/../.."), ".");
        assert_eq!(clean_path("/.."), "/");
    }

    #[test]
    fn cgroupfs_paths() {
        assert_eq!(
            inner_path(&spec("/kubepods/pod1/ctr", false)).unwrap(),
            Inner::Absolute("/kubepods/pod1/ctr".into())
        );
        assert_eq!(
            inner_path(&spec("/a/../../b", false)).unwrap(),
            Inner::Absolute("/b".into())
        );
        assert_eq!(
            inner_path(&spec("x/y", false)).unwrap(),
            Inner::Relative("x/y".into())
        );
        assert_eq!(
            inner_path(&spec("../../x", false)).unwrap(),
            Inner::Relative("x".into())
        );
        // empty: the container id, relative (runc: Name=id, Parent="")
        assert_eq!(
            inner_path(&spec("", false)).unwrap(),
            Inner::Relative("ctr1".into())
        );
        assert!(matches!(
            inner_path(&spec("/", false)),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            inner_path(&spec("/..", false)),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn systemd_paths_become_the_cgroupfs_path_systemd_would_use() {
        assert_eq!(
            inner_path(&spec("system.slice:docker:abc", true)).unwrap(),
            Inner::Absolute("/system.slice/docker-abc.scope".into())
        );
        assert_eq!(
            inner_path(&spec("kubepods-besteffort-pod12.slice:cri-containerd:abc", true)).unwrap(),
            Inner::Absolute(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope".into()
            )
        );
        assert_eq!(
            inner_path(&spec("-.slice:p:n", true)).unwrap(),
            Inner::Absolute("/p-n.scope".into())
        );
        assert_eq!(
            inner_path(&spec(":p:n", true)).unwrap(),
            Inner::Absolute("/system.slice/p-n.scope".into())
        );
        assert_eq!(
            inner_path(&spec("user.slice:x:my.slice", true)).unwrap(),
            Inner::Absolute("/user.slice/my.slice".into())
        );
        assert_eq!(
            inner_path(&spec("", true)).unwrap(),
            Inner::Absolute("/system.slice/runc-ctr1.scope".into())
        );
        for bad in [
            "a:b",
            "a:b:c:d",
            "nosuffix:p:n",
            "a--b.slice:p:n",
            "a/b.slice:p:n",
            "s.slice:p:",
            "s.slice:p:a/b",
        ] {
            assert!(
                matches!(
                    inner_path(&spec(bad, true)),
                    Err(CgroupError::InvalidPath { .. })
                ),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn placement_in_each_hierarchy() {
        let mnt = Path::new("/sys/fs/cgroup/memory");
        let own = Path::new("/sys/fs/cgroup/memory/process_api/1");
        let abs = Inner::Absolute("/a/b".into());
        let rel = Inner::Relative("c".into());
        assert_eq!(
            abs.in_v1(mnt, Some(own)),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            rel.in_v1(mnt, Some(own)),
            Path::new("/sys/fs/cgroup/memory/process_api/1/c")
        );
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            abs.in_v2(root, Some("/user.slice/s.scope")),
            Path::new("/sys/fs/cgroup/a/b")
        );
        assert_eq!(
            rel.in_v2(root, Some("/user.slice/s.scope")),
            Path::new("/sys/fs/cgroup/user.slice/c")
        );
        assert_eq!(rel.in_v2(root, Some("/")), Path::new("/sys/fs/cgroup/c"));
        let unified = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(
            rel.in_hybrid_unified(unified),
            Path::new("/sys/fs/cgroup/unified/c")
        );
    }
}
