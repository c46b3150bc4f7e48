//! [`SnapshotStore`]: the overlay and native snapshotters over one metadata index.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::collect::Trash;
use super::copy;
use super::error::SnapshotError;
use super::inuse;
use super::layout;
use super::meta::{self, Index, Lease, Record};
use super::mount::{Mount, check_overlay};
use super::{GcReport, Info, Kind, Opts, Snapshotter, Usage};

/// Where a snapshot's tree comes from and how it is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Each snapshot holds one layer's changes; a chain is an overlayfs mount.
    Overlay,
    /// Each snapshot holds a full copy of its parent plus its changes; a bind mount.
    Native,
}

impl Driver {
    /// `"overlay"` or `"native"`, as recorded in `metadata.json`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Native => "native",
        }
    }

    /// How a layer's changes are written into [`writable_dir`](super::writable_dir): `true`
    /// for overlay, where deletions become overlayfs whiteouts (a `0/0` character device
    /// named like the entry) and opaque directories (`trusted.overlay.opaque=y`); `false` for
    /// native, where the snapshot already holds its parent's files and deletions are applied
    /// by deleting.
    pub fn uses_whiteouts(self) -> bool {
        self == Driver::Overlay
    }

    /// Whether an active snapshot prepared without a parent may be committed onto one
    /// (`Opts::parent`, containerd's `rebase` capability): what lets layers be unpacked in
    /// parallel, each into its own parentless snapshot, and chained at commit. Overlay only.
    pub fn supports_rebase(self) -> bool {
        self == Driver::Overlay
    }

    /// Overlay when overlayfs with several lower layers works in `dir`, else native.
    pub fn detect(dir: &Path) -> Driver {
        match check_overlay(dir) {
            Ok(()) => Driver::Overlay,
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "overlayfs unavailable: native snapshots");
                Driver::Native
            }
        }
    }
}

/// A point where a process killed mid-operation leaves intermediate state on disk; the crash
/// tests stop a child process there and `SIGKILL` it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// `prepare`/`view`: the new tree is complete in `tmp/`, not yet renamed or recorded.
    TempFilled,
    /// `prepare`/`view`: renamed to `snapshots/<id>`, not yet recorded (the lock is held).
    Renamed,
    /// `remove`/`gc`: the records are gone, the directories not yet removed.
    Unrecorded,
    /// [`SnapshotStore::prepare_all`]: the directories exist under `snapshots/`, not yet
    /// recorded (the lock is held).
    BatchCreated,
    /// [`SnapshotStore::commit_all`]: every commit of the batch is applied to the index in
    /// memory, which is not yet written (the lock is held).
    BatchApplied,
}

/// Called at each [`CrashPoint`] (tests only: production passes none).
pub type CrashHook = Arc<dyn Fn(CrashPoint) + Send + Sync>;

