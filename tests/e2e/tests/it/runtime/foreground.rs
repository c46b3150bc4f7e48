//! `run` in the foreground: signals sent to the runtime reach the container's process
//! and its exit status becomes the runtime's (runc's `signals.go` forwards every signal
//! but SIGCHLD, SIGWINCH and SIGURG), also a signal that arrives while the container is
//! still being made; and `process.terminal: true` with no terminal anywhere to proxy it
//! to fails at once instead of running a terminal nobody can see (a shell there waits
//! forever).

use std::ffi::OsStr;
use std::fs::File;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use berth_test_support::{Bundle, ChildGuard, ContainerGuard, Runtime, in_sigwait, wait_until};
use serde_json::{Value, json};

use super::runtime_test;

const WAIT: Duration = Duration::from_secs(30);

/// How long a runtime may take to refuse a terminal it cannot proxy (runc: ~30 ms).
const FAIL_FAST: Duration = Duration::from_secs(20);

/// A foreground `run` of `b`, stdin from /dev/null, stdout and stderr into files in the
/// bundle; the child (killed on drop) and the paths of its stdout and stderr.
fn spawn_run(rt: &Runtime, b: &Bundle) -> (ChildGuard, std::path::PathBuf, std::path::PathBuf) {
    b.write_config();
    let out = b.path().join("run.stdout");
    let err = b.path().join("run.stderr");
    let mut cmd = rt.command();
    cmd.arg("run")
        .arg("--bundle")
        .arg(b.path())
        .arg(b.id())
        .stdin(Stdio::null())
        .stdout(new_file(&out))
        .stderr(new_file(&err));
    (ChildGuard::spawn(&mut cmd), out, err)
}

/// A new file for a child's output (read once the child is done or while it runs).
fn new_file(path: &std::path::Path) -> File {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
}

fn wait_exit(g: &mut ChildGuard, timeout: Duration) -> Option<ExitStatus> {
    let child = g.child().expect("spawned");
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn send(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{sig} {pid}");
}

runtime_test! {
    /// SIGTERM, SIGINT, SIGHUP, SIGUSR1 and the realtime SIGRTMIN+2 sent to a foreground
    /// `run` reach the probe (waiting for them in `wait-signal`, so none is lost before it
    /// waits), which then exits 42: `run` exits 42 too. runc, crun and berth-runtime alike;
    /// berth-runtime used to drop realtime signals (forwarding only the named ones).
    fn run_forwards_signals_and_exits_with_the_containers_status(rt) {
        // RTMIN+2: 36 with glibc, whose SIGRTMIN is 34 (the probe is a static glibc binary)
        for (name, num) in [("TERM", 15), ("INT", 2), ("HUP", 1), ("USR1", 10), ("36", 36)] {
            let mut b = Bundle::new();
            b.probe(&["wait-signal", "exit:42"]);
            let guard = ContainerGuard::adopt(rt, &b);
            let (mut run, out, err) = spawn_run(rt, &b);
            let runtime_pid = run.id().expect("spawned");
            // the probe is waiting once it blocks the signals it waits for
            let mut pid = 0;
            let ready = wait_until(WAIT, || {
                let s = rt.state(b.id());
                pid = s.success().then(|| s.json()["pid"].as_i64()).flatten().unwrap_or(0) as i32;
                pid > 0 && in_sigwait(pid)
            });
            assert!(ready, "{name}: the probe never waited; stderr: {}", read(&err));
            send(runtime_pid, name);
            let status = wait_exit(&mut run, WAIT);
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(42),
                "{name}: run exits with the container's status ({status:?}); stderr: {}",
                read(&err)
            );
            let report: Value = serde_json::from_str(&read(&out))
                .unwrap_or_else(|e| panic!("{name}: the probe's report: {e}: {}", read(&out)));
            assert_eq!(report["wait-signal"]["signal"], num, "{name}: {report}");
            drop(guard);
        }
    }
}

