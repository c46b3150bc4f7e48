//! Large reads as ranged GETs in flight at once, streamed in order.
//!
//! One GET streams an object at whatever rate one connection to the S3 service gets.
//! AWS's guidance for large objects is the opposite of one GET: fetch byte ranges of the
//! same object over concurrent connections, 8 or 16 MB each, aligned with the parts it was
//! uploaded in ("Best Practices Design Patterns: Optimizing Amazon S3 Performance", *Use
//! Byte-Range Fetches*). distribution's S3 driver streams a blob with one GET.
//!
//! [`Ranged`] splits a read into *windows* of the driver's part size (at most
//! [`MAX_WINDOW`]), aligned to window boundaries within each object. The window being
//! sent is streamed as it arrives; up to `ahead` windows after it are fetched at once,
//! each by a task of its own into memory, and sent in turn. What the windows fetched ahead
//! hold, across every read of the process, is bounded by one budget ([`Budget`]); when it
//! is spent a read goes on one streamed window at a time, as with `ahead = 0`, and never
//! waits for another read's memory.
//!
//! A read whose plan has a [`Plan::split_below`] rate first times its first window: the
//! time the read waits on it after its first chunk, against the bytes that came. At 2 MiB
//! (or the window's end) it decides. Slower than the rate, one connection is what bounds
//! the read (a service that caps each connection, as S3 does), and the rest is fetched in
//! windows, `ahead` at once, while the first window goes on streaming. As fast or faster,
//! the service gives one connection all it has (a server on the same machine or network,
//! whose CPU is the bound), and the rest of each object or segment is one GET, as
//! distribution reads: ranged GETs would only cost that server more work per byte. The GET
//! of the rest is opened as soon as that is decided, so its answer is there when the first
//! window ends; spans no longer than a window (a written file's short segments) are still
//! fetched `ahead` at once either way.
//!
//! Each window's length is checked: a window that ends short (an object shorter than its
//! listing said) ends the read with an error instead of sending the next window's bytes in
//! its place. Windows are fetched without `If-Match`: what is read this way never changes
//! in place (blobs are keyed by their digest; a written file's segments are written once).
//! A read dropped midway aborts its fetches.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::storage::ByteStream;

/// The largest window, whatever the part size (AWS: 8 or 16 MB).
pub const MAX_WINDOW: u64 = 16 * 1024 * 1024;
/// What windows fetched ahead may hold at once, across all reads of the process.
pub const BUDGET_BYTES: u64 = 256 * 1024 * 1024;
/// The budget's unit: a semaphore permit stands for this many bytes.
const UNIT: u64 = 64 * 1024;
/// Bytes of the first window timed before a read decides how to fetch the rest.
pub const PROBE_BYTES: u64 = 2 * 1024 * 1024;

/// How a read fetches what follows its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Window length (`u64::MAX`: one GET per span).
    pub window: u64,
    /// Windows fetched at once ahead of the one sent.
    pub ahead: usize,
    /// Some: time the first window, and fetch the rest in windows only if S3 sent it
    /// slower than this many bytes a second; None: windows from the start.
    pub split_below: Option<u64>,
}

impl Plan {
    /// Every span with one GET, nothing ahead.
    pub fn whole() -> Plan {
        Plan {
            window: u64::MAX,
            ahead: 0,
            split_below: None,
        }
    }
}

/// What timed reads decided, since the process started: for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Decisions(Arc<[AtomicU64; 2]>);

impl Decisions {
    fn record(&self, ranged: bool) {
        self.0[usize::from(ranged)].fetch_add(1, Ordering::Relaxed);
    }

    /// Reads whose first window came slowly: the rest went as ranged GETs.
    pub fn ranged(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }

    /// Reads whose first window came fast: the rest went whole.
    pub fn whole(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }
}

/// The first window's timing: how long the read waited on S3 for the bytes it got.
#[derive(Debug, Default)]
struct Probe {
    /// Bytes that came after the first chunk (the wait for the first is the server's
    /// latency, not the connection's rate).
    bytes: u64,
    first_seen: bool,
    waited: Duration,
    waiting_since: Option<Instant>,
}

impl Probe {
    /// A poll of the stream returned `pending` or not.
    fn polled(&mut self, pending: bool) {
        if self.first_seen && (pending != self.waiting_since.is_some()) {
            self.polled_at(pending, Instant::now());
        }
    }

    /// [`Probe::polled`] at `now`.
    fn polled_at(&mut self, pending: bool, now: Instant) {
        if !self.first_seen {
            return;
        }
        if pending {
            if self.waiting_since.is_none() {
                self.waiting_since = Some(now);
            }
        } else if let Some(t) = self.waiting_since.take() {
            self.waited += now.saturating_duration_since(t);
        }
    }

