//! The one conformance suite every [`CgroupManager`] implementation runs (v1 and v2, each on
//! its fake cgroupfs): the contract of the trait, checked only through the trait and through
//! what the kernel would show (pids, device decisions), never through version-specific files.
//!
//! `suite!(factory)` expands to one `#[test]` per case, each on a fresh fixture.

use berth_runtime_spec::{LinuxMemory, LinuxPids, LinuxResources};

use super::devices::{Access, DevType};
use super::fake::Fixture;
use super::{CgroupError, CgroupMounts, FreezerState};

macro_rules! suite {
    ($factory:expr) => {
        $crate::conformance::suite!(@cases $factory;
            apply_creates_the_cgroups_and_moves_the_pid_in,
            apply_minus_one_only_creates,
            apply_twice_is_fine,
            pids_include_child_cgroups,
            set_limits_show_in_stats,
            kernel_memory_is_never_set_and_kernel_tcp_where_the_version_has_it,
            set_with_nothing_leaves_the_cgroup_alone_but_devices,
            device_policy_is_deny_all_plus_defaults,
            update_leaves_the_device_rules_alone,
            freeze_and_thaw,
            oom_kill_count_reads_the_kernel_counter,
            stats_of_a_fresh_cgroup_serialise,
            destroy_removes_everything_and_is_idempotent,
            destroy_refuses_a_cgroup_with_processes,
            state_round_trips_through_json,
            mounts_point_at_the_container_cgroups,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$factory());
            }
        )*
    };
}
pub(crate) use suite;

pub(crate) fn apply_creates_the_cgroups_and_moves_the_pid_in(f: &Fixture) {
    let m = f.manager();
    for dir in f.dirs() {
        assert!(!dir.exists(), "{} exists before apply", dir.display());
    }
    m.apply(4242).unwrap();
    for dir in f.dirs() {
        assert!(dir.is_dir(), "{} was not created", dir.display());
        assert_eq!(
            f.tree.read_abs(&dir.join("cgroup.procs")),
            "4242\n",
            "{}",
            dir.display()
        );
    }
    assert_eq!(m.pids().unwrap(), [4242]);
}

pub(crate) fn apply_minus_one_only_creates(f: &Fixture) {
    let m = f.manager();
    m.apply(-1).unwrap();
    for dir in f.dirs() {
        assert!(dir.is_dir());
    }
    assert!(m.pids().unwrap().is_empty());
}

pub(crate) fn apply_twice_is_fine(f: &Fixture) {
    let m = f.manager();
    m.apply(10).unwrap();
    m.apply(11).unwrap();
    assert_eq!(m.pids().unwrap(), [10, 11]);
}

pub(crate) fn pids_include_child_cgroups(f: &Fixture) {
    let m = f.manager();
    m.apply(20).unwrap();
    f.add_child_with_pid("sub", 21);
    assert_eq!(m.pids().unwrap(), [20, 21]);
}

pub(crate) fn set_limits_show_in_stats(f: &Fixture) {
    let m = f.manager();
    m.apply(30).unwrap();
    let mut r = LinuxResources::default();
    let pids = LinuxPids { limit: 42 };
    r.pids = Some(pids);
    let memory = LinuxMemory {
        limit: Some(64 << 20),
        ..Default::default()
    };
    r.memory = Some(memory);
    m.set(&r).unwrap();
    let stats = m.stats().unwrap();
    assert_eq!(stats.pids.limit, 42);
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    // an update changes them
    let pids = LinuxPids { limit: -1 };
    r.pids = Some(pids);
    m.set(&r).unwrap();
    assert_eq!(
        m.stats().unwrap().pids.limit,
        0,
        "unlimited pids read back as 0 (runc)"
    );
}

/// `memory.kernel` is never written (create reports it instead); `memory.kernelTCP` is the
/// TCP limit of v1 (shown in the stats, as crun sets it) and nothing on v2, which has none.
pub(crate) fn kernel_memory_is_never_set_and_kernel_tcp_where_the_version_has_it(f: &Fixture) {
    let m = f.manager();
    m.apply(32).unwrap();
    f.tree.clear_writes();
    let r = LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(64 << 20),
            kernel: Some(32 << 20),
            kernel_tcp: Some(4 << 20),
            ..Default::default()
        }),
        ..Default::default()
    };
    m.update(&r).unwrap();
    let writes = f.tree.writes();
    assert!(
        writes
            .iter()
            .all(|(p, _)| !p.ends_with("memory.kmem.limit_in_bytes")),
        "kernel memory was written: {writes:?}"
    );
    let stats = m.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    let want = match m.mounts() {
        CgroupMounts::V1 { .. } => 4 << 20,
        CgroupMounts::V2(_) => 0,
    };
    assert_eq!(stats.memory.kernel_tcp.limit, want, "{writes:?}");
}

pub(crate) fn set_with_nothing_leaves_the_cgroup_alone_but_devices(f: &Fixture) {
    let m = f.manager();
    m.apply(31).unwrap();
    f.tree.clear_writes();
    m.set(&LinuxResources::default()).unwrap();
    let writes = f.tree.writes();
    assert!(
        writes.iter().all(|(p, _)| p.contains("devices.")),
        "only device rules may be written for empty resources: {writes:?}"
    );
}

