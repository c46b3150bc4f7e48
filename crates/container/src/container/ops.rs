//! Commands on an existing container: start, kill, delete, pause, resume, pids, update.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime_spec::LinuxResources;
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal};

use super::{Container, ContainerError, io_err};
use crate::cgroups::FreezerState;
use crate::hooks::{self, HookError};
use crate::paths;
use crate::state::{Lock, State, Status};

fn sleep_ms(ms: i64) {
    let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: ms * 1_000_000,
    });
}

fn signal(sig: i32) -> Result<Signal, ContainerError> {
    Signal::from_named_raw(sig).ok_or(ContainerError::InvalidSignal { signal: sig })
}

impl Container {
    fn lock(&self) -> Result<Lock, ContainerError> {
        Ok(Lock::acquire(&self.dir())?)
    }

    fn reload(&mut self) -> Result<(), ContainerError> {
        self.state = State::load(&self.root, &self.state.id)?;
        Ok(())
    }

    fn wrong(&self, op: &'static str, status: Status) -> ContainerError {
        ContainerError::InvalidState {
            id: self.state.id.clone(),
            op,
            status,
        }
    }

    /// Release the init from the exec fifo, then run the poststart hooks; their failures
    /// are returned as warnings (runtime-spec: poststart errors do not stop the container).
    pub fn start(&mut self) -> Result<Vec<HookError>, ContainerError> {
        let _lock = self.lock()?;
        self.reload()?;
        match self.status() {
            Status::Created => {}
            s => return Err(self.wrong("start", s)),
        }
        let fifo = paths::exec_fifo(&self.root, &self.state.id);
        let f = rustix::fs::open(
            &fifo,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open exec fifo", &fifo)(e.into()))?;
        loop {
            let mut fds = [rustix::event::PollFd::new(&f, rustix::event::PollFlags::IN)];
            let t = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            match rustix::event::poll(&mut fds, Some(&t)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => {
                    if !crate::state::process_alive(self.state.pid, self.state.init_start_time) {
                        return Err(ContainerError::ExitedBeforeStart {
                            id: self.state.id.clone(),
                        });
                    }
                }
                Ok(_) => break,
                Err(e) => return Err(io_err("wait on the exec fifo", &fifo)(e.into())),
            }
        }
        let mut b = [0u8; 1];
        let n = rustix::io::read(&f, &mut b)
            .map_err(|e| io_err("read the exec fifo", &fifo)(e.into()))?;
        if n != 1 {
            return Err(ContainerError::ExitedBeforeStart {
                id: self.state.id.clone(),
            });
        }
        let _ = std::fs::remove_file(&fifo);
        let mut warnings = Vec::new();
        if let Some(h) = self
            .state
            .config
            .hooks
            .as_ref()
            .and_then(|h| h.poststart.as_deref())
        {
            let st =
                serde_json::to_vec(&self.state.spec_state(Status::Running)).unwrap_or_default();
            // every one runs: a failure is a warning, not a reason to skip the rest
            warnings.extend(hooks::run_all("poststart", h, &st));
        }
        Ok(warnings)
    }

    /// Send `sig` to the init, or with `all` to every process of the cgroup: frozen first
    /// so that none can fork away meanwhile, signalled, then thawed (as runc). A container
    /// that was paused stays paused (the signal pending) unless the signal is SIGKILL,
    /// which thaws it so that its processes can die (a frozen v1 task cannot).
    pub fn kill(&self, sig: i32, all: bool) -> Result<(), ContainerError> {
        let sig = signal(sig)?;
        let status = self.status();
        let cg = self.cgroup()?;
        let was_paused = status == Status::Paused;
        let thaw_after = |froze: bool| {
            if (froze || (was_paused && sig == Signal::KILL))
                && let Some(cg) = &cg
            {
                let _ = cg.freeze(FreezerState::Thawed);
            }
        };
        if all {
            let froze = !was_paused
                && status != Status::Stopped
                && cg
                    .as_ref()
                    .is_some_and(|cg| cg.freeze(FreezerState::Frozen).is_ok());
            let pids = match &cg {
                Some(cg) => cg.pids().map_err(|source| ContainerError::Cgroup {
                    id: self.state.id.clone(),
                    source,
                }),
                None => Ok(self.pids_without_cgroup()),
            };
            let pids = match pids {
                Ok(p) => p,
                Err(e) => {
                    thaw_after(froze);
                    return Err(e);
                }
            };
            if status == Status::Stopped && pids.is_empty() {
                return Err(ContainerError::NotRunning {
                    id: self.state.id.clone(),
                    op: "kill",
                });
            }
            for p in pids.into_iter().filter_map(Pid::from_raw) {
                let _ = rustix::process::kill_process(p, sig);
            }
            thaw_after(froze);
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(ContainerError::NotRunning {
                id: self.state.id.clone(),
                op: "kill",
            });
        }
        let pid =
            Pid::from_raw(self.state.pid).ok_or_else(|| self.wrong("kill", Status::Stopped))?;
        rustix::process::kill_process(pid, sig).map_err(|e| ContainerError::Signal {
            id: self.state.id.clone(),
            signal: sig.as_raw(),
            source: e.into(),
        })?;
        thaw_after(false);
        Ok(())
    }

    /// Remove the container. Without `force` only a stopped or created one; with it a
    /// running one is killed first. Poststop hook failures are returned as warnings.
    pub fn delete(mut self, force: bool) -> Result<Vec<HookError>, ContainerError> {
        let _lock = self.lock()?;
        self.reload()?;
        let status = self.status();
        match status {
            Status::Stopped | Status::Created | Status::Creating => {}
            Status::Running | Status::Paused if force => {}
            s => {
                return Err(ContainerError::NotStopped {
                    id: self.state.id.clone(),
                    status: s,
                });
            }
        }
        let cg = self.cgroup()?;
        if status != Status::Stopped || force {
            if let Some(cg) = &cg {
                for p in cg
                    .pids()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                }
                if status == Status::Paused {
                    let _ = cg.freeze(FreezerState::Thawed);
                }
            }
            if crate::state::process_alive(self.state.pid, self.state.init_start_time)
                && let Some(p) = Pid::from_raw(self.state.pid)
            {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        // wait for the init to be gone (it is not our child; a zombie counts as gone)
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::state::process_alive(self.state.pid, self.state.init_start_time) {
            if Instant::now() > deadline {
                return Err(ContainerError::InitSurvivedKill {
                    id: self.state.id.clone(),
                    pid: self.state.pid,
                });
            }
            sleep_ms(2);
        }
        self.unmount_host_mounts()?;
        if let Some(cg) = &cg {
            let mut last = Ok(());
            for _ in 0..500 {
                last = cg.destroy();
                if last.is_ok() {
                    break;
                }
                // processes that just got SIGKILL may still be leaving
                for p in cg
                    .pids()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                }
                sleep_ms(2);
            }
            last.map_err(|source| ContainerError::Cgroup {
                id: self.state.id.clone(),
                source,
            })?;
        }
        let mut warnings = Vec::new();
        if let Some(h) = self
            .state
            .config
            .hooks
            .as_ref()
            .and_then(|h| h.poststop.as_deref())
        {
            let st =
                serde_json::to_vec(&self.state.spec_state(Status::Stopped)).unwrap_or_default();
            // every one runs: a failure is a warning, not a reason to skip the rest
            warnings.extend(hooks::run_all("poststop", h, &st));
        }
        let dir = self.dir();
        std::fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        Ok(warnings)
    }

    /// A container without a mount namespace of its own: detach what it mounted in the
    /// runtime's (see [`crate::hostmounts`]). What `create` recorded once the init was
    /// ready; after a `create` that died before that, whatever is mounted at or under the
    /// rootfs now and was not before.
    fn unmount_host_mounts(&self) -> Result<(), ContainerError> {
        let Some(before) = &self.state.host_mounts_before else {
            return Ok(());
        };
        let err = |source| ContainerError::HostMounts {
            id: self.state.id.clone(),
            source,
        };
        let ours = if self.state.host_mounts.is_empty() {
            crate::hostmounts::made_since(before, &self.state.rootfs).map_err(err)?
        } else {
            self.state.host_mounts.clone()
        };
        crate::hostmounts::unmount(&ours).map_err(err)
    }

    fn set_paused(&mut self, paused: bool) -> Result<(), ContainerError> {
        let _lock = self.lock()?;
        self.reload()?;
        let status = self.status();
        let ok = if paused {
            status == Status::Running
        } else {
            status == Status::Paused
        };
        if !ok {
            return Err(self.wrong(if paused { "pause" } else { "resume" }, status));
        }
        let cg = self.cgroup()?.ok_or_else(|| ContainerError::NoCgroup {
            id: self.state.id.clone(),
        })?;
        cg.freeze(if paused {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        })
        .map_err(|source| ContainerError::Cgroup {
            id: self.state.id.clone(),
            source,
        })?;
        self.state.paused = paused;
        self.state.save(&self.root)?;
        Ok(())
    }

    pub fn pause(&mut self) -> Result<(), ContainerError> {
        self.set_paused(true)
    }

    pub fn resume(&mut self) -> Result<(), ContainerError> {
        self.set_paused(false)
    }

    /// Host pids of every process in the container's cgroup (of a rootless container
    /// without a cgroup: the init's pid namespace, or the init alone).
    pub fn pids(&self) -> Result<Vec<i32>, ContainerError> {
        match self.cgroup()? {
            Some(cg) => cg.pids().map_err(|source| ContainerError::Cgroup {
                id: self.state.id.clone(),
                source,
            }),
            None => Ok(self.pids_without_cgroup()),
        }
    }

    /// The processes of a container that has no cgroup (rootless without permission): every
    /// process in the init's pid namespace when the container has its own, else the init
    /// alone (runc fails `ps` and `kill --all` there).
    fn pids_without_cgroup(&self) -> Vec<i32> {
        let init = self.state.pid;
        if !crate::state::process_alive(init, self.state.init_start_time) {
            return Vec::new();
        }
        let own_pidns =
            self.state.config.linux.as_ref().is_some_and(|l| {
                l.namespaces.as_deref().unwrap_or_default().iter().any(|n| {
                    n.typ == berth_runtime_spec::LinuxNamespaceType::Pid && n.path.is_none()
                })
            });
        let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let Some(init_ns) = own_pidns.then(|| ns(&init.to_string())).flatten() else {
            return vec![init];
        };
        let mut pids: Vec<i32> = std::fs::read_dir("/proc")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| ns(name).as_ref() == Some(&init_ns))
                    .filter_map(|name| name.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        pids.sort_unstable();
        pids
    }

    /// Apply new resource limits and record them in the state's config.
    pub fn update(&mut self, resources: &LinuxResources) -> Result<(), ContainerError> {
        let _lock = self.lock()?;
        self.reload()?;
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.wrong("update", status));
        }
        let cg = self.cgroup()?.ok_or_else(|| ContainerError::NoCgroup {
            id: self.state.id.clone(),
        })?;
        // the device rules stay as they are, as runc's `update` (SkipDevices)
        cg.update(resources)
            .map_err(|source| ContainerError::Cgroup {
                id: self.state.id.clone(),
                source,
            })?;
        if let Some(linux) = &mut self.state.config.linux {
            linux.resources = Some(resources.clone());
        }
        self.state.save(&self.root)?;
        Ok(())
    }

    /// Usage statistics of the cgroup (runc `events --stats` "data").
    pub fn stats(&self) -> Result<crate::cgroups::Stats, ContainerError> {
        let cg = self.cgroup()?.ok_or_else(|| ContainerError::NoCgroup {
            id: self.state.id.clone(),
        })?;
        cg.stats().map_err(|source| ContainerError::Cgroup {
            id: self.state.id.clone(),
            source,
        })
    }

    /// Register for the OOM events of the container's memory cgroup; `None` for a container
    /// without a cgroup (rootless without permission).
    pub fn oom_notifier(
        &self,
    ) -> Result<Option<crate::cgroups::OomNotifier>, crate::cgroups::NotifyError> {
        self.state
            .cgroup
            .as_ref()
            .map(crate::cgroups::OomNotifier::open)
            .transpose()
    }

    /// OOM kills so far in the container's cgroup.
    pub fn oom_kill_count(&self) -> Result<u64, ContainerError> {
        let cg = self.cgroup()?.ok_or_else(|| ContainerError::NoCgroup {
            id: self.state.id.clone(),
        })?;
        cg.oom_kill_count()
            .map_err(|source| ContainerError::Cgroup {
                id: self.state.id.clone(),
                source,
            })
    }
}

