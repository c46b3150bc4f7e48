//! `create`: everything up to an init blocked on the exec fifo. Any failure tears down
//! what was made (the init, the cgroup, the state directory) before returning.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_runtime_spec::LinuxNamespaceType;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::process::{Pid, WaitOptions};

use super::{Container, ContainerError, INIT, io_err, unexpected};
use crate::cgroups::{self, CgroupManager, CgroupSpec};
use crate::hostmounts::{self, HostMount};
use crate::init::{ChildConfig, ChildMsg, ParentMsg};
use crate::ipc::{self, Channel};
use crate::namespaces::{self, Plan};
use crate::rootfs::RootfsPlan;
use crate::state::{Lock, State, Status};
use crate::sys::{self};
use crate::threads::SingleThreaded;
use crate::{hooks, paths, process, rootless, seccomp, spec, tty};
use berth_runtime_spec::timefmt;

/// Options of `create` (and the create half of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--root`.
    pub root: PathBuf,
    pub id: String,
    /// `--bundle` (the current directory when empty).
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `--preserve-fds`: descriptors after stdio and LISTEN_FDS passed to the container.
    pub preserve_fds: u32,
    /// Descriptors 3.. received through systemd socket activation (LISTEN_FDS).
    pub listen_fds: u32,
    pub systemd_cgroup: bool,
    /// `--rootless` resolved: cgroup errors are tolerated.
    pub rootless: bool,
    /// Return the pty master instead of requiring `--console-socket` (`run` in the
    /// foreground with a terminal).
    pub keep_pty: bool,
}

