//! Attribution: which container a cgroup id belongs to.
//!
//! The probes report `bpf_get_current_cgroup_id()`, the inode number of the task's directory
//! in the cgroup2 hierarchy. [`Containers::scan`] finds the running containers in the state
//! directories of the runtimes ([`Sources`]):
//!
//! ```text
//! /var/lib/berth/containers/<id>/container.json   berth's engine records (name, image, init pid)
//! /run/berth-runtime/<id>/state.json              berth-runtime (`pid`, `bundle`, `initStartTime`)
//! /run/runc/<id>/state.json                       runc (`init_process_pid`, `config.labels` bundle=…)
//! /run/containerd/runc/<namespace>/<id>/state.json  runc under containerd, one directory per namespace
//! /run/crun/<id>/status                           crun (`pid`, `bundle`, `process-start-time`)
//! ```
//!
//! and for each running one reads `/proc/PID/cgroup` (the `0::/…` line: its cgroup2 path),
//! stats that directory under the cgroup2 mount (`/sys/fs/cgroup` on a unified host,
//! `/sys/fs/cgroup/unified` on a hybrid one: [`cgroup2_mount`] reads it from mountinfo) for
//! the cgroup id, and reads `/proc/PID/mountinfo` for the overlay of its root (lower and
//! upper directories). A pid whose start time is not the one the runtime recorded is a
//! reused pid: that container is not running. The name and image come from the engine
//! record, else from the bundle's `config.json` annotations (CRI, nerdctl, podman).
//!
//! [`Containers::rescan`] (on a timer, or on an inotify of [`Sources::watch_dirs`]) picks up
//! containers started later and forgets the ones that exited; a container already known (same
//! runtime, id, pid) is kept as it is, without reading its files again.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod procfs;

use procfs::pid_ns_level;
pub use procfs::{cgroup2_mount, parse_cgroup2_path, root_overlay};

/// The largest state file, record or bundle config read (runc's `state.json` holds the
/// whole config).
const MAX_STATE_BYTES: u64 = 16 << 20;

/// Who created a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// `berth run` (an engine record; the runtime underneath is berth-runtime).
    Berth,
    BerthRuntime,
    Runc,
    Crun,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Berth => "berth",
            RuntimeKind::BerthRuntime => "berth-runtime",
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
        }
    }
}

/// A runtime's state directory (its `--root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub runtime: RuntimeKind,
    pub path: PathBuf,
    /// The directory holds one directory per containerd namespace, each a runc root
    /// (`/run/containerd/runc`).
    pub namespaced: bool,
}

/// Where containers are found, and the host paths read for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Runtime state directories ([`RuntimeKind::Berth`] entries are engine state roots,
    /// holding `containers/<id>/container.json`).
    pub state_dirs: Vec<StateDir>,
    /// procfs (`/proc`).
    pub proc: PathBuf,
    /// The cgroup2 mount ([`cgroup2_mount`]).
    pub cgroup2: PathBuf,
}

impl Sources {
    /// The default state directories of berth, berth-runtime, runc, containerd's runc and
    /// crun (as root), with the cgroup2 mount found in `proc`/self/mountinfo.
    pub fn host(proc: &Path) -> Result<Sources, DiscoverError> {
        let mountinfo = read_bounded(&proc.join("self/mountinfo"))?;
        let cgroup2 = cgroup2_mount(&mountinfo).ok_or(DiscoverError::NoCgroup2)?;
        let dir = |runtime, path: &str, namespaced| StateDir {
            runtime,
            path: PathBuf::from(path),
            namespaced,
        };
        Ok(Sources {
            state_dirs: vec![
                dir(RuntimeKind::Berth, "/var/lib/berth", false),
                dir(RuntimeKind::BerthRuntime, "/run/berth-runtime", false),
                dir(RuntimeKind::Runc, "/run/runc", false),
                dir(RuntimeKind::Runc, "/run/containerd/runc", true),
                dir(RuntimeKind::Crun, "/run/crun", false),
            ],
            proc: proc.to_owned(),
            cgroup2,
        })
    }

