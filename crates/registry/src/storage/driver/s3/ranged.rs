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
use std::task::{Context, Poll, ready};

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

/// A window fetched ahead by a task; aborted when dropped unfinished.
struct Ahead {
    task: JoinHandle<io::Result<Vec<Bytes>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
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
    ahead_max: usize,
    pending: VecDeque<Span>,
    ahead: VecDeque<Ahead>,
    current: Option<Current>,
}

impl Ranged {
    /// A read of `spans` in order, in windows of `window` bytes (`u64::MAX`: one GET per
    /// span), `ahead` of them fetched ahead of the one streamed. `first`, when given, is a GET already answered for the
    /// first `first_len` bytes (it is streamed before the spans).
    pub fn new(
        store: Arc<AmazonS3>,
        path: &str,
        budget: Budget,
        window: u64,
        ahead: usize,
        first: Option<(ByteStream, u64)>,
        spans: &[Span],
    ) -> Ranged {
        let pending = spans
            .iter()
            .filter(|s| s.end > s.start)
            .flat_map(|s| s.windows(window).collect::<Vec<_>>())
            .collect();
        Ranged {
            store,
            path: path.into(),
            budget,
            ahead_max: ahead,
            pending,
            ahead: VecDeque::new(),
            current: first.map(|(s, len)| Current::Streaming(s, len)),
        }
    }

    /// Start fetching the next windows while there is room.
    fn top_up(&mut self) {
        while self.ahead.len() < self.ahead_max {
            let Some(w) = self.pending.front() else {
                return;
            };
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
            self.ahead.push_back(Ahead {
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
                Current::Streaming(s, left) => match ready!(s.poll_next_unpin(cx)) {
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
                    None => this.current = None,
                },
                Current::Waiting(a) => match ready!(Pin::new(&mut a.task).poll(cx)) {
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
                    Err(e) => {
                        let e = io::Error::other(format!(
                            "{}: a ranged read's task ended: {e}",
                            this.path
                        ));
                        return this.fail(e);
                    }
                },
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
