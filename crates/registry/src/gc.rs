//! Garbage collection of unreferenced blobs and abandoned uploads (`berth registry gc`),
//! safe to run while the server takes pushes.
//!
//! Mark: every manifest revision in every repository, and every blob its manifest names.
//! Sweep: a blob not marked is deleted only if its modification time is older than the
//! grace period. Every operation that makes a blob newly referenced — upload commit, mount,
//! manifest push — first refreshes the blob's modification time (`touch`), so a blob that
//! becomes referenced after the mark phase is always younger than the grace period. To
//! close the window between checking the time and deleting, the sweep first moves the blob
//! aside, checks the time again on the moved file, and moves it back if it was touched.
//! A push racing that instant fails cleanly with BLOB_UNKNOWN (and the client re-uploads);
//! it never succeeds against content that then disappears. (Guards against distribution
//! #2881 and containerd #10843.)
//!
//! Why a minimum grace ([`MIN_GRACE`]): the cutoff is `gc start − grace`. A manifest push
//! touches its blobs at `t` and writes its revision record within [`MAX_PUSH_WINDOW`] of
//! `t` (the push is refused otherwise). If `t` is after the cutoff the blobs are too young
//! to collect; if it is before, the record was written before the collection started, so
//! the mark phase sees it. That holds only when the grace exceeds the push window, so a
//! shorter grace is refused rather than silently unsafe.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use berth_oci::{Digest, ManifestInfo};

use crate::paths;
use crate::repo::{RevisionMeta, walk_repositories};
use crate::storage::{DResult, Driver, DriverError};

/// The shortest grace period that keeps concurrent pushes safe.
pub const MIN_GRACE: Duration = Duration::from_secs(60);

/// The longest a manifest push may take from touching its blobs to recording the manifest.
/// Must stay well under [`MIN_GRACE`].
pub const MAX_PUSH_WINDOW: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Never delete a blob modified more recently than this.
    pub grace: Duration,
    /// Remove upload sessions idle for longer than this.
    pub upload_expiry: Duration,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
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
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(
        "grace period {given:?} is shorter than the minimum {min:?}: a shorter one could collect blobs of a manifest being pushed; hint: use --grace {}s or more",
        min.as_secs()
    )]
    GraceTooShort { given: Duration, min: Duration },
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
    d.stat(path).await.ok().map(|i| i.modified)
}

/// Run one collection over `driver`.
pub async fn collect<D: Driver>(driver: &D, opts: &GcOptions) -> Result<GcReport, GcError> {
    if opts.grace < MIN_GRACE {
        return Err(GcError::GraceTooShort {
            given: opts.grace,
            min: MIN_GRACE,
        });
    }
    // Measured from the start, so that anything touched while this collection runs is kept.
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
    let blobs_root = paths::blobs_root();
    let trash_root = format!("{}/_trash", paths::LAYOUT_VERSION);
    for alg in list(driver, &blobs_root).await? {
        for prefix in list(driver, &format!("{blobs_root}/{alg}")).await? {
            for hex in list(driver, &format!("{blobs_root}/{alg}/{prefix}")).await? {
                let Some(d) = paths::digest_from_parts(&alg, &hex) else {
                    continue;
                };
                if marked.contains(&d) {
                    continue;
                }
                let data = paths::blob_data(&d);
                let Ok(info) = driver.stat(&data).await else {
                    continue;
                };
                if info.modified >= cutoff {
                    report.blobs_kept_in_grace += 1;
                    continue;
                }
                if opts.dry_run {
                    report.blobs_deleted += 1;
                    report.bytes_freed += info.size;
                    continue;
                }
                let trash = format!("{trash_root}/{alg}-{hex}");
                if driver.move_to(&data, &trash).await.is_err() {
                    continue; // deleted or moved by someone else
                }
                let recheck = ctx(driver.stat(&trash).await, || format!("checking {d}"))?;
                if recheck.modified >= cutoff {
                    // touched by a push between the two checks: put it back
                    ctx(driver.move_to(&trash, &data).await, || {
                        format!("restoring {d}")
                    })?;
                    report.blobs_kept_in_grace += 1;
                    continue;
                }
                ctx(driver.delete(&trash).await, || format!("deleting {d}"))?;
                let dir = format!("{blobs_root}/{alg}/{prefix}/{hex}");
                let _ = driver.delete(&dir).await;
                report.blobs_deleted += 1;
                report.bytes_freed += recheck.size;
                tracing::info!(digest = %d, size = recheck.size, "blob collected");
            }
        }
    }

    // Sweep repository links to content that is gone, and abandoned uploads.
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
                if let Err(e) = driver.stat(&paths::blob_data(&d)).await
                    && e.is_not_found()
                    && !opts.dry_run
                {
                    let _ = driver.delete(&format!("{layers}/{alg}/{hex}")).await;
                    report.links_deleted += 1;
                }
            }
        }
        let uploads = paths::uploads_dir(repo);
        for id in list(driver, &uploads).await? {
            // The newest sign of life: the session directory (changes while it is being
            // created or removed), its start marker, its data.
            let mut last = None;
            for p in [
                paths::upload_dir(repo, &id),
                paths::upload_started(repo, &id),
                paths::upload_data(repo, &id),
            ] {
                last = last.max(modified(driver, &p).await);
            }
            // Nothing to go by (it vanished meanwhile): leave it to the next run.
            let Some(last) = last else { continue };
            if !older_than(last, opts.upload_expiry) {
                continue;
            }
            if !opts.dry_run {
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
            }
            report.uploads_deleted += 1;
        }
    }
    Ok(report)
}
