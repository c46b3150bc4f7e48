//! The disk tier of the read cache (`storage/disk_cache.rs`), through the HTTP API of
//! replicas sharing one driver: a large blob's second GET is served from the replica's
//! file (no read of the blob's data in storage), whole and by range; a blob deleted
//! through another replica is a 404 at once; a file gone behind the tier's back is read
//! from storage again; a collection through the registry empties the tier.

use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_oci::Digest;
use berth_registry::Config;
use berth_registry::config::DriverKind;
use berth_registry::gc::GcOptions;
use berth_registry::storage::memory::MemoryDriver;
use berth_registry::storage::{DiskCache, Registry, paths, write_last_referenced};
use berth_test_support::wait_until;
use futures_util::StreamExt;

use crate::cache::{CountingDriver, metric, rt};
use crate::{TestRegistry, random_bytes};

/// A replica's configuration with the disk tier in `dir` (the tier is on over object
/// storage only: the in-memory driver stands in for it here).
fn with_disk_tier(dir: &Path) -> Config {
    let mut c = Config::default();
    c.storage.min_free_bytes = 0;
    c.storage.driver = DriverKind::S3;
    c.storage.cache.disk_dir = Some(dir.to_owned());
    c.storage.cache.disk_max_bytes = 64 << 20;
    c
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Reads of `path`'s bytes (not stats) through `driver`.
fn reads(driver: &CountingDriver, path: &str) -> usize {
    driver
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(op, p)| *op == "reader" && p == path)
        .count()
}

fn fills(r: &TestRegistry) -> u64 {
    metric(r, "berth_registry_disk_cache_fills_total")
}

#[test]
fn a_large_blobs_second_get_is_served_from_the_replicas_disk() {
    let driver = CountingDriver::default();
    let tier = tempfile::tempdir().unwrap();
    let a = TestRegistry::serve(driver.clone(), with_disk_tier(tier.path()));
    let mut plain = Config::default();
    plain.storage.min_free_bytes = 0;
    let b = TestRegistry::serve(driver.clone(), plain);
    assert!(
        !b.get("/metrics").text().contains("disk_cache"),
        "the tier is off over a filesystem-like driver's label"
    );

    let blob = random_bytes(7, 3 << 20);
    let d = b.push_blob("tier/a", &blob);
    let url = format!("/v2/tier/a/blobs/{d}");
    let data = paths::blob_data(&d);

    driver.reset();
    let first = a.get(&url);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, blob, "the first GET streams from storage");
    assert_eq!(reads(&driver, &data), 1, "read from storage once");
    assert!(
        wait_until(Duration::from_secs(10), || fills(&a) == 1),
        "the file was never kept"
    );
    assert_eq!(files_in(tier.path()).len(), 1);

    driver.reset();
    let second = a.get(&url);
    assert_eq!(second.status, 200);
    assert_eq!(second.body, blob);
    let ranged = a.req("GET", &url, &[("range", "bytes=1048576-2097151")], b"");
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, &blob[1 << 20..2 << 20]);
    assert_eq!(
        driver.on(&data),
        0,
        "served from the disk tier, not storage: {:?}",
        driver.calls.lock().unwrap()
    );
    assert_eq!(
        driver.on(&paths::layer_link("tier/a", &d)),
        2,
        "every GET still reads the repository's link from storage"
    );
    assert_eq!(metric(&a, "berth_registry_disk_cache_hits_total"), 2);
    assert_eq!(
        metric(&a, "berth_registry_disk_cache_bytes"),
        blob.len() as u64
    );

    // deleted through the other replica: a 404 here at once, warm tier or not
    assert_eq!(b.req("DELETE", &url, &[], b"").status, 202);
    assert_eq!(a.get(&url).status, 404);
    assert_eq!(a.req("HEAD", &url, &[], b"").status, 404);
}

