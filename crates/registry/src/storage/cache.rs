//! A bounded in-process read cache of content-addressed blob data: the bytes of small blobs
//! (manifests, image configs) and the size of any blob. On object storage every `stat` and
//! every small read is an HTTP round trip; a manifest GET, a blob HEAD and a manifest push's
//! checks of the blobs it names each make several. (distribution keeps a "blob descriptor
//! cache" for the same reason.)
//!
//! # What may be cached, and why that is safe with replicas
//! Replicas share one bucket and must behave as one registry: a tag moved, a manifest or a
//! blob deleted on one is seen by the others at once. So the cache holds **only what cannot
//! change while it exists**: the content of `blobs/<alg>/<hex>/data`, whose bytes are fixed
//! by its digest (they were verified before they became visible), and its size. Its key is
//! a [`Digest`], never a path, so nothing else — tags, repository links, revision records,
//! referrer records, upload sessions, the garbage collector's clock — can be put in it.
//!
//! A cached entry can only ever be wrong about one thing: that the data still exists. Blob
//! data is deleted only by the garbage collector, and only once no manifest in any
//! repository names the blob; every read the cache serves is first scoped by a repository
//! link read from storage (a blob's `_layers` link, a manifest's revision record, or a tag,
//! which a delete removes before the revision it names), never from the cache. So a manifest or blob deleted through any replica — its revision or link
//! removed — is a 404 on every other replica at once, warm cache or not, and a cached entry
//! that outlives its data (collected by another replica or process) is reachable only
//! through a link the collector is about to sweep (it removes links to collected content
//! in the same run). Three more rules close the gaps:
//! - [`crate::storage::Registry::mark_referenced`] — the check the collector's safety rests
//!   on — always asks storage, never the cache; when storage says the data is gone the
//!   entry is evicted, as it is when any read of the data finds it missing, so a stale
//!   entry heals on first contact instead of pinning a false "exists".
//! - A collection run through [`crate::storage::Registry::collect`] (this replica's own
//!   collector) empties the cache when it finishes.
//! - Only positive answers are cached: a blob that appears is seen at once.
//!
//! # Bounds
//! Entries are kept in least-recently-used order under one mutex (held for a few map
//! operations, never across an await). The total charge — each entry's content plus a fixed
//! [`ENTRY_OVERHEAD`] for the key and bookkeeping, so size-only entries count too — never
//! exceeds [`CacheLimits::max_bytes`], the number of entries never exceeds
//! [`CacheLimits::max_entries`], and content longer than [`CacheLimits::max_entry_bytes`]
//! is never kept (its size still is).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_oci::Digest;
use bytes::Bytes;

/// What one entry costs beyond its content: the digest string, the map slots, the order
/// index. An estimate, so that size-only entries are bounded by `max_bytes` as well.
pub const ENTRY_OVERHEAD: u64 = 256;

/// Default total charge: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default largest content kept: 4 MiB, the largest manifest a registry must accept.
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 4 * 1024 * 1024;
/// Default entry count.
pub const DEFAULT_MAX_ENTRIES: usize = 65_536;

/// How large the cache may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Total charge of all entries; 0 turns the cache off.
    pub max_bytes: u64,
    /// Number of entries; 0 turns the cache off.
    pub max_entries: usize,
    /// Longest content kept; 0 keeps sizes only.
    pub max_entry_bytes: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
        }
    }
}

impl CacheLimits {
    /// No cache at all: every read goes to storage.
    pub const OFF: CacheLimits = CacheLimits {
        max_bytes: 0,
        max_entries: 0,
        max_entry_bytes: 0,
    };

    fn enabled(&self) -> bool {
        self.max_bytes >= ENTRY_OVERHEAD && self.max_entries > 0
    }
}

/// Which kind of lookup a hit or miss was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A blob's size (HEAD, a manifest push's reference check).
    Size,
    /// A small blob's bytes (manifest GET, config GET).
    Content,
}

/// Counters for `/metrics`, shared with [`crate::metrics::Metrics`].
#[derive(Debug, Default)]
pub struct CacheStats {
    size_hits: AtomicU64,
    size_misses: AtomicU64,
    content_hits: AtomicU64,
    content_misses: AtomicU64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

impl CacheStats {
    pub fn hits(&self, kind: Lookup) -> u64 {
        match kind {
            Lookup::Size => self.size_hits.load(Ordering::Relaxed),
            Lookup::Content => self.content_hits.load(Ordering::Relaxed),
        }
    }

    pub fn misses(&self, kind: Lookup) -> u64 {
        match kind {
            Lookup::Size => self.size_misses.load(Ordering::Relaxed),
            Lookup::Content => self.content_misses.load(Ordering::Relaxed),
        }
    }

