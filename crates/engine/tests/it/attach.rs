//! Terminals, stdin and the caller's side: `run -it` on a real pty (the test is the
//! terminal), `-i` without `-t`, detached `-dit` with the log and a later attach, `exec
//! -i -t -e -u -w`, kill -9 of the caller and of the runtime's exec, and a hostile neighbour
//! in the container's pid namespace. Real containers (busybox bundles) with berth-runtime,
//! runc and crun, as root.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{RUNTIMES, env, monitor, runtime_bin, search_path};
use berth_engine::{AttachStdio, CreateOptions, Engine, ExecOptions, Status};
use berth_runtime_spec::Spec;
use berth_test_support::{Bundle, kill_pid_and_wait, skip_or_fail, tool_available, wait_until};
use rustix::termios::{LocalModes, Winsize, tcgetattr, tcsetwinsize};

const T: Duration = Duration::from_secs(30);

fn opts_for(b: &Bundle, runtime: &Path, terminal: bool, stdin: bool) -> CreateOptions {
    let spec: Spec = serde_json::from_value(b.config().clone()).unwrap();
    CreateOptions {
        name: None,
        image: String::new(),
        spec,
        rootfs: b.rootfs(),
        auto_remove: false,
        runtime: Some(runtime.to_string_lossy().into_owned()),
        stop_signal: None,
        log_max_size: None,
        id: None,
        stop_timeout: None,
        attachments: Default::default(),
        sbom: None,
        terminal,
        stdin,
    }
}

fn container(
    args: &[&str],
    runtime: &Path,
    terminal: bool,
    stdin: bool,
) -> (Bundle, CreateOptions) {
    let mut b = Bundle::new();
    b.args(args);
    let o = opts_for(&b, runtime, terminal, stdin);
    (b, o)
}

fn log_text(engine: &Engine, id: &str) -> String {
    let mut s = String::new();
    engine
        .logs(id, Default::default(), |_, t| {
            s.push_str(t);
            Ok(())
        })
        .unwrap();
    s
}

fn assert_no_leftovers(engine: &Engine, id: &str, bundle: &Bundle) {
    assert!(!engine.container_dir(id).exists(), "record of {id} left");
    assert!(
        !engine.runtime_root().join(id).exists(),
        "runtime state of {id} left"
    );
    let cg = bundle.cgroups_path().unwrap();
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = ctl.path().join(cg.trim_start_matches('/'));
        assert!(!p.exists(), "cgroup {} left behind", p.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "a mount of {id} left behind");
}

// ---------------------------------------------------------------------------------------
// a real pty: the test is the terminal

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    fn open(rows: u16, cols: u16) -> Pty {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let p = Pty { master, slave };
        p.resize(rows, cols);
        p
    }

    fn resize(&self, rows: u16, cols: u16) {
        tcsetwinsize(
            &self.master,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
    }

    /// A thread collecting what the terminal shows.
    fn screen(&self) -> Screen {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b2 = buf.clone();
        let mut f = std::fs::File::from(self.master.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = f.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b2.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Screen(buf)
    }

    fn type_in(&self, s: &[u8]) {
        std::fs::File::from(self.master.try_clone().unwrap())
            .write_all(s)
            .unwrap();
    }

    fn echo_on(&self) -> bool {
        tcgetattr(&self.slave)
            .unwrap()
            .local_modes
            .contains(LocalModes::ECHO | LocalModes::ICANON)
    }
}

#[derive(Clone)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).replace('\r', "")
    }
    #[track_caller]
    fn wait_for(&self, what: &str) {
        assert!(
            wait_until(T, || self.text().contains(what)),
            "{what:?} never appeared on the terminal: {:?}",
            self.text()
        );
    }
}

/// The caller (`berth run -it` as the CLI does it) in its own process, in a new session whose
/// controlling terminal is the pty's slave, so that the kernel sends it SIGWINCH.
struct Caller(Child);

