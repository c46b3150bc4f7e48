//! Batches: `prepare_all` and `commit_all` record many snapshots in one metadata write, with
//! the same result as one by one, all or nothing, and a `kill -9` mid-batch leaves either
//! none or all of a batch recorded, with the debris removed at the next open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use berth_image::snapshot::{
    CommitOp, CrashPoint, Driver, Kind, LABEL_GC_ROOT, Opts, SnapshotStore, Snapshotter,
};

use super::helpers::{Scratch, require_root, tree, upper, write};
use super::process::{Helper, announce_and_hang, kill_at, role};

const N: usize = 8;

fn dir_names(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Batch `b`'s commits: `batch-b-j` stacked on `batch-b-(j-1)`, held by `opts`.
fn ops(b: usize, keys: &[String], opts: &Opts) -> Vec<CommitOp> {
    keys.iter()
        .enumerate()
        .map(|(j, key)| {
            let mut o = opts.clone();
            if j > 0 {
                o = o.onto(format!("batch-{b}-{}", j - 1));
            }
            CommitOp {
                name: format!("batch-{b}-{j}"),
                key: key.clone(),
                opts: o,
            }
        })
        .collect()
}

fn keys(b: usize) -> Vec<String> {
    (0..N).map(|j| format!("active-{b}-{j}")).collect()
}

/// Fill each prepared snapshot: a file naming its batch, a deletion of the one below's.
fn fill(b: usize, mounts: &[Vec<berth_image::snapshot::Mount>]) {
    for (j, m) in mounts.iter().enumerate() {
        let d = upper(m);
        for f in 0..10 {
            write(&d, &format!("d{j}/{f}"), &format!("{b}"));
        }
        if j > 0 {
            super::helpers::whiteout(&d, &format!("d{}/0", j - 1));
        }
    }
}

/// The helper: opens the store with a hook stopping at the named point, then works.
#[test]
#[ignore = "helper process for the batch crash tests"]
fn child_batch_worker() {
    let Some((role, root)) = role() else { return };
    let (point, op) = role.split_once(':').unwrap();
    let stop_at = match point {
        "created" => Some(CrashPoint::BatchCreated),
        "applied" => Some(CrashPoint::BatchApplied),
        _ => None,
    };
    let hook = super::process::hang_at(stop_at);
    let s = SnapshotStore::open_with_hook(&root, Driver::Overlay, hook).unwrap();
    let lease = s.lease().unwrap();
    let held = Opts::with_lease(&lease);
    let done = Opts::default().label(LABEL_GC_ROOT, "t");
    use std::io::Write;
    match op {
        "once" => {
            let m = s.prepare_all(&keys(0), &held).unwrap();
            fill(0, &m);
            s.commit_all(&ops(0, &keys(0), &done)).unwrap();
            panic!("the hook stops before this");
        }
        "loop" => {
            for b in 0.. {
                let m = s.prepare_all(&keys(b), &held).unwrap();
                println!("@@prepared {b}");
                std::io::stdout().flush().unwrap();
                fill(b, &m);
                println!("@@filled {b}");
                std::io::stdout().flush().unwrap();
                s.commit_all(&ops(b, &keys(b), &done)).unwrap();
                println!("@@done {b}");
                std::io::stdout().flush().unwrap();
            }
        }
        "watch" => {
            // Announce the first replacement of metadata.json during the batch commit (a
            // new inode: atomic writes rename a new file in), so the parent kills us right
            // after it, while commits made one by one would still be going on.
            use std::os::unix::fs::MetadataExt;
            let m = s.prepare_all(&keys(0), &held).unwrap();
            fill(0, &m);
            let meta = root.join("metadata.json");
            let before = std::fs::metadata(&meta).unwrap().ino();
            std::thread::spawn(move || {
                loop {
                    if std::fs::metadata(&meta).is_ok_and(|m| m.ino() != before) {
                        announce_and_hang("@@written");
                    }
                    std::thread::yield_now();
                }
            });
            s.commit_all(&ops(0, &keys(0), &done)).unwrap();
            announce_and_hang("@@committed");
        }
        other => panic!("unknown op {other}"),
    }
}

/// What `list` says, without the times.
fn records(s: &SnapshotStore) -> BTreeMap<String, (Kind, Option<String>, Vec<String>)> {
    s.list()
        .unwrap()
        .into_iter()
        .map(|i| (i.key, (i.kind, i.parent, i.labels.into_keys().collect())))
        .collect()
}

#[test]
fn batch_prepare_and_commit_record_the_same_as_one_by_one() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let batched = SnapshotStore::open(scratch.path().join("a"), Driver::Overlay).unwrap();
    let single = SnapshotStore::open(scratch.path().join("b"), Driver::Overlay).unwrap();
    let done = Opts::default().label(LABEL_GC_ROOT, "t");

    let m = batched.prepare_all(&keys(0), &Opts::default()).unwrap();
    assert_eq!(records(&batched).len(), N);
    fill(0, &m);
    let made = batched.commit_all(&ops(0, &keys(0), &done)).unwrap();
    assert_eq!(made, vec![true; N]);

    let mut m = Vec::new();
    for k in keys(0) {
        m.push(single.prepare(&k, None, &Opts::default()).unwrap());
    }
    fill(0, &m);
    for op in ops(0, &keys(0), &done) {
        single.commit(&op.name, &op.key, &op.opts).unwrap();
    }

    assert_eq!(records(&batched), records(&single));
    for j in 0..N {
        let key = format!("batch-0-{j}");
        assert_eq!(batched.usage(&key).unwrap(), single.usage(&key).unwrap());
    }
    // The stacked chain mounts the same tree: the whiteouts apply across the batch.
    let top = format!("batch-0-{}", N - 1);
    let va = batched.view("va", Some(&top), &Opts::default()).unwrap();
    let vb = single.view("vb", Some(&top), &Opts::default()).unwrap();
    // (the files were written at different times: compare all but their mtimes)
    let untimed = |t: BTreeMap<String, String>| -> BTreeMap<String, String> {
        t.into_iter()
            .map(|(k, v)| (k, v.split(" mtime ").next().unwrap().to_owned()))
            .collect()
    };
    let ta = untimed(tree(&scratch.mount(&va, "va")));
    let tb = untimed(tree(&scratch.mount(&vb, "vb")));
    assert_eq!(ta, tb);
    assert!(
        !ta.contains_key("d0/0") && ta.contains_key("d0/1"),
        "{ta:?}"
    );
    assert!(ta.contains_key(&format!("d{}/0", N - 1)));
}

