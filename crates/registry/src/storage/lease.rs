//! The garbage collector's lease: one collection (or upload purge) at a time over one
//! storage, held in the storage itself, so that registry replicas sharing a bucket — or
//! `berth registry gc` processes on one filesystem root — never collect at once (two
//! collectors could each restore or delete what the other moved aside).
//!
//! It needs nothing from a driver but [`Driver::put_new`] (create only if absent), which
//! every driver proves in its conformance suite; no compare-and-swap. Lease objects are
//! numbered, [`paths::lease`]`(generation)`, each JSON [`LeaseRecord`]: its owner (host,
//! process id, a random id, what it is doing), when it was acquired and when it expires.
//! **The highest generation is the lease.**
//! - *Acquire*: read the highest generation; if it is neither released nor expired, refuse
//!   ([`LeaseError::Busy`], naming the owner and the expiry); otherwise `put_new` the next
//!   generation. Two acquirers racing for the same generation: exactly one `put_new`
//!   succeeds, the other is busy. Older generations are then deleted (leftovers of crashed holders).
//! - *Renew*: while the work runs ([`Lease::hold`]), every `ttl / 3` the holder checks it
//!   still holds the lease and rewrites its own object with a later expiry.
//! - *Check*: before every destructive phase the collector calls [`Lease::ensure_held`]
//!   (no higher generation, its own object still its own, not expired by its own clock
//!   minus the skew margin), and before every single deletion [`Lease::check`] (the clock
//!   part, no I/O). A lost lease stays lost: the collection stops with
//!   [`LeaseError::Lost`] and deletes nothing further.
//! - *Release*: the holder rewrites its object as released, so the next one starts at once.
//!   Objects are not deleted on release, so generation numbers only ever grow: a holder
//!   that was paused past its expiry can never mistake a newer lease for its own.
//! - *Crash*: a dead holder blocks others until its expiry (`ttl`, 60 s by default) — or
//!   not at all when the next acquirer runs on the same machine (same hostname, boot id and
//!   PID namespace) and sees that the holder's process is gone, which covers an interrupted
//!   `berth registry gc` (what the `flock` on `gc.lock` used to cover; the lease replaces
//!   it, so there is one mechanism and it works on every driver).
//!
//! **Clock assumption.** Expiry compares wall-clock times written by one machine with
//! another machine's clock. The lease is exclusive as long as the clocks of all machines
//! sharing the storage differ by less than the skew margin ([`LeaseConfig::skew`], 10 s by
//! default) and a single storage operation of the collector completes within it: the
//! holder stops trusting its lease `skew` before the expiry *by its own clock*, and an
//! acquirer takes over only after the expiry *by its clock* — later than the holder's
//! stop whenever the holder's clock is behind by less than `skew`. (The collector's grace
//! period makes the same kind of assumption about the clocks of replicas; see `gc.rs`.)

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Driver, DriverError, paths};

/// The lease's lifetime without renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// How far apart the clocks of machines sharing a storage may be.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(10);

/// Where the lease reads the time: the system clock, or in tests one they move.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(SystemTime::now))
    }

    /// A clock that asks `f` (tests simulate time passing, or machines disagreeing).
    pub fn from_fn(f: impl Fn() -> SystemTime + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// How long a lease lasts and how much clock difference it tolerates.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lifetime of the lease without renewal; the holder renews every `ttl / 3`.
    pub ttl: Duration,
    /// The largest clock difference between machines sharing the storage (see the module
    /// comment); must be less than a third of `ttl`.
    pub skew: Duration,
    pub clock: Clock,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: DEFAULT_TTL,
            skew: DEFAULT_SKEW,
            clock: Clock::system(),
        }
    }
}

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseOwner {
    pub host: String,
    pub pid: u32,
    /// Random, unique to this acquisition.
    pub id: String,
    /// What the holder is doing ("garbage collection", "upload purge").
    pub purpose: String,
    /// `/proc/sys/kernel/random/boot_id` and the PID namespace, so that an acquirer on the
    /// same machine can tell a dead holder from a live one.
    #[serde(default)]
    pub boot_id: String,
    #[serde(default)]
    pub pid_ns: String,
}

impl LeaseOwner {
    /// This process, acquiring for `purpose`, with a fresh random id.
    pub fn this_process(purpose: &str) -> LeaseOwner {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        LeaseOwner {
            host: Some(read("/proc/sys/kernel/hostname"))
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "unknown-host".to_owned()),
            pid: std::process::id(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            purpose: purpose.to_owned(),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// Whether this owner is a process on this machine, in this PID namespace, that no
    /// longer exists. `false` whenever that cannot be known.
    fn is_dead_here(&self) -> bool {
        let here = LeaseOwner::this_process("");
        !self.boot_id.is_empty()
            && !self.pid_ns.is_empty()
            && self.host == here.host
            && self.boot_id == here.boot_id
            && self.pid_ns == here.pid_ns
            && self.pid != here.pid
            && matches!(
                std::fs::metadata(format!("/proc/{}", self.pid)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            )
    }
}

impl std::fmt::Display for LeaseOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} of process {} on {} (lease {})",
            self.purpose, self.pid, self.host, self.id
        )
    }
}

