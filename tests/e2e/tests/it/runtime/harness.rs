//! The container test harness tested: the probe is static and refuses bad steps before
//! doing anything, and a cgroup left behind is found, removed and reported.

use std::process::Command;
use std::time::Duration;

use berth_test_support::{
    cgroup_dirs, is_static_elf, probe_bin, remove_leftover_cgroups, requires_root, run_with_timeout,
};

#[test]
fn probe_binary_is_static() {
    let probe = probe_bin();
    assert_eq!(is_static_elf(&probe), Ok(true), "{}", probe.display());
}

#[test]
fn probe_refuses_a_bad_step_before_running_any() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("made-by-probe");
    let create = format!("create:{}", target.display());
    for bad in ["no-such-step", "fork:lots", "identity:extra", "syscall"] {
        let out = run_with_timeout(
            Command::new(probe_bin()).args([create.as_str(), bad]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert!(out.stdout.is_empty(), "{bad}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(bad),
            "{bad}: the error names the step: {out:?}"
        );
        assert!(!target.exists(), "{bad}: an earlier step ran");
    }
    let out = run_with_timeout(&mut Command::new(probe_bin()), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "no steps: {out:?}");
}

#[test]
fn leftover_cgroups_are_found_removed_and_reported() {
    requires_root!();
    let path = format!("/berth-probe-harness-{}", std::process::id());
    let dirs = cgroup_dirs(&path);
    assert!(!dirs.is_empty(), "no cgroup hierarchy is mounted");
    // the pids hierarchy on a v1 host, the one hierarchy on a v2 host
    let pids = dirs
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .unwrap_or(&dirs[0])
        .clone();
    std::fs::create_dir_all(pids.join("nested")).unwrap();
    let left = remove_leftover_cgroups(&path, Duration::from_millis(100));
    assert_eq!(left, vec![pids.clone()]);
    assert!(!pids.exists(), "the leftover was removed");
    assert!(remove_leftover_cgroups(&path, Duration::from_millis(100)).is_empty());
}

/// Whether `pid` is gone or a zombie (dead, waiting for its parent to reap it).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the last ')'
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

super::runtime_test! {
    /// A test that panics while its container runs still gets it killed and deleted, and
    /// its cgroups removed, by the guard.
    fn a_panicking_test_still_kills_and_deletes_its_container(rt) {
        use berth_test_support::{Bundle, ContainerGuard, wait_until};
        let mut b = Bundle::new();
        b.probe(&["wait-signal"]);
        let mut seen = None;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let c = ContainerGuard::create(rt, &b);
            c.start();
            assert!(c.wait_for_status("running", Duration::from_secs(30)));
            seen = Some((c.pid(), c.cgroup_dirs()));
            panic!("a test failing while its container runs");
        }));
        assert!(r.is_err());
        let (pid, dirs) = seen.expect("the container ran");
        assert!(!dirs.is_empty() && dirs.iter().all(|d| !d.exists()), "{dirs:?}");
        assert!(wait_until(Duration::from_secs(10), || dead(pid)), "pid {pid} still runs");
        assert!(!rt.state(b.id()).success(), "the container is deleted");
    }
}
