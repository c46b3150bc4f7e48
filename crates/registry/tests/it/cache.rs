//! The storage layer's read cache (`storage/cache.rs`): repeated reads of blob data make no
//! driver call, its bounds hold, and — the point of caching only content-addressed data —
//! replicas sharing one driver still behave as one registry: a tag moved or a manifest or
//! blob deleted through one is seen through another at once, warm cache or not.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_oci::Digest;
use berth_registry::Config;
use berth_registry::gc::GcOptions;
use berth_registry::storage::memory::MemoryDriver;
use berth_registry::storage::{
    BoxReader, CacheLimits, DResult, Driver, FileInfo, Registry, paths, write_last_referenced,
};
use bytes::Bytes;

use crate::{TestRegistry, random_bytes};

const CONFIG_JSON: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn config_with(limits: CacheLimits) -> Config {
    let mut c = Config::default();
    c.storage.min_free_bytes = 0;
    c.storage.cache = limits.into();
    c
}

/// The in-memory driver, recording every call as (operation, path).
#[derive(Clone, Default)]
pub(crate) struct CountingDriver {
    inner: MemoryDriver,
    pub(crate) calls: Arc<Mutex<Vec<(&'static str, String)>>>,
}

impl std::fmt::Debug for CountingDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingDriver").finish_non_exhaustive()
    }
}

impl CountingDriver {
    fn record(&self, op: &'static str, path: &str) {
        self.calls.lock().unwrap().push((op, path.to_owned()));
    }

    pub(crate) fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Calls of any operation on `path`.
    pub(crate) fn on(&self, path: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p == path)
            .count()
    }
}

impl Driver for CountingDriver {
    type Writer = <MemoryDriver as Driver>::Writer;
    async fn get_content(&self, path: &str) -> DResult<Bytes> {
        self.record("get", path);
        self.inner.get_content(path).await
    }
    async fn put_content(&self, path: &str, data: Bytes) -> DResult<()> {
        self.record("put", path);
        self.inner.put_content(path, data).await
    }
    async fn put_new(&self, path: &str, data: Bytes) -> DResult<()> {
        self.record("put_new", path);
        self.inner.put_new(path, data).await
    }
    async fn reader(&self, path: &str, offset: u64) -> DResult<(BoxReader, u64)> {
        self.record("reader", path);
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &str) -> DResult<Self::Writer> {
        self.record("writer", path);
        self.inner.writer(path).await
    }
    async fn writer_at(&self, path: &str, size: u64) -> DResult<Self::Writer> {
        self.record("writer_at", path);
        self.inner.writer_at(path, size).await
    }
    async fn stat_stored(&self, path: &str) -> DResult<FileInfo> {
        self.record("stat_stored", path);
        self.inner.stat_stored(path).await
    }
    async fn list_files(&self, path: &str) -> DResult<Vec<(String, FileInfo)>> {
        self.record("list_files", path);
        self.inner.list_files(path).await
    }
    async fn stat(&self, path: &str) -> DResult<FileInfo> {
        self.record("stat", path);
        self.inner.stat(path).await
    }
    async fn list(&self, path: &str) -> DResult<Vec<String>> {
        self.record("list", path);
        self.inner.list(path).await
    }
    async fn move_to(&self, from: &str, to: &str) -> DResult<()> {
        self.record("move", from);
        self.inner.move_to(from, to).await
    }
    async fn delete(&self, path: &str) -> DResult<()> {
        self.record("delete", path);
        self.inner.delete(path).await
    }
}

