//! Garbage collection: what images and containers reference stays, the rest goes.

use std::collections::BTreeSet;

use berth_image::snapshot::{Driver, LABEL_GC_ROOT, LABEL_REF_PREFIX, Opts, Snapshotter, unmount};

use super::helpers::{Scratch, layer, require_root, write};

fn keys(s: &dyn Snapshotter) -> BTreeSet<String> {
    s.list().unwrap().into_iter().map(|i| i.key).collect()
}

#[test]
fn gc_removes_unreferenced_snapshots_and_keeps_referenced_mounted_and_leased_ones() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    // image A: a0 ← a1 (referenced by an image label on its top layer)
    layer(&s, "a0", None, |d| write(d, "f", "a0"));
    layer(&s, "a1", Some("a0"), |d| write(d, "g", "a1"));
    let image_ref = format!("{LABEL_REF_PREFIX}image/docker.io/library/a:latest");
    s.update_labels("a1", &[(image_ref.clone(), Some("1".to_string()))].into())
        .unwrap();
    // image B: b0 ← b1, no longer referenced (rmi'd): both go.
    layer(&s, "b0", None, |d| write(d, "f", &"b".repeat(100_000)));
    layer(&s, "b1", Some("b0"), |d| write(d, "g", "b1"));
    // a container on a1, referenced by its record; an orphaned container snapshot on b1…
    s.prepare(
        "ctr-live",
        Some("a1"),
        &Opts::default().label(format!("{LABEL_REF_PREFIX}container/live"), "1"),
    )
    .unwrap();
    // …and an unreferenced one that is mounted (in use): it stays, so does its chain c0.
    layer(&s, "c0", None, |d| write(d, "f", "c0"));
    let m = s
        .prepare("ctr-mounted", Some("c0"), &Opts::default())
        .unwrap();
    let mounted = scratch.mount(&m, "mounted");
    // A pinned root and a leased snapshot (an unpack in progress) stay.
    layer(&s, "pinned", None, |_| {});
    s.update_labels(
        "pinned",
        &[(LABEL_GC_ROOT.to_string(), Some("x".to_string()))].into(),
    )
    .unwrap();
    let lease = s.lease().unwrap();
    s.prepare("extract-now", Some("b1"), &Opts::with_lease(&lease))
        .unwrap();
    // Orphans: an active snapshot with no reference; a view of b1.
    s.prepare("orphan", None, &Opts::default()).unwrap();
    s.view("orphan-view", Some("a0"), &Opts::default()).unwrap();

    let b0_dir = s.dir_of("b0").unwrap();
    let report = s.gc().unwrap();
    let removed: BTreeSet<String> = report.removed.iter().cloned().collect();
    assert_eq!(removed, ["orphan", "orphan-view"].map(String::from).into());
    assert_eq!(
        keys(&s),
        [
            "a0",
            "a1",
            "b0",
            "b1",
            "c0",
            "ctr-live",
            "ctr-mounted",
            "extract-now",
            "pinned"
        ]
        .map(String::from)
        .into()
    );
    // The unpack ends without a reference (its process drops the lease): b0, b1 and it go.
    let lease_name = lease.name().to_owned();
    drop(lease);
    // A dead lease cannot hold a new snapshot (it would be removed at the next open).
    let dead = Opts {
        lease: Some(lease_name),
        ..Opts::default()
    };
    let err = s.prepare("late", Some("a1"), &dead).unwrap_err();
    assert!(err.to_string().contains("not held"), "{err}");
    let report = s.gc().unwrap();
    assert_eq!(
        report.removed,
        vec!["extract-now", "b1", "b0"],
        "leaves first"
    );
    assert!(report.reclaimed >= 100_000, "{report:?}");
    assert!(!b0_dir.exists());
    // Unmounted and unreferenced, the container snapshot and its chain go too.
    unmount(&mounted).unwrap();
    let report = s.gc().unwrap();
    assert_eq!(report.removed, vec!["ctr-mounted", "c0"]);
    // Removing the container's reference frees it; the image keeps its chain.
    s.update_labels(
        "ctr-live",
        &[(format!("{LABEL_REF_PREFIX}container/live"), None)].into(),
    )
    .unwrap();
    assert_eq!(s.gc().unwrap().removed, vec!["ctr-live"]);
    assert_eq!(keys(&s), ["a0", "a1", "pinned"].map(String::from).into());
    s.update_labels("a1", &[(image_ref, None)].into()).unwrap();
    assert_eq!(s.gc().unwrap().removed, vec!["a1", "a0"]);
    assert_eq!(keys(&s), ["pinned"].map(String::from).into());
    // Only recorded directories remain.
    assert_eq!(
        std::fs::read_dir(s.root().join("snapshots"))
            .unwrap()
            .count(),
        1
    );
}
