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
        age(&blob_path(&r, d), Duration::from_secs(7200));
    }
    // an abandoned upload and a live one
    let stale = r.req("POST", "/v2/keep/blobs/uploads/", &[], b"");
    let stale_loc = stale.header("location").unwrap().to_owned();
    assert_eq!(r.req("PATCH", &stale_loc, &[], b"half").status, 202);
    let id = stale_loc.rsplit('/').next().unwrap();
    for f in ["startedat", "data"] {
        age(
            &r.root
                .join(format!("v1/repositories/keep/_uploads/{id}/{f}")),
            Duration::from_secs(3 * 86400),
        );
    }
    let live = r.req("POST", "/v2/keep/blobs/uploads/", &[], b"");
    let live_loc = live.header("location").unwrap().to_owned();

    let opts = GcOptions {
        grace: Duration::from_secs(3600),
        upload_expiry: Duration::from_secs(86400),
        dry_run: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(collect(&FsDriver::new(&r.root), &opts))
        .unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!(report.uploads_deleted, 1, "{report:?}");
    assert!(report.blobs_kept_in_grace >= 1);

    assert_eq!(r.get(&format!("/v2/keep/blobs/{orphan_old}")).status, 404);
    assert_eq!(r.get(&format!("/v2/keep/blobs/{orphan_young}")).status, 200);
    assert_eq!(r.get(&format!("/v2/keep/blobs/{referenced}")).status, 200);
    assert_eq!(r.get("/v2/keep/manifests/v1").status, 200);
    assert_eq!(r.get(&stale_loc).status, 404);
    assert_eq!(r.get(&live_loc).status, 204);

    // a second run finds nothing more to do
    let again = rt
        .block_on(collect(&FsDriver::new(&r.root), &opts))
        .unwrap();
    assert_eq!(again.blobs_deleted, 0);
}

#[test]
fn touched_blob_survives_even_with_zero_grace() {
    let r = TestRegistry::start();
    let d = r.push_blob("t", b"about to be referenced");
    age(&blob_path(&r, &d), Duration::from_secs(7200));
    // re-pushing (or mounting, or a manifest PUT) refreshes the blob's clock
    let again = r.push_blob("t", b"about to be referenced");
    assert_eq!(again, d);
    let opts = GcOptions {
        grace: Duration::from_secs(60),
        upload_expiry: Duration::from_secs(86400),
        dry_run: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(collect(&FsDriver::new(&r.root), &opts))
        .unwrap();
    assert_eq!(report.blobs_deleted, 0, "{report:?}");
    assert_eq!(r.get(&format!("/v2/t/blobs/{d}")).status, 200);
}

#[test]
fn dry_run_deletes_nothing() {
    let r = TestRegistry::start();
    let d = r.push_blob("dry", b"orphan");
    age(&blob_path(&r, &d), Duration::from_secs(7200));
    let opts = GcOptions {
        grace: Duration::from_secs(60),
        upload_expiry: Duration::from_secs(86400),
        dry_run: true,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(collect(&FsDriver::new(&r.root), &opts))
        .unwrap();
    assert_eq!(report.blobs_deleted, 1);
    assert_eq!(r.get(&format!("/v2/dry/blobs/{d}")).status, 200);
}