    fn chunk(&mut self, n: u64) {
        if self.first_seen {
            self.bytes += n;
        } else {
            self.first_seen = true;
        }
    }

    /// Whether S3 sent what was timed slower than `below` bytes a second.
    fn slower_than(&self, below: u64) -> bool {
        slower_than(self.bytes, self.waited, below)
    }
}

/// `bytes` that took `waited` came slower than `below` bytes a second; nothing waited for
/// is as fast as can be.
fn slower_than(bytes: u64, waited: Duration, below: u64) -> bool {
    (bytes as f64) < waited.as_secs_f64() * below as f64
}

/// Memory for windows fetched ahead, shared by every read of one driver.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Semaphore>);

impl Budget {
    pub fn new(bytes: u64) -> Budget {
        let units = usize::try_from(bytes / UNIT).unwrap_or(usize::MAX);
        Budget(Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))))
    }

    /// Room for `len` bytes, if there is some now.
    fn try_take(&self, len: u64) -> Option<OwnedSemaphorePermit> {
        let units = u32::try_from(len.div_ceil(UNIT)).ok()?;
        self.0.clone().try_acquire_many_owned(units).ok()
    }

    /// Bytes free now.
    pub fn available_bytes(&self) -> u64 {
        self.0.available_permits() as u64 * UNIT
    }
}

/// Bytes `start..end` of the object at `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub key: Key,
    pub start: u64,
    pub end: u64,
}

impl Span {
    /// This span cut at window boundaries (multiples of `window` within the object).
    fn windows(&self, window: u64) -> impl Iterator<Item = Span> + '_ {
        let window = window.max(1);
        let mut at = self.start;
        std::iter::from_fn(move || {
            if at >= self.end {
                return None;
            }
            let end = ((at / window + 1) * window).min(self.end);
            let w = Span {
                key: self.key.clone(),
                start: at,
                end,
            };
            at = end;
            Some(w)
        })
    }

    fn len(&self) -> u64 {
        self.end - self.start
    }
}

type Opening = Pin<Box<dyn Future<Output = io::Result<ByteStream>> + Send>>;

/// A fetch started by a task ahead of its turn; aborted when dropped unfinished.
enum Ahead {
    /// A window read into memory, holding its share of the budget.
    Window {
        task: JoinHandle<io::Result<Vec<Bytes>>>,
        _permit: OwnedSemaphorePermit,
    },
    /// A span longer than a window (the rest of an object that comes fast), its GET
    /// opened: its bytes are streamed in turn.
    Open {
        task: JoinHandle<io::Result<ByteStream>>,
        len: u64,
    },
}

impl Drop for Ahead {
    fn drop(&mut self) {
        match self {
            Ahead::Window { task, .. } => task.abort(),
            Ahead::Open { task, .. } => task.abort(),
        }
    }
}

enum Current {
    Opening(Opening, u64),
    Streaming(ByteStream, u64),
    Waiting(Ahead),
    /// A window fetched ahead, sent chunk by chunk; its memory is given back when done.
    Buffered {
        chunks: VecDeque<Bytes>,
        _held: Option<Ahead>,
    },
}

/// The read: see the module documentation.
pub struct Ranged {
    store: Arc<AmazonS3>,
    path: Arc<str>,
    budget: Budget,
    window: u64,
    ahead_max: usize,
    /// `ahead_max` once the first window proves slow.
    ahead_split: usize,
    /// While the first window is timed: the rate below which the rest goes in windows.
    split_below: Option<u64>,
    probe: Probe,
    decisions: Decisions,
    pending: VecDeque<Span>,
    ahead: VecDeque<Ahead>,
    current: Option<Current>,
}

impl Ranged {
    /// A read of `spans` in order, as `plan` says. `first`, when given, is a GET already
    /// answered and how many bytes it brings (it is streamed before the spans, and timed
    /// when the plan says so: then it is the first window, and the spans start at a window
    /// boundary or at another object).
    pub fn new(
        store: Arc<AmazonS3>,
        path: &str,
        budget: Budget,
        decisions: Decisions,
        plan: Plan,
        first: Option<(ByteStream, u64)>,
        spans: &[Span],
    ) -> Ranged {
        let spans = spans.iter().filter(|s| s.end > s.start);
        let pending: VecDeque<Span> = match plan.split_below {
            None => spans.flat_map(|s| s.windows(plan.window)).collect(),
            // whole spans until the first window is timed; without a GET answered, the
            // first span's first window is that window
            Some(_) => {
                let mut pending: VecDeque<Span> = spans.cloned().collect();
                if first.is_none()
                    && let Some(s) = pending.pop_front()
                {
                    let mut w = s.windows(plan.window);
                    let head = w.next();
                    let rest = Span {
                        key: s.key.clone(),
                        start: head.as_ref().map_or(s.start, |h| h.end),
                        end: s.end,
                    };
                    if rest.end > rest.start {
                        pending.push_front(rest);
                    }
                    if let Some(head) = head {
                        pending.push_front(head);
                    }
                }
                pending
            }
        };
        Ranged {
            store,
            path: path.into(),
            budget,
            window: plan.window,
            // nothing ahead while the first window is timed
            ahead_max: if plan.split_below.is_some() {
                0
            } else {
                plan.ahead
            },
            ahead_split: plan.ahead,
            split_below: plan.split_below,
            probe: Probe::default(),
            decisions,
            pending,
            ahead: VecDeque::new(),
            current: first.map(|(s, len)| Current::Streaming(s, len)),
        }
    }

