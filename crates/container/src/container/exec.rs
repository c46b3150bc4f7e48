//! `exec`: a new process in a running container: join the init's namespaces (user
//! first) and cgroup, chroot to its root, fork so the pid namespace applies, then the
//! same process setup as the init.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use berth_runtime_spec::Process;
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, WaitOptions};

use super::{Container, ContainerError, EXEC, io_err, unexpected};
use crate::init::{ChildConfig, ChildMsg, ParentMsg};
use crate::namespaces::Plan;
use crate::state::Status;
use crate::sys::{self};
use crate::threads::SingleThreaded;
use crate::{process, seccomp, spec, tty};

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    /// Keep the pty master (foreground exec with a terminal and no console socket).
    pub keep_pty: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// `--ignore-paused`.
    pub ignore_paused: bool,
}

/// A started exec process.
#[derive(Debug)]
pub struct ExecProcess {
    pub pid: i32,
    pub pty: Option<OwnedFd>,
    /// What the exec went on despite (ambient capabilities the kernel will not raise), for
    /// the caller to log.
    pub warnings: Vec<String>,
}

impl Container {
    /// Start `opts.process` inside the container; returns once it is about to execute.
    /// Forks: `proof` says this process is single-threaded.
    pub fn exec(
        &self,
        opts: &ExecOptions,
        proof: SingleThreaded,
    ) -> Result<ExecProcess, ContainerError> {
        let status = self.status();
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            s => return Err(self.wrong_status("exec", s)),
        }
        let id = self.state.id.as_str();
        let cfg_spec = &self.state.config;
        let process = &opts.process;
        if process.args.as_ref().is_none_or(|a| a.is_empty()) {
            return Err(ContainerError::EmptyArgs);
        }
        let terminal = process.terminal.unwrap_or(false);
        if terminal && opts.console_socket.is_none() && !opts.keep_pty {
            return Err(ContainerError::TerminalWithoutConsoleSocket);
        }
        if terminal && opts.console_socket.is_none() && opts.keep_pty {
            // as runc: fail now rather than run a terminal nobody can see or type into
            super::wait::host_console().map_err(|source| ContainerError::NoHostTerminal {
                what: "the process",
                alternative: "drop --tty",
                source,
            })?;
        }
        process::check_lsm(process).map_err(|f| ContainerError::Lsm { message: f.what })?;
        let warnings = crate::caps::ambient_warnings(process.capabilities.as_ref());
        let linux = cfg_spec.linux.as_ref();
        let filter = match linux.and_then(|l| l.seccomp.as_ref()) {
            Some(s) => Some(
                seccomp::compile(s).map_err(|source| ContainerError::Seccomp {
                    id: id.to_owned(),
                    source,
                })?,
            ),
            None => None,
        };
        let types = spec::namespace_types(cfg_spec);
        let ns = Plan::join_all_of(self.state.pid, &types);
        let keep_fds = 3 + opts.preserve_fds as i32;
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
        let root_path = format!("/proc/{}/root", self.state.pid);
        let root = rustix::fs::open(
            root_path.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open", &root_path)(e.into()))?;
        let root = rustix::io::fcntl_dupfd_cloexec(&root, keep_fds.max(10))
            .map_err(|e| io_err("move above the kept descriptors", &root_path)(e.into()))?;
        // the exec'd process must see the container's root even when the init's process
        // state moved on: refuse a container whose init is gone
        if !crate::state::process_alive(self.state.pid, self.state.init_start_time) {
            return Err(self.wrong_status("exec", Status::Stopped));
        }
        let cfg = ChildConfig {
            id,
            spec: cfg_spec,
            process,
            rootfs: None,
            ns: &ns,
            fifo: None,
            exec_root: Some(root.as_fd()),
            keep_fds,
            extra_env: Vec::new(),
            // the exec'd process joins the init's session keyring? runc gives it a new one
            no_new_keyring: true,
            seccomp: filter.as_ref(),
        };
        let (parent, stage1) = super::spawn_stage1(&cfg, keep_fds, proof)?;
        let stage1_pid = Pid::from_raw(stage1);
        let result = (|| -> Result<ExecProcess, ContainerError> {
            let (m, _) = parent.recv_with_fds::<ChildMsg>()?;
            match m {
                ChildMsg::Stage1 => {}
                ChildMsg::Failed(f) => return Err(f.into()),
                other => return Err(unexpected(EXEC, &other)),
            }
            if let Some(cg) = self.cgroup()? {
                match cg.apply(stage1) {
                    Ok(()) => {}
                    Err(_) if self.state.rootless => {}
                    Err(source) => {
                        return Err(ContainerError::Cgroup {
                            id: id.to_owned(),
                            source,
                        });
                    }
                }
            }
            parent.send(&ParentMsg::Continue)?;
            let pid = match parent.recv_with_fds::<ChildMsg>()?.0 {
                ChildMsg::InitPid { pid } => pid,
                ChildMsg::Failed(f) => return Err(f.into()),
                other => return Err(unexpected(EXEC, &other)),
            };
            if let Some(p) = stage1_pid {
                let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
            }
            let state =
                serde_json::to_string(&self.state.spec_state(Status::Running)).unwrap_or_default();
            parent.send(&ParentMsg::Start { state })?;
            let mut pty = None;
            let kill_it = || {
                if let Some(p) = Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
                }
            };
            loop {
                let (m, mut fds) = match parent.recv_with_fds::<ChildMsg>() {
                    Ok(x) => x,
                    Err(e) => {
                        kill_it();
                        return Err(e.into());
                    }
                };
                match m {
                    ChildMsg::Pty => {
                        let Some(master) = fds.pop() else { continue };
                        match &opts.console_socket {
                            Some(sock) => {
                                if let Err(e) = tty::send_to_console_socket(sock, master.as_fd()) {
                                    kill_it();
                                    return Err(ContainerError::ConsoleSocket {
                                        path: sock.clone(),
                                        source: e,
                                    });
                                }
                            }
                            None => pty = Some(master),
                        }
                    }
                    ChildMsg::Ready => break,
                    ChildMsg::Failed(f) => {
                        kill_it();
                        return Err(f.into());
                    }
                    other => {
                        kill_it();
                        return Err(unexpected(EXEC, &other));
                    }
                }
            }
            if let Some(p) = &opts.pid_file {
                super::create::write_pid_file(p, pid)?;
            }
            Ok(ExecProcess { pid, pty, warnings })
        })();
        if result.is_err()
            && let Some(p) = stage1_pid
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(p), WaitOptions::empty());
        }
        result
    }

    fn wrong_status(&self, op: &'static str, status: Status) -> ContainerError {
        ContainerError::InvalidState {
            id: self.state.id.clone(),
            op,
            status,
        }
    }
}
