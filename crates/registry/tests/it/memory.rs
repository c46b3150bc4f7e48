//! The whole registry over the in-memory driver — the proof that the storage layer needs
//! nothing POSIX — and garbage collection over an object-store-like driver (moves are a
//! copy and a delete, no modification times), concurrent pushes included. The races are
//! generic over the driver (`gc_during_pushes_keeps_every_accepted_manifest`,
//! `push_between_clock_read_and_move_keeps_the_blob`, `push_after_move_is_refused_cleanly`)
//! and run here over the memory and filesystem drivers; another driver's tests in this
//! binary call them with theirs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use berth_oci::Digest;
use berth_registry::Config;
use berth_registry::gc::{GcError, GcOptions, GcReport, collect};
use berth_registry::storage::fs::FsDriver;
use berth_registry::storage::lease::LeaseError;
use berth_registry::storage::memory::MemoryDriver;
use berth_registry::storage::{Driver, paths, write_last_referenced};
use bytes::Bytes;
use serde_json::json;

use crate::{TestRegistry, random_bytes};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn try_gc<D: Driver>(driver: &D, grace_secs: u64) -> Result<GcReport, GcError> {
    let opts = GcOptions {
        grace: Duration::from_secs(grace_secs),
        upload_expiry: Duration::from_secs(3600),
        dry_run: false,
        lease: Default::default(),
    };
    rt().block_on(collect(driver, &opts))
}

fn gc<D: Driver>(driver: &D, grace_secs: u64) -> GcReport {
    try_gc(driver, grace_secs).unwrap()
}

fn age_blob<D: Driver>(driver: &D, d: &Digest, by: Duration) {
    rt().block_on(write_last_referenced(driver, d, SystemTime::now() - by))
        .unwrap();
}

fn memory_registry(driver: &MemoryDriver) -> TestRegistry {
    registry_over(driver)
}

/// The whole registry served over (a clone of) `driver`, with no free-space reserve.
pub(crate) fn registry_over<D: Driver + Clone>(driver: &D) -> TestRegistry {
    let mut config = Config::default();
    config.storage.min_free_bytes = 0;
    TestRegistry::serve(driver.clone(), config)
}

/// The conformance suite is exported (feature `driver-testsuite`) for drivers in other
/// crates: run it from here as one would, over both drivers and over the test's own
/// hooking driver (a third implementation, with no hook set).
#[test]
fn exported_driver_testsuite_runs_from_outside_the_crate() {
    use berth_registry::storage::driver::testsuite::run_all;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(run_all(&FsDriver::new(dir.path())));
    rt.block_on(run_all(&MemoryDriver::object_store_like()));
    rt.block_on(run_all(&HookDriver {
        inner: MemoryDriver::new(),
        trigger: ("none", String::new()),
        hook: Arc::new(Mutex::new(None)),
    }));
}

