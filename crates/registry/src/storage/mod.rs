//! The registry's storage layer: repositories, blobs, uploads, manifests, tags and
//! referrers, over a [`Driver`] that only stores files.
//!
//! HTTP handlers call this layer and nothing below it; it knows nothing of HTTP. Its
//! failures are [`StorageError`]s, which `crate::error` maps to distribution-spec codes in
//! one place. (Model: distribution's `registry/storage/` under `registry/handlers/`.)
//!
//! ```text
//! Registry ── repository(name) ── Repository ── blobs()      links, reads, mounts
//!    │                                        ├─ uploads()    sessions → BlobWriter → commit
//!    │                                        ├─ manifests()  revisions, push, delete
//!    │                                        ├─ tags()       tag links
//!    │                                        └─ referrers()  subject → referrer records
//!    ├─ cache: BlobCache                      sizes and small bytes of blob data (`cache`)
//!    ├─ disk: DiskCache (object storage)      large blobs' bytes on local disk (`disk_cache`)
//!    └─ driver: Driver (fs, memory, …)        all paths built in `paths`
//! ```
//!
//! The cache sits here rather than in a driver wrapper because which reads may use it is a
//! semantic decision: a blob HEAD or a manifest GET may, after its repository link was read
//! from storage; [`Registry::mark_referenced`], on which the garbage collector's safety
//! rests, must not. A driver sees only paths and could not tell the two apart; here the key
//! is a [`Digest`], so only content-addressed data can ever be cached (`cache.rs` has the
//! argument that this is safe with replicas sharing one bucket).
//!
//! The one design decision: the garbage collector's clock is data. Every operation that
//! makes a blob newly referenced — an upload's commit, a mount, a manifest push — first
//! refreshes the blob's "last referenced" record ([`paths::blob_last_referenced`], unix
//! milliseconds) when it has an old one, and only then checks that the blob's content is
//! there ([`Registry::mark_referenced`]); a blob without a record is dated by the first
//! collection that sees it. `gc` reads that record, never a modification time, so
//! a driver whose moves are copy + delete and which has no mtimes is as safe as the
//! filesystem (the argument is in `gc.rs` and docs/ARCHITECTURE.md).

pub mod blobs;
pub mod cache;
pub mod disk_cache;
pub mod driver;
pub mod error;
pub mod gc;
pub mod lease;
pub mod manifests;
pub mod paths;
pub mod referrers;
pub mod tags;
pub mod uploads;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_oci::Digest;
use bytes::Bytes;

pub use cache::{BlobCache, CacheLimits};
pub use disk_cache::DiskCache;
pub use driver::{
    BoxReader, ByteStream, DResult, Driver, DriverError, FileInfo, UploadWriter, fs, memory, s3,
};
pub use error::{Result, StorageError};
pub use manifests::RevisionMeta;
pub use uploads::{BlobWriter, Session};

/// How old a blob's "last referenced" record may be for a new reference to leave it as it
/// is rather than rewrite it. Counts against the garbage collector's minimum grace like the
/// push window does (see `gc.rs`).
pub const MARK_REUSE: std::time::Duration = std::time::Duration::from_secs(15);

/// The registry's storage: a driver plus what this process caches about it (the hash
/// state of upload sessions it has seen from their first byte, and the bounded read cache
/// of blob data; both always rebuildable).
#[derive(Debug)]
pub struct Registry<D: Driver> {
    driver: D,
    hashes: Mutex<HashMap<String, uploads::PartialHash>>,
    cache: BlobCache,
    disk: Option<DiskCache>,
}

impl<D: Driver> Registry<D> {
    /// Storage over `driver` with the default read cache ([`CacheLimits::default`]).
    pub fn new(driver: D) -> Registry<D> {
        Registry::with_cache(driver, CacheLimits::default())
    }

    /// Storage over `driver` with a read cache bounded by `limits` ([`CacheLimits::OFF`]:
    /// none).
    pub fn with_cache(driver: D, limits: CacheLimits) -> Registry<D> {
        Registry {
            driver,
            hashes: Mutex::new(HashMap::new()),
            cache: BlobCache::new(limits),
            disk: None,
        }
    }

    /// The same storage with `disk` as the local tier for large blobs read from it
    /// (`disk_cache.rs`; meant for object storage, whose reads are remote).
    pub fn with_disk_cache(mut self, disk: DiskCache) -> Registry<D> {
        self.disk = Some(disk);
        self
    }

