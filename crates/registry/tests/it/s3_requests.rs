//! What one pushed or pulled blob costs in S3 requests, counted from moto's access log (one
//! line per request) around each HTTP request a client makes to a registry served over
//! [`S3Driver`](berth_registry::storage::s3::S3Driver): the small-blob push of issue 20
//! (docs/performance.md, "Small blobs"). Each flow asserts the budget it is held to, so a
//! change that adds requests to the common path fails here; `--nocapture` prints the table
//! with every S3 request of every step.

#![allow(
    clippy::print_stdout,
    reason = "the table of requests per step is the measurement (--nocapture)"
)]

use berth_oci::Digest;
use berth_registry::Config;
use std::time::{Duration, Instant};

use berth_test_support::{S3Kind, S3Server};

use berth_registry::storage::{Driver, UploadWriter, paths};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::cache::CountingDriver;
use crate::s3::{driver, server};
use crate::{TestRegistry, random_bytes};

/// `line` without ANSI colour escapes (werkzeug colours some request lines: its 404s).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-letter
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// S3 request lines of moto's access log, e.g. `"PUT /registry/p/x HTTP/1.1" 200`.
fn s3_requests(log: &str) -> Vec<String> {
    log.lines()
        .map(plain)
        .filter_map(|l| {
            let start = l.find('"')?;
            let rest = &l[start + 1..];
            let end = rest.find('"')?;
            let line = &rest[..end];
            let method = line.split(' ').next()?;
            let status = rest[end + 1..].split_whitespace().next().unwrap_or("");
            ["GET", "PUT", "POST", "HEAD", "DELETE"]
                .contains(&method)
                .then(|| format!("{line} {status}"))
        })
        .collect()
}

/// A registry on moto counting the S3 requests behind each client request.
struct Counted {
    s3: S3Server,
    reg: TestRegistry,
    seen: usize,
    sentinels: u32,
    table: Vec<(String, Vec<String>)>,
}

impl Counted {
    fn start(s3: S3Server, prefix: &str) -> Counted {
        let mut config = Config::default();
        config.storage.min_free_bytes = 0;
        Counted::start_with(s3, prefix, config)
    }

    fn start_with(s3: S3Server, prefix: &str, config: Config) -> Counted {
        let reg = TestRegistry::serve(driver(&s3, prefix), config);
        let mut c = Counted {
            s3,
            reg,
            seen: 0,
            sentinels: 0,
            table: Vec::new(),
        };
        c.seen = c.settle().len();
        c
    }

    /// Every request so far has its line in the log: moto writes some (its 404s) only
    /// after answering, so a listing of a key no one stores is sent and waited for; what
    /// came before it is then written. Returns the log's request lines but the sentinels.
    fn settle(&mut self) -> Vec<String> {
        self.sentinels += 1;
        let marker = format!("sentinel-{}", self.sentinels);
        let r = self.s3.list(&marker);
        assert_eq!(r.status, 200, "moto's listing: {}", r.text());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.s3.log();
            if log.contains(&marker) {
                return s3_requests(&log)
                    .into_iter()
                    .filter(|l| !l.contains("sentinel-"))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "moto never logged {marker}:\n{log}"
            );
            std::thread::yield_now();
        }
    }

    /// One client request; records (and returns the response of) it with the S3 requests
    /// it caused.
    fn req(
        &mut self,
        label: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> crate::Resp {
        let r = self.reg.req(method, path, headers, body);
        let all = self.settle();
        let new = all[self.seen.min(all.len())..].to_vec();
        self.seen = all.len();
        self.table
            .push((format!("{label}: {method} → {}", r.status), new));
        r
    }

    /// S3 requests of the steps recorded since `from`.
    fn total_since(&self, from: usize) -> usize {
        self.table[from..].iter().map(|(_, r)| r.len()).sum()
    }

    fn print(&self, title: &str, from: usize) {
        println!("\n== {title}: {} S3 requests", self.total_since(from));
        for (step, reqs) in &self.table[from..] {
            println!("  {step}: {}", reqs.len());
            for r in reqs {
                println!("      {r}");
            }
        }
    }
}