#[test]
fn the_whole_api_over_the_memory_driver() {
    for driver in [MemoryDriver::new(), MemoryDriver::object_store_like()] {
        let r = memory_registry(&driver);
        let (manifest, bytes) = r.push_image("mem/app", "v1", &[b"layer one", b"layer two"]);
        // pull by tag and digest, byte-exact
        let got = r.get("/v2/mem/app/manifests/v1");
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.body, bytes);
        assert_eq!(
            r.get(&format!("/v2/mem/app/manifests/{manifest}")).body,
            bytes
        );
        // a chunked upload, its status, and a range read of the result
        let data = random_bytes(5, 300_000);
        let loc = r
            .req("POST", "/v2/mem/app/blobs/uploads/", &[], b"")
            .header("location")
            .unwrap()
            .to_owned();
        let p = r.req(
            "PATCH",
            &loc,
            &[("content-range", "0-99999")],
            &data[..100_000],
        );
        assert_eq!(p.status, 202, "{}", p.text());
        let st = r.get(&loc);
        assert_eq!(st.header("range"), Some("0-99999"));
        let d = Digest::sha256_of(&data);
        let done = r.req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-range", "100000-299999")],
            &data[100_000..],
        );
        assert_eq!(done.status, 201, "{}", done.text());
        let part = r.req(
            "GET",
            &format!("/v2/mem/app/blobs/{d}"),
            &[("range", "bytes=10-19")],
            b"",
        );
        assert_eq!(part.status, 206);
        assert_eq!(part.body, &data[10..20]);
        // a wrong digest is refused and leaves no blob
        let bad = r.push_blob_status("mem/app", b"some bytes", &Digest::sha256_of(b"other"));
        assert_eq!(bad, 400);
        // mount into another repository
        let m = r.req(
            "POST",
            &format!("/v2/mem/other/blobs/uploads/?mount={d}&from=mem/app"),
            &[],
            b"",
        );
        assert_eq!(m.status, 201, "{}", m.text());
        assert_eq!(r.get(&format!("/v2/mem/other/blobs/{d}")).body, data);
        // tags, catalog, referrers, deletes
        assert_eq!(r.get("/v2/mem/app/tags/list").json()["tags"], json!(["v1"]));
        assert_eq!(
            r.get("/v2/_catalog").json()["repositories"],
            json!(["mem/app", "mem/other"])
        );
        let refs = r.get(&format!("/v2/mem/app/referrers/{manifest}")).json();
        assert_eq!(refs["manifests"], json!([]));
        let del = r.req(
            "DELETE",
            &format!("/v2/mem/app/manifests/{manifest}"),
            &[],
            b"",
        );
        assert_eq!(del.status, 202);
        assert_eq!(r.get("/v2/mem/app/manifests/v1").status, 404);
    }
}

#[test]
fn gc_over_an_object_store_like_driver_reads_the_clock_not_mtimes() {
    let driver = MemoryDriver::object_store_like();
    let r = memory_registry(&driver);
    let (manifest, _) = r.push_image("os/app", "v1", &[b"kept layer"]);
    let layer = Digest::sha256_of(b"kept layer");
    let old_orphan = r.push_blob("os/app", &random_bytes(21, 5000));
    let young_orphan = r.push_blob("os/app", &random_bytes(22, 5000));
    for d in [&layer, &manifest, &old_orphan] {
        age_blob(&driver, d, Duration::from_secs(7200));
    }
    // an upload abandoned two hours ago: no modification times here, so the collector goes
    // by the start its marker records
    let loc = r
        .req("POST", "/v2/os/app/blobs/uploads/", &[], b"")
        .header("location")
        .unwrap()
        .to_owned();
    assert_eq!(r.req("PATCH", &loc, &[], b"half").status, 202);
    let id = loc.rsplit('/').next().unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let ms = two_hours_ago
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    rt().block_on(driver.put_content(
        &paths::upload_started("os/app", id),
        Bytes::from(ms.to_string()),
    ))
    .unwrap();

    let report = gc(&driver, 3600);
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!(report.uploads_deleted, 1, "{report:?}");
    assert_eq!(r.get(&format!("/v2/os/app/blobs/{old_orphan}")).status, 404);
    assert_eq!(
        r.get(&format!("/v2/os/app/blobs/{young_orphan}")).status,
        200
    );
    assert_eq!(r.get(&format!("/v2/os/app/blobs/{layer}")).status, 200);
    assert_eq!(r.get("/v2/os/app/manifests/v1").status, 200);
    assert_eq!(r.get(&loc).status, 404);
    // nothing of the collected blob is left, its clock included
    let left = rt().block_on(driver.stat(&paths::blob_last_referenced(&old_orphan)));
    assert!(left.unwrap_err().is_not_found());

    // re-pushing an old blob refreshes its clock: it survives
    age_blob(&driver, &young_orphan, Duration::from_secs(7200));
    assert_eq!(r.push_blob("os/app", &random_bytes(22, 5000)), young_orphan);
    let report = gc(&driver, 60);
    assert_eq!(report.blobs_deleted, 0, "{report:?}");
    assert_eq!(
        r.get(&format!("/v2/os/app/blobs/{young_orphan}")).status,
        200
    );
}

