//! The garbage collector's lease (`storage/lease.rs`) over the in-memory and filesystem
//! drivers: one collection at a time, takeover of an expired or dead holder, a holder that
//! lost its lease stops before deleting, renewal, release. Each is a function generic over
//! the driver (an S3 driver's tests in this binary call them with theirs), run here over the
//! object-store-like memory driver and a filesystem root.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_oci::Digest;
use berth_registry::gc::{GcError, GcOptions, GcReport, collect, purge_uploads};
use berth_registry::storage::lease::{
    Clock, Lease, LeaseConfig, LeaseError, LeaseOwner, LeaseRecord,
};
use berth_registry::storage::{
    BoxReader, DResult, Driver, FileInfo, fs::FsDriver, memory::MemoryDriver, paths,
    write_last_referenced,
};
use bytes::Bytes;
use tokio::sync::Notify;

/// A driver that stops the first call to `list(gate_path)` until the test lets it go:
/// a collection held at a known point, deterministically.
#[derive(Clone)]
struct Gated<D> {
    inner: D,
    gate: Arc<Gate>,
}

struct Gate {
    path: String,
    armed: Mutex<bool>,
    reached: Notify,
    go: Notify,
}

impl<D: Driver + Clone> Gated<D> {
    fn new(inner: &D, path: String) -> Gated<D> {
        Gated {
            inner: inner.clone(),
            gate: Arc::new(Gate {
                path,
                armed: Mutex::new(true),
                reached: Notify::new(),
                go: Notify::new(),
            }),
        }
    }
}

impl<D: Driver + Clone> Driver for Gated<D> {
    type Writer = D::Writer;
    async fn get_content(&self, path: &str) -> DResult<Bytes> {
        self.inner.get_content(path).await
    }
    async fn put_content(&self, path: &str, data: Bytes) -> DResult<()> {
        self.inner.put_content(path, data).await
    }
    async fn put_new(&self, path: &str, data: Bytes) -> DResult<()> {
        self.inner.put_new(path, data).await
    }
    async fn reader(&self, path: &str, offset: u64) -> DResult<(BoxReader, u64)> {
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &str) -> DResult<Self::Writer> {
        self.inner.writer(path).await
    }
    async fn writer_at(&self, path: &str, size: u64) -> DResult<Self::Writer> {
        self.inner.writer_at(path, size).await
    }
    async fn stat_stored(&self, path: &str) -> DResult<FileInfo> {
        self.inner.stat_stored(path).await
    }
    async fn list_files(&self, path: &str) -> DResult<Vec<(String, FileInfo)>> {
        self.inner.list_files(path).await
    }
    async fn stat(&self, path: &str) -> DResult<FileInfo> {
        self.inner.stat(path).await
    }
    async fn list(&self, path: &str) -> DResult<Vec<String>> {
        let first = path == self.gate.path && std::mem::take(&mut *self.gate.armed.lock().unwrap());
        if first {
            self.gate.reached.notify_one();
            self.gate.go.notified().await;
        }
        self.inner.list(path).await
    }
    async fn move_to(&self, from: &str, to: &str) -> DResult<()> {
        self.inner.move_to(from, to).await
    }
    fn reference_min(&self) -> Option<u64> {
        self.inner.reference_min()
    }
    async fn adopt(&self, from: &str, to: &str, size: u64) -> DResult<()> {
        self.inner.adopt(from, to, size).await
    }
    async fn adopted_from(&self, path: &str) -> DResult<Option<String>> {
        self.inner.adopted_from(path).await
    }
    async fn delete(&self, path: &str) -> DResult<()> {
        self.inner.delete(path).await
    }
}

fn opts(lease: LeaseConfig) -> GcOptions {
    GcOptions {
        grace: Duration::from_secs(3600),
        upload_expiry: Duration::from_secs(86400),
        dry_run: false,
        lease,
    }
}

/// A clock `offset` seconds ahead of the system's, movable while a collection runs.
fn shifted(offset: Arc<AtomicU64>) -> Clock {
    Clock::from_fn(move || SystemTime::now() + Duration::from_secs(offset.load(Ordering::SeqCst)))
}

