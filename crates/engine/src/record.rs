//! Container records: `<root>/containers/<id>/container.json`, written atomically under the
//! container's own flock; the name index `<root>/names/<name>` (a file holding the id) under
//! `<root>/names.lock`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_fsutil::FileLock;
use serde::{Deserialize, Serialize};

use crate::attachments::Leftovers;
use crate::error::{EngineError, Result};

/// A container's life stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The record exists, the monitor is bringing the container up.
    Creating,
    /// `runtime create` succeeded: the init waits for `start`.
    Created,
    /// Started.
    Running,
    /// The init exited (or vanished: then `exit_code` is `None`).
    Exited,
}

impl Status {
    /// The lowercase name `berth ps` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// `container.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// The image reference the container was made from ("" for a bare bundle).
    #[serde(default)]
    pub image: String,
    /// RFC 3339, nanoseconds.
    pub created: String,
    /// The bundle directory (holds `config.json`).
    pub bundle: PathBuf,
    /// The runtime binary.
    pub runtime: PathBuf,
    /// The runtime's `--root`.
    pub runtime_root: PathBuf,
    pub status: Status,
    /// The init's exit code (128+N for signal N); `None` while it runs or when unknown.
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
    /// Why the exit code is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub log_path: PathBuf,
    /// The size at which the log is rotated (`crate::logs`).
    #[serde(default = "default_log_max")]
    pub log_max_size: u64,
    /// `--rm`: the monitor removes the container when it exits.
    pub auto_remove: bool,
    #[serde(default)]
    pub monitor_pid: Option<i32>,
    #[serde(default)]
    pub init_pid: Option<i32>,
    /// The init's start time (field 22 of /proc/PID/stat), to tell it from a reused pid.
    #[serde(default)]
    pub init_start: Option<u64>,
    /// The signal `stop` sends first.
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    /// `-t`: the init has a pty whose master the monitor holds.
    #[serde(default)]
    pub terminal: bool,
    /// `-i`: the init's stdin is kept open and fed from attached callers.
    #[serde(default)]
    pub stdin: bool,
    /// `--stop-timeout`: the seconds `stop` waits by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// Whether the kernel's OOM killer killed a process of the container (docker's
    /// `State.OOMKilled`), read from its memory cgroup when the init exited.
    #[serde(default)]
    pub oom_killed: bool,
    /// What the caller set up besides the bundle, undone when the record is removed.
    #[serde(default)]
    pub attachments: crate::attachments::Attachments,
    /// The image's SBOM the trust gate verified before the container was made (a referrer
    /// signed by the role the policy's `requireSbom` names), kept beside the record for
    /// `berth watch`, which takes the executables it lists into the container's profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomRecord>,
}

/// A verified SBOM kept in the container's directory ([`Layout::sbom`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomRecord {
    /// The referrer manifest's digest.
    pub manifest: String,
    /// `application/spdx+json` or `application/vnd.cyclonedx+json`.
    pub artifact_type: String,
    /// The subject of the identity whose signature the policy accepted.
    pub signer: String,
    /// The SHA-256 of the document as kept: a reader checks the file against it.
    pub sha256: String,
}

/// An SBOM the trust gate verified, for [`crate::CreateOptions::sbom`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSbom {
    pub manifest: String,
    pub artifact_type: String,
    pub signer: String,
    /// The document.
    pub content: Vec<u8>,
}

fn default_log_max() -> u64 {
    crate::logs::DEFAULT_MAX_SIZE
}

fn default_stop_signal() -> String {
    "SIGTERM".to_owned()
}

/// The on-disk layout under a state root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

/// The record's file name in a container's directory.
pub const RECORD_FILE: &str = "container.json";
/// The kept SBOM's file name in a container's directory.
pub const SBOM_FILE: &str = "sbom.json";

