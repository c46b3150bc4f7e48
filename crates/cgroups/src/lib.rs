//! berth-cgroups: cgroups v1 and v2 behind one [`CgroupManager`] trait.
//!
//! Owns a container's cgroup from the runtime's side: resolving `linux.cgroupsPath` (runc's
//! rules, systemd slices included), creating and joining it, writing `linux.resources`
//! (one file per controller, v1 and v2), the device filter (v1 rules, v2 eBPF), freezing,
//! statistics as `runc events --stats` prints them, OOM notifications, and destroying it.
//! It does not own processes, namespaces or the container's state (berth-container does);
//! its only dependency of ours is the runtime-spec resource types.
//!
//! The mode is detected at run time ([`detect_mode`]): a pure cgroup v2 host gets the v2
//! manager; legacy and hybrid hosts get the v1 manager, which on hybrid hosts also joins the
//! unified hierarchy without setting anything there (as runc). Every controller lives in its
//! own file under `v1/` or `v2/`; all of them reach the kernel through one seam (`fs::CgroupFs`)
//! and take their directories from a resolved [`CgroupState`], so each is unit-tested against
//! a tempdir laid out like cgroupfs, and one conformance suite runs against both versions.
//!
//! Design decision: paths are resolved once ([`manager`], from `linux.cgroupsPath` with runc's
//! rules, see `path.rs`) into a serialisable [`CgroupState`]; `create`, `kill`, `delete`,
//! `update`, `pause` and `events` run as separate processes and rebuild the manager with
//! [`from_state`], never re-resolving against a host that may have changed.

#![warn(unreachable_pub)]

mod devices;
mod error;
mod fs;
mod host;
pub mod mountinfo;
mod notify;
mod path;
pub mod stats;
pub mod update;
mod v1;
mod v2;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod fake;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime_spec::LinuxResources;
use serde::{Deserialize, Serialize};

pub use error::CgroupError;
pub use host::{CGROUP_ROOT, HostCgroups, detect_mode, process_dirs_named};
pub use notify::{NotifyError, OomNotifier};
pub use stats::Stats;
pub use v2::bpf::attached_device_programs;

use fs::{CgroupFs, KernelFs};

/// How the host mounts cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// cgroup v1 hierarchies only.
    Legacy,
    /// cgroup v1 hierarchies for the controllers, plus an (empty) cgroup2 at
    /// `/sys/fs/cgroup/unified`.
    Hybrid,
    /// cgroup v2 only, at `/sys/fs/cgroup`.
    Unified,
}

/// Where the container's cgroup goes, as the config and the command line say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupSpec {
    /// `linux.cgroupsPath` as given; may be empty.
    pub path: String,
    /// `--systemd-cgroup`: `path` is `slice:prefix:name`.
    pub systemd: bool,
    pub container_id: String,
}

/// Freeze (pause) or thaw (resume) every process of the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezerState {
    Frozen,
    Thawed,
}

/// A v1 hierarchy and the container's cgroup in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HierarchyState {
    /// Controllers of the hierarchy ("cpu", "cpuacct", "name=systemd").
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted on the host.
    pub mount_point: PathBuf,
    /// The container's cgroup directory.
    pub path: PathBuf,
}

/// The container's cgroup in a cgroup2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedState {
    pub mount_point: PathBuf,
    pub path: PathBuf,
}

/// The resolved cgroup paths of one container, stored in the container's state so that later
/// commands manage the same cgroups ([`from_state`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    pub mode: CgroupMode,
    /// v1 hierarchies (legacy, hybrid); empty on unified hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hierarchies: Vec<HierarchyState>,
    /// The cgroup2 cgroup: the only one on unified hosts, joined only on hybrid hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<UnifiedState>,
}

/// What to mount at the container's `/sys/fs/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupMounts {
    /// One bind per v1 hierarchy: (directory name under /sys/fs/cgroup, e.g. "cpu,cpuacct" or
    /// "systemd"; host path of the container's cgroup in it). On hybrid hosts `unified` is the
    /// container's cgroup2 directory, for /sys/fs/cgroup/unified.
    V1 {
        hierarchies: Vec<(String, PathBuf)>,
        unified: Option<PathBuf>,
    },
    /// The container's cgroup2 directory.
    V2(PathBuf),
}