    /// The disk tier, when there is one.
    pub fn disk_cache(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    /// Forget `d` in both caches: storage said its data is gone, or this process deleted it.
    pub(crate) fn forget(&self, d: &Digest) {
        self.cache.evict(d);
        if let Some(disk) = &self.disk {
            disk.evict(d);
        }
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The read cache of blob data (its counters feed `/metrics`).
    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    /// Run one garbage collection over this registry's driver, then empty the read caches,
    /// since the collection may have deleted data they hold (see `cache.rs`).
    pub async fn collect(
        &self,
        opts: &gc::GcOptions,
    ) -> std::result::Result<gc::GcReport, gc::GcError> {
        let report = gc::collect(&self.driver, opts).await;
        self.cache.clear();
        if let Some(disk) = &self.disk {
            disk.clear();
        }
        report
    }

    /// The repository `name`, which must already have passed
    /// `berth_oci::validate_repository_name` (paths are built from it).
    pub fn repository<'a>(&'a self, name: &'a str) -> Repository<'a, D> {
        Repository { reg: self, name }
    }

    /// Every repository with content, sorted (the catalog).
    pub async fn repositories(&self) -> Result<Vec<String>> {
        Ok(walk_repositories(&self.driver, false).await?)
    }

    /// Size of the blob's content if it exists anywhere in the registry, from the read
    /// cache when it has it. Callers scope it by a repository link read from storage first.
    pub async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        if let Some(size) = self.cache.size(d) {
            return Ok(Some(size));
        }
        let size = self.stored_blob_size(d).await?;
        if let Some(size) = size {
            self.cache.insert_size(d, size);
        }
        Ok(size)
    }

    /// Size of the blob's content as storage says now, never from the cache (an entry for
    /// data found missing is evicted).
    async fn stored_blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        // a blob's content is always stored whole: one HEAD on object storage, found or not
        let size = missing_ok(self.driver.stat_stored(&paths::blob_data(d)).await)?.map(|i| i.size);
        if size.is_none() {
            self.forget(d);
        }
        Ok(size)
    }

    /// Record that `d` is referenced now — the garbage collector's clock — then check its
    /// content is still there. The order is what makes a concurrent collection safe: a
    /// collection that has not yet re-read the record when it is written keeps the blob;
    /// one that re-read it earlier had already moved the content away, so the check fails
    /// and the caller refuses (or, committing an upload, puts its own verified copy in).
    ///
    /// Only an existing record older than [`MARK_REUSE`] is rewritten. A blob without a
    /// record — every new one — is never collected before a collection has dated it (it
    /// writes "now" and keeps the blob), and a record younger than `MARK_REUSE` counts into
    /// the minimum grace (`gc.rs`); so the common push writes nothing here, one read per blob.
    ///
    /// The content check asks storage, never the read cache: a cached size could outlive
    /// content another replica's collector has just moved away.
    pub async fn mark_referenced(&self, d: &Digest) -> Result<bool> {
        self.refresh_last_referenced(d).await?;
        Ok(self.stored_blob_size(d).await?.is_some())
    }

    /// The first half of [`Registry::mark_referenced`]: rewrite `d`'s record when it has one
    /// older than [`MARK_REUSE`]. The caller then checks (or creates, conditionally) the
    /// content, never before.
    pub(crate) async fn refresh_last_referenced(&self, d: &Digest) -> Result<()> {
        let now = SystemTime::now();
        let stale = read_last_referenced(&self.driver, d)
            .await?
            .is_some_and(|t| now.duration_since(t).is_ok_and(|age| age >= MARK_REUSE));
        if stale {
            write_last_referenced(&self.driver, d, now).await?;
        }
        Ok(())
    }

    /// When `d` was last referenced, from its record (`None`: no record, or unreadable).
    pub async fn last_referenced(&self, d: &Digest) -> Result<Option<SystemTime>> {
        Ok(read_last_referenced(&self.driver, d).await?)
    }
}

/// Write `d`'s "last referenced" record ([`paths::blob_last_referenced`]) as `at`.
pub async fn write_last_referenced<D: Driver>(
    driver: &D,
    d: &Digest,
    at: SystemTime,
) -> DResult<()> {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_millis() as u64)
        .unwrap_or(0);
    // a hint: lost or stale after a crash, it only makes a later request fail cleanly or a
    // collection keep a blob longer (gc.rs)
    driver
        .put_hint(&paths::blob_last_referenced(d), Bytes::from(ms.to_string()))
        .await
}