impl Layout {
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }
    pub fn record(&self, id: &str) -> PathBuf {
        self.dir(id).join(RECORD_FILE)
    }
    /// The verified SBOM of the container's image, when one was kept ([`Record::sbom`]).
    pub fn sbom(&self, id: &str) -> PathBuf {
        self.dir(id).join(SBOM_FILE)
    }
    pub fn lock(&self, id: &str) -> PathBuf {
        self.dir(id).join("container.lock")
    }
    /// Held exclusively by the monitor for its whole life.
    pub fn monitor_lock(&self, id: &str) -> PathBuf {
        self.dir(id).join("monitor.lock")
    }
    /// The monitor's attach socket (`crate::attach`); mode 0600 in a 0700 directory.
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.dir(id).join("attach.sock")
    }
    /// Where the runtime sends the pty master during `create` (`--console-socket`).
    pub fn console_socket(&self, id: &str) -> PathBuf {
        self.dir(id).join("console.sock")
    }
    pub fn names(&self) -> PathBuf {
        self.root.join("names")
    }
    pub fn names_lock(&self) -> PathBuf {
        self.root.join("names.lock")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.root.join("runtime")
    }
}

pub fn now() -> String {
    berth_runtime_spec::timefmt::rfc3339_nano(SystemTime::now())
}

pub fn read(layout: &Layout, id: &str) -> Result<Record> {
    let path = layout.record(id);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::NotFound(id.to_owned()));
        }
        Err(e) => return Err(EngineError::io("reading the container record", path, e)),
    };
    serde_json::from_slice(&data).map_err(|source| EngineError::Corrupt { path, source })
}

/// Write a new container's record, durably (`berth create` prints the id of a container
/// that is there after a crash), with the files `beside` it in its directory (`config.json`,
/// `sbom.json`) and its name's entry ([`reserve_name`]): their contents and the name index
/// synced at once ([`berth_fsutil::atomic_write_many`]), then the directory.
pub fn write_new(layout: &Layout, rec: &Record, beside: &[(&str, &[u8])]) -> Result<()> {
    let path = layout.record(&rec.id);
    let data = serde_json::to_vec_pretty(rec).map_err(|source| EngineError::Corrupt {
        path: path.clone(),
        source,
    })?;
    let mut files = beside.to_vec();
    files.push((RECORD_FILE, &data));
    let names = layout.names();
    berth_fsutil::atomic_write_many(&layout.dir(&rec.id), &files, &[&names]).map_err(|source| {
        EngineError::Fs {
            what: "writing the container record",
            path,
            source,
        }
    })
}

/// Replace a record by its next state: its content durable, the replacement not waited for
/// ([`berth_fsutil::atomic_rewrite`]). A change lost in a crash is a crash a moment before
/// it (a `running` record that says `created` is reconciled the same way: the container
/// did not survive the crash either way), and the next durable write commits it anyway.
fn rewrite(layout: &Layout, rec: &Record) -> Result<()> {
    write_with(layout, rec, |p, d| berth_fsutil::atomic_rewrite(p, d))
}

fn write_with(
    layout: &Layout,
    rec: &Record,
    write: impl FnOnce(&Path, &[u8]) -> std::result::Result<(), berth_fsutil::FsError>,
) -> Result<()> {
    let path = layout.record(&rec.id);
    let data = serde_json::to_vec_pretty(rec).map_err(|source| EngineError::Corrupt {
        path: path.clone(),
        source,
    })?;
    write(&path, &data).map_err(|source| EngineError::Fs {
        what: "writing the container record",
        path,
        source,
    })
}

/// Take the container's lock.
pub fn lock(layout: &Layout, id: &str) -> Result<FileLock> {
    let path = layout.lock(id);
    if !layout.dir(id).is_dir() {
        return Err(EngineError::NotFound(id.to_owned()));
    }
    FileLock::exclusive(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            // removed since the check
            EngineError::NotFound(id.to_owned())
        } else {
            EngineError::io("locking the container", path, e)
        }
    })
}

/// Read-modify-write the record under the container's lock.
pub fn update<T>(
    layout: &Layout,
    id: &str,
    f: impl FnOnce(&mut Record) -> T,
) -> Result<(T, Record)> {
    let _g = lock(layout, id)?;
    let mut rec = read(layout, id)?;
    let out = f(&mut rec);
    rewrite(layout, &rec)?;
    Ok((out, rec))
}

pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// The id the name index's entry `path` points at. An entry is a symbolic link whose target
/// is the id: metadata only, so the directory's `fsync` makes it durable whole, where a file
/// holding the id needs its own `fsync` first. Entries made before 2026-12-05 are such files,
/// and are read as well. The link is never followed.
pub(crate) fn name_owner(path: &Path) -> std::io::Result<String> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target.to_string_lossy().into_owned()),
        // EINVAL: not a symbolic link, an entry of the older kind
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            std::fs::read_to_string(path).map(|s| s.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

/// Reserve `name` for `id` (fails if taken). The entry is not yet durable: the new
/// container's record is written with [`write_new`], which syncs the name index with it.
pub fn reserve_name(layout: &Layout, name: &str, id: &str) -> Result<()> {
    let lock_path = layout.names_lock();
    let _g = FileLock::exclusive(&lock_path)
        .map_err(|e| EngineError::io("locking the name index", lock_path, e))?;
    let path = layout.names().join(name);
    match name_owner(&path) {
        Ok(owner) => {
            // a stale entry (its container is gone) is taken over; the directory is made
            // before the name is reserved, the record after
            if !owner.is_empty() && layout.dir(&owner).exists() {
                return Err(EngineError::NameInUse {
                    name: name.to_owned(),
                    id: owner,
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EngineError::io("reading the name index", path, e)),
    }
    // made under a temporary name and renamed over the entry (a stale one is replaced
    // whole); the name index's lock makes the temporary name this process's alone
    let temp = layout
        .names()
        .join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(id, &temp)
        .map_err(|e| EngineError::io("writing the name index", &temp, e))?;
    berth_fsutil::rename_unsynced(&temp, &path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        EngineError::Fs {
            what: "writing the name index",
            path,
            source,
        }
    })
}

/// Drop `name` from the index if it still points at `id`.
pub fn release_name(layout: &Layout, name: &str, id: &str) -> Result<()> {
    let lock_path = layout.names_lock();
    let _g = FileLock::exclusive(&lock_path)
        .map_err(|e| EngineError::io("locking the name index", lock_path, e))?;
    let path = layout.names().join(name);
    match name_owner(&path) {
        Ok(owner) if owner == id => std::fs::remove_file(&path)
            .map_err(|e| EngineError::io("removing from the name index", path, e)),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io("reading the name index", path, e)),
    }
}

/// Remove the directory of a container whose record cannot be read, and every name that
/// points at it (a name is in the record too, which is lost).
pub fn discard(layout: &Layout, id: &str) -> Result<()> {
    {
        let lock_path = layout.names_lock();
        let _g = FileLock::exclusive(&lock_path)
            .map_err(|e| EngineError::io("locking the name index", lock_path, e))?;
        let names = layout.names();
        if let Ok(rd) = std::fs::read_dir(&names) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if name_owner(&e.path()).is_ok_and(|owner| owner == id) {
                    std::fs::remove_file(e.path()).map_err(|err| {
                        EngineError::io("removing from the name index", e.path(), err)
                    })?;
                }
            }
        }
    }
    remove_dir(layout, id)
}

/// Remove a container's directory and name (the caller holds no lock on it), after undoing
/// its [`Attachments`](crate::attachments::Attachments) (a failure there keeps the record, so
/// `rm` can be tried again). The directory goes under the container's lock, so an `update`
/// racing it (`start` of an `--rm` container that already exited) finds the record gone
/// instead of writing into a half-removed one.
pub fn remove(layout: &Layout, rec: &Record) -> Result<()> {
    remove_leaving(layout, rec)?.delete()
}

/// [`remove`], leaving the files of the container's directory and snapshot to the caller
/// (see [`Leftovers`]): when it returns, the record, the name and the snapshot are gone for
/// every reader.
pub fn remove_leaving(layout: &Layout, rec: &Record) -> Result<Leftovers> {
    let mut left = rec.attachments.teardown_leaving()?;
    let removed = release_name(layout, &rec.name, &rec.id)
        .and_then(|()| take_dir(layout, &rec.id))
        .map(|dir| left.container_dir = dir);
    match removed {
        Ok(()) => Ok(left),
        Err(e) => {
            let _ = left.delete();
            Err(e)
        }
    }
}

/// Remove a container's directory under its lock.
fn remove_dir(layout: &Layout, id: &str) -> Result<()> {
    match take_dir(layout, id)? {
        Some(dir) => dir.delete(),
        None => Ok(()),
    }
}

/// A container's directory renamed to `containers/.removing-ID`, still to be emptied
/// ([`RemovedDir::delete`]). It holds the container's lock and an `flock` on the directory
/// itself, so that [`sweep_removals`] leaves it to its remover.
#[derive(Debug)]
pub(crate) struct RemovedDir {
    path: PathBuf,
    _container_lock: Option<FileLock>,
    _dir_lock: Option<std::os::fd::OwnedFd>,
}