/// A container's cgroups.
///
/// Lifecycle: [`manager`] resolves the paths (nothing is created) → [`CgroupManager::apply`]
/// creates the cgroups and moves the container's init in → [`CgroupManager::set`] writes the
/// limits (again on `update`) → [`CgroupManager::state`] is saved with the container; later
/// commands rebuild the manager with [`from_state`] to freeze/thaw, list pids, read stats and
/// OOM kills → [`CgroupManager::destroy`] once no process is left (idempotent).
pub trait CgroupManager: fmt::Debug {
    /// Create the cgroups (parents included) and move `pid` in. A pid of -1 only creates.
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    /// Write the limits in `resources`: unset fields are left alone, except devices: the
    /// config's device rules followed by the default ones (`devices::default_device_rules`)
    /// are always applied (from deny-all, as runc), so `update` must pass the container's
    /// full resources.
    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// As [`CgroupManager::set`] but leaving the device rules as they are, for `update`:
    /// runc's `update` cannot change them and skips them (`SkipDevices`), so rules
    /// another component added on top (a GPU plugin's) survive.
    fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// Freeze or thaw every process, waiting (bounded) until the kernel reports it done.
    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError>;
    /// Whether the container's cgroup is frozen (thawed when it has no freezer or is gone).
    fn freezer_state(&self) -> Result<FreezerState, CgroupError>;
    /// Every pid in the container's cgroup and its child cgroups, sorted.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Usage statistics, as runc's `events --stats`.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// How many processes the kernel OOM-killed in the cgroup.
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;
    /// Remove the cgroups bottom-up; fine when already gone.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// The resolved paths, to save with the container.
    fn state(&self) -> CgroupState;
    /// What to mount at the container's `/sys/fs/cgroup`.
    fn mounts(&self) -> CgroupMounts;
}

/// The v1 controllers the v1 manager handles, in runc's order (applied and set in this order).
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "name=systemd",
    "misc",
];

/// The manager for a container on this host: paths resolved, nothing created yet.
pub fn manager(spec: &CgroupSpec) -> Result<Box<dyn CgroupManager>, CgroupError> {
    manager_for_host(spec, &HostCgroups::detect()?)
}

/// [`manager`] for a given host layout (for instance the unified hierarchy of a hybrid host
/// used on its own).
pub fn manager_for_host(
    spec: &CgroupSpec,
    host: &HostCgroups,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    from_state(&resolve(spec, host)?)
}

/// Resolve the container's cgroup paths on `host` (see `path.rs` for the rules).
pub(crate) fn resolve(spec: &CgroupSpec, host: &HostCgroups) -> Result<CgroupState, CgroupError> {
    let inner = path::inner_path(spec)?;
    let unified_mount = || {
        host.unified_mount
            .clone()
            .ok_or_else(|| CgroupError::InvalidState {
                reason: "no cgroup2 mount on this host".to_owned(),
            })
    };
    match host.mode {
        CgroupMode::Unified => {
            let mount_point = unified_mount()?;
            let path = inner.in_v2(&mount_point, host.own_unified());
            Ok(CgroupState {
                mode: CgroupMode::Unified,
                hierarchies: Vec::new(),
                unified: Some(UnifiedState { mount_point, path }),
            })
        }
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            let mut hierarchies = Vec::new();
            for hierarchy in &host.hierarchies {
                let Some(controller) = hierarchy
                    .controllers
                    .iter()
                    .find(|c| V1_CONTROLLERS.contains(&c.as_str()))
                else {
                    continue;
                };
                let own = host.own_dir(controller);
                hierarchies.push(HierarchyState {
                    controllers: hierarchy.controllers.clone(),
                    mount_point: hierarchy.mount_point.clone(),
                    path: inner.in_v1(&hierarchy.mount_point, own.as_deref()),
                });
            }
            // The devices controller is a hard requirement for the container's security.
            if !hierarchies
                .iter()
                .any(|h| h.controllers.iter().any(|c| c == "devices"))
            {
                return Err(CgroupError::ControllerNotMounted {
                    controller: "devices".to_owned(),
                    what: "device rules (always: the devices controller is required)".to_owned(),
                });
            }
            let unified = match host.mode {
                CgroupMode::Hybrid => {
                    let mount_point = unified_mount()?;
                    let path = inner.in_hybrid_unified(&mount_point);
                    Some(UnifiedState { mount_point, path })
                }
                _ => None,
            };
            Ok(CgroupState {
                mode: host.mode,
                hierarchies,
                unified,
            })
        }
    }
}

/// The manager for cgroups resolved earlier (possibly by another process).
pub fn from_state(state: &CgroupState) -> Result<Box<dyn CgroupManager>, CgroupError> {
    from_state_with(state, Arc::new(KernelFs))
}

