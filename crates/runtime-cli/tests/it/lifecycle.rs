//! Lifecycle: create → created → start → running → kill → stopped → delete, `run`, exec,
//! and cleanup after kills and failures.

use std::time::Duration;

use crate::harness::*;

#[test]
fn create_start_kill_delete_walks_every_state() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.create("life", &b);
    let st = rt.state("life");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "life");
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    // the init waits on the exec fifo, still the runtime (a protected copy)
    assert_protected_exe(pid);
    let cgroups = cgroup_dirs(pid);
    assert!(!cgroups.is_empty(), "the init is in no container cgroup");

    let list = rt.ok(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["id"], "life");
    assert!(rt.ok(&["list"]).starts_with("ID "));

    rt.ok(&["start", "life"]);
    assert_eq!(rt.status("life"), "running");
    wait_for_exec(pid, "sleep");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, std::path::Path::new("/bin/busybox"));
    let out = rt.run(&["start", "life"]);
    assert!(
        !out.status.success(),
        "a running container cannot be started again"
    );
    let out = rt.run(&["delete", "life"]);
    assert!(
        !out.status.success(),
        "a running container cannot be deleted without --force"
    );

    rt.ok(&["kill", "life", "KILL"]);
    rt.wait_status("life", "stopped");
    assert_eq!(rt.state("life")["pid"], 0);
    rt.ok(&["delete", "life"]);
    assert_nothing_left(&rt, "life", &b, Some(pid), &cgroups);
    let out = rt.run(&["state", "life"]);
    assert!(!out.status.success());
}

#[test]
fn run_exits_with_the_containers_status_and_cleans_up() {
    let b = Bundle::new(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let rt = Runtime::new();
    rt.track("r7");
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), "r7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert!(
        !rt.state_dir("r7").exists(),
        "run without --keep deletes the container"
    );

    // killed by a signal: 128 + n
    let b = Bundle::new(&["sleep", "300"]);
    rt.track("r9");
    let mut cmd = rt.cmd();
    cmd.args(["run", "--bundle", b.path().to_str().unwrap(), "r9"]);
    let dir = tempfile::tempdir().unwrap();
    cmd.stdout(std::fs::File::create_new(dir.path().join("o")).unwrap());
    cmd.stderr(std::fs::File::create_new(dir.path().join("e")).unwrap());
    let mut child = cmd.spawn().unwrap();
    wait_until("r9 to run", Duration::from_secs(10), || {
        let out = rt.run(&["state", "r9"]);
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (st["status"] == "running").then_some(())
    });
    rt.ok(&["kill", "r9", "KILL"]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    assert!(!rt.state_dir("r9").exists());

    // --keep leaves a stopped container
    let b = Bundle::new(&["true"]);
    rt.track("rk");
    let out = rt.run(&[
        "run",
        "--keep",
        "--bundle",
        b.path().to_str().unwrap(),
        "rk",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(rt.status("rk"), "stopped");
    rt.ok(&["delete", "rk"]);
    assert!(!rt.state_dir("rk").exists());
}

#[test]
fn run_detach_and_pid_file() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.track("det");
    let pidfile = b.path().join("pid");
    rt.ok(&[
        "run",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        "det",
    ]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_eq!(rt.state("det")["pid"].as_i64().unwrap() as i32, pid);
    assert_eq!(rt.status("det"), "running");
    rt.ok(&["delete", "--force", "det"]);
    assert_nothing_left(&rt, "det", &b, Some(pid), &[]);
}

#[test]
fn isolation_of_pid_uts_and_mount_namespaces() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; hostname; cat /proc/self/mountinfo; ls /proc | grep -c '^[0-9]'",
    ]);
    let rt = Runtime::new();
    rt.track("iso");
    let out = rt.ok(&["run", "--bundle", b.path().to_str().unwrap(), "iso"]);
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap().starts_with("sh\0-c"),
        "pid 1 is the container's sh"
    );
    assert_eq!(lines.next().unwrap(), "berth-test");
    let rest: Vec<&str> = lines.collect();
    let nprocs: usize = rest.last().unwrap().trim().parse().unwrap();
    assert!(
        nprocs <= 3,
        "the container sees only its own processes, saw {nprocs}"
    );
    let mounts = rest[..rest.len() - 1].join("\n");
    assert!(
        mounts.lines().any(|l| l.split(' ').nth(4) == Some("/")),
        "the rootfs is /: {mounts}"
    );
    for host in ["/work", "/run/berth-runtime", "/tmp/", " /home"] {
        let leaked = mounts
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.starts_with(host)))
            .count();
        assert_eq!(
            leaked, 0,
            "host mount {host} visible in the container: {mounts}"
        );
    }
}