#[test]
fn a_kept_file_gone_is_read_from_storage_and_kept_again() {
    let driver = CountingDriver::default();
    let tier = tempfile::tempdir().unwrap();
    let a = TestRegistry::serve(driver.clone(), with_disk_tier(tier.path()));
    let blob = random_bytes(8, 1 << 20);
    let d = a.push_blob("tier/gone", &blob);
    let url = format!("/v2/tier/gone/blobs/{d}");
    assert_eq!(a.get(&url).body, blob);
    assert!(wait_until(Duration::from_secs(10), || fills(&a) == 1));
    for f in files_in(tier.path()) {
        std::fs::remove_file(tier.path().join(f)).unwrap();
    }
    driver.reset();
    let r = a.get(&url);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, blob);
    assert_eq!(
        reads(&driver, &paths::blob_data(&d)),
        1,
        "read from storage"
    );
    assert!(
        wait_until(Duration::from_secs(10), || fills(&a) == 2),
        "kept again"
    );
    assert_eq!(metric(&a, "berth_registry_disk_cache_entries"), 1);
}

#[test]
fn a_second_replica_on_the_same_directory_runs_without_the_tier() {
    let driver = MemoryDriver::default();
    let tier = tempfile::tempdir().unwrap();
    let a = TestRegistry::serve(driver.clone(), with_disk_tier(tier.path()));
    let b = TestRegistry::serve(driver.clone(), with_disk_tier(tier.path()));
    let with_tier = [&a, &b]
        .iter()
        .filter(|r| r.get("/metrics").text().contains("disk_cache"))
        .count();
    assert_eq!(with_tier, 1, "one process per directory");
    let blob = random_bytes(9, 1 << 20);
    let d = b.push_blob("tier/two", &blob);
    for r in [&a, &b, &a, &b] {
        assert_eq!(r.get(&format!("/v2/tier/two/blobs/{d}")).body, blob);
    }
}

/// A collection run through [`Registry::collect`] empties the tier: the file of a blob it
/// deleted is gone, and so is every other (they may hold data it deleted).
#[test]
fn a_collection_through_the_registry_empties_the_tier() {
    let driver = MemoryDriver::object_store_like();
    let plain = {
        let mut c = Config::default();
        c.storage.min_free_bytes = 0;
        c
    };
    let r = TestRegistry::serve(driver.clone(), plain);
    let blob = random_bytes(10, 1 << 20);
    let d: Digest = r.push_blob("tier/gc", &blob);
    let tier = tempfile::tempdir().unwrap();
    let reg = Registry::new(driver.clone())
        .with_disk_cache(DiskCache::open(tier.path(), 64 << 20).unwrap());
    let rt = rt();
    let read = |reg: &Registry<MemoryDriver>| {
        rt.block_on(async {
            let len = blob.len() as u64;
            let mut stream = reg
                .repository("tier/gc")
                .blobs()
                .stream(&d, 0, len, 256 * 1024)
                .await?;
            let mut v = Vec::new();
            while let Some(chunk) = stream.next().await {
                v.extend_from_slice(&chunk.unwrap());
            }
            Ok::<_, berth_registry::storage::StorageError>(v)
        })
    };
    assert_eq!(read(&reg).unwrap(), blob);
    let disk = reg.disk_cache().unwrap().stats();
    assert!(wait_until(Duration::from_secs(10), || disk.fills() == 1));
    assert_eq!(files_in(tier.path()).len(), 1);

    assert_eq!(
        r.req("DELETE", &format!("/v2/tier/gc/blobs/{d}"), &[], b"")
            .status,
        202
    );
    rt.block_on(write_last_referenced(
        &driver,
        &d,
        SystemTime::now() - Duration::from_secs(7200),
    ))
    .unwrap();
    let opts = GcOptions {
        grace: Duration::from_secs(60),
        upload_expiry: Duration::from_secs(3600),
        dry_run: false,
        lease: Default::default(),
    };
    let report = rt.block_on(reg.collect(&opts)).unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!((disk.entries(), disk.bytes()), (0, 0));
    assert!(files_in(tier.path()).is_empty());
    assert!(read(&reg).is_err(), "gone from storage and from the tier");
}
