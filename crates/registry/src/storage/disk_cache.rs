//! A replica's local disk tier for large blobs read from object storage: the second and
//! later GETs of a hot layer are served from a file on this machine instead of the bucket.
//!
//! Over object storage every blob GET streams from the S3 service, so a registry can pull
//! no faster than the service serves (and pays for every byte it does). The in-memory
//! [`super::BlobCache`] keeps only small blobs. This tier keeps the bytes of larger ones, as
//! the GETs that read them stream past: the chunks of the response body are shared (not
//! copied) with a thread of its own, at the lowest CPU priority, that writes them to a
//! temporary file, renamed into place once all `size` bytes arrived. A fill that falls too
//! far behind (the queued chunks of all fills over [`QUEUE_BYTES`]), fails to write, or
//! whose client went away is abandoned and its file removed; the client never waits for it.
//!
//! # Why serving from it is safe with replicas
//! The same argument as the in-memory cache's (`cache.rs`): an entry is keyed by digest, and
//! its bytes are what storage held under that digest's data, which was verified before it
//! became visible and never changes. The tier only replaces *where the bytes come from*: a
//! GET reaches it only after the repository's link was read from storage and the blob's
//! existence answered as before, so a blob deleted through any replica is a 404 here too.
//! Every eviction of the in-memory cache (storage found the data missing, a collection by
//! this process) evicts here as well, and a fill that started before a collection emptied the
//! tier is not kept (a generation count).
//!
//! # Bounds and lifetime
//! The files' total size never exceeds `max_bytes`: least recently used files are deleted
//! first, and a blob larger than a quarter of it is never kept. A fill is also skipped when
//! the file system would be left with less than [`MIN_FREE`] free. The tier lives as long as
//! the process: opening it takes an exclusive lock on the directory (a second replica given
//! the same directory runs without one) and deletes what an earlier process left, since
//! files written without `fsync` are not trusted across a crash.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::BoxReader;
use super::blobs::BlobStream;
use berth_oci::Digest;
use bytes::Bytes;
use futures_util::Stream;

/// Default bound of the tier: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Free space a fill leaves on the file system at least: 1 GiB.
pub const MIN_FREE: u64 = 1 << 30;
/// Bytes all fills together may have queued for their writers: a chunk that would go over
/// abandons its fill. (The chunks are the response's own, kept until written.)
pub const QUEUE_BYTES: u64 = 128 << 20;
/// The writers' nice value: they use CPU the serving does not.
const WRITER_NICE: i32 = 19;
/// A kept file is read in chunks of this size, at most [`READ_AHEAD`] of them ahead of the
/// client.
const READ_CHUNK: usize = 1 << 20;
const READ_AHEAD: usize = 4;
/// Fills under way at once (a thread each); GETs beyond them stream without one.
const MAX_FILLS: usize = 8;
/// The lock file's name; every other name in the directory belongs to the tier.
const LOCK: &str = ".lock";

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DiskStats {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    abandoned: AtomicU64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

impl DiskStats {
    /// GETs served from a file.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
    /// GETs of blobs it could hold that went to storage.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
    /// Files kept whole.
    pub fn fills(&self) -> u64 {
        self.fills.load(Ordering::Relaxed)
    }
    /// Fills given up (queue full, write failed, client gone, collection).
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }
    /// Bytes in the kept files.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Kept files.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Entry {
    size: u64,
    tick: u64,
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<Digest, Entry>,
    order: BTreeMap<u64, Digest>,
    filling: HashSet<Digest>,
    tick: u64,
    bytes: u64,
    generation: u64,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    stats: Arc<DiskStats>,
    temp_seq: AtomicU64,
    /// Bytes queued for the writers of all fills, not yet written.
    queued: AtomicU64,
    /// Held for the tier's life: the directory's exclusive lock.
    _lock: File,
}

/// The disk tier; cheap to clone (shared by the fills' threads).
#[derive(Debug, Clone)]
pub struct DiskCache {
    inner: Arc<Inner>,
}

/// Why the tier could not be opened (the registry then runs without it).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot prepare the blob cache directory {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the blob cache directory {} is in use by another process; give each replica its own (storage.cache.disk_dir or --data)",
        dir.display()
    )]
    InUse { dir: PathBuf },
}