    /// The current total charge (content plus [`ENTRY_OVERHEAD`] per entry).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    fn count(&self, kind: Lookup, hit: bool) {
        let c = match (kind, hit) {
            (Lookup::Size, true) => &self.size_hits,
            (Lookup::Size, false) => &self.size_misses,
            (Lookup::Content, true) => &self.content_hits,
            (Lookup::Content, false) => &self.content_misses,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Entry {
    size: u64,
    content: Option<Bytes>,
    tick: u64,
}

impl Entry {
    fn charge(&self) -> u64 {
        ENTRY_OVERHEAD + self.content.as_ref().map_or(0, |c| c.len() as u64)
    }
}

/// The LRU proper: entries by digest, digests by last use.
#[derive(Debug, Default)]
struct Lru {
    map: HashMap<Digest, Entry>,
    order: BTreeMap<u64, Digest>,
    tick: u64,
    bytes: u64,
}

impl Lru {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Mark `d` used now; its entry, if any.
    fn touch(&mut self, d: &Digest) -> Option<&Entry> {
        let tick = self.next_tick();
        let e = self.map.get_mut(d)?;
        self.order.remove(&e.tick);
        e.tick = tick;
        self.order.insert(tick, d.clone());
        Some(e)
    }

    fn remove(&mut self, d: &Digest) {
        if let Some(e) = self.map.remove(d) {
            self.order.remove(&e.tick);
            self.bytes -= e.charge();
        }
    }

    /// Insert or replace `d`'s entry, then drop the least recently used entries until both
    /// limits hold again. The caller checked the entry alone fits.
    fn put(&mut self, d: &Digest, size: u64, content: Option<Bytes>, limits: &CacheLimits) {
        self.remove(d);
        let tick = self.next_tick();
        let e = Entry {
            size,
            content,
            tick,
        };
        self.bytes += e.charge();
        self.map.insert(d.clone(), e);
        self.order.insert(tick, d.clone());
        while self.bytes > limits.max_bytes || self.map.len() > limits.max_entries {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.charge();
            }
        }
    }
}

/// The cache itself: cheap to share by reference; every method takes the lock briefly.
#[derive(Debug)]
pub struct BlobCache {
    limits: CacheLimits,
    lru: Mutex<Lru>,
    stats: Arc<CacheStats>,
}

impl BlobCache {
    pub fn new(limits: CacheLimits) -> BlobCache {
        BlobCache {
            limits,
            lru: Mutex::new(Lru::default()),
            stats: Arc::new(CacheStats::default()),
        }
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    pub fn enabled(&self) -> bool {
        self.limits.enabled()
    }

    /// Whether content of `len` bytes would be kept.
    pub fn keeps_content_of(&self, len: u64) -> bool {
        self.enabled()
            && len <= self.limits.max_entry_bytes
            && len.saturating_add(ENTRY_OVERHEAD) <= self.limits.max_bytes
    }

    /// The counters (shared: they outlive a borrow of the cache).
    pub fn stats(&self) -> Arc<CacheStats> {
        self.stats.clone()
    }

    /// A poisoned lock only means another thread panicked mid-update of plain maps whose
    /// every update keeps them consistent; the cache stays usable.
    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, lru: &Lru) {
        self.stats.bytes.store(lru.bytes, Ordering::Relaxed);
        self.stats
            .entries
            .store(lru.map.len() as u64, Ordering::Relaxed);
    }

    /// The size of blob `d`'s data, if cached.
    pub fn size(&self, d: &Digest) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let size = self.lock().touch(d).map(|e| e.size);
        self.stats.count(Lookup::Size, size.is_some());
        size
    }

    /// Blob `d`'s bytes, if cached.
    pub fn content(&self, d: &Digest) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let content = self.lock().touch(d).and_then(|e| e.content.clone());
        self.stats.count(Lookup::Content, content.is_some());
        content
    }

    /// Remember that blob `d`'s data exists with `size` bytes (keeps cached content).
    pub fn insert_size(&self, d: &Digest, size: u64) {
        if !self.enabled() {
            return;
        }
        let mut lru = self.lock();
        if lru.map.get(d).is_some_and(|e| e.size == size) {
            lru.touch(d);
        } else {
            lru.put(d, size, None, &self.limits);
        }
        self.publish(&lru);
    }

    /// Remember blob `d`'s bytes, which the caller read from `d`'s data in storage (so they
    /// are the verified content), if they are small enough.
    pub fn insert_content(&self, d: &Digest, content: Bytes) {
        let len = content.len() as u64;
        if !self.keeps_content_of(len) {
            self.insert_size(d, len);
            return;
        }
        let mut lru = self.lock();
        lru.put(d, len, Some(content), &self.limits);
        self.publish(&lru);
    }

    /// Forget `d` (storage said its data is gone, or this process deleted it).
    pub fn evict(&self, d: &Digest) {
        let mut lru = self.lock();
        lru.remove(d);
        self.publish(&lru);
    }