impl Caller {
    fn spawn(pty: &Pty, root: &Path, runtime: &Path, b: &Bundle, terminal: bool) -> Caller {
        if !tool_available("setsid") {
            skip_or_fail("setsid (util-linux)");
        }
        let spec = serde_json::to_string(b.config()).unwrap();
        let child = Command::new("setsid")
            .arg("--ctty")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "attach::helper_caller_run_attached",
                "--test-threads=1",
                "--nocapture",
                "--quiet",
            ])
            .env("BERTH_TTY_ROOT", root)
            .env("BERTH_TTY_RUNTIME", runtime)
            .env("BERTH_TTY_ROOTFS", b.rootfs())
            .env("BERTH_TTY_SPEC", spec)
            .env("BERTH_TTY_TERMINAL", if terminal { "1" } else { "0" })
            .stdin(pty.slave.try_clone().unwrap())
            .stdout(pty.slave.try_clone().unwrap())
            .stderr(pty.slave.try_clone().unwrap())
            .spawn()
            .unwrap();
        Caller(child)
    }

    #[track_caller]
    fn exit_code(&mut self) -> i32 {
        let mut st = None;
        assert!(
            wait_until(T, || {
                st = self.0.try_wait().unwrap();
                st.is_some()
            }),
            "the caller did not exit"
        );
        st.unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test on its own: the `berth run -it` caller of the pty tests.
#[test]
#[ignore = "run by the pty tests as their caller process"]
fn helper_caller_run_attached() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the parent test passes its setup"
    )]
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("run by the pty tests only"));
    let engine = Engine::new(PathBuf::from(var("BERTH_TTY_ROOT")), monitor())
        .unwrap()
        .with_search_path(search_path());
    let spec: Spec = serde_json::from_str(&var("BERTH_TTY_SPEC")).unwrap();
    let terminal = var("BERTH_TTY_TERMINAL") == "1";
    let opts = CreateOptions {
        name: Some("attached".to_owned()),
        image: String::new(),
        spec,
        rootfs: PathBuf::from(var("BERTH_TTY_ROOTFS")),
        auto_remove: false,
        runtime: Some(var("BERTH_TTY_RUNTIME")),
        stop_signal: None,
        log_max_size: None,
        id: None,
        stop_timeout: None,
        attachments: Default::default(),
        sbom: None,
        terminal,
        stdin: true,
    };
    let io = AttachStdio::inherit(true).unwrap();
    let code = engine.run_attached(opts, &io).unwrap();
    std::process::exit(code.unwrap_or(125));
}

#[test]
fn run_it_on_a_real_pty_tty_size_winch_ctrl_c_and_exit_code() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        // 1. an interactive shell: a terminal inside, the caller's size, SIGWINCH, exit code
        let pty = Pty::open(33, 101);
        assert!(pty.echo_on());
        let screen = pty.screen();
        let mut b = Bundle::new();
        b.args(&["/bin/sh"]);
        let mut caller = Caller::spawn(&pty, env.engine.root(), &bin, &b, true);
        // the caller's terminal goes raw once it relays
        assert!(wait_until(T, || !pty.echo_on()), "{rt}: never raw");
        pty.type_in(b"tty; stty size\n");
        screen.wait_for("/dev/pts/0");
        screen.wait_for("33 101");
        pty.resize(40, 120);
        pty.type_in(b"stty size\n");
        screen.wait_for("40 120");
        pty.type_in(b"exit 7\n");
        assert_eq!(caller.exit_code(), 7, "{rt}: {}", screen.text());
        assert!(
            pty.echo_on(),
            "{rt}: the caller's terminal was not restored"
        );
        let rec = env.engine.inspect("attached").unwrap();
        assert_eq!(
            (rec.status, rec.exit_code),
            (Status::Exited, Some(7)),
            "{rt}"
        );
        assert!(rec.terminal, "{rt}");
        let log = log_text(&env.engine, &rec.id);
        assert!(log.contains("/dev/pts/0"), "{rt}: the log: {log:?}");
        env.engine.remove(&rec.id, false).unwrap();
        assert_no_leftovers(&env.engine, &rec.id, &b);

        // 2. ^C from the terminal reaches the container's foreground process group
        let pty = Pty::open(24, 80);
        let screen = pty.screen();
        let mut b = Bundle::new();
        b.args(&[
            "/bin/sh",
            "-c",
            "trap 'echo got-int; exit 42' INT; echo ready; while true; do sleep 0.1; done",
        ]);
        let mut caller = Caller::spawn(&pty, env.engine.root(), &bin, &b, true);
        screen.wait_for("ready");
        assert!(wait_until(T, || !pty.echo_on()), "{rt}: never raw");
        pty.type_in(b"\x03");
        assert_eq!(caller.exit_code(), 42, "{rt}: {}", screen.text());
        screen.wait_for("got-int");
        assert!(
            pty.echo_on(),
            "{rt}: the caller's terminal was not restored"
        );
        env.engine.remove("attached", false).unwrap();
    }
}

