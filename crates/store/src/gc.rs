//! Garbage collection: mark what images and leases use, sweep the rest.
//!
//! Under the exclusive store lock (no index update and no lease change can interleave):
//! 1. **mark** from every [`ImageRecord`](crate::ImageRecord): its manifest or index, and
//!    recursively child manifests, configs and layers;
//! 2. mark every digest of every live lease (its holder still runs; and, if it is a stored
//!    manifest, what it references); stale leases (holder gone) are removed;
//! 3. mark **referrers**: stored manifests whose `subject` is marked (signatures, SBOMs,
//!    attestations pulled alongside an image), to a fixpoint, with their own blobs;
//! 4. **sweep** every unmarked blob last modified more than the grace period ago — the second
//!    guard, for writers that committed a blob without a lease;
//! 5. remove ingests not written for [`INGEST_EXPIRY`] and nobody holds, and temporary files
//!    left by crashed writers.
//!
//! A stored manifest of a known type that cannot be parsed stops the collection before
//! anything is removed: its children cannot be marked, so sweeping would lose them.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_oci::{Algorithm, Digest, ManifestError, ManifestInfo, descriptor_digest, media_type};

use crate::lease::LeaseRecord;
use crate::paths::{StorePaths, ingest};
use crate::{ErrorKind, Result, Store, StoreError};
use berth_fsutil::FileLock;

/// Default grace period: blobs modified more recently than this are never collected.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10 * 60);

/// An ingest (partial download) not written for this long is abandoned and collected; so are
/// a temporary file a crashed writer left beside the blobs and a lease file that cannot be
/// read (24 hours). Readable leases have no expiry: they end with their holder.
pub const INGEST_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// Blobs larger than this are never read to look for a `subject`: no registry accepts
/// manifests this large.
pub(crate) const MAX_REFERRER_MANIFEST: u64 = 4 << 20;

/// How to collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneOptions {
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// Keep unreferenced blobs modified within this period ([`DEFAULT_GRACE`]).
    pub grace: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            grace: DEFAULT_GRACE,
        }
    }
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Blobs removed, sorted.
    pub removed_blobs: Vec<Digest>,
    /// Their total size.
    pub blob_bytes_freed: u64,
    /// Blobs kept: reachable, leased, or within the grace period.
    pub blobs_kept: u64,
    /// Abandoned ingests removed.
    pub ingests_removed: u64,
    /// Their total size.
    pub ingest_bytes_freed: u64,
    /// Temporary files left by crashed writers, removed.
    pub temp_files_removed: u64,
    /// Stale leases removed.
    pub leases_removed: u64,
}

impl PruneReport {
    /// All bytes freed: blobs and ingests.
    pub fn bytes_freed(&self) -> u64 {
        self.blob_bytes_freed
            .saturating_add(self.ingest_bytes_freed)
    }
}

/// A file under `blobs/`.
struct BlobEntry {
    digest: Digest,
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
}

impl Store {
    /// Collect garbage. Kept: everything reachable from an [`ImageRecord`](crate::ImageRecord)
    /// (manifest or index, child manifests, configs, layers); every digest of a live
    /// [`Lease`](crate::Lease) and what it references; stored manifests whose `subject` is
    /// kept (referrers: signatures, SBOMs), with their blobs; and any blob modified within
    /// `opts.grace`. Removed: every other blob, stale leases, ingests idle for
    /// [`INGEST_EXPIRY`] that nobody holds, and temporary files of crashed writers.
    ///
    /// Holds the exclusive store lock throughout, so index updates and lease changes wait. A
    /// stored manifest of a known type that cannot be parsed is an error
    /// ([`StoreError::Manifest`]) raised before anything is removed.
    pub fn prune(&self, opts: PruneOptions) -> Result<PruneReport> {
        let _lock = self.lock_exclusive()?;
        let now = SystemTime::now();
        let mut report = PruneReport {
            dry_run: opts.dry_run,
            ..PruneReport::default()
        };
        let mut marker = Marker {
            store: self,
            marked: HashSet::new(),
        };
        for record in self.read_index_locked()?.values() {
            let strict = is_known_manifest(&record.media_type);
            marker.walk(&record.digest, Some(&record.media_type), strict)?;
        }
        for digest in self.live_lease_digests(now, &opts, &mut report)? {
            marker.walk(&digest, None, false)?;
        }
        let blobs = self.list_blobs(now, &opts, &mut report)?;
        marker.mark_referrers(&blobs)?;

        for blob in blobs {
            let young = blob
                .modified
                .is_none_or(|m| now.duration_since(m).map_or(true, |age| age < opts.grace));
            if marker.marked.contains(&blob.digest) || young {
                report.blobs_kept += 1;
                continue;
            }
            if !opts.dry_run {
                match std::fs::remove_file(&blob.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => {
                        return Err(StoreError::DeleteBlob {
                            digest: blob.digest,
                            path: blob.path,
                            source,
                        });
                    }
                }
                tracing::debug!(digest = %blob.digest, size = blob.size, "blob collected");
            }
            report.blob_bytes_freed = report.blob_bytes_freed.saturating_add(blob.size);
            report.removed_blobs.push(blob.digest);
        }
        report.removed_blobs.sort();
        self.prune_ingests(now, &opts, &mut report)?;
        self.prune_index_temps(&opts, &mut report)?;
        Ok(report)
    }

