//! Garbage collection of unreferenced blobs and abandoned uploads (`berth registry gc`),
//! safe to run while the server takes pushes, over any driver (moves may be copy + delete,
//! modification times may be absent).
//!
//! Mark: every manifest revision in every repository, and every blob its manifest names.
//! Sweep: a blob not marked is deleted only if its "last referenced" record
//! ([`paths::blob_last_referenced`]) is older than `gc start − grace`. A blob without a
//! record (every new blob: commits write none) is given one, dated now, and kept. Every
//! operation that makes a blob newly referenced — upload commit, mount, manifest push — first
//! rewrites an existing record older than `MARK_REUSE` and only then checks the content is
//! there ([`crate::storage::Registry::mark_referenced`]). Records are only ever written as
//! "now", so a request that finds no record knows any record a collection reads later is
//! younger than that request. To close the window between reading the
//! record and deleting, the sweep first moves the content aside, reads the record again,
//! and moves the content back if it changed. Either the second read sees a concurrent
//! mark (the blob is restored and kept), or the mark came after it — and so after the
//! content was moved away — and the marking request finds no content: a mount or manifest
//! push fails cleanly (the client re-uploads), an upload commit moves its own verified copy
//! in. No request ever succeeds against content that then disappears. (Guards against
//! distribution #2881 and containerd #10843.) This needs only that the driver is
//! linearizable (its conformance suite checks it), not that a move is atomic or keeps a
//! modification time.
//!
//! Why a minimum grace ([`MIN_GRACE`]): a manifest push marks its blobs at `t` — leaving a
//! record dated `t' ≥ t − MARK_REUSE`, or none (then any record a collection reads later is
//! dated after `t`) — and writes its revision record within
//! [`MAX_PUSH_WINDOW`] of `t` (the push is refused otherwise). If `t'` is after the cutoff
//! the blobs are too young to collect; if it is before, then `t < gc start − grace +
//! MARK_REUSE`, and the revision record was written before the collection started, so the
//! mark phase sees it. That holds only when the grace exceeds `MARK_REUSE + MAX_PUSH_WINDOW`
//! (plus the clock difference between the registry's replicas and the collector), so a
//! shorter grace is refused.
//!
//! So an unreferenced blob is collected by the first collection that runs at least one grace
//! period after the collection that dated it (blobs stored before records existed too).
//!
//! The record is written with [`super::Driver::put_hint`] — atomically but not durably — since
//! its loss in a machine crash is safe: a missing or empty record is dated afresh (kept); a
//! stale one can only let the collector take a blob no revision names yet, and the manifest
//! push that would name it then finds no content and is refused cleanly (its mark checks the
//! content), as after any lost upload. Revision records, which the mark phase reads, stay
//! durable.
//!
//! Upload data a blob references (object storage: [`super::Driver::adopt`] by reference,
//! see `uploads.rs`) is deleted with the blob: the sweep reads which data the blob's
//! content names before deleting it, then deletes that data's directory. Left-behind data
//! is swept too ([`sweep_upload_data`]): data whose owner record names a blob that does not
//! reference it (two commits of one digest at once, a collection's restore racing a
//! commit, a crash between the record and the reference) once the record is older than
//! [`REFERENCE_WINDOW`]; and data no commit claimed, idle for longer than the upload
//! expiry, after claiming it with the same conditional create a commit uses, so that
//! exactly one of a late commit and the collector has it.
//!
//! One collection at a time: a collection (and the server's upload purge, which deletes
//! too) holds the storage's lease ([`super::lease`]), in the storage itself, so replicas on
//! one bucket never collect at once; a second one started meanwhile refuses to run. The
//! lease is checked against the storage before every destructive phase and against the
//! clock before every deletion; a lost lease stops the collection (a blob already moved
//! aside is put back first). A dry run deletes nothing and takes no lease.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use berth_oci::{Digest, ManifestInfo};

use super::lease::{Lease, LeaseConfig, LeaseError};
use super::manifests::RevisionMeta;
use super::{
    DResult, Driver, DriverError, paths, read_last_referenced, walk_repositories,
    write_last_referenced,
};

pub use super::manifests::MAX_PUSH_WINDOW;

/// How long after a commit's owner record its reference may still be stored: data whose
/// record is younger is never taken for left behind. A commit writes the record and the
/// reference within one request, seconds apart at most.
pub const REFERENCE_WINDOW: Duration = Duration::from_secs(3600);

/// The shortest grace period that keeps concurrent pushes safe.
pub const MIN_GRACE: Duration = Duration::from_secs(60);