#[test]
fn kill9_of_the_attached_caller_leaves_the_container_running_and_removable() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let pty = Pty::open(24, 80);
        let screen = pty.screen();
        let mut b = Bundle::new();
        b.args(&["/bin/sh", "-c", "while true; do echo tick; sleep 0.1; done"]);
        let mut caller = Caller::spawn(&pty, env.engine.root(), &bin, &b, true);
        screen.wait_for("tick");
        caller.0.kill().unwrap(); // SIGKILL
        let st = caller.0.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(9),
            "{rt}"
        );
        let ps = env.engine.list(false).unwrap();
        assert_eq!(ps.len(), 1, "{rt}: {ps:?}");
        assert_eq!(ps[0].status, Status::Running, "{rt}");
        let mon = ps[0].monitor_pid.unwrap();
        assert!(
            Path::new(&format!("/proc/{mon}")).exists(),
            "{rt}: monitor gone"
        );
        // a new caller can attach (a pipe, not a terminal) and the container keeps logging
        let (code_tx, code_rx) = std::sync::mpsc::channel();
        let (mut out_r, io) = pipe_io(false);
        let e2 = env.engine.clone();
        std::thread::spawn(move || code_tx.send(e2.attach("attached", &io)));
        let mut first = [0u8; 4];
        out_r.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"tick", "{rt}: the new caller sees the output");
        env.engine.kill("attached", "SIGKILL").unwrap();
        let code = code_rx.recv_timeout(T).unwrap().unwrap();
        assert_eq!(code, Some(137), "{rt}");
        let mut rest = String::new();
        out_r.read_to_string(&mut rest).unwrap();
        let i = env.engine.inspect("attached").unwrap();
        assert_eq!((i.status, i.exit_code), (Status::Exited, Some(137)), "{rt}");
        env.engine.remove(&i.id, false).unwrap();
        assert_no_leftovers(&env.engine, &i.id, &b);
    }
}

/// Caller stdio on pipes: (stdout+stderr reader, the stdio); with `stdin`, also a writer.
fn pipe_io(stdin: bool) -> (std::fs::File, AttachStdio) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let io = AttachStdio {
        stdin: if stdin {
            Some(rustix::pipe::pipe().unwrap().0)
        } else {
            None
        },
        stdout: w.try_clone().unwrap(),
        stderr: w,
    };
    (std::fs::File::from(r), io)
}

#[test]
fn run_i_without_t_feeds_stdin_and_keeps_streams_apart() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (_b, o) = container(
            &["/bin/sh", "-c", "cat; echo done >&2; exit 3"],
            &bin,
            false,
            true,
        );
        let (in_r, in_w) = rustix::pipe::pipe().unwrap();
        let (out_r, out_w) = rustix::pipe::pipe().unwrap();
        let (err_r, err_w) = rustix::pipe::pipe().unwrap();
        let io = AttachStdio {
            stdin: Some(in_r),
            stdout: out_w,
            stderr: err_w,
        };
        let mut w = std::fs::File::from(in_w);
        w.write_all(b"hello\nworld\n").unwrap();
        drop(w); // EOF: the container's cat ends
        let e = env.engine.clone();
        let t = std::thread::spawn(move || e.run_attached(o, &io));
        let code = t.join().unwrap().unwrap();
        assert_eq!(code, Some(3), "{rt}");
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        let mut err = String::new();
        std::fs::File::from(err_r).read_to_string(&mut err).unwrap();
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("hello\nworld\n", "done\n"),
            "{rt}"
        );
        assert!(!env.engine.list(true).unwrap()[0].terminal);
        env.engine.prune().unwrap();
    }
}

#[test]
fn detached_dit_keeps_the_pty_in_the_monitor_logs_it_and_attach_works() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (b, o) = container(&["/bin/sh"], &bin, true, true);
        let rec = env.engine.run_detached(o).unwrap();
        assert_eq!(rec.status, Status::Running, "{rt}");
        // attach a non-terminal caller; it types into the container's pty
        let (in_r, in_w) = rustix::pipe::pipe().unwrap();
        let (out_r, out_w) = rustix::pipe::pipe().unwrap();
        let io = AttachStdio {
            stdin: Some(in_r),
            stdout: out_w.try_clone().unwrap(),
            stderr: out_w,
        };
        let e = env.engine.clone();
        let id = rec.id.clone();
        let t = std::thread::spawn(move || e.attach(&id, &io));
        let mut w = std::fs::File::from(in_w);
        w.write_all(b"tty; echo hi-$((6*7)); exit 5\n").unwrap();
        let code = t.join().unwrap().unwrap();
        assert_eq!(code, Some(5), "{rt}");
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        assert!(
            out.contains("hi-42") && out.contains("/dev/pts/0"),
            "{rt}: {out:?}"
        );
        let log = log_text(&env.engine, &rec.id);
        assert!(
            log.contains("hi-42") && log.contains("/dev/pts/0"),
            "{rt}: {log:?}"
        );
        env.engine.remove(&rec.id, false).unwrap();
        assert_no_leftovers(&env.engine, &rec.id, &b);
    }
}

