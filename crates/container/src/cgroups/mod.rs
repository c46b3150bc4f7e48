//! cgroups v1 and v2 behind one `CgroupManager` trait.
//!
//! STAND-IN: a minimal implementation of the agreed contract so that the runtime core can
//! be built and tested; it is replaced wholesale by the real module (one file per
//! controller). `apply` = mkdir + write `cgroup.procs`, `destroy` = rmdir, `pids` and
//! `freeze` read/write the obvious files; resource limits, stats and OOM counts answer
//! "not yet supported".

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_oci::oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupMode {
    /// v1 controllers only.
    Legacy,
    /// v1 controllers plus an (empty) v2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
    /// v2 only.
    Unified,
}

/// What failed, on which cgroup file.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("failed to detect the cgroup mode of /sys/fs/cgroup")]
    Detect {
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {value} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not yet supported by the cgroup stand-in")]
    Unsupported { what: &'static str },
}

/// Where the container's cgroup is and how it is managed.
#[derive(Debug, Clone)]
pub struct CgroupSpec {
    /// `linux.cgroupsPath` as given; may be empty.
    pub path: String,
    /// `--systemd-cgroup`.
    pub systemd: bool,
    pub container_id: String,
}

/// Enough to find the cgroup again from a later command.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CgroupState {
    mode: CgroupMode,
    /// v1: (hierarchy dir name, host path of the container's cgroup); v2: one ("", path).
    paths: Vec<(String, PathBuf)>,
}

/// Frozen or thawed (pause/resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Frozen,
    Thawed,
}

/// Usage statistics in the shape of runc's `events --stats` "data".
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {}

/// The host cgroup directories to show in the container's /sys/fs/cgroup.
#[derive(Debug, Clone)]
pub enum CgroupMounts {
    /// (hierarchy dir name like "cpu,cpuacct", host path of the container's cgroup).
    V1(Vec<(String, PathBuf)>),
    /// The host path of the container's cgroup.
    V2(PathBuf),
}

/// One container's cgroup. Lifecycle: `manager` resolves paths (creates nothing), `apply`
/// creates the cgroup and moves a pid in, `set`/`freeze`/`pids`/`stats` while it lives,
/// `destroy` (idempotent) removes it once no process is left.
pub trait CgroupManager: std::fmt::Debug {
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError>;
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    fn stats(&self) -> Result<Stats, CgroupError>;
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;
    fn destroy(&self) -> Result<(), CgroupError>;
    fn state(&self) -> CgroupState;
    fn mounts(&self) -> CgroupMounts;
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

fn is_cgroup2(path: &Path) -> Result<bool, std::io::Error> {
    let st = rustix::fs::statfs(path)?;
    Ok(st.f_type == CGROUP2_SUPER_MAGIC)
}

/// Detect how /sys/fs/cgroup is laid out.
pub fn detect_mode() -> Result<CgroupMode, CgroupError> {
    let root = Path::new("/sys/fs/cgroup");
    if is_cgroup2(root).map_err(|source| CgroupError::Detect { source })? {
        return Ok(CgroupMode::Unified);
    }
    match is_cgroup2(&root.join("unified")) {
        Ok(true) => Ok(CgroupMode::Hybrid),
        _ => Ok(CgroupMode::Legacy),
    }
}

/// v1 hierarchies mounted under /sys/fs/cgroup: (dir name, mount point).
fn v1_hierarchies() -> Result<Vec<(String, PathBuf)>, CgroupError> {
    let path = PathBuf::from("/proc/self/mountinfo");
    let info = std::fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if !right.starts_with("cgroup ") {
            continue;
        }
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(mp);
        if let Some(name) = mp.file_name() {
            out.push((name.to_string_lossy().into_owned(), mp.clone()));
        }
    }
    Ok(out)
}

fn relative(spec: &CgroupSpec) -> String {
    let p = spec.path.trim_start_matches('/');
    if p.is_empty() {
        format!("berth-runtime/{}", spec.container_id)
    } else {
        p.to_owned()
    }
}