/// The content of one lease object.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    pub owner: LeaseOwner,
    /// Unix milliseconds.
    pub acquired_ms: u64,
    /// Unix milliseconds; the lease is free from then on (by the reader's clock).
    pub expires_ms: u64,
    /// Set by the holder when it is done.
    #[serde(default)]
    pub released: bool,
}

impl LeaseRecord {
    fn held_at(&self, now: SystemTime) -> bool {
        !self.released && now < from_ms(self.expires_ms) && !self.owner.is_dead_here()
    }

    fn to_bytes(&self) -> Bytes {
        // a struct of strings and integers always serializes
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A time as an HTTP date ("Sat, 05 Dec 2026 03:10:00 GMT") for messages.
fn show(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another garbage collection is running on this registry (held by {holder} until {}); wait for it to finish, or — if it died — for its lease {path} to expire, then run again",
        show(*until)
    )]
    Busy {
        holder: String,
        until: SystemTime,
        path: String,
    },
    #[error(
        "the garbage collection lease {path} was lost ({reason}); the collection stopped and deleted nothing further: run it again"
    )]
    Lost { path: String, reason: String },
    #[error(
        "the garbage collection lease {path} is unreadable; if no collection is running, delete it"
    )]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid lease settings: skew {skew:?} must be less than a third of ttl {ttl:?}")]
    Config { ttl: Duration, skew: Duration },
    #[error("failed {during} (the garbage collection lease)")]
    Storage {
        during: String,
        #[source]
        source: DriverError,
    },
}

impl LeaseError {
    /// Whether another holder has the lease (the caller may simply try later).
    pub fn is_busy(&self) -> bool {
        matches!(self, LeaseError::Busy { .. })
    }
}

fn storage(during: impl Into<String>) -> impl FnOnce(DriverError) -> LeaseError {
    let during = during.into();
    move |source| LeaseError::Storage { during, source }
}

#[derive(Debug)]
struct State {
    /// Until when this holder trusts its lease by its own clock: expiry minus skew.
    valid_until: SystemTime,
    lost: Option<String>,
}

/// A held lease. Call [`Lease::release`] when done; dropped without it, the lease simply
/// expires (a collection that failed or was cancelled).
#[derive(Debug)]
pub struct Lease<'d, D: Driver> {
    driver: &'d D,
    config: LeaseConfig,
    generation: u64,
    path: String,
    record: LeaseRecord,
    state: Mutex<State>,
}

/// The generations stored, ascending.
async fn generations<D: Driver>(driver: &D) -> Result<Vec<u64>, LeaseError> {
    let dir = paths::lease_dir();
    let names = match driver.list(&dir).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(storage(format!("listing {dir}"))(e)),
    };
    let mut gens: Vec<u64> = names.iter().filter_map(|n| n.parse().ok()).collect();
    gens.sort_unstable();
    Ok(gens)
}