// the argument above, checked at compile time (with 25 s left for clock differences)
const _: () =
    assert!(MIN_GRACE.as_secs() >= super::MARK_REUSE.as_secs() + MAX_PUSH_WINDOW.as_secs() + 25);

#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Never delete a blob referenced more recently than this.
    pub grace: Duration,
    /// Remove upload sessions idle for longer than this.
    pub upload_expiry: Duration,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
    /// The lease that keeps collections one at a time.
    pub lease: LeaseConfig,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub repositories: usize,
    pub manifests: usize,
    pub blobs_marked: usize,
    pub blobs_deleted: usize,
    pub blobs_kept_in_grace: usize,
    pub bytes_freed: u64,
    pub uploads_deleted: usize,
    pub links_deleted: usize,
    /// Upload data left behind, neither a session's nor referenced by its blob (object
    /// storage only; data deleted with its blob is counted with the blob).
    pub upload_data_deleted: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(
        "grace period {given:?} is shorter than the minimum {min:?}: a shorter one could collect blobs of a manifest being pushed; hint: use --grace {}s or more",
        min.as_secs()
    )]
    GraceTooShort { given: Duration, min: Duration },
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("garbage collection failed while {during}")]
    Storage {
        during: String,
        #[source]
        source: DriverError,
    },
}

fn ctx<T>(r: DResult<T>, during: impl FnOnce() -> String) -> Result<T, GcError> {
    r.map_err(|source| GcError::Storage {
        during: during(),
        source,
    })
}

async fn list<D: Driver>(d: &D, path: &str) -> Result<Vec<String>, GcError> {
    match d.list(path).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(GcError::Storage {
            during: format!("listing {path}"),
            source: e,
        }),
    }
}

fn older_than(t: SystemTime, age: Duration) -> bool {
    SystemTime::now()
        .duration_since(t)
        .map(|a| a > age)
        .unwrap_or(false)
}

async fn modified<D: Driver>(d: &D, path: &str) -> Option<SystemTime> {
    d.stat(path).await.ok().and_then(|i| i.modified)
}

/// The lease a destructive run holds; none for a dry run.
struct Guard<'a, 'd, D: Driver>(Option<&'a Lease<'d, D>>);

impl<D: Driver> Clone for Guard<'_, '_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Driver> Copy for Guard<'_, '_, D> {}

impl<D: Driver> Guard<'_, '_, D> {
    /// Before each deletion: the lease has not lapsed by this machine's clock.
    fn check(&self) -> Result<(), GcError> {
        match self.0 {
            Some(l) => Ok(l.check()?),
            None => Ok(()),
        }
    }

    /// Before each destructive phase: the storage still names this holder.
    async fn ensure(&self) -> Result<(), GcError> {
        match self.0 {
            Some(l) => Ok(l.ensure_held().await?),
            None => Ok(()),
        }
    }
}

/// Release a lease after its run, whatever the run's outcome (so the next one need not
/// wait for the expiry).
async fn release<D: Driver>(lease: Lease<'_, D>) {
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %super::error::error_chain(&e), "failed to release the garbage collection lease; the next run waits for its expiry");
    }
}

/// Run one collection over `driver`, holding its lease (not for a dry run).
pub async fn collect<D: Driver>(driver: &D, opts: &GcOptions) -> Result<GcReport, GcError> {
    if opts.grace < MIN_GRACE {
        return Err(GcError::GraceTooShort {
            given: opts.grace,
            min: MIN_GRACE,
        });
    }
    if opts.dry_run {
        return collect_under(driver, opts, Guard(None)).await;
    }
    let lease = Lease::acquire(driver, &opts.lease, "garbage collection").await?;
    let out = lease
        .hold(collect_under(driver, opts, Guard(Some(&lease))))
        .await;
    release(lease).await;
    out
}