fn file_name(d: &Digest) -> String {
    format!("{}-{}", d.algorithm().as_str(), d.hex())
}

impl DiskCache {
    /// Open the tier in `dir` (created 0700), holding at most `max_bytes`; what an earlier
    /// process left there is deleted.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<DiskCache, OpenError> {
        let io = |source| OpenError::Io {
            dir: dir.to_owned(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(LOCK))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::InUse {
                    dir: dir.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_name() != LOCK {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
        Ok(DiskCache {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                max_bytes,
                state: Mutex::new(State::default()),
                stats: Arc::new(DiskStats::default()),
                temp_seq: AtomicU64::new(0),
                queued: AtomicU64::new(0),
                _lock: lock,
            }),
        })
    }

    /// The counters (shared: they outlive a borrow of the tier).
    pub fn stats(&self) -> Arc<DiskStats> {
        self.inner.stats.clone()
    }

    /// Whether a blob of `size` bytes may be kept.
    pub fn keeps(&self, size: u64) -> bool {
        size > 0 && size <= self.inner.max_bytes / 4
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path_of(&self, d: &Digest) -> PathBuf {
        self.inner.dir.join(file_name(d))
    }

    fn publish(&self, st: &State) {
        let s = &self.inner.stats;
        s.bytes.store(st.bytes, Ordering::Relaxed);
        s.entries.store(st.map.len() as u64, Ordering::Relaxed);
    }

    /// The file holding blob `d`, opened and checked, with its size (marked used).
    async fn open_kept(&self, d: &Digest) -> Option<(File, u64)> {
        let size = {
            let mut st = self.lock();
            let tick = st.tick + 1;
            let e = st.map.get_mut(d)?;
            let old = std::mem::replace(&mut e.tick, tick);
            let size = e.size;
            st.tick = tick;
            st.order.remove(&old);
            st.order.insert(tick, d.clone());
            size
        };
        let path = self.path_of(d);
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
            let f = File::open(&path)?;
            if f.metadata()?.len() != size {
                return Err(std::io::Error::other("size changed"));
            }
            Ok(f)
        })
        .await;
        match opened {
            Ok(Ok(f)) => {
                self.inner.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some((f, size))
            }
            Ok(Err(e)) => {
                tracing::debug!(digest = %d, error = %e, "blob cache file unusable; reading storage");
                self.evict(d);
                None
            }
            Err(_) => None,
        }
    }

    /// A reader of blob `d` from `offset` with its size, when a file holds it. The caller
    /// scoped the read by a repository link read from storage first.
    pub async fn open_blob(&self, d: &Digest, offset: u64) -> Option<(BoxReader, u64)> {
        let (mut f, size) = self.open_kept(d).await?;
        if offset > 0 && f.seek(SeekFrom::Start(offset)).is_err() {
            return None;
        }
        let mut file = tokio::fs::File::from_std(f);
        file.set_max_buf_size(READ_CHUNK);
        Some((Box::pin(file), size))
    }

    /// `len` bytes of blob `d` from `offset` as a response body, when a file holds it: read
    /// ahead in chunks of [`READ_CHUNK`] by a blocking thread, each chunk read straight into
    /// the buffer the body sends. The caller scoped the read by a repository link read from
    /// storage first.
    pub async fn stream_blob(&self, d: &Digest, offset: u64, len: u64) -> Option<BlobStream> {
        let (mut f, size) = self.open_kept(d).await?;
        let end = offset.saturating_add(len).min(size);
        if offset > 0 && f.seek(SeekFrom::Start(offset)).is_err() {
            return None;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(READ_AHEAD);
        let (cache, d) = (self.clone(), d.clone());
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut pos = offset;
            while pos < end {
                let n = usize::try_from(end - pos).map_or(READ_CHUNK, |left| left.min(READ_CHUNK));
                // read into spare capacity: no zeroing of the buffer first
                let mut buf = Vec::with_capacity(n);
                let read = match (&mut f).take(n as u64).read_to_end(&mut buf) {
                    Ok(got) if got == n => Ok(Bytes::from(buf)),
                    Ok(got) => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the blob cache file ended {} bytes early", n - got),
                    )),
                    Err(e) => Err(e),
                };
                if let Err(e) = &read {
                    // the response ends short (its length was sent): the client sees a
                    // failed transfer, and the next GET reads storage
                    tracing::warn!(digest = %d, error = %e, "blob cache file unreadable; evicted");
                    cache.evict(&d);
                    let _ = tx.blocking_send(read);
                    return;
                }
                // a closed channel: the client went away
                if tx.blocking_send(read).is_err() {
                    return;
                }
                pos += n as u64;
            }
        });
        Some(Box::pin(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })))
    }

    /// `stream` (of blob `d`'s `size` bytes, from the start, read from storage) copied to
    /// the tier as the caller reads it, when `d` may be kept and is not kept or being kept
    /// already; else `stream` as it is.
    pub fn fill(&self, d: &Digest, size: u64, stream: BlobStream) -> BlobStream {
        if !self.keeps(size) {
            return stream;
        }
        self.inner.stats.misses.fetch_add(1, Ordering::Relaxed);
        let generation = {
            let mut st = self.lock();
            if st.map.contains_key(d)
                || st.filling.len() >= MAX_FILLS
                || !st.filling.insert(d.clone())
            {
                return stream;
            }
            st.generation
        };
        if free_bytes(&self.inner.dir).is_some_and(|free| free < size.saturating_add(MIN_FREE)) {
            self.end_fill(d);
            return stream;
        }
        let seq = self.inner.temp_seq.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .inner
            .dir
            .join(format!("tmp-{}-{seq}", std::process::id()));
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %temp.display(), error = %e, "cannot start a blob cache file");
                self.end_fill(d);
                return stream;
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let cleanup = (temp.clone(), d.clone());
        let job = FillJob {
            cache: self.clone(),
            digest: d.clone(),
            size,
            generation,
            temp,
            file,
        };
        if let Err(e) = std::thread::Builder::new()
            .name("blob-cache-fill".into())
            .spawn(move || job.run(rx))
        {
            tracing::debug!(error = %e, "cannot start a blob cache fill");
            let _ = std::fs::remove_file(&cleanup.0);
            self.end_fill(&cleanup.1);
            return stream;
        }
        Box::pin(Tee {
            inner: stream,
            tx: Some(tx),
            cache: self.clone(),
        })
    }

    fn end_fill(&self, d: &Digest) {
        self.lock().filling.remove(d);
    }

    /// Keep the file `temp` holding `d`'s `size` bytes, unless a clear came after the fill
    /// began; then delete the least recently used files until the bound holds.
    fn commit(&self, d: &Digest, size: u64, generation: u64, temp: &Path) -> bool {
        let mut st = self.lock();
        st.filling.remove(d);
        if st.generation != generation || st.map.contains_key(d) {
            return false;
        }
        // Not durable on purpose: the tier is deleted whenever a process opens it.
        #[expect(
            clippy::disallowed_methods,
            reason = "a cache file, deleted at every start, needs no fsync"
        )]
        let renamed = std::fs::rename(temp, self.path_of(d));
        if renamed.is_err() {
            return false;
        }
        st.tick += 1;
        let tick = st.tick;
        st.map.insert(d.clone(), Entry { size, tick });
        st.order.insert(tick, d.clone());
        st.bytes += size;
        while st.bytes > self.inner.max_bytes {
            let Some((_, oldest)) = st.order.pop_first() else {
                break;
            };
            if let Some(e) = st.map.remove(&oldest) {
                st.bytes -= e.size;
                let _ = std::fs::remove_file(self.path_of(&oldest));
            }
        }
        self.inner.stats.fills.fetch_add(1, Ordering::Relaxed);
        self.publish(&st);
        true
    }

    /// Forget `d` and delete its file (storage said its data is gone, or this process
    /// deleted it).
    pub fn evict(&self, d: &Digest) {
        let mut st = self.lock();
        if let Some(e) = st.map.remove(d) {
            st.order.remove(&e.tick);
            st.bytes -= e.size;
            let _ = std::fs::remove_file(self.path_of(d));
        }
        self.publish(&st);
    }

    /// Forget everything and delete the files; fills under way are not kept (after a
    /// garbage collection).
    pub fn clear(&self) {
        let mut st = self.lock();
        for d in st.map.keys() {
            let _ = std::fs::remove_file(self.path_of(d));
        }
        st.map.clear();
        st.order.clear();
        st.bytes = 0;
        st.generation += 1;
        self.publish(&st);
    }
}