/// An unreferenced blob last referenced two hours ago: what a collection deletes.
async fn stale_orphan<D: Driver>(d: &D, seed: &[u8]) -> Digest {
    let digest = Digest::sha256_of(seed);
    d.put_content(&paths::blob_data(&digest), Bytes::copy_from_slice(seed))
        .await
        .unwrap();
    write_last_referenced(d, &digest, SystemTime::now() - Duration::from_secs(7200))
        .await
        .unwrap();
    digest
}

async fn exists<D: Driver>(d: &D, digest: &Digest) -> bool {
    match d.stat(&paths::blob_data(digest)).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("stat {digest}: {e}"),
    }
}

/// The lease objects stored: (generation, record).
async fn leases<D: Driver>(d: &D) -> Vec<(u64, LeaseRecord)> {
    let names = match d.list(&paths::lease_dir()).await {
        Ok(n) => n,
        Err(e) if e.is_not_found() => return Vec::new(),
        Err(e) => panic!("listing leases: {e}"),
    };
    let mut out = Vec::new();
    for n in names {
        let g: u64 = n.parse().unwrap();
        let raw = d.get_content(&paths::lease(g)).await.unwrap();
        out.push((g, serde_json::from_slice(&raw).unwrap()));
    }
    out
}

fn assert_busy(r: Result<GcReport, GcError>, holder_pid: u32, what: &str) -> String {
    match r {
        Err(GcError::Lease(e @ LeaseError::Busy { .. })) => {
            let msg = e.to_string();
            assert!(
                msg.contains("another garbage collection is running")
                    && msg.contains(&format!("process {holder_pid} "))
                    && msg.contains(what),
                "the busy error does not name the holder: {msg}"
            );
            msg
        }
        other => panic!("a second collection while one runs answered {other:?}, not busy"),
    }
}

/// Two collections at once on one storage: the one started second fails busy, naming the
/// holder; the first completes, and releasing lets a third start at once.
pub(crate) async fn two_collections_at_once<D: Driver + Clone>(d: D) {
    let orphan = stale_orphan(&d, b"two at once").await;
    let gated = Gated::new(&d, paths::blobs_root());
    let gate = gated.gate.clone();
    let first = tokio::spawn(async move { collect(&gated, &opts(LeaseConfig::default())).await });
    gate.reached.notified().await;

    let second = collect(&d, &opts(LeaseConfig::default())).await;
    assert_busy(second, std::process::id(), "garbage collection");
    assert!(exists(&d, &orphan).await, "the refused collection deleted");
    // the purger is refused too, and says so as busy (the server then skips a round)
    match purge_uploads(&d, Duration::from_secs(1), &LeaseConfig::default()).await {
        Err(GcError::Lease(e)) if e.is_busy() => {}
        other => panic!("an upload purge during a collection answered {other:?}"),
    }

    gate.go.notify_one();
    let report = first.await.unwrap().expect("the first collection");
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    let held = leases(&d).await;
    assert!(
        held.len() == 1 && held[0].1.released,
        "after a collection one released lease object remains: {held:?}"
    );
    // released: the next one starts at once (well before any expiry)
    let third = collect(&d, &opts(LeaseConfig::default())).await;
    assert!(
        third.is_ok(),
        "a collection right after a release: {third:?}"
    );
    assert_eq!(leases(&d).await.len(), 1, "older generations are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collections_at_once_on_a_memory_driver_one_is_busy() {
    two_collections_at_once(MemoryDriver::object_store_like()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collections_at_once_on_a_filesystem_root_one_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    two_collections_at_once(FsDriver::new(dir.path())).await;
}

/// A lease of another machine: refused while it lasts, taken over once expired by the
/// acquirer's clock (a crashed holder blocks others only until then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over() {
    expired_lease_is_taken_over(MemoryDriver::object_store_like()).await;
    let dir = tempfile::tempdir().unwrap();
    expired_lease_is_taken_over(FsDriver::new(dir.path())).await;
}

pub(crate) async fn expired_lease_is_taken_over<D: Driver + Clone>(d: D) {
    let orphan = stale_orphan(&d, b"expired").await;
    let now = SystemTime::now();
    let ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let crashed = LeaseRecord {
        owner: LeaseOwner {
            host: "replica-b".into(),
            pid: 4242,
            id: "crashed".into(),
            purpose: "garbage collection".into(),
            boot_id: "another-boot".into(),
            pid_ns: "pid:[1]".into(),
        },
        acquired_ms: ms(now),
        expires_ms: ms(now + Duration::from_secs(60)),
        released: false,
    };
    d.put_new(
        &paths::lease(7),
        Bytes::from(serde_json::to_vec(&crashed).unwrap()),
    )
    .await
    .unwrap();

    let msg = assert_busy(
        collect(&d, &opts(LeaseConfig::default())).await,
        4242,
        "replica-b",
    );
    assert!(
        msg.contains(&httpdate::fmt_http_date(
            SystemTime::UNIX_EPOCH + Duration::from_millis(crashed.expires_ms)
        )),
        "{msg}"
    );
    assert!(exists(&d, &orphan).await);

    // 61 s later by this machine's clock: expired, taken over as the next generation
    let later = LeaseConfig {
        clock: shifted(Arc::new(AtomicU64::new(61))),
        ..LeaseConfig::default()
    };
    let report = collect(&d, &opts(later))
        .await
        .expect("taking over an expired lease");
    assert_eq!(report.blobs_deleted, 1);
    let held = leases(&d).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, 8, "the takeover is generation 8: {held:?}");
    assert_eq!(held[0].1.owner.pid, std::process::id());
}