/// Undo a half-made container on drop.
struct Teardown {
    dir: PathBuf,
    cgroup: Option<crate::cgroups::CgroupState>,
    pid: i32,
    /// Without a mount namespace: the rootfs and the mounts at or under it before the init
    /// started; whatever else is mounted there is the init's, detached on failure.
    host_mounts: Option<(PathBuf, Vec<HostMount>)>,
    armed: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.pid > 0
            && let Some(pid) = Pid::from_raw(self.pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        }
        // the init is dead (and stage 1 reaped by the caller): nothing mounts there any more
        if let Some((rootfs, before)) = &self.host_mounts
            && let Ok(made) = hostmounts::made_since(before, rootfs)
        {
            let _ = hostmounts::unmount(&made);
        }
        if let Some(cg) = self
            .cgroup
            .as_ref()
            .and_then(|st| cgroups::from_state(st).ok())
        {
            // the killed init may take a moment to leave the cgroup
            for _ in 0..100 {
                if cg.destroy().is_ok() {
                    break;
                }
                let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 2_000_000,
                });
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Container {
    /// Create the container: returns it (status `created`) and, with `keep_pty`, the
    /// terminal's master. Forks: `proof` says this process is single-threaded.
    pub fn create(
        opts: &CreateOptions,
        proof: SingleThreaded,
    ) -> Result<(Container, Option<OwnedFd>), ContainerError> {
        let id = opts.id.as_str();
        if !crate::id::is_valid_id(id) {
            return Err(ContainerError::InvalidId { id: id.to_owned() });
        }
        let bundle_dir = if opts.bundle.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            opts.bundle.clone()
        };
        let bundle = spec::load_bundle(&bundle_dir).map_err(|source| ContainerError::Bundle {
            bundle: bundle_dir.clone(),
            source,
        })?;
        let spec = &bundle.spec;
        let Some(process) = spec.process.as_ref() else {
            return Err(ContainerError::MissingConfig { section: "process" });
        };
        let Some(linux) = spec.linux.as_ref() else {
            return Err(ContainerError::MissingConfig {
                section: "linux section",
            });
        };
        let terminal = process.terminal.unwrap_or(false);
        if terminal && opts.console_socket.is_none() && !opts.keep_pty {
            return Err(ContainerError::TerminalWithoutConsoleSocket);
        }
        if terminal && opts.console_socket.is_none() && opts.keep_pty {
            // as runc: fail now rather than run a terminal nobody can see or type into
            // (a shell there waits forever)
            super::wait::host_console().map_err(|source| ContainerError::NoHostTerminal {
                what: "the container",
                alternative: "set process.terminal to false",
                source,
            })?;
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(ContainerError::ConsoleSocketWithoutTerminal);
        }
        process::check_lsm(process).map_err(|f| ContainerError::Lsm { message: f.what })?;
        let mut warnings = crate::caps::ambient_warnings(process.capabilities.as_ref());
        if !rustix::process::geteuid().is_root() {
            rootless::validate_unprivileged(spec)?;
        }
        let filter = match &linux.seccomp {
            Some(s) => Some(
                seccomp::compile(s).map_err(|source| ContainerError::Seccomp {
                    id: id.to_owned(),
                    source,
                })?,
            ),
            None => None,
        };
        let ns = Plan::of(linux);
        // a joined mount namespace gets the whole rootfs setup, pivot_root included, as in
        // runc and crun. None at all: the runtime's own (runtime-spec, runc): the rootfs is
        // set up in it, entered with chroot, and its mounts recorded to be undone (see
        // `hostmounts`); the config validation refused masked and read-only paths and a
        // rootfs propagation, which would change the host
        let own_mntns = ns.separates(LinuxNamespaceType::Mount);
        let userns = ns.separates(LinuxNamespaceType::User);

        // the state directory: from here on, everything is undone on failure
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&opts.root)
            .map_err(|source| ContainerError::StateDir {
                what: "the state root",
                path: opts.root.clone(),
                hint: not_writable_hint(&source, &opts.root),
                source,
            })?;
        let dir = paths::container_dir(&opts.root, id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ContainerError::AlreadyExists { id: id.to_owned() });
            }
            Err(source) => {
                return Err(ContainerError::StateDir {
                    what: "the container directory",
                    hint: not_writable_hint(&source, &opts.root),
                    path: dir,
                    source,
                });
            }
        }
        let mut teardown = Teardown {
            dir: dir.clone(),
            cgroup: None,
            pid: 0,
            host_mounts: None,
            armed: true,
        };
        let _lock = Lock::acquire(&dir)?;

        let cg_spec = CgroupSpec {
            path: linux
                .cgroups_path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            systemd: opts.systemd_cgroup,
            container_id: id.to_owned(),
        };
        let cg_err = |source| ContainerError::Cgroup {
            id: id.to_owned(),
            source,
        };
        let cgroup = cgroups::manager(&cg_spec).map_err(cg_err)?;
        teardown.cgroup = Some(cgroup.state());

        let mut state = State {
            layout_version: paths::STATE_VERSION,
            oci_version: spec.version.clone(),
            id: id.to_owned(),
            status: Status::Creating,
            pid: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            annotations: spec.annotations.clone().unwrap_or_default(),
            created: timefmt::rfc3339_nano(SystemTime::now()),
            init_start_time: 0,
            cgroup: Some(cgroup.state()),
            paused: false,
            rootless: opts.rootless,
            systemd_cgroup: opts.systemd_cgroup,
            owner: rustix::process::geteuid().as_raw(),
            config: spec.clone(),
            host_mounts_before: None,
            host_mounts: Vec::new(),
        };
        if !own_mntns {
            let before = hostmounts::snapshot(&bundle.rootfs).map_err(|source| {
                ContainerError::HostMounts {
                    id: id.to_owned(),
                    source,
                }
            })?;
            teardown.host_mounts = Some((bundle.rootfs.clone(), before.clone()));
            state.host_mounts_before = Some(before);
        }
        state.save(&opts.root)?;

        let keep_fds = 3 + (opts.listen_fds + opts.preserve_fds) as i32;
        for fd in 3..keep_fds {
            match sys::inherited_fd(fd) {
                Some(owned) => std::mem::forget(owned),
                None => {
                    return Err(ContainerError::PreservedFdNotOpen {
                        index: fd - 3,
                        count: keep_fds - 3,
                    });
                }
            }
        }
        let fifo = make_fifo(&opts.root, id, linux, keep_fds)?;
        let mounts = cgroup.mounts();
        if let Some(r) = &linux.resources {
            warnings.extend(cgroups::resource_warnings(r, &mounts));
        }
        let rootfs = RootfsPlan {
            spec,
            rootfs: &bundle.rootfs,
            bundle: &bundle.dir,
            no_pivot: opts.no_pivot,
            own_mntns,
            userns,
            cgroupns: ns.creates(LinuxNamespaceType::Cgroup),
            rootless: opts.rootless,
            cgroup_mounts: Some(&mounts),
        };
        let mut extra_env = Vec::new();
        if opts.listen_fds > 0 {
            extra_env.push(format!("LISTEN_FDS={}", opts.listen_fds));
            extra_env.push("LISTEN_PID=1".to_owned());
        }
        let cfg = ChildConfig {
            id,
            spec,
            process,
            rootfs: Some(rootfs),
            ns: &ns,
            fifo: Some(fifo.as_fd()),
            exec_root: None,
            keep_fds,
            extra_env,
            no_new_keyring: opts.no_new_keyring,
            seccomp: filter.as_ref(),
        };
        let (parent, stage1) = super::spawn_stage1(&cfg, keep_fds, proof)?;

        let res = sync_create(
            &parent,
            stage1,
            &state,
            linux,
            cgroup.as_ref(),
            opts,
            &mut teardown,
        );
        let pty = match res {
            Ok((pid, pty, in_cgroup)) => {
                state.pid = pid;
                if !in_cgroup {
                    // rootless without permission: nothing to find or remove later
                    state.cgroup = None;
                }
                pty
            }
            Err(e) => {
                // reap stage 1 if it is still around
                if let Some(p) = Pid::from_raw(stage1) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
                }
                return Err(e);
            }
        };
        state.init_start_time = crate::state::proc_stat(state.pid).map(|s| s.0).unwrap_or(0);
        if let Some(before) = &state.host_mounts_before {
            state.host_mounts =
                hostmounts::made_since(before, &bundle.rootfs).map_err(|source| {
                    ContainerError::HostMounts {
                        id: id.to_owned(),
                        source,
                    }
                })?;
        }
        state.status = Status::Created;
        state.save(&opts.root)?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, state.pid)?;
        }
        teardown.armed = false;
        drop(teardown);
        Ok((
            Container {
                root: opts.root.clone(),
                state,
                warnings,
            },
            pty,
        ))
    }
}

