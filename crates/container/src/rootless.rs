//! Rootless mode, as runc defines it: when the runtime is "rootless" (`--rootless auto`
//! decides from the effective uid and the user namespace), where an unprivileged caller's
//! state lives, what an unprivileged caller may ask for, and which cgroup failures a
//! rootless container tolerates.
//!
//! Two different things are called rootless, as in runc: the *rootless cgroup manager*
//! (`--rootless`, also true for root inside a user namespace: cgroup permission errors are
//! tolerated when nothing needs a cgroup) and the *rootless EUID* (the runtime's effective
//! uid is not 0: no privileged operation is attempted, id maps go through
//! newuidmap/newgidmap, and the config must have a user namespace). Pure functions: the
//! binary passes in the environment and the ids.

use std::ffi::OsStr;
use std::path::PathBuf;

use berth_runtime_spec::{LinuxNamespaceType, LinuxResources, Spec};

use crate::cgroups::CgroupError;

/// What is wrong with a rootless invocation.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error(
        "no state directory for a non-root user: --root is not given and XDG_RUNTIME_DIR is not set \
         (hint: pass --root <a directory you own>, or set XDG_RUNTIME_DIR)"
    )]
    NoStateDir,
    #[error("invalid --rootless value {value:?}: want true, false or auto")]
    InvalidFlag { value: String },
    /// runc's wording (`rootlessEUIDMappings`).
    #[error("rootless container requires user namespaces")]
    NoUserNamespace,
    #[error("rootless containers requires at least one {kind} mapping")]
    NoMapping { kind: &'static str },
    #[error(
        "cannot specify {option} mount option for mount {destination} of a rootless container: \
         {kind} {id} is not mapped"
    )]
    UnmappedMountOption {
        option: String,
        destination: String,
        kind: &'static str,
        id: u32,
    },
    #[error(
        "rootless container {id} asks for cgroup limits but the runtime cannot create or join a \
         cgroup (hint: delegate a cgroup to this user and set linux.cgroupsPath, or remove \
         linux.resources)"
    )]
    LimitsWithoutCgroup {
        id: String,
        #[source]
        source: CgroupError,
    },
}

pub use berth_fsutil::running_in_user_namespace;

/// `--rootless true|false|auto` resolved as runc's `shouldUseRootlessCgroupManager` does
/// for the cgroupfs driver: auto is rootless when the effective uid is not 0, or when it
/// is 0 inside a user namespace (root there cannot know whether it owns the cgroups).
pub fn resolve_flag(value: &str, euid: u32, in_userns: bool) -> Result<bool, RootlessError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(euid != 0 || in_userns),
        other => Err(RootlessError::InvalidFlag {
            value: other.to_owned(),
        }),
    }
}

/// The default `--root` when none is given, as runc's: `$XDG_RUNTIME_DIR/berth-runtime`
/// for a non-root user (and for root in a user namespace unless `$USER` is `root`),
/// otherwise `/run/berth-runtime`. A non-root user without `XDG_RUNTIME_DIR` gets an error
/// (runc falls back to `/run/runc` and fails later with a bare EACCES).
///
/// Returns the directory and whether it came from `XDG_RUNTIME_DIR` (then the caller
/// creates it 0700 with the sticky bit, which the XDG spec asks for against pruning).
pub fn default_root(
    euid: u32,
    in_userns: bool,
    xdg_runtime_dir: Option<&OsStr>,
    user: Option<&OsStr>,
) -> Result<(PathBuf, bool), RootlessError> {
    let xdg = xdg_runtime_dir.filter(|d| !d.is_empty());
    let honour_xdg = euid != 0 || (in_userns && user.is_none_or(|u| u != "root"));
    match xdg {
        Some(dir) if honour_xdg => Ok((PathBuf::from(dir).join("berth-runtime"), true)),
        None if euid != 0 => Err(RootlessError::NoStateDir),
        _ => Ok((PathBuf::from(crate::paths::DEFAULT_ROOT), false)),
    }
}