#[test]
fn exec_joins_the_running_container() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.create("ex", &b);
    rt.ok(&["start", "ex"]);
    let out = rt.ok(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; hostname; id -u",
    ]);
    assert_eq!(out, "sleep\x00300\x00\nberth-test\n0\n");
    let out = rt.run(&["exec", "ex", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let out = rt.ok(&[
        "exec",
        "--user",
        "1000:1000",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "id -u; id -g; echo $FOO; pwd",
    ]);
    assert_eq!(out, "1000\n1000\nbar\n/tmp\n");
    // the exec'd process is in the container's cgroup while it runs
    let pidfile = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "ex",
        "sleep",
        "300",
    ]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let ps: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", "ex"])).unwrap();
    assert!(ps.contains(&pid), "{ps:?} lacks exec pid {pid}");
    let table = rt.ok(&["ps", "ex"]);
    assert!(
        table.starts_with("UID") && table.contains("sleep 300"),
        "{table}"
    );
    let out = rt.run(&["exec", "ex", "/nonexistent"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent"));
}

#[test]
fn delete_after_the_container_was_killed_leaves_nothing() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.create("k9", &b);
    rt.ok(&["start", "k9"]);
    let pid = rt.state("k9")["pid"].as_i64().unwrap() as i32;
    let cgroups = cgroup_dirs(pid);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    rt.wait_status("k9", "stopped");
    rt.ok(&["delete", "k9"]);
    assert_nothing_left(&rt, "k9", &b, Some(pid), &cgroups);

    // a created (never started) container is deleted without --force, its init killed
    rt.create("k10", &b);
    let pid = rt.state("k10")["pid"].as_i64().unwrap() as i32;
    let cgroups = cgroup_dirs(pid);
    rt.ok(&["delete", "k10"]);
    assert_nothing_left(&rt, "k10", &b, Some(pid), &cgroups);

    // a state directory left without state.json by an interrupted create
    std::fs::create_dir_all(rt.state_dir("half")).unwrap();
    rt.ok(&["delete", "half"]);
    assert!(!rt.state_dir("half").exists());
}

#[test]
fn failed_create_leaves_nothing_behind() {
    let rt = Runtime::new();
    // each case: a broken bundle and a word the error must contain
    type Breaker = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "noexec",
            Box::new(|b: &mut Bundle| {
                b.config["process"]["args"] = serde_json::json!(["/nonexistent"])
            }),
            "nonexistent",
        ),
        (
            "badjson",
            Box::new(|b: &mut Bundle| {
                berth_fsutil::atomic_write(b.path().join("config.json"), b"{not json").unwrap()
            }),
            "config.json",
        ),
        (
            "norootfs",
            Box::new(|b: &mut Bundle| std::fs::remove_dir_all(b.rootfs()).unwrap()),
            "rootfs",
        ),
        (
            "badns",
            Box::new(|b: &mut Bundle| {
                b.config["linux"]["namespaces"] =
                    serde_json::json!([{"type": "mount"}, {"type": "bogus"}])
            }),
            "bogus",
        ),
        (
            "hookfail",
            Box::new(|b: &mut Bundle| {
                b.config["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]})
            }),
            "createRuntime",
        ),
        (
            "hookhang",
            Box::new(
                |b: &mut Bundle| b.config["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}]}),
            ),
            "timeout",
        ),
        (
            "badmount",
            Box::new(|b: &mut Bundle| {
                b.config["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/x", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}))
            }),
            "nonexistent-src",
        ),
        (
            "badcwd",
            Box::new(|b: &mut Bundle| b.config["process"]["cwd"] = "/nonexistent-dir".into()),
            "nonexistent-dir",
        ),
        (
            "apparmor",
            Box::new(|b: &mut Bundle| {
                b.config["process"]["apparmorProfile"] = "docker-default".into()
            }),
            "AppArmor",
        ),
    ];
    for (id, breakit, word) in cases {
        let mut b = Bundle::new(&["true"]);
        let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        breakit(&mut b);
        if id != "badjson" && id != "norootfs" {
            b.save();
        }
        rt.track(id);
        let t = std::time::Instant::now();
        let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        assert!(!out.status.success(), "{id}: create should fail");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{id}: create took too long"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(word),
            "{id}: error should mention {word:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{id}: one error line: {err}");
        assert_nothing_left(&rt, id, &b, None, &cgroup_named(id));
        assert_eq!(
            std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
            mounts_before,
            "{id}: mounts changed"
        );
    }
}

