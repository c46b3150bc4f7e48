//! Terminals driven from a pty the test owns ([`PtySession`]): what is typed reaches the
//! container's stdin, a window-size change (TIOCSWINSZ on the outer pty, then SIGWINCH to
//! the runtime, as the kernel sends to a terminal's foreground job) reaches the
//! container's own pty, for `run -t` and `exec -t`; and the same as an ordinary user
//! (rootless), with `create --console-socket` + `start` + `exec -t` as containerd and
//! podman drive it.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use berth_test_support::{
    Bundle, COMMAND_TIMEOUT, ConsoleSocket, ContainerGuard, PtySession, read_pty,
};
use serde_json::{Value, json};

use super::namespaces::{assert_all_ttys, holder, json_on_screen};
use super::rootless::{Rootless, bundle_args, text};
use super::runtime_test;

/// Says `ready`, echoes one line back as `got:<line>`, then prints `size:<rows> <cols>`
/// (busybox `stty size`) for every empty line, and exits 3 on `quit`.
const TALKER: &str = r#"echo ready; read line; echo "got:$line"; while read x; do [ "$x" = quit ] && exit 3; echo "size:$(stty size)"; done"#;

/// The outer terminal's size when the runtime starts.
const START_SIZE: (u16, u16) = (25, 81);
/// The size it changes to.
const NEW_SIZE: (u16, u16) = (37, 101);

/// How long one empty line waits for its `size:` answer before the next is typed.
const ANSWER: Duration = Duration::from_secs(1);

/// How long [`sees_size`] keeps trying when the runtime should resize, and when a peer
/// known not to is given its chance.
const SIZE_EXPECTED: Duration = Duration::from_secs(30);
const SIZE_NOT_EXPECTED: Duration = Duration::from_secs(3);

/// Type empty lines until the container reports `rows cols` (the runtime may resize its
/// pty concurrently with copying input: runc does both in separate goroutines), for up
/// to `patience`; whether it did.
fn sees_size(s: &mut PtySession, (rows, cols): (u16, u16), patience: Duration) -> bool {
    let want = format!("size:{rows} {cols}");
    let deadline = std::time::Instant::now() + patience;
    while std::time::Instant::now() < deadline {
        let mark = s.screen().len();
        s.type_text("\n");
        if s.wait_for(&want, mark, ANSWER) {
            return true;
        }
    }
    false
}

/// The last `size:` the container printed (empty when `stty size` failed).
fn last_size(s: &PtySession) -> String {
    let screen = s.screen();
    screen
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("size:"))
        .unwrap_or("none")
        .to_owned()
}

/// What a runtime is expected to do with the container's pty size.
#[derive(Clone, Copy, Debug)]
struct Sizing {
    /// The container's pty starts at the outer terminal's size.
    initial: bool,
    /// SIGWINCH to the runtime resizes the container's pty to the outer size.
    follows: bool,
}

/// runc and berth-runtime do both (runc: `tty.resize()` once, then on every SIGWINCH in
/// `signals.go`'s `forward`).
const RESIZES: Sizing = Sizing {
    initial: true,
    follows: true,
};

/// Drive [`TALKER`] on `s`: the typed line comes back, the pty's size is as `sizing`
/// says, `quit` ends it with 3. What a runtime does not do is asserted not to happen
/// (the container's last answer is returned for the caller's peer assertions).
fn talk(s: &mut PtySession, sizing: Sizing) -> String {
    assert!(
        s.wait_for("ready", 0, COMMAND_TIMEOUT),
        "no prompt: {:?}",
        s.screen()
    );
    s.type_text("hello pty\n");
    assert!(
        s.wait_for("got:hello pty", 0, COMMAND_TIMEOUT),
        "typed text did not reach the container's stdin: {:?}",
        s.screen()
    );
    let patience = |expected| {
        if expected {
            SIZE_EXPECTED
        } else {
            SIZE_NOT_EXPECTED
        }
    };
    assert_eq!(
        sees_size(s, START_SIZE, patience(sizing.initial)),
        sizing.initial,
        "the container's pty at the outer size {START_SIZE:?} (last: {}): {:?}",
        last_size(s),
        s.screen()
    );
    s.resize(NEW_SIZE.0, NEW_SIZE.1);
    assert_eq!(
        sees_size(s, NEW_SIZE, patience(sizing.follows)),
        sizing.follows,
        "SIGWINCH resizing the container's pty to {NEW_SIZE:?} (last: {}): {:?}",
        last_size(s),
        s.screen()
    );
    let last = last_size(s);
    s.type_text("quit\n");
    let status = s.wait(COMMAND_TIMEOUT);
    assert_eq!(
        status.and_then(|st| st.code()),
        Some(3),
        "exit status {status:?}: {:?}",
        s.screen()
    );
    last
}