    /// Digests of live leases; stale and unreadable old leases are removed.
    fn live_lease_digests(
        &self,
        now: SystemTime,
        opts: &PruneOptions,
        report: &mut PruneReport,
    ) -> Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for entry in read_dir(&self.paths.leases())? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') {
                // a lease is written under the shared store lock and we hold the exclusive
                // one: this temporary file's writer crashed
                remove_temp(&path, opts, report)?;
                continue;
            }
            let record = std::fs::read(&path)
                .ok()
                .and_then(|raw| serde_json::from_slice::<LeaseRecord>(&raw).ok());
            let stale = match &record {
                Some(r) => r.is_stale(),
                // not a lease berth wrote (they are replaced atomically): keep it a while
                // for someone to look at
                None => older_than(&path, now, INGEST_EXPIRY),
            };
            if stale {
                if !opts.dry_run {
                    remove_file(&path)?;
                }
                report.leases_removed += 1;
            } else if let Some(r) = record {
                digests.extend(r.digests);
            }
        }
        Ok(digests)
    }

    /// Every blob under `blobs/<alg>/`; old temporary files found there are removed.
    fn list_blobs(
        &self,
        now: SystemTime,
        opts: &PruneOptions,
        report: &mut PruneReport,
    ) -> Result<Vec<BlobEntry>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            for entry in read_dir(&self.paths.blob_dir(alg))? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                match Digest::parse(&format!("{alg}:{name}")) {
                    Ok(digest) => out.push(BlobEntry {
                        digest,
                        path,
                        size: meta.len(),
                        modified: meta.modified().ok(),
                    }),
                    // put_blob_bytes writes without the store lock: only old temps are dead
                    Err(_) if name.starts_with('.') && older_than(&path, now, INGEST_EXPIRY) => {
                        remove_temp(&path, opts, report)?;
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(out)
    }

    /// Remove ingests nobody has written for [`INGEST_EXPIRY`] and nobody holds.
    fn prune_ingests(
        &self,
        now: SystemTime,
        opts: &PruneOptions,
        report: &mut PruneReport,
    ) -> Result<()> {
        for entry in read_dir(&self.paths.ingests())? {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let idle = [dir.clone(), ingest::data(&dir), ingest::reference(&dir)]
                .iter()
                .all(|p| !p.exists() || older_than(p, now, INGEST_EXPIRY));
            if !idle {
                continue;
            }
            let size = std::fs::metadata(ingest::data(&dir)).map_or(0, |m| m.len());
            if !opts.dry_run {
                let held = FileLock::try_exclusive_unlinkable(&ingest::lock(&dir), || {
                    if dir.is_dir() {
                        Ok(())
                    } else {
                        Err(io::ErrorKind::NotFound.into())
                    }
                });
                let _lock = match held {
                    Ok(Some(lock)) => lock,
                    // in use, or already gone
                    Ok(None) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(StoreError::Prune { path: dir, source }),
                };
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(StoreError::Prune { path: dir, source }),
                }
            }
            report.ingests_removed += 1;
            report.ingest_bytes_freed = report.ingest_bytes_freed.saturating_add(size);
        }
        Ok(())
    }

    /// Temporary files of index writes that crashed (index writers hold the exclusive lock,
    /// which we hold now, so none is in progress).
    fn prune_index_temps(&self, opts: &PruneOptions, report: &mut PruneReport) -> Result<()> {
        for entry in read_dir(self.paths.root())? {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(StorePaths::INDEX_TEMP_PREFIX)
            {
                remove_temp(&entry.path(), opts, report)?;
            }
        }
        Ok(())
    }
}

/// The marking half of the collection.
struct Marker<'a> {
    store: &'a Store,
    marked: HashSet<Digest>,
}