pub(crate) fn device_policy_is_deny_all_plus_defaults(f: &Fixture) {
    let m = f.manager();
    m.apply(40).unwrap();
    m.set(&LinuxResources::default()).unwrap();
    let rw = Access::parse("rw").unwrap();
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, 4),
        (10, 200),
    ] {
        assert!(
            f.device_allowed(DevType::Char, major, minor, rw),
            "c {major}:{minor} should be allowed"
        );
    }
    assert!(
        !f.device_allowed(DevType::Block, 8, 0, Access::READ),
        "a disk must not be readable"
    );
    assert!(
        !f.device_allowed(DevType::Char, 1, 1, Access::READ),
        "/dev/mem must not be readable"
    );
    assert!(
        !f.device_allowed(DevType::Char, 4, 1, rw),
        "a host tty must not be usable"
    );
    assert!(
        f.device_allowed(DevType::Block, 8, 0, Access::MKNOD),
        "mknod is allowed, as runc"
    );
}

/// `update` (runc's SkipDevices): the limits it is given and nothing of the device rules,
/// neither rule files nor a new device program.
pub(crate) fn update_leaves_the_device_rules_alone(f: &Fixture) {
    let m = f.manager();
    m.apply(41).unwrap();
    m.set(&LinuxResources::default()).unwrap();
    let programs = f.tree.programs().len();
    f.tree.clear_writes();
    let r = LinuxResources {
        pids: Some(LinuxPids { limit: 7 }),
        ..Default::default()
    };
    m.update(&r).unwrap();
    let writes = f.tree.writes();
    assert!(
        writes.iter().all(|(p, _)| !p.contains("devices.")),
        "update wrote device rules: {writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|(p, v)| p.ends_with("pids.max") && v == "7"),
        "update did not write the pids limit: {writes:?}"
    );
    assert_eq!(
        f.tree.programs().len(),
        programs,
        "update attached a device program"
    );
}

pub(crate) fn freeze_and_thaw(f: &Fixture) {
    let m = f.manager();
    m.apply(50).unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    m.freeze(FreezerState::Frozen).unwrap();
    m.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
}

pub(crate) fn oom_kill_count_reads_the_kernel_counter(f: &Fixture) {
    let m = f.manager();
    m.apply(60).unwrap();
    assert_eq!(m.oom_kill_count().unwrap(), 0);
    f.set_oom_kills(3);
    assert_eq!(m.oom_kill_count().unwrap(), 3);
}

pub(crate) fn stats_of_a_fresh_cgroup_serialise(f: &Fixture) {
    let m = f.manager();
    m.apply(70).unwrap();
    let stats = m.stats().unwrap();
    let json = serde_json::to_value(&stats).unwrap();
    for key in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
}

pub(crate) fn destroy_removes_everything_and_is_idempotent(f: &Fixture) {
    let m = f.manager();
    m.apply(80).unwrap();
    f.add_child_with_pid("sub", 81);
    f.all_processes_exit();
    m.destroy().unwrap();
    for dir in f.dirs() {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    m.destroy().unwrap();
    // never applied at all: fine too
    f.manager().destroy().unwrap();
}

pub(crate) fn destroy_refuses_a_cgroup_with_processes(f: &Fixture) {
    let m = f.manager();
    m.apply(90).unwrap();
    let err = m.destroy().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    assert!(
        matches!(
            err,
            CgroupError::Destroy { .. } | CgroupError::RemoveDir { .. }
        ),
        "{err}"
    );
    f.all_processes_exit();
    m.destroy().unwrap();
}

pub(crate) fn state_round_trips_through_json(f: &Fixture) {
    let m = f.manager();
    m.apply(100).unwrap();
    let json = serde_json::to_string(&m.state()).unwrap();
    let state: super::CgroupState = serde_json::from_str(&json).unwrap();
    assert_eq!(state, f.state);
    let again = super::from_state_with(&state, f.tree.fs.clone()).unwrap();
    assert_eq!(again.pids().unwrap(), [100]);
    assert_eq!(again.mounts(), m.mounts());
}

pub(crate) fn mounts_point_at_the_container_cgroups(f: &Fixture) {
    let m = f.manager();
    match m.mounts() {
        CgroupMounts::V1 {
            hierarchies,
            unified,
        } => {
            assert_eq!(hierarchies.len(), f.state.hierarchies.len());
            for ((name, path), h) in hierarchies.iter().zip(&f.state.hierarchies) {
                assert_eq!(path, &h.path);
                assert_eq!(
                    Some(name.as_str()),
                    h.mount_point.file_name().and_then(|n| n.to_str())
                );
            }
            assert_eq!(unified, f.state.unified.as_ref().map(|u| u.path.clone()));
        }
        CgroupMounts::V2(path) => {
            assert_eq!(Some(path), f.state.unified.as_ref().map(|u| u.path.clone()))
        }
    }
}
