//! Detaching, as docker does: `berth exec -d` returns at once while its process runs on, and
//! `--detach-keys` (docker's default ctrl-p,ctrl-q and its syntax) typed on a real terminal
//! leave `run -it`, `attach` and `start -a -i` with status 0 and the container running.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_test_support::{PtySession, requires_root, requires_tool, wait_until};

use super::{Berth, IMAGE, runtimes};

/// `exec -d` returns before its process has done its work (it sleeps 5 s first), prints
/// nothing (the process's output goes nowhere, not even to the log), and the process runs on
/// to write its file. Without `-d` the same exec would take the 5 s and print.
#[test]
fn exec_d_returns_at_once_and_its_process_runs_on() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        let id = b.ok(&["run", "-d", "--runtime", rt, IMAGE, "sleep", "100"]);
        let id = id.trim();
        let start = Instant::now();
        let out = b.run(&[
            "exec",
            "-d",
            id,
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; sleep 5; echo done > /tmp/marker",
        ]);
        let took = start.elapsed();
        assert!(out.status.success(), "{rt}: exec -d: {out:?}");
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{rt}: exec -d prints nothing: {out:?}"
        );
        assert!(took < Duration::from_secs(4), "{rt}: exec -d took {took:?}");
        let marker = || b.run(&["exec", id, "cat", "/tmp/marker"]);
        assert!(
            !marker().status.success(),
            "{rt}: exec -d returned before its process finished"
        );
        assert!(
            wait_until(Duration::from_secs(30), || marker().status.success()),
            "{rt}: the detached process ran on"
        );
        let logs = b.ok(&["logs", id]);
        assert!(
            !logs.contains("to-std"),
            "{rt}: output went nowhere: {logs}"
        );
        b.ok(&["rm", "-f", id]);
    }
    b.assert_clean();
}

/// `berth ARGS…` on a pty of its own (24×80).
fn on_pty(b: &Berth, args: &[&str]) -> PtySession {
    let cmd: Command = b.cmd(args);
    PtySession::spawn(cmd, 24, 80)
}

/// Type a command into the container's shell and wait for its computed output (not the
/// echo of what was typed): the relay is running, the terminal raw.
fn shell_answers(s: &mut PtySession, what: &str, n: u32) {
    let skip = s.screen().len();
    s.type_text(&format!("echo {what}-$(({n}+1))\n"));
    let want = format!("{what}-{}", n + 1);
    assert!(
        s.wait_for(&want, skip, Duration::from_secs(30)),
        "no {want} on the screen: {}",
        s.screen()
    );
}

/// The detach keys end the command with status 0 and the container runs on.
#[track_caller]
fn detaches(b: &Berth, s: &mut PtySession, keys: &str, id: &str, what: &str) {
    s.type_text(keys);
    let st = s.wait(Duration::from_secs(30));
    assert_eq!(
        st.and_then(|st| st.code()),
        Some(0),
        "{what}: the detach keys end the command with 0: {}",
        s.screen()
    );
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["container", "inspect", id])).unwrap();
    assert_eq!(
        v[0]["State"]["Status"], "running",
        "{what}: the container runs on"
    );
}

/// `run -it` detached with ctrl-p,ctrl-q; `attach --detach-keys ctrl-a,x` to the same shell
/// (its stdin still open: it answers) and detached again; `start -a -i --detach-keys ctrl-@`
/// of a created `-it` container. A lone ctrl-p is passed on to the shell, not a detach.
#[test]
fn detach_keys_leave_run_it_attach_and_start_ai_running() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        let name = format!("detach-{rt}");
        let mut s = on_pty(
            &b,
            &["run", "-it", "--name", &name, "--runtime", rt, IMAGE, "sh"],
        );
        shell_answers(&mut s, "ready", 1);
        // ctrl-p then something else: both reach the shell, nothing detaches
        s.type_text("\x10");
        shell_answers(&mut s, "still", 2);
        detaches(&b, &mut s, "\x10\x11", &name, &format!("{rt}: run -it"));

        let mut s = on_pty(&b, &["attach", "--detach-keys", "ctrl-a,x", &name]);
        shell_answers(&mut s, "again", 3);
        detaches(&b, &mut s, "\x01x", &name, &format!("{rt}: attach"));
        b.ok(&["rm", "-f", &name]);

        let id = b.ok(&["create", "-it", "--runtime", rt, IMAGE, "sh"]);
        let id = id.trim();
        let mut s = on_pty(&b, &["start", "-a", "-i", "--detach-keys", "ctrl-@", id]);
        shell_answers(&mut s, "started", 4);
        detaches(&b, &mut s, "\0", id, &format!("{rt}: start -a -i"));
        b.ok(&["rm", "-f", id]);
    }
    b.assert_clean();
}