/// A holder on this machine whose process is gone (an interrupted `berth registry gc`) is
/// taken over at once; one whose process lives is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holder_on_this_machine_is_taken_over_at_once() {
    dead_local_holder_is_taken_over_at_once(MemoryDriver::object_store_like()).await;
    let dir = tempfile::tempdir().unwrap();
    dead_local_holder_is_taken_over_at_once(FsDriver::new(dir.path())).await;
}

pub(crate) async fn dead_local_holder_is_taken_over_at_once<D: Driver + Clone>(d: D) {
    let now = SystemTime::now();
    let ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let mut live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let record = |pid: u32| LeaseRecord {
        owner: LeaseOwner {
            pid,
            ..LeaseOwner::this_process("garbage collection")
        },
        acquired_ms: ms(now),
        expires_ms: ms(now + Duration::from_secs(60)),
        released: false,
    };
    d.put_new(
        &paths::lease(1),
        Bytes::from(serde_json::to_vec(&record(live.id())).unwrap()),
    )
    .await
    .unwrap();
    let r = collect(&d, &opts(LeaseConfig::default())).await;
    let _ = live.kill();
    let _ = live.wait();
    assert_busy(r, live.id(), "garbage collection");

    d.put_new(
        &paths::lease(2),
        Bytes::from(serde_json::to_vec(&record(dead.id())).unwrap()),
    )
    .await
    .unwrap();
    let r = collect(&d, &opts(LeaseConfig::default())).await;
    assert!(
        r.is_ok(),
        "the lease of a dead process on this machine: {r:?}"
    );
    assert_eq!(leases(&d).await[0].0, 3);
}

/// A collector whose lease lapsed by its own clock while it was held up, and was taken
/// over meanwhile, stops before deleting anything — and leaves nothing moved aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_was_taken_over_stops_before_deleting() {
    taken_over_holder_stops_before_deleting(MemoryDriver::object_store_like()).await;
    let dir = tempfile::tempdir().unwrap();
    taken_over_holder_stops_before_deleting(FsDriver::new(dir.path())).await;
}

pub(crate) async fn taken_over_holder_stops_before_deleting<D: Driver + Clone>(d: D) {
    let orphan = stale_orphan(&d, b"taken over").await;
    let offset = Arc::new(AtomicU64::new(0));
    let mine = LeaseConfig {
        clock: shifted(offset.clone()),
        ..LeaseConfig::default()
    };
    // held after its phase check, right before sweeping blobs
    let gated = Gated::new(&d, paths::blobs_root());
    let gate = gated.gate.clone();
    let first = tokio::spawn(async move { collect(&gated, &opts(mine)).await });
    gate.reached.notified().await;
    // a minute passes for everyone; another collector takes the expired lease
    offset.store(61, Ordering::SeqCst);
    let lease = Lease::acquire(
        &d,
        &LeaseConfig {
            clock: shifted(offset.clone()),
            ..LeaseConfig::default()
        },
        "garbage collection",
    )
    .await
    .expect("taking over the lapsed lease");
    gate.go.notify_one();
    match first.await.unwrap() {
        Err(GcError::Lease(e @ LeaseError::Lost { .. })) => {
            assert!(e.to_string().contains("not renewed in time"), "{e}")
        }
        other => panic!("a collector that lost its lease answered {other:?}"),
    }
    assert!(
        exists(&d, &orphan).await,
        "the collector deleted after losing its lease"
    );
    assert!(
        d.stat(&paths::blob_trash(&orphan))
            .await
            .unwrap_err()
            .is_not_found(),
        "the collector left the blob moved aside"
    );
    lease.release().await.unwrap();
}

