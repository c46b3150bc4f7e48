//! Leases: "this holder is using these blobs", so that garbage collection keeps them.
//!
//! A lease is a file, `leases/<id>.json`, rewritten atomically on each change under a shared
//! store lock (so a prune, which holds the exclusive lock, sees each change entirely before or
//! entirely after). A lease lasts exactly as long as its **holder**, a process identified by
//! its pid and its start time (`/proc/<pid>/stat` field 22), so that a new process reusing
//! the pid does not keep it alive:
//! - [`Store::lease`]: held by this process (a `berth pull`); the file is removed when the
//!   [`Lease`] is dropped, and a crash leaves it to prune;
//! - [`Store::lease_held_by`]: held by another process (a running container's init process
//!   holds its image); the file stays after the handle is dropped, until the holder exits.
//!
//! Prune ignores and removes leases whose holder is gone (*stale*). There is no fixed expiry:
//! a container that runs for a month keeps its image for a month. Pids are only meaningful
//! within one pid namespace: processes sharing a store must share one.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::{Result, Store, StoreError};
use berth_fsutil::FileLock;

static LEASE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The content of a lease file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeaseRecord {
    pub(crate) id: String,
    /// The holder's pid.
    pub(crate) pid: u32,
    /// The holder's start time (clock ticks since boot, `/proc/<pid>/stat` field 22), to
    /// tell a live holder from a new process that reused its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pid_start: Option<u64>,
    /// Seconds since the Unix epoch (for people reading `leases/`; not an expiry).
    pub(crate) created: u64,
    pub(crate) purpose: String,
    pub(crate) digests: Vec<Digest>,
}

impl LeaseRecord {
    /// Whether the lease no longer protects anything: its holder is gone.
    pub(crate) fn is_stale(&self) -> bool {
        !process_alive(self.pid, self.pid_start)
    }
}

/// The process a lease lasts as long as: a pid and the start time that pid had when the
/// holder was named, so that pid reuse does not extend the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseHolder {
    pid: u32,
    start: Option<u64>,
}

impl LeaseHolder {
    /// This process.
    pub fn this_process() -> LeaseHolder {
        let pid = std::process::id();
        LeaseHolder {
            pid,
            start: process_start_time(pid).ok().flatten(),
        }
    }

    /// Process `pid`, which must be running now ([`StoreError::NoSuchHolder`] otherwise).
    pub fn process(pid: u32) -> Result<LeaseHolder> {
        match process_start_time(pid) {
            Ok(start) => Ok(LeaseHolder { pid, start }),
            Err(source) => Err(StoreError::NoSuchHolder { pid, source }),
        }
    }

    /// The holder's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the holder still runs (and is the same process).
    pub fn is_alive(&self) -> bool {
        process_alive(self.pid, self.start)
    }
}

/// Protection for the blobs a holder is writing or using; see the crate docs for the order
/// of operations. Every write into the store needs one ([`Store::ingester`]).
///
/// Cheap to clone; clones share one lease file. A lease taken with [`Store::lease`] removes
/// its file when the last clone is dropped; one taken with [`Store::lease_held_by`] leaves
/// it for as long as its holder runs.
#[derive(Debug, Clone)]
pub struct Lease {
    inner: Arc<LeaseInner>,
}

#[derive(Debug)]
struct LeaseInner {
    id: String,
    path: PathBuf,
    lock_path: PathBuf,
    /// Remove the file on drop: the holder is this process.
    owned: bool,
    record: Mutex<LeaseRecord>,
}

impl Store {
    /// Take a new lease held by this process, for as long as the returned [`Lease`] (and
    /// its clones) live; `purpose` is free text for people reading `leases/`
    /// (`"pull docker.io/library/busybox:latest"`).
    pub fn lease(&self, purpose: &str) -> Result<Lease> {
        self.new_lease(LeaseHolder::this_process(), purpose, true)
    }

    /// Take a new lease held by `holder` (a container's init process): it protects its
    /// digests until that process exits, also after the returned handle is dropped.
    pub fn lease_held_by(&self, holder: LeaseHolder, purpose: &str) -> Result<Lease> {
        let owned = holder == LeaseHolder::this_process();
        self.new_lease(holder, purpose, owned)
    }

    fn new_lease(&self, holder: LeaseHolder, purpose: &str, owned: bool) -> Result<Lease> {
        let n = LEASE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{}-{}-{nanos:x}-{n}", holder.pid, std::process::id());
        let lease = Lease {
            inner: Arc::new(LeaseInner {
                id: id.clone(),
                path: self.paths.lease(&id),
                lock_path: self.paths.lock(),
                owned,
                record: Mutex::new(LeaseRecord {
                    id,
                    pid: holder.pid,
                    pid_start: holder.start,
                    created: crate::unix_now(),
                    purpose: purpose.to_owned(),
                    digests: Vec::new(),
                }),
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
        &self.inner.id
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
        self.inner
            .record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, record: &LeaseRecord) -> Result<()> {
        let path = &self.inner.path;
        let write_err = |source| StoreError::WriteLease {
            id: record.id.clone(),
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec(record).map_err(|e| {
            write_err(berth_fsutil::FsError::Write {
                path: path.clone(),
                source: e.into(),
            })
        })?;
        let lock_path = &self.inner.lock_path;
        let _shared = FileLock::shared(lock_path).map_err(|source| StoreError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        berth_fsutil::atomic_write(path, &json).map_err(write_err)
    }
}

impl Drop for LeaseInner {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether process `pid` (started at `start`, when known) still runs. When this cannot be
/// told (no `/proc`), it is assumed to run: the lease then ends only when its handle
/// removes its file.
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
        assert_eq!(lease.digests(), Vec::<Digest>::new());
        let d = Digest::sha256_of(b"x");
        lease.add(&d).unwrap();
        lease.add(&d).unwrap();
        assert_eq!(lease.digests(), vec![d.clone()]);
        let on_disk: LeaseRecord = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk.digests, vec![d]);
        assert_eq!(on_disk.pid, std::process::id());
        assert!(!on_disk.is_stale());
        // clones share the file; the last one removes it
        let clone = lease.clone();
        drop(lease);
        assert!(path.exists());
        drop(clone);
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
        // no fixed expiry: a holder that started long ago and still runs keeps its lease
        assert!(!r.is_stale());
        r.pid_start = start.map(|s| s + 1);
        assert!(
            r.is_stale(),
            "a new process reusing the pid does not hold the lease"
        );
        r.pid_start = start;
        r.pid = u32::MAX; // above any pid_max
        assert!(r.is_stale());
    }
}