/// `run -t`'s sizing: crun 1.8.1 (peer difference) neither sizes the pty it makes for a
/// foreground `run` (it stays 0×0, and busybox `stty size` fails on it) nor handles
/// SIGWINCH.
fn run_sizing(rt: &berth_test_support::Runtime) -> Sizing {
    if rt.name() == "crun" {
        Sizing {
            initial: false,
            follows: false,
        }
    } else {
        RESIZES
    }
}

/// `exec -t`'s sizing: crun 1.8.1 (peer difference) starts the exec'd pty at the outer
/// size but does not follow SIGWINCH.
fn exec_sizing(rt: &berth_test_support::Runtime) -> Sizing {
    if rt.name() == "crun" {
        Sizing {
            initial: true,
            follows: false,
        }
    } else {
        RESIZES
    }
}

/// The peers' differences, pinned: what the container printed last for its size.
fn assert_peer_last_size(rt: &berth_test_support::Runtime, sizing: Sizing, last: &str) {
    if rt.name() != "crun" {
        return;
    }
    let want = if sizing.initial {
        format!("{} {}", START_SIZE.0, START_SIZE.1)
    } else {
        String::new()
    };
    assert_eq!(
        last, want,
        "crun's pty size changed: update the peer difference"
    );
}

runtime_test! {
    /// `run` with a terminal in the foreground on the test's pty: typed text reaches the
    /// container's stdin, its pty starts at the outer size and follows a SIGWINCH, the
    /// exit code is `run`'s.
    fn run_with_a_terminal_forwards_stdin_and_window_size(rt) {
        let mut b = Bundle::new();
        b.terminal(true).args(&["/bin/sh", "-c", TALKER]);
        b.write_config();
        let _g = ContainerGuard::adopt(rt, &b);
        let mut cmd = rt.command();
        cmd.args(bundle_args("run", &b));
        let mut s = PtySession::spawn(cmd, START_SIZE.0, START_SIZE.1);
        let last = talk(&mut s, run_sizing(rt));
        assert_peer_last_size(rt, run_sizing(rt), &last);
    }
}

runtime_test! {
    /// `exec -t` in the foreground on the test's pty: the same as `run`.
    fn exec_with_a_terminal_forwards_stdin_and_window_size(rt) {
        let mut b = Bundle::new();
        let c = holder(rt, &mut b);
        let mut cmd = rt.command();
        cmd.args(["exec", "-t", c.id(), "/bin/sh", "-c", TALKER]);
        let mut s = PtySession::spawn(cmd, START_SIZE.0, START_SIZE.1);
        let last = talk(&mut s, exec_sizing(rt));
        assert_peer_last_size(rt, exec_sizing(rt), &last);
    }
}

/// A rootless bundle running `/bin/sh -c <script>` with a terminal.
fn rootless_tty_bundle(rl: &Rootless<'_>, script: &str) -> Bundle {
    rl.bundle(&[], |c| {
        c["process"]["args"] = json!(["/bin/sh", "-c", script]);
        c["process"]["terminal"] = json!(true);
    })
}

