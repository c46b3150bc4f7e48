//! OCI hooks: the state JSON on stdin, `timeout` honoured (the hook is killed), output
//! captured for the error message.
//!
//! Which failures are fatal is the caller's decision (runtime-spec: createRuntime,
//! prestart, createContainer and startContainer failures abort; poststart and poststop
//! failures are warnings).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_runtime_spec::Hook;
use rustix::event::{PollFd, PollFlags};

/// What went wrong with which hook.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("failed to run {kind} hook {path}")]
    Spawn {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook {path} failed ({status}): {output}")]
    Failed {
        kind: &'static str,
        path: PathBuf,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("{kind} hook {path} did not finish within its timeout of {secs}s and was killed")]
    Timeout {
        kind: &'static str,
        path: PathBuf,
        secs: i64,
    },
}

/// Run `hooks` one after the other, stopping at the first failure (createRuntime,
/// prestart, createContainer and startContainer: a failure aborts).
pub(crate) fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for h in hooks {
        run_one(kind, h, state)?;
    }
    Ok(())
}

/// Run every one of `hooks`, whatever the others do, and return the failures in order:
/// poststart and poststop hooks, whose failures are warnings (runtime-spec), all run.
pub(crate) fn run_all(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Vec<HookError> {
    hooks
        .iter()
        .filter_map(|h| run_one(kind, h, state).err())
        .collect()
}

fn run_one(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path.clone();
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&path);
    if let Some(args) = &hook.args {
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env.iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // the state is written as the hook reads it, beside its output, so that a large state
    // (a config with 1 MiB of annotations) cannot deadlock against a hook that writes
    // before it reads, nor outlive its timeout; a hook that does not read it is fine
    let mut stdin = child.stdin.take().and_then(|s| {
        let fd = OwnedFd::from(s);
        rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK).ok()?;
        Some(fd)
    });
    let mut written = 0usize;
    if state.is_empty() {
        stdin = None;
    }
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut output = Vec::new();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_child(&child),
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(|e| spawn_err(e.into()))?;
    loop {
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
        if let Some(o) = &out {
            fds.push(PollFd::from_borrowed_fd(o.as_fd(), PollFlags::IN));
        }
        if let Some(e) = &err {
            fds.push(PollFd::from_borrowed_fd(e.as_fd(), PollFlags::IN));
        }
        if let Some(i) = &stdin {
            fds.push(PollFd::new(i, PollFlags::OUT));
        }
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HookError::Timeout {
                        kind,
                        path,
                        secs: hook.timeout.unwrap_or(0),
                    });
                }
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
            None => None,
        };
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(spawn_err(e.into())),
        }
        let rev: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let exited = rev[0];
        let mut idx = 1;
        if out.is_some() {
            let ready = rev[idx];
            idx += 1;
            if ready {
                drain(&mut out, &mut output);
            }
        }
        if err.is_some() {
            let ready = rev[idx];
            idx += 1;
            if ready {
                drain(&mut err, &mut output);
            }
        }
        if let Some(i) = &stdin
            && rev[idx]
        {
            match rustix::io::write(i, &state[written..]) {
                Ok(n) => written += n,
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                // EPIPE: the hook closed its stdin or exited
                Err(_) => written = state.len(),
            }
            if written >= state.len() {
                stdin = None;
            }
        }
        if exited {
            // its stdin has no reader left to wait for
            stdin = None;
        }
        if exited && out.is_none() && err.is_none() {
            break;
        }
        if exited {
            // the hook is gone; whatever its children hold open is not our business
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            kind,
            path,
            status,
            output: String::from_utf8_lossy(&output).trim().to_owned(),
        })
    }
}

/// Read what is there; close (None) at EOF.
fn drain<R: Read>(pipe: &mut Option<R>, output: &mut Vec<u8>) {
    if let Some(p) = pipe {
        let mut buf = [0u8; 4096];
        match p.read(&mut buf) {
            Ok(0) | Err(_) => *pipe = None,
            Ok(n) => {
                if output.len() < 64 * 1024 {
                    output.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hook {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn state_on_stdin_and_failure_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}),
        );
        run("prestart", &[h], b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}");

        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}),
        );
        let e = run("createRuntime", &[h], b"{}").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");

        let h =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}));
        let t = Instant::now();
        let e = run("poststart", &[h], b"{}").unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn run_all_runs_every_hook_and_returns_each_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mark = |name: &str| {
            hook(serde_json::json!({
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("touch {}", dir.path().join(name).display())]
            }))
        };
        let fail = |code: i32| {
            hook(
                serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("exit {code}")]}),
            )
        };
        let hooks = [fail(3), mark("second"), fail(4), mark("fourth")];
        let errs = run_all("poststop", &hooks, b"{}");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].to_string().contains("exit status: 3"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].to_string().contains("exit status: 4"),
            "{}",
            errs[1]
        );
        assert!(dir.path().join("second").exists());
        assert!(dir.path().join("fourth").exists());
        // `run` still stops at the first failure (the hooks whose failures abort)
        let _ = std::fs::remove_file(dir.path().join("second"));
        assert!(run("prestart", &hooks, b"{}").is_err());
        assert!(!dir.path().join("second").exists());
    }

    /// A state larger than a pipe (a config with 1 MiB of annotations): a hook that reads
    /// it gets all of it, one that writes much before reading does not deadlock, and one
    /// that never reads it is still stopped by its timeout.
    #[test]
    fn a_large_state_is_fed_as_the_hook_reads_it() {
        let state = format!("{{\"annotations\":\"{}\"}}", "a".repeat(2 << 20));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2; cat > {}", out.display())]}));
        // bounded: a runtime that writes the whole state before reading the hook's output
        // deadlocks with this hook
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || tx.send(run("createRuntime", &[h], st.as_bytes())));
        let done = rx.recv_timeout(Duration::from_secs(60));
        assert!(
            matches!(done, Ok(Ok(()))),
            "the hook deadlocked or failed: {done:?}"
        );
        assert_eq!(std::fs::read(&out).unwrap().len(), state.len());

        let h =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}));
        let t = Instant::now();
        let e = run("prestart", &[h], state.as_bytes()).unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }
}