/// The runtime's half of the create handshake (see `init`). Returns the init pid, the
/// pty master when one was kept, and whether the container got its cgroup (a rootless one
/// may run without).
fn sync_create(
    chan: &Channel,
    stage1: i32,
    state: &State,
    linux: &berth_runtime_spec::Linux,
    cgroup: &dyn CgroupManager,
    opts: &CreateOptions,
    teardown: &mut Teardown,
) -> Result<(i32, Option<OwnedFd>, bool), ContainerError> {
    let id = state.id.clone();
    let cg_err = |source| ContainerError::Cgroup {
        id: id.clone(),
        source,
    };
    expect(chan, |m| matches!(m, ChildMsg::Stage1))?;
    let ns = Plan::of(linux);
    if ns.creates(LinuxNamespaceType::User) {
        namespaces::write_id_maps(stage1, linux).map_err(|f| ContainerError::IdMappings {
            source: f.os_error(),
            message: f.what,
        })?;
    }
    // runc's rootless cgroup manager: without permission and without an explicit
    // cgroupsPath the container runs without a cgroup of its own, unless it asks for
    // limits; device rules are never applied rootless (the kernel refuses them anyway)
    let in_cgroup = match cgroup.apply(stage1) {
        Ok(()) => true,
        Err(e)
            if opts.rootless
                && linux.cgroups_path.is_none()
                && rootless::is_permission_error(&e) =>
        {
            // remove whatever part was made before the refusal
            let _ = cgroup.destroy();
            if linux
                .resources
                .as_ref()
                .is_some_and(rootless::requests_limits)
            {
                return Err(rootless::RootlessError::LimitsWithoutCgroup {
                    id: id.clone(),
                    source: e,
                }
                .into());
            }
            teardown.cgroup = None;
            false
        }
        Err(e) => return Err(cg_err(e)),
    };
    chan.send(&ParentMsg::Continue)?;
    let pid = match expect(chan, |m| matches!(m, ChildMsg::InitPid { .. }))? {
        (ChildMsg::InitPid { pid }, _) => pid,
        _ => 0,
    };
    teardown.pid = pid;
    if let Some(p) = Pid::from_raw(stage1) {
        let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
    }
    // limits once the init is forked, as runc: a pids limit of 0 or 1 (runtime-spec: 0 is a
    // limit) must not stop the runtime's own forks into the cgroup
    if in_cgroup && let Some(r) = &linux.resources {
        match cgroup.set(r) {
            Ok(()) => {}
            Err(e) if opts.rootless && rootless::is_devices_error(&e) => {}
            Err(e) => return Err(cg_err(e)),
        }
    }
    let mut st = state.clone();
    st.pid = pid;
    st.init_start_time = crate::state::proc_stat(pid).map(|s| s.0).unwrap_or(0);
    // recorded now so that `delete` finds the init if we die from here on
    st.save(&opts.root)?;
    let hook_state = serde_json::to_vec(&st.spec_state(Status::Creating)).unwrap_or_default();
    chan.send(&ParentMsg::Start {
        state: String::from_utf8_lossy(&hook_state).into_owned(),
    })?;
    let mut pty = None;
    loop {
        let (msg, mut fds) = recv(chan)?;
        match msg {
            ChildMsg::Hooks => {
                if let Some(h) = &st.config.hooks {
                    hooks::run(
                        "prestart",
                        h.prestart.as_deref().unwrap_or_default(),
                        &hook_state,
                    )?;
                    hooks::run(
                        "createRuntime",
                        h.create_runtime.as_deref().unwrap_or_default(),
                        &hook_state,
                    )?;
                }
                chan.send(&ParentMsg::HooksDone)?;
            }
            ChildMsg::Pty => {
                let master = fds.pop().ok_or_else(|| ContainerError::ChildProtocol {
                    process: INIT,
                    problem: "sent no terminal".to_owned(),
                })?;
                match &opts.console_socket {
                    Some(sock) => {
                        tty::send_to_console_socket(sock, master.as_fd()).map_err(|source| {
                            ContainerError::ConsoleSocket {
                                path: sock.clone(),
                                source,
                            }
                        })?
                    }
                    None => pty = Some(master),
                }
            }
            ChildMsg::Ready => return Ok((pid, pty, in_cgroup)),
            ChildMsg::Failed(f) => return Err(f.into()),
            other => return Err(unexpected(INIT, &other)),
        }
    }
}