#[test]
fn a_batch_that_fails_records_none_of_its_commits() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    let m = s.prepare_all(&keys(0), &Opts::default()).unwrap();
    fill(0, &m);
    let mut bad = ops(0, &keys(0), &Opts::default());
    // The fifth is stacked on a snapshot that does not exist: the whole batch is refused.
    bad[4].opts = Opts::default().onto("nowhere");
    let err = s.commit_all(&bad).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
    let all = records(&s);
    assert_eq!(all.len(), N);
    assert!(all.values().all(|r| r.0 == Kind::Active), "{all:?}");
    // A key given twice, or one that exists, is refused before anything is made.
    let dup = vec!["x".to_owned(), "x".to_owned()];
    assert!(s.prepare_all(&dup, &Opts::default()).is_err());
    assert!(s.prepare_all(&keys(0), &Opts::default()).is_err());
    assert_eq!(records(&s).len(), N);
    assert_eq!(dir_names(&s.root().join("snapshots")).len(), N);
    // The batch as it should be then commits, and one already committed by someone else is
    // reported, not an error.
    let good = ops(0, &keys(0), &Opts::default());
    s.prepare("other", None, &Opts::default()).unwrap();
    s.commit("batch-0-0", "other", &Opts::default()).unwrap();
    let made = s.commit_all(&good).unwrap();
    assert!(!made[0], "batch-0-0 was committed by another");
    assert!(made[1..].iter().all(|m| *m));
    assert_eq!(s.stat("active-0-0").unwrap().kind, Kind::Active);
    assert_eq!(
        s.stat("batch-0-1").unwrap().parent.as_deref(),
        Some("batch-0-0")
    );
}