/// Resolve the container's cgroup (creates nothing).
pub fn manager(spec: &CgroupSpec) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let rel = relative(spec);
    let mode = detect_mode()?;
    let paths = match mode {
        CgroupMode::Unified => vec![(String::new(), Path::new("/sys/fs/cgroup").join(&rel))],
        CgroupMode::Legacy | CgroupMode::Hybrid => v1_hierarchies()?
            .into_iter()
            .map(|(name, mp)| (name, mp.join(&rel)))
            .collect(),
    };
    Ok(Box::new(StandIn {
        state: CgroupState { mode, paths },
    }))
}

/// The manager of a cgroup recorded by an earlier command.
pub fn from_state(state: &CgroupState) -> Result<Box<dyn CgroupManager>, CgroupError> {
    Ok(Box::new(StandIn {
        state: state.clone(),
    }))
}

#[derive(Debug)]
struct StandIn {
    state: CgroupState,
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

impl StandIn {
    fn procs_dir(&self) -> Option<&Path> {
        let pick = |n: &str| self.state.paths.iter().find(|(name, _)| name == n);
        pick("")
            .or_else(|| pick("pids"))
            .or_else(|| pick("memory"))
            .or_else(|| self.state.paths.first())
            .map(|(_, p)| p.as_path())
    }
}

impl CgroupManager for StandIn {
    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        for (_, path) in &self.state.paths {
            std::fs::create_dir_all(path).map_err(|source| CgroupError::Create {
                path: path.clone(),
                source,
            })?;
            // v1 cpuset: a new cgroup starts with no cpus/mems; inherit down from the root
            let chain: Vec<&Path> = path.ancestors().collect();
            for dir in chain.into_iter().rev() {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let file = dir.join(f);
                    if let (Ok(cur), Some(parent)) = (std::fs::read_to_string(&file), dir.parent())
                        && cur.trim().is_empty()
                        && let Ok(v) = std::fs::read_to_string(parent.join(f))
                    {
                        write_file(&file, v.trim())?;
                    }
                }
            }
            write_file(&path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn set(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let only_devices = resources.memory().is_none()
            && resources.cpu().is_none()
            && resources.pids().is_none()
            && resources.block_io().is_none()
            && resources
                .hugepage_limits()
                .as_ref()
                .is_none_or(|h| h.is_empty())
            && resources.network().is_none()
            && resources.unified().as_ref().is_none_or(|u| u.is_empty());
        if only_devices {
            Ok(())
        } else {
            Err(CgroupError::Unsupported {
                what: "setting resource limits",
            })
        }
    }

    fn freeze(&self, state: FreezerState) -> Result<(), CgroupError> {
        let value = match state {
            FreezerState::Frozen => "FROZEN",
            FreezerState::Thawed => "THAWED",
        };
        match self.state.paths.iter().find(|(n, _)| n == "freezer") {
            Some((_, p)) => write_file(&p.join("freezer.state"), value),
            None => match self.state.paths.iter().find(|(n, _)| n.is_empty()) {
                Some((_, p)) => write_file(
                    &p.join("cgroup.freeze"),
                    if state == FreezerState::Frozen {
                        "1"
                    } else {
                        "0"
                    },
                ),
                None => Err(CgroupError::Unsupported { what: "freezer" }),
            },
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let path = dir.join("cgroup.procs");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CgroupError::Read { path, source }),
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        Err(CgroupError::Unsupported { what: "stats" })
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Err(CgroupError::Unsupported {
            what: "oom kill counts",
        })
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        for (_, path) in &self.state.paths {
            match std::fs::remove_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CgroupError::Remove {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    fn state(&self) -> CgroupState {
        self.state.clone()
    }

    fn mounts(&self) -> CgroupMounts {
        match self.state.mode {
            CgroupMode::Unified => CgroupMounts::V2(
                self.state
                    .paths
                    .first()
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default(),
            ),
            _ => CgroupMounts::V1(self.state.paths.clone()),
        }
    }
}
