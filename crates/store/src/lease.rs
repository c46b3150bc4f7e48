//! Leases: "this process is using these blobs", so that garbage collection keeps them.
//!
//! A lease is a file, `leases/<id>.json`, rewritten atomically on each change under a shared
//! store lock (so a prune, which holds the exclusive lock, sees each change entirely before or
//! entirely after). It is removed when the [`Lease`] is dropped. A lease left behind by a
//! process that died is *stale*: its pid is gone (or now belongs to a process started at
//! another time), or it is older than [`LEASE_MAX_AGE`]. Prune ignores and removes stale
//! leases. Pids are only meaningful within one pid namespace: processes sharing a store must
//! share one.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::lock::FileLock;
use crate::{Result, Store, StoreError};

/// A lease older than this is stale even if its process still runs (24 hours).
pub const LEASE_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

static LEASE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The content of a lease file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeaseRecord {
    pub(crate) id: String,
    pub(crate) pid: u32,
    /// The process's start time (clock ticks since boot, `/proc/<pid>/stat` field 22), to
    /// tell a live owner from a new process that reused its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pid_start: Option<u64>,
    /// Seconds since the Unix epoch.
    pub(crate) created: u64,
    pub(crate) purpose: String,
    pub(crate) digests: Vec<Digest>,
}

impl LeaseRecord {
    /// Whether the lease no longer protects anything: too old, or its process is gone.
    pub(crate) fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.created) > LEASE_MAX_AGE.as_secs()
            || !process_alive(self.pid, self.pid_start)
    }
}

/// Protection for the blobs an operation is writing or about to use; see the crate docs for
/// the order of operations. Dropping it removes the lease file.
#[derive(Debug)]
pub struct Lease {
    id: String,
    path: PathBuf,
    lock_path: PathBuf,
    record: Mutex<LeaseRecord>,
}

impl Store {
    /// Take a new lease; `purpose` is free text for people reading `leases/`
    /// (`"pull docker.io/library/busybox:latest"`).
    pub fn lease(&self, purpose: &str) -> Result<Lease> {
        let pid = std::process::id();
        let n = LEASE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{pid}-{nanos:x}-{n}");
        let lease = Lease {
            id: id.clone(),
            path: self.paths.lease(&id),
            lock_path: self.paths.lock(),
            record: Mutex::new(LeaseRecord {
                id,
                pid,
                pid_start: process_start_time(pid).ok().flatten(),
                created: crate::unix_now(),
                purpose: purpose.to_owned(),
                digests: Vec::new(),
            }),
        };
        let record = lease.lock_record();
        lease.save(&record)?;
        drop(record);
        Ok(lease)
    }
}

impl Lease {
    /// This lease's id (its file is `leases/<id>.json`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The digests this lease protects.
    pub fn digests(&self) -> Vec<Digest> {
        self.lock_record().digests.clone()
    }

    /// Protect `digest` for as long as the lease lives. Call it *before* checking whether the
    /// blob is present or starting to write it.
    pub fn add(&self, digest: &Digest) -> Result<()> {
        self.add_all([digest])
    }

    /// Protect several digests with one durable write.
    pub fn add_all<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> Result<()> {
        let mut record = self.lock_record();
        let before = record.digests.len();
        for d in digests {
            if !record.digests.contains(d) {
                record.digests.push(d.clone());
            }
        }
        if record.digests.len() == before {
            return Ok(());
        }
        if let Err(e) = self.save(&record) {
            record.digests.truncate(before);
            return Err(e);
        }
        Ok(())
    }

    fn lock_record(&self) -> std::sync::MutexGuard<'_, LeaseRecord> {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, record: &LeaseRecord) -> Result<()> {
        let write_err = |source| StoreError::WriteLease {
            id: record.id.clone(),
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec(record).map_err(|e| {
            write_err(berth_fsutil::FsError::Write {
                path: self.path.clone(),
                source: e.into(),
            })
        })?;
        let _shared = FileLock::shared(&self.lock_path).map_err(|source| StoreError::Lock {
            path: self.lock_path.clone(),
            source,
        })?;
        berth_fsutil::atomic_write(&self.path, &json).map_err(write_err)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` (started at `start`, when known) still runs. When this cannot be
/// told (no `/proc`), it is assumed to run: a lease then ends by age only.
pub(crate) fn process_alive(pid: u32, start: Option<u64>) -> bool {
    match process_start_time(pid) {
        Ok(Some(now)) => start.is_none_or(|s| s == now),
        Ok(None) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // gone, unless there is no /proc to ask at all
            std::fs::metadata("/proc/self/stat").is_err()
        }
        Err(_) => true,
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot); `Ok(None)` when the
/// file cannot be parsed.
fn process_start_time(pid: u32) -> io::Result<Option<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // "pid (comm) state ppid …": comm may contain spaces and parentheses, so split after
    // the last ')'; the next field is field 3, so field 22 is the 20th after it
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Ok(None);
    };
    Ok(rest
        .split_ascii_whitespace()
        .nth(22 - 3)
        .and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_file_lives_as_long_as_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease("test").unwrap();
        let path = store.paths.lease(lease.id());
        let d = Digest::sha256_of(b"x");
        lease.add(&d).unwrap();
        lease.add(&d).unwrap();
        assert_eq!(lease.digests(), vec![d.clone()]);
        let on_disk: LeaseRecord = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk.digests, vec![d]);
        assert_eq!(on_disk.pid, std::process::id());
        assert!(!on_disk.is_stale(crate::unix_now()));
        drop(lease);
        assert!(!path.exists());
    }

    #[test]
    fn staleness() {
        let me = std::process::id();
        let start = process_start_time(me).unwrap();
        assert!(start.is_some());
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start.map(|s| s + 1)), "pid reused");
        let mut r = LeaseRecord {
            id: "x".into(),
            pid: me,
            pid_start: start,
            created: 1_000_000,
            purpose: String::new(),
            digests: Vec::new(),
        };
        assert!(!r.is_stale(1_000_000));
        assert!(r.is_stale(1_000_000 + LEASE_MAX_AGE.as_secs() + 1));
        r.pid = u32::MAX; // above any pid_max
        assert!(r.is_stale(1_000_000));
    }
}