async fn collect_under<D: Driver>(
    driver: &D,
    opts: &GcOptions,
    guard: Guard<'_, '_, D>,
) -> Result<GcReport, GcError> {
    // Measured from the start, so that anything marked while this collection runs is kept.
    let cutoff = SystemTime::now()
        .checked_sub(opts.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = GcReport::default();
    let repos = ctx(walk_repositories(driver, true).await, || {
        "listing repositories".into()
    })?;
    report.repositories = repos.len();

    // Mark.
    let mut marked: HashSet<Digest> = HashSet::new();
    for repo in &repos {
        let rev_root = paths::revisions_dir(repo);
        for alg in list(driver, &rev_root).await? {
            for hex in list(driver, &format!("{rev_root}/{alg}")).await? {
                let Some(d) = paths::digest_from_parts(&alg, &hex) else {
                    continue;
                };
                let meta: Option<RevisionMeta> =
                    match driver.get_content(&paths::revision_link(repo, &d)).await {
                        Ok(raw) => serde_json::from_slice(&raw).ok(),
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => {
                            return Err(GcError::Storage {
                                during: format!("reading manifest {d} of {repo}"),
                                source: e,
                            });
                        }
                    };
                report.manifests += 1;
                marked.insert(d.clone());
                let content = match driver.get_content(&paths::blob_data(&d)).await {
                    Ok(c) => c,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        return Err(GcError::Storage {
                            during: format!("reading manifest {d} of {repo}"),
                            source: e,
                        });
                    }
                };
                let ct = meta.as_ref().map(|m| m.media_type.as_str());
                if let Ok(info) = ManifestInfo::parse(&content, ct) {
                    for desc in info.referenced_blobs().chain(info.referenced_manifests()) {
                        if let Ok(bd) = berth_oci::descriptor_digest(desc) {
                            marked.insert(bd);
                        }
                    }
                }
            }
        }
    }
    report.blobs_marked = marked.len();

    // Sweep blobs.
    guard.ensure().await?;
    let blobs_root = paths::blobs_root();
    for alg in list(driver, &blobs_root).await? {
        for prefix in list(driver, &format!("{blobs_root}/{alg}")).await? {
            for hex in list(driver, &format!("{blobs_root}/{alg}/{prefix}")).await? {
                let Some(d) = paths::digest_from_parts(&alg, &hex) else {
                    continue;
                };
                if marked.contains(&d) {
                    continue;
                }
                sweep_blob(driver, &d, cutoff, opts.dry_run, guard, &mut report).await?;
            }
        }
    }

    // Sweep repository links to content that is gone, and abandoned uploads.
    guard.ensure().await?;
    for repo in &repos {
        let layers = paths::layers_dir(repo);
        for alg in list(driver, &layers).await? {
            for hex in list(driver, &format!("{layers}/{alg}")).await? {
                let Some(d) = paths::digest_from_parts(&alg, &hex) else {
                    continue;
                };
                if marked.contains(&d) {
                    continue;
                }
                // a blob's content is stored whole: one HEAD on object storage
                if let Err(e) = driver.stat_stored(&paths::blob_data(&d)).await
                    && e.is_not_found()
                    && !opts.dry_run
                {
                    guard.check()?;
                    let _ = driver.delete(&format!("{layers}/{alg}/{hex}")).await;
                    report.links_deleted += 1;
                }
            }
        }
        report.uploads_deleted +=
            sweep_uploads(driver, repo, opts.upload_expiry, opts.dry_run, guard).await?;
    }
    if driver.reference_min().is_some() {
        report.upload_data_deleted +=
            sweep_upload_data(driver, opts.upload_expiry, opts.dry_run, guard).await?;
    }
    Ok(report)
}

/// Delete one unmarked blob if its record says it was last referenced before `cutoff`.
async fn sweep_blob<D: Driver>(
    driver: &D,
    d: &Digest,
    cutoff: SystemTime,
    dry_run: bool,
    guard: Guard<'_, '_, D>,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let data = paths::blob_data(d);
    // stored whole (never a written file): one HEAD on object storage, found or not
    let Ok(info) = driver.stat_stored(&data).await else {
        return Ok(()); // no content (a record left alone, or deleted meanwhile)
    };
    let first = ctx(read_last_referenced(driver, d).await, || {
        format!("reading the last reference of {d}")
    })?;
    let Some(first) = first else {
        // new since the last collection (or stored before records existed): start its clock
        if !dry_run {
            ctx(
                write_last_referenced(driver, d, SystemTime::now()).await,
                || format!("recording the last reference of {d}"),
            )?;
        }
        report.blobs_kept_in_grace += 1;
        return Ok(());
    };
    if first >= cutoff {
        report.blobs_kept_in_grace += 1;
        return Ok(());
    }
    if dry_run {
        report.blobs_deleted += 1;
        report.bytes_freed += info.size;
        return Ok(());
    }
    let trash = paths::blob_trash(d);
    guard.check()?;
    if driver.move_to(&data, &trash).await.is_err() {
        return Ok(()); // deleted or moved by someone else
    }
    let again = ctx(read_last_referenced(driver, d).await, || {
        format!("re-reading the last reference of {d}")
    })?;
    if again.is_none_or(|t| t != first) {
        // marked by a request between the two reads: put it back (replacing, with the same
        // bytes, any copy an upload commit moved in meanwhile)
        ctx(driver.move_to(&trash, &data).await, || {
            format!("restoring {d}")
        })?;
        report.blobs_kept_in_grace += 1;
        return Ok(());
    }
    if let Err(lost) = guard.check() {
        // another collector may be running now: leave nothing aside
        ctx(driver.move_to(&trash, &data).await, || {
            format!("restoring {d}")
        })?;
        return Err(lost);
    }
    // the upload data the content references, if it can (one HEAD): deleted with it
    let adopted = if driver.reference_min().is_some_and(|min| info.size >= min) {
        ctx(driver.adopted_from(&trash).await, || {
            format!("reading what {d} references")
        })?
        .and_then(|p| paths::upload_data_id_of(&p))
    } else {
        None
    };
    ctx(driver.delete(&trash).await, || format!("deleting {d}"))?;
    if let Some(id) = adopted {
        ctx(super::delete_upload_data(driver, &id).await, || {
            format!("deleting the upload data of {d}")
        })?;
    }
    // the record goes last; a request marking the blob meanwhile finds no content, and a
    // commit that then moves its copy in leaves a blob without a record, which the next
    // collection dates afresh
    match driver.delete(&paths::blob_last_referenced(d)).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            return Err(GcError::Storage {
                during: format!("deleting the last reference of {d}"),
                source: e,
            });
        }
    }
    report.blobs_deleted += 1;
    report.bytes_freed += info.size;
    tracing::info!(digest = %d, size = info.size, "blob collected");
    Ok(())
}