/// A collector whose lease another machine took over (its clock too far ahead: the skew
/// assumption broken) finds out from the storage at its next phase, before deleting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_sees_a_higher_generation_before_its_sweep() {
    holder_sees_a_higher_generation_before_its_sweep(MemoryDriver::object_store_like()).await;
    let dir = tempfile::tempdir().unwrap();
    holder_sees_a_higher_generation_before_its_sweep(FsDriver::new(dir.path())).await;
}

pub(crate) async fn holder_sees_a_higher_generation_before_its_sweep<D: Driver + Clone>(d: D) {
    let orphan = stale_orphan(&d, b"higher generation").await;
    // held at the start of the mark phase, before the sweep's storage check
    let gated = Gated::new(&d, paths::repositories_root());
    let gate = gated.gate.clone();
    let first = tokio::spawn(async move { collect(&gated, &opts(LeaseConfig::default())).await });
    gate.reached.notified().await;
    let _other = Lease::acquire(
        &d,
        &LeaseConfig {
            clock: shifted(Arc::new(AtomicU64::new(3600))),
            ..LeaseConfig::default()
        },
        "garbage collection",
    )
    .await
    .expect("a machine an hour ahead takes the lease");
    gate.go.notify_one();
    match first.await.unwrap() {
        Err(GcError::Lease(e @ LeaseError::Lost { .. })) => {
            assert!(e.to_string().contains("taken over by"), "{e}")
        }
        other => panic!("a collector whose lease was taken over answered {other:?}"),
    }
    assert!(
        exists(&d, &orphan).await,
        "the collector deleted after losing its lease"
    );
}

/// Renewal: a collection held up for more than two lease lifetimes keeps its lease (others
/// stay busy throughout) and completes. Time is tokio's paused clock, which the lease's
/// clock follows.
#[tokio::test(start_paused = true)]
async fn renewal_keeps_a_long_collections_lease() {
    let d = MemoryDriver::object_store_like();
    let orphan = stale_orphan(&d, b"long collection").await;
    let start = tokio::time::Instant::now();
    let base = SystemTime::now();
    let clock = Clock::from_fn(move || base + start.elapsed());
    let config = LeaseConfig {
        clock,
        ..LeaseConfig::default()
    };
    let gated = Gated::new(&d, paths::blobs_root());
    let gate = gated.gate.clone();
    let c = config.clone();
    let first = tokio::spawn(async move { collect(&gated, &opts(c)).await });
    gate.reached.notified().await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let r = collect(&d, &opts(config.clone())).await;
        assert_busy(r, std::process::id(), "garbage collection");
    }
    assert!(start.elapsed() >= Duration::from_secs(150));
    gate.go.notify_one();
    let report = first
        .await
        .unwrap()
        .expect("a renewed collection completes");
    assert_eq!(report.blobs_deleted, 1);
    assert!(!exists(&d, &orphan).await);
}

/// A lease object that is not a lease record stops collections with an error naming it
/// (never a silent takeover).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_lease_is_an_error_naming_it() {
    unreadable_lease_is_an_error_naming_it(MemoryDriver::object_store_like()).await;
    let dir = tempfile::tempdir().unwrap();
    unreadable_lease_is_an_error_naming_it(FsDriver::new(dir.path())).await;
}

pub(crate) async fn unreadable_lease_is_an_error_naming_it<D: Driver + Clone>(d: D) {
    d.put_new(&paths::lease(3), Bytes::from_static(b"not json"))
        .await
        .unwrap();
    let err = collect(&d, &opts(LeaseConfig::default()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&paths::lease(3)) && msg.contains("unreadable"),
        "{msg}"
    );
}