fn check_dir(mount_point: &Path, path: &Path) -> Result<(), CgroupError> {
    let clean = |p: &Path| {
        p.is_absolute()
            && p.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            })
    };
    if !clean(mount_point) || !clean(path) || path == mount_point || !path.starts_with(mount_point)
    {
        return Err(CgroupError::InvalidState {
            reason: format!(
                "cgroup {} is not a clean absolute path below its mount {}",
                path.display(),
                mount_point.display()
            ),
        });
    }
    Ok(())
}

pub(crate) fn from_state_with(
    state: &CgroupState,
    fs: Arc<dyn CgroupFs>,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    for h in &state.hierarchies {
        check_dir(&h.mount_point, &h.path)?;
    }
    if let Some(u) = &state.unified {
        check_dir(&u.mount_point, &u.path)?;
    }
    match state.mode {
        CgroupMode::Unified => {
            let Some(unified) = &state.unified else {
                return Err(CgroupError::InvalidState {
                    reason: "a unified cgroup state without a cgroup2 path".to_owned(),
                });
            };
            if !state.hierarchies.is_empty() {
                return Err(CgroupError::InvalidState {
                    reason: "a unified cgroup state with v1 hierarchies".to_owned(),
                });
            }
            Ok(Box::new(v2::V2Manager::new(fs, unified.clone())))
        }
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            if state.hierarchies.is_empty() {
                return Err(CgroupError::InvalidState {
                    reason: "a v1 cgroup state without hierarchies".to_owned(),
                });
            }
            if state.mode == CgroupMode::Legacy && state.unified.is_some() {
                return Err(CgroupError::InvalidState {
                    reason: "a legacy cgroup state with a cgroup2 path".to_owned(),
                });
            }
            Ok(Box::new(v1::V1Manager::new(fs, state.clone())))
        }
    }
}