impl Marker<'_> {
    /// Mark `root` and, when it is a stored manifest, everything it references. With
    /// `strict`, a manifest that cannot be read or parsed is an error (nothing is swept);
    /// otherwise it is marked alone.
    fn walk(&mut self, root: &Digest, media_type: Option<&str>, strict: bool) -> Result<()> {
        let mut stack = vec![(root.clone(), media_type.map(str::to_owned), strict)];
        while let Some((digest, media_type, strict)) = stack.pop() {
            if !self.marked.insert(digest.clone()) {
                continue;
            }
            if !strict && !self.may_be_manifest(&digest) {
                continue;
            }
            let bytes = match self.store.read_blob(&digest) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) if strict => return Err(e),
                Err(_) => continue,
            };
            let info = match parse_manifest(&bytes, media_type.as_deref()) {
                Ok(info) => info,
                Err(source) if strict => return Err(StoreError::Manifest { digest, source }),
                Err(_) => continue,
            };
            for blob in info.referenced_blobs() {
                if let Ok(d) = descriptor_digest(blob) {
                    self.marked.insert(d);
                }
            }
            for child in info.referenced_manifests() {
                if let Ok(d) = descriptor_digest(child) {
                    let mt = child.media_type().to_string();
                    let strict = is_known_manifest(&mt);
                    stack.push((d, Some(mt), strict));
                }
            }
        }
        Ok(())
    }

    /// Whether the stored blob `digest` is small JSON: worth parsing when nothing says what
    /// it is (a leased digest, a child of unknown type), without reading layers.
    fn may_be_manifest(&self, digest: &Digest) -> bool {
        let path = self.store.paths.blob(digest);
        std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_REFERRER_MANIFEST)
            && looks_like_json(&path)
    }

    /// Mark stored manifests whose `subject` is marked, until nothing changes.
    fn mark_referrers(&mut self, blobs: &[BlobEntry]) -> Result<()> {
        // subject → (referrer, its media type)
        let mut referrers: HashMap<Digest, Vec<(Digest, String)>> = HashMap::new();
        for blob in blobs {
            if self.marked.contains(&blob.digest)
                || blob.size > MAX_REFERRER_MANIFEST
                || !looks_like_json(&blob.path)
            {
                continue;
            }
            let Ok(bytes) = self.store.read_blob(&blob.digest) else {
                continue;
            };
            let Ok(info) = ManifestInfo::parse(&bytes, None) else {
                continue;
            };
            if let Some(subject) = info
                .subject
                .as_ref()
                .and_then(|s| descriptor_digest(s).ok())
            {
                referrers
                    .entry(subject)
                    .or_default()
                    .push((blob.digest.clone(), info.media_type));
            }
        }
        loop {
            let found: Vec<(Digest, String)> = referrers
                .iter()
                .filter(|(subject, _)| self.marked.contains(*subject))
                .flat_map(|(_, refs)| refs.iter())
                .filter(|(d, _)| !self.marked.contains(d))
                .cloned()
                .collect();
            if found.is_empty() {
                return Ok(());
            }
            for (digest, media_type) in found {
                self.walk(&digest, Some(&media_type), false)?;
            }
        }
    }
}

fn is_known_manifest(media_type: &str) -> bool {
    media_type::is_image_manifest(media_type) || media_type::is_index(media_type)
}

/// Parse with the body's own `mediaType`, falling back to the recorded one.
fn parse_manifest(
    bytes: &[u8],
    media_type: Option<&str>,
) -> std::result::Result<ManifestInfo, ManifestError> {
    match ManifestInfo::parse(bytes, None) {
        Err(ManifestError::MissingMediaType) if media_type.is_some() => {
            ManifestInfo::parse(bytes, media_type)
        }
        other => other,
    }
}

/// Whether the file starts (after whitespace) with `{`.
pub(crate) fn looks_like_json(path: &Path) -> bool {
    let mut head = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head.get(..n)
        .unwrap_or_default()
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'{')
}

fn older_than(path: &Path, now: SystemTime, age: Duration) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|a| a > age)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect::<io::Result<Vec<_>>>(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .map_err(|source| StoreError::Prune {
        path: dir.to_owned(),
        source,
    })
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Prune {
            path: path.to_owned(),
            source,
        }),
    }
}

fn remove_temp(path: &Path, opts: &PruneOptions, report: &mut PruneReport) -> Result<()> {
    if !opts.dry_run {
        remove_file(path)?;
    }
    report.temp_files_removed += 1;
    Ok(())
}
