//! A CRL cache in front of another [`Fetcher`], as notation keeps one (notation-core-go
//! `revocation/crl/cache.go`: one file per distribution point URL, used while the CRL is
//! current, fetched again once its nextUpdate has passed). OCSP answers are not cached (nor
//! does notation). A cached CRL is only a copy of signed data: it is parsed and checked like a
//! downloaded one, so a corrupt or planted file can only make the answer "unknown", never
//! "good".
//!
//! Layout (one directory, nothing else in it):
//!
//! ```text
//! DIR/
//!   <sha256 of the URL, hex>.crl   the DER CRL as the distribution point served it
//! ```
//!
//! Files are written atomically (temp → fsync → rename). At most `max_entries` are kept: past
//! that, the least recently written are removed. A failure to write the cache never fails a
//! verification; the fetched CRL is used all the same.

use super::{FetchRequest, Fetcher, crl};
use crate::time::Timestamp;
use std::path::{Path, PathBuf};

/// How many CRLs a cache keeps unless told otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 256;

/// A CRL cache in a directory, over `inner` (see the module documentation).
#[derive(Debug)]
pub struct CrlCache<'a> {
    dir: PathBuf,
    inner: &'a dyn Fetcher,
    max_entries: usize,
}

impl<'a> CrlCache<'a> {
    /// A cache in `dir` (created when first written) in front of `inner`.
    pub fn new(dir: impl Into<PathBuf>, inner: &'a dyn Fetcher) -> CrlCache<'a> {
        CrlCache {
            dir: dir.into(),
            inner,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// Keeps at most `n` CRLs (at least one).
    pub fn with_max_entries(mut self, n: usize) -> CrlCache<'a> {
        self.max_entries = n.max(1);
        self
    }

    /// The file that caches `url`.
    pub fn path_of(&self, url: &str) -> PathBuf {
        let d = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
        let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.crl"))
    }

    fn store(&self, path: &Path, body: &[u8]) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if berth_fsutil::atomic_write(path, body).is_err() {
            return;
        }
        self.evict();
    }

    /// Removes the least recently written CRLs beyond `max_entries`.
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "crl"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= self.max_entries {
            return;
        }
        files.sort();
        let extra = files.len() - self.max_entries;
        for (_, p) in files.into_iter().take(extra) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Whether `body` is a CRL that is current at `now` (thisUpdate passed, nextUpdate not).
fn current(body: &[u8], now: Timestamp) -> bool {
    crl::parse(body).is_ok_and(|c| c.this_update <= now && c.next_update.is_some_and(|n| now <= n))
}

impl Fetcher for CrlCache<'_> {
    fn fetch(&self, req: &FetchRequest<'_>) -> Result<Vec<u8>, String> {
        if req.post.is_some() {
            return self.inner.fetch(req);
        }
        let path = self.path_of(req.url);
        let now = Timestamp::now();
        let small = std::fs::metadata(&path)
            .is_ok_and(|m| m.is_file() && m.len() <= u64::try_from(req.limit).unwrap_or(u64::MAX));
        if small
            && let Ok(body) = std::fs::read(&path)
            && current(&body, now)
        {
            return Ok(body);
        }
        let body = self.inner.fetch(req)?;
        if current(&body, now) {
            self.store(&path, &body);
        }
        Ok(body)
    }
}