/// The settings of `resources` that no cgroup gets (the runtime goes on without them), one
/// line each, for `create` to report once: kernel memory limits (`memory.kernel`: deprecated
/// since Linux 5.16, accepted and ignored by later kernels, never set, as runc) and, on
/// cgroup v2 (`mounts`), the TCP memory limit, which v2 does not have (memory.max covers
/// socket buffers).
pub fn resource_warnings(
    resources: &berth_runtime_spec::LinuxResources,
    mounts: &CgroupMounts,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = &resources.memory else {
        return out;
    };
    if let Some(k) = m.kernel.filter(|k| *k != 0) {
        out.push(format!(
            "linux.resources.memory.kernel ({k}) is ignored: kernel memory limits are deprecated \
             since Linux 5.16 and not enforced by later kernels; use memory.limit"
        ));
    }
    if let (Some(t), CgroupMounts::V2(_)) = (m.kernel_tcp.filter(|t| *t != 0), mounts) {
        out.push(format!(
            "linux.resources.memory.kernelTCP ({t}) is ignored: cgroup v2 has no TCP memory \
             limit of its own (memory.max counts socket buffers)"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_memory_is_reported_once_and_kernel_tcp_only_on_v2() {
        let mut r: berth_runtime_spec::LinuxResources = serde_json::from_value(
            serde_json::json!({"memory": {"limit": 1048576, "kernel": 4096, "kernelTCP": 8192}}),
        )
        .unwrap();
        let v1 = CgroupMounts::V1 {
            hierarchies: Vec::new(),
            unified: None,
        };
        let v2 = CgroupMounts::V2(PathBuf::from("/sys/fs/cgroup/c"));
        let w = resource_warnings(&r, &v1);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("memory.kernel (4096) is ignored"), "{w:?}");
        let w = resource_warnings(&r, &v2);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[1].contains("memory.kernelTCP (8192) is ignored"), "{w:?}");
        // unset or 0: nothing to say
        r.memory.as_mut().unwrap().kernel = Some(0);
        r.memory.as_mut().unwrap().kernel_tcp = None;
        assert!(resource_warnings(&r, &v2).is_empty());
        assert!(resource_warnings(&Default::default(), &v1).is_empty());
    }

    const HYBRID_MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "9:name=systemd:/user.slice/s.scope\n4:memory:/mem/own\n5:devices:/\n1:cpu,cpuacct:/\n0::/user.slice/s.scope\n";

    fn spec(path: &str, systemd: bool) -> CgroupSpec {
        CgroupSpec {
            path: path.to_owned(),
            systemd,
            container_id: "c1".to_owned(),
        }
    }

    fn paths(state: &CgroupState) -> Vec<String> {
        let mut out: Vec<String> = state
            .hierarchies
            .iter()
            .map(|h| h.path.display().to_string())
            .collect();
        out.extend(
            state
                .unified
                .iter()
                .map(|u| format!("unified={}", u.path.display())),
        );
        out
    }

    #[test]
    fn hybrid_relative_path_goes_below_each_own_cgroup_and_the_unified_root() {
        let host =
            HostCgroups::from_parts(CgroupMode::Hybrid, HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        let state = resolve(&spec("", false), &host).unwrap();
        assert_eq!(
            paths(&state),
            [
                "/sys/fs/cgroup/cpu,cpuacct/c1",
                "/sys/fs/cgroup/memory/mem/own/c1",
                "/sys/fs/cgroup/devices/c1",
                "/sys/fs/cgroup/systemd/user.slice/s.scope/c1",
                "unified=/sys/fs/cgroup/unified/c1",
            ]
        );
        let state = resolve(&spec("/k8s/pod", false), &host).unwrap();
        assert_eq!(paths(&state)[1], "/sys/fs/cgroup/memory/k8s/pod");
        let state = resolve(&spec("system.slice:docker:abc", true), &host).unwrap();
        assert_eq!(
            paths(&state)[1],
            "/sys/fs/cgroup/memory/system.slice/docker-abc.scope"
        );
        assert_eq!(
            paths(&state)[4],
            "unified=/sys/fs/cgroup/unified/system.slice/docker-abc.scope"
        );
    }

    #[test]
    fn unified_relative_path_goes_below_the_parent_of_the_own_cgroup() {
        let mountinfo = "24 18 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let host =
            HostCgroups::from_parts(CgroupMode::Unified, mountinfo, "0::/user.slice/s.scope\n")
                .unwrap();
        let state = resolve(&spec("ctr", false), &host).unwrap();
        assert_eq!(paths(&state), ["unified=/sys/fs/cgroup/user.slice/ctr"]);
        let state = resolve(&spec("", true), &host).unwrap();
        assert_eq!(
            paths(&state),
            ["unified=/sys/fs/cgroup/system.slice/runc-c1.scope"]
        );
    }

    #[test]
    fn a_v1_host_without_the_devices_controller_is_refused() {
        let mountinfo = "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let host = HostCgroups::from_parts(CgroupMode::Legacy, mountinfo, "4:memory:/\n").unwrap();
        let err = resolve(&spec("x", false), &host).unwrap_err();
        assert!(
            matches!(err, CgroupError::ControllerNotMounted { ref controller, .. } if controller == "devices"),
            "{err}"
        );
    }

    #[test]
    fn states_that_could_touch_a_hierarchy_root_or_escape_it_are_refused() {
        let bad = |mount: &str, path: &str| CgroupState {
            mode: CgroupMode::Unified,
            hierarchies: Vec::new(),
            unified: Some(UnifiedState {
                mount_point: mount.into(),
                path: path.into(),
            }),
        };
        for (mount, path) in [
            ("/sys/fs/cgroup", "/sys/fs/cgroup"),
            ("/sys/fs/cgroup", "/sys/fs/cgroup/../etc"),
            ("/sys/fs/cgroup", "/tmp/x"),
            ("/sys/fs/cgroup", "relative"),
        ] {
            assert!(
                matches!(
                    from_state(&bad(mount, path)),
                    Err(CgroupError::InvalidState { .. })
                ),
                "{path}"
            );
        }
        let mut legacy = bad("/sys/fs/cgroup", "/sys/fs/cgroup/x");
        legacy.mode = CgroupMode::Legacy;
        assert!(
            from_state(&legacy).is_err(),
            "a legacy state needs hierarchies"
        );
        assert!(from_state(&bad("/sys/fs/cgroup", "/sys/fs/cgroup/x")).is_ok());
    }

    #[test]
    fn state_json_is_stable() {
        let state = CgroupState {
            mode: CgroupMode::Hybrid,
            hierarchies: vec![HierarchyState {
                controllers: vec!["cpu".into(), "cpuacct".into()],
                mount_point: "/sys/fs/cgroup/cpu,cpuacct".into(),
                path: "/sys/fs/cgroup/cpu,cpuacct/c".into(),
            }],
            unified: Some(UnifiedState {
                mount_point: "/sys/fs/cgroup/unified".into(),
                path: "/sys/fs/cgroup/unified/c".into(),
            }),
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"mode":"hybrid","hierarchies":[{"controllers":["cpu","cpuacct"],"mount_point":"/sys/fs/cgroup/cpu,cpuacct","path":"/sys/fs/cgroup/cpu,cpuacct/c"}],"unified":{"mount_point":"/sys/fs/cgroup/unified","path":"/sys/fs/cgroup/unified/c"}}"#
        );
    }
}