    /// Forget everything (after a garbage collection).
    pub fn clear(&self) {
        let mut lru = self.lock();
        *lru = Lru::default();
        self.publish(&lru);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> Digest {
        Digest::sha256_of(format!("blob {i}").as_bytes())
    }

    fn limits(max_bytes: u64, max_entries: usize, max_entry_bytes: u64) -> CacheLimits {
        CacheLimits {
            max_bytes,
            max_entries,
            max_entry_bytes,
        }
    }

    #[test]
    fn hits_after_insert_and_counts() {
        let c = BlobCache::new(CacheLimits::default());
        let d = digest(1);
        assert_eq!(c.content(&d), None);
        assert_eq!(c.size(&d), None);
        c.insert_content(&d, Bytes::from_static(b"hello"));
        assert_eq!(c.content(&d).as_deref(), Some(&b"hello"[..]));
        assert_eq!(c.size(&d), Some(5));
        let s = c.stats();
        assert_eq!((s.hits(Lookup::Content), s.misses(Lookup::Content)), (1, 1));
        assert_eq!((s.hits(Lookup::Size), s.misses(Lookup::Size)), (1, 1));
        assert_eq!((s.bytes(), s.entries()), (5 + ENTRY_OVERHEAD, 1));
        // a size-only insert keeps the content
        c.insert_size(&d, 5);
        assert!(c.content(&d).is_some());
    }

    #[test]
    fn bytes_and_entries_never_exceed_the_limits() {
        let lim = limits(64 * 1024, 50, 4096);
        let c = BlobCache::new(lim);
        for i in 0..5000 {
            let d = digest(i);
            if i % 3 == 0 {
                c.insert_size(&d, i as u64);
            } else {
                c.insert_content(&d, Bytes::from(vec![7u8; (i * 37) % 4096]));
            }
            let s = c.stats();
            assert!(s.bytes() <= lim.max_bytes, "{} bytes at {i}", s.bytes());
            assert!(
                s.entries() <= lim.max_entries as u64,
                "{} entries",
                s.entries()
            );
            // the books match the entries
            let lru = c.lock();
            let sum: u64 = lru.map.values().map(Entry::charge).sum();
            assert_eq!(sum, lru.bytes);
            assert_eq!(lru.map.len(), lru.order.len());
        }
        assert!(c.stats().entries() > 0);
    }

    #[test]
    fn least_recently_used_goes_first() {
        let c = BlobCache::new(limits(u64::MAX, 3, 1024));
        for i in 0..3 {
            c.insert_size(&digest(i), i as u64);
        }
        assert_eq!(c.size(&digest(0)), Some(0)); // 0 is now the most recent
        c.insert_size(&digest(3), 3); // evicts 1
        assert_eq!(c.size(&digest(1)), None);
        assert_eq!(c.size(&digest(0)), Some(0));
        assert_eq!(c.size(&digest(2)), Some(2));
        assert_eq!(c.size(&digest(3)), Some(3));
    }

    #[test]
    fn content_over_the_entry_limit_is_not_kept_but_its_size_is() {
        let c = BlobCache::new(limits(1 << 20, 100, 1000));
        let (small, big) = (digest(1), digest(2));
        c.insert_content(&small, Bytes::from(vec![1u8; 1000]));
        c.insert_content(&big, Bytes::from(vec![1u8; 1001]));
        assert!(c.content(&small).is_some());
        assert_eq!(c.content(&big), None);
        assert_eq!(c.size(&big), Some(1001));
        assert_eq!(c.stats().bytes(), 1000 + 2 * ENTRY_OVERHEAD);
    }

    #[test]
    fn off_caches_nothing_and_evict_and_clear_forget() {
        let off = BlobCache::new(CacheLimits::OFF);
        off.insert_content(&digest(1), Bytes::from_static(b"x"));
        assert_eq!(off.size(&digest(1)), None);
        assert_eq!(off.stats().misses(Lookup::Size), 0, "off counts nothing");

        let sizes_only = BlobCache::new(limits(1 << 20, 10, 0));
        sizes_only.insert_content(&digest(1), Bytes::from_static(b"x"));
        assert_eq!(sizes_only.content(&digest(1)), None);
        assert_eq!(sizes_only.size(&digest(1)), Some(1));

        let c = BlobCache::new(CacheLimits::default());
        c.insert_content(&digest(1), Bytes::from_static(b"a"));
        c.insert_content(&digest(2), Bytes::from_static(b"b"));
        c.evict(&digest(1));
        assert_eq!(c.size(&digest(1)), None);
        assert_eq!(c.stats().entries(), 1);
        c.clear();
        assert_eq!(c.size(&digest(2)), None);
        assert_eq!((c.stats().bytes(), c.stats().entries()), (0, 0));
    }
}