impl RemovedDir {
    pub(crate) fn delete(self) -> Result<()> {
        delete_removed_dir(&self.path)
    }
}

/// An exclusive `flock` on directory `path`, or `None` when someone else holds one (or the
/// directory is gone).
fn try_lock_dir(path: &Path) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .ok()?;
    rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(fd)
}

/// Take a container's directory out of `containers/` under the container's lock (renamed
/// to `.removing-ID`), or `None` when it was already gone.
fn take_dir(layout: &Layout, id: &str) -> Result<Option<RemovedDir>> {
    let g = match lock(layout, id) {
        Ok(g) => Some(g),
        Err(EngineError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let dir = layout.dir(id);
    // renamed away first: a racing `lock` (which creates `container.lock`) then finds no
    // directory, instead of recreating a file in one being emptied. Not waited for: a
    // removal lost in a crash is a crash a moment before it (the record is found again, as
    // exited, and removed again), and a `.removing-` leftover is swept at the next start
    let doomed = layout.containers().join(format!(".removing-{id}"));
    match berth_fsutil::rename_unsynced(&dir, &doomed) {
        Ok(()) => Ok(Some(RemovedDir {
            _dir_lock: try_lock_dir(&doomed),
            path: doomed,
            _container_lock: g,
        })),
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(None),
        Err(source) => Err(EngineError::Fs {
            what: "removing the container directory",
            path: dir,
            source,
        }),
    }
}

/// Delete a container directory [`take_dir`] renamed away.
fn delete_removed_dir(doomed: &Path) -> Result<()> {
    // an update that looked the directory up before the rename may still drop its
    // temporary file into it while it is emptied (and then find its record gone): the
    // removal goes again over what it added, a few times at most
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(doomed) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 8 => {
                tries += 1;
            }
            Err(e) => {
                return Err(EngineError::io(
                    "removing the container directory",
                    doomed.to_path_buf(),
                    e,
                ));
            }
        }
    }
}

