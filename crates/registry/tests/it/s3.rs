//! The generic garbage-collection races (`memory`) and lease tests (`lease`) over
//! [`S3Driver`] on real S3 servers on 127.0.0.1, started by `berth_test_support::S3Server`:
//! `s3s-fs` (crates.io; checks every request's signature) and moto's server (PyPI
//! `moto[server]`). A missing server skips on a laptop and fails under
//! `BERTH_TEST_REQUIRE_TOOLS=1`.
//!
//! s3s-fs's `If-None-Match: *` is not atomic (it checks that the key is absent, then
//! writes), so two conditional creates racing on one key can both succeed there; moto's are
//! atomic. The lease (one collector at a time) rests on that create, so the test in which
//! two collectors contend *at the same moment* runs on moto only; the others run on both,
//! where the test itself orders the lease's creates.

use berth_registry::storage::driver::testsuite;
use berth_registry::storage::s3::{AwsEnv, MIN_PART_SIZE, S3Config, S3Driver};
use berth_registry::storage::{BoxReader, ByteStream, DResult, Driver, FileInfo};
use berth_test_support::{S3Kind, S3Server};
use bytes::Bytes;

use crate::{lease, memory};

/// The server, or `None` when it is not installed (a skip on a laptop; a failure under
/// `BERTH_TEST_REQUIRE_TOOLS=1`).
pub(crate) fn server(kind: S3Kind) -> Option<S3Server> {
    (!kind.missing()).then(|| S3Server::start(kind))
}

/// A driver on `s3`'s bucket, keys under `prefix`, with the credentials a binary would
/// gather from the environment `s3.env()` gives; each clone is a client of its own.
pub(crate) fn driver(s3: &S3Server, prefix: &str) -> PerClient {
    driver_with(s3, prefix, |_| {})
}

/// [`driver`] with its configuration changed by `change` first.
pub(crate) fn driver_with(
    s3: &S3Server,
    prefix: &str,
    change: impl FnOnce(&mut S3Config),
) -> PerClient {
    let mut config = S3Config {
        region: Some(s3.region().to_owned()),
        endpoint: Some(s3.endpoint()),
        prefix: prefix.to_owned(),
        path_style: true,
        allow_http: true,
        part_size: MIN_PART_SIZE,
        ..S3Config::new(s3.bucket())
    };
    change(&mut config);
    let env = AwsEnv {
        vars: s3
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        home: None,
    };
    let inner = S3Driver::new(&config, &env)
        .unwrap_or_else(|e| panic!("an S3 driver on {}: {e}", s3.kind.name()));
    PerClient { config, env, inner }
}

/// [`S3Driver`] whose every clone is a new client with its own connection pool, as each
/// replica and each `berth registry gc` process has. The generic tests clone one driver for
/// the registry (served on a runtime of its own) and for each collection (run on another),
/// and their hooks run a push *inside* a collection's driver call, holding the collector's
/// runtime still. hyper's pool drives a connection on the runtime that opened it, so with
/// one shared pool the registry could pick a connection the held runtime drives and wait
/// for it until the request timeout (seen: the push answering 500 after 60 s and the
/// collector losing its lease) — a stall of the test's shape, not of any deployment, where a
/// process serves from one runtime.
#[derive(Debug)]
pub(crate) struct PerClient {
    config: S3Config,
    env: AwsEnv,
    inner: S3Driver,
}

impl PerClient {
    /// The driver itself (what its clones do not share: each has a client of its own).
    pub(crate) fn inner(&self) -> &S3Driver {
        &self.inner
    }
}

impl Clone for PerClient {
    fn clone(&self) -> PerClient {
        PerClient {
            config: self.config.clone(),
            env: self.env.clone(),
            inner: S3Driver::new(&self.config, &self.env).unwrap(),
        }
    }
}

