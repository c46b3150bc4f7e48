//! What follows the containers: their profiles (cached by lower directories and signed SBOM)
//! and an inotify watch on the runtimes' state directories.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::containers::{Container, RuntimeKind, SbomSource, Sources};
use crate::profile::{ImageFacts, Profile};

/// What a profile is built from: the image's directories, and the signed SBOM `berth run`
/// kept for the container, if any. Keys are equal whatever file the SBOM is kept in: the
/// containers of one image share one profile.
#[derive(Debug, Clone)]
pub(super) struct ProfileKey {
    pub(super) dirs: Vec<PathBuf>,
    pub(super) sbom: Option<SbomSource>,
}

impl ProfileKey {
    fn identity(&self) -> (&[PathBuf], Option<(&str, &str, &str)>) {
        (
            &self.dirs,
            self.sbom
                .as_ref()
                .map(|s| (s.sha256.as_str(), s.manifest.as_str(), s.signer.as_str())),
        )
    }
}

impl PartialEq for ProfileKey {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for ProfileKey {}

impl std::hash::Hash for ProfileKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// The largest SBOM document read (a large image's SPDX document with every file is tens
/// of MiB).
const SBOM_MAX_BYTES: u64 = 256 << 20;

/// Profiles by the directories they were read from, built by a thread of their own: hashing
/// an image's executables takes from milliseconds to seconds (every shared library of a large
/// image), and the loop must go on deciding (and killing) for the other containers meanwhile.
/// The ones in use by a watched container stay; up to `cap` others are kept for containers of
/// the same image started later.
pub(super) struct ProfileCache {
    cap: usize,
    by_key: HashMap<ProfileKey, Arc<Profile>>,
    building: HashSet<ProfileKey>,
    requests: mpsc::Sender<ProfileKey>,
    results: mpsc::Receiver<Built>,
}

/// A profile built (or not) by the builder thread, with how long it took.
type Built = (
    ProfileKey,
    Result<Profile, crate::profile::ProfileError>,
    Duration,
);

/// A container's profile, as far as it is known.
pub(super) enum Lookup {
    /// Built: `None` when there is nothing to build it from.
    Ready(Option<Arc<Profile>>),
    /// Being built from this ([`ProfileCache::finished`] says when).
    Building(ProfileKey),
}

impl ProfileCache {
    /// The cache and its builder thread (which ends when the cache is dropped).
    pub(super) fn new(cap: usize) -> io::Result<ProfileCache> {
        let (requests, todo) = mpsc::channel::<ProfileKey>();
        let (done, results) = mpsc::channel();
        std::thread::Builder::new()
            .name("watch-profiles".to_owned())
            .spawn(move || {
                for key in todo {
                    let started = Instant::now();
                    let built = Profile::from_dirs(&key.dirs, ImageFacts::default()).map(|p| {
                        match &key.sbom {
                            Some(s) => with_sbom(p, s),
                            None => p,
                        }
                    });
                    if done.send((key, built, started.elapsed())).is_err() {
                        return;
                    }
                }
            })?;
        Ok(ProfileCache {
            cap,
            by_key: HashMap::new(),
            building: HashSet::new(),
            requests,
            results,
        })
    }

    /// The profile of a container: of its overlay's lower directories, or of its bundle's
    /// root directory when its root is no overlay, with the signed SBOM `berth run` kept for
    /// it; `Ready(None)` (every exec `unprofiled`) when neither directory can be read. One
    /// not in the cache is built by the builder thread.
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
        let key = ProfileKey {
            dirs,
            sbom: c.sbom.clone(),
        };
        if let Some(p) = self.by_key.get(&key) {
            return Lookup::Ready(Some(Arc::clone(p)));
        }
        if !self.building.contains(&key) {
            if self.requests.send(key.clone()).is_err() {
                tracing::error!(container_id = %c.id, "the profile builder thread is gone: the container's execs are reported unprofiled");
                return Lookup::Ready(None);
            }
            self.building.insert(key.clone());
        }
        Lookup::Building(key)
    }

    /// The profiles built since the last call, by what they were asked for (`None`: it could
    /// not be built, the reason logged).
    pub(super) fn finished(&mut self) -> Vec<(ProfileKey, Option<Arc<Profile>>)> {
        let mut out = Vec::new();
        while let Ok((key, built, took)) = self.results.try_recv() {
            self.building.remove(&key);
            let profile = match built {
                Ok(p) => {
                    tracing::debug!(dirs = ?key.dirs, executables = p.executables.len(), sbom_files = p.sbom.as_ref().map_or(0, |s| s.files.len()), took_ms = took.as_millis(), "profile built");
                    let p = Arc::new(p);
                    self.trim();
                    self.by_key.insert(key.clone(), Arc::clone(&p));
                    Some(p)
                }
                Err(e) => {
                    tracing::warn!(dirs = ?key.dirs, error = %berth_errdefs::error_chain(&e), "no profile: the execs of its containers are reported unprofiled");
                    None
                }
            };
            out.push((key, profile));
        }
        out
    }

    /// Drop unused profiles beyond the cap.
    pub(super) fn trim(&mut self) {
        let unused = self
            .by_key
            .values()
            .filter(|p| Arc::strong_count(p) == 1)
            .count();
        if unused >= self.cap {
            self.by_key.retain(|_, p| Arc::strong_count(p) > 1);
        }
    }
}

/// `profile` with the executables of the signed SBOM `berth run` kept for the container.
/// The SBOM only adds expected content: when it cannot be read, is no longer the file the
/// record describes, or is no SBOM, the profile is the image's alone (stricter), and the
/// reason is logged.
fn with_sbom(profile: Profile, s: &SbomSource) -> Profile {
    match read_sbom_files(s) {
        Ok(files) => {
            let p = profile.with_sbom(s.manifest.clone(), s.signer.clone(), files);
            if let Some(m) = p.sbom.as_ref().filter(|m| !m.mismatched.is_empty()) {
                tracing::warn!(sbom = %s.manifest, paths = ?m.mismatched, "the image's signed SBOM lists other content than its layers hold at these paths: the layers' content is what is expected there");
            }
            p
        }
        Err(e) => {
            tracing::warn!(sbom = %s.path.display(), error = %e, "the container's signed SBOM is not used: its profile is its image's layers alone");
            profile
        }
    }
}

/// The executable files (path → SHA-256) of the SBOM document at `s.path`, checked to be the
/// document the engine record describes.
fn read_sbom_files(
    s: &SbomSource,
) -> Result<std::collections::BTreeMap<String, berth_oci::Digest>, String> {
    use std::io::Read;
    let file = std::fs::File::open(&s.path).map_err(|e| format!("failed to open it: {e}"))?;
    let mut data = Vec::new();
    file.take(SBOM_MAX_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("failed to read it: {e}"))?;
    if data.len() as u64 > SBOM_MAX_BYTES {
        return Err(format!("it is over {SBOM_MAX_BYTES} bytes"));
    }
    let actual = berth_oci::Digest::sha256_of(&data).to_string();
    if actual != s.sha256 {
        return Err(format!(
            "it has SHA-256 {actual}, its engine record says {}: it was changed since `berth run` verified it",
            s.sha256
        ));
    }
    let parsed = berth_sbom::format::parse(&data).map_err(|e| berth_errdefs::error_chain(&e))?;
    Ok(parsed
        .inventory
        .files
        .into_iter()
        .map(|f| (f.path, f.sha256))
        .collect())
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