runtime_test! {
    /// Rootless `run` with a terminal in the foreground on the test's pty: a tty inside,
    /// typed text in, the window size followed, the exit code out, nothing left.
    fn rootless_run_with_a_terminal(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let script = format!("/probe tty; {TALKER}");
        let b = rootless_tty_bundle(&rl, &script);
        let _g = rl.guard(b.id());
        let mut s = PtySession::spawn(rl.command(&bundle_args("run", &b), true), START_SIZE.0, START_SIZE.1);
        let last = talk(&mut s, run_sizing(rt));
        assert_peer_last_size(rt, run_sizing(rt), &last);
        let screen = s.screen();
        let probe_part = &screen[..screen.find("ready").unwrap_or(screen.len())];
        assert_all_ttys(&json_on_screen(probe_part.as_bytes()));
        let out = rl.run(&["list", "--format", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let left: Vec<&Value> = listed.as_array().into_iter().flatten()
            .filter(|c| c["id"] == b.id()).collect();
        assert!(left.is_empty(), "`run` left the container behind: {listed}");
    }
}

/// The console socket's directory and socket handed to the user, so that the runtime
/// running as the user can connect to it.
fn console_for(rl: &Rootless<'_>) -> ConsoleSocket {
    let console = ConsoleSocket::new();
    let dir = console.path().parent().expect("the socket's directory");
    for p in [dir, console.path()] {
        std::os::unix::fs::chown(p, Some(rl.uid), Some(rl.gid)).expect("chown the console socket");
    }
    console
}

/// Type `text` into a pty master the test holds.
fn type_into(master: &OwnedFd, text: &str) {
    use std::io::Write;
    let mut f = std::fs::File::from(master.try_clone().expect("dup the master"));
    f.write_all(text.as_bytes())
        .expect("write to the pty master");
}

/// `state <id>`'s status, as the user.
fn rootless_status(rl: &Rootless<'_>, id: &str) -> String {
    let out = rl.run(&["state", id]);
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("no state: {}", text(&out)))
}

runtime_test! {
    /// Rootless `create --console-socket` + `start`: the pty master arrives, the process
    /// sees a terminal and reads what is typed into the master; `exec -t` in the
    /// foreground on the test's pty sees a terminal and returns its exit code.
    fn rootless_console_socket_and_exec_with_a_terminal(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rootless_tty_bundle(&rl, r#"/probe tty; read x; echo "bye:$x""#);
        let _g = rl.guard(b.id());
        let console = console_for(&rl);
        let sock = console.path().as_os_str();
        // options before the bundle and id: crun takes none after the id
        let mut args = vec![OsStr::new("create"), OsStr::new("--console-socket"), sock];
        args.extend(&bundle_args("create", &b)[1..]);
        let out = rl.run(&args);
        assert!(out.status.success(), "{}", text(&out));
        let master = console.master(COMMAND_TIMEOUT);
        let out = rl.run(&["start", b.id()]);
        assert!(out.status.success(), "{}", text(&out));

        let exec = rl.command(&["exec", "-t", b.id(), "/bin/sh", "-c", "/probe tty; exit 5"], true);
        let mut s = PtySession::spawn(exec, START_SIZE.0, START_SIZE.1);
        let status = s.wait(COMMAND_TIMEOUT);
        assert_eq!(status.and_then(|st| st.code()), Some(5), "exec -t: {status:?}: {:?}", s.screen());
        assert_all_ttys(&json_on_screen(s.screen().as_bytes()));

        type_into(&master, "seen\n");
        let screen = read_pty(master, Duration::from_secs(30));
        let shown = String::from_utf8_lossy(&screen).replace('\r', "");
        assert!(shown.contains("bye:seen"), "typed text did not reach the process: {shown:?}");
        assert_all_ttys(&json_on_screen(shown.split("bye:").next().unwrap_or("").as_bytes()));
        assert!(
            berth_test_support::wait_until(COMMAND_TIMEOUT, || rootless_status(&rl, b.id()) == "stopped"),
            "the container did not stop: {}",
            rootless_status(&rl, b.id())
        );
    }
}
