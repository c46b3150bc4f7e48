//! One conformance suite, run by each driver (containerd's `snapshots/testsuite`).

use std::collections::BTreeMap;
use std::fs;

use berth_image::snapshot::{
    Driver, ErrorKind, Kind, LABEL_GC_ROOT, Opts, Snapshotter, check_overlay, unmount,
};

use super::helpers::{Scratch, layer, require_root, write};

fn lifecycle(driver: Driver) {
    let scratch = Scratch::new();
    let s = scratch.store(driver);
    // prepare → write through the mount → commit → the committed data is seen by a child.
    let m = s
        .prepare("a", None, &Opts::default().label("x", "1"))
        .unwrap();
    let root = scratch.mount(&m, "a");
    write(&root, "hello", "world");
    unmount(&root).unwrap();
    let info = s.stat("a").unwrap();
    assert_eq!(
        (info.kind, info.labels.get("x").map(String::as_str)),
        (Kind::Active, Some("1"))
    );
    let u = s.usage("a").unwrap();
    assert!(u.inodes >= 1 && u.size > 0, "{u:?}");
    s.commit("A", "a", &Opts::default().label(LABEL_GC_ROOT, "t"))
        .unwrap();
    assert_eq!(s.stat("a").unwrap_err().kind(), ErrorKind::NotFound);
    let info = s.stat("A").unwrap();
    assert_eq!(info.kind, Kind::Committed);
    assert!(info.labels.contains_key(LABEL_GC_ROOT) && !info.labels.contains_key("x"));
    assert_eq!(s.usage("A").unwrap(), u);

    let m = s.prepare("b", Some("A"), &Opts::default()).unwrap();
    let root = scratch.mount(&m, "b");
    assert_eq!(fs::read_to_string(root.join("hello")).unwrap(), "world");
    unmount(&root).unwrap();
    assert_eq!(s.mounts("b").unwrap(), m);

    // Labels: set and delete.
    let mut changes = BTreeMap::new();
    changes.insert("k".to_string(), Some("v".to_string()));
    changes.insert(LABEL_GC_ROOT.to_string(), None);
    let info = s.update_labels("A", &changes).unwrap();
    assert_eq!(info.labels.get("k").map(String::as_str), Some("v"));
    assert!(!info.labels.contains_key(LABEL_GC_ROOT));

    // Errors a caller decides on, by kind.
    assert_eq!(
        s.prepare("", None, &Opts::default()).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.prepare("c", Some("nope"), &Opts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.prepare("c", Some("b"), &Opts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.commit("A", "b", &Opts::default()).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(s.remove("A").unwrap_err().kind(), ErrorKind::Conflict);
    let mut keys: Vec<String> = s.list().unwrap().into_iter().map(|i| i.key).collect();
    keys.sort();
    assert_eq!(keys, vec!["A", "b"]);

    // Reopening sees the same snapshots; another driver refuses the root.
    let again = berth_image::snapshot::SnapshotStore::open(s.root(), driver).unwrap();
    assert_eq!(again.list().unwrap().len(), 2);
    let other = match driver {
        Driver::Overlay => Driver::Native,
        Driver::Native => Driver::Overlay,
    };
    let err = berth_image::snapshot::SnapshotStore::open(s.root(), other).unwrap_err();
    assert!(err.to_string().contains(driver.name()), "{err}");
    s.remove("b").unwrap();
    s.remove("A").unwrap();
    assert!(s.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(s.root().join("snapshots")).unwrap().count(), 0);
}

#[test]
fn overlay_lifecycle() {
    if require_root() {
        lifecycle(Driver::Overlay);
    }
}

#[test]
fn native_lifecycle() {
    if require_root() {
        lifecycle(Driver::Native);
    }
}

#[test]
fn overlay_is_detected_on_this_kernel_and_refused_where_it_cannot_work() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    check_overlay(scratch.path()).unwrap();
    assert_eq!(Driver::detect(scratch.path()), Driver::Overlay);
    // overlayfs cannot use an overlayfs upper: a root inside an overlay mount is refused,
    // and detection picks native there.
    let s = scratch.store(Driver::Overlay);
    layer(&s, "l", None, |d| write(d, "f", "1"));
    let m = s.prepare("ctr", Some("l"), &Opts::default()).unwrap();
    let root = scratch.mount(&m, "ctr");
    let inner = root.join("inner");
    fs::create_dir(&inner).unwrap();
    let err = check_overlay(&inner).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(Driver::detect(&inner), Driver::Native);
    let err = berth_image::snapshot::SnapshotStore::open(inner.join("snaps"), Driver::Overlay)
        .unwrap_err();
    assert!(err.to_string().contains("native"), "{err}");
    let _ = fs::remove_dir_all(&inner);
    unmount(&root).unwrap();
}

#[test]
fn roots_that_mount_options_cannot_carry_are_refused() {
    for bad in ["relative/root", "/tmp/a:b", "/tmp/a,b", "/tmp/a=b"] {
        let err = berth_image::snapshot::SnapshotStore::open(bad, Driver::Native).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
}
