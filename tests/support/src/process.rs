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
    let read = |f: std::fs::File| read_output_file(&f);
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

/// Everything written so far to `f`, a file a child process has as its stdout or stderr.
///
/// Read with `pread`, never moving the file offset: the child's descriptor is a duplicate
/// of `f` and shares that offset, so seeking to the start to read would make the child's
/// next write land there, over what it wrote before (an `events` line lost while a test
/// polled its output every millisecond).
pub fn read_output_file(f: &std::fs::File) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut v = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match f.read_at(&mut buf, v.len() as u64) {
            Ok(0) => break,
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    v
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A child writes numbered lines while its output is read as fast as possible, as
    /// the `events` tests poll: every line is there, in order. Reading by seeking the
    /// shared offset to the start loses lines here (the child's writes land at offset 0).
    #[test]
    fn reading_a_childs_output_while_it_writes_loses_nothing() {
        const LINES: usize = 3000;
        let out = tempfile::tempfile().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!("i=1; while [ $i -le {LINES} ]; do echo line$i; i=$((i+1)); done"),
        ])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let child = guard.child().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut reads = 0;
        while child.try_wait().ok().flatten().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer did not finish"
            );
            read_output_file(&out);
            reads += 1;
        }
        guard.0 = None;
        let text = String::from_utf8(read_output_file(&out)).unwrap();
        let want: Vec<String> = (1..=LINES).map(|i| format!("line{i}")).collect();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            want,
            "after {reads} reads"
        );
    }
}