impl Driver for PerClient {
    type Writer = <S3Driver as Driver>::Writer;
    async fn get_content(&self, path: &str) -> DResult<Bytes> {
        self.inner.get_content(path).await
    }
    async fn put_content(&self, path: &str, data: Bytes) -> DResult<()> {
        self.inner.put_content(path, data).await
    }
    async fn put_new(&self, path: &str, data: Bytes) -> DResult<()> {
        self.inner.put_new(path, data).await
    }
    async fn put_hint(&self, path: &str, data: Bytes) -> DResult<()> {
        self.inner.put_hint(path, data).await
    }
    async fn reader(&self, path: &str, offset: u64) -> DResult<(BoxReader, u64)> {
        self.inner.reader(path, offset).await
    }
    async fn stream(&self, path: &str, offset: u64, chunk: usize) -> DResult<(ByteStream, u64)> {
        self.inner.stream(path, offset, chunk).await
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
    async fn redirect_url(&self, path: &str) -> DResult<Option<String>> {
        self.inner.redirect_url(path).await
    }
    fn available_bytes(&self) -> Option<u64> {
        self.inner.available_bytes()
    }
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---- the collector's races with pushes (memory.rs), one collector at a time on s3s-fs

/// A push between the collector's read of a blob's clock and its move keeps the blob, on
/// both servers (one collector: the conditional create's atomicity plays no part).
#[test]
fn s3_push_between_the_collectors_clock_read_and_its_move_keeps_the_blob() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        memory::push_between_clock_read_and_move_keeps_the_blob(driver(&s, "hook-a"));
    }
}

/// A push after the collector's move is refused cleanly or kept whole, on both servers.
#[test]
fn s3_push_after_the_collectors_move_is_refused_cleanly() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        memory::push_after_move_is_refused_cleanly(driver(&s, "hook-b"));
    }
}

/// Collections from two collectors at once while three threads push: on moto only, since
/// the lease that lets one of the two run rests on `If-None-Match: *`, which s3s-fs does not
/// apply atomically (both could take the lease there). On s3s-fs it passed 3 runs of 3 on
/// 2026-12-05 (the window is small), which proves nothing about the window.
#[test]
fn s3_gc_during_pushes_on_moto_keeps_every_accepted_manifest() {
    let Some(s) = server(S3Kind::Moto) else {
        return;
    };
    memory::gc_during_pushes_keeps_every_accepted_manifest(driver(&s, "race"));
}

// ---- the lease (lease.rs)

/// Two collections at once, one refused busy naming the holder: the second one starts
/// while the first is held inside its collection, after the first took its lease, so the
/// two creates never race — it runs on s3s-fs too.
#[test]
fn s3_two_collections_at_once_one_is_busy() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(lease::two_collections_at_once(driver(&s, "two")));
    }
}

/// A lease of another machine is refused while it lasts, then taken over.
#[test]
fn s3_an_expired_lease_is_taken_over() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(lease::expired_lease_is_taken_over(driver(&s, "expired")));
    }
}

/// The lease of a dead process on this machine is taken over at once.
#[test]
fn s3_a_dead_holder_on_this_machine_is_taken_over_at_once() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(lease::dead_local_holder_is_taken_over_at_once(driver(
            &s, "dead",
        )));
    }
}

/// A holder whose lease lapsed and was taken over stops before deleting.
#[test]
fn s3_a_holder_whose_lease_was_taken_over_stops_before_deleting() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(lease::taken_over_holder_stops_before_deleting(driver(
            &s, "lapsed",
        )));
    }
}

/// A holder sees a higher generation in the bucket before its sweep.
#[test]
fn s3_a_holder_sees_a_higher_generation_before_its_sweep() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(lease::holder_sees_a_higher_generation_before_its_sweep(
            driver(&s, "higher"),
        ));
    }
}

/// A lease object that is not a record stops collections with an error naming it.
#[test]
fn s3_an_unreadable_lease_is_an_error_naming_it() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(lease::unreadable_lease_is_an_error_naming_it(driver(
            &s,
            "unreadable",
        )));
    }
}

// Not here: `renewal_keeps_a_long_collections_lease` runs on tokio's paused clock, under
// which a real server's request timeouts would fire at once; renewal itself is the
// storage layer's, the same over every driver.

// ---- the driver calls an upload session's requests use (testsuite::upload_sessions)

/// `list_files`, `writer_at` and `stat_stored` on both servers: the whole suite runs in
/// tests/e2e (`s3_driver`); this part is the one the upload requests rest on.
#[test]
fn s3_upload_session_calls_conform() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(testsuite::upload_sessions(&driver(&s, "sessions")));
    }
}

/// [`Driver::adopt`] by reference on both servers: the reference object's metadata comes
/// back with every GET and HEAD, and a move stores it again (testsuite::adoption).
#[test]
fn s3_adoption_by_reference_conforms() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s) = server(kind) else {
            return;
        };
        rt().block_on(testsuite::adoption(&driver(&s, "adoption")));
    }
}
