//! Killed processes: a half-made snapshot is never used and is removed at the next open;
//! two processes at once never lose each other's snapshots.

use std::collections::BTreeSet;
use std::path::Path;

use berth_image::snapshot::{CrashPoint, Driver, Opts, SnapshotStore, Snapshotter};

use super::helpers::{Scratch, layer, require_root, upper, write};
use super::process::{Helper, announce_and_hang, kill_at, role};

fn dir_names(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The helper: opens the store with a hook that stops at the named point, then works.
#[test]
#[ignore = "helper process for the crash and concurrency tests"]
fn child_snapshot_worker() {
    let Some((role, root)) = role() else { return };
    let (point, op) = role.split_once(':').unwrap();
    let stop_at = match point {
        "temp" => Some(CrashPoint::TempFilled),
        "renamed" => Some(CrashPoint::Renamed),
        "unrecorded" => Some(CrashPoint::Unrecorded),
        _ => None,
    };
    let hook = super::process::hang_at(stop_at);
    let driver = if op.starts_with("native") {
        Driver::Native
    } else {
        Driver::Overlay
    };
    let s = SnapshotStore::open_with_hook(&root, driver, hook).unwrap();
    match op {
        "prepare" | "native-prepare" => {
            s.prepare("half", Some("base"), &Opts::default()).unwrap();
        }
        "remove" => s.remove("doomed").unwrap(),
        "unpack" => {
            // An unpack in progress: a leased active snapshot, half written.
            let lease = s.lease().unwrap();
            let m = s
                .prepare(
                    "extract-1 sha256:x",
                    Some("base"),
                    &Opts::with_lease(&lease),
                )
                .unwrap();
            write(&upper(&m), "half-written", "…");
            announce_and_hang("reached unpack");
        }
        w if w.starts_with("many-") => {
            // Concurrency: prepare and commit 25 snapshots on "base" as fast as possible.
            let me = w.trim_start_matches("many-");
            use std::io::Write;
            println!("ready");
            std::io::stdout().flush().unwrap();
            for i in 0..25 {
                let key = format!("{me}-active-{i}");
                let m = s.prepare(&key, Some("base"), &Opts::default()).unwrap();
                write(&upper(&m), "who", &key);
                s.commit(&format!("{me}-{i}"), &key, &Opts::default())
                    .unwrap();
            }
        }
        w if w.starts_with("same-") => {
            // The same layer unpacked by two processes at once: one commit wins, the other
            // is told it exists and removes its copy (what an unpacker does).
            let me = w.trim_start_matches("same-");
            let key = format!("extract-{me} sha256:same");
            let m = s.prepare(&key, Some("base"), &Opts::default()).unwrap();
            write(&upper(&m), "who", me);
            use std::io::Write;
            println!("ready");
            std::io::stdout().flush().unwrap();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            match s.commit("sha256:same", &key, &Opts::default()) {
                Ok(()) => println!("@@result committed"),
                Err(e) if e.kind() == berth_image::snapshot::ErrorKind::AlreadyExists => {
                    s.remove(&key).unwrap();
                    println!("@@result exists");
                }
                Err(e) => panic!("{e}"),
            }
        }
        "loop" | "native-loop" => {
            // Prepare, fill and commit layers until killed; each unpack held by a lease.
            use std::io::Write;
            let lease = s.lease().unwrap();
            for i in 0.. {
                let key = format!("extract-{i}");
                let m = s
                    .prepare(&key, Some("base"), &Opts::with_lease(&lease))
                    .unwrap();
                println!("@@prepared {i}");
                std::io::stdout().flush().unwrap();
                let d = upper(&m);
                for f in 0..20 {
                    write(&d, &format!("d/{f}"), &format!("{i}"));
                }
                println!("@@filled {i}");
                std::io::stdout().flush().unwrap();
                let opts = Opts::default().label(berth_image::snapshot::LABEL_GC_ROOT, "t");
                s.commit(&format!("loop-{i}"), &key, &opts).unwrap();
                println!("@@done {i}");
                std::io::stdout().flush().unwrap();
            }
        }
        other => panic!("unknown op {other}"),
    }
}

fn setup(driver: Driver) -> (Scratch, SnapshotStore) {
    let scratch = Scratch::new();
    let s = scratch.store(driver);
    layer(&s, "base", None, |d| write(d, "etc/os", "base"));
    (scratch, s)
}

fn killed_mid_prepare_leaves_nothing(driver: Driver, role: &str) {
    let (_scratch, s) = setup(driver);
    let mut h = Helper::spawn("snapshot::crash::child_snapshot_worker", role, s.root());
    let point = role.split_once(':').unwrap().0;
    let line = h.wait_for("reached");
    assert!(
        line.to_lowercase().contains(point),
        "{line} (wanted {point})"
    );
    if point == "temp" {
        // While its creator lives, another process's open leaves the temporary tree alone.
        // (At `renamed` the creator holds the root lock: an open would wait for it.)
        SnapshotStore::open(s.root(), driver).unwrap();
        assert_eq!(
            dir_names(&s.root().join("tmp")).len(),
            1,
            "a live creator's tree was removed"
        );
    }
    h.kill();
    // Before reopening, the debris is there: an unrecorded directory (renamed) or a
    // temporary one (temp).
    let debris =
        dir_names(&s.root().join("snapshots")).len() + dir_names(&s.root().join("tmp")).len();
    assert_eq!(debris, 2, "base plus one half-made snapshot");
    assert!(
        s.stat("half").is_err(),
        "a half-made snapshot is never visible"
    );
    let s = SnapshotStore::open(s.root(), driver).unwrap();
    assert_eq!(
        dir_names(&s.root().join("snapshots")).len(),
        1,
        "only base remains"
    );
    assert!(dir_names(&s.root().join("tmp")).is_empty());
    assert_eq!(s.list().unwrap().len(), 1);
    // And the key is free again: the next prepare succeeds.
    s.prepare("half", Some("base"), &Opts::default()).unwrap();
}

#[test]
fn killed_after_filling_before_rename_the_temporary_snapshot_is_removed_at_open() {
    if require_root() {
        killed_mid_prepare_leaves_nothing(Driver::Overlay, "temp:prepare");
        killed_mid_prepare_leaves_nothing(Driver::Native, "temp:native-prepare");
    }
}

#[test]
fn killed_between_rename_and_record_the_unrecorded_directory_is_removed_at_open() {
    if require_root() {
        killed_mid_prepare_leaves_nothing(Driver::Overlay, "renamed:prepare");
        killed_mid_prepare_leaves_nothing(Driver::Native, "renamed:native-prepare");
    }
}

#[test]
fn killed_mid_remove_the_directory_is_removed_at_open() {
    if !require_root() {
        return;
    }
    let (_scratch, s) = setup(Driver::Overlay);
    layer(&s, "doomed", Some("base"), |d| write(d, "x", "x"));
    kill_at(
        "snapshot::crash::child_snapshot_worker",
        s.root(),
        "unrecorded:remove",
    );
    assert!(s.stat("doomed").is_err());
    assert_eq!(dir_names(&s.root().join("snapshots")).len(), 2);
    let s = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
    assert_eq!(dir_names(&s.root().join("snapshots")).len(), 1);
}

/// `remove_later` (the `--rm` monitor's removal): the snapshot is gone for every reader at
/// once, its files wait under `tmp/` locked — another process's open leaves them — and go at
/// `delete`, or at the next open once the remover is gone without deleting them.
#[test]
fn a_removal_left_for_later_is_invisible_at_once_and_its_files_go_at_delete_or_the_next_open() {
    if !require_root() {
        return;
    }
    let (_scratch, s) = setup(Driver::Overlay);
    for round in 0..2 {
        let key = format!("container-{round}");
        let m = s.prepare(&key, Some("base"), &Opts::default()).unwrap();
        write(&upper(&m), "etc/hosts", "127.0.0.1 localhost");
        let files = s
            .remove_later(&key)
            .unwrap()
            .expect("its directory to delete");
        assert_eq!(files.key(), key);
        assert!(s.stat(&key).is_err());
        assert!(s.list().unwrap().iter().all(|i| i.key != key));
        assert_eq!(dir_names(&s.root().join("snapshots")).len(), 1, "only base");
        let waiting = dir_names(&s.root().join("tmp"));
        assert_eq!(waiting.len(), 1, "{waiting:?}");
        // an open's cleanup (another `berth` command) leaves a held removal alone
        SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
        assert_eq!(dir_names(&s.root().join("tmp")), waiting);
        if round == 0 {
            files.delete().unwrap();
        } else {
            // the remover gone without deleting (a killed monitor): the next open does it
            drop(files);
            assert_eq!(dir_names(&s.root().join("tmp")), waiting);
            SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
        }
        assert!(dir_names(&s.root().join("tmp")).is_empty());
        // and the key is free again
        s.prepare(&key, Some("base"), &Opts::default()).unwrap();
        s.remove(&key).unwrap();
    }
}

#[test]
fn killed_mid_unpack_the_leased_snapshot_is_removed_at_open_but_not_while_alive() {
    if !require_root() {
        return;
    }
    let (_scratch, s) = setup(Driver::Overlay);
    let mut h = Helper::spawn(
        "snapshot::crash::child_snapshot_worker",
        "none:unpack",
        s.root(),
    );
    h.wait_for("reached unpack");
    // While the unpacking process lives, neither an open nor a collection touches it.
    let other = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
    assert!(other.stat("extract-1 sha256:x").is_ok());
    assert!(other.gc().unwrap().removed.is_empty());
    h.kill();
    let s = SnapshotStore::open(s.root(), Driver::Overlay).unwrap();
    assert!(
        s.stat("extract-1 sha256:x").is_err(),
        "the half-unpacked snapshot was removed"
    );
    assert_eq!(s.list().unwrap().len(), 1);
    assert_eq!(dir_names(&s.root().join("snapshots")).len(), 1);
    assert!(dir_names(&s.root().join("leases")).is_empty());
}

#[test]
fn two_processes_preparing_on_the_same_parent_lose_nothing() {
    if !require_root() {
        return;
    }
    let (_scratch, s) = setup(Driver::Overlay);
    let mut a = Helper::spawn(
        "snapshot::crash::child_snapshot_worker",
        "none:many-a",
        s.root(),
    );
    let mut b = Helper::spawn(
        "snapshot::crash::child_snapshot_worker",
        "none:many-b",
        s.root(),
    );
    a.wait_for("ready");
    b.wait_for("ready");
    a.wait_success();
    b.wait_success();
    let list = s.list().unwrap();
    assert_eq!(
        list.len(),
        51,
        "base + 2 × 25: {:?}",
        list.iter().map(|i| &i.key).collect::<Vec<_>>()
    );
    let dirs = dir_names(&s.root().join("snapshots"));
    assert_eq!(dirs.len(), 51, "one directory per snapshot, none shared");
    for who in ["a", "b"] {
        for i in 0..25 {
            let dir = s.dir_of(&format!("{who}-{i}")).unwrap();
            let got = std::fs::read_to_string(dir.join("fs/who")).unwrap();
            assert_eq!(got, format!("{who}-active-{i}"));
        }
    }
}

#[test]
fn two_processes_committing_the_same_layer_one_wins_and_nothing_leaks() {
    if !require_root() {
        return;
    }
    let (_scratch, s) = setup(Driver::Overlay);
    let mut a = Helper::spawn_with_stdin(
        "snapshot::crash::child_snapshot_worker",
        "none:same-a",
        s.root(),
    );
    let mut b = Helper::spawn_with_stdin(
        "snapshot::crash::child_snapshot_worker",
        "none:same-b",
        s.root(),
    );
    a.wait_for("ready");
    b.wait_for("ready");
    // Release both commits at once.
    a.release();
    b.release();
    let results = [a.wait_for("@@result"), b.wait_for("@@result")];
    a.wait_success();
    b.wait_success();
    let committed = results.iter().filter(|r| r.ends_with("committed")).count();
    assert_eq!(committed, 1, "{results:?}");
    assert_eq!(
        s.stat("sha256:same").unwrap().parent.as_deref(),
        Some("base")
    );
    assert_eq!(
        s.list().unwrap().len(),
        2,
        "base and the one committed layer"
    );
    assert_eq!(
        dir_names(&s.root().join("snapshots")).len(),
        2,
        "the loser's copy is gone"
    );
}

fn killed_at_arbitrary_points(driver: Driver, role: &str) {
    let (_scratch, s) = setup(driver);
    // Kill the loop as soon as it says where it is: then it is somewhere in the next
    // prepare (after `done`), fill (after `prepared`) or commit and its metadata write
    // (after `filled`).
    let points = [
        "@@done 0",
        "@@prepared 3",
        "@@filled 1",
        "@@done 4",
        "@@prepared 0",
        "@@filled 5",
    ];
    for (round, point) in points.into_iter().enumerate() {
        let mut h = Helper::spawn("snapshot::crash::child_snapshot_worker", role, s.root());
        h.wait_for(point);
        h.kill();
        let s = SnapshotStore::open(s.root(), driver).unwrap();
        let list = s.list().unwrap();
        assert!(
            list.iter()
                .all(|i| i.key == "base" || i.key.starts_with("loop-")),
            "round {round}: an uncommitted snapshot survived the open: {list:?}"
        );
        let mut recorded = BTreeSet::new();
        for info in &list {
            let dir = s.dir_of(&info.key).unwrap();
            assert!(dir.join("fs").is_dir(), "{} has no tree", info.key);
            if let Some(i) = info.key.strip_prefix("loop-") {
                let got = std::fs::read_to_string(dir.join("fs/d/19")).unwrap();
                assert_eq!(got, i, "{} is complete", info.key);
            }
            recorded.insert(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            dir_names(&s.root().join("snapshots")),
            recorded,
            "round {round}"
        );
        assert!(dir_names(&s.root().join("tmp")).is_empty(), "round {round}");
        assert!(
            dir_names(&s.root().join("leases")).is_empty(),
            "round {round}"
        );
        // The committed layers are removed again so the next round reuses the keys.
        for info in list.iter().filter(|i| i.key != "base") {
            s.remove(&info.key).unwrap();
        }
    }
}

#[test]
fn killed_at_arbitrary_points_of_prepare_fill_commit_the_store_stays_consistent() {
    if require_root() {
        killed_at_arbitrary_points(Driver::Overlay, "none:loop");
        killed_at_arbitrary_points(Driver::Native, "none:native-loop");
    }
}