/// `statvfs` of `dir`: bytes available to unprivileged users.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// One fill's writer, on a thread of its own.
struct FillJob {
    cache: DiskCache,
    digest: Digest,
    size: u64,
    generation: u64,
    temp: PathBuf,
    file: File,
}

impl FillJob {
    fn run(mut self, rx: Receiver<Queued>) {
        // the lowest priority: a fill uses CPU the serving leaves (best effort: a failure
        // leaves the thread at the process's priority)
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), WRITER_NICE);
        let mut written = 0u64;
        let mut kept = false;
        while let Ok(chunk) = rx.recv() {
            written += chunk.bytes.len() as u64;
            if written > self.size || self.file.write_all(&chunk.bytes).is_err() {
                break;
            }
            if written == self.size {
                kept = self
                    .cache
                    .commit(&self.digest, self.size, self.generation, &self.temp);
                break;
            }
        }
        if !kept {
            self.cache.end_fill(&self.digest);
            self.cache
                .inner
                .stats
                .abandoned
                .fetch_add(1, Ordering::Relaxed);
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A chunk on its way to a writer, counted in [`QUEUE_BYTES`] until it is dropped (written,
/// or dropped with its channel).
struct Queued {
    bytes: Bytes,
    cache: Arc<Inner>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.cache
            .queued
            .fetch_sub(self.bytes.len() as u64, Ordering::Relaxed);
    }
}

/// The response body, with every chunk it yields also queued (shared, not copied) for the
/// fill's writer.
struct Tee {
    inner: BlobStream,
    tx: Option<Sender<Queued>>,
    cache: DiskCache,
}

impl Tee {
    fn queue(&mut self, chunk: &Bytes) {
        let Some(tx) = &self.tx else {
            return;
        };
        let len = chunk.len() as u64;
        let inner = &self.cache.inner;
        // the writers fell behind, or this one stopped: give the fill up, never the client
        if inner.queued.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            self.tx = None;
            return;
        }
        inner.queued.fetch_add(len, Ordering::Relaxed);
        let queued = Queued {
            bytes: chunk.clone(),
            cache: inner.clone(),
        };
        if tx.send(queued).is_err() {
            self.tx = None;
        }
    }
}

