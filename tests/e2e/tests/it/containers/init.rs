//! `berth run --init`: a static tini as the container's PID 1 (docker's `--init`), under each
//! runtime, with the default user namespace and with `--userns=host`.

use std::time::{Duration, Instant};

use berth_test_support::{requires_root, requires_tool, wait_until};

use super::{Berth, IMAGE, runtimes};

/// The zombies a running container holds: the `/proc/PID/status` files saying `Z`.
fn zombies(b: &Berth, id: &str) -> String {
    let out = b.run(&[
        "exec",
        id,
        "sh",
        "-c",
        "grep -l '^State:[[:space:]]*Z' /proc/[0-9]*/status; true",
    ]);
    assert!(out.status.success(), "exec into {id}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An orphan that exits: `sh` backgrounds a `sleep 0` and exits without waiting, so the
/// finished `sleep` is reparented to the container's PID 1, which alone can reap it.
fn make_orphan_zombie(b: &Berth, id: &str) {
    b.ok(&["exec", id, "sh", "-c", "sleep 0 & exit 0"]);
}

/// `berth stop ID` (timeout `t` seconds): how long it took and the exit code recorded.
fn stop(b: &Berth, id: &str, t: &str) -> (Duration, i64) {
    let start = Instant::now();
    b.ok(&["stop", "-t", t, id]);
    let took = start.elapsed();
    let code = b.ok(&["wait", id]);
    (took, code.trim().parse().unwrap_or(-1))
}

/// PID 1 is the init and the command its child; the command's exit code passes through;
/// `berth stop` (SIGTERM) ends a `sleep` that is not PID 1 at once (143, as docker); an
/// orphaned zombie is reaped. The same runs without `--init` show each check can fail:
/// PID 1 is the command, the zombie stays, and `stop` waits for its timeout.
#[test]
fn run_init_is_pid_1_forwards_stop_reaps_orphans_and_passes_exit_codes() {
    requires_root!();
    requires_tool!("runc", "crun", "tini-static");
    let b = Berth::new();
    let script = "tr '\\0' ' ' </proc/1/cmdline; echo; echo ppid=$PPID; exit 7";
    for rt in runtimes() {
        for userns in [&[][..], &["--userns=host"][..]] {
            let what = format!("{rt} {userns:?}");
            let mut flags = vec!["--init"];
            flags.extend_from_slice(userns);
            let (code, out, err) = b.run_rm(rt, &flags, &["sh", "-c", script]);
            assert_eq!(code, 7, "{what}: exit code passes through: {out} {err}");
            assert_eq!(
                out,
                format!("/sbin/docker-init -- sh -c {script} \nppid=1\n"),
                "{what}: PID 1 is the init, the command its child ({err})"
            );

            let mut args = vec!["run", "-d", "--runtime", rt];
            args.extend_from_slice(&flags);
            args.extend_from_slice(&[IMAGE, "sleep", "100"]);
            let id = b.ok(&args);
            let id = id.trim();
            make_orphan_zombie(&b, id);
            let mut left = String::new();
            assert!(
                wait_until(Duration::from_secs(10), || {
                    left = zombies(&b, id);
                    left.is_empty()
                }),
                "{what}: the init reaps orphaned zombies; left: {left}"
            );
            let (took, code) = stop(&b, id, "30");
            assert!(
                took < Duration::from_secs(10),
                "{what}: stop ended the sleep through the init in {took:?}"
            );
            assert_eq!(code, 143, "{what}: the sleep died of the forwarded SIGTERM");
            b.ok(&["rm", id]);
        }
    }

    // without --init: PID 1 is the command, which neither reaps nor dies of SIGTERM
    let (code, out, _) = b.run_rm("berth-runtime", &[], &["sh", "-c", script]);
    assert_eq!((code, out.starts_with("sh -c")), (7, true), "{out}");
    let id = b.ok(&["run", "-d", IMAGE, "sleep", "100"]);
    let id = id.trim();
    make_orphan_zombie(&b, id);
    assert!(
        wait_until(Duration::from_secs(10), || !zombies(&b, id).is_empty()),
        "the orphan stays a zombie under a PID 1 that does not reap"
    );
    let (took, code) = stop(&b, id, "2");
    assert!(
        took >= Duration::from_secs(2),
        "a sleep as PID 1 ignores SIGTERM: stop waited {took:?}"
    );
    assert_eq!(code, 137, "killed after the timeout");
    b.ok(&["rm", id]);
    b.assert_clean();
}

/// `--init-path` naming no executable, or `--init` with no init to be found, fails with 125
/// and an error naming `--init-path`, leaving nothing behind.
#[test]
fn run_init_without_an_init_fails_naming_init_path() {
    requires_root!();
    let b = Berth::new();
    let out = b.run(&[
        "run",
        "--rm",
        "--init-path",
        "/nonexistent/init",
        IMAGE,
        "true",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("--init-path /nonexistent/init"), "{err}");

    // a search path without an init (the fixed sbin and libexec dirs are still searched)
    let empty = tempfile::tempdir().unwrap();
    let fixed = ["/usr/local/sbin", "/usr/sbin", "/sbin"]
        .iter()
        .chain(["/usr/libexec/docker", "/usr/libexec/podman"].iter())
        .flat_map(|d| ["docker-init", "tini-static", "catatonit"].map(|n| format!("{d}/{n}")))
        .find(|p| std::path::Path::new(p).exists());
    let mut cmd = b.cmd(&["run", "--rm", "--init", IMAGE, "true"]);
    cmd.env("PATH", empty.path());
    let out = berth_test_support::run_with_timeout(&mut cmd, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    match fixed {
        None => {
            assert_eq!(out.status.code(), Some(125), "{err}");
            assert!(err.contains("--init-path PATH"), "{err}");
        }
        Some(p) => assert!(out.status.success(), "{p} is found: {err}"),
    }
    b.assert_clean();
}