    /// The first window timed as far as it goes: fetch the rest in windows, or each span
    /// longer than a window whole; either way `ahead_split` fetches at once, so a read of
    /// many short segments still fetches them together.
    fn decide(&mut self) {
        let Some(below) = self.split_below.take() else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let slow = self.probe.slower_than(below);
        self.decisions.record(slow);
        if slow {
            let window = self.window;
            self.pending = self
                .pending
                .drain(..)
                .flat_map(|s| s.windows(window).collect::<Vec<_>>())
                .collect();
        }
        self.ahead_max = self.ahead_split;
        self.top_up();
    }

    /// Start the next fetches while there is room: windows into memory while the budget
    /// lasts, and a span longer than a window by opening its GET (one at a time).
    fn top_up(&mut self) {
        while self.ahead.len() < self.ahead_max {
            let Some(w) = self.pending.front() else {
                return;
            };
            if w.len() > self.window {
                if self.ahead.iter().any(|a| matches!(a, Ahead::Open { .. })) {
                    return;
                }
                let Some(w) = self.pending.pop_front() else {
                    return;
                };
                let len = w.len();
                let task = tokio::spawn(open(self.store.clone(), self.path.clone(), w));
                self.ahead.push_back(Ahead::Open { task, len });
                continue;
            }
            let Some(permit) = self.budget.try_take(w.len()) else {
                return;
            };
            let Some(w) = self.pending.pop_front() else {
                return;
            };
            let store = self.store.clone();
            let path = self.path.clone();
            let task = tokio::spawn(async move {
                let mut s = open(store, path.clone(), w.clone()).await?;
                let mut got = Vec::new();
                let mut n = 0u64;
                while let Some(b) = s.next().await {
                    let b = b?;
                    n += b.len() as u64;
                    got.push(b);
                }
                check_len(&path, &w, n)?;
                Ok(got)
            });
            self.ahead.push_back(Ahead::Window {
                task,
                _permit: permit,
            });
        }
    }
}

/// A GET of `w` as a stream of its bytes.
async fn open(store: Arc<AmazonS3>, path: Arc<str>, w: Span) -> io::Result<ByteStream> {
    let opts = GetOptions {
        range: Some(GetRange::Bounded(w.start..w.end)),
        ..GetOptions::default()
    };
    let r = store.get_opts(&w.key, opts).await.map_err(|e| {
        io::Error::other(format!(
            "failed to read bytes {}..{} of {} ({path}) from S3: {e}",
            w.start, w.end, w.key
        ))
    })?;
    Ok(r.into_stream().map_err(io::Error::other).boxed())
}

/// A fetch's task that ended without an answer (aborted, or panicked).
fn task_ended(path: &str, e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("{path}: a ranged read's task ended: {e}"))
}

fn check_len(path: &str, w: &Span, got: u64) -> io::Result<()> {
    if got == w.len() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{path}: S3 sent {got} bytes of {}..{} of {}, expected {}",
            w.start,
            w.end,
            w.key,
            w.len()
        ),
    ))
}

