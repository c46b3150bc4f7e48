//! Leases and garbage collection.

use std::io::Write;
use std::time::Duration;

use berth_oci::{Digest, media_type};
use berth_store::{ErrorKind, LeaseHolder, PruneOptions, Store};
use serde_json::json;

use crate::{StoredImage, age, age_all_blobs, record, store_image, stored_blobs, temp_store};

const ARCHES: [&str; 3] = ["amd64", "arm64", "s390x"];

/// An index over `images`; returns its digest and size.
fn store_index(store: &Store, images: &[&StoredImage]) -> (Digest, u64) {
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": images.iter().enumerate().map(|(i, im)| json!({
            "mediaType": media_type::OCI_MANIFEST,
            "digest": im.manifest,
            "size": im.manifest_size,
            "platform": {"os": "linux", "architecture": ARCHES[i % 3]},
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    (crate::put(store, &body, None).unwrap(), body.len() as u64)
}

fn sorted(mut v: Vec<Digest>) -> Vec<Digest> {
    v.sort();
    v.dedup();
    v
}

#[test]
fn prune_keeps_everything_reachable_from_images() {
    let (_dir, store) = temp_store();
    let single = store_image(&store, 1);
    let amd = store_image(&store, 2);
    let arm = store_image(&store, 3);
    let (index, index_size) = store_index(&store, &[&amd, &arm]);
    let garbage = store_image(&store, 4);
    let loose = crate::put(&store, b"loose", None).unwrap();
    store
        .put_image(record(
            "a:1",
            &single.manifest,
            media_type::OCI_MANIFEST,
            single.manifest_size,
        ))
        .unwrap();
    store
        .put_image(record("multi:1", &index, media_type::OCI_INDEX, index_size))
        .unwrap();
    age_all_blobs(&store);

    let mut expect_removed = garbage.all();
    expect_removed.push(loose);
    let expect_bytes: u64 = expect_removed
        .iter()
        .map(|d| store.blob_size(d).unwrap().unwrap())
        .sum();

    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, sorted(expect_removed));
    assert_eq!(report.blob_bytes_freed, expect_bytes);
    let mut kept = single.all();
    kept.extend(amd.all());
    kept.extend(arm.all());
    kept.push(index);
    assert_eq!(stored_blobs(&store), sorted(kept));
    assert_eq!(report.blobs_kept, stored_blobs(&store).len() as u64);

    // a second run finds nothing
    let again = store.prune(PruneOptions::default()).unwrap();
    assert!(again.removed_blobs.is_empty());
}

#[test]
fn removing_an_image_frees_only_what_nothing_else_uses() {
    let (_dir, store) = temp_store();
    let a = store_image(&store, 1);
    let b = store_image(&store, 2);
    store
        .put_image(record(
            "a",
            &a.manifest,
            media_type::OCI_MANIFEST,
            a.manifest_size,
        ))
        .unwrap();
    // two names for b
    for name in ["b", "b-alias"] {
        store
            .put_image(record(
                name,
                &b.manifest,
                media_type::OCI_MANIFEST,
                b.manifest_size,
            ))
            .unwrap();
    }
    age_all_blobs(&store);
    store.remove_image("a").unwrap();
    store.remove_image("b").unwrap();
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, sorted(a.all()));
    assert_eq!(stored_blobs(&store), sorted(b.all()));
}

#[test]
fn grace_period_protects_fresh_blobs() {
    let (_dir, store) = temp_store();
    let old = crate::put(&store, b"old", None).unwrap();
    let fresh = crate::put(&store, b"fresh", None).unwrap();
    age(&store.blob_path(&old), Duration::from_secs(11 * 60));
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, vec![old]);
    assert_eq!(stored_blobs(&store), vec![fresh.clone()]);
    // a zero grace takes it too
    let report = store
        .prune(PruneOptions {
            grace: Duration::ZERO,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.removed_blobs, vec![fresh]);
}

#[test]
fn dry_run_deletes_nothing() {
    let (_dir, store) = temp_store();
    let garbage = store_image(&store, 7);
    age_all_blobs(&store);
    let before = stored_blobs(&store);
    let report = store
        .prune(PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.removed_blobs, sorted(garbage.all()));
    assert!(report.bytes_freed() > 2000);
    assert_eq!(stored_blobs(&store), before);
    // the real run removes exactly what the dry run listed
    let real = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(real.removed_blobs, report.removed_blobs);
    assert_eq!(real.blob_bytes_freed, report.blob_bytes_freed);
}

