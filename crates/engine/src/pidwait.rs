//! Waiting for another process's exit without polling: a pidfd (Linux 5.3+) is readable
//! once the process it names has exited, whoever its parent is. `rm` waits so for a
//! container's monitor to finish its bookkeeping (the networks' DEL), `wait` and `stop` for
//! the container's init, instead of looking every 50 ms and answering up to 50 ms late.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// A process being watched for its exit.
pub(crate) struct Exit(OwnedFd);

impl Exit {
    /// Watch `pid`, when `still_it` confirms — after the pidfd is open, so that the process
    /// it names cannot have been replaced by another of the same pid in between — that this
    /// is the process meant (its start time, a lock it holds). `None` when the process is
    /// gone, is not the one meant, or cannot be watched (a kernel without pidfds): the caller
    /// then looks again at what it waits for, polling.
    pub(crate) fn watch(pid: i32, still_it: impl FnOnce() -> bool) -> Option<Exit> {
        let fd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
        still_it().then_some(Exit(fd))
    }

    /// Block until the process exits or `limit` passes; true when it exited.
    pub(crate) fn wait(&self, limit: Duration) -> bool {
        let limit = Timespec {
            tv_sec: i64::try_from(limit.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(limit.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
        loop {
            match poll(&mut fds, Some(&limit)) {
                Ok(n) => return n > 0,
                Err(rustix::io::Errno::INTR) => continue,
                // not expected of a pidfd: the caller looks again, as after a timeout
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use std::time::Instant;

    #[test]
    fn wakes_at_the_exit_not_at_the_limit() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let exit = Exit::watch(pid, || true).unwrap();
        assert!(!exit.wait(Duration::from_millis(10)), "exited early");
        let t0 = Instant::now();
        assert!(exit.wait(Duration::from_secs(10)));
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        child.wait().unwrap();
        // a process that is not the one meant is not watched
        assert!(Exit::watch(std::process::id() as i32, || false).is_none());
    }
}