impl Stream for Ranged {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.current.is_none() {
                this.current = if let Some(a) = this.ahead.pop_front() {
                    Some(Current::Waiting(a))
                } else if let Some(w) = this.pending.pop_front() {
                    let len = w.len();
                    Some(Current::Opening(
                        Box::pin(open(this.store.clone(), this.path.clone(), w)),
                        len,
                    ))
                } else {
                    return Poll::Ready(None);
                };
            }
            this.top_up();
            let Some(current) = this.current.as_mut() else {
                continue;
            };
            match current {
                Current::Opening(f, len) => {
                    let len = *len;
                    match ready!(f.as_mut().poll(cx)) {
                        Ok(s) => this.current = Some(Current::Streaming(s, len)),
                        Err(e) => return this.fail(e),
                    }
                }
                Current::Streaming(s, left) => {
                    let polled = s.poll_next_unpin(cx);
                    let timed = this.split_below.is_some();
                    if timed {
                        this.probe.polled(polled.is_pending());
                    }
                    match ready!(polled) {
                        Some(Ok(b)) => {
                            let n = b.len() as u64;
                            if n > *left {
                                let e = io::Error::other(format!(
                                    "{}: S3 sent {} bytes more than the range asked for",
                                    this.path,
                                    n - *left
                                ));
                                return this.fail(e);
                            }
                            *left -= n;
                            if timed {
                                this.probe.chunk(n);
                                if this.probe.bytes >= PROBE_BYTES {
                                    this.decide();
                                }
                            }
                            return Poll::Ready(Some(Ok(b)));
                        }
                        Some(Err(e)) => return this.fail(e),
                        None if *left > 0 => {
                            let e = io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("{}: S3 ended a range {left} bytes short", this.path),
                            );
                            return this.fail(e);
                        }
                        None => {
                            this.current = None;
                            this.decide();
                        }
                    }
                }
                Current::Waiting(Ahead::Open { task, len }) => {
                    let len = *len;
                    match ready!(Pin::new(task).poll(cx)) {
                        Ok(Ok(s)) => this.current = Some(Current::Streaming(s, len)),
                        Ok(Err(e)) => return this.fail(e),
                        Err(e) => return this.fail(task_ended(&this.path, e)),
                    }
                }
                Current::Waiting(Ahead::Window { task, .. }) => {
                    match ready!(Pin::new(task).poll(cx)) {
                        Ok(Ok(chunks)) => {
                            let a = match this.current.take() {
                                Some(Current::Waiting(a)) => Some(a),
                                _ => None,
                            };
                            this.current = Some(Current::Buffered {
                                chunks: chunks.into(),
                                _held: a,
                            });
                        }
                        Ok(Err(e)) => return this.fail(e),
                        Err(e) => return this.fail(task_ended(&this.path, e)),
                    }
                }
                Current::Buffered { chunks, .. } => match chunks.pop_front() {
                    Some(b) => return Poll::Ready(Some(Ok(b))),
                    // the window's memory goes back to the budget here
                    None => this.current = None,
                },
            }
        }
    }
}

impl Ranged {
    /// End the read with `e`: nothing after it is sent, and the fetches ahead stop.
    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.pending.clear();
        self.ahead.clear();
        self.current = None;
        Poll::Ready(Some(Err(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64) -> Span {
        Span {
            key: Key::from("k"),
            start,
            end,
        }
    }

    #[test]
    fn windows_are_aligned_to_the_window_size_within_the_object() {
        let w: Vec<_> = span(3, 25).windows(10).map(|w| (w.start, w.end)).collect();
        assert_eq!(w, [(3, 10), (10, 20), (20, 25)]);
        let w: Vec<_> = span(0, 20).windows(10).map(|w| (w.start, w.end)).collect();
        assert_eq!(w, [(0, 10), (10, 20)]);
        assert_eq!(span(7, 7).windows(10).count(), 0);
    }

    #[test]
    fn a_first_window_is_slow_below_the_rate_and_fast_at_it() {
        let mib = 1 << 20;
        // 2 MiB waited for 20 ms: 100 MiB/s
        let waited = Duration::from_millis(20);
        assert!(slower_than(2 * mib, waited, 256 * mib));
        assert!(!slower_than(2 * mib, waited, 100 * mib));
        assert!(!slower_than(2 * mib, waited, 64 * mib));
        // nothing waited for: as fast as can be
        assert!(!slower_than(2 * mib, Duration::ZERO, u64::MAX));
    }

    #[test]
    fn a_probe_times_the_waits_after_the_first_chunk_only() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Probe::default();
        // the wait for the first chunk is the server's latency
        p.polled_at(true, at(0));
        p.polled_at(false, at(30));
        p.chunk(1000);
        assert_eq!((p.bytes, p.waited), (0, Duration::ZERO));
        // waits count from the first pending poll to the next ready one
        p.polled_at(true, at(31));
        p.polled_at(true, at(33));
        p.polled_at(false, at(36));
        p.chunk(4096);
        assert_eq!((p.bytes, p.waited), (4096, Duration::from_millis(5)));
        // a chunk there when polled adds bytes and no wait
        p.polled_at(false, at(50));
        p.chunk(4096);
        assert_eq!((p.bytes, p.waited), (8192, Duration::from_millis(5)));
        assert!(p.slower_than(2 << 20), "8 KiB in 5 ms is 1.6 MB/s");
        assert!(!p.slower_than(1 << 20));
    }

    #[test]
    fn the_budget_gives_what_it_has_and_takes_it_back() {
        let b = Budget::new(4 * UNIT);
        let one = b.try_take(3 * UNIT).expect("room for 3 units");
        assert!(b.try_take(2 * UNIT).is_none(), "only one unit left");
        let two = b.try_take(UNIT - 1).expect("a part of a unit is a unit");
        assert_eq!(b.available_bytes(), 0);
        drop(one);
        drop(two);
        assert_eq!(b.available_bytes(), 4 * UNIT);
    }
}