fn recv(chan: &Channel) -> Result<(ChildMsg, Vec<OwnedFd>), ContainerError> {
    match chan.recv_with_fds::<ChildMsg>() {
        Ok((ChildMsg::Failed(f), _)) => Err(f.into()),
        Ok(m) => Ok(m),
        Err(ipc::IpcError::Closed { .. }) => Err(ContainerError::ChildProtocol {
            process: INIT,
            problem: "exited during setup".to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

fn expect(
    chan: &Channel,
    ok: impl Fn(&ChildMsg) -> bool,
) -> Result<(ChildMsg, Vec<OwnedFd>), ContainerError> {
    let (m, fds) = recv(chan)?;
    if ok(&m) {
        Ok((m, fds))
    } else {
        Err(unexpected(INIT, &m))
    }
}

/// `<root>/<id>/exec.fifo`, writable by the container's root; returns an O_PATH descriptor
/// placed above the descriptors handed to the container.
fn make_fifo(
    root: &Path,
    id: &str,
    linux: &berth_runtime_spec::Linux,
    min_fd: i32,
) -> Result<OwnedFd, ContainerError> {
    let path = paths::exec_fifo(root, id);
    let err = |e: rustix::io::Errno| io_err("create the exec fifo", &path)(e.into());
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        FileType::Fifo,
        Mode::from_raw_mode(0o622),
        0,
    )
    .map_err(err)?;
    rustix::fs::chmod(&path, Mode::from_raw_mode(0o622)).map_err(err)?;
    let host_root = |maps: &Option<Vec<berth_runtime_spec::LinuxIdMapping>>| {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .find(|m| m.container_id == 0)
            .map(|m| m.host_id)
    };
    if let (Some(u), Some(g)) = (
        host_root(&linux.uid_mappings),
        host_root(&linux.gid_mappings),
    ) {
        let _ = rustix::fs::chown(
            &path,
            Some(rustix::fs::Uid::from_raw(u)),
            Some(rustix::fs::Gid::from_raw(g)),
        );
    }
    let fd = rustix::fs::open(&path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(err)?;
    rustix::io::fcntl_dupfd_cloexec(&fd, min_fd.max(10)).map_err(err)
}

/// A hint for a non-root user who cannot write the state root.
fn not_writable_hint(e: &std::io::Error, root: &Path) -> String {
    let euid = rustix::process::geteuid();
    if e.kind() == std::io::ErrorKind::PermissionDenied && !euid.is_root() {
        format!(
            " (the state directory --root {} is not writable by uid {}; hint: pass --root <a \
             directory you own> or set XDG_RUNTIME_DIR and omit --root)",
            root.display(),
            euid.as_raw()
        )
    } else {
        String::new()
    }
}

/// runc writes the pid file atomically (not durably: a pid means nothing after a crash),
/// without a newline.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    berth_fsutil::atomic_replace(&path, pid.to_string().as_bytes())
        .map_err(|source| ContainerError::PidFile { path, source })
}

use std::os::unix::fs::DirBuilderExt;
