//! Garbage collection keeps everything referenced, respects the grace period, and removes
//! abandoned uploads.

use std::time::{Duration, SystemTime};

use berth_registry::gc::{GcOptions, collect};
use berth_registry::storage::fs::FsDriver;

use crate::{TestRegistry, random_bytes};

fn age(path: &std::path::Path, by: Duration) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

/// Date a blob's "last referenced" record (the collector's clock) `by` back.
fn age_blob(r: &TestRegistry, d: &berth_oci::Digest, by: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(berth_registry::storage::write_last_referenced(
        &FsDriver::new(&r.root),
        d,
        SystemTime::now() - by,
    ))
    .unwrap();
}

/// Run one collection over the registry's storage.
fn run_gc(
    r: &TestRegistry,
    grace_secs: u64,
    dry_run: bool,
) -> Result<berth_registry::gc::GcReport, berth_registry::gc::GcError> {
    let opts = GcOptions {
        grace: Duration::from_secs(grace_secs),
        upload_expiry: Duration::from_secs(86400),
        dry_run,
        lease: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(collect(&FsDriver::new(&r.root), &opts))
}

fn blob_path(r: &TestRegistry, d: &berth_oci::Digest) -> std::path::PathBuf {
    r.root.join(format!(
        "v1/blobs/sha256/{}/{}/data",
        &d.hex()[..2],
        d.hex()
    ))
}

#[test]
fn collects_only_old_unreferenced_blobs_and_stale_uploads() {
    let r = TestRegistry::start();
    let (_, _) = r.push_image("keep", "v1", &[b"referenced layer"]);
    let orphan_old = r.push_blob("keep", &random_bytes(1, 100));
    let orphan_young = r.push_blob("keep", &random_bytes(2, 100));
    let referenced = berth_oci::Digest::sha256_of(b"referenced layer");
    for d in [&orphan_old, &referenced] {
        age_blob(&r, d, Duration::from_secs(7200));
    }
    // an abandoned upload and a live one
    let stale = r.req("POST", "/v2/keep/blobs/uploads/", &[], b"");
    let stale_loc = stale.header("location").unwrap().to_owned();
    assert_eq!(r.req("PATCH", &stale_loc, &[], b"half").status, 202);
    let id = stale_loc.rsplit('/').next().unwrap();
    let session = r.root.join(format!("v1/repositories/keep/_uploads/{id}"));
    for f in ["startedat", "data"] {
        age(&session.join(f), Duration::from_secs(3 * 86400));
    }
    std::fs::File::open(&session)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3 * 86400))
        .unwrap();
    let live = r.req("POST", "/v2/keep/blobs/uploads/", &[], b"");
    let live_loc = live.header("location").unwrap().to_owned();

    let report = run_gc(&r, 3600, false).unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!(report.uploads_deleted, 1, "{report:?}");
    assert!(report.blobs_kept_in_grace >= 1);

    assert_eq!(r.get(&format!("/v2/keep/blobs/{orphan_old}")).status, 404);
    // content, clock and directory all gone
    assert!(!blob_path(&r, &orphan_old).parent().unwrap().exists());
    assert_eq!(r.get(&format!("/v2/keep/blobs/{orphan_young}")).status, 200);
    assert_eq!(r.get(&format!("/v2/keep/blobs/{referenced}")).status, 200);
    assert_eq!(r.get("/v2/keep/manifests/v1").status, 200);
    assert_eq!(r.get(&stale_loc).status, 404);
    assert_eq!(r.get(&live_loc).status, 204);

    // a second run finds nothing more to do
    let again = run_gc(&r, 3600, false).unwrap();
    assert_eq!(again.blobs_deleted, 0);
}

#[test]
fn re_pushed_old_blob_is_touched_and_survives() {
    let r = TestRegistry::start();
    let d = r.push_blob("t", b"about to be referenced");
    age_blob(&r, &d, Duration::from_secs(7200));
    // re-pushing (or mounting, or a manifest PUT) refreshes the blob's clock
    let again = r.push_blob("t", b"about to be referenced");
    assert_eq!(again, d);
    let report = run_gc(&r, 60, false).unwrap();
    assert_eq!(report.blobs_deleted, 0, "{report:?}");
    assert_eq!(r.get(&format!("/v2/t/blobs/{d}")).status, 200);
}

#[test]
fn dry_run_deletes_nothing() {
    let r = TestRegistry::start();
    let d = r.push_blob("dry", b"orphan");
    age_blob(&r, &d, Duration::from_secs(7200));
    let report = run_gc(&r, 60, true).unwrap();
    assert_eq!(report.blobs_deleted, 1);
    assert_eq!(r.get(&format!("/v2/dry/blobs/{d}")).status, 200);
}

#[test]
fn grace_shorter_than_the_minimum_is_refused() {
    let r = TestRegistry::start();
    let err = run_gc(&r, 0, false).unwrap_err();
    assert!(
        err.to_string().contains("shorter than the minimum"),
        "{err}"
    );
}

#[test]
fn upload_only_repository_is_visited_and_fresh_sessions_are_kept() {
    let r = TestRegistry::start();
    let loc = r
        .req("POST", "/v2/first/push/blobs/uploads/", &[], b"")
        .header("location")
        .unwrap()
        .to_owned();
    assert_eq!(r.req("PATCH", &loc, &[], b"abc").status, 202);
    let fresh = r
        .req("POST", "/v2/first/push/blobs/uploads/", &[], b"")
        .header("location")
        .unwrap()
        .to_owned();
    let id = loc.rsplit('/').next().unwrap();
    let dir = r
        .root
        .join(format!("v1/repositories/first/push/_uploads/{id}"));
    for f in ["startedat", "data"] {
        age(&dir.join(f), Duration::from_secs(3 * 86400));
    }
    let dir_f = std::fs::File::open(&dir).unwrap();
    dir_f
        .set_modified(SystemTime::now() - Duration::from_secs(3 * 86400))
        .unwrap();
    let report = run_gc(&r, 3600, false).unwrap();
    assert_eq!(report.uploads_deleted, 1, "{report:?}");
    assert_eq!(r.get(&loc).status, 404);
    assert_eq!(r.get(&fresh).status, 204);
    // an upload-only repository is not a catalog entry
    assert_eq!(
        r.get("/v2/_catalog").json()["repositories"],
        serde_json::json!([])
    );
}