/// Remove every upload session of `repo` idle for longer than `expiry`; returns how many
/// (would be) removed.
async fn sweep_uploads<D: Driver>(
    driver: &D,
    repo: &str,
    expiry: Duration,
    dry_run: bool,
    guard: Guard<'_, '_, D>,
) -> Result<usize, GcError> {
    let mut removed = 0;
    let uploads = paths::uploads_dir(repo);
    for id in list(driver, &uploads).await? {
        // The newest sign of life: the session directory (changes while it is being
        // created or removed), its start marker, its data; without modification times,
        // the start the marker records.
        let mut last = None;
        let apart = driver.reference_min().is_some();
        let data = if apart {
            paths::upload_data_apart(&id)
        } else {
            paths::upload_data(repo, &id)
        };
        for p in [
            paths::upload_dir(repo, &id),
            paths::upload_started(repo, &id),
            data,
        ] {
            last = last.max(modified(driver, &p).await);
        }
        if last.is_none() {
            last = started_at(driver, repo, &id).await;
        }
        // Nothing to go by (it vanished meanwhile): leave it to the next run.
        let Some(last) = last else { continue };
        if !older_than(last, expiry) {
            continue;
        }
        if !dry_run {
            guard.check()?;
            match driver.delete(&paths::upload_dir(repo, &id)).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => continue, // completed or cancelled meanwhile
                Err(e) => {
                    return Err(GcError::Storage {
                        during: format!("removing upload {id} of {repo}"),
                        source: e,
                    });
                }
            }
            // its data apart: gone with it, unless a commit that ended the session
            // meanwhile claimed it (the sweep of left-behind data decides then)
            if apart {
                reap_upload_data(driver, &id).await?;
            }
            tracing::info!(repo, session = %id, "abandoned upload removed");
        }
        removed += 1;
    }
    Ok(removed)
}

/// [`super::reap_upload_data`], its failure said as the collector's.
async fn reap_upload_data<D: Driver>(driver: &D, id: &str) -> Result<bool, GcError> {
    ctx(super::reap_upload_data(driver, id).await, || {
        format!("reaping the upload data of {id}")
    })
}

/// What an owner record says: the blob it was claimed for and when, or a reaper's claim.
enum Owner {
    Blob(Digest, SystemTime),
    Reaped(SystemTime),
    Unreadable,
}

fn parse_owner(raw: &[u8]) -> Owner {
    let text = String::from_utf8_lossy(raw);
    let mut words = text.split_whitespace();
    let (Some(who), Some(ms)) = (words.next(), words.next()) else {
        return Owner::Unreadable;
    };
    let Ok(ms) = ms.parse::<u64>() else {
        return Owner::Unreadable;
    };
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    if who == paths::UPLOAD_DATA_REAPED {
        return Owner::Reaped(at);
    }
    match Digest::parse(who) {
        Ok(d) => Owner::Blob(d, at),
        Err(_) => Owner::Unreadable,
    }
}

