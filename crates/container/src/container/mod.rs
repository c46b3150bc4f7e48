//! A container: create (fork the init, sync with it over the channel, hooks, state), and
//! the commands on an existing one (start, kill, delete, pause, resume, exec, update).

mod create;
mod exec;
mod ops;
mod wait;

use std::path::{Path, PathBuf};

use crate::cgroups::CgroupError;
use crate::hooks::HookError;
use crate::ipc::{Failure, IpcError};
use crate::seccomp::SeccompError;
use crate::spec::SpecError;
use crate::state::{State, StateError, Status};

pub use create::CreateOptions;
pub use exec::{ExecOptions, ExecProcess};
pub use ops::{remove_leftover, remove_unreadable};
pub use wait::{ForegroundOptions, catch_signals, host_console, wait_foreground};

/// What failed, on which container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container id format: {id:?}")]
    InvalidId { id: String },
    #[error("container with id {id} already exists")]
    Exists { id: String },
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("cannot {op} container {id}: it is {status}")]
    WrongStatus {
        id: String,
        op: &'static str,
        status: Status,
    },
    #[error("failed to load bundle {bundle}")]
    Bundle {
        bundle: PathBuf,
        #[source]
        source: SpecError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup of container {id}")]
    Cgroup {
        id: String,
        #[source]
        source: CgroupError,
    },
    #[error("seccomp profile of container {id}")]
    Seccomp {
        id: String,
        #[source]
        source: SeccompError,
    },
    #[error("{what}")]
    Init {
        what: String,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error(transparent)]
    Ipc(#[from] IpcError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("{what}")]
    Config { what: String },
    #[error("mounts of container {id} in the runtime's mount namespace")]
    HostMounts {
        id: String,
        #[source]
        source: crate::hostmounts::HostMountError,
    },
    /// Boxed: it is the largest variant and rare.
    #[error(transparent)]
    Rootless(Box<crate::rootless::RootlessError>),
}

impl From<crate::rootless::RootlessError> for ContainerError {
    fn from(e: crate::rootless::RootlessError) -> Self {
        ContainerError::Rootless(Box::new(e))
    }
}

impl From<Failure> for ContainerError {
    fn from(f: Failure) -> Self {
        ContainerError::Init {
            source: f.os_error(),
            what: f.what,
        }
    }
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

/// Fork stage 1 of a container process (create's init or an exec'd process) with `cfg`,
/// over a fresh sync channel whose child end sits above the `keep_fds` descriptors the
/// process keeps. Returns the parent's end and stage 1's pid. This process becomes a child
/// subreaper first, so the init stage 1 forks is reaped here if stage 1 dies early.
pub(crate) fn spawn_stage1(
    cfg: &crate::init::ChildConfig<'_>,
    keep_fds: i32,
) -> Result<(crate::ipc::Channel, i32), ContainerError> {
    let (parent, child) = crate::ipc::pair()?;
    let child = child
        .move_above(keep_fds.max(10))
        .map_err(io_err("failed to move the sync socket"))?;
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let stage1 = match crate::sys::fork().map_err(io_err("failed to fork"))? {
        crate::sys::Fork::Child => crate::init::stage1(cfg, &child),
        crate::sys::Fork::Parent(pid) => pid,
    };
    drop(child);
    Ok((parent, stage1))
}

/// A container recorded under `--root`.
#[derive(Debug, Clone)]
pub struct Container {
    root: PathBuf,
    pub state: State,
    /// What `create` went on despite (e.g. ambient capabilities the kernel will not raise),
    /// one line each, for the caller to log; not recorded (empty once loaded).
    pub warnings: Vec<String>,
}

impl Container {
    /// Load the container `id` from `root`.
    pub fn load(root: &Path, id: &str) -> Result<Container, ContainerError> {
        if !crate::id::is_valid_id(id) {
            return Err(ContainerError::InvalidId { id: id.to_owned() });
        }
        match State::load(root, id) {
            Ok(state) => Ok(Container {
                root: root.to_owned(),
                state,
                warnings: Vec::new(),
            }),
            Err(StateError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(ContainerError::NotFound { id: id.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self) -> PathBuf {
        crate::paths::container_dir(&self.root, &self.state.id)
    }

    /// The live status: derived from the init process, the exec fifo and the cgroup
    /// freezer, as runc does (a container frozen or thawed behind the runtime's back shows
    /// as such).
    pub fn status(&self) -> Status {
        let s = &self.state;
        if s.pid <= 0 {
            return if s.status == Status::Creating {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !crate::state::process_alive(s.pid, s.init_start_time) {
            return Status::Stopped;
        }
        if s.status == Status::Creating {
            return Status::Creating;
        }
        if crate::paths::exec_fifo(&self.root, &s.id).exists() {
            return Status::Created;
        }
        status_of_running(s.paused, self.freezer_state())
    }

    /// The cgroup freezer's state, when the container has a cgroup and it can be read.
    fn freezer_state(&self) -> Option<crate::cgroups::FreezerState> {
        self.cgroup().ok().flatten()?.freezer_state().ok()
    }

    /// What `runc state` prints (indented JSON).
    pub fn state_json(&self) -> serde_json::Value {
        let status = self.status();
        let s = &self.state;
        let mut v = serde_json::json!({
            "ociVersion": s.oci_version,
            "id": s.id,
            "pid": if status == Status::Stopped { 0 } else { s.pid },
            "status": status,
            "bundle": s.bundle,
            "rootfs": s.rootfs,
            "created": s.created,
        });
        if !s.annotations.is_empty() {
            v["annotations"] = serde_json::json!(s.annotations);
        }
        v["owner"] = "".into();
        v
    }

    pub(crate) fn cgroup(
        &self,
    ) -> Result<Option<Box<dyn crate::cgroups::CgroupManager>>, ContainerError> {
        match &self.state.cgroup {
            Some(st) => {
                crate::cgroups::from_state(st)
                    .map(Some)
                    .map_err(|source| ContainerError::Cgroup {
                        id: self.state.id.clone(),
                        source,
                    })
            }
            None => Ok(None),
        }
    }
}

/// The status of a started container whose init lives: paused when its cgroup is frozen,
/// running when thawed; the runtime's own record (`recorded_paused`) only when the freezer
/// cannot be read.
fn status_of_running(
    recorded_paused: bool,
    freezer: Option<crate::cgroups::FreezerState>,
) -> Status {
    match freezer {
        Some(crate::cgroups::FreezerState::Frozen) => Status::Paused,
        Some(crate::cgroups::FreezerState::Thawed) => Status::Running,
        None if recorded_paused => Status::Paused,
        None => Status::Running,
    }
}

/// One entry of [`list`]: a container, or the id that failed to load and why.
pub type ListEntry = Result<Container, (String, ContainerError)>;

/// Every container under `root` (entries that fail to load are skipped, as runc does after
/// printing a warning; the caller gets them as errors).
pub fn list(root: &Path) -> Result<Vec<ListEntry>, ContainerError> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ContainerError::Io {
                what: format!("failed to read {}", root.display()),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        // not a container id: the runtime's own files (e.g. "@exe-lower")
        .filter(|n| crate::id::is_valid_id(n))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| Container::load(root, &n).map_err(|e| (n, e)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::FreezerState;

    #[test]
    fn the_freezer_decides_between_paused_and_running() {
        assert_eq!(
            status_of_running(false, Some(FreezerState::Frozen)),
            Status::Paused
        );
        assert_eq!(
            status_of_running(true, Some(FreezerState::Thawed)),
            Status::Running
        );
        assert_eq!(
            status_of_running(true, Some(FreezerState::Frozen)),
            Status::Paused
        );
        assert_eq!(
            status_of_running(false, Some(FreezerState::Thawed)),
            Status::Running
        );
        assert_eq!(status_of_running(true, None), Status::Paused);
        assert_eq!(status_of_running(false, None), Status::Running);
    }
}