#[test]
fn lease_protects_a_blob_from_prune() {
    let (_dir, store) = temp_store();
    let image = store_image(&store, 1);
    let lease = store.lease("pull test").unwrap();
    // leasing the manifest protects what it references too
    lease.add(&image.manifest).unwrap();
    let other = crate::put(&store, b"leased alone", None).unwrap();
    lease.add(&other).unwrap();
    age_all_blobs(&store);
    let report = store.prune(PruneOptions::default()).unwrap();
    assert!(report.removed_blobs.is_empty(), "{report:?}");
    assert_eq!(report.leases_removed, 0);
    drop(lease);
    let report = store.prune(PruneOptions::default()).unwrap();
    let mut all = image.all();
    all.push(other);
    assert_eq!(report.removed_blobs, sorted(all));
}

#[test]
fn lease_of_a_dead_process_does_not_protect() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let blob = crate::put(&store, b"leased by the dead", None).unwrap();
    age(&store.blob_path(&blob), Duration::from_secs(3600));
    crate::run_child("gc::child_leak_lease", "lease", dir.path(), blob.as_str());
    let leases = berth_test_support::walk_files(store.root().join("leases"));
    assert_eq!(
        leases.len(),
        1,
        "the child exited without dropping its lease"
    );
    let lease_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&leases[0]).unwrap()).unwrap();
    assert_eq!(lease_json["digests"][0], blob.as_str());

    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, vec![blob]);
    assert_eq!(report.leases_removed, 1);
    assert!(berth_test_support::walk_files(store.root().join("leases")).is_empty());
}

#[test]
#[ignore = "child process of lease_of_a_dead_process_does_not_protect"]
fn child_leak_lease() {
    let Some((role, dir, digest)) = crate::child_env() else {
        return;
    };
    assert_eq!(role, "lease");
    let store = Store::open(&dir).unwrap();
    let lease = store.lease("leaked").unwrap();
    lease.add(&Digest::parse(&digest).unwrap()).unwrap();
    std::mem::forget(lease);
    // exit as a crash would: without running destructors or the harness
    std::process::exit(0);
}

/// A process to hold leases, killed and reaped on drop.
struct Holder(std::process::Child);

impl Holder {
    fn spawn() -> Holder {
        Holder(
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("spawn sleep"),
        )
    }

    fn kill_and_reap(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

#[test]
fn lease_lasts_as_long_as_its_holder_process() {
    let (_dir, store) = temp_store();
    let blob = crate::put(&store, b"a container's image", None).unwrap();
    age_all_blobs(&store);
    let mut holder = Holder::spawn();
    let lease = store
        .lease_held_by(LeaseHolder::process(holder.0.id()).unwrap(), "container c1")
        .unwrap();
    lease.add(&blob).unwrap();
    // the handle goes; the holder still runs, so the lease stays
    drop(lease);
    let report = store.prune(PruneOptions::default()).unwrap();
    assert!(report.removed_blobs.is_empty(), "{report:?}");
    assert_eq!(report.leases_removed, 0);

    // the holder exits (and is reaped: its pid may be reused from now on)
    holder.kill_and_reap();
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, vec![blob]);
    assert_eq!(report.leases_removed, 1);
}

#[test]
fn lease_of_a_live_holder_has_no_fixed_expiry() {
    let (_dir, store) = temp_store();
    let blob = crate::put(&store, b"leased for days", None).unwrap();
    age_all_blobs(&store);
    let lease = store.lease("a long-running holder").unwrap();
    lease.add(&blob).unwrap();
    // the lease was taken two days ago, by a holder that still runs
    rewrite_lease(&store, |l| {
        l["created"] = json!(crate::unix_now() - 2 * 24 * 3600)
    });
    let report = store.prune(PruneOptions::default()).unwrap();
    assert!(report.removed_blobs.is_empty(), "{report:?}");
    assert_eq!(report.leases_removed, 0);
    drop(lease);
}

#[test]
fn lease_of_a_reused_pid_does_not_protect() {
    let (_dir, store) = temp_store();
    let blob = crate::put(&store, b"leased by a pid now reused", None).unwrap();
    age_all_blobs(&store);
    let lease = store.lease("old holder").unwrap();
    lease.add(&blob).unwrap();
    // same pid, another start time: the pid now belongs to a process started later
    rewrite_lease(&store, |l| {
        let start = l["pidStart"]
            .as_u64()
            .expect("lease records the start time");
        l["pidStart"] = json!(start + 1);
    });
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, vec![blob]);
    assert_eq!(report.leases_removed, 1);
    drop(lease);
}