/// After a reopen: only committed `batch-*` snapshots, each batch complete or absent, every
/// directory recorded, no temporaries or leases left. Returns the batches recorded.
fn assert_consistent(s: &SnapshotStore) -> BTreeSet<usize> {
    let list = s.list().unwrap();
    let mut per_batch: BTreeMap<usize, usize> = BTreeMap::new();
    let mut recorded = BTreeSet::new();
    for info in &list {
        assert_eq!(info.kind, Kind::Committed, "{info:?} survived the open");
        let rest = info.key.strip_prefix("batch-").unwrap();
        let (b, j) = rest.split_once('-').unwrap();
        let (b, j): (usize, usize) = (b.parse().unwrap(), j.parse().unwrap());
        *per_batch.entry(b).or_default() += 1;
        let dir = s.dir_of(&info.key).unwrap();
        let got = std::fs::read_to_string(dir.join(format!("fs/d{j}/9"))).unwrap();
        assert_eq!(got, b.to_string(), "{} is complete", info.key);
        recorded.insert(dir.file_name().unwrap().to_string_lossy().into_owned());
    }
    for (b, n) in &per_batch {
        assert_eq!(*n, N, "batch {b} is partly recorded: {list:?}");
    }
    assert_eq!(dir_names(&s.root().join("snapshots")), recorded);
    assert!(dir_names(&s.root().join("tmp")).is_empty());
    assert!(dir_names(&s.root().join("leases")).is_empty());
    per_batch.into_keys().collect()
}

#[test]
fn killed_mid_batch_prepare_records_nothing_and_open_removes_the_directories() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    kill_at(
        "snapshot::batch::child_batch_worker",
        s.root(),
        "created:once",
    );
    // The directories were made, none recorded.
    assert_eq!(dir_names(&s.root().join("snapshots")).len(), N);
    assert!(s.list().unwrap().is_empty());
    let s = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
    assert!(assert_consistent(&s).is_empty());
    assert!(dir_names(&s.root().join("snapshots")).is_empty());
    // The keys are free again.
    s.prepare_all(&keys(0), &Opts::default()).unwrap();
}

#[test]
fn killed_mid_batch_commit_records_none_and_open_removes_the_active_snapshots() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    kill_at(
        "snapshot::batch::child_batch_worker",
        s.root(),
        "applied:once",
    );
    // Killed with every commit applied in memory, before the write: none recorded, the
    // active snapshots still there (held by the dead lease).
    let before = records(&s);
    assert_eq!(before.len(), N);
    assert!(before.values().all(|r| r.0 == Kind::Active), "{before:?}");
    let s = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
    assert!(assert_consistent(&s).is_empty());
    assert!(dir_names(&s.root().join("snapshots")).is_empty());
}

#[test]
fn killed_right_after_the_batch_commit_wrote_the_metadata_all_of_it_is_recorded() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    let mut h = Helper::spawn(
        "snapshot::batch::child_batch_worker",
        "none:watch",
        s.root(),
    );
    h.wait_for("@@");
    h.kill();
    let s = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
    assert_eq!(assert_consistent(&s), BTreeSet::from([0]));
}

#[test]
fn killed_at_arbitrary_points_of_batches_each_batch_is_all_or_nothing() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    // Killed right after a marker: in the next fill, the next batch commit (its measuring,
    // its one metadata write) or the next batch prepare.
    let points = [
        "@@filled 0",
        "@@done 1",
        "@@prepared 2",
        "@@filled 3",
        "@@done 0",
        "@@filled 1",
    ];
    for (round, point) in points.into_iter().enumerate() {
        let mut h = Helper::spawn("snapshot::batch::child_batch_worker", "none:loop", s.root());
        h.wait_for(point);
        h.kill();
        let s = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
        let batches = assert_consistent(&s);
        let (_, b) = point.split_once(' ').unwrap();
        let b: usize = b.parse().unwrap();
        if point.starts_with("@@done") {
            assert!(batches.contains(&b), "round {round}: batch {b} was done");
        }
        // Remove them (top first) so the next round reuses the names.
        let mut list = s.list().unwrap();
        list.sort_by_key(|i| std::cmp::Reverse(i.key.clone()));
        for info in list {
            s.remove(&info.key).unwrap();
        }
    }
}