#[test]
fn hooks_receive_the_state_in_order() {
    let mut b = Bundle::new(&["true"]);
    let log = b.path().join("hooks.log");
    let hook = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("(echo {name}; cat; echo) >> {}", log.display())]});
    b.config["hooks"] = serde_json::json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    b.save();
    let rt = Runtime::new();
    rt.create("hk", &b);
    let pid = rt.state("hk")["pid"].as_i64().unwrap();
    rt.ok(&["start", "hk"]);
    rt.wait_status("hk", "stopped");
    rt.ok(&["delete", "hk"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().step_by(2).copied().collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    for (i, name) in names.iter().enumerate() {
        let st: serde_json::Value = serde_json::from_str(lines[2 * i + 1]).unwrap();
        assert_eq!(st["id"], "hk", "{name}");
        assert_eq!(st["bundle"], b.path().to_str().unwrap(), "{name}");
        let want = match *name {
            "poststart" => "running",
            "poststop" => "stopped",
            _ => "creating",
        };
        assert_eq!(st["status"], want, "{name}");
        if *name != "poststop" {
            assert_eq!(st["pid"].as_i64(), Some(pid), "{name}");
        }
    }
}

#[test]
fn pause_and_resume() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.create("pz", &b);
    rt.ok(&["start", "pz"]);
    rt.ok(&["pause", "pz"]);
    assert_eq!(rt.status("pz"), "paused");
    let pid = rt.state("pz")["pid"].as_i64().unwrap() as i32;
    wait_until("the init to be frozen", Duration::from_secs(5), || {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = st.rsplit(')').next()?.trim_start().chars().next()?;
        (state == 'D' || state == 'S').then_some(())
    });
    assert!(
        !rt.run(&["pause", "pz"]).status.success(),
        "pausing twice fails"
    );
    rt.ok(&["resume", "pz"]);
    assert_eq!(rt.status("pz"), "running");
    rt.ok(&["delete", "--force", "pz"]);
}

/// Regression: with `process.terminal` and no console socket, `run` copies the terminal in
/// the foreground; the container's process runs in a session of its own, so waiting only
/// for this process group (`wait4(0)`) never saw it exit and `run` hung.
#[test]
fn run_with_a_terminal_in_the_foreground_returns_the_exit_code() {
    let mut b = Bundle::new(&["sh", "-c", "tty; exit 5"]);
    b.config["process"]["terminal"] = true.into();
    b.save();
    let rt = Runtime::new();
    rt.track("tty5");
    let line = format!(
        "{BIN} --root {} run --bundle {} tty5",
        rt.root().display(),
        b.path().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let screen = dir.path().join("screen");
    let mut child = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create_new(&screen).unwrap())
        .spawn()
        .unwrap();
    // keep the terminal's input open: script(1) hangs up on EOF, which would end `run` too
    let keyboard = child.stdin.take();
    let status = wait_until(
        "run with a terminal to return",
        Duration::from_secs(30),
        || child.try_wait().unwrap(),
    );
    drop(keyboard);
    let shown = std::fs::read_to_string(&screen).unwrap();
    assert_eq!(status.code(), Some(5), "{shown}");
    assert!(shown.contains("/dev/pts/"), "no terminal inside: {shown}");
    assert!(!rt.state_dir("tty5").exists(), "run deletes the container");
}

/// State files are written atomically but not fsynced (as runc's and crun's), so a crash can
/// leave one empty. `delete --force` still removes such a container: the init still waiting
/// on the exec fifo is found by the fifo it holds and killed, and the directory goes, with a
/// warning. Without `--force` the parse error is reported.
#[test]
fn delete_force_removes_a_container_whose_state_is_unreadable() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.create("torn", &b);
    let pid = rt.state("torn")["pid"].as_i64().unwrap() as i32;
    let cgroups = cgroup_dirs(pid);
    assert!(!cgroups.is_empty());
    berth_fsutil::atomic_write(rt.state_dir("torn").join("state.json"), b"").unwrap();
    let out = rt.run(&["delete", "torn"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to parse container state"));
    let out = rt.run(&["delete", "--force", "torn"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unreadable state") && err.contains(&pid.to_string()),
        "{err}"
    );
    assert_nothing_left(&rt, "torn", &b, None, &cgroups);
    wait_until("the waiting init to die", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z"))
            .then_some(())
    });
}