#[test]
fn a_holder_that_is_not_running_is_refused() {
    let mut holder = Holder::spawn();
    let pid = holder.0.id();
    let named = LeaseHolder::process(pid).unwrap();
    assert_eq!(named.pid(), pid);
    assert!(named.is_alive());
    holder.kill_and_reap();
    assert!(!named.is_alive());
    let err = LeaseHolder::process(pid).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&pid.to_string()), "{err}");
}

/// Edit the only lease file of `store` as JSON.
fn rewrite_lease(store: &Store, edit: impl FnOnce(&mut serde_json::Value)) {
    let leases = berth_test_support::walk_files(store.root().join("leases"));
    assert_eq!(leases.len(), 1, "{leases:?}");
    let mut lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&leases[0]).unwrap()).unwrap();
    edit(&mut lease);
    berth_fsutil::atomic_write(&leases[0], &serde_json::to_vec(&lease).unwrap()).unwrap();
}

#[test]
fn referrers_of_kept_manifests_are_kept() {
    let (_dir, store) = temp_store();
    let image = store_image(&store, 1);
    let empty = crate::put(&store, b"{}", None).unwrap();
    let sig = crate::put(&store, b"signature envelope", None).unwrap();
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": {"mediaType": media_type::OCI_EMPTY_JSON, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": sig, "size": 18}],
        "subject": {"mediaType": media_type::OCI_MANIFEST, "digest": image.manifest, "size": image.manifest_size},
    }))
    .unwrap();
    let artifact = crate::put(&store, &artifact, None).unwrap();
    store
        .put_image(record(
            "signed",
            &image.manifest,
            media_type::OCI_MANIFEST,
            image.manifest_size,
        ))
        .unwrap();
    age_all_blobs(&store);
    let report = store.prune(PruneOptions::default()).unwrap();
    assert!(report.removed_blobs.is_empty(), "{report:?}");

    store.remove_image("signed").unwrap();
    let report = store.prune(PruneOptions::default()).unwrap();
    let mut all = image.all();
    all.extend([empty, sig, artifact]);
    assert_eq!(report.removed_blobs, sorted(all));
}

#[test]
fn unparsable_manifest_stops_prune_before_removing_anything() {
    let (_dir, store) = temp_store();
    let bad = crate::put(&store, b"not json at all", None).unwrap();
    let garbage = crate::put(&store, b"garbage", None).unwrap();
    store
        .put_image(record("broken", &bad, media_type::OCI_MANIFEST, 15))
        .unwrap();
    age_all_blobs(&store);
    let err = store.prune(PruneOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.to_string().contains(bad.as_str()), "{err}");
    assert_eq!(stored_blobs(&store), sorted(vec![bad, garbage]));
}

#[test]
fn abandoned_ingests_are_removed_after_a_day() {
    let (_dir, store) = temp_store();
    let d = Digest::sha256_of(b"whole");
    let day = Duration::from_secs(25 * 3600);
    // abandoned long ago
    let mut w = crate::ingest(&store, "old", &d, None).unwrap();
    w.write_all(b"who").unwrap();
    drop(w);
    // abandoned recently
    let mut w = crate::ingest(&store, "recent", &d, None).unwrap();
    w.write_all(b"wh").unwrap();
    drop(w);
    // old, but someone is writing it right now
    let mut busy = crate::ingest(&store, "busy", &d, None).unwrap();
    busy.write_all(b"w").unwrap();
    let ingest_root = store.root().join("ingest");
    let dirs_of = |names: &[&str]| -> Vec<std::path::PathBuf> {
        names
            .iter()
            .map(|k| ingest_root.join(Digest::sha256_of(k.as_bytes()).hex()))
            .collect()
    };
    for dir in dirs_of(&["old", "busy"]) {
        for f in berth_test_support::walk_files(&dir) {
            age(&f, day);
        }
        age(&dir, day);
    }
    let report = store.prune(PruneOptions::default()).unwrap();
    assert_eq!(report.ingests_removed, 1);
    assert_eq!(report.ingest_bytes_freed, 3);
    let [old, recent, busy_dir] = <[_; 3]>::try_from(dirs_of(&["old", "recent", "busy"])).unwrap();
    assert!(!old.exists());
    assert!(recent.exists());
    assert!(busy_dir.exists());
    busy.write_all(b"hole").unwrap();
    assert_eq!(busy.commit().unwrap(), d);
    assert_eq!(
        crate::ingest(&store, "recent", &d, None).unwrap().offset(),
        2
    );
}