/// The value of one sample in `/metrics` (`name` includes any labels).
pub(crate) fn metric(r: &TestRegistry, name: &str) -> u64 {
    let text = r.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// Driver calls during the second of two identical pulls (manifest GET by tag, layer
/// HEAD, config GET whole and ranged) of a pushed image.
#[derive(Debug, PartialEq, Eq)]
struct PullCalls {
    /// On the blobs' data.
    data: usize,
    /// On the tag.
    tag: usize,
    /// On the manifest's revision record.
    revision: usize,
    /// On the layer and config links.
    layer_links: usize,
}

fn second_pull_calls(limits: CacheLimits) -> PullCalls {
    let driver = CountingDriver::default();
    let r = TestRegistry::serve(driver.clone(), config_with(limits));
    let layer = random_bytes(11, 3000);
    let (md, manifest) = r.push_image("cache/a", "v1", &[&layer]);
    let (ld, cd) = (Digest::sha256_of(&layer), Digest::sha256_of(CONFIG_JSON));
    let mut calls = None;
    for round in 0..2 {
        driver.reset();
        let m = r.get("/v2/cache/a/manifests/v1");
        assert_eq!((m.status, m.body.as_slice()), (200, manifest.as_slice()));
        let h = r.req("HEAD", &format!("/v2/cache/a/blobs/{ld}"), &[], b"");
        assert_eq!(h.status, 200);
        assert_eq!(h.header("content-length"), Some("3000"));
        let c = r.get(&format!("/v2/cache/a/blobs/{cd}"));
        assert_eq!((c.status, c.body.as_slice()), (200, CONFIG_JSON));
        let ranged = r.req(
            "GET",
            &format!("/v2/cache/a/blobs/{cd}"),
            &[("range", "bytes=5-9")],
            b"",
        );
        assert_eq!(
            (ranged.status, ranged.body.as_slice()),
            (206, &CONFIG_JSON[5..10])
        );
        if round == 1 {
            calls = Some(PullCalls {
                data: [&md, &ld, &cd]
                    .iter()
                    .map(|d| driver.on(&paths::blob_data(d)))
                    .sum(),
                tag: driver.on(&paths::tag_link("cache/a", "v1")),
                revision: driver.on(&paths::revision_link("cache/a", &md)),
                layer_links: driver.on(&paths::layer_link("cache/a", &ld))
                    + driver.on(&paths::layer_link("cache/a", &cd)),
            });
        }
    }
    if limits != CacheLimits::OFF {
        assert!(
            metric(
                &r,
                "berth_registry_storage_cache_hits_total{kind=\"content\"}"
            ) >= 3
        );
        assert!(metric(&r, "berth_registry_storage_cache_hits_total{kind=\"size\"}") >= 3);
        assert!(metric(&r, "berth_registry_storage_cache_bytes") > 0);
    }
    calls.expect("two rounds")
}

/// A second manifest GET by tag, blob HEAD and config GET (whole and ranged) make no
/// driver call for the blob data — and still read the tag and each layer link from
/// storage every time. The tag stands for the manifest's revision record (a delete removes
/// tags first), so a warm GET by tag is one storage read. With the cache off the same
/// pulls read the data and the revision (so the counting is real).
#[test]
fn second_pull_reads_no_blob_data_but_every_link() {
    let warm = second_pull_calls(CacheLimits::default());
    assert_eq!(
        warm,
        PullCalls {
            data: 0,
            tag: 1,
            revision: 0,
            layer_links: 3
        },
        "a warm pull"
    );
    let off = second_pull_calls(CacheLimits::OFF);
    assert!(
        off.data >= 4,
        "without the cache the data is read ({} reads)",
        off.data
    );
    assert_eq!(
        (off.tag, off.revision, off.layer_links),
        (1, 1, 3),
        "a pull with the cache off"
    );
}

/// With a warm cache, a GET or HEAD by digest still reads the revision record (only a tag
/// can stand for it), and so does a GET by tag of a manifest that declares no `mediaType`
/// (its media type was the request's Content-Type, kept only in the record).
#[test]
fn the_revision_is_read_by_digest_and_for_manifests_without_a_media_type() {
    let driver = CountingDriver::default();
    let r = TestRegistry::serve(driver.clone(), config_with(CacheLimits::default()));
    let layer = random_bytes(12, 1000);
    let (md, manifest) = r.push_image("cache/d", "v1", &[&layer]);
    for _ in 0..2 {
        for method in ["GET", "HEAD"] {
            driver.reset();
            let got = r.req(method, &format!("/v2/cache/d/manifests/{md}"), &[], b"");
            assert_eq!(got.status, 200, "{method} by digest");
            assert_eq!(
                driver.on(&paths::revision_link("cache/d", &md)),
                1,
                "{method} by digest"
            );
        }
    }
    // the same manifest without its mediaType, pushed with the Content-Type alone
    let mut value: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    value.as_object_mut().unwrap().remove("mediaType");
    let bare = serde_json::to_vec(&value).unwrap();
    let bd = Digest::sha256_of(&bare);
    let put = r.req(
        "PUT",
        "/v2/cache/d/manifests/bare",
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        &bare,
    );
    assert_eq!(put.status, 201, "{}", put.text());
    for _ in 0..2 {
        driver.reset();
        let got = r.get("/v2/cache/d/manifests/bare");
        assert_eq!((got.status, got.body == bare), (200, true));
        assert_eq!(
            got.header("content-type"),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(driver.on(&paths::revision_link("cache/d", &bd)), 1);
    }
}

/// Under many distinct blobs, pulled whole and HEADed, the cache's bytes and entries never
/// exceed its limits (read from `/metrics` after every pull) and it keeps working.
#[test]
fn bounds_hold_under_many_distinct_blobs() {
    let limits = CacheLimits {
        max_bytes: 8 * 1024,
        max_entries: 6,
        max_entry_bytes: 2048,
    };
    let r = TestRegistry::serve(MemoryDriver::new(), config_with(limits));
    let mut max_seen = (0, 0);
    for i in 0..40u64 {
        let data = random_bytes(100 + i, 100 + (i as usize * 97) % 2500);
        let d = r.push_blob("cache/bounds", &data);
        for _ in 0..2 {
            let got = r.get(&format!("/v2/cache/bounds/blobs/{d}"));
            assert_eq!((got.status, got.body == data), (200, true));
        }
        let bytes = metric(&r, "berth_registry_storage_cache_bytes");
        let entries = metric(&r, "berth_registry_storage_cache_entries");
        assert!(bytes <= limits.max_bytes, "{bytes} bytes after blob {i}");
        assert!(
            entries <= limits.max_entries as u64,
            "{entries} entries after blob {i}"
        );
        max_seen = (max_seen.0.max(bytes), max_seen.1.max(entries));
    }
    // the limits were reached, not avoided by caching nothing
    assert_eq!(max_seen.1, limits.max_entries as u64, "{max_seen:?}");
    assert!(max_seen.0 > limits.max_bytes / 2, "{max_seen:?}");
}

/// Content longer than `max_entry_bytes` is read from storage on every GET; content of
/// exactly that length is read once; the long blob's size is still cached for HEADs.
#[test]
fn content_over_max_entry_bytes_is_not_cached() {
    let limits = CacheLimits {
        max_entry_bytes: 1024,
        ..CacheLimits::default()
    };
    let driver = CountingDriver::default();
    let r = TestRegistry::serve(driver.clone(), config_with(limits));
    let (small, big) = (random_bytes(1, 1024), random_bytes(2, 1025));
    let (sd, bd) = (
        r.push_blob("cache/big", &small),
        r.push_blob("cache/big", &big),
    );
    driver.reset();
    for _ in 0..3 {
        assert_eq!(r.get(&format!("/v2/cache/big/blobs/{sd}")).body, small);
        assert_eq!(r.get(&format!("/v2/cache/big/blobs/{bd}")).body, big);
    }
    assert_eq!(driver.on(&paths::blob_data(&sd)), 2, "stat + read once");
    let big_reads = driver.on(&paths::blob_data(&bd));
    assert!(
        big_reads >= 3,
        "the big blob must be read each time ({big_reads})"
    );
    driver.reset();
    let h = r.req("HEAD", &format!("/v2/cache/big/blobs/{bd}"), &[], b"");
    assert_eq!(h.header("content-length"), Some("1025"));
    assert_eq!(driver.on(&paths::blob_data(&bd)), 0, "its size is cached");
}

/// A blob GET reads a blob whole into the cache only up to `GET_FILL_MAX` (the size of a
/// streamed response's buffer), whatever `max_entry_bytes` allows: a larger one is
/// streamed from storage on every GET, so concurrent GETs of distinct blobs hold no more
/// memory than without the cache.
#[test]
fn a_blob_get_fills_the_cache_only_up_to_get_fill_max() {
    let fill = berth_registry::storage::blobs::GET_FILL_MAX as usize;
    let driver = CountingDriver::default();
    let r = TestRegistry::serve(driver.clone(), config_with(CacheLimits::default()));
    let (at, over) = (random_bytes(3, fill), random_bytes(4, fill + 1));
    let (ad, od) = (
        r.push_blob("cache/fill", &at),
        r.push_blob("cache/fill", &over),
    );
    driver.reset();
    for _ in 0..3 {
        assert!(r.get(&format!("/v2/cache/fill/blobs/{ad}")).body == at);
        assert!(r.get(&format!("/v2/cache/fill/blobs/{od}")).body == over);
    }
    assert_eq!(driver.on(&paths::blob_data(&ad)), 2, "stat + read once");
    assert!(driver.on(&paths::blob_data(&od)) >= 3, "streamed each time");
}

/// Two replicas (two servers over one memory driver, then over one filesystem root).
fn replica_pairs(config: &Config) -> Vec<(TestRegistry, TestRegistry, Option<tempfile::TempDir>)> {
    let driver = MemoryDriver::object_store_like();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("registry");
    vec![
        (
            TestRegistry::serve(driver.clone(), config.clone()),
            TestRegistry::serve(driver, config.clone()),
            None,
        ),
        (
            TestRegistry::on_root(&root, config.clone()),
            TestRegistry::on_root(&root, config.clone()),
            Some(dir),
        ),
    ]
}

/// A tag moved through one replica is served by the other at once, though the other has
/// the old manifest warm in its cache.
#[test]
fn tag_moved_through_one_replica_is_seen_at_once_by_another() {
    for (a, b, _dir) in replica_pairs(&config_with(CacheLimits::default())) {
        let (m1, body1) = a.push_image("cache/tags", "latest", &[b"layer one"]);
        for _ in 0..2 {
            let got = b.get("/v2/cache/tags/manifests/latest");
            assert_eq!((got.status, &got.body), (200, &body1));
        }
        let (m2, body2) = a.push_image("cache/tags", "latest", &[b"layer two"]);
        assert_ne!(m1, m2);
        let got = b.get("/v2/cache/tags/manifests/latest");
        assert_eq!(got.header("docker-content-digest"), Some(m2.as_ref()));
        assert_eq!(got.body, body2);
        // and back, moved through the other replica
        let put = b.req(
            "PUT",
            "/v2/cache/tags/manifests/latest",
            &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            &body1,
        );
        assert_eq!(put.status, 201, "{}", put.text());
        let got = a.get("/v2/cache/tags/manifests/latest");
        assert_eq!(got.header("docker-content-digest"), Some(m1.as_ref()));
    }
}

/// A manifest deleted through one replica is 404 through the other at once, by digest and
/// by tag, though its bytes are warm in that replica's cache; a blob deleted (unlinked)
/// through one is 404 to HEAD and GET through the other likewise.
#[test]
fn delete_through_one_replica_is_404_at_once_on_another() {
    for (a, b, _dir) in replica_pairs(&config_with(CacheLimits::default())) {
        let layer = random_bytes(5, 2000);
        let (md, _) = a.push_image("cache/del", "v1", &[&layer]);
        let ld = Digest::sha256_of(&layer);
        let by_digest = format!("/v2/cache/del/manifests/{md}");
        let blob = format!("/v2/cache/del/blobs/{ld}");
        for _ in 0..2 {
            assert_eq!(b.get(&by_digest).status, 200);
            assert_eq!(b.get("/v2/cache/del/manifests/v1").status, 200);
            assert_eq!(b.req("HEAD", &blob, &[], b"").status, 200);
            assert_eq!(b.get(&blob).body, layer);
        }
        assert_eq!(a.req("DELETE", &by_digest, &[], b"").status, 202);
        let gone = b.get(&by_digest);
        assert_eq!(
            (gone.status, gone.code().as_str()),
            (404, "MANIFEST_UNKNOWN")
        );
        assert_eq!(b.get("/v2/cache/del/manifests/v1").status, 404);
        assert_eq!(b.req("HEAD", &by_digest, &[], b"").status, 404);

        assert_eq!(a.req("DELETE", &blob, &[], b"").status, 202);
        assert_eq!(b.req("HEAD", &blob, &[], b"").status, 404);
        let gone = b.get(&blob);
        assert_eq!((gone.status, gone.code().as_str()), (404, "BLOB_UNKNOWN"));
    }
}

/// Blob data removed under a replica's warm cache by someone else (another replica's
/// collector, which sweeps the data before the links to it): the manifest push that would
/// reference it asks storage, not the cache, and is refused cleanly; the stale entry is
/// evicted, so the client's next HEAD says 404 and its re-upload and push succeed. (Without
/// the eviction the HEAD would keep answering 200 and the client would never re-upload.)
#[test]
fn data_removed_under_a_warm_cache_is_refused_then_evicted() {
    let driver = MemoryDriver::object_store_like();
    let r = TestRegistry::serve(driver.clone(), config_with(CacheLimits::default()));
    let layer = random_bytes(9, 1500);
    let cd = r.push_blob("cache/gone", CONFIG_JSON);
    let ld = r.push_blob("cache/gone", &layer);
    let head = format!("/v2/cache/gone/blobs/{ld}");
    assert_eq!(r.get(&head).body, layer); // size and bytes now cached
    rt().block_on(driver.delete(&paths::blob_data(&ld)))
        .unwrap();

    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": cd.to_string(), "size": CONFIG_JSON.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                     "digest": ld.to_string(), "size": layer.len() }],
    }))
    .unwrap();
    let put = |r: &TestRegistry| {
        r.req(
            "PUT",
            "/v2/cache/gone/manifests/v1",
            &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            &manifest,
        )
    };
    let refused = put(&r);
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN"),
        "a push over content that is gone was accepted"
    );
    assert_eq!(
        r.req("HEAD", &head, &[], b"").status,
        404,
        "stale entry kept"
    );
    assert_eq!(r.get(&head).status, 404);
    assert_eq!(r.push_blob("cache/gone", &layer), ld);
    assert_eq!(put(&r).status, 201);
    assert_eq!(r.get(&head).body, layer);
}