fn location(r: &crate::Resp) -> String {
    r.header("location").expect("a Location").to_owned()
}

/// The requests a push and a pull of one 4 KiB blob cost, for each way a client can
/// push it: skopeo's (HEAD, POST, one PATCH, PUT without a body), a chunked upload with
/// `Content-Range` and a last chunk on the PUT, a monolithic POST, and POST then PUT.
#[test]
fn s3_requests_per_small_blob_on_moto() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let mut c = Counted::start(s3, "count");
    let name = "count/small";
    let octet = ("content-type", "application/octet-stream");

    // skopeo (containers/image): does the blob exist, start, stream it, commit
    let blob = random_bytes(1, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "HEAD blob",
        "HEAD",
        &format!("/v2/{name}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = location(&r);
    let r = c.req("PATCH 4 KiB", "PATCH", &loc, &[octet], &blob);
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = location(&r);
    let r = c.req("PUT ?digest", "PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    let skopeo = c.total_since(from);
    c.print("skopeo-style push (HEAD, POST, PATCH, PUT)", from);

    // the same blob into another repository, by a client that does not mount: the
    // commit finds the content stored and removes the session's copy
    let other = "count/other";
    let from = c.table.len();
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{other}/blobs/uploads/"),
        &[],
        b"",
    );
    let r = c.req("PATCH 4 KiB", "PATCH", &location(&r), &[octet], &blob);
    assert_eq!(r.status, 202, "{}", r.text());
    let r = c.req(
        "PUT ?digest",
        "PUT",
        &format!("{}?digest={d}", location(&r)),
        &[],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let again = c.total_since(from);
    c.print("the same blob again, into another repository", from);

    // pull: HEAD then GET, as clients do
    let from = c.table.len();
    let r = c.req(
        "HEAD blob",
        "HEAD",
        &format!("/v2/{name}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = c.req(
        "GET blob",
        "GET",
        &format!("/v2/{name}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, blob);
    let pull = c.total_since(from);
    c.print("pull (HEAD, GET)", from);

    // chunked with Content-Range, the last chunk on the PUT
    let blob = random_bytes(2, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        b"",
    );
    let loc = location(&r);
    let r = c.req(
        "PATCH 0-2047",
        "PATCH",
        &loc,
        &[octet, ("content-range", "0-2047")],
        &blob[..2048],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = location(&r);
    let r = c.req(
        "PUT ?digest + 2048-4095",
        "PUT",
        &format!("{loc}?digest={d}"),
        &[octet, ("content-range", "2048-4095")],
        &blob[2048..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let chunked = c.total_since(from);
    c.print("chunked (POST, PATCH, PUT with the last chunk)", from);

    // monolithic POST ?digest=
    let blob = random_bytes(3, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "POST ?digest",
        "POST",
        &format!("/v2/{name}/blobs/uploads/?digest={d}"),
        &[octet],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let monolithic = c.total_since(from);
    c.print("monolithic POST ?digest=", from);
    // the same, into another repository: the conditional create finds the content
    let from = c.table.len();
    let r = c.req(
        "POST ?digest",
        "POST",
        &format!("/v2/{other}/blobs/uploads/?digest={d}"),
        &[octet],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let monolithic_again = c.total_since(from);
    c.print("monolithic POST ?digest= of a stored blob", from);
    let r = c.req(
        "GET blob",
        "GET",
        &format!("/v2/{other}/blobs/{d}"),
        &[],
        b"",
    );
    assert_eq!(r.body, blob);

    // POST, then PUT with the whole blob
    let blob = random_bytes(4, 4096);
    let d = Digest::sha256_of(&blob);
    let from = c.table.len();
    let r = c.req(
        "POST",
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        b"",
    );
    let loc = location(&r);
    let r = c.req(
        "PUT ?digest + 4 KiB",
        "PUT",
        &format!("{loc}?digest={d}"),
        &[octet],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let put_only = c.total_since(from);
    c.print("POST then PUT with the blob", from);

    println!(
        "\nskopeo {skopeo}, again {again}, pull {pull}, chunked {chunked}, monolithic {monolithic}, put-only {put_only}"
    );
    // measured 2026-12-05 on moto 5.2.5; before these budgets: skopeo-style 26, pull 4,
    // chunked 30, monolithic 18, POST then PUT 22. The commit's move finds the upload's
    // data by a HEAD (404: segments) and then the segments' listing, one request more than
    // the recursive listing of the session's directory it took before (13, 15), so that a
    // move of a file stored whole — the collector's, blob after blob — lists nothing.
    // Since large data is adopted by reference (2026-12-06), a session's data lives apart
    // from the session, so reading a session lists both directories (at once: two
    // requests, one wait): one request more per PATCH and per committing PUT (14, 16, 8),
    // and the data of a blob stored already is deleted as a written file (12); the
    // commit's adoption lists the data's segments without a HEAD first (one fewer).
    for (flow, got, budget) in [
        ("skopeo-style push", skopeo, 15),
        ("pull", pull, 4),
        ("chunked push", chunked, 17),
        ("monolithic push", monolithic, 4),
        ("monolithic push of a stored blob", monolithic_again, 3),
        ("POST then PUT", put_only, 9),
        ("the same blob again", again, 14),
    ] {
        assert!(
            got <= budget,
            "{flow}: {got} S3 requests, over its budget of {budget} (run with --nocapture for the table)"
        );
    }
    // every session was committed: none of its keys is left in the bucket, nor any of
    // its data (these small blobs were copied, not adopted by reference)
    for (prefix, session_key) in [
        ("count/v1/repositories/", "_uploads"),
        ("count/v1/_uploaddata/", "<Key>"),
    ] {
        let left = c.s3.list(prefix);
        assert_eq!(left.status, 200, "{}", left.text());
        assert!(
            !left.text().contains(session_key),
            "keys of committed sessions left under {prefix}: {}",
            left.text()
        );
    }
}

/// The storage calls behind a PATCH and the committing PUT (in-memory driver): the session
/// is read once per request, by one `list_files`; the appends go through `writer_at` at
/// the size it said; the commit neither reads the session again nor flushes through a
/// `writer` that looks, reads no start marker (its time came with the listing), checks the
/// blob's content with `stat_stored`, and deletes no session directory it left empty.
#[test]
fn an_upload_request_reads_its_session_once() {
    let driver = CountingDriver::default();
    let mut config = Config::default();
    config.storage.min_free_bytes = 0;
    let r = TestRegistry::serve(driver.clone(), config);
    let blob = random_bytes(5, 4096);
    let d = Digest::sha256_of(&blob);
    let resp = r.req("POST", "/v2/calls/blobs/uploads/", &[], b"");
    assert_eq!(resp.status, 202);
    let loc = location(&resp);
    let id = loc.rsplit('/').next().unwrap().to_owned();
    let dir = paths::upload_dir("calls", &id);
    let data = paths::upload_data("calls", &id);
    let calls = |driver: &CountingDriver| {
        let c = std::mem::take(&mut *driver.calls.lock().unwrap());
        c.into_iter()
            .map(|(op, p)| format!("{op} {p}"))
            .collect::<Vec<_>>()
    };
    driver.reset();

    let resp = r.req(
        "PATCH",
        &loc,
        &[("content-type", "application/octet-stream")],
        &blob,
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(
        calls(&driver),
        [format!("list_files {dir}"), format!("writer_at {data}")]
    );

    let resp = r.req("PUT", &format!("{}?digest={d}", location(&resp)), &[], b"");
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        calls(&driver),
        [
            format!("list_files {dir}"),
            format!("writer_at {data}"),
            format!("delete {}", paths::upload_started("calls", &id)),
            format!("get {}", paths::blob_last_referenced(&d)),
            format!("stat_stored {}", paths::blob_data(&d)),
            format!("move {data}"),
            format!("put {}", paths::layer_link("calls", &d)),
        ]
    );
    assert_eq!(r.get(&format!("/v2/calls/blobs/{d}")).body, blob);
}

fn replica(s3: &S3Server, prefix: &str) -> TestRegistry {
    let mut config = Config::default();
    config.storage.min_free_bytes = 0;
    TestRegistry::serve(driver(s3, prefix), config)
}

/// What the shortcuts must keep: an upload started on one replica continues on another —
/// which holds no hash state and whose first append trusts the size its listing read —
/// and completes there after the first one is gone; a chunk at an offset the session has
/// passed is refused (416), never written over what is stored.
#[test]
fn s3_an_upload_moves_between_replicas_and_outlives_the_first() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let a = replica(&s3, "relay");
    let b = replica(&s3, "relay");
    let blob = random_bytes(6, 6000);
    let d = Digest::sha256_of(&blob);
    let octet = ("content-type", "application/octet-stream");
    let r = a.req("POST", "/v2/relay/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202);
    let loc = location(&r);
    let r = b.req(
        "PATCH",
        &loc,
        &[octet, ("content-range", "0-1999")],
        &blob[..2000],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = a.req(
        "PATCH",
        &loc,
        &[octet, ("content-range", "2000-3999")],
        &blob[2000..4000],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-3999"));
    // a replayed chunk: the session is past it
    let r = b.req(
        "PATCH",
        &loc,
        &[octet, ("content-range", "2000-3999")],
        &random_bytes(7, 2000),
    );
    assert_eq!(r.status, 416, "{}", r.text());
    drop(a);
    let r = b.req(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[octet, ("content-range", "4000-5999")],
        &blob[4000..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let got = b.get(&format!("/v2/relay/blobs/{d}"));
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body, blob,
        "the blob is the chunks in order, nothing else"
    );
    let c = replica(&s3, "relay");
    assert_eq!(c.get(&format!("/v2/relay/blobs/{d}")).body, blob);
    // and the session is over on every replica
    assert_eq!(c.get(&loc).status, 404);
}

/// Two appends opened at the same size (two replicas that read the session at the same
/// moment): one lands, the other is refused, and the file holds the winner's bytes alone.
/// On moto, whose conditional create is atomic.
#[test]
fn s3_two_appends_at_one_size_one_wins_whole() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let (one, two) = (driver(&s3, "race"), driver(&s3, "race"));
    let path = "v1/repositories/race/_uploads/x/data";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let append = |d: crate::s3::PerClient, seed: u64| async move {
            let mut w = d.writer_at(path, 0).await?;
            w.write(Bytes::from(random_bytes(seed, 3000))).await?;
            w.commit(false).await
        };
        let (r1, r2) = tokio::join!(append(one.clone(), 8), append(two.clone(), 9));
        assert!(
            r1.is_ok() != r2.is_ok(),
            "exactly one of two appends at one size lands: {r1:?} {r2:?}"
        );
        let winner = if r1.is_ok() { 8 } else { 9 };
        let (mut rd, size) = one.reader(path, 0).await.unwrap();
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        assert_eq!(size, 3000);
        assert_eq!(got, random_bytes(winner, 3000));
        // the loser, told the size again, continues after the winner
        let mut w = two.writer_at(path, 3000).await.unwrap();
        w.write(Bytes::from_static(b"tail")).await.unwrap();
        assert_eq!(w.commit(true).await.unwrap(), 3004);
    });
}

/// The same blob committed from two sessions on two replicas at once: both succeed, the
/// blob is whole, both sessions are gone.
#[test]
fn s3_concurrent_commits_of_one_digest_on_two_replicas() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let a = replica(&s3, "same");
    let b = replica(&s3, "same");
    let blob = random_bytes(10, 5000);
    let d = Digest::sha256_of(&blob);
    let octet = ("content-type", "application/octet-stream");
    let mut commits = Vec::new();
    for (r, name) in [(&a, "same/one"), (&b, "same/two")] {
        let resp = r.req("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"");
        let resp = r.req("PATCH", &location(&resp), &[octet], &blob);
        assert_eq!(resp.status, 202, "{}", resp.text());
        commits.push(format!("{}?digest={d}", location(&resp)));
    }
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let ta = s.spawn(|| a.req("PUT", &commits[0], &[], b"").status);
        let tb = s.spawn(|| b.req("PUT", &commits[1], &[], b"").status);
        vec![ta.join().unwrap(), tb.join().unwrap()]
    });
    assert_eq!(statuses, [201, 201]);
    for (r, name) in [(&b, "same/one"), (&a, "same/two")] {
        let got = r.get(&format!("/v2/{name}/blobs/{d}"));
        assert_eq!(got.status, 200);
        assert_eq!(got.body, blob);
    }
    let left = s3.list("same/v1/repositories/same/");
    assert!(
        !left.text().contains("_uploads"),
        "a session survived its commit: {}",
        left.text()
    );
}

/// The storage calls of a blob a request carries whole (in-memory driver): a monolithic
/// `POST ?digest=` creates no session at all — the clock record, one conditional create of
/// the content, the link; a `PUT` with the whole blob into an empty session reads the
/// session, ends it (its marker), then the same three.
#[test]
fn a_whole_blob_is_created_under_its_digest_without_a_session() {
    let driver = CountingDriver::default();
    let mut config = Config::default();
    config.storage.min_free_bytes = 0;
    let r = TestRegistry::serve(driver.clone(), config);
    let octet = ("content-type", "application/octet-stream");
    let calls = |driver: &CountingDriver| {
        let c = std::mem::take(&mut *driver.calls.lock().unwrap());
        c.into_iter()
            .map(|(op, p)| format!("{op} {p}"))
            .collect::<Vec<_>>()
    };

    let blob = random_bytes(11, 3000);
    let d = Digest::sha256_of(&blob);
    let resp = r.req(
        "POST",
        &format!("/v2/whole/blobs/uploads/?digest={d}"),
        &[octet],
        &blob,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        calls(&driver),
        [
            format!("get {}", paths::blob_last_referenced(&d)),
            format!("put_new {}", paths::blob_data(&d)),
            format!("put {}", paths::layer_link("whole", &d)),
        ]
    );

    let blob = random_bytes(12, 3000);
    let d = Digest::sha256_of(&blob);
    let resp = r.req("POST", "/v2/whole/blobs/uploads/", &[], b"");
    let loc = location(&resp);
    let id = loc.rsplit('/').next().unwrap().to_owned();
    driver.reset();
    let resp = r.req("PUT", &format!("{loc}?digest={d}"), &[octet], &blob);
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        calls(&driver),
        [
            format!("list_files {}", paths::upload_dir("whole", &id)),
            format!("delete {}", paths::upload_started("whole", &id)),
            format!("get {}", paths::blob_last_referenced(&d)),
            format!("put_new {}", paths::blob_data(&d)),
            format!("put {}", paths::layer_link("whole", &d)),
        ]
    );
    assert_eq!(r.get(&format!("/v2/whole/blobs/{d}")).body, blob);
    assert_eq!(r.get(&loc).status, 404, "the session is over");
}

/// A whole blob that does not match its digest is refused and leaves nothing: no blob, no
/// link, and (`PUT`) no session; a body shorter than its digest's blob, likewise.
#[test]
fn s3_a_whole_blob_with_the_wrong_digest_leaves_nothing() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let r = replica(&s3, "wrong");
    let octet = ("content-type", "application/octet-stream");
    let blob = random_bytes(13, 2000);
    let claimed = Digest::sha256_of(b"something else");
    let resp = r.req(
        "POST",
        &format!("/v2/wrong/blobs/uploads/?digest={claimed}"),
        &[octet],
        &blob,
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.code(), "DIGEST_INVALID");
    let resp = r.req("POST", "/v2/wrong/blobs/uploads/", &[], b"");
    let loc = location(&resp);
    let resp = r.req("PUT", &format!("{loc}?digest={claimed}"), &[octet], &blob);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(r.get(&loc).status, 404, "the failed session is removed");
    assert_eq!(
        r.req("HEAD", &format!("/v2/wrong/blobs/{claimed}"), &[], b"")
            .status,
        404
    );
    let keys = s3.list("wrong/");
    assert_eq!(
        keys.xml_field("KeyCount").as_deref(),
        Some("0"),
        "something was stored: {}",
        keys.text()
    );
}

/// One small blob pushed whole through two replicas at once (monolithic on one, POST + PUT
/// on the other): both 201, one copy of the content, both links.
#[test]
fn s3_one_whole_blob_from_two_replicas_at_once() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let a = replica(&s3, "twice");
    let b = replica(&s3, "twice");
    let blob = random_bytes(14, 4096);
    let d = Digest::sha256_of(&blob);
    let octet = ("content-type", "application/octet-stream");
    let resp = b.req("POST", "/v2/twice/b/blobs/uploads/", &[], b"");
    let put = format!("{}?digest={d}", location(&resp));
    let post = format!("/v2/twice/a/blobs/uploads/?digest={d}");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let ta = s.spawn(|| a.req("POST", &post, &[octet], &blob).status);
        let tb = s.spawn(|| b.req("PUT", &put, &[octet], &blob).status);
        vec![ta.join().unwrap(), tb.join().unwrap()]
    });
    assert_eq!(statuses, [201, 201]);
    for (r, name) in [(&b, "twice/a"), (&a, "twice/b")] {
        assert_eq!(r.get(&format!("/v2/{name}/blobs/{d}")).body, blob);
    }
    let keys = s3.list("twice/");
    let text = keys.text();
    assert!(!text.contains("_uploads"), "a session survived: {text}");
    assert_eq!(text.matches("/data</Key>").count(), 1, "{text}");
}

/// What a collection costs in S3 requests for each blob it sweeps, on moto — which, like
/// any server that answers a listing by walking the bucket, makes a listing per swept blob
/// cost the bucket's size, and a collection quadratic in it (the first cut of issue 20's
/// push shortcuts located every moved file by a recursive listing of its parent, and the
/// e2e collection race under load went from minutes to over its limit). An old
/// unreferenced blob is checked by a HEAD, moved aside by one `CopyObject` and deleted,
/// and its dangling link found by a HEAD: no listing of its segments or of its directory's
/// subtree; the only listings that name it are its record's delete and its link's.
#[test]
fn s3_a_collection_lists_nothing_to_stat_or_move_a_blob() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let prefix = "gccount";
    let mut c = Counted::start(s3, prefix);
    let octet = ("content-type", "application/octet-stream");
    let aged = (std::time::SystemTime::now() - Duration::from_secs(2 * 3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let mut orphans = Vec::new();
    for seed in 30..33 {
        let blob = random_bytes(seed, 1500);
        let d = Digest::sha256_of(&blob);
        let r = c.req(
            "POST ?digest",
            "POST",
            &format!("/v2/gccount/orphans/blobs/uploads/?digest={d}"),
            &[octet],
            &blob,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        // last referenced two hours ago: past any grace
        let record = format!("{prefix}/{}", paths::blob_last_referenced(&d));
        let put = c.s3.put(&record, aged.as_bytes(), &[]);
        assert_eq!(put.status, 200, "aging {record}: {}", put.text());
        orphans.push(d);
    }
    c.seen = c.settle().len();

    let opts = berth_registry::gc::GcOptions {
        grace: berth_registry::gc::MIN_GRACE,
        upload_expiry: Duration::from_secs(86400),
        dry_run: false,
        lease: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(berth_registry::gc::collect(&driver(&c.s3, prefix), &opts))
        .unwrap();
    assert_eq!(report.blobs_deleted, 3, "{report:?}");
    assert_eq!(report.links_deleted, 3, "{report:?}");
    let all = c.settle();
    let gc = all[c.seen.min(all.len())..].to_vec();
    println!(
        "\n== one collection sweeping 3 old blobs: {} S3 requests",
        gc.len()
    );
    for r in &gc {
        println!("      {r}");
    }
    for d in &orphans {
        let named: Vec<&String> = gc.iter().filter(|r| r.contains(d.hex())).collect();
        let listings: Vec<&&String> = named.iter().filter(|r| r.contains("list-type")).collect();
        // a HEAD each: the sweep's check of its content, the move's, the link sweep's
        assert_eq!(
            named.iter().filter(|r| r.starts_with("HEAD ")).count(),
            3,
            "{d}: {named:#?}"
        );
        assert!(
            !named
                .iter()
                .any(|r| r.contains("%2Bdata") || r.contains("+data")),
            "{d}: its segments were listed: {named:#?}"
        );
        // the record's delete (one listing of the blob's directory) and the link's (its
        // parent's listing names no blob; then everything under the link's directory)
        assert!(
            listings.len() <= 2,
            "{d}: {} listings name it, at most 2 expected: {listings:#?}",
            listings.len()
        );
        assert!(
            !listings
                .iter()
                .any(|r| !r.contains("delimiter") && r.contains("/blobs/sha256/")),
            "{d}: its directory's subtree was listed: {listings:#?}"
        );
    }
}

/// A pull of a large blob from a replica with the disk tier (`storage/disk_cache.rs`): the
/// first GET streams the data from the bucket, every later one reads only the repository's
/// link there (the size is cached in memory) and the bytes from the replica's file; the
/// same for a blob adopted by reference (its reference and segment are not read again).
#[test]
fn s3_requests_per_large_blob_pull_with_the_disk_tier_on_moto() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let tier = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.min_free_bytes = 0;
    config.storage.driver = berth_registry::config::DriverKind::S3;
    config.storage.cache.disk_dir = Some(tier.path().to_owned());
    let mut c = Counted::start_with(s3, "tier", config);
    let name = "tier/big";
    let octet = ("content-type", "application/octet-stream");
    // 1 MiB is copied at the commit, 9 MiB (over the 8 MiB part size) adopted by reference
    for (seed, len) in [(20u64, 1usize << 20), (21, 9 << 20)] {
        let blob = random_bytes(seed, len);
        let d = Digest::sha256_of(&blob);
        let r = c.req(
            "POST ?digest",
            "POST",
            &format!("/v2/{name}/blobs/uploads/?digest={d}"),
            &[octet],
            &blob,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let url = format!("/v2/{name}/blobs/{d}");
        let from = c.table.len();
        let r = c.req("GET blob (first)", "GET", &url, &[], b"");
        assert_eq!(r.body, blob);
        let first = c.total_since(from);
        let fills = |c: &Counted| {
            let text = c.reg.get("/metrics").text();
            text.lines()
                .find_map(|l| {
                    l.strip_prefix("berth_registry_disk_cache_fills_total ")?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0)
        };
        let want = if len == 1 << 20 { 1 } else { 2 };
        assert!(
            berth_test_support::wait_until(Duration::from_secs(10), || fills(&c) == want),
            "the {len}-byte blob was never kept"
        );
        let from = c.table.len();
        for _ in 0..3 {
            let r = c.req("GET blob (again)", "GET", &url, &[], b"");
            assert_eq!(r.body, blob);
        }
        let again = c.total_since(from);
        c.print(
            &format!("pull of {len} bytes: first GET, then three"),
            from - 1,
        );
        assert!(
            first >= 2,
            "the first GET reads the data from the bucket: {first}"
        );
        assert_eq!(again, 3, "each later GET reads only the link");
    }
}
