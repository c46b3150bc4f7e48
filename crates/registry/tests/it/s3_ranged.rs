//! Large reads over [`S3Driver`](berth_registry::storage::s3::S3Driver) as ranged GETs in
//! flight at once (`storage/driver/s3/ranged.rs`), on real S3 servers: every byte in
//! order from any offset, whatever the read-ahead; one GET per window; the GETs really in
//! flight together (connections counted by a relay in front of the server); a window that
//! comes back short ends the read with an error; a read dropped midway gives its memory
//! back. The tests' part size is S3's smallest, 5 MiB, so a window is 5 MiB.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_registry::storage::{Driver, UploadWriter};
use berth_test_support::S3Kind;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::s3::{PerClient, driver_with, rt, server};

const MIB: usize = 1 << 20;
/// The tests' window: their part size, S3's smallest.
const WINDOW: usize = 5 * MIB;

fn data(seed: u32, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u32 ^ seed).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect::<Vec<u8>>()
        .into()
}

/// `read_ahead_below` that times nothing: every large read ranged from its first window.
const ALWAYS: u64 = 0;
/// A `read_ahead_below` every connection here beats: the rest of a read whole.
const NEVER: u64 = 1;

/// `n` windows ahead, every large read ranged whatever its first window's rate.
fn ahead(s3: &berth_test_support::S3Server, prefix: &str, n: usize) -> PerClient {
    ahead_below(s3, prefix, n, ALWAYS)
}

/// `n` windows ahead when the first window comes slower than `below` MiB/s.
fn ahead_below(s3: &berth_test_support::S3Server, prefix: &str, n: usize, below: u64) -> PerClient {
    driver_with(s3, prefix, |c| {
        c.read_ahead = n;
        c.read_ahead_below = below;
    })
}

/// `path` read through `d` from `offset`, whole, or the read's error.
async fn read_from(d: &PerClient, path: &str, offset: usize) -> std::io::Result<Vec<u8>> {
    let (mut r, _) = d
        .reader(path, offset as u64)
        .await
        .map_err(|e| std::io::Error::other(format!("{path} from {offset}: {e}")))?;
    let mut got = Vec::new();
    r.read_to_end(&mut got).await?;
    Ok(got)
}

/// `d`'s reads hold no memory ahead within 5 s.
async fn none_held(d: &PerClient) -> bool {
    for _ in 0..500 {
        if d.inner().read_ahead_held() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A file of three segments (three writer sessions: 6, 7 and 4 MiB).
async fn written_file(d: &PerClient, path: &str, content: &Bytes) {
    for range in [0..6 * MIB, 6 * MIB..13 * MIB, 13 * MIB..content.len()] {
        let mut w = d.writer(path).await.unwrap();
        w.write(content.slice(range)).await.unwrap();
        w.commit(true).await.unwrap();
    }
}

/// A stored object of 3 windows and a bit, a written file of three segments and that file
/// adopted by reference read with 0, 1 and 4 windows ahead, and with 4 ahead when the first
/// window is slow (1 MiB/s: never here, the rest whole; at the default rate: either), from offsets
/// inside windows, at their edges, across segments and at the last byte: every byte, in
/// order.
#[test]
fn s3_large_reads_return_every_byte_with_any_read_ahead() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s3) = server(kind) else {
            return;
        };
        rt().block_on(async {
            let object = data(1, 3 * WINDOW + 1234);
            let file = data(2, 17 * MIB + 77);
            let setup = ahead(&s3, "reads", 0);
            setup
                .put_content("big/object", object.clone())
                .await
                .unwrap();
            written_file(&setup, "big/upload", &file).await;
            setup
                .adopt("big/upload", "big/adopted", file.len() as u64)
                .await
                .unwrap();
            for (n, below) in [
                (0, ALWAYS),
                (1, ALWAYS),
                (4, ALWAYS),
                (4, NEVER),
                (4, berth_registry::storage::s3::DEFAULT_READ_AHEAD_BELOW),
            ] {
                let d = ahead_below(&s3, "reads", n, below);
                for (path, content) in [
                    ("big/object", &object),
                    ("big/upload", &file),
                    ("big/adopted", &file),
                ] {
                    let len = content.len();
                    for offset in [
                        0,
                        1,
                        WINDOW - 1,
                        WINDOW,
                        6 * MIB,
                        6 * MIB + 1,
                        13 * MIB - 1,
                        2 * WINDOW + 17,
                        len - 1,
                        len,
                    ] {
                        let got = read_from(&d, path, offset).await.unwrap_or_else(|e| {
                            panic!(
                                "{}, {n} ahead below {below} MiB/s: {path} from {offset}: {e}",
                                kind.name()
                            )
                        });
                        assert!(
                            got[..] == content[offset..],
                            "{}, {n} ahead below {below} MiB/s: {path} from {offset}: {} \
                             bytes, {} expected, or different bytes",
                            kind.name(),
                            got.len(),
                            len - offset
                        );
                    }
                }
                assert_eq!(d.inner().read_ahead_held(), 0, "memory left held");
            }
        });
    }
}

