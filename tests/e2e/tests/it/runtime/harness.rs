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