/// One image with unique content: blobs, their clocks dated two hours back (as if pushed
/// long ago, so a concurrent collection has candidates), an aged orphan, then the manifest.
/// `Err` when the registry refused a step cleanly (what a racing collection may cause).
fn push_old_image<D: Driver>(
    r: &TestRegistry,
    driver: &D,
    repo: &str,
    seed: u64,
) -> Result<(Digest, Vec<u8>, Vec<Digest>), String> {
    let layers = [
        random_bytes(seed * 3, 20_000),
        random_bytes(seed * 3 + 1, 3000),
    ];
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let mut blobs = Vec::new();
    for data in [&config[..], &layers[0], &layers[1]] {
        let d = Digest::sha256_of(data);
        let s = r.push_blob_status(repo, data, &d);
        if s != 201 {
            return Err(format!("blob {d}: {s}"));
        }
        blobs.push(d);
    }
    let orphan = random_bytes(seed * 3 + 2, 1000);
    let od = Digest::sha256_of(&orphan);
    if r.push_blob_status(repo, &orphan, &od) != 201 {
        return Err("orphan".into());
    }
    for d in blobs.iter().chain([&od]) {
        age_blob(driver, d, Duration::from_secs(7200));
    }
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": blobs[0].to_string(),
            "size": config.len(),
        },
        "layers": [
            { "mediaType": "application/vnd.oci.image.layer.v1.tar",
              "digest": blobs[1].to_string(), "size": layers[0].len() },
            { "mediaType": "application/vnd.oci.image.layer.v1.tar",
              "digest": blobs[2].to_string(), "size": layers[1].len() },
        ],
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    let put = r.req(
        "PUT",
        &format!("/v2/{repo}/manifests/t{seed}"),
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        &bytes,
    );
    if put.status != 201 {
        return Err(format!("manifest: {} {}", put.status, put.text()));
    }
    Ok((Digest::sha256_of(&bytes), bytes, blobs))
}

/// The race the clock exists for, over a driver where a move is copy + delete and nothing
/// has an mtime: collections at the minimum grace run while three threads push images
/// whose blobs are "old". Every accepted manifest stays whole.
#[test]
fn gc_during_pushes_over_copy_delete_moves_keeps_every_accepted_manifest() {
    gc_during_pushes_keeps_every_accepted_manifest(MemoryDriver::object_store_like());
}

#[test]
fn gc_during_pushes_over_a_filesystem_root_keeps_every_accepted_manifest() {
    let dir = tempfile::tempdir().unwrap();
    gc_during_pushes_keeps_every_accepted_manifest(FsDriver::new(dir.path()));
}