/// runc's `rootlessEUIDCheck`: a runtime without root (effective uid not 0) needs a user
/// namespace, id mappings when it creates one, and `uid=`/`gid=` mount options that are
/// mapped inside it.
pub(crate) fn validate_unprivileged(spec: &Spec) -> Result<(), RootlessError> {
    let Some(linux) = spec.linux.as_ref() else {
        return Err(RootlessError::NoUserNamespace);
    };
    let userns = linux
        .namespaces
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|n| n.typ == LinuxNamespaceType::User);
    let Some(userns) = userns else {
        return Err(RootlessError::NoUserNamespace);
    };
    let uid_maps = linux.uid_mappings.as_deref().unwrap_or_default();
    let gid_maps = linux.gid_mappings.as_deref().unwrap_or_default();
    if userns.path.is_none() {
        if uid_maps.is_empty() {
            return Err(RootlessError::NoMapping { kind: "UID" });
        }
        if gid_maps.is_empty() {
            return Err(RootlessError::NoMapping { kind: "GID" });
        }
    }
    let mapped = |maps: &[berth_runtime_spec::LinuxIdMapping], id: u32| {
        maps.iter().any(|m| {
            id >= m.container_id && u64::from(id) < u64::from(m.container_id) + u64::from(m.size)
        })
    };
    for m in spec.mounts.as_deref().unwrap_or_default() {
        for opt in m.options.as_deref().unwrap_or_default() {
            let (kind, maps, value) = if let Some(v) = opt.strip_prefix("uid=") {
                ("uid", uid_maps, v)
            } else if let Some(v) = opt.strip_prefix("gid=") {
                ("gid", gid_maps, v)
            } else {
                continue;
            };
            // unknown values are left to the kernel, as runc does
            let Ok(id) = value.parse::<u32>() else {
                continue;
            };
            if !mapped(maps, id) {
                return Err(RootlessError::UnmappedMountOption {
                    option: opt.clone(),
                    destination: m.destination.display().to_string(),
                    kind,
                    id,
                });
            }
        }
    }
    Ok(())
}

/// Whether `resources` asks for anything only a cgroup can give (devices aside: a rootless
/// runtime cannot apply device rules anyway, and runc ignores them too).
pub(crate) fn requests_limits(r: &LinuxResources) -> bool {
    r.memory.is_some()
        || r.cpu.is_some()
        || r.pids.is_some()
        || r.block_io.is_some()
        || r.hugepage_limits.as_ref().is_some_and(|h| !h.is_empty())
        || r.network.is_some()
        || r.rdma.as_ref().is_some_and(|m| !m.is_empty())
        || r.unified.as_ref().is_some_and(|m| !m.is_empty())
}

/// Whether a cgroup error is a lack of permission (EPERM, EACCES, EROFS), the only kind
/// runc's rootless cgroup manager tolerates.
pub(crate) fn is_permission_error(e: &CgroupError) -> bool {
    use rustix::io::Errno;
    e.raw_os_error().is_some_and(|n| {
        [Errno::PERM, Errno::ACCESS, Errno::ROFS]
            .iter()
            .any(|e| e.raw_os_error() == n)
    })
}

