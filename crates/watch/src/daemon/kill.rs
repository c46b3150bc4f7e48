//! SIGKILL to a drifting process, through a pidfd (never a reused pid).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::event::Exec;
use crate::output::boot_ns_now;

/// What became of a drift kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KillOutcome {
    /// SIGKILL sent `after` the exec.
    Killed {
        after: Duration,
    },
    /// The process had exited (or its pid was reused) before the signal.
    Exited {
        after: Duration,
    },
    Failed {
        after: Duration,
        error: String,
    },
}

impl KillOutcome {
    pub(super) fn outcome(&self) -> &'static str {
        match self {
            KillOutcome::Killed { .. } => "killed",
            KillOutcome::Exited { .. } => "exited",
            KillOutcome::Failed { .. } => "failed",
        }
    }

    pub(super) fn annotate(&self, details: &mut serde_json::Map<String, Value>) {
        let after = match self {
            KillOutcome::Killed { after }
            | KillOutcome::Exited { after }
            | KillOutcome::Failed { after, .. } => after,
        };
        details.insert("kill".into(), json!(self.outcome()));
        details.insert(
            "kill_us".into(),
            json!(u64::try_from(after.as_micros()).unwrap_or(u64::MAX)),
        );
        if let KillOutcome::Failed { error, .. } = self {
            details.insert("kill_error".into(), json!(error));
        }
    }
}

/// SIGKILL to the process of a drift exec, through a pidfd so that a reused pid is never
/// signalled: the pidfd is opened, then the process it names must have started no later
/// than the exec (a pid reused after the exec's process exited started after it), then the
/// signal goes through the pidfd (to the process checked, or to none: ESRCH).
pub(super) fn kill_drift(e: &Exec, proc: &Path) -> KillOutcome {
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
    let since = || Duration::from_nanos(boot_ns_now().saturating_sub(e.boot_ns));
    let Some(pid) = i32::try_from(e.pid).ok().and_then(Pid::from_raw) else {
        return KillOutcome::Failed {
            after: since(),
            error: format!("invalid pid {}", e.pid),
        };
    };
    let fd: OwnedFd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(Errno::SRCH) => return KillOutcome::Exited { after: since() },
        Err(err) => {
            return KillOutcome::Failed {
                after: since(),
                error: format!("pidfd_open({}): {err}", e.pid),
            };
        }
    };
    match started_ns(proc, e.pid) {
        // one clock tick of slack: the start time is counted in ticks
        Some(start) if start <= e.boot_ns.saturating_add(tick_ns()) => {}
        _ => return KillOutcome::Exited { after: since() },
    }
    match pidfd_send_signal(&fd, Signal::KILL) {
        Ok(()) => KillOutcome::Killed { after: since() },
        Err(Errno::SRCH) => KillOutcome::Exited { after: since() },
        Err(err) => KillOutcome::Failed {
            after: since(),
            error: format!("pidfd_send_signal({}, SIGKILL): {err}", e.pid),
        },
    }
}

fn tick_ns() -> u64 {
    1_000_000_000 / rustix::param::clock_ticks_per_second().max(1)
}

/// When a process started, in `CLOCK_BOOTTIME` nanoseconds (field 22 of `/proc/PID/stat`);
/// `None` when it is gone.
fn started_ns(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: u64 = rest.split_ascii_whitespace().nth(19)?.parse().ok()?;
    Some(ticks.saturating_mul(tick_ns()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::boot_ns_now;

    fn exec_of(pid: u32, boot_ns: u64) -> Exec {
        Exec {
            cgroup_id: 0,
            pid,
            ppid: std::process::id(),
            uid: 0,
            boot_ns,
            filename: "/bin/sleep".into(),
            argv: vec!["sleep".into(), "60".into()],
            argv_truncated: false,
            interpreted: false,
            ino: 0,
            dev: 0,
            origin: crate::event::FileOrigin::NotOverlay,
            mnt_ns: 0,
            pid_ns_level: 0,
        }
    }

    #[test]
    fn kill_drift_never_signals_a_process_started_after_the_exec() {
        let proc = Path::new("/proc");
        let before = boot_ns_now();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        // an exec event older than the process (as for a pid reused since): not signalled
        let stale = before.saturating_sub(10 * tick_ns() + 1_000_000_000);
        assert!(matches!(
            kill_drift(&exec_of(pid, stale), proc),
            KillOutcome::Exited { .. }
        ));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the newer process was killed"
        );
        // the exec of this very process: killed by SIGKILL
        let exec_ns = boot_ns_now();
        let outcome = kill_drift(&exec_of(pid, exec_ns), proc);
        assert!(matches!(outcome, KillOutcome::Killed { .. }), "{outcome:?}");
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // gone (its exec's time again: a pid reused since started after it): exited
        let outcome = kill_drift(&exec_of(pid, exec_ns), proc);
        assert!(matches!(outcome, KillOutcome::Exited { .. }), "{outcome:?}");
    }

    #[test]
    fn start_time_of_this_process_is_before_now() {
        let start = started_ns(Path::new("/proc"), std::process::id()).unwrap();
        assert!(start <= boot_ns_now(), "{start}");
        assert_eq!(started_ns(Path::new("/proc"), u32::MAX), None);
    }
}