    /// The directories whose changes mean a container was created or deleted (for an
    /// inotify watch that triggers [`Containers::rescan`]).
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        self.state_dirs
            .iter()
            .map(|d| match d.runtime {
                RuntimeKind::Berth => d.path.join("containers"),
                _ => d.path.clone(),
            })
            .collect()
    }
}

/// Why containers could not be discovered (or one of them read).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    #[error(
        "no cgroup2 hierarchy is mounted (neither /sys/fs/cgroup nor /sys/fs/cgroup/unified); hint: events are attributed by cgroup2 id, mount cgroup2 or boot with systemd.unified_cgroup_hierarchy"
    )]
    NoCgroup2,
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is over {MAX_STATE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("failed to parse {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("process {pid} of container {id} has no cgroup2 entry (0::) in {path}")]
    NoCgroupEntry { id: String, pid: u32, path: PathBuf },
}

impl DiscoverError {
    /// The class of the failure.
    pub fn kind(&self) -> berth_errdefs::ErrorKind {
        use berth_errdefs::ErrorKind;
        match self {
            DiscoverError::NoCgroup2 => ErrorKind::Unavailable,
            DiscoverError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            DiscoverError::Read { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                ErrorKind::Denied
            }
            DiscoverError::Read { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// The overlay mounted at a container's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayRoot {
    /// `lowerdir=`, upper-most first.
    pub lower: Vec<PathBuf>,
    /// `upperdir=` (`None` for a read-only overlay).
    pub upper: Option<PathBuf>,
}

/// A running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub id: String,
    /// The engine's name, or the one the bundle's annotations give; else empty.
    pub name: String,
    pub runtime: RuntimeKind,
    /// The containerd namespace, for runc under containerd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The image reference, when the engine record or the annotations say.
    pub image: String,
    pub bundle: Option<PathBuf>,
    /// The init's host pid.
    pub pid: u32,
    /// The init's start time (field 22 of `/proc/PID/stat`).
    #[serde(skip)]
    pub start_time: u64,
    /// The cgroup2 path (`/…`, as `/proc/PID/cgroup` says).
    pub cgroup_path: String,
    /// The cgroup id: the inode of the cgroup2 directory.
    pub cgroup_id: u64,
    /// The overlay at its root, if its root is one.
    pub overlay: Option<OverlayRoot>,
    /// Its init's mount namespace (the inode number of `/proc/PID/ns/mnt`), if readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mnt_ns: Option<u64>,
    /// How deep its init's pid namespace is (0: the initial one), from `NSpid` in
    /// `/proc/PID/status`, if readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_ns_level: Option<u32>,
    /// The image's SBOM the trust gate verified when `berth run` made it, kept beside its
    /// engine record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomSource>,
    /// The ports its image declares (`ExposedPorts`), from its runtime config's
    /// `org.opencontainers.image.exposedPorts` annotation (image-spec "conversion.md":
    /// `berth run` and umoci write it); `None` when the config does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_ports: Option<Vec<crate::profile::Port>>,
}

/// A verified SBOM `berth run` kept in a container's directory (`sbom.json`), as its engine
/// record describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SbomSource {
    /// The file.
    #[serde(default)]
    pub path: PathBuf,
    /// The SHA-256 the record gives for the file (`sha256:…`): the file is read only if it
    /// still has it.
    pub sha256: String,
    /// The referrer manifest's digest.
    pub manifest: String,
    /// The identity whose signature the policy accepted.
    pub signer: String,
}

/// What a rescan changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub added: Vec<Container>,
    pub removed: Vec<Container>,
    /// Containers (or state directories) that could not be read; the others were.
    pub problems: Vec<DiscoverError>,
}

/// The running containers, by cgroup id.
#[derive(Debug, Default, Clone)]
pub struct Containers {
    by_cgroup: HashMap<u64, Container>,
    /// When the state directories were last read.
    scanned: Option<Instant>,
}

/// One container as a state file describes it, before /proc is read.
#[derive(Debug)]
struct Found {
    id: String,
    runtime: RuntimeKind,
    namespace: Option<String>,
    bundle: Option<PathBuf>,
    pid: u32,
    start_time: Option<u64>,
    name: String,
    image: String,
    sbom: Option<SbomSource>,
}

impl Containers {
    /// The containers running now.
    pub fn scan(sources: &Sources) -> (Containers, Vec<DiscoverError>) {
        let mut c = Containers::default();
        let changes = c.rescan(sources);
        (c, changes.problems)
    }

    /// Read the state directories again: add the containers started since, drop the ones
    /// that are gone.
    pub fn rescan(&mut self, sources: &Sources) -> Changes {
        self.scanned = Some(Instant::now());
        let mut changes = Changes::default();
        let mut found = Vec::new();
        for dir in &sources.state_dirs {
            list_state_dir(dir, &mut found, &mut changes.problems);
        }
        // engine records first: their names and images win over a runtime's view of the
        // same container
        found.sort_by_key(|f| f.runtime != RuntimeKind::Berth);
        let mut next: HashMap<u64, Container> = HashMap::new();
        for f in found {
            let Some(start) = start_time(&sources.proc, f.pid) else {
                continue; // not running (stopped, or its process is gone)
            };
            if f.start_time.is_some_and(|s| s != start) {
                continue; // the pid was reused
            }
            let known = self.by_cgroup.values().find(|c| {
                c.id == f.id && c.runtime == f.runtime && c.pid == f.pid && c.start_time == start
            });
            let container = match known {
                Some(c) => c.clone(),
                None => match describe(sources, f, start) {
                    Ok(c) => c,
                    Err(e) => {
                        changes.problems.push(e);
                        continue;
                    }
                },
            };
            match next.get_mut(&container.cgroup_id) {
                Some(existing) => {
                    if existing.bundle.is_none() {
                        existing.bundle = container.bundle;
                    }
                    if existing.overlay.is_none() {
                        existing.overlay = container.overlay;
                    }
                }
                None => {
                    next.insert(container.cgroup_id, container);
                }
            }
        }
        for (id, c) in &next {
            if self.by_cgroup.get(id) != Some(c) {
                changes.added.push(c.clone());
            }
        }
        for (id, c) in self.by_cgroup.drain() {
            if next.get(&id) != Some(&c) {
                changes.removed.push(c);
            }
        }
        self.by_cgroup = next;
        tracing::debug!(
            running = self.by_cgroup.len(),
            added = changes.added.len(),
            removed = changes.removed.len(),
            problems = changes.problems.len(),
            "rescanned the runtimes' state directories"
        );
        changes
    }

    /// The container of `cgroup_id`; when none is known, the state directories are read
    /// again first (at most once per `min_interval`), so that a container started since the
    /// last scan is found at its first event. The changes of that rescan, if one ran, are
    /// returned too (new containers need profiles).
    pub fn resolve(
        &mut self,
        cgroup_id: u64,
        sources: &Sources,
        min_interval: Duration,
    ) -> (Option<&Container>, Option<Changes>) {
        let mut changes = None;
        if !self.by_cgroup.contains_key(&cgroup_id)
            && self.scanned.is_none_or(|t| t.elapsed() >= min_interval)
        {
            changes = Some(self.rescan(sources));
        }
        (self.by_cgroup.get(&cgroup_id), changes)
    }

    /// The container whose cgroup has this id.
    pub fn by_cgroup(&self, cgroup_id: u64) -> Option<&Container> {
        self.by_cgroup.get(&cgroup_id)
    }

    /// The container with this id (and runtime, when given).
    pub fn by_id(&self, id: &str, runtime: Option<RuntimeKind>) -> Option<&Container> {
        self.by_cgroup
            .values()
            .find(|c| c.id == id && runtime.is_none_or(|r| r == c.runtime))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Container> {
        self.by_cgroup.values()
    }

    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cgroup.is_empty()
    }
}

fn read_bounded(path: &Path) -> Result<String, DiscoverError> {
    let f = fs::File::open(path).map_err(|source| DiscoverError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut s = String::new();
    f.take(MAX_STATE_BYTES + 1)
        .read_to_string(&mut s)
        .map_err(|source| DiscoverError::Read {
            path: path.to_owned(),
            source,
        })?;
    if s.len() as u64 > MAX_STATE_BYTES {
        return Err(DiscoverError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(s)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DiscoverError> {
    let s = read_bounded(path)?;
    serde_json::from_str(&s).map_err(|source| DiscoverError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The subdirectories of `dir` (sorted); none when it does not exist.
fn subdirs(dir: &Path, problems: &mut Vec<DiscoverError>) -> Vec<(String, PathBuf)> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(source) => {
            problems.push(DiscoverError::Read {
                path: dir.to_owned(),
                source,
            });
            return Vec::new();
        }
    };
    let mut out: Vec<(String, PathBuf)> = rd
        .filter_map(Result::ok)
        // a symlinked directory counts (a namespace directory may be one)
        .filter(|e| fs::metadata(e.path()).is_ok_and(|m| m.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

#[derive(Deserialize)]
struct RuncState {
    id: String,
    init_process_pid: u32,
    #[serde(default)]
    init_process_start: Option<u64>,
    #[serde(default)]
    config: RuncConfig,
}

#[derive(Deserialize, Default)]
struct RuncConfig {
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct CrunStatus {
    pid: u32,
    #[serde(rename = "process-start-time", default)]
    process_start_time: Option<u64>,
    #[serde(default)]
    bundle: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BerthRuntimeState {
    id: String,
    pid: u32,
    #[serde(default)]
    bundle: Option<PathBuf>,
    #[serde(default)]
    init_start_time: Option<u64>,
}

#[derive(Deserialize)]
struct EngineRecord {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    bundle: Option<PathBuf>,
    status: String,
    #[serde(default)]
    init_pid: Option<i64>,
    #[serde(default)]
    init_start: Option<u64>,
    #[serde(default)]
    sbom: Option<SbomSource>,
}

/// One container of a runtime root, in whichever runtime's format its state is: runc's and
/// berth-runtime's `state.json`, crun's `status`.
fn read_runtime_state(path: &Path, name: &str) -> Result<Option<Found>, DiscoverError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum AnyState {
        Runc(RuncState),
        BerthRuntime(BerthRuntimeState),
    }
    let state = path.join("state.json");
    if !state.exists() && path.join("status").exists() {
        return read_json::<CrunStatus>(&path.join("status")).map(|s| {
            Some(Found {
                id: name.to_owned(),
                runtime: RuntimeKind::Crun,
                namespace: None,
                bundle: s.bundle,
                pid: s.pid,
                start_time: s.process_start_time,
                name: String::new(),
                image: String::new(),
                sbom: None,
            })
        });
    }
    let found = match read_json::<AnyState>(&state)? {
        AnyState::Runc(s) => Found {
            bundle: s
                .config
                .labels
                .iter()
                .find_map(|l| l.strip_prefix("bundle="))
                .map(PathBuf::from),
            id: s.id,
            runtime: RuntimeKind::Runc,
            namespace: None,
            pid: s.init_process_pid,
            start_time: s.init_process_start,
            name: String::new(),
            image: String::new(),
            sbom: None,
        },
        AnyState::BerthRuntime(s) => Found {
            id: s.id,
            runtime: RuntimeKind::BerthRuntime,
            namespace: None,
            bundle: s.bundle,
            pid: s.pid,
            start_time: s.init_start_time,
            name: String::new(),
            image: String::new(),
            sbom: None,
        },
    };
    Ok(Some(found))
}

fn list_state_dir(dir: &StateDir, found: &mut Vec<Found>, problems: &mut Vec<DiscoverError>) {
    if dir.namespaced {
        for (ns, path) in subdirs(&dir.path, problems) {
            let inner = StateDir {
                runtime: dir.runtime,
                path,
                namespaced: false,
            };
            let at = found.len();
            list_state_dir(&inner, found, problems);
            for f in &mut found[at..] {
                f.namespace = Some(ns.clone());
            }
        }
        return;
    }
    let containers = match dir.runtime {
        RuntimeKind::Berth => dir.path.join("containers"),
        _ => dir.path.clone(),
    };
    for (name, path) in subdirs(&containers, problems) {
        let read = match dir.runtime {
            // An engine gives any runc-compatible runtime the root it would give runc
            // (containerd's shim: /run/containerd/runc/<ns>, whatever `--runc-binary`), so a
            // runtime root is read by the format found in it, not by whose root it is.
            RuntimeKind::Runc | RuntimeKind::Crun | RuntimeKind::BerthRuntime => {
                read_runtime_state(&path, &name)
            }
            RuntimeKind::Berth => {
                read_json::<EngineRecord>(&path.join("container.json")).map(|r| {
                    let pid = r.init_pid.and_then(|p| u32::try_from(p).ok());
                    match pid {
                        Some(pid) if matches!(r.status.as_str(), "running" | "created") => {
                            Some(Found {
                                id: r.id,
                                runtime: RuntimeKind::Berth,
                                namespace: None,
                                bundle: r.bundle,
                                pid,
                                start_time: r.init_start,
                                name: r.name,
                                image: r.image,
                                sbom: r.sbom.map(|s| SbomSource {
                                    path: path.join("sbom.json"),
                                    ..s
                                }),
                            })
                        }
                        _ => None,
                    }
                })
            }
        };
        match read {
            Ok(Some(f)) if f.pid > 0 => found.push(f),
            Ok(_) => {}
            // deleted between the listing and the read
            Err(DiscoverError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            }
            Err(e) => problems.push(e),
        }
    }
}

/// Field 22 of `/proc/PID/stat` (the start time in clock ticks since boot), or `None` when
/// the process does not exist or has exited (a zombie not yet reaped: a killed container's
/// init whose parent, the runtime, is gone).
fn start_time(proc: &Path, pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    // the command name (field 2) may hold spaces and parentheses: count after the last ')'
    let mut rest = stat[stat.rfind(')')? + 1..].split_ascii_whitespace();
    let state = rest.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

fn describe(sources: &Sources, f: Found, start: u64) -> Result<Container, DiscoverError> {
    let pid_dir = sources.proc.join(f.pid.to_string());
    let cgroup_file = pid_dir.join("cgroup");
    let cgroup_path = parse_cgroup2_path(&read_bounded(&cgroup_file)?).ok_or_else(|| {
        DiscoverError::NoCgroupEntry {
            id: f.id.clone(),
            pid: f.pid,
            path: cgroup_file.clone(),
        }
    })?;
    let dir = sources.cgroup2.join(cgroup_path.trim_start_matches('/'));
    let cgroup_id = fs::metadata(&dir)
        .map_err(|source| DiscoverError::Read {
            path: dir.clone(),
            source,
        })?
        .ino();
    let overlay = read_bounded(&pid_dir.join("mountinfo"))
        .ok()
        .and_then(|m| root_overlay(&m));
    let mnt_ns = fs::metadata(pid_dir.join("ns/mnt")).ok().map(|m| m.ino());
    let pid_ns_level = read_bounded(&pid_dir.join("status"))
        .ok()
        .and_then(|s| pid_ns_level(&s));
    let (mut name, mut image) = (f.name, f.image);
    let mut declared_ports = None;
    if let Some(b) = f.bundle.as_ref() {
        let annotations = bundle_annotations(&b.join("config.json"));
        if name.is_empty() {
            name = annotation(&annotations, NAME_ANNOTATIONS);
        }
        if image.is_empty() {
            image = annotation(&annotations, IMAGE_ANNOTATIONS);
        }
        declared_ports = annotations
            .get(EXPOSED_PORTS_ANNOTATION)
            .map(|v| exposed_ports(&f.id, v));
    }
    Ok(Container {
        id: f.id,
        name,
        runtime: f.runtime,
        namespace: f.namespace,
        image,
        bundle: f.bundle,
        pid: f.pid,
        start_time: start,
        cgroup_path,
        cgroup_id,
        overlay,
        mnt_ns,
        pid_ns_level,
        sbom: f.sbom,
        declared_ports,
    })
}

/// image-spec "conversion.md": the image config's `ExposedPorts` keys, comma-separated.
const EXPOSED_PORTS_ANNOTATION: &str = "org.opencontainers.image.exposedPorts";

/// The ports of an `org.opencontainers.image.exposedPorts` value (`"8080/tcp,53/udp"`; `""`:
/// none); one that is no port is logged and left out.
fn exposed_ports(id: &str, value: &str) -> Vec<crate::profile::Port> {
    let mut ports: Vec<_> = value
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .filter_map(|k| {
            crate::profile::parse_port(k)
                .map_err(|e| tracing::warn!(container_id = id, port = k, error = %e, "an exposed port of the container's image is not a port; left out"))
                .ok()
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// Annotations naming a container: CRI (containerd, CRI-O), nerdctl, podman.
const NAME_ANNOTATIONS: &[&str] = &[
    "io.kubernetes.cri.container-name",
    "io.kubernetes.container.name",
    "nerdctl/name",
    "io.podman.annotations.name",
];
/// Annotations naming a container's image.
const IMAGE_ANNOTATIONS: &[&str] = &[
    "io.kubernetes.cri.image-name",
    "io.kubernetes.container.image",
    "org.opencontainers.image.ref.name",
    "org.opencontainers.image.base.name",
];

#[derive(Deserialize, Default)]
struct BundleConfig {
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn bundle_annotations(path: &Path) -> BTreeMap<String, String> {
    read_json::<BundleConfig>(path)
        .map(|c| c.annotations)
        .unwrap_or_default()
}

fn annotation(a: &BTreeMap<String, String>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| a.get(*k).filter(|v| !v.is_empty()))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_counts_fields_after_the_command_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("7");
        std::fs::create_dir(&p).unwrap();
        // a command name with spaces and a ')' in it
        let stat = "7 (a) b c) S 1 7 7 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 4242 1000 100";
        berth_test_write(&p.join("stat"), stat);
        assert_eq!(start_time(dir.path(), 7), Some(4242));
        assert_eq!(start_time(dir.path(), 8), None);
        berth_test_write(&p.join("stat"), &stat.replace(" S ", " Z "));
        assert_eq!(start_time(dir.path(), 7), None, "a zombie is not running");
    }

    #[test]
    fn a_runtime_root_is_read_by_the_format_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runc-root");
        for (id, file, text) in [
            (
                "r",
                "state.json",
                r#"{"id":"r","init_process_pid":11,"init_process_start":5,"config":{"labels":["bundle=/b/r"]}}"#,
            ),
            (
                "b",
                "state.json",
                r#"{"ociVersion":"1.2.0","id":"b","status":"running","pid":12,"bundle":"/b/b","initStartTime":6}"#,
            ),
            (
                "c",
                "status",
                r#"{"pid":13,"process-start-time":7,"bundle":"/b/c"}"#,
            ),
        ] {
            std::fs::create_dir_all(root.join(id)).unwrap();
            berth_test_write(&root.join(id).join(file), text);
        }
        let mut found = Vec::new();
        let mut problems = Vec::new();
        // containerd's shim gives berth-runtime (or crun) runc's root
        let d = StateDir {
            runtime: RuntimeKind::Runc,
            path: root,
            namespaced: false,
        };
        list_state_dir(&d, &mut found, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(&str, RuntimeKind, u32, Option<u64>)> = found
            .iter()
            .map(|f| (f.id.as_str(), f.runtime, f.pid, f.start_time))
            .collect();
        assert_eq!(
            got,
            [
                ("b", RuntimeKind::BerthRuntime, 12, Some(6)),
                ("c", RuntimeKind::Crun, 13, Some(7)),
                ("r", RuntimeKind::Runc, 11, Some(5)),
            ]
        );
    }

    #[expect(clippy::disallowed_methods, reason = "a test fixture")]
    fn berth_test_write(p: &Path, s: &str) {
        std::fs::write(p, s).unwrap();
    }
}