/// The overlay or native snapshotter on one root directory.
#[derive(Clone)]
pub struct SnapshotStore {
    pub(super) root: PathBuf,
    pub(super) driver: Driver,
    hook: Option<CrashHook>,
    /// Options every overlay mount gets (`index=off` where the kernel knows it).
    overlay_options: Vec<String>,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("root", &self.root)
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(super) fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn now() -> String {
    berth_oci::timefmt::rfc3339_nano(SystemTime::now())
}

fn validate_key(key: &str) -> Result<(), SnapshotError> {
    let reason = if key.is_empty() {
        "it is empty"
    } else if key.len() > 4096 {
        "it is longer than 4096 bytes"
    } else if key.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(SnapshotError::InvalidKey {
        key: key.chars().take(200).collect(),
        reason,
    })
}

pub(super) fn io_err(
    key: &str,
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let key = key.to_owned();
    let path = path.to_owned();
    move |source| SnapshotError::Io {
        key,
        action,
        path,
        source,
    }
}

fn fs_err(key: &str) -> impl FnOnce(berth_fsutil::FsError) -> SnapshotError {
    let key = key.to_owned();
    move |e| {
        let path = match &e {
            berth_fsutil::FsError::Rename { to, .. } => to.clone(),
            berth_fsutil::FsError::CreateDir { path, .. }
            | berth_fsutil::FsError::Sync { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        let kind = e.io_kind().unwrap_or(std::io::ErrorKind::Other);
        SnapshotError::Io {
            key,
            action: "move into place",
            path,
            source: std::io::Error::new(kind, e),
        }
    }
}

pub(super) fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A snapshot directory under construction in `tmp/`, `flock`ed by this process; removed on
/// drop unless it was moved into place.
struct TempDir {
    path: PathBuf,
    _lock: File,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl SnapshotStore {
    /// Open (creating when missing) the snapshot root `root` for `driver`: check overlayfs
    /// works there (overlay), then remove what killed processes left (see [`CrashPoint`]).
    pub fn open(root: impl Into<PathBuf>, driver: Driver) -> Result<SnapshotStore, SnapshotError> {
        SnapshotStore::open_with_hook(root, driver, None)
    }

    /// [`SnapshotStore::open`] with a [`CrashHook`] (crash tests).
    pub fn open_with_hook(
        root: impl Into<PathBuf>,
        driver: Driver,
        hook: Option<CrashHook>,
    ) -> Result<SnapshotStore, SnapshotError> {
        let root: PathBuf = root.into();
        let invalid = |reason: String| SnapshotError::InvalidRoot {
            root: root.clone(),
            reason,
        };
        if !root.is_absolute() {
            return Err(invalid("it must be an absolute path".into()));
        }
        let text = root
            .to_str()
            .ok_or_else(|| invalid("it is not UTF-8".into()))?;
        if text.contains([':', ',', '\\', '\n', '=']) {
            return Err(invalid(
                "it contains ':', ',', '=', '\\' or a newline, which overlay mount options cannot carry; choose another directory".into(),
            ));
        }
        for dir in [
            root.clone(),
            layout::snapshots(&root),
            layout::tmp(&root),
            layout::leases(&root),
        ] {
            berth_fsutil::create_dir_all_durable(&dir).map_err(fs_err(""))?;
        }
        // Checked when the root is created (as containerd checks once at start): a root
        // that worked keeps working on the same filesystem, and a check is a mount.
        if driver == Driver::Overlay && !layout::metadata(&root).exists() {
            check_overlay(&root)?;
        }
        // As containerd: `index=off` whenever the kernel has the option, so a kernel built
        // with the index on by default does not tie an upper to the lowers it first saw.
        let overlay_options = if Path::new("/sys/module/overlay/parameters/index").exists() {
            vec!["index=off".to_owned()]
        } else {
            Vec::new()
        };
        let store = SnapshotStore {
            root,
            driver,
            hook,
            overlay_options,
        };
        let _lock = meta::lock(&store.root)?;
        let mut index = meta::read(&store.root, driver.name())?;
        let cleanup = store.cleanup(&mut index)?;
        if cleanup.changed || !layout::metadata(&store.root).exists() {
            meta::write(&store.root, &index)?;
        }
        drop(_lock);
        for t in cleanup.trash {
            let _ = t.delete();
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The driver.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    pub(super) fn crash_point(&self, point: CrashPoint) {
        if let Some(h) = &self.hook {
            h(point);
        }
    }

    fn record<'a>(&self, index: &'a Index, key: &str) -> Result<&'a Record, SnapshotError> {
        index
            .snapshots
            .get(key)
            .ok_or_else(|| SnapshotError::NotFound {
                key: key.to_owned(),
                root: self.root.clone(),
            })
    }

    fn committed_parent<'a>(
        &self,
        index: &'a Index,
        key: &str,
        parent: &str,
    ) -> Result<&'a Record, SnapshotError> {
        let rec = self.record(index, parent)?;
        if rec.kind != Kind::Committed {
            return Err(SnapshotError::ParentNotCommitted {
                key: key.to_owned(),
                parent: parent.to_owned(),
                actual: rec.kind.as_str(),
            });
        }
        Ok(rec)
    }

    /// Create `tmp/<unique>` and lock it, under the root lock so that a concurrent cleanup
    /// never sees it unlocked.
    fn temp_dir(&self, key: &str) -> Result<TempDir, SnapshotError> {
        let _lock = meta::lock(&self.root)?;
        let path = layout::tmp(&self.root).join(format!("new-{}", unique_name()));
        std::fs::create_dir(&path).map_err(io_err(key, "create", &path))?;
        let file = File::open(&path).map_err(io_err(key, "open", &path))?;
        let mut t = TempDir {
            path,
            _lock: file,
            keep: false,
        };
        if !meta::try_lock(&t._lock) {
            t.keep = true; // not ours to remove
            return Err(SnapshotError::Io {
                key: key.to_owned(),
                action: "lock",
                path: t.path.clone(),
                source: std::io::Error::other(
                    "another process holds the lock of a directory just created",
                ),
            });
        }
        Ok(t)
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Opts,
        kind: Kind,
    ) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        let index = meta::read(&self.root, self.driver.name())?;
        if index.snapshots.contains_key(key) {
            return Err(SnapshotError::AlreadyExists {
                key: key.to_owned(),
                root: self.root.clone(),
            });
        }
        let parent_id = match parent {
            Some(p) => Some(self.committed_parent(&index, key, p)?.id),
            None => None,
        };
        self.check_lease(key, opts)?;
        let mut tmp = self.temp_dir(key)?;
        let fs = tmp.path.join("fs");
        rustix::fs::mkdir(&fs, rustix::fs::Mode::from_raw_mode(0o755))
            .map_err(|e| io_err(key, "create", &fs)(e.into()))?;
        if let Some(pid) = parent_id {
            let parent_fs = layout::fs_dir(&self.root, pid);
            match self.driver {
                Driver::Overlay => {
                    // The upper directory is the merged root: give it the parent root's owner
                    // (containerd does the same).
                    let st = rustix::fs::stat(&parent_fs)
                        .map_err(|e| io_err(key, "stat parent", &parent_fs)(e.into()))?;
                    rustix::fs::chown(
                        &fs,
                        Some(rustix::fs::Uid::from_raw(st.st_uid)),
                        Some(rustix::fs::Gid::from_raw(st.st_gid)),
                    )
                    .map_err(|e| io_err(key, "change owner of", &fs)(e.into()))?;
                    if kind == Kind::Active {
                        let work = tmp.path.join("work");
                        rustix::fs::mkdir(&work, rustix::fs::Mode::from_raw_mode(0o700))
                            .map_err(|e| io_err(key, "create", &work)(e.into()))?;
                    }
                }
                Driver::Native => {
                    copy::copy_tree(&parent_fs, &fs).map_err(|e| SnapshotError::Io {
                        key: key.to_owned(),
                        action: e.action,
                        path: e.path,
                        source: e.source,
                    })?
                }
            }
        }
        self.crash_point(CrashPoint::TempFilled);

        let _lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        if index.snapshots.contains_key(key) {
            return Err(SnapshotError::AlreadyExists {
                key: key.to_owned(),
                root: self.root.clone(),
            });
        }
        if let Some(p) = parent {
            // The parent may have been removed (and its number reused? never: numbers only
            // grow) while this one was being filled.
            let rec = self.committed_parent(&index, key, p)?;
            if Some(rec.id) != parent_id {
                return Err(SnapshotError::NotFound {
                    key: p.to_owned(),
                    root: self.root.clone(),
                });
            }
        }
        let id = index.next_id;
        index.next_id += 1;
        let dest = layout::snapshot_dir(&self.root, id);
        // A directory already there is an unrecorded leftover (numbers are never reused).
        remove_tree(&dest).map_err(io_err(key, "remove stale", &dest))?;
        // synced with the index below, at once (`meta::write_after_rename`)
        berth_fsutil::rename_unsynced(&tmp.path, &dest).map_err(fs_err(key))?;
        tmp.keep = true;
        self.crash_point(CrashPoint::Renamed);
        let t = now();
        let rec = Record {
            id,
            kind,
            parent: parent.map(str::to_owned),
            labels: opts.labels.clone(),
            created: t.clone(),
            updated: t,
            lease: opts.lease.clone(),
            usage: None,
        };
        let mounts = self.mounts_of(&index, key, &rec)?;
        index.snapshots.insert(key.to_owned(), rec);
        meta::write_after_rename(&self.root, &index, &layout::snapshots(&self.root))?;
        Ok(mounts)
    }

    /// The fs directories of `rec`'s ancestors, nearest first.
    fn parent_dirs(
        &self,
        index: &Index,
        key: &str,
        rec: &Record,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut dirs = Vec::new();
        let mut next = rec.parent.clone();
        while let Some(p) = next {
            let r = index
                .snapshots
                .get(&p)
                .ok_or_else(|| SnapshotError::NotFound {
                    key: p.clone(),
                    root: self.root.clone(),
                })?;
            dirs.push(layout::fs_dir(&self.root, r.id));
            next = r.parent.clone();
            if dirs.len() > index.snapshots.len() {
                return Err(SnapshotError::InvalidKey {
                    key: key.to_owned(),
                    reason: "its parent chain loops (corrupt metadata)",
                });
            }
        }
        Ok(dirs)
    }

    fn mounts_of(
        &self,
        index: &Index,
        key: &str,
        rec: &Record,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let fs = layout::fs_dir(&self.root, rec.id);
        if rec.kind == Kind::Committed {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                operation: "mounts",
                actual: "committed",
                expected: "an active or a view",
            });
        }
        let view = rec.kind == Kind::View;
        if self.driver == Driver::Native {
            return Ok(vec![Mount::bind(fs, view)]);
        }
        let parents = self.parent_dirs(index, key, rec)?;
        let lowerdir = |dirs: &[PathBuf]| {
            let s: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!("lowerdir={}", s.join(":"))
        };
        Ok(match (view, parents.as_slice()) {
            (_, []) => vec![Mount::bind(fs, view)],
            (true, [one]) => vec![Mount::bind(one.clone(), true)],
            (true, many) => vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: [vec![lowerdir(many)], self.overlay_options.clone()].concat(),
            }],
            (false, many) => vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: [
                    vec![
                        lowerdir(many),
                        format!("upperdir={}", fs.display()),
                        format!("workdir={}", layout::work_dir(&self.root, rec.id).display()),
                    ],
                    self.overlay_options.clone(),
                ]
                .concat(),
            }],
        })
    }

    /// The parent a commit records: the active snapshot's, or `opts.parent` for one prepared
    /// without a parent (containerd's rebase: overlay only, where a layer's directory holds
    /// only its own changes and so does not depend on what it is stacked on).
    fn commit_parent(
        &self,
        index: &Index,
        key: &str,
        current: Option<String>,
        opts: &Opts,
    ) -> Result<Option<String>, SnapshotError> {
        let rebase = |reason: &'static str| SnapshotError::Rebase {
            key: key.to_owned(),
            reason,
        };
        match (current, &opts.parent) {
            (current, None) => Ok(current),
            (Some(p), Some(new)) if &p == new => Ok(Some(p)),
            (Some(_), Some(_)) => Err(rebase(
                "it was prepared on another parent, and a parent cannot change",
            )),
            (None, Some(_)) if !self.driver.supports_rebase() => Err(rebase(
                "the native snapshotter copies its parent at prepare; prepare it on the parent instead",
            )),
            (None, Some(new)) => {
                self.committed_parent(index, key, new)?;
                Ok(Some(new.clone()))
            }
        }
    }

    /// A snapshot recorded with a dead lease would be removed at the next open: refuse it.
    fn check_lease(&self, key: &str, opts: &Opts) -> Result<(), SnapshotError> {
        match &opts.lease {
            Some(l) if !meta::lease_alive(&self.root, l) => Err(SnapshotError::DeadLease {
                key: key.to_owned(),
                lease: l.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn check_not_in_use(&self, key: &str, id: u64) -> Result<(), SnapshotError> {
        let dir = layout::snapshot_dir(&self.root, id);
        let mounts =
            inuse::current().map_err(io_err(key, "read", Path::new("/proc/self/mountinfo")))?;
        match inuse::in_use(&mounts, &dir) {
            Some(how) => Err(SnapshotError::InUse {
                key: key.to_owned(),
                path: dir,
                how,
            }),
            None => Ok(()),
        }
    }

    fn info(key: &str, rec: &Record) -> Info {
        Info {
            key: key.to_owned(),
            kind: rec.kind,
            parent: rec.parent.clone(),
            labels: rec.labels.clone(),
            created: rec.created.clone(),
            updated: rec.updated.clone(),
        }
    }

    /// Move `snapshots/<id>` into `tmp/` (under the lock), to be deleted after it.
    pub(super) fn unlink_dir(&self, id: u64) -> Option<Trash> {
        Trash::take(&self.root, layout::snapshot_dir(&self.root, id))
    }

    /// The tree of `key`: for overlay, only its own layer's files (deletions as overlay
    /// whiteouts); for native, all of it. Read it only while `key` is held (a lease, a label).
    pub(crate) fn fs_dir_of(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        Ok(layout::fs_dir(&self.root, self.record(&index, key)?.id))
    }

    /// Remove `key` as [`Snapshotter::remove`] does, but leave its files to the caller: when
    /// this returns, the snapshot is gone from the index (no list, mount or collection sees
    /// it again) and its directory is out of `snapshots/`, under `tmp/` and locked; deleting
    /// the files is [`RemovedFiles::delete`]. A caller that answers someone in between (the
    /// monitor of an `--rm` container reporting its exit) keeps the deletion off that answer.
    /// Files never deleted (the process killed first) are deleted at a later
    /// [`SnapshotStore::open`], as any directory left under `tmp/`. `Ok(None)` when the
    /// directory was already gone.
    pub fn remove_later(&self, key: &str) -> Result<Option<RemovedFiles>, SnapshotError> {
        let lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        let id = self.record(&index, key)?.id;
        let children: Vec<&str> = index.children(key).collect();
        if let Some(child) = children.first() {
            return Err(SnapshotError::HasChildren {
                key: key.to_owned(),
                count: children.len(),
                child: (*child).to_owned(),
            });
        }
        self.check_not_in_use(key, id)?;
        index.snapshots.remove(key);
        meta::write_removal(&self.root, &index)?;
        self.crash_point(CrashPoint::Unrecorded);
        let trash = self.unlink_dir(id);
        drop(lock);
        Ok(trash.map(|trash| RemovedFiles {
            key: key.to_owned(),
            trash,
        }))
    }

    /// The directory of `key` (tests and diagnostics).
    pub fn dir_of(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        Ok(layout::snapshot_dir(
            &self.root,
            self.record(&index, key)?.id,
        ))
    }
}

/// The files of a removed snapshot, still to be deleted ([`SnapshotStore::remove_later`]).
#[must_use = "the files stay on disk until `delete` (or the next open of the store)"]
pub struct RemovedFiles {
    key: String,
    trash: Trash,
}

impl RemovedFiles {
    /// The removed snapshot's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Delete the files.
    pub fn delete(self) -> Result<(), SnapshotError> {
        let path = self.trash.path.clone();
        self.trash
            .delete()
            .map_err(io_err(&self.key, "remove", &path))
    }
}

impl std::fmt::Debug for RemovedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemovedFiles")
            .field("key", &self.key)
            .field("path", &self.trash.path)
            .finish()
    }
}

/// One commit of [`SnapshotStore::commit_all`]: the active snapshot `key` as `name`, with
/// `opts` as [`Snapshotter::commit`] takes them.
#[derive(Debug, Clone)]
pub struct CommitOp {
    pub name: String,
    pub key: String,
    pub opts: Opts,
}

impl SnapshotStore {
    /// Create parent-less active snapshots `keys` (each an empty tree) in one metadata
    /// transaction: one lock, one `metadata.json` write for all of them, where `prepare`
    /// writes it once per snapshot. What an image's layers are unpacked into in parallel
    /// before [`SnapshotStore::commit_all`] stacks them. All or nothing: a failure, or a
    /// process killed before the write, records none of them, and the directories made are
    /// removed (by this call, or as unrecorded at the next open). Returns the mounts of each,
    /// in order.
    pub fn prepare_all(
        &self,
        keys: &[String],
        opts: &Opts,
    ) -> Result<Vec<Vec<Mount>>, SnapshotError> {
        for (i, key) in keys.iter().enumerate() {
            validate_key(key)?;
            if keys[..i].contains(key) {
                return Err(SnapshotError::AlreadyExists {
                    key: key.clone(),
                    root: self.root.clone(),
                });
            }
            self.check_lease(key, opts)?;
        }
        let _lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        if let Some(key) = keys.iter().find(|k| index.snapshots.contains_key(*k)) {
            return Err(SnapshotError::AlreadyExists {
                key: key.clone(),
                root: self.root.clone(),
            });
        }
        // Made in place under the lock (an empty tree needs no temporary: another process's
        // cleanup cannot run before the record is written, and a killed process's directories
        // are unrecorded ones, removed at the next open).
        let mut made: Vec<PathBuf> = Vec::with_capacity(keys.len());
        let result = (|| {
            let t = now();
            let mut mounts = Vec::with_capacity(keys.len());
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                let id = index.next_id;
                index.next_id += 1;
                let dest = layout::snapshot_dir(&self.root, id);
                remove_tree(&dest).map_err(io_err(key, "remove stale", &dest))?;
                std::fs::create_dir(&dest).map_err(io_err(key, "create", &dest))?;
                made.push(dest);
                let fs = layout::fs_dir(&self.root, id);
                rustix::fs::mkdir(&fs, rustix::fs::Mode::from_raw_mode(0o755))
                    .map_err(|e| io_err(key, "create", &fs)(e.into()))?;
                let rec = Record {
                    id,
                    kind: Kind::Active,
                    parent: None,
                    labels: opts.labels.clone(),
                    created: t.clone(),
                    updated: t.clone(),
                    lease: opts.lease.clone(),
                    usage: None,
                };
                mounts.push(self.mounts_of(&index, key, &rec)?);
                records.push((key.clone(), rec));
            }
            let dir = layout::snapshots(&self.root);
            berth_fsutil::sync_dir(&dir).map_err(fs_err(""))?;
            self.crash_point(CrashPoint::BatchCreated);
            index.snapshots.extend(records);
            meta::write(&self.root, &index)?;
            Ok(mounts)
        })();
        if result.is_err() {
            for d in &made {
                let _ = remove_tree(d);
            }
        }
        result
    }

    /// Commit several active snapshots in one metadata transaction: one lock and one
    /// `metadata.json` write for the whole batch, where `commit` writes it once per snapshot.
    /// The commits apply in order, so one may be stacked ([`Opts::onto`]) on a snapshot an
    /// earlier one of the batch commits. All or nothing: on any error, or a process killed
    /// before the write, none is recorded (the active snapshots stay as they were, and a dead
    /// process's are removed at the next open); after it, all are.
    ///
    /// Returns, per commit, whether it was made: `false` when `name` already exists (another
    /// process committed the same layer first): then the active `key` is left for the caller
    /// to remove, as `commit`'s `AlreadyExists`.
    pub fn commit_all(&self, ops: &[CommitOp]) -> Result<Vec<bool>, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        let mounted =
            inuse::current().map_err(io_err("", "read", Path::new("/proc/self/mountinfo")))?;
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            validate_key(&op.name)?;
            let rec = self.record(&index, &op.key)?;
            if rec.kind != Kind::Active {
                return Err(SnapshotError::WrongKind {
                    key: op.key.clone(),
                    operation: "commit",
                    actual: rec.kind.as_str(),
                    expected: "an active",
                });
            }
            self.check_lease(&op.name, &op.opts)?;
            let dir = layout::snapshot_dir(&self.root, rec.id);
            if let Some(how) = inuse::in_use(&mounted, &dir) {
                return Err(SnapshotError::InUse {
                    key: op.key.clone(),
                    path: dir,
                    how,
                });
            }
            let fs = layout::fs_dir(&self.root, rec.id);
            let usage = copy::usage(&fs).map_err(io_err(&op.key, "measure", &fs))?;
            prepared.push((rec.id, usage));
        }

        let lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        let mut made = Vec::with_capacity(ops.len());
        let t = now();
        for (op, (id, usage)) in ops.iter().zip(prepared) {
            if index.snapshots.contains_key(&op.name) {
                made.push(false);
                continue;
            }
            let rec = self.record(&index, &op.key)?.clone();
            if rec.id != id || rec.kind != Kind::Active {
                return Err(SnapshotError::NotFound {
                    key: op.key.clone(),
                    root: self.root.clone(),
                });
            }
            let parent = self.commit_parent(&index, &op.key, rec.parent, &op.opts)?;
            index.snapshots.remove(&op.key);
            index.snapshots.insert(
                op.name.clone(),
                Record {
                    id,
                    kind: Kind::Committed,
                    parent,
                    labels: op.opts.labels.clone(),
                    created: t.clone(),
                    updated: t.clone(),
                    lease: op.opts.lease.clone(),
                    usage: Some(usage),
                },
            );
            made.push(true);
        }
        self.crash_point(CrashPoint::BatchApplied);
        meta::write(&self.root, &index)?;
        drop(lock);
        for (op, made) in ops.iter().zip(&made) {
            if *made && let Some(rec) = index.snapshots.get(&op.name) {
                let _ = remove_tree(&layout::work_dir(&self.root, rec.id));
            }
        }
        Ok(made)
    }
}

