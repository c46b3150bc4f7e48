//! The verdict cache and the single-flight table.
//!
//! [`VerdictCache`] keeps **successes only** (a failure is verified afresh each time, so a
//! signature added a second later counts), for at most `ttl` each, and at most `max_entries`
//! (the least recently used goes first). Keys are built by the verifier from the policy
//! version (a hash of the policy, the trust store and the namespace labels), the rule, the
//! repository and the **digest**, never a tag: a moved tag names another digest, which is
//! verified afresh.
//!
//! [`Flights`] makes concurrent verifications of one key share one run: the first caller
//! runs it, the others wait for its result. A caller whose deadline passes drops only its own
//! wait; if the one running is dropped, the next waiter runs it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

struct Entry<V> {
    value: V,
    expires: Instant,
    tick: u64,
}

struct Inner<K, V> {
    map: HashMap<K, Entry<V>>,
    /// Last use (a counter) → key: the least recently used is the first.
    lru: BTreeMap<u64, K>,
    tick: u64,
}

/// A size-bounded, TTL-bounded LRU map (see the module documentation).
pub struct VerdictCache<K, V> {
    inner: Mutex<Inner<K, V>>,
    ttl: Duration,
    max_entries: usize,
}

impl<K, V> std::fmt::Debug for VerdictCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> VerdictCache<K, V> {
    /// A cache keeping entries `ttl` at most; `max_entries` 0 keeps nothing.
    pub fn new(ttl: Duration, max_entries: usize) -> VerdictCache<K, V> {
        VerdictCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                lru: BTreeMap::new(),
                tick: 0,
            }),
            ttl,
            max_entries,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // a panic while holding the lock leaves a consistent map (no step can panic midway)
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value, when present and not expired (an expired one is removed).
    pub fn get(&self, key: &K) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &K, now: Instant) -> Option<V> {
        let mut g = self.lock();
        let inner = &mut *g;
        let entry = inner.map.get_mut(key)?;
        if entry.expires <= now {
            let tick = entry.tick;
            inner.map.remove(key);
            inner.lru.remove(&tick);
            return None;
        }
        inner.tick += 1;
        let old = std::mem::replace(&mut entry.tick, inner.tick);
        let value = entry.value.clone();
        inner.lru.remove(&old);
        inner.lru.insert(inner.tick, key.clone());
        Some(value)
    }

    /// Keeps `value` for `key` for the TTL, evicting the least recently used beyond the bound.
    pub fn insert(&self, key: K, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    fn insert_at(&self, key: K, value: V, now: Instant) {
        if self.max_entries == 0 {
            return;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(old) = inner.map.insert(
            key.clone(),
            Entry {
                value,
                expires: now + self.ttl,
                tick,
            },
        ) {
            inner.lru.remove(&old.tick);
        }
        inner.lru.insert(tick, key);
        while inner.map.len() > self.max_entries {
            let Some((_, oldest)) = inner.lru.pop_first() else {
                break;
            };
            inner.map.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Concurrent runs of one key share one (see the module documentation).
pub struct Flights<K, V> {
    running: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> std::fmt::Debug for Flights<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights").finish_non_exhaustive()
    }
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Flights<K, V> {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<OnceCell<V>>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `run`'s result, run once for all callers with this key at the same time.
    pub async fn run<F, Fut>(&self, key: K, run: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = self.lock().entry(key.clone()).or_default().clone();
        let value = cell.get_or_init(run).await.clone();
        let mut g = self.lock();
        if g.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            g.remove(&key);
        }
        value
    }

    /// Keys running now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn expires_after_the_ttl() {
        let c = VerdictCache::new(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        c.insert_at("a", 1, t0);
        assert_eq!(c.get_at(&"a", t0 + Duration::from_secs(9)), Some(1));
        assert_eq!(c.get_at(&"a", t0 + Duration::from_secs(10)), None);
        assert!(c.is_empty(), "the expired entry is removed");
    }

    #[test]
    fn evicts_the_least_recently_used_beyond_the_bound() {
        let c = VerdictCache::new(Duration::from_secs(60), 2);
        c.insert("a", 1);
        c.insert("b", 2);
        assert_eq!(c.get(&"a"), Some(1)); // b is now the least recently used
        c.insert("c", 3);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"b"), None);
        assert_eq!(c.get(&"a"), Some(1));
        assert_eq!(c.get(&"c"), Some(3));
        // replacing a key does not grow the cache
        c.insert("c", 4);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"c"), Some(4));
        let none = VerdictCache::new(Duration::from_secs(60), 0);
        none.insert("a", 1);
        assert_eq!(none.get(&"a"), None);
    }

    #[test]
    fn bounded_under_many_distinct_keys() {
        let c = VerdictCache::new(Duration::from_secs(60), 1000);
        for i in 0..100_000u32 {
            c.insert(i, i);
        }
        assert_eq!(c.len(), 1000);
        assert_eq!(c.lock().lru.len(), 1000);
        assert_eq!(c.get(&99_999), Some(99_999));
        assert_eq!(c.get(&0), None);
    }

    #[tokio::test]
    async fn concurrent_runs_of_one_key_share_one() {
        let flights: Arc<Flights<&str, u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (f, r, g) = (flights.clone(), runs.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                f.run("k", || async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    g.notified().await;
                    7
                })
                .await
            }));
        }
        // wait until the one run is in progress and everyone waits on it
        for _ in 0..1000 {
            if runs.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate.notify_waiters();
        gate.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
        // a later run runs again
        let again = flights.run("k", || async { 8 }).await;
        assert_eq!(again, 8);
    }
}
