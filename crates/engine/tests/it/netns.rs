//! Pinned network namespaces (`berth_engine::netns`): a new namespace with `lo` up, kept by
//! its file, gone with it.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use berth_engine::netns;
use berth_test_support::{requires_root, requires_tool};

fn in_ns(path: &std::path::Path, cmd: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(cmd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn mounted(path: &std::path::Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == path.to_str())
}

#[test]
fn a_pinned_namespace_is_new_has_loopback_up_and_goes_away() {
    requires_root!();
    requires_tool!("nsenter", "ip");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netns/c1");
    netns::create(&path).unwrap();
    assert!(mounted(&path));
    // a namespace of its own: another inode than this process's
    let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), own);
    let links = in_ns(&path, &["ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    let addrs = in_ns(&path, &["ip", "-o", "addr", "show", "lo"]);
    assert!(addrs.contains("127.0.0.1/8"), "{addrs}");
    // this thread's (and the process's) namespace did not move
    assert_eq!(
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        own
    );

    netns::remove(&path).unwrap();
    assert!(!mounted(&path));
    assert!(!path.exists());
    // removing again is fine
    netns::remove(&path).unwrap();
}

#[test]
fn creating_over_an_existing_path_fails_and_keeps_it() {
    requires_root!();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taken");
    berth_test_support::write_file(&path, b"mine");
    let err = netns::create(&path).unwrap_err();
    assert!(err.to_string().contains("network namespace file"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"mine");
    assert!(!mounted(&path));
}