impl Snapshotter for SnapshotStore {
    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        Ok(SnapshotStore::info(key, self.record(&index, key)?))
    }

    fn update_labels(
        &self,
        key: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<Info, SnapshotError> {
        let _lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        self.record(&index, key)?;
        let Some(rec) = index.snapshots.get_mut(key) else {
            return Err(SnapshotError::NotFound {
                key: key.to_owned(),
                root: self.root.clone(),
            });
        };
        for (k, v) in changes {
            match v {
                Some(v) => rec.labels.insert(k.clone(), v.clone()),
                None => rec.labels.remove(k),
            };
        }
        rec.updated = now();
        let info = SnapshotStore::info(key, rec);
        meta::write(&self.root, &index)?;
        Ok(info)
    }

    fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        let rec = self.record(&index, key)?;
        if let Some(u) = rec.usage {
            return Ok(u);
        }
        let fs = layout::fs_dir(&self.root, rec.id);
        copy::usage(&fs).map_err(io_err(key, "measure", &fs))
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        let rec = self.record(&index, key)?;
        self.mounts_of(&index, key, rec)
    }

    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Opts,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, opts, Kind::Active)
    }

    fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Opts,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, opts, Kind::View)
    }

    fn commit(&self, name: &str, key: &str, opts: &Opts) -> Result<(), SnapshotError> {
        validate_key(name)?;
        let index = meta::read(&self.root, self.driver.name())?;
        let rec = self.record(&index, key)?;
        if rec.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                operation: "commit",
                actual: rec.kind.as_str(),
                expected: "an active",
            });
        }
        let id = rec.id;
        self.check_lease(name, opts)?;
        // A mounted upper would keep changing under every child of the committed layer.
        self.check_not_in_use(key, id)?;
        let fs = layout::fs_dir(&self.root, id);
        let usage = copy::usage(&fs).map_err(io_err(key, "measure", &fs))?;

        let _lock = meta::lock(&self.root)?;
        let mut index = meta::read(&self.root, self.driver.name())?;
        if index.snapshots.contains_key(name) {
            return Err(SnapshotError::AlreadyExists {
                key: name.to_owned(),
                root: self.root.clone(),
            });
        }
        let rec = self.record(&index, key)?.clone();
        if rec.id != id || rec.kind != Kind::Active {
            return Err(SnapshotError::NotFound {
                key: key.to_owned(),
                root: self.root.clone(),
            });
        }
        let parent = self.commit_parent(&index, key, rec.parent, opts)?;
        let t = now();
        index.snapshots.remove(key);
        index.snapshots.insert(
            name.to_owned(),
            Record {
                id,
                kind: Kind::Committed,
                parent,
                labels: opts.labels.clone(),
                created: t.clone(),
                updated: t,
                lease: opts.lease.clone(),
                usage: Some(usage),
            },
        );
        meta::write(&self.root, &index)?;
        drop(_lock);
        // The workdir only serves a mounted upper; a committed layer is never one again.
        let _ = remove_tree(&layout::work_dir(&self.root, id));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        match self.remove_later(key)? {
            Some(files) => files.delete(),
            None => Ok(()),
        }
    }

    fn list(&self) -> Result<Vec<Info>, SnapshotError> {
        let index = meta::read(&self.root, self.driver.name())?;
        Ok(index
            .snapshots
            .iter()
            .map(|(k, r)| SnapshotStore::info(k, r))
            .collect())
    }

    fn gc(&self) -> Result<GcReport, SnapshotError> {
        self.collect()
    }

    fn lease(&self) -> Result<Lease, SnapshotError> {
        let _lock = meta::lock(&self.root)?;
        Lease::create(&self.root, unique_name())
    }
}
