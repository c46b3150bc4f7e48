//! What follows the containers: their profiles (cached by lower directories) and an inotify
//! watch on the runtimes' state directories.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::containers::{Container, RuntimeKind, Sources};
use crate::profile::{ImageFacts, Profile};

/// Profiles by the directories they were read from, built by a thread of their own: hashing
/// an image's executables takes from milliseconds to seconds (every shared library of a large
/// image), and the loop must go on deciding (and killing) for the other containers meanwhile.
/// The ones in use by a watched container stay; up to `cap` others are kept for containers of
/// the same image started later.
pub(super) struct ProfileCache {
    cap: usize,
    by_dirs: HashMap<Vec<PathBuf>, Arc<Profile>>,
    building: HashSet<Vec<PathBuf>>,
    requests: mpsc::Sender<Vec<PathBuf>>,
    results: mpsc::Receiver<Built>,
}

/// A profile built (or not) by the builder thread, with how long it took.
type Built = (
    Vec<PathBuf>,
    Result<Profile, crate::profile::ProfileError>,
    Duration,
);

/// A container's profile, as far as it is known.
pub(super) enum Lookup {
    /// Built: `None` when there is nothing to build it from.
    Ready(Option<Arc<Profile>>),
    /// Being built from these directories ([`ProfileCache::finished`] says when).
    Building(Vec<PathBuf>),
}

impl ProfileCache {
    /// The cache and its builder thread (which ends when the cache is dropped).
    pub(super) fn new(cap: usize) -> io::Result<ProfileCache> {
        let (requests, todo) = mpsc::channel::<Vec<PathBuf>>();
        let (done, results) = mpsc::channel();
        std::thread::Builder::new()
            .name("watch-profiles".to_owned())
            .spawn(move || {
                for dirs in todo {
                    let started = Instant::now();
                    let built = Profile::from_dirs(&dirs, ImageFacts::default());
                    if done.send((dirs, built, started.elapsed())).is_err() {
                        return;
                    }
                }
            })?;
        Ok(ProfileCache {
            cap,
            by_dirs: HashMap::new(),
            building: HashSet::new(),
            requests,
            results,
        })
    }

    /// The profile of a container: of its overlay's lower directories, or of its bundle's
    /// root directory when its root is no overlay; `Ready(None)` (every exec `unprofiled`)
    /// when neither can be read. One not in the cache is built by the builder thread.
    pub(super) fn get(&mut self, c: &Container, sources: &Sources) -> Lookup {
        let dirs = match &c.overlay {
            // id-mapped lower layers are given to overlayfs as `/proc/self/fd/N` of the
            // process that mounted them: the engine's snapshot says where they are
            Some(o) if o.lower.iter().any(|d| d.starts_with("/proc/self/fd")) => {
                snapshot_lower_dirs(c, sources)
            }
            Some(o) if !o.lower.is_empty() => Some(o.lower.clone()),
            _ => bundle_root(c).map(|d| vec![d]),
        };
        let Some(dirs) = dirs else {
            tracing::warn!(container_id = %c.id, "no profile: neither the container's lower directories nor its root could be found; its execs are reported unprofiled");
            return Lookup::Ready(None);
        };
        if let Some(p) = self.by_dirs.get(&dirs) {
            return Lookup::Ready(Some(Arc::clone(p)));
        }
        if !self.building.contains(&dirs) {
            if self.requests.send(dirs.clone()).is_err() {
                tracing::error!(container_id = %c.id, "the profile builder thread is gone: the container's execs are reported unprofiled");
                return Lookup::Ready(None);
            }
            self.building.insert(dirs.clone());
        }
        Lookup::Building(dirs)
    }

    /// The profiles built since the last call, by the directories they were asked for (`None`:
    /// it could not be built, the reason logged).
    pub(super) fn finished(&mut self) -> Vec<(Vec<PathBuf>, Option<Arc<Profile>>)> {
        let mut out = Vec::new();
        while let Ok((dirs, built, took)) = self.results.try_recv() {
            self.building.remove(&dirs);
            let profile = match built {
                Ok(p) => {
                    tracing::debug!(dirs = ?dirs, executables = p.executables.len(), took_ms = took.as_millis(), "profile built");
                    let p = Arc::new(p);
                    self.trim();
                    self.by_dirs.insert(dirs.clone(), Arc::clone(&p));
                    Some(p)
                }
                Err(e) => {
                    tracing::warn!(dirs = ?dirs, error = %berth_errdefs::error_chain(&e), "no profile: the execs of its containers are reported unprofiled");
                    None
                }
            };
            out.push((dirs, profile));
        }
        out
    }