#[test]
fn a_t_container_without_i_takes_no_input_from_an_attached_caller() {
    let Some(env) = env() else { return };
    let Some(bin) = runtime_bin("berth-runtime") else {
        return;
    };
    let (_b, o) = container(
        &[
            "/bin/sh",
            "-c",
            "echo ready; read -t 3 x; echo \"got-[$x]\"",
        ],
        &bin,
        true,
        false,
    );
    let rec = env.engine.create(o).unwrap();
    let (in_r, in_w) = rustix::pipe::pipe().unwrap();
    let (mut out_r, io) = pipe_io(false);
    let io = AttachStdio {
        stdin: Some(in_r),
        ..io
    };
    let e = env.engine.clone();
    let id = rec.id.clone();
    let t = std::thread::spawn(move || e.attach(&id, &io));
    // attached before the start: the caller's typing is there before the read
    let mut w = std::fs::File::from(in_w);
    w.write_all(b"zzz\n").unwrap();
    env.engine.start(&rec.id).unwrap();
    assert_eq!(t.join().unwrap().unwrap(), Some(0));
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("got-[]"),
        "stdin reached a container without -i: {out:?}"
    );
    env.engine.remove(&rec.id, false).unwrap();
}

#[test]
fn exec_with_env_user_cwd_stdin_and_a_terminal() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (_b, o) = container(&["/bin/sh", "-c", "sleep 1000"], &bin, false, false);
        let rec = env.engine.run_detached(o).unwrap();
        // -i -e -u -w, no terminal
        let (in_r, in_w) = rustix::pipe::pipe().unwrap();
        let (out_r, out_w) = rustix::pipe::pipe().unwrap();
        let io = AttachStdio {
            stdin: Some(in_r),
            stdout: out_w.try_clone().unwrap(),
            stderr: out_w,
        };
        std::fs::File::from(in_w)
            .write_all(b"from-stdin\n")
            .unwrap();
        let opts = ExecOptions {
            args: [
                "/bin/sh",
                "-c",
                "read x; echo $x $FOO $(id -u):$(id -g) $(pwd) $PATH; exit 6",
            ]
            .map(str::to_owned)
            .to_vec(),
            env: vec!["FOO=bar".to_owned(), "PATH=/bin".to_owned()],
            user: Some("1234:5678".to_owned()),
            cwd: Some("/proc".to_owned()),
            terminal: false,
            stdin: true,
            detach: false,
        };
        let code = env.engine.exec_with(&rec.id, &opts, &io).unwrap();
        drop(io);
        assert_eq!(code, 6, "{rt}");
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        assert_eq!(out, "from-stdin bar 1234:5678 /proc /bin\n", "{rt}");

        // -t: a pty for the process, relayed by the runtime to our terminal
        let pty = Pty::open(24, 80);
        let screen = pty.screen();
        let io = AttachStdio {
            stdin: Some(pty.slave.try_clone().unwrap()),
            stdout: pty.slave.try_clone().unwrap(),
            stderr: pty.slave.try_clone().unwrap(),
        };
        let opts = ExecOptions {
            args: ["/bin/sh", "-c", "tty; stty size; exit 4"]
                .map(str::to_owned)
                .to_vec(),
            terminal: true,
            stdin: true,
            ..Default::default()
        };
        let code = env.engine.exec_with(&rec.id, &opts, &io).unwrap();
        assert_eq!(code, 4, "{rt}: {}", screen.text());
        // crun 1.8.1 applies neither `consoleSize` nor the caller's size before the exec'd
        // process runs (its own race: `stty size` sometimes sees 0 0, as under podman);
        // berth-runtime and runc size the pty first
        let sized = rt != "crun";
        assert!(
            wait_until(T, || {
                let t = screen.text();
                t.contains("/dev/pts/") && (!sized || t.contains("24 80"))
            }),
            "{rt}: {:?}",
            screen.text()
        );
        assert!(
            !screen.text().contains("not a tty"),
            "{rt}: {}",
            screen.text()
        );
        env.engine.remove(&rec.id, true).unwrap();
    }
}