/// Remove `<root>/<id>` when it holds no loadable state (a create killed before its first
/// state write), as `runc delete` does.
pub fn remove_leftover(root: &Path, id: &str) -> Result<bool, ContainerError> {
    if !crate::id::is_valid_id(id) {
        return Err(ContainerError::InvalidId { id: id.to_owned() });
    }
    let dir = paths::container_dir(root, id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", &dir)(e)),
    }
}

/// `delete --force` of a container whose state file cannot be parsed (state is written
/// atomically but not durably, so a crash can leave it empty): kill every process that still
/// holds the container's exec fifo — an init waiting for `start`, the only process such a
/// record can still describe after a crash — then remove the directory. Returns the pids
/// killed. A container that had started left no such trace; its processes, if any survived,
/// and its cgroup cannot be found without the record.
pub fn remove_unreadable(root: &Path, id: &str) -> Result<Vec<i32>, ContainerError> {
    if !crate::id::is_valid_id(id) {
        return Err(ContainerError::InvalidId { id: id.to_owned() });
    }
    let fifo = paths::exec_fifo(root, id);
    let fifo = std::fs::canonicalize(&fifo).unwrap_or(fifo);
    let mut killed = Vec::new();
    let mut cgroups = Vec::new();
    for pid in holders_of(&fifo) {
        let dirs = crate::cgroups::process_dirs_named(pid, id);
        if let Some(p) = Pid::from_raw(pid)
            && rustix::process::kill_process(p, Signal::KILL).is_ok()
        {
            killed.push(pid);
            cgroups.extend(dirs);
        }
    }
    // the killed inits leave their cgroups once the kernel has reaped them
    let deadline = Instant::now() + Duration::from_secs(2);
    for dir in cgroups {
        while std::fs::remove_dir(&dir).is_err() && dir.exists() && Instant::now() < deadline {
            let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 5_000_000,
            });
        }
    }
    remove_leftover(root, id)?;
    Ok(killed)
}

/// The pids with a descriptor open on `path` (as /proc/<pid>/fd/* resolve).
fn holders_of(path: &Path) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(Result::ok)
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == path))
            })
        })
        .collect()
}