    /// Drop unused profiles beyond the cap.
    pub(super) fn trim(&mut self) {
        let unused = self
            .by_dirs
            .values()
            .filter(|p| Arc::strong_count(p) == 1)
            .count();
        if unused >= self.cap {
            self.by_dirs.retain(|_, p| Arc::strong_count(p) > 1);
        }
    }
}

/// The lower directories of a `berth run` container's snapshot, upper-most first, from its
/// engine record (`attachments.snapshot`: the snapshot store's root, driver and key).
fn snapshot_lower_dirs(c: &Container, sources: &Sources) -> Option<Vec<PathBuf>> {
    use berth_image::snapshot::{Driver, SnapshotStore, Snapshotter};
    if c.runtime != RuntimeKind::Berth {
        return None;
    }
    let record = sources
        .state_dirs
        .iter()
        .filter(|d| d.runtime == RuntimeKind::Berth)
        .map(|d| d.path.join("containers").join(&c.id).join("container.json"))
        .find_map(|p| std::fs::read(p).ok())?;
    let record: Value = serde_json::from_slice(&record).ok()?;
    let snap = record.get("attachments")?.get("snapshot")?;
    let (root, driver, key) = (
        snap.get("root")?.as_str()?,
        snap.get("driver")?.as_str()?,
        snap.get("key")?.as_str()?,
    );
    let driver = match driver {
        "native" => Driver::Native,
        _ => Driver::Overlay,
    };
    let store = SnapshotStore::open(root, driver)
        .map_err(|e| tracing::warn!(container_id = %c.id, root, error = %berth_errdefs::error_chain(&e), "failed to open the container's snapshot store"))
        .ok()?;
    let mounts = store
        .mounts(key)
        .map_err(|e| tracing::warn!(container_id = %c.id, key, error = %berth_errdefs::error_chain(&e), "failed to read the container's snapshot"))
        .ok()?;
    let dirs: Vec<PathBuf> = mounts.iter().flat_map(|m| m.lowerdirs()).collect();
    (!dirs.is_empty()).then_some(dirs)
}

/// `root.path` of a container's bundle `config.json`, resolved against the bundle.
fn bundle_root(c: &Container) -> Option<PathBuf> {
    let bundle = c.bundle.as_ref()?;
    let data = std::fs::read(bundle.join("config.json")).ok()?;
    let config: Value = serde_json::from_slice(&data).ok()?;
    let root = Path::new(config.get("root")?.get("path")?.as_str()?);
    let root = bundle.join(root);
    root.is_dir().then_some(root)
}

/// inotify on the runtimes' state directories: a change there means a container was
/// created or deleted. A directory that does not exist yet is watched once it does (it is
/// looked for again at each rescan).
pub(super) struct Inotify {
    fd: OwnedFd,
    watched: HashSet<PathBuf>,
}

impl Inotify {
    pub(super) fn new() -> io::Result<Inotify> {
        use rustix::fs::inotify::{CreateFlags, init};
        let fd = init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        Ok(Inotify {
            fd,
            watched: HashSet::new(),
        })
    }

    pub(super) fn watch(&mut self, sources: &Sources) {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        let mut dirs = sources.watch_dirs();
        for d in sources.state_dirs.iter().filter(|d| d.namespaced) {
            if let Ok(rd) = std::fs::read_dir(&d.path) {
                dirs.extend(rd.filter_map(Result::ok).map(|e| e.path()));
            }
        }
        for dir in dirs {
            if self.watched.contains(&dir) || !dir.is_dir() {
                continue;
            }
            let flags = WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MOVED_TO
                | WatchFlags::MOVED_FROM
                | WatchFlags::ONLYDIR;
            match add_watch(&self.fd, &dir, flags) {
                Ok(_) => {
                    tracing::debug!(dir = %dir.display(), "inotify watch");
                    self.watched.insert(dir);
                }
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "no inotify watch (the periodic rescan covers it)");
                }
            }
        }
    }

    /// Whether anything changed since the last call (the queue is emptied).
    pub(super) fn changed(&mut self) -> bool {
        use std::mem::MaybeUninit;
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut changed = false;
        loop {
            let mut reader = rustix::fs::inotify::Reader::new(&self.fd, &mut buf);
            match reader.next() {
                Ok(_) => changed = true,
                Err(_) => return changed,
            }
            // the rest of this read's events
            while reader.next().is_ok() {}
        }
    }
}
