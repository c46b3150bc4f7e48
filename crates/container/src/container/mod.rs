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
use crate::threads::{SingleThreaded, ThreadsError};

pub use create::CreateOptions;
pub use exec::{ExecOptions, ExecProcess};
pub use ops::{remove_leftover, remove_unreadable};
pub use wait::{ForegroundOptions, catch_signals, host_console, wait_foreground};

/// What failed, on which container. [`ContainerError::kind`] classifies it.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container id format: {id:?}")]
    InvalidId { id: String },
    #[error("container with id {id} already exists")]
    AlreadyExists { id: String },
    #[error("container {id} does not exist")]
    NotFound { id: String },
    /// The operation needs another status (e.g. `start` of a running container).
    #[error("cannot {op} container {id}: it is {status}")]
    InvalidState {
        id: String,
        op: &'static str,
        status: Status,
    },
    /// `kill` of a stopped container. The text carries runc's "container not running":
    /// containerd's runc shim matches it to treat the process as already gone (any other
    /// text fails a CRI `StopContainer`, which then retries until its deadline).
    #[error("cannot {op} container {id}: container not running")]
    NotRunning { id: String, op: &'static str },
    /// `delete` without force of a container that is still running or paused.
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    /// `start` found the init gone before it read the exec fifo.
    #[error("container {id} init exited before start")]
    ExitedBeforeStart { id: String },
    /// `delete` killed the init and it is still alive after the deadline.
    #[error("container {id} init (pid {pid}) did not exit after SIGKILL")]
    InitSurvivedKill { id: String, pid: i32 },
    /// pause, resume, update and stats of a (rootless) container that runs without one.
    #[error("container {id} has no cgroup")]
    NoCgroup { id: String },
    #[error("failed to load bundle {bundle}")]
    Bundle {
        bundle: PathBuf,
        #[source]
        source: SpecError,
    },
    /// A section `create` needs is absent from `config.json`.
    #[error("config.json has no {section}")]
    MissingConfig { section: &'static str },
    /// `exec` of a process without arguments.
    #[error("exec: process args must not be empty")]
    EmptyArgs,
    #[error("cannot allocate tty if berth-runtime will detach without setting console socket")]
    TerminalWithoutConsoleSocket,
    #[error("cannot use console socket if berth-runtime will not detach or allocate tty")]
    ConsoleSocketWithoutTerminal,
    /// A foreground terminal was asked for, and this process has none to connect it to.
    #[error(
        "cannot allocate a terminal for {what} in the foreground: none of stdin, stdout and \
         stderr is a terminal and there is no controlling terminal (/dev/tty); hint: run it \
         from a terminal, or pass --detach with --console-socket, or {alternative}"
    )]
    NoHostTerminal {
        /// "the container" or "the process".
        what: &'static str,
        alternative: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `--preserve-fds` (or LISTEN_FDS) names a descriptor this process does not have.
    #[error("unable to stat preserved-fd {index} (of {count}): not open")]
    PreservedFdNotOpen { index: i32, count: i32 },
    #[error("invalid signal {signal}")]
    InvalidSignal { signal: i32 },
    /// An AppArmor profile or SELinux label this host cannot apply.
    #[error("{message}")]
    Lsm { message: String },
    /// `--root` or the container's directory in it cannot be made.
    #[error("failed to create {what} {path}{hint}")]
    StateDir {
        /// "the state root" or "the container directory".
        what: &'static str,
        path: PathBuf,
        /// For a user who cannot write `--root`: what to pass instead (else empty).
        hint: String,
        #[source]
        source: std::io::Error,
    },
    /// A file operation of the runtime on `path` (the exec fifo, the state directory, ...).
    #[error("failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write pid file {path}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to send the terminal to console socket {path}")]
    ConsoleSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to send signal {signal} to container {id}")]
    Signal {
        id: String,
        signal: i32,
        #[source]
        source: std::io::Error,
    },
    /// Starting the container's first process: the sync socket, the fork.
    #[error("failed to {step}")]
    Spawn {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The calling process cannot prove it is single-threaded, so it must not fork.
    #[error(transparent)]
    Threads(#[from] ThreadsError),
    /// Writing the user namespace's id mappings of the container's first process.
    #[error("{message}")]
    IdMappings {
        message: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// The container process (stage 1, init or exec) reported a failure during setup; the
    /// errno, when a system call failed, is the source.
    #[error("{message}")]
    ChildFailed {
        message: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// The container process broke the setup protocol (exited, or sent the wrong message).
    #[error("the {process} {problem}")]
    ChildProtocol {
        /// "container init" or "exec process".
        process: &'static str,
        problem: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
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
    #[error(transparent)]
    Ipc(#[from] IpcError),
    #[error(transparent)]
    Hook(#[from] HookError),
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

/// The class of a [`ContainerError`], shared by berth's libraries (containerd's `errdefs`),
/// for a caller that decides on it (an exit code, a message, a retry) rather than on the
/// variant.
pub use berth_errdefs::ErrorKind;

fn io_kind(e: &std::io::Error) -> ErrorKind {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        ErrorKind::Denied
    } else {
        ErrorKind::Internal
    }
}

impl ContainerError {
    pub fn kind(&self) -> ErrorKind {
        use ContainerError as E;
        match self {
            E::NotFound { .. } => ErrorKind::NotFound,
            E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            E::InvalidId { .. }
            | E::Bundle { .. }
            | E::MissingConfig { .. }
            | E::EmptyArgs
            | E::TerminalWithoutConsoleSocket
            | E::ConsoleSocketWithoutTerminal
            | E::NoHostTerminal { .. }
            | E::PreservedFdNotOpen { .. }
            | E::InvalidSignal { .. }
            | E::Seccomp { .. }
            | E::Rootless(_) => ErrorKind::InvalidInput,
            E::InvalidState { .. }
            | E::NotRunning { .. }
            | E::NotStopped { .. }
            | E::ExitedBeforeStart { .. }
            | E::NoCgroup { .. } => ErrorKind::Conflict,
            E::Lsm { .. } => ErrorKind::Denied,
            E::Threads(_) => ErrorKind::Unavailable,
            E::StateDir { source, .. }
            | E::Io { source, .. }
            | E::ConsoleSocket { source, .. }
            | E::Signal { source, .. }
            | E::Spawn { source, .. } => io_kind(source),
            E::IdMappings { source, .. } | E::ChildFailed { source, .. } => {
                source.as_ref().map_or(ErrorKind::Internal, io_kind)
            }
            E::PidFile { .. }
            | E::InitSurvivedKill { .. }
            | E::ChildProtocol { .. }
            | E::State(_)
            | E::Cgroup { .. }
            | E::Ipc(_)
            | E::Hook(_)
            | E::HostMounts { .. } => ErrorKind::Internal,
        }
    }
}

impl From<crate::rootless::RootlessError> for ContainerError {
    fn from(e: crate::rootless::RootlessError) -> Self {
        ContainerError::Rootless(Box::new(e))
    }
}

impl From<Failure> for ContainerError {
    fn from(f: Failure) -> Self {
        ContainerError::ChildFailed {
            source: f.os_error(),
            message: f.what,
        }
    }
}

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.into();
    move |source| ContainerError::Io { op, path, source }
}

/// Names of the two kinds of container process in [`ContainerError::ChildProtocol`].
pub(crate) const INIT: &str = "container init";
pub(crate) const EXEC: &str = "exec process";

/// The container process `process` sent `msg` where the protocol wants another.
pub(crate) fn unexpected(process: &'static str, msg: &crate::init::ChildMsg) -> ContainerError {
    ContainerError::ChildProtocol {
        process,
        problem: format!("sent an unexpected message: {msg:?}"),
    }
}

fn spawn_err(step: &'static str) -> impl FnOnce(std::io::Error) -> ContainerError {
    move |source| ContainerError::Spawn { step, source }
}

/// Fork stage 1 of a container process (create's init or an exec'd process) with `cfg`,
/// over a fresh sync channel whose child end sits above the `keep_fds` descriptors the
/// process keeps. Returns the parent's end and stage 1's pid. This process becomes a child
/// subreaper first, so the init stage 1 forks is reaped here if stage 1 dies early.
///
/// `proof` says the caller was single-threaded when it took it; checked again here, right
/// before the fork, in case a thread was started since.
pub(crate) fn spawn_stage1(
    cfg: &crate::init::ChildConfig<'_>,
    keep_fds: i32,
    proof: SingleThreaded,
) -> Result<(crate::ipc::Channel, i32), ContainerError> {
    let _ = proof;
    let proof = SingleThreaded::check()?;
    let (parent, child) = crate::ipc::pair()?;
    let child = child
        .move_above(keep_fds.max(10))
        .map_err(spawn_err("move the sync socket above the kept descriptors"))?;
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let stage1 = match crate::sys::fork(proof).map_err(spawn_err("fork the container process"))? {
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
        Err(source) => return Err(io_err("read the state root", root)(source)),
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