/// The race over any driver (the S3 driver's tests call it too): collections at the
/// minimum grace, from two collectors at once (the lease lets one run, the other is
/// refused busy), while three threads push images whose blobs are "old". Every accepted
/// manifest stays whole, before and after one more collection.
#[expect(
    clippy::print_stderr,
    reason = "a test helper: the counts show how hard the race was run"
)]
pub(crate) fn gc_during_pushes_keeps_every_accepted_manifest<D: Driver + Clone>(driver: D) {
    let r = Arc::new(registry_over(&driver));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Accepted::default());
    let pushed = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _guard = StopOnDrop(stop.clone());
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let (r, driver, stop, accepted, pushed, refused) = (
            r.clone(),
            driver.clone(),
            stop.clone(),
            accepted.clone(),
            pushed.clone(),
            refused.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let repo = format!("race/p{t}");
            for i in 0..500u64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match push_old_image(&r, &driver, &repo, 1000 * (t + 1) + i) {
                    Ok(img) => {
                        pushed.lock().unwrap().push((repo.clone(), img));
                        accepted.add();
                    }
                    Err(_) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    // a second collector, as on another replica: runs or is refused busy — or, when the
    // other took the lease over, stops with `Lost` and deletes nothing further, which the
    // content checks below hold it to. Nothing else. (A takeover needs a holder that did not
    // renew for the lease's whole lifetime: the in-memory driver never suspends, so on a
    // current-thread runtime the renewal task cannot run until the collection awaits
    // something real; a collection outlasting 60 s on a two-core CI machine at many times
    // its load did that once. Drivers doing I/O suspend at every call.)
    let busy = Arc::new(AtomicUsize::new(0));
    let lost_leases = Arc::new(AtomicUsize::new(0));
    let rival = {
        let (driver, stop, busy, lost_leases) = (
            driver.clone(),
            stop.clone(),
            busy.clone(),
            lost_leases.clone(),
        );
        std::thread::spawn(move || {
            let mut deleted = 0;
            while !stop.load(Ordering::SeqCst) {
                match try_gc(&driver, 60) {
                    Ok(report) => deleted += report.blobs_deleted,
                    Err(GcError::Lease(e)) if e.is_busy() => {
                        busy.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(GcError::Lease(LeaseError::Lost { .. })) => {
                        lost_leases.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("a concurrent collection failed: {e:?}"),
                }
            }
            deleted
        })
    };
    let mut deleted = 0;
    for _ in 0..15 {
        let target = accepted.get() + 2;
        assert!(
            accepted.wait_for(target, Duration::from_secs(60)),
            "the pushers stalled"
        );
        deleted += match try_gc(&driver, 60) {
            Ok(report) => report.blobs_deleted,
            Err(GcError::Lease(e)) if e.is_busy() => {
                busy.fetch_add(1, Ordering::SeqCst);
                0
            }
            Err(GcError::Lease(LeaseError::Lost { .. })) => {
                lost_leases.fetch_add(1, Ordering::SeqCst);
                0
            }
            Err(e) => panic!("a collection failed: {e:?}"),
        };
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    deleted += rival.join().unwrap();
    assert!(
        deleted > 0,
        "the collections swept nothing, so they never raced a push"
    );
    let check = || {
        let mut lost = Vec::new();
        for (repo, (digest, bytes, blobs)) in pushed.lock().unwrap().iter() {
            let m = r.get(&format!("/v2/{repo}/manifests/{digest}"));
            if m.status != 200 || &m.body != bytes {
                lost.push(format!("manifest {digest} of {repo}: {}", m.status));
            }
            for d in blobs {
                let b = r.get(&format!("/v2/{repo}/blobs/{d}"));
                if b.status != 200 || Digest::sha256_of(&b.body) != *d {
                    lost.push(format!("blob {d} of {repo}: {}", b.status));
                }
            }
        }
        lost
    };
    let lost = check();
    assert!(lost.is_empty(), "accepted manifests lost content: {lost:?}");
    gc(&driver, 60);
    let lost = check();
    assert!(
        r.get("/v2/").status == 200,
        "the registry stopped answering"
    );
    assert!(
        lost.is_empty(),
        "a collection after the pushes lost content: {lost:?}"
    );
    eprintln!(
        "{} images accepted, {} refused, {deleted} blobs collected, {} collections refused busy, {} stopped by a lost lease",
        accepted.get(),
        refused.load(Ordering::SeqCst),
        busy.load(Ordering::SeqCst),
        lost_leases.load(Ordering::SeqCst)
    );
}

/// Counts accepted pushes; the collector waits on it without polling.
#[derive(Default)]
struct Accepted {
    n: Mutex<usize>,
    more: Condvar,
}

impl Accepted {
    fn add(&self) {
        *self.n.lock().unwrap() += 1;
        self.more.notify_all();
    }

    fn get(&self) -> usize {
        *self.n.lock().unwrap()
    }

    /// Wait (bounded) until at least `target` pushes were accepted.
    fn wait_for(&self, target: usize, limit: Duration) -> bool {
        let g = self.n.lock().unwrap();
        let (g, _) = self
            .more
            .wait_timeout_while(g, limit, |n| *n < target)
            .unwrap();
        *g >= target
    }
}

/// A driver that runs `hook` once, right after the collector's first call on `trigger`
/// (`get` for a read of the path, `move` for a move from it): the push it runs lands at
/// exactly that point of a collection.
type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

#[derive(Clone)]
struct HookDriver<D> {
    inner: D,
    trigger: (&'static str, String),
    hook: Hook,
}

impl<D> HookDriver<D> {
    fn fire(&self, op: &str, path: &str) {
        if op == self.trigger.0 && path == self.trigger.1 {
            let hook = self.hook.lock().unwrap().take();
            if let Some(h) = hook {
                h();
            }
        }
    }
}

impl<D> std::fmt::Debug for HookDriver<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookDriver").finish_non_exhaustive()
    }
}

impl<D: Driver + Clone> Driver for HookDriver<D> {
    type Writer = D::Writer;
    async fn get_content(&self, path: &str) -> berth_registry::storage::DResult<Bytes> {
        let r = self.inner.get_content(path).await;
        self.fire("get", path);
        r
    }
    async fn put_content(&self, path: &str, data: Bytes) -> berth_registry::storage::DResult<()> {
        self.inner.put_content(path, data).await
    }
    async fn put_new(&self, path: &str, data: Bytes) -> berth_registry::storage::DResult<()> {
        self.inner.put_new(path, data).await
    }
    async fn reader(
        &self,
        path: &str,
        offset: u64,
    ) -> berth_registry::storage::DResult<(berth_registry::storage::BoxReader, u64)> {
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &str) -> berth_registry::storage::DResult<Self::Writer> {
        self.inner.writer(path).await
    }
    async fn writer_at(
        &self,
        path: &str,
        size: u64,
    ) -> berth_registry::storage::DResult<Self::Writer> {
        self.inner.writer_at(path, size).await
    }
    async fn stat_stored(
        &self,
        path: &str,
    ) -> berth_registry::storage::DResult<berth_registry::storage::FileInfo> {
        self.inner.stat_stored(path).await
    }
    async fn list_files(
        &self,
        path: &str,
    ) -> berth_registry::storage::DResult<Vec<(String, berth_registry::storage::FileInfo)>> {
        self.inner.list_files(path).await
    }
    async fn stat(
        &self,
        path: &str,
    ) -> berth_registry::storage::DResult<berth_registry::storage::FileInfo> {
        self.inner.stat(path).await
    }
    async fn list(&self, path: &str) -> berth_registry::storage::DResult<Vec<String>> {
        self.inner.list(path).await
    }
    async fn move_to(&self, from: &str, to: &str) -> berth_registry::storage::DResult<()> {
        let r = self.inner.move_to(from, to).await;
        self.fire("move", from);
        r
    }
    fn reference_min(&self) -> Option<u64> {
        self.inner.reference_min()
    }
    // a commit's adoption is its move of the upload's data (the hooks see it as one)
    async fn adopt(&self, from: &str, to: &str, size: u64) -> berth_registry::storage::DResult<()> {
        let r = self.inner.adopt(from, to, size).await;
        self.fire("move", from);
        r
    }
    async fn adopted_from(&self, path: &str) -> berth_registry::storage::DResult<Option<String>> {
        self.inner.adopted_from(path).await
    }
    async fn delete(&self, path: &str) -> berth_registry::storage::DResult<()> {
        self.inner.delete(path).await
    }
}

/// Blobs of an image pushed "two hours ago", without its manifest yet; returns the
/// manifest to push and the layer's digest.
fn stage_old_image<D: Driver>(r: &TestRegistry, driver: &D, repo: &str) -> (Vec<u8>, Digest) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = random_bytes(77, 4000);
    let (cd, ld) = (r.push_blob(repo, config), r.push_blob(repo, &layer));
    for d in [&cd, &ld] {
        age_blob(driver, d, Duration::from_secs(7200));
    }
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": cd.to_string(), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                     "digest": ld.to_string(), "size": layer.len() }],
    });
    (serde_json::to_vec(&m).unwrap(), ld)
}

