//! A bounded wait for a helper process (a CNI plugin, pasta), shared so that every helper
//! berth starts is waited for the same way: the child's pidfd is polled until it exits or the
//! deadline passes; past the deadline the child's whole process group is killed (SIGKILL), so
//! that what it started (an IPAM plugin it delegated to, an `iptables`, a daemon child not yet
//! detached) goes with it, and the child is reaped.
//!
//! The child must lead a process group of its own: spawn it with
//! `std::os::unix::process::CommandExt::process_group(0)`.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Wait for `child` (spawned with `process_group(0)`) at most `timeout`: its exit status, or
/// `Ok(None)` when the deadline passed, after its process group was killed and the child
/// reaped. An error (no pidfd, a failing poll) also kills the group and reaps the child.
pub fn wait_or_kill_group(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let pid = rustix::process::Pid::from_child(child);
    let kill_group = |child: &mut Child| {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = child.kill();
        let _ = child.wait();
        // once more, for a member that forked as the group was killed: one still holding
        // the helper's pipes would keep their readers waiting
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    };
    let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            kill_group(child);
            return Err(e.into());
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            kill_group(child);
            return Ok(None);
        }
        let ts = rustix::time::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return child.wait().map(Some),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                kill_group(child);
                return Err(e.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Whether `pid` is gone or a zombie (killed, not yet reaped by its new parent).
    fn dead(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        }
    }

    #[test]
    fn a_helper_that_does_not_exit_is_killed_with_its_group_within_the_bound() {
        let d = tempfile::tempdir().unwrap();
        let pid_file = d.path().join("grandchild");
        // the helper forks a child of its own, says which, and never exits
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sleep 600 & echo $! > {}.tmp && mv {0}.tmp {0}; wait",
                pid_file.display()
            ))
            .process_group(0)
            .spawn()
            .unwrap();
        let started = Instant::now();
        // the bound is well past the shell's start, so the grandchild exists before the kill
        let deadline = started + Duration::from_secs(20);
        while !pid_file.exists() {
            assert!(Instant::now() < deadline, "the helper never forked");
            std::thread::yield_now();
        }
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let status = wait_or_kill_group(&mut child, Duration::from_millis(300)).unwrap();
        let waited = started.elapsed();
        assert!(status.is_none(), "a helper that never exits timed out");
        assert!(
            waited < Duration::from_secs(10),
            "the wait took {waited:?} for a bound of 300 ms"
        );
        assert!(child.try_wait().unwrap().is_some(), "the helper was reaped");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dead(grandchild) {
            assert!(
                Instant::now() < deadline,
                "the helper's own child {grandchild} survived the kill of its group"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_helper_that_exits_in_time_gives_its_status() {
        let mut child = Command::new("sh")
            .args(["-c", "exit 3"])
            .process_group(0)
            .spawn()
            .unwrap();
        let status = wait_or_kill_group(&mut child, Duration::from_secs(20)).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(3));
    }
}