/// The pids of our children whose command name starts with `comm` and whose arguments hold
/// `exec` (a runtime's `exec`, not the `kill` or `delete` of a test running at once).
fn children_named(comm: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let ppid = stat[close + 2..].split_whitespace().nth(1).unwrap_or("");
        let execs = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"exec"));
        if ppid == me && name.starts_with(&comm[..comm.len().min(15)]) && execs {
            out.push(pid);
        }
    }
    out
}

#[test]
fn kill9_of_the_runtime_mid_exec_leaves_a_usable_engine() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (b, o) = container(&["/bin/sh", "-c", "sleep 1000"], &bin, false, false);
        let rec = env.engine.run_detached(o).unwrap();
        let (_out_r, io) = pipe_io(false);
        let e = env.engine.clone();
        let id = rec.id.clone();
        let t = std::thread::spawn(move || {
            let opts = ExecOptions {
                args: ["/bin/sleep", "1000"].map(str::to_owned).to_vec(),
                ..Default::default()
            };
            e.exec_with(&id, &opts, &io)
        });
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        assert!(
            wait_until(T, || {
                pids = children_named(&name);
                !pids.is_empty()
            }),
            "{rt}: no runtime exec process"
        );
        assert!(kill_pid_and_wait(pids[0], T));
        let code = t.join().unwrap().unwrap();
        assert_eq!(code, 137, "{rt}: the killed exec's status");
        let ps = env.engine.list(false).unwrap();
        assert_eq!(
            (ps.len(), ps[0].status),
            (1, Status::Running),
            "{rt}: {ps:?}"
        );
        // the engine still execs, stops and removes it, leaving nothing
        let (_o, io) = pipe_io(false);
        let opts = ExecOptions {
            args: ["/bin/true".to_owned()].to_vec(),
            ..Default::default()
        };
        assert_eq!(
            env.engine.exec_with(&rec.id, &opts, &io).unwrap(),
            0,
            "{rt}"
        );
        env.engine.remove(&rec.id, true).unwrap();
        assert_no_leftovers(&env.engine, &rec.id, &b);
    }
}

#[test]
fn a_neighbour_in_the_same_pid_namespace_cannot_reach_the_monitor_or_the_state() {
    let Some(env) = env() else { return };
    for rt in RUNTIMES {
        let Some(bin) = runtime_bin(rt) else { continue };
        let (_a, o) = container(&["/bin/sh", "-c", "sleep 1000"], &bin, true, true);
        let first = env.engine.run_detached(o).unwrap();
        let init = first.init_pid.unwrap();
        let mon = first.monitor_pid.unwrap();
        let mut b = Bundle::new();
        b.namespace_path("pid", Path::new(&format!("/proc/{init}/ns/pid")));
        let state = env.engine.root().to_string_lossy().into_owned();
        b.args(&[
            "/bin/sh",
            "-c",
            "for p in /proc/[0-9]*; do echo \"proc $(cat $p/comm) $(ls $p/fd 2>/dev/null | wc -l)\"; done; \
             kill -9 -1; kill -HUP -1; echo killed; cat /proc/self/mountinfo",
        ]);
        let mut o = opts_for(&b, &bin, false, false);
        o.name = Some("neighbour".to_owned());
        let code = env.engine.run(o).unwrap();
        assert_eq!(code, Some(0), "{rt}");
        let out = log_text(&env.engine, "neighbour");
        assert!(out.contains("killed"), "{rt}: {out}");
        let procs: Vec<&str> = out.lines().filter(|l| l.starts_with("proc ")).collect();
        assert!(
            procs.iter().any(|l| l.starts_with("proc sleep")),
            "{rt}: the neighbour does not share the pid namespace: {procs:?}"
        );
        for l in &procs {
            let comm = l.split_whitespace().nth(1).unwrap_or("");
            assert!(
                ["sh", "sleep", "ls", "cat", "wc"].contains(&comm),
                "{rt}: the neighbour sees {l:?}"
            );
        }
        assert!(
            !out.contains(&state),
            "{rt}: the state root is visible: {out}"
        );
        // the monitor, the first container and the engine's view are all intact
        assert!(
            Path::new(&format!("/proc/{mon}")).exists(),
            "{rt}: monitor killed"
        );
        let i = env.engine.inspect(&first.id).unwrap();
        assert_eq!(i.status, Status::Running, "{rt}: {i:?}");
        assert_eq!(i.monitor_pid, Some(mon));
        let code = env.engine.stop(&first.id, Duration::from_secs(1)).unwrap();
        assert_eq!(code, Some(137), "{rt}: the monitor still records the exit");
        env.engine.prune().unwrap();
    }
}