impl Stream for Tee {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled
            && !chunk.is_empty()
        {
            let chunk = chunk.clone();
            self.queue(&chunk);
        }
        polled
    }
}

/// Read a kept file whole (tests).
#[cfg(test)]
fn read_kept(c: &DiskCache, d: &Digest) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    File::open(c.path_of(d)).ok()?.read_to_end(&mut v).ok()?;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;

    fn blob(i: u8, len: usize) -> (Digest, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|j| (j as u8).wrapping_mul(31) ^ i).collect();
        (Digest::sha256_of(&data), data)
    }

    /// `data` as a response body of 64 KiB chunks.
    fn stream_of(data: &[u8]) -> BlobStream {
        let chunks: Vec<std::io::Result<Bytes>> = data
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    async fn collect(mut s: BlobStream) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some(c) = s.next().await {
            v.extend_from_slice(&c.unwrap());
        }
        v
    }

    /// Wait (bounded) for the fill of `d` to be kept or given up.
    async fn settled(c: &DiskCache, d: &Digest) {
        for _ in 0..500 {
            if !c.lock().filling.contains(d) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the fill of {d} did not finish in 1 s");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != LOCK)
            .collect();
        v.sort();
        v
    }

    async fn read_all(mut r: BoxReader) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).await.unwrap();
        v
    }

    #[tokio::test]
    async fn a_read_through_fills_and_the_next_read_comes_from_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 24).unwrap();
        let (d, data) = blob(1, 300_000);
        assert!(c.open_blob(&d, 0).await.is_none());
        let got = collect(c.fill(&d, data.len() as u64, stream_of(&data))).await;
        assert_eq!(got, data);
        settled(&c, &d).await;
        assert_eq!(read_kept(&c, &d).as_deref(), Some(&data[..]));
        let (r, size) = c.open_blob(&d, 0).await.expect("kept");
        assert_eq!(size, data.len() as u64);
        assert_eq!(read_all(r).await, data);
        let (r, _) = c.open_blob(&d, 1000).await.expect("kept");
        assert_eq!(read_all(r).await, &data[1000..]);
        let s = c.stats();
        assert_eq!((s.hits(), s.misses(), s.fills()), (2, 1, 1));
        assert_eq!((s.bytes(), s.entries()), (data.len() as u64, 1));
        // a second fill of a kept blob does not start
        let again = collect(c.fill(&d, data.len() as u64, stream_of(&data))).await;
        assert_eq!(again, data);
        assert_eq!(names(tmp.path()), vec![file_name(&d)]);
    }

    #[tokio::test]
    async fn a_partial_read_keeps_nothing_and_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 24).unwrap();
        let (d, data) = blob(2, 500_000);
        let mut r = c.fill(&d, data.len() as u64, stream_of(&data));
        r.next().await.unwrap().unwrap();
        drop(r); // the client went away
        settled(&c, &d).await;
        assert!(c.open_blob(&d, 0).await.is_none());
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
        assert_eq!(c.stats().abandoned(), 1);
        // storage that yields fewer bytes than it said: nothing kept either
        let short = collect(c.fill(&d, data.len() as u64 + 1, stream_of(&data))).await;
        assert_eq!(short.len(), data.len());
        settled(&c, &d).await;
        assert!(c.open_blob(&d, 0).await.is_none());
        assert!(names(tmp.path()).is_empty());
    }

    #[tokio::test]
    async fn the_bound_holds_least_recently_used_first() {
        let tmp = tempfile::tempdir().unwrap();
        let max = 1_000_000;
        let c = DiskCache::open(tmp.path(), max).unwrap();
        assert!(!c.keeps(max / 4 + 1), "a blob over a quarter is never kept");
        let blobs: Vec<_> = (0..6).map(|i| blob(i, 240_000)).collect();
        for (i, (d, data)) in blobs.iter().enumerate() {
            collect(c.fill(d, data.len() as u64, stream_of(data))).await;
            settled(&c, d).await;
            if i == 3 {
                // 0 is used again: 1 is now the oldest
                assert!(c.open_blob(&blobs[0].0, 0).await.is_some());
            }
            let s = c.stats();
            assert!(s.bytes() <= max, "{} bytes", s.bytes());
            let on_disk: u64 = names(tmp.path())
                .iter()
                .map(|n| std::fs::metadata(tmp.path().join(n)).unwrap().len())
                .sum();
            assert_eq!(on_disk, s.bytes(), "the files are the books");
        }
        assert_eq!(c.stats().entries(), 4);
        assert!(c.open_blob(&blobs[0].0, 0).await.is_some());
        assert!(c.open_blob(&blobs[1].0, 0).await.is_none());
        assert!(c.open_blob(&blobs[2].0, 0).await.is_none());
        for (d, _) in &blobs[3..] {
            assert!(c.open_blob(d, 0).await.is_some());
        }
    }

    #[tokio::test]
    async fn evict_and_clear_delete_and_a_fill_across_a_clear_is_not_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 24).unwrap();
        let (a, da) = blob(3, 100_000);
        let (b, db) = blob(4, 100_000);
        for (d, data) in [(&a, &da), (&b, &db)] {
            collect(c.fill(d, data.len() as u64, stream_of(data))).await;
            settled(&c, d).await;
        }
        c.evict(&a);
        assert!(c.open_blob(&a, 0).await.is_none());
        assert_eq!(names(tmp.path()), vec![file_name(&b)]);

        // a fill begun before a collection's clear finishes after it: not kept
        let (x, dx) = blob(5, 100_000);
        let mut r = c.fill(&x, dx.len() as u64, stream_of(&dx));
        r.next().await.unwrap().unwrap();
        c.clear();
        collect(r).await;
        settled(&c, &x).await;
        assert!(c.open_blob(&x, 0).await.is_none());
        assert!(c.open_blob(&b, 0).await.is_none());
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
        assert_eq!((c.stats().bytes(), c.stats().entries()), (0, 0));
    }

    #[test]
    fn a_writer_behind_by_the_queue_bound_ends_the_fill_and_the_count_comes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 30).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut tee = Tee {
            inner: stream_of(b""),
            tx: Some(tx),
            cache: c.clone(),
        };
        let chunk = Bytes::from(vec![7u8; 1 << 20]);
        let mut sent = 0u64;
        // no writer drains the queue: the fill stops at the bound
        while tee.tx.is_some() {
            tee.queue(&chunk);
            sent += chunk.len() as u64;
            assert!(
                sent <= QUEUE_BYTES + chunk.len() as u64,
                "queued past the bound"
            );
        }
        assert_eq!(c.inner.queued.load(Ordering::Relaxed), QUEUE_BYTES);
        tee.queue(&chunk); // later chunks pass through untouched
        assert_eq!(c.inner.queued.load(Ordering::Relaxed), QUEUE_BYTES);
        // half written, the rest dropped with the channel: nothing stays counted
        for q in rx
            .iter()
            .take((QUEUE_BYTES / 2 / chunk.len() as u64) as usize)
        {
            drop(q);
        }
        assert_eq!(c.inner.queued.load(Ordering::Relaxed), QUEUE_BYTES / 2);
        drop(rx);
        assert_eq!(c.inner.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn fills_at_once_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 30).unwrap();
        let blobs: Vec<_> = (0..MAX_FILLS as u8 + 2).map(|i| blob(i, 10_000)).collect();
        let streams: Vec<_> = blobs
            .iter()
            .map(|(d, data)| c.fill(d, data.len() as u64, stream_of(data)))
            .collect();
        assert_eq!(c.lock().filling.len(), MAX_FILLS);
        for s in streams {
            collect(s).await;
        }
        for (d, _) in &blobs {
            settled(&c, d).await;
        }
        assert_eq!(c.stats().entries(), MAX_FILLS as u64);
    }

    #[tokio::test]
    async fn a_file_cut_short_while_streamed_ends_the_stream_with_an_error_and_is_evicted() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 30).unwrap();
        // more chunks than the read-ahead holds: the reader waits on the channel before the cut
        let (d, data) = blob(7, (READ_AHEAD + 6) * READ_CHUNK + 5);
        collect(c.fill(&d, data.len() as u64, stream_of(&data))).await;
        settled(&c, &d).await;
        let mut s = c.stream_blob(&d, 0, data.len() as u64).await.expect("kept");
        // cut after the open checked the size
        std::fs::OpenOptions::new()
            .write(true)
            .open(tmp.path().join(file_name(&d)))
            .unwrap()
            .set_len(READ_CHUNK as u64 + 10)
            .unwrap();
        let (mut got, mut failed) = (0usize, false);
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(b) => got += b.len(),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
                    failed = true;
                }
            }
        }
        assert!(
            failed,
            "the stream ended without an error after {got} bytes"
        );
        assert!(got < data.len());
        assert_eq!(c.stats().entries(), 0, "evicted");
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
        // a ranged stream of a kept file starts where asked
        let (d2, data2) = blob(8, 2 * READ_CHUNK);
        collect(c.fill(&d2, data2.len() as u64, stream_of(&data2))).await;
        settled(&c, &d2).await;
        let part = collect(c.stream_blob(&d2, 12_345, 1_000_000).await.expect("kept")).await;
        assert_eq!(part, &data2[12_345..1_012_345]);
    }

    #[tokio::test]
    async fn a_file_changed_behind_the_tiers_back_is_not_served() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 24).unwrap();
        let (d, data) = blob(6, 100_000);
        collect(c.fill(&d, data.len() as u64, stream_of(&data))).await;
        settled(&c, &d).await;
        std::fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join(file_name(&d)))
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert!(c.open_blob(&d, 0).await.is_none());
        assert_eq!(c.stats().entries(), 0, "evicted");
    }

    #[test]
    #[expect(clippy::disallowed_methods, reason = "test fixtures")]
    fn one_process_per_directory_and_leftovers_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("sha256-abc"), b"left by a crash").unwrap();
        std::fs::write(tmp.path().join("tmp-1-0"), b"half").unwrap();
        let c = DiskCache::open(tmp.path(), 1 << 20).unwrap();
        assert!(names(tmp.path()).is_empty());
        match DiskCache::open(tmp.path(), 1 << 20) {
            Err(OpenError::InUse { dir }) => assert_eq!(dir, tmp.path()),
            other => panic!("a second open in the same directory: {other:?}"),
        }
        drop(c);
        DiskCache::open(tmp.path(), 1 << 20).expect("free again once the first is gone");
    }
}
