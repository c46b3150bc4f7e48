//! Running external commands (skopeo, `berth registry gc`) with a deadline, owned by a guard.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::wait_until;

/// A child process killed (SIGKILL, by PID) and reaped on `Drop`, panics included.
#[derive(Debug)]
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
        ChildGuard(Some(child))
    }

    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    pub fn child(&mut self) -> Option<&mut Child> {
        self.0.as_mut()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `cmd` (its program, arguments and environment) under `strace -f -y`, tracing the
/// system calls `calls` (strace's `-e trace=` list) into `trace`; panics unless it succeeds
/// within `timeout`. Returns the trace.
pub fn run_under_strace(
    cmd: &Command,
    trace: &std::path::Path,
    calls: &str,
    timeout: Duration,
) -> String {
    let mut strace = Command::new("strace");
    strace
        .args(["-f", "-y", "-o"])
        .arg(trace)
        .arg("-e")
        .arg(format!("trace={calls}"))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => strace.env(k, v),
            None => strace.env_remove(k),
        };
    }
    let out = run_with_timeout(&mut strace, timeout);
    assert!(
        out.status.success(),
        "{cmd:?} under strace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(trace)
        .unwrap_or_else(|e| panic!("reading the trace {}: {e}", trace.display()))
}

/// Run `cmd` to completion with its stdout and stderr captured (through files, so a chatty
/// command cannot block on a full pipe); panics if it runs longer than `timeout` (after
/// killing it).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let out = tempfile::tempfile().expect("temporary file for stdout");
    let err = tempfile::tempfile().expect("temporary file for stderr");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone stdout file"))
        .stderr(err.try_clone().expect("clone stderr file"));
    let mut guard = ChildGuard::spawn(cmd);
    let mut status = None;
    let child = guard.child().expect("just spawned");
    wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek, SeekFrom};
        let mut v = Vec::new();
        let _ = f.seek(SeekFrom::Start(0));
        let _ = f.read_to_end(&mut v);
        v
    };
    let Some(status) = status else {
        drop(guard);
        panic!(
            "{cmd:?} did not finish within {timeout:?}; stderr so far:\n{}",
            String::from_utf8_lossy(&read(err))
        );
    };
    guard.0 = None;
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// SIGKILL the process `pid`, which is not our child (a daemon a tool left behind, killed
/// by the pid it wrote), and wait until it is gone; whether it went within `timeout`.
pub fn kill_pid_and_wait(pid: i32, timeout: Duration) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    wait_until(timeout, || !proc.exists())
}