runtime_test! {
    /// A SIGTERM that reaches `run` while the container is being made (from a
    /// createRuntime hook, which the runtime itself runs, so `$PPID` is the runtime) is
    /// held and forwarded once the process runs: `run` exits with the container's status
    /// (42 when the probe waited for it already, 143 when it arrived before: the process
    /// shares the host's pid namespace so an unhandled SIGTERM kills it) and leaves no
    /// container behind. runc (its handler is installed before `Run`) and crun: so.
    /// berth-runtime used to die of the signal (killed by SIGTERM, the container left
    /// created). A peer that does not exit in time is given one more try (runc, once in seven
    /// CI runs on a loaded machine, never exited: a race of its own); berth-runtime is not.
    fn run_forwards_a_signal_received_during_create(rt) {
        let tries = if rt.name() == "berth-runtime" { 1 } else { 2 };
        for attempt in 1..=tries {
            let mut b = Bundle::new();
            b.probe(&["wait-signal", "exit:42"]).remove_namespace("pid");
            b.hook(
                "createRuntime",
                json!({"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; kill -TERM $PPID"]}),
            );
            let guard = ContainerGuard::adopt(rt, &b);
            let (mut run, _out, err) = spawn_run(rt, &b);
            let status = wait_exit(&mut run, WAIT);
            if status.is_none() && attempt < tries {
                eprintln!(
                    "{}: run did not exit within {WAIT:?} of a SIGTERM during create; trying again",
                    rt.name()
                );
                drop(run);
                drop(guard);
                continue;
            }
            let code = status.and_then(|s| s.code());
            assert!(
                matches!(code, Some(42 | 143)),
                "run must survive a SIGTERM during create and exit with the container's status \
                 (42 or 143), got {status:?}; stderr: {}",
                read(&err)
            );
            let list = rt.list().assert_success().stdout_str();
            assert!(!list.contains(b.id()), "run left the container behind: {list}");
            drop(guard);
            return;
        }
    }
}

runtime_test! {
    /// `process.terminal: true`, no `--console-socket`, and no terminal anywhere (stdin
    /// from /dev/null, stdout and stderr files, a new session without a controlling
    /// terminal): `run` fails at once, never hangs. runc refuses before creating anything
    /// ("open /dev/tty: no such device or address", its `initHostConsole`); crun starts
    /// the container, then fails on `tcgetattr` of its stdin ("Inappropriate ioctl for
    /// device"); berth-runtime refuses as runc does, before creating anything. It used to
    /// run the shell on a terminal nobody could type into, forever.
    ///
    /// (With stdout a terminal and stdin /dev/null runc and berth-runtime run it, proxying
    /// to stdout; crun refuses: it requires stdin to be a terminal.)
    fn run_with_a_terminal_but_none_to_proxy_fails_fast(rt) {
        let mut b = Bundle::new();
        b.args(&["sh"]).terminal(true);
        b.write_config();
        let guard = ContainerGuard::adopt(rt, &b);
        let args = [
            OsStr::new("run"),
            OsStr::new("--bundle"),
            b.path().as_os_str(),
            OsStr::new(b.id()),
        ];
        let out = rt.cmd_wrapped(
            &args,
            |line| {
                let mut c = Command::new("setsid");
                c.args(["sh", "-c", "exec \"$@\" </dev/null", "sh"]).args(line);
                c
            },
            FAIL_FAST,
        );
        assert!(!out.success(), "run must fail without a terminal: {out}");
        let err = out.stderr_str();
        let why = match rt.name() {
            "runc" => "/dev/tty",
            "crun" => "tcgetattr",
            _ => "cannot allocate a terminal",
        };
        assert!(err.contains(why), "{}: the error says why: {err}", rt.name());
        let list = rt.list().assert_success().stdout_str();
        assert!(!list.contains(b.id()), "the failed run left the container behind: {list}");
        drop(guard);
    }
}

runtime_test! {
    /// The same for `exec -t` in the foreground: runc refuses (`open /dev/tty`), crun
    /// refuses (`tcgetattr`), berth-runtime refuses before starting anything; it used to
    /// run the shell on a terminal nobody could type into, forever.
    fn exec_with_a_terminal_but_none_to_proxy_fails_fast(rt) {
        let mut b = Bundle::new();
        b.probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        c.start();
        assert!(c.wait_for_status("running", WAIT), "not running: {}", c.status());
        let args = ["exec", "-t", c.id(), "/bin/sh"];
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = rt.cmd_wrapped(
            &args,
            |line| {
                let mut c = Command::new("setsid");
                c.args(["sh", "-c", "exec \"$@\" </dev/null", "sh"]).args(line);
                c
            },
            FAIL_FAST,
        );
        assert!(!out.success(), "exec -t must fail without a terminal: {out}");
        let err = out.stderr_str();
        let why = match rt.name() {
            "runc" => "/dev/tty",
            "crun" => "tcgetattr",
            _ => "cannot allocate a terminal",
        };
        assert!(err.contains(why), "{}: the error says why: {err}", rt.name());
        // nothing is left beside the probe
        let left = || {
            let ps = rt.ps(c.id()).assert_success().json();
            ps.as_array().map_or(0, Vec::len)
        };
        assert!(wait_until(WAIT, || left() == 1), "processes left in the container: {}", left());
    }
}
