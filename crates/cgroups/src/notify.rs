//! OOM notifications: a descriptor that becomes readable when the container's memory
//! cgroup has an OOM event, so that `events` reports an OOM kill as it happens instead
//! of finding it on its next look at the counter. As runc (`notify_linux.go`,
//! `notify_v2_linux.go`):
//!
//! - v1: an eventfd registered for `memory.oom_control` through `cgroup.event_control`;
//!   the kernel signals it when the cgroup goes under OOM (and when the cgroup goes away).
//! - v2: inotify `IN_MODIFY` on `memory.events`, which the kernel touches whenever one of
//!   its counters (`oom`, `oom_kill`, …) moves.
//!
//! The notification says that something happened, not how many kills: the caller still
//! reads the `oom_kill` counter, which on v1 may move a moment after the event (the
//! event is raised when the OOM killer is invoked, the counter when its victim dies).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};

use super::{CgroupMode, CgroupState};

/// What failed while setting up OOM notifications, on which file.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no memory cgroup to watch for OOM events")]
    NoMemoryCgroup,
    #[error("failed to {op} for OOM notifications on {}", path.display())]
    Setup {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to wait for OOM notifications")]
    Wait {
        #[source]
        source: std::io::Error,
    },
}

fn setup<E: Into<std::io::Error>>(op: &'static str, path: &Path) -> impl FnOnce(E) -> NotifyError {
    let path = path.to_path_buf();
    move |e| NotifyError::Setup {
        op,
        path,
        source: e.into(),
    }
}

/// How the kernel tells.
#[derive(Debug)]
enum Source {
    /// v1: the eventfd, and `memory.oom_control` kept open while it is registered.
    EventFd { efd: OwnedFd, _control: OwnedFd },
    /// v2: the inotify instance watching `memory.events`.
    Inotify(OwnedFd),
}

/// A registered OOM notification for one container's memory cgroup.
#[derive(Debug)]
pub struct OomNotifier {
    source: Source,
}

impl OomNotifier {
    /// Register for the OOM events of the memory cgroup in `state`.
    pub fn open(state: &CgroupState) -> Result<OomNotifier, NotifyError> {
        match state.mode {
            CgroupMode::Unified => {
                let dir = state
                    .unified
                    .as_ref()
                    .map(|u| u.path.as_path())
                    .ok_or(NotifyError::NoMemoryCgroup)?;
                Self::open_v2(dir)
            }
            CgroupMode::Legacy | CgroupMode::Hybrid => {
                let dir = state
                    .hierarchies
                    .iter()
                    .find(|h| h.controllers.iter().any(|c| c == "memory"))
                    .map(|h| h.path.as_path())
                    .ok_or(NotifyError::NoMemoryCgroup)?;
                Self::open_v1(dir)
            }
        }
    }

    fn open_v1(dir: &Path) -> Result<OomNotifier, NotifyError> {
        let control_path = dir.join("memory.oom_control");
        let control = rustix::fs::open(
            &control_path,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(setup("open", &control_path))?;
        let efd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(setup("create an eventfd", &control_path))?;
        let register = dir.join("cgroup.event_control");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&register)
            .and_then(|mut f| {
                f.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())
            })
            .map_err(setup("register an eventfd", &register))?;
        Ok(OomNotifier {
            source: Source::EventFd {
                efd,
                _control: control,
            },
        })
    }

    fn open_v2(dir: &Path) -> Result<OomNotifier, NotifyError> {
        use rustix::fs::inotify;
        let events = dir.join("memory.events");
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .map_err(setup("create an inotify instance", &events))?;
        inotify::add_watch(&fd, &events, inotify::WatchFlags::MODIFY)
            .map_err(setup("watch", &events))?;
        Ok(OomNotifier {
            source: Source::Inotify(fd),
        })
    }

    fn fd(&self) -> &OwnedFd {
        match &self.source {
            Source::EventFd { efd, .. } => efd,
            Source::Inotify(fd) => fd,
        }
    }

    /// Wait up to `timeout` for a notification; whether one came (it is consumed).
    pub fn wait(&self, timeout: Duration) -> Result<bool, NotifyError> {
        let ts = rustix::event::Timespec::try_from(timeout).ok();
        let mut fds = [PollFd::new(self.fd(), PollFlags::IN)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(NotifyError::Wait { source: e.into() }),
        }
        if fds[0].revents().is_empty() {
            return Ok(false);
        }
        // drain: the eventfd's counter, or every queued inotify event (non-blocking)
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(self.fd(), &mut buf) {
                Ok(n) if n > 0 => {}
                Ok(_) | Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(NotifyError::Wait { source: e.into() }),
            }
        }
        Ok(true)
    }
}