/// The record of `generation`, `None` when it is gone.
async fn read_record<D: Driver>(
    driver: &D,
    generation: u64,
) -> Result<Option<LeaseRecord>, LeaseError> {
    let path = paths::lease(generation);
    match driver.get_content(&path).await {
        Ok(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|source| LeaseError::Corrupt { path, source }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(storage(format!("reading {path}"))(e)),
    }
}

fn busy(path: String, record: Option<LeaseRecord>, now: SystemTime, ttl: Duration) -> LeaseError {
    match record {
        Some(r) => LeaseError::Busy {
            holder: r.owner.to_string(),
            until: from_ms(r.expires_ms),
            path,
        },
        None => LeaseError::Busy {
            holder: "another collector".to_owned(),
            until: now + ttl,
            path,
        },
    }
}

impl<'d, D: Driver> Lease<'d, D> {
    /// Take the lease of the storage behind `driver` for `purpose` ("garbage collection"),
    /// or fail at once with [`LeaseError::Busy`] when someone else holds it.
    pub async fn acquire(
        driver: &'d D,
        config: &LeaseConfig,
        purpose: &str,
    ) -> Result<Lease<'d, D>, LeaseError> {
        if config.skew.saturating_mul(3) >= config.ttl {
            return Err(LeaseError::Config {
                ttl: config.ttl,
                skew: config.skew,
            });
        }
        let now = config.clock.now();
        let gens = generations(driver).await?;
        let next = match gens.last() {
            None => 1,
            Some(&top) => {
                if let Some(r) = read_record(driver, top).await?
                    && r.held_at(now)
                {
                    return Err(busy(paths::lease(top), Some(r), now, config.ttl));
                }
                top.saturating_add(1)
            }
        };
        let path = paths::lease(next);
        let record = LeaseRecord {
            owner: LeaseOwner::this_process(purpose),
            acquired_ms: to_ms(now),
            expires_ms: to_ms(now + config.ttl),
            released: false,
        };
        match driver.put_new(&path, record.to_bytes()).await {
            Ok(()) => {}
            Err(e) if e.is_already_exists() => {
                // another acquirer took this generation first
                let winner = read_record(driver, next).await.ok().flatten();
                return Err(busy(path, winner, now, config.ttl));
            }
            Err(e) => return Err(storage(format!("creating {path}"))(e)),
        }
        // leftovers of earlier holders (best effort: the highest generation rules anyway)
        for g in gens {
            let _ = driver.delete(&paths::lease(g)).await;
        }
        tracing::debug!(lease = %path, owner = %record.owner, "lease acquired");
        Ok(Lease {
            driver,
            state: Mutex::new(State {
                valid_until: now + config.ttl - config.skew,
                lost: None,
            }),
            config: config.clone(),
            generation: next,
            path,
            record,
        })
    }

    /// The storage path of this lease's object.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn owner(&self) -> &LeaseOwner {
        &self.record.owner
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // every update is one assignment: a panic cannot leave it half-written
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lose(&self, reason: String) -> LeaseError {
        let mut st = self.state();
        let reason = st.lost.get_or_insert(reason).clone();
        LeaseError::Lost {
            path: self.path.clone(),
            reason,
        }
    }

    /// The clock part of [`Lease::ensure_held`], without I/O: before each deletion.
    pub fn check(&self) -> Result<(), LeaseError> {
        let now = self.config.clock.now();
        let st = self.state();
        if let Some(reason) = &st.lost {
            return Err(LeaseError::Lost {
                path: self.path.clone(),
                reason: reason.clone(),
            });
        }
        let until = st.valid_until;
        drop(st);
        if now >= until {
            return Err(self.lose(format!(
                "not renewed in time: by this machine's clock it is {}, and the lease was trusted until {}",
                show(now),
                show(until)
            )));
        }
        Ok(())
    }

    /// Whether this holder still has the lease, asked of the storage: not expired by its own
    /// clock minus the skew margin, no higher generation, its object still its own. Before
    /// every destructive phase.
    pub async fn ensure_held(&self) -> Result<(), LeaseError> {
        self.check()?;
        let gens = generations(self.driver).await?;
        if let Some(&top) = gens.last()
            && top > self.generation
        {
            let holder = match read_record(self.driver, top).await {
                Ok(Some(r)) => r.owner.to_string(),
                _ => "another collector".to_owned(),
            };
            return Err(self.lose(format!("taken over by {holder} as {}", paths::lease(top))));
        }
        match read_record(self.driver, self.generation).await? {
            Some(r) if r.owner.id == self.record.owner.id => Ok(()),
            Some(r) => Err(self.lose(format!("its object now names {}", r.owner))),
            None => Err(self.lose("its object was deleted".to_owned())),
        }
    }

    /// Extend the lease by `ttl` from now, if it is still held.
    async fn renew(&self) -> Result<(), LeaseError> {
        self.ensure_held().await?;
        let now = self.config.clock.now();
        // the checks took time: still trusted now, when the new expiry is measured from?
        self.check()?;
        let record = LeaseRecord {
            expires_ms: to_ms(now + self.config.ttl),
            ..self.record.clone()
        };
        self.driver
            .put_content(&self.path, record.to_bytes())
            .await
            .map_err(storage(format!("renewing {}", self.path)))?;
        let mut st = self.state();
        if st.lost.is_none() {
            st.valid_until = now + self.config.ttl - self.config.skew;
        }
        Ok(())
    }

    /// Run `work` while renewing the lease every `ttl / 3` in the background. A renewal
    /// that fails for a storage error is retried at the next interval (the lease lapses by
    /// the clock if they keep failing); one that finds the lease lost marks it so, and the
    /// next [`Lease::check`] in `work` fails.
    pub async fn hold<F: Future>(&self, work: F) -> F::Output {
        let renewer = async {
            let every = self.config.ttl / 3;
            loop {
                tokio::time::sleep(every).await;
                match self.renew().await {
                    Ok(()) => {}
                    Err(e @ LeaseError::Lost { .. }) => {
                        tracing::warn!(error = %e, "garbage collection lease lost");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %super::error::error_chain(&e), "failed to renew the garbage collection lease; retrying")
                    }
                }
            }
        };
        let work = std::pin::pin!(work);
        let renewer = std::pin::pin!(renewer);
        match futures_util::future::select(work, renewer).await {
            futures_util::future::Either::Left((out, _)) => out,
            // lost: nothing left to renew; let the work find out at its next check
            futures_util::future::Either::Right(((), work)) => work.await,
        }
    }

    /// Mark the lease released, so the next collection can start at once (unless it was
    /// lost meanwhile: then there is nothing of ours to release).
    pub async fn release(self) -> Result<(), LeaseError> {
        if self.ensure_held().await.is_err() {
            return Ok(());
        }
        let record = LeaseRecord {
            released: true,
            ..self.record.clone()
        };
        self.driver
            .put_content(&self.path, record.to_bytes())
            .await
            .map_err(storage(format!("releasing {}", self.path)))?;
        tracing::debug!(lease = %self.path, "lease released");
        Ok(())
    }
}