/// Read `d`'s "last referenced" record (`None`: there is none, or it is unreadable).
pub async fn read_last_referenced<D: Driver>(
    driver: &D,
    d: &Digest,
) -> DResult<Option<SystemTime>> {
    let Some(raw) = missing_ok(driver.get_content(&paths::blob_last_referenced(d)).await)? else {
        return Ok(None);
    };
    Ok(String::from_utf8_lossy(&raw)
        .trim()
        .parse::<u64>()
        .ok()
        .map(|ms| UNIX_EPOCH + std::time::Duration::from_millis(ms)))
}

/// One repository of a [`Registry`].
#[derive(Debug)]
pub struct Repository<'a, D: Driver> {
    reg: &'a Registry<D>,
    name: &'a str,
}

impl<D: Driver> Clone for Repository<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D: Driver> Copy for Repository<'_, D> {}

impl<'a, D: Driver> Repository<'a, D> {
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Whether anything was ever stored for this repository.
    pub async fn exists(&self) -> Result<bool> {
        Ok(missing_ok(self.reg.driver.stat(&paths::repo(self.name)).await)?.is_some())
    }

    pub fn blobs(&self) -> blobs::Blobs<'a, D> {
        blobs::Blobs { repo: *self }
    }

    pub fn uploads(&self) -> uploads::Uploads<'a, D> {
        uploads::Uploads { repo: *self }
    }

    pub fn manifests(&self) -> manifests::Manifests<'a, D> {
        manifests::Manifests { repo: *self }
    }

    pub fn tags(&self) -> tags::Tags<'a, D> {
        tags::Tags { repo: *self }
    }

    pub fn referrers(&self) -> referrers::Referrers<'a, D> {
        referrers::Referrers { repo: *self }
    }

    fn driver(&self) -> &'a D {
        &self.reg.driver
    }

    async fn list_or_empty(&self, path: &str) -> Result<Vec<String>> {
        Ok(missing_ok(self.driver().list(path).await)?.unwrap_or_default())
    }
}

/// Delete the upload data of session `id` kept apart (the data, then its owner record),
/// file by file: deleting the directory as a prefix would list its parent, which holds
/// every blob's adopted data. Not found is no error.
pub(crate) async fn delete_upload_data<D: Driver>(driver: &D, id: &str) -> DResult<()> {
    for path in [paths::upload_data_apart(id), paths::upload_data_owner(id)] {
        match driver.delete(&path).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Claim the upload data of session `id` for deletion, as a commit claims it for its blob
/// (a conditional create of its owner record), and delete it when the claim holds;
/// whether it was deleted (false: a commit owns it, and a blob may reference it). Every
/// deletion of a session's data but the collector's of a blob's goes through this, so that
/// a cancel or a purge racing a commit never deletes data the commit's reference names.
pub(crate) async fn reap_upload_data<D: Driver>(driver: &D, id: &str) -> DResult<bool> {
    let claim = format!("{} {}", paths::UPLOAD_DATA_REAPED, now_millis());
    match driver
        .put_new(&paths::upload_data_owner(id), Bytes::from(claim))
        .await
    {
        Ok(()) => {}
        Err(e) if e.is_already_exists() => return Ok(false),
        Err(e) => return Err(e),
    }
    delete_upload_data(driver, id).await?;
    Ok(true)
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `Ok(None)` for a path that is not there.
pub(crate) fn missing_ok<T>(r: DResult<T>) -> DResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every repository in storage, sorted. A directory holding `_manifests` or `_layers` (and,
/// with `with_uploads_only`, one holding only `_uploads`: a first push still in progress or
/// abandoned) is a repository; directories starting with `_` are registry data, never names.
pub(crate) async fn walk_repositories<D: Driver>(
    driver: &D,
    with_uploads_only: bool,
) -> DResult<Vec<String>> {
    let root = paths::repositories_root();
    let mut out = Vec::new();
    let mut queue = vec![String::new()];
    while let Some(prefix) = queue.pop() {
        let dir = if prefix.is_empty() {
            root.clone()
        } else {
            format!("{root}/{prefix}")
        };
        let children = match driver.list(&dir).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        if children
            .iter()
            .any(|c| c == "_manifests" || c == "_layers" || (with_uploads_only && c == "_uploads"))
        {
            out.push(prefix.clone());
        }
        for c in children {
            if c.starts_with('_') {
                continue;
            }
            queue.push(if prefix.is_empty() {
                c
            } else {
                format!("{prefix}/{c}")
            });
        }
    }
    out.sort();
    Ok(out)
}