/// Finish removals a killed process left half done (`containers/.removing-ID`).
pub fn sweep_removals(layout: &Layout) {
    if let Ok(rd) = std::fs::read_dir(layout.containers()) {
        for ent in rd.flatten() {
            // one its remover still holds is being emptied (an `--rm` container's monitor
            // deletes the files after reporting the exit)
            if ent.file_name().to_string_lossy().starts_with(".removing-")
                && let Some(_held) = try_lock_dir(&ent.path())
            {
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
    }
}

/// Every container id on disk.
pub fn ids(layout: &Layout) -> Result<Vec<String>> {
    let dir = layout.containers();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io("listing containers in", dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| EngineError::io("listing containers in", &dir, e))?;
        if let Some(name) = ent.file_name().to_str()
            && name.len() == 64
            && name.bytes().all(|c| c.is_ascii_hexdigit())
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// The start time of a process (field 22 of /proc/PID/stat), `None` if it is gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    // after the comm: field 3 is the state, so field 22 is index 19
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that was `pid` at `start` is still alive (a zombie counts as gone).
pub fn alive(pid: i32, start: Option<u64>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .and_then(|s| s.chars().next());
    if state == Some('Z') || state == Some('X') {
        return false;
    }
    match start {
        Some(s) => proc_start_time(pid) == Some(s),
        None => true,
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;

    /// A layout in a temporary directory, with its `containers/` and `names/`.
    fn scratch() -> (tempfile::TempDir, Layout) {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: d.path().to_owned(),
        };
        std::fs::create_dir_all(layout.containers()).unwrap();
        std::fs::create_dir_all(layout.names()).unwrap();
        (d, layout)
    }

    fn sample(id: &str) -> Record {
        Record {
            id: id.to_owned(),
            name: format!("n{}", &id[..8]),
            image: String::new(),
            created: now(),
            bundle: PathBuf::from("/b"),
            runtime: PathBuf::from("/r"),
            runtime_root: PathBuf::from("/rr"),
            status: Status::Running,
            exit_code: None,
            started: None,
            finished: None,
            note: None,
            log_path: PathBuf::from("/l"),
            log_max_size: 4096,
            auto_remove: true,
            monitor_pid: None,
            init_pid: None,
            init_start: None,
            stop_signal: "SIGTERM".to_owned(),
            terminal: false,
            stdin: false,
            stop_timeout: None,
            oom_killed: false,
            attachments: crate::attachments::Attachments::default(),
            sbom: None,
        }
    }

    /// The name index: an entry is a symbolic link to its id (never followed), files of the
    /// older kind are read too, a name whose container exists is refused, a stale one taken
    /// over, and a release only drops the name of its own container.
    #[test]
    fn names_are_links_to_their_ids_and_older_files_still_count() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: d.path().to_owned(),
        };
        std::fs::create_dir_all(layout.names()).unwrap();
        let (a, b) = (format!("{:064x}", 1), format!("{:064x}", 2));
        std::fs::create_dir_all(layout.dir(&a)).unwrap();
        std::fs::create_dir_all(layout.dir(&b)).unwrap();
        reserve_name(&layout, "web", &a).unwrap();
        let entry = layout.names().join("web");
        assert_eq!(std::fs::read_link(&entry).unwrap(), PathBuf::from(&a));
        assert!(matches!(
            reserve_name(&layout, "web", &b),
            Err(EngineError::NameInUse { id, .. }) if id == a
        ));
        release_name(&layout, "web", &b).unwrap();
        assert_eq!(name_owner(&entry).unwrap(), a);
        // a's container is gone: the name is taken over
        std::fs::remove_dir(layout.dir(&a)).unwrap();
        reserve_name(&layout, "web", &b).unwrap();
        assert_eq!(name_owner(&entry).unwrap(), b);
        release_name(&layout, "web", &b).unwrap();
        assert!(std::fs::symlink_metadata(&entry).is_err());
        // an entry of the older kind, a file holding the id
        berth_fsutil::atomic_write(layout.names().join("db"), format!("{b}\n").as_bytes()).unwrap();
        assert!(matches!(
            reserve_name(&layout, "db", &a),
            Err(EngineError::NameInUse { id, .. }) if id == b
        ));
        release_name(&layout, "db", &b).unwrap();
        assert!(!layout.names().join("db").exists());
        // nothing but the entries is left in the index
        assert_eq!(std::fs::read_dir(layout.names()).unwrap().count(), 0);
    }

    /// An `--rm` container removed by its monitor while `start` updates its record: the
    /// update finds it gone (NotFound), never a half-written record or a failed rename.
    #[test]
    fn an_update_racing_a_remove_sees_not_found_or_success() {
        let (_d, layout) = scratch();
        for i in 0..300 {
            let id = format!("{i:064x}");
            std::fs::create_dir(layout.dir(&id)).unwrap();
            let rec = sample(&id);
            write_new(&layout, &rec, &[]).unwrap();
            let l2 = layout.clone();
            let id2 = id.clone();
            let t = std::thread::spawn(move || update(&l2, &id2, |r| r.status = Status::Exited));
            remove(&layout, &rec).unwrap();
            match t.join().unwrap() {
                Ok(_) | Err(EngineError::NotFound(_)) => {}
                Err(e) => panic!("iteration {i}: {e}"),
            }
            assert!(
                !layout.dir(&id).exists(),
                "iteration {i}: the directory came back"
            );
        }
    }

    /// `remove_leaving` (the `--rm` monitor's removal, reported before the files go): the
    /// record and name are gone at once; the directory waits as `.removing-ID`, and the
    /// sweep of another engine's start leaves it while its remover holds it and takes it once
    /// the remover is gone without deleting it.
    #[test]
    fn a_removal_left_for_later_is_gone_at_once_and_swept_only_once_let_go() {
        let (_d, layout) = scratch();
        let removing = |id: &str| layout.containers().join(format!(".removing-{id}"));
        for round in 0..2 {
            let id = format!("{round:064x}");
            std::fs::create_dir(layout.dir(&id)).unwrap();
            let rec = sample(&id);
            write_new(&layout, &rec, &[]).unwrap();
            let left = remove_leaving(&layout, &rec).unwrap();
            assert!(matches!(read(&layout, &id), Err(EngineError::NotFound(_))));
            assert!(ids(&layout).unwrap().is_empty());
            assert!(!layout.names().join(&rec.name).exists());
            assert!(removing(&id).join("container.json").exists());
            sweep_removals(&layout);
            assert!(removing(&id).exists(), "swept while its remover holds it");
            if round == 0 {
                left.delete().unwrap();
            } else {
                drop(left);
                assert!(removing(&id).exists());
                sweep_removals(&layout);
            }
            assert!(!removing(&id).exists());
        }
    }
}