/// A collection run through [`Registry::collect`] empties the cache: a blob it deleted is
/// no longer reported by a registry whose cache had its size.
#[test]
fn collect_through_the_registry_evicts_what_it_deleted() {
    let driver = MemoryDriver::object_store_like();
    let r = TestRegistry::serve(driver.clone(), config_with(CacheLimits::default()));
    let d = r.push_blob("cache/gc", b"an unreferenced blob");
    assert_eq!(
        r.req("DELETE", &format!("/v2/cache/gc/blobs/{d}"), &[], b"")
            .status,
        202
    );
    let rt = rt();
    rt.block_on(write_last_referenced(
        &driver,
        &d,
        SystemTime::now() - Duration::from_secs(7200),
    ))
    .unwrap();
    let reg = Registry::new(driver.clone());
    assert_eq!(rt.block_on(reg.blob_size(&d)).unwrap(), Some(20));
    assert_eq!(reg.cache().stats().entries(), 1);
    let opts = GcOptions {
        grace: Duration::from_secs(60),
        upload_expiry: Duration::from_secs(3600),
        dry_run: false,
        lease: Default::default(),
    };
    let report = rt.block_on(reg.collect(&opts)).unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!(reg.cache().stats().entries(), 0);
    assert_eq!(rt.block_on(reg.blob_size(&d)).unwrap(), None);
}