fn gc_with_hook<D: Driver + Clone>(
    driver: &D,
    trigger: (&'static str, String),
    hook: impl FnOnce() + Send + 'static,
) -> GcReport {
    let hooked = HookDriver {
        inner: driver.clone(),
        trigger,
        hook: Arc::new(Mutex::new(Some(Box::new(hook)))),
    };
    let opts = GcOptions {
        grace: Duration::from_secs(60),
        upload_expiry: Duration::from_secs(3600),
        dry_run: false,
        lease: Default::default(),
    };
    let report = rt().block_on(collect(&hooked, &opts)).unwrap();
    assert!(hooked.hook.lock().unwrap().is_none(), "the hook never ran");
    report
}

/// A manifest push that marks an old blob after the collector read its clock but before it
/// moved the content aside succeeds, and the collector — reading the clock again — puts
/// the content back: the accepted manifest stays whole. (Fails if the sweep deletes
/// without re-reading the clock.)
#[test]
fn push_between_the_collectors_clock_read_and_its_move_keeps_the_blob() {
    push_between_clock_read_and_move_keeps_the_blob(MemoryDriver::object_store_like());
    let dir = tempfile::tempdir().unwrap();
    push_between_clock_read_and_move_keeps_the_blob(FsDriver::new(dir.path()));
}

/// [`push_between_the_collectors_clock_read_and_its_move_keeps_the_blob`] over any driver.
pub(crate) fn push_between_clock_read_and_move_keeps_the_blob<D: Driver + Clone>(driver: D) {
    let r = Arc::new(registry_over(&driver));
    let (manifest, layer) = stage_old_image(&r, &driver, "hook/a");
    let r2 = r.clone();
    let report = gc_with_hook(
        &driver,
        ("get", paths::blob_last_referenced(&layer)),
        move || {
            let put = r2.req(
                "PUT",
                "/v2/hook/a/manifests/v1",
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                &manifest,
            );
            assert_eq!(put.status, 201, "{}", put.text());
        },
    );
    assert_eq!(report.blobs_deleted, 0, "{report:?}");
    let got = r.get(&format!("/v2/hook/a/blobs/{layer}"));
    assert_eq!(got.status, 200, "the accepted manifest lost its layer");
    assert_eq!(Digest::sha256_of(&got.body), layer);
}

/// A manifest push that comes after the collector moved the content aside is refused
/// cleanly (MANIFEST_BLOB_UNKNOWN; the client re-uploads) — never accepted over content
/// about to disappear.
#[test]
fn push_after_the_collectors_move_is_refused_cleanly() {
    push_after_move_is_refused_cleanly(MemoryDriver::object_store_like());
    let dir = tempfile::tempdir().unwrap();
    push_after_move_is_refused_cleanly(FsDriver::new(dir.path()));
}

/// [`push_after_the_collectors_move_is_refused_cleanly`] over any driver.
pub(crate) fn push_after_move_is_refused_cleanly<D: Driver + Clone>(driver: D) {
    let r = Arc::new(registry_over(&driver));
    let (manifest, layer) = stage_old_image(&r, &driver, "hook/b");
    let r2 = r.clone();
    let status = Arc::new(Mutex::new(None));
    let s2 = status.clone();
    gc_with_hook(&driver, ("move", paths::blob_data(&layer)), move || {
        let put = r2.req(
            "PUT",
            "/v2/hook/b/manifests/v1",
            &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            &manifest,
        );
        *s2.lock().unwrap() = Some((put.status, put.code()));
    });
    let (st, code) = status.lock().unwrap().clone().unwrap();
    if st == 201 {
        // accepted: then it must be whole
        let got = r.get(&format!("/v2/hook/b/blobs/{layer}"));
        assert_eq!(got.status, 200, "accepted, then lost its layer");
    } else {
        assert_eq!((st, code.as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));
        assert_eq!(r.get("/v2/hook/b/manifests/v1").status, 404);
    }
}