/// Whether a cgroup error comes from applying device rules (ignored in rootless mode, as
/// runc does: an unprivileged user cannot write `devices.deny` or attach a device program).
pub(crate) fn is_devices_error(e: &CgroupError) -> bool {
    match e {
        CgroupError::Write { path, .. } => path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("devices.")),
        CgroupError::Bpf { .. } | CgroupError::BpfLoad { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime_spec::defaults::default_spec;
    use std::path::Path;

    #[test]
    fn auto_is_rootless_unless_real_root() {
        assert!(!resolve_flag("auto", 0, false).unwrap());
        assert!(resolve_flag("auto", 1000, false).unwrap());
        assert!(resolve_flag("auto", 0, true).unwrap());
        assert!(resolve_flag("true", 0, false).unwrap());
        assert!(!resolve_flag("false", 1000, true).unwrap());
        let e = resolve_flag("maybe", 0, false).unwrap_err();
        assert!(e.to_string().contains("\"maybe\""), "{e}");
    }

    #[test]
    fn default_root_follows_runc() {
        let xdg = Some(OsStr::new("/run/user/1000"));
        // real root ignores XDG_RUNTIME_DIR (often /run/user/0)
        let (p, x) = default_root(0, false, Some(OsStr::new("/run/user/0")), None).unwrap();
        assert_eq!((p.as_path(), x), (Path::new("/run/berth-runtime"), false));
        // an ordinary user uses it
        let (p, x) = default_root(1000, false, xdg, Some(OsStr::new("alice"))).unwrap();
        assert_eq!(
            (p.as_path(), x),
            (Path::new("/run/user/1000/berth-runtime"), true)
        );
        // root in a user namespace uses it unless $USER is root
        assert!(default_root(0, true, xdg, None).unwrap().1);
        assert!(
            default_root(0, true, xdg, Some(OsStr::new("alice")))
                .unwrap()
                .1
        );
        assert!(
            !default_root(0, true, xdg, Some(OsStr::new("root")))
                .unwrap()
                .1
        );
        // a user without XDG_RUNTIME_DIR (or with an empty one) gets a clear error
        for none in [None, Some(OsStr::new(""))] {
            let e = default_root(1000, false, none, None).unwrap_err();
            assert!(matches!(e, RootlessError::NoStateDir));
            assert!(e.to_string().contains("XDG_RUNTIME_DIR") && e.to_string().contains("--root"));
        }
        // root without it is fine
        assert!(!default_root(0, false, None, None).unwrap().1);
    }

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn unprivileged_configs_are_checked_as_runc_does() {
        let ok = default_spec(Some((1000, 1000)), false);
        validate_unprivileged(&ok).unwrap();
        let root = default_spec(None, false);
        assert!(matches!(
            validate_unprivileged(&root),
            Err(RootlessError::NoUserNamespace)
        ));
        let mut v = serde_json::to_value(default_spec(Some((1000, 1000)), false)).unwrap();
        v["linux"]["gidMappings"] = serde_json::json!([]);
        assert!(matches!(
            validate_unprivileged(&spec(v.clone())),
            Err(RootlessError::NoMapping { kind: "GID" })
        ));
        // joining an existing user namespace needs no mappings
        v["linux"]["namespaces"] = serde_json::json!([
            {"type": "mount"}, {"type": "user", "path": "/proc/1/ns/user"}
        ]);
        validate_unprivileged(&spec(v.clone())).unwrap();
        // gid=5 on devpts is not mapped when only the caller's gid is mapped to 0
        let mut v = serde_json::to_value(default_spec(Some((1000, 1000)), false)).unwrap();
        v["mounts"][2]["options"] = serde_json::json!(["newinstance", "gid=5"]);
        let e = validate_unprivileged(&spec(v.clone())).unwrap_err();
        assert!(
            e.to_string().contains("gid=5") && e.to_string().contains("/dev/pts"),
            "{e}"
        );
        v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1},
                               {"containerID": 1, "hostID": 200000, "size": 65536}]);
        validate_unprivileged(&spec(v)).unwrap();
    }

    #[test]
    fn limits_are_told_apart_from_device_rules() {
        let r: LinuxResources = serde_json::from_value(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}),
        )
        .unwrap();
        assert!(!requests_limits(&r));
        assert!(!requests_limits(&LinuxResources::default()));
        let r: LinuxResources =
            serde_json::from_value(serde_json::json!({"pids": {"limit": 10}})).unwrap();
        assert!(requests_limits(&r));
        let r: LinuxResources =
            serde_json::from_value(serde_json::json!({"memory": {"limit": 1048576}})).unwrap();
        assert!(requests_limits(&r));
    }

    #[test]
    fn only_permission_errors_are_tolerated() {
        let err = |errno: i32, file: &str| CgroupError::Write {
            path: PathBuf::from("/sys/fs/cgroup/x").join(file),
            value: "a".to_owned(),
            source: std::io::Error::from_raw_os_error(errno),
        };
        assert!(is_permission_error(&err(13, "cgroup.procs")));
        assert!(is_permission_error(&err(1, "cgroup.procs")));
        assert!(is_permission_error(&err(30, "cgroup.procs")));
        assert!(!is_permission_error(&err(2, "cgroup.procs")));
        assert!(!is_permission_error(&CgroupError::NoFreezer));
        assert!(is_devices_error(&err(1, "devices.deny")));
        assert!(!is_devices_error(&err(1, "pids.max")));
    }
}
