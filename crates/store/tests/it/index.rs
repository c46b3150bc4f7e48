//! The metadata index: concurrent updates, crash safety.

use std::sync::{Arc, Barrier};

use berth_oci::media_type;
use berth_store::{PruneOptions, Store};

use crate::{record, temp_store};

const PER_WRITER: usize = 15;

/// Put `PER_WRITER` images named `<prefix>/<i>`, each over its own manifest blob.
fn put_many(store: &Store, prefix: &str) {
    for i in 0..PER_WRITER {
        let name = format!("{prefix}/{i}");
        let empty = crate::put(store, b"{}", None).unwrap();
        let body = serde_json::to_string(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": media_type::OCI_EMPTY_JSON, "digest": empty, "size": 2},
            "layers": [],
            "annotations": {"name": name},
        }))
        .unwrap();
        let d = crate::put(store, body.as_bytes(), None).unwrap();
        store
            .put_image(record(
                &name,
                &d,
                media_type::OCI_MANIFEST,
                body.len() as u64,
            ))
            .unwrap();
    }
}

#[test]
fn index_survives_concurrent_updates_from_threads() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap();
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (path, barrier) = (dir.path().to_owned(), barrier.clone());
            std::thread::spawn(move || {
                // each thread its own Store: its own lock file descriptions, as a process
                let store = Store::open(&path).unwrap();
                barrier.wait();
                put_many(&store, &format!("thread{t}"));
                // and some removals interleaved with the others' writes
                assert!(
                    store
                        .remove_image(&format!("thread{t}/0"))
                        .unwrap()
                        .is_some()
                );
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let images = store.images().unwrap();
    assert_eq!(images.len(), threads * (PER_WRITER - 1));
    let mut names: Vec<_> = images.iter().map(|r| r.name.clone()).collect();
    let sorted = {
        let mut s = names.clone();
        s.sort();
        s
    };
    assert_eq!(names, sorted, "images() is sorted by name");
    names.dedup();
    assert_eq!(names.len(), images.len());
}

#[test]
fn index_survives_concurrent_updates_from_processes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            crate::spawn_child(
                "index::child_put_images",
                "put",
                dir.path(),
                &format!("proc{i}"),
            )
        })
        .collect();
    // and this process writes at the same time
    put_many(&store, "parent");
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let images = store.images().unwrap();
    assert_eq!(images.len(), 4 * PER_WRITER, "{images:#?}");
    for prefix in ["parent", "proc0", "proc1", "proc2"] {
        assert!(
            store
                .image(&format!("{prefix}/{}", PER_WRITER - 1))
                .unwrap()
                .is_some()
        );
    }
}

#[test]
#[ignore = "child process of index_survives_concurrent_updates_from_processes"]
fn child_put_images() {
    let Some((role, dir, prefix)) = crate::child_env() else {
        return;
    };
    assert_eq!(role, "put");
    let store = Store::open(&dir).unwrap();
    put_many(&store, &prefix);
}

#[test]
fn crash_mid_write_leaves_the_old_index() {
    let (_dir, store) = temp_store();
    put_many(&store, "before");
    let before = store.images().unwrap();
    // what an index write killed before its rename leaves: a half-written temp beside it
    let stray = store
        .root()
        .join(format!(".index.json.tmp.{}.99", u32::MAX));
    berth_test_support::write_file(&stray, br#"{"version":1,"images":[{"name":"torn"#);
    assert_eq!(store.images().unwrap(), before);
    assert!(store.image("torn").unwrap().is_none());
    // writes go on, and prune removes the leftover
    put_many(&store, "after");
    assert_eq!(store.images().unwrap().len(), 2 * PER_WRITER);
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.temp_files_removed, 1);
    assert!(!stray.exists());
    let index = std::fs::read(store.root().join("index.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(parsed["version"], 1);
}