#[test]
fn monitor_memory_holding_a_pty_container() {
    let Some(env) = env() else { return };
    let Some(bin) = runtime_bin("berth-runtime") else {
        return;
    };
    let (_b, o) = container(&["/bin/sh"], &bin, true, true);
    let rec = env.engine.run_detached(o).unwrap();
    let mon = rec.monitor_pid.unwrap();
    let status = std::fs::read_to_string(format!("/proc/{mon}/status")).unwrap();
    let kib = |k: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let (rss, hwm) = (kib("VmRSS:"), kib("VmHWM:"));
    eprintln!("monitor holding a pty container: VmRSS {rss} KiB, VmHWM {hwm} KiB");
    // the monitor must stay small: a few MiB at most (conmon is ~1.6 MiB)
    assert!(hwm < 8 * 1024, "monitor peak RSS {hwm} KiB");
    env.engine.remove(&rec.id, true).unwrap();
}

/// A runtime that marks `create` and holds it for a while before running the real one.
fn slow_create_runtime(dir: &Path, real: &Path) -> PathBuf {
    let p = dir.join("rt-slow-create");
    berth_test_support::write_file(
        &p,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = create ] && touch {mark} && sleep 1; done\nexec {real} \"$@\"\n",
            mark = dir.join("creating").display(),
            real = real.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

#[test]
fn kill9_of_the_caller_mid_create_and_of_a_pty_monitor_keep_ps_true() {
    let Some(env) = env() else { return };
    let Some(real) = runtime_bin("berth-runtime") else {
        return;
    };
    // 1. the caller killed while the runtime is in `create`: the monitor finishes it alone
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_create_runtime(dir.path(), &real);
    let pty = Pty::open(24, 80);
    let mut b = Bundle::new();
    b.args(&["/bin/sh"]);
    let mut caller = Caller::spawn(&pty, env.engine.root(), &slow, &b, true);
    assert!(wait_until(T, || dir.path().join("creating").exists()));
    caller.0.kill().unwrap();
    caller.0.wait().unwrap();
    let mut st = None;
    assert!(
        wait_until(T, || {
            st = env.engine.list(true).unwrap().first().map(|r| r.status);
            st == Some(Status::Created)
        }),
        "the monitor did not finish the create: {st:?}"
    );
    let r = env.engine.inspect("attached").unwrap();
    let mon = r.monitor_pid.unwrap();
    assert!(Path::new(&format!("/proc/{mon}")).exists(), "monitor gone");
    // and it still runs: start it, attach, and it answers
    env.engine.start("attached").unwrap();
    let (in_r, in_w) = rustix::pipe::pipe().unwrap();
    let (mut out_r, io) = pipe_io(false);
    let io = AttachStdio {
        stdin: Some(in_r),
        ..io
    };
    let e = env.engine.clone();
    let t = std::thread::spawn(move || e.attach("attached", &io));
    std::fs::File::from(in_w)
        .write_all(b"echo alive-$((2*21)); exit 3\n")
        .unwrap();
    assert_eq!(t.join().unwrap().unwrap(), Some(3));
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    assert!(out.contains("alive-42"), "{out:?}");
    env.engine.remove("attached", false).unwrap();
    assert_no_leftovers(&env.engine, &r.id, &b);

    // 2. the monitor of a -t container killed: the pty's master goes with it, the shell
    // hangs up; ps says exited with an unknown code, and rm leaves nothing
    let (b, o) = container(&["/bin/sh"], &real, true, true);
    let r = env.engine.run_detached(o).unwrap();
    assert!(kill_pid_and_wait(r.monitor_pid.unwrap(), T));
    let mut i = None;
    assert!(
        wait_until(T, || {
            i = Some(env.engine.inspect(&r.id).unwrap());
            i.as_ref().is_some_and(|i| i.status == Status::Exited)
        }),
        "{i:?}"
    );
    let i = i.unwrap();
    assert_eq!(i.exit_code, None);
    assert!(i.note.is_some(), "{i:?}");
    assert!(env.engine.list(false).unwrap().is_empty());
    env.engine.remove(&r.id, false).unwrap();
    assert_no_leftovers(&env.engine, &r.id, &b);
}