/// Delete upload data kept apart that nothing owns any more (see the module documentation):
/// claimed for a blob that does not reference it, for longer than [`REFERENCE_WINDOW`];
/// claimed by a reaper that did not finish; or claimed by nobody and idle for longer than
/// `expiry` (its session is abandoned, or ended without a commit). Returns how many
/// directories were (or would be) deleted.
async fn sweep_upload_data<D: Driver>(
    driver: &D,
    expiry: Duration,
    dry_run: bool,
    guard: Guard<'_, '_, D>,
) -> Result<usize, GcError> {
    let mut deleted = 0;
    for id in list(driver, &paths::upload_data_root()).await? {
        let dir = paths::upload_data_dir(&id);
        let files = match driver.list_files(&dir).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                return Err(GcError::Storage {
                    during: format!("listing {dir}"),
                    source: e,
                });
            }
        };
        let claimed = files.iter().any(|(n, _)| n == paths::UPLOAD_DATA_OWNER);
        let left = if claimed {
            let raw = match driver.get_content(&paths::upload_data_owner(&id)).await {
                Ok(raw) => raw,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    return Err(GcError::Storage {
                        during: format!("reading the owner of {dir}"),
                        source: e,
                    });
                }
            };
            match parse_owner(&raw) {
                Owner::Blob(d, at) => {
                    older_than(at, REFERENCE_WINDOW)
                        && match driver.adopted_from(&paths::blob_data(&d)).await {
                            Ok(of) => of != Some(paths::upload_data_apart(&id)),
                            Err(e) if e.is_not_found() => true,
                            Err(e) => {
                                return Err(GcError::Storage {
                                    during: format!("reading what {d} references"),
                                    source: e,
                                });
                            }
                        }
                }
                Owner::Reaped(at) => older_than(at, REFERENCE_WINDOW),
                // not a record this registry writes: left to an operator
                Owner::Unreadable => false,
            }
        } else {
            let last = files.iter().filter_map(|(_, i)| i.modified).max();
            last.is_some_and(|t| older_than(t, expiry))
        };
        if !left {
            continue;
        }
        if dry_run {
            deleted += 1;
            continue;
        }
        guard.check()?;
        let gone = if claimed {
            ctx(super::delete_upload_data(driver, &id).await, || {
                format!("deleting {dir}")
            })?;
            true
        } else {
            reap_upload_data(driver, &id).await?
        };
        if gone {
            tracing::info!(dir = %dir, "upload data left behind removed");
            deleted += 1;
        }
    }
    Ok(deleted)
}

async fn started_at<D: Driver>(driver: &D, repo: &str, id: &str) -> Option<SystemTime> {
    let raw = driver
        .get_content(&paths::upload_started(repo, id))
        .await
        .ok()?;
    let ms = String::from_utf8_lossy(&raw).trim().parse::<u64>().ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

/// Remove upload sessions idle for longer than `expiry` in every repository (what the
/// server runs every `gc.upload_purge_interval_secs`, so the space of abandoned uploads
/// comes back without an operator), holding the storage's lease: it deletes, so it never
/// runs during a collection ([`LeaseError::Busy`] then). Safe while uploads run: an upload
/// receiving data is never idle.
pub async fn purge_uploads<D: Driver>(
    driver: &D,
    expiry: Duration,
    lease: &LeaseConfig,
) -> Result<usize, GcError> {
    let lease = Lease::acquire(driver, lease, "upload purge").await?;
    let guard = Guard(Some(&lease));
    let out = lease
        .hold(async {
            let repos = ctx(walk_repositories(driver, true).await, || {
                "listing repositories".into()
            })?;
            let mut removed = 0;
            for repo in &repos {
                removed += sweep_uploads(driver, repo, expiry, false, guard).await?;
            }
            Ok(removed)
        })
        .await;
    release(lease).await;
    out
}

/// Run [`purge_uploads`] every `interval` (the first time one interval from now) until the
/// task is dropped. Failures are logged and retried at the next interval; a round that
/// finds a collection running is skipped (the collection removes abandoned uploads too).
pub async fn purge_uploads_every<D: Driver>(driver: D, interval: Duration, expiry: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lease = LeaseConfig::default();
    loop {
        ticker.tick().await;
        match purge_uploads(&driver, expiry, &lease).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "removed abandoned uploads"),
            Err(GcError::Lease(e)) if e.is_busy() => {
                tracing::debug!(reason = %e, "skipped removing abandoned uploads this round")
            }
            Err(e) => {
                tracing::warn!(error = %super::error::error_chain(&e), "failed to remove abandoned uploads; retrying at the next interval")
            }
        }
    }
}