/// Lines of moto's log that are GETs of `key` (`"GET /bucket/key HTTP/1.1" 206 -`).
fn gets_of(log: &str, key: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("GET /{key} HTTP")))
        .count()
}

/// moto's log once every request sent so far is in it: moto logs some requests only after
/// answering them, so a listing for `marker` is sent and waited for.
fn settled(s3: &berth_test_support::S3Server, marker: &str) -> String {
    let marker = format!("sentinel-{marker}");
    assert_eq!(s3.list(&marker).status, 200);
    let mut log = String::new();
    let seen = berth_test_support::wait_until(Duration::from_secs(10), || {
        log = s3.log();
        log.contains(&marker)
    });
    assert!(seen, "moto never logged {marker}");
    log
}

/// A read costs one GET per window it covers (4 for 3 windows and a bit, 3 from inside the
/// second), one GET with no read-ahead, as distribution's driver reads, and two when the
/// first window comes fast enough (that window, then the rest whole).
#[test]
fn s3_a_large_read_costs_one_get_per_window_on_moto() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    rt().block_on(async {
        let object = data(3, 3 * WINDOW + 10);
        let key = format!("{}/count/big", s3.bucket());
        let four = ahead(&s3, "count", 4);
        let zero = ahead(&s3, "count", 0);
        let fast = ahead_below(&s3, "count", 4, NEVER);
        four.put_content("big", object.clone()).await.unwrap();
        for (d, offset, want) in [
            (&four, 0, 4),
            (&four, WINDOW + 3, 3),
            (&zero, 0, 1),
            (&zero, WINDOW + 3, 1),
            (&fast, 0, 2),
            (&fast, WINDOW + 3, 2),
            (&fast, 3 * WINDOW + 3, 1),
        ] {
            let before = gets_of(&settled(&s3, &format!("before-{want}-{offset}")), &key);
            let got = read_from(d, "big", offset).await.unwrap();
            assert!(got[..] == object[offset..]);
            let log = settled(&s3, &format!("after-{want}-{offset}"));
            assert_eq!(
                gets_of(&log, &key) - before,
                want,
                "GETs of a {}-byte object read from {offset}; its lines in moto's log:\n{}",
                object.len(),
                log.lines()
                    .filter(|l| l.contains("count/big"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    });
}

/// A TCP relay to an S3 server that counts the connections made through it, and can cap
/// what each connection carries from the server, as S3 caps each connection.
struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Connections open now, and the most open at once since [`Relay::reset_most`].
    open: Arc<(AtomicUsize, AtomicUsize)>,
}

/// Copy `from` to `to`, at most `cap` bytes a second when given.
#[allow(
    clippy::disallowed_methods,
    reason = "the sleep paces the copy to the cap: it is the cap, not a wait for a condition"
)]
fn relay_copy(mut from: TcpStream, mut to: TcpStream, cap: Option<u64>) {
    use std::io::{Read, Write};
    let start = std::time::Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        if let Some(cap) = cap {
            let due = Duration::from_secs_f64(sent as f64 / cap as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Relay {
    /// A relay to `s3`, carrying at most `cap` bytes a second from it on each connection.
    fn to(s3: &berth_test_support::S3Server, cap: Option<u64>) -> Relay {
        let upstream: SocketAddr = s3
            .endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (count, opened) = (accepted.clone(), open.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(u) = TcpStream::connect(upstream) else {
                    continue;
                };
                let now = opened.0.fetch_add(1, Ordering::SeqCst) + 1;
                opened.1.fetch_max(now, Ordering::SeqCst);
                let (Ok(c2), Ok(u2)) = (c.try_clone(), u.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || relay_copy(c2, u2, None));
                let closed = opened.clone();
                std::thread::spawn(move || {
                    // the server's side ends last: the connection is over
                    relay_copy(u, c, cap);
                    closed.0.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay {
            addr,
            accepted,
            open,
        }
    }

    /// Start counting the most connections open at once from those open now.
    fn reset_most(&self) {
        self.open
            .1
            .store(self.open.0.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The most connections open at once since [`Relay::reset_most`].
    fn most(&self) -> usize {
        self.open.1.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// A driver (a client of its own) on `s3` through this relay, its configuration
    /// changed by `change`.
    fn driver(
        &self,
        s3: &berth_test_support::S3Server,
        prefix: &str,
        change: impl FnOnce(&mut berth_registry::storage::s3::S3Config),
    ) -> PerClient {
        driver_with(s3, prefix, |c| {
            c.endpoint = Some(format!("http://{}", self.addr));
            change(c);
        })
    }
}

/// Through a relay that counts connections open at once, a read of 4 windows has several
/// (the windows ahead are fetched while the first is streamed), and one with no read-ahead
/// one. A written file of 6 short segments (1 MiB) whose first comes fast, so that longer
/// spans would go whole, still has its segments fetched several at once (at least 3: read
/// one by one, moto's closing connections make at most 2; checked with the fetches ahead
/// turned off for fast reads).
#[test]
fn s3_the_ranged_gets_of_a_read_are_in_flight_at_once() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let relay = Relay::to(&s3, None);
    let through = |n: usize, below: u64| {
        relay.driver(&s3, "flight", |c| {
            c.read_ahead = n;
            c.read_ahead_below = below;
        })
    };
    rt().block_on(async {
        let object = data(4, 4 * WINDOW);
        let setup = ahead(&s3, "flight", 0);
        setup.put_content("big", object.clone()).await.unwrap();
        let file = data(8, 6 * MIB);
        for i in 0..6 {
            let mut w = setup.writer("segments").await.unwrap();
            w.write(file.slice(i * MIB..(i + 1) * MIB)).await.unwrap();
            w.commit(true).await.unwrap();
        }
        for (path, content, n, below, at_once) in [
            ("big", &object, 4usize, ALWAYS, 2..=6usize),
            ("big", &object, 0, ALWAYS, 1..=1),
            ("segments", &file, 4, NEVER, 3..=6),
        ] {
            let d = through(n, below);
            // the new client's connections are made by the read; at most the one streamed,
            // 4 ahead and a listing's that the server is closing
            relay.reset_most();
            let got = read_from(&d, path, 0).await.unwrap();
            assert!(got[..] == content[..], "{path}: other bytes");
            let most = relay.most();
            assert!(
                at_once.contains(&most),
                "{path}, {n} ahead below {below} MiB/s: {most} connections open at once, \
                 expected {at_once:?}"
            );
        }
    });
}

/// Each connection capped at 40 MiB/s by a relay: at the default `read_ahead_below`
/// (256 MiB/s) the first window is slow, and the rest of a 4-window object comes as a
/// ranged GET per window on connections of their own (4 GETs, more than 2 connections);
/// with a rate below the cap (8 MiB/s) the first window is fast, and the rest comes whole
/// (2 GETs). Every byte either way.
#[test]
fn s3_a_read_goes_ranged_only_when_its_first_window_comes_slowly() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    let relay = Relay::to(&s3, Some(40 << 20));
    let through = |below: u64| {
        relay.driver(&s3, "capped", |c| {
            c.read_ahead = 4;
            c.read_ahead_below = below;
        })
    };
    let key = format!("{}/capped/big", s3.bucket());
    rt().block_on(async {
        let object = data(7, 4 * WINDOW);
        ahead(&s3, "capped", 0)
            .put_content("big", object.clone())
            .await
            .unwrap();
        for (below, gets, connections) in [
            (
                berth_registry::storage::s3::DEFAULT_READ_AHEAD_BELOW,
                4,
                3..=5usize,
            ),
            (8, 2, 1..=2),
        ] {
            let before_log = gets_of(&settled(&s3, &format!("capped-before-{below}")), &key);
            let before = relay.accepted();
            let d = through(below);
            let got = read_from(&d, "big", 0).await.unwrap();
            assert!(got[..] == object[..], "below {below} MiB/s: other bytes");
            // what `/metrics` shows of the decision
            let counted = |name: &str| {
                d.inner()
                    .metrics()
                    .into_iter()
                    .find(|m| m.name == name)
                    .map(|m| m.value)
            };
            let (ranged, whole) = if gets > 2 { (1, 0) } else { (0, 1) };
            assert_eq!(
                (
                    counted("berth_registry_s3_large_reads_ranged_total"),
                    counted("berth_registry_s3_large_reads_whole_total")
                ),
                (Some(ranged), Some(whole)),
                "below {below} MiB/s: the decision counted"
            );
            let made = relay.accepted() - before;
            let log = settled(&s3, &format!("capped-after-{below}"));
            assert_eq!(
                gets_of(&log, &key) - before_log,
                gets,
                "below {below} MiB/s through a 40 MiB/s cap: GETs of 4 windows"
            );
            assert!(
                connections.contains(&made),
                "below {below} MiB/s through a 40 MiB/s cap: {made} connections, expected \
                 {connections:?}"
            );
        }
    });
}

/// A written file's second segment replaced, after the reader listed it, by an object
/// half a MiB shorter: the read ends with an error, with and without read-ahead, instead
/// of sending fewer bytes than the size it announced (the same objects read whole, before,
/// are fine).
#[test]
fn s3_a_window_that_comes_back_short_ends_the_read_with_an_error() {
    for kind in [S3Kind::S3sFs, S3Kind::Moto] {
        let Some(s3) = server(kind) else {
            return;
        };
        rt().block_on(async {
            for n in [0, 4] {
                let prefix = format!("short{n}");
                let d = ahead(&s3, &prefix, n);
                let file = data(5, 17 * MIB + 77);
                written_file(&d, "f/upload", &file).await;
                assert!(read_from(&d, "f/upload", 0).await.unwrap()[..] == file[..]);
                let (mut r, size) = d.reader("f/upload", 0).await.unwrap();
                assert_eq!(size, file.len() as u64);
                // the second segment (7 MiB from 6 MiB) is replaced by 6.5 MiB of it
                let seg = format!("{prefix}/f/%2Bupload/{:020}", 6 * MIB);
                let put = s3.put(&seg, &file[6 * MIB..12 * MIB + MIB / 2], &[]);
                assert_eq!(put.status, 200, "{}", put.text());
                let mut got = Vec::new();
                let read = r.read_to_end(&mut got).await;
                assert!(
                    read.is_err(),
                    "{}, {n} ahead: read {} of {size} bytes without an error",
                    kind.name(),
                    got.len()
                );
                assert!(got.len() < file.len());
                drop(r);
                assert!(none_held(&d).await, "memory left held after a failed read");
            }
        });
    }
}

/// A read dropped after its first bytes, while its windows ahead are fetched, gives their
/// memory back.
#[test]
fn s3_a_read_dropped_midway_gives_its_memory_back() {
    let Some(s3) = server(S3Kind::Moto) else {
        return;
    };
    rt().block_on(async {
        let object = data(6, 6 * WINDOW);
        let d = ahead(&s3, "dropped", 4);
        d.put_content("big", object.clone()).await.unwrap();
        let (mut r, _) = d.reader("big", 0).await.unwrap();
        let mut first = vec![0u8; 4096];
        r.read_exact(&mut first).await.unwrap();
        assert_eq!(first[..], object[..4096]);
        let held = d.inner().read_ahead_held();
        assert!(
            held > 0 && held <= 4 * WINDOW as u64,
            "windows ahead hold {held} bytes while the first is read"
        );
        // what `/metrics` shows an operator
        let gauge = |name: &str| {
            d.inner()
                .metrics()
                .into_iter()
                .find(|g| g.name == name)
                .map(|g| g.value)
        };
        let shown = gauge("berth_registry_s3_read_ahead_bytes").unwrap();
        assert!(shown > 0 && shown <= 4 * WINDOW as u64, "{shown}");
        assert_eq!(
            gauge("berth_registry_s3_read_ahead_limit_bytes"),
            Some(256 << 20)
        );
        drop(r);
        assert!(
            none_held(&d).await,
            "{} bytes still held",
            d.inner().read_ahead_held()
        );
        assert_eq!(gauge("berth_registry_s3_read_ahead_bytes"), Some(0));
    });
}
