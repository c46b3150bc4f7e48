//! `berth run` and the container commands, typed as a user types them, against real
//! containers (as root) of a busybox image imported with `berth import`, with each of the
//! three runtimes (`--runtime berth-runtime|runc|crun`) giving the same results.
//!
//! Each test owns a data directory (`XDG_DATA_HOME`); its guard removes every container
//! it left (`rm -f`) and unmounts anything still mounted under it, panics included.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_test_support::{
    ChildGuard, berth_bin, requires_root, requires_tool, run_under_strace, run_with_timeout,
    wait_until, write_file,
};
use serde_json::Value;

mod detach;
mod init;
mod volumes;

const IMAGE: &str = "localhost/busybox:run";
const RUNTIMES: [&str; 3] = ["berth-runtime", "runc", "crun"];
const APPLETS: [&str; 24] = [
    "sh", "echo", "cat", "sleep", "id", "hostname", "ls", "true", "pwd", "env", "touch", "mkdir",
    "dd", "head", "grep", "wc", "kill", "cut", "tail", "tr", "yes", "mount", "tty", "stty",
];

/// Whether `run`/`create` flags choose a network (`--network X`, `--network=X`, `--net …`).
fn names_a_network(flags: &[&str]) -> bool {
    flags.iter().any(|f| {
        ["--network", "--net"]
            .iter()
            .any(|n| *f == *n || f.strip_prefix(n).is_some_and(|r| r.starts_with('=')))
    })
}

/// A data directory with the busybox image imported, and the `berth` that uses it; its
/// containers' cgroups are made under a cgroup parent of its own, so tests running at once
/// can each check that theirs are gone.
struct Berth {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Berth {
    fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-containers-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "home/app", "proc", "sys", "dev"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        write_file(
            root.join("etc/passwd"),
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        );
        write_file(
            root.join("etc/group"),
            b"root:x:0:\napps:x:1001:app\nextra:x:2000:app\nnogroup:x:65534:\n",
        );
        // a file that is not executable: running it is "cannot invoke" (126)
        write_file(root.join("etc/motd"), b"not a program\n");
        let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
        let b = Berth {
            dir,
            cgroup_parent: format!("/{name}"),
        };
        b.ok(&["import", root.to_str().unwrap(), IMAGE]);
        b
    }

    /// The data directory berth uses (`$XDG_DATA_HOME/berth`).
    fn data(&self) -> PathBuf {
        self.dir.path().join("berth")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with(&berth_bin(), args)
    }

    /// [`Berth::cmd`] of another `berth` binary (a copy somewhere else).
    fn cmd_with(&self, berth: &std::path::Path, args: &[&str]) -> Command {
        let mut c = Command::new(berth);
        // `run` and `create` (also as `container run|create`) get the cgroup parent
        let verb = match args {
            ["container", v, ..] => 2 * usize::from(matches!(*v, "run" | "create")),
            [v, ..] => usize::from(matches!(*v, "run" | "create")),
            [] => 0,
        };
        c.args(&args[..verb]);
        if verb > 0 {
            c.args(["--cgroup-parent", &self.cgroup_parent]);
            // no network of their own unless a test asks: `run` joins the bridge network
            // by default, which these tests (on the host's network) must not make
            // (tests/e2e/tests/it/network.rs runs the default in a namespace of its own)
            if !names_a_network(&args[verb..]) {
                c.args(["--network", "none"]);
            }
        }
        c.args(&args[verb..])
            .env("XDG_DATA_HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.cmd(args), Duration::from_secs(120))
    }

    /// `berth ARGS…`, which must succeed; its stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `berth run --rm --runtime RT FLAGS… IMAGE CMD…`: (status, stdout, stderr).
    fn run_rm(&self, rt: &str, flags: &[&str], cmd: &[&str]) -> (i32, String, String) {
        let mut args = vec!["run", "--rm", "--runtime", rt];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `run --rm` that must exit 0; its stdout.
    #[track_caller]
    fn sh(&self, rt: &str, flags: &[&str], script: &str) -> String {
        let (code, out, err) = self.run_rm(rt, flags, &["sh", "-c", script]);
        assert_eq!(
            code, 0,
            "{rt}: run {flags:?} sh -c {script:?}: stdout:\n{out}\nstderr:\n{err}"
        );
        out
    }

    fn ps_json(&self) -> Vec<Value> {
        let out = self.ok(&["ps", "-a", "--format", "json"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The keys of the snapshots that are not image layers (a container's are its id).
    fn container_snapshots(&self) -> Vec<String> {
        let Ok(bytes) = std::fs::read(self.data().join("snapshots/metadata.json")) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["snapshots"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with("sha256:"))
            .cloned()
            .collect()
    }

    /// Nothing of any container is left: no record, snapshot, mount, mount point, volume,
    /// runtime state or cgroup.
    #[track_caller]
    fn assert_clean(&self) {
        assert_eq!(self.ps_json(), Vec::<Value>::new(), "containers left");
        assert_eq!(
            self.container_snapshots(),
            Vec::<String>::new(),
            "snapshots left"
        );
        let data = self.data();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(data.to_str().unwrap()),
            "mounts left under {}:\n{mounts}",
            data.display()
        );
        // an `--rm` container's monitor deletes its directory (`containers/.removing-ID`)
        // and its snapshot's files (`snapshots/tmp/rm-…`) right after reporting the exit
        let entries = |d: &str| -> Vec<std::ffi::OsString> {
            std::fs::read_dir(data.join(d))
                .map(|r| r.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default()
        };
        berth_test_support::wait_until(Duration::from_secs(10), || {
            entries("containers").is_empty() && entries("snapshots/tmp").is_empty()
        });
        for d in [
            "containers",
            "rootfs",
            "volumes",
            "runtime",
            "snapshots/tmp",
        ] {
            let left = entries(d);
            assert!(left.is_empty(), "{d}/ not empty: {left:?}");
        }
        let left = self.cgroups();
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }

    /// The cgroups of this data directory's containers, in every hierarchy.
    fn cgroups(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for h in cgroup_roots() {
            let parent = h.join(self.cgroup_parent.trim_start_matches('/'));
            if let Ok(rd) = std::fs::read_dir(&parent) {
                out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
        }
        out
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-a", "-q", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        for h in cgroup_roots() {
            let _ = std::fs::remove_dir(h.join(self.cgroup_parent.trim_start_matches('/')));
        }
        let data = self.data();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            for mp in info.lines().filter_map(|l| l.split(' ').nth(4)) {
                if mp.starts_with(data.to_str().unwrap_or("/nonexistent")) {
                    let _ = Command::new("umount").arg("-l").arg(mp).status();
                }
            }
        }
    }
}

/// The cgroup hierarchies: v1 controllers and the v2 ones (`unified`, or the root itself).
fn cgroup_roots() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/sys/fs/cgroup")];
    out.extend(
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    out
}

fn runtimes() -> Vec<&'static str> {
    RUNTIMES.to_vec()
}

#[test]
fn run_rm_echo_and_docker_exit_codes_leave_nothing_behind() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        let (code, out, err) = b.run_rm(rt, &[], &["echo", "hello", "world"]);
        assert_eq!((code, out.as_str()), (0, "hello world\n"), "{rt}: {err}");
        let (code, out, err) = b.run_rm(rt, &[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
        assert_eq!(code, 3, "{rt}: exit code propagated: {err}");
        assert_eq!(out, "out\n", "{rt}");
        assert!(err.contains("err\n"), "{rt}: stderr relayed: {err}");
        // 127: the command is not found
        let (code, _, err) = b.run_rm(rt, &[], &["no-such-command"]);
        assert_eq!(code, 127, "{rt}: {err}");
        assert!(err.contains("no-such-command"), "{rt}: {err}");
        // 126: it cannot be invoked
        let (code, _, err) = b.run_rm(rt, &[], &["/etc/motd"]);
        assert_eq!(code, 126, "{rt}: {err}");
        b.assert_clean();
    }
    // 125: berth itself fails (an unknown runtime, a missing image, a bad flag)
    let (code, _, err) = b.run_rm("/nonexistent/runtime", &[], &["true"]);
    assert_eq!(code, 125, "{err}");
    let out = b.run(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "localhost/missing:1",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let out = b.run(&["run", "--no-such-flag", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    let (code, _, err) = b.run_rm("runc", &["--memory", "lots"], &["true"]);
    assert_eq!(code, 125, "{err}");
    b.assert_clean();
}

#[test]
fn failed_run_leaves_no_snapshot_mount_cgroup_or_record() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        // fails at create (not found), and -d too
        let (code, _, _) = b.run_rm(rt, &[], &["/bin/nope"]);
        assert_eq!(code, 127, "{rt}");
        b.assert_clean();
        let out = b.run(&["run", "-d", "--runtime", rt, IMAGE, "/bin/nope"]);
        assert_eq!(out.status.code(), Some(127), "{rt} -d");
        b.assert_clean();
        // a bad bind source fails before the engine
        let (code, _, _) = b.run_rm(rt, &["-v", "/no/such/dir:/x"], &["true"]);
        assert_eq!(code, 125, "{rt}");
        b.assert_clean();
        // the name is taken: the second run fails and leaves the first alone
        let id = b.ok(&["create", "--runtime", rt, "--name", "taken", IMAGE, "true"]);
        let out = b.run(&["run", "--runtime", rt, "--name", "taken", IMAGE, "true"]);
        assert_eq!(out.status.code(), Some(125), "{rt}");
        assert_eq!(b.container_snapshots(), vec![id.trim().to_owned()], "{rt}");
        b.ok(&["rm", "taken"]);
        b.assert_clean();
    }
}

#[test]
fn detached_logs_follow_stop_rm() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        let name = format!("web-{rt}");
        let id = b.ok(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "trap 'echo bye; exit 3' TERM; echo hello; echo oops >&2; while true; do sleep 0.1; done",
        ]);
        let id = id.trim().to_owned();
        assert_eq!(id.len(), 64, "{rt}: -d prints the id: {id}");
        let mut follow = b.cmd(&["logs", "-f", &name]);
        follow.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut follower = ChildGuard::spawn(&mut follow);
        assert!(
            wait_until(Duration::from_secs(20), || b
                .ok(&["logs", &name])
                .contains("hello")),
            "{rt}: the log has the output"
        );
        let ps = b.ok(&["ps"]);
        assert!(ps.contains(&name) && ps.contains("Up"), "{rt}: {ps}");
        assert_eq!(b.ok(&["stop", "-t", "10", &name]).trim(), name);
        let child = follower.child().unwrap();
        let mut done = None;
        assert!(
            wait_until(Duration::from_secs(20), || {
                done = child.try_wait().unwrap();
                done.is_some()
            }),
            "{rt}: logs -f ends when the container exits"
        );
        let mut followed = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut followed).unwrap();
        let mut followed_err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut followed_err).unwrap();
        assert_eq!(followed, "hello\nbye\n", "{rt}: logs -f stdout");
        assert_eq!(followed_err, "oops\n", "{rt}: logs -f stderr");
        assert_eq!(
            b.ok(&["wait", &name]).trim(),
            "3",
            "{rt}: the trap's exit code"
        );
        assert_eq!(b.ok(&["logs", "--tail", "1", &name]), "bye\n", "{rt}");
        let stamped = b.ok(&["logs", "--timestamps", &id[..12]]);
        assert!(
            stamped.starts_with("20") && stamped.contains("Z hello"),
            "{rt}: {stamped}"
        );
        assert!(!b.ok(&["ps"]).contains(&name), "{rt}: ps without -a");
        assert_eq!(b.ok(&["rm", &name]).trim(), name);
        b.assert_clean();
    }
}

/// What a container's monitor runs as: `/proc/PID/exe`, its arguments, and its peak resident
/// memory (KiB), from the record of container `id` of `b`.
fn monitor_process(b: &Berth, id: &str) -> (PathBuf, Vec<String>, u64) {
    let record = b.data().join("containers").join(id).join("container.json");
    let rec: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let pid = rec["monitor_pid"].as_i64().expect("a monitor pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let argv = argv
        .split(|c| *c == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in the monitor's status");
    (exe, argv, hwm)
}

/// `berth` runs its containers' monitors as the `berth-monitor` binary installed beside it
/// (`cargo install --path crates/cli` installs both), which links only the engine, and as its
/// own `berth __monitor` when that binary is missing: either way the container runs, logs,
/// stops and is removed, and the small monitor holds less memory for the container's life.
#[test]
fn the_monitor_is_berth_monitor_beside_berth_else_berth_itself() {
    requires_root!();
    let b = Berth::new();
    let installed = berth_bin();
    let beside = installed.with_file_name("berth-monitor");
    assert!(
        beside.is_file(),
        "{} is not built\nhint: cargo build -p berth-cli builds it with berth",
        beside.display()
    );
    // a `berth` in a directory of its own with the runtime it finds beside it but no
    // monitor (hard links where the file system allows, so that /proc/PID/exe names this
    // path; copies otherwise)
    let lone_dir = tempfile::Builder::new()
        .prefix("berth-alone-")
        .tempdir_in(b.dir.path())
        .unwrap();
    let lone = lone_dir.path().join("berth");
    for name in ["berth", "berth-runtime"] {
        let (from, to) = (installed.with_file_name(name), lone.with_file_name(name));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let script = "echo up; trap 'exit 0' TERM; while true; do sleep 0.1; done";
    let mut memory = Vec::new();
    for (berth, monitor, args) in [
        (&installed, &beside, vec![]),
        (&lone, &lone, vec!["__monitor".to_owned()]),
    ] {
        let out = run_with_timeout(
            &mut b.cmd_with(berth, &["run", "-d", IMAGE, "sh", "-c", script]),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "{}: run -d: {out:?}", berth.display());
        let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let (exe, argv, hwm) = monitor_process(&b, &id);
        assert_eq!(
            &exe,
            monitor,
            "the monitor of {}'s container",
            berth.display()
        );
        assert_eq!(argv[1..1 + args.len()], args[..], "{argv:?}");
        assert_eq!(argv[1 + args.len()], b.data().to_str().unwrap(), "{argv:?}");
        assert_eq!(argv[2 + args.len()], id, "{argv:?}");
        assert!(
            wait_until(Duration::from_secs(20), || b.ok(&["logs", &id]) == "up\n"),
            "{}: the monitor relays the output",
            berth.display()
        );
        assert_eq!(b.ok(&["stop", "-t", "10", &id]).trim(), id);
        assert_eq!(b.ok(&["wait", &id]).trim(), "0");
        assert_eq!(b.ok(&["rm", &id]).trim(), id);
        b.assert_clean();
        memory.push(hwm);
    }
    assert!(
        memory[0] < memory[1],
        "berth-monitor's peak RSS {} KiB, berth __monitor's {} KiB",
        memory[0],
        memory[1]
    );

    // helpers that others could have left beside `berth` are never run: a `berth-monitor`
    // and a `berth-runtime` anyone may write to, each marking when it is run
    let planted_dir = tempfile::Builder::new()
        .prefix("berth-planted-")
        .tempdir_in(b.dir.path())
        .unwrap();
    let planted = planted_dir.path().join("berth");
    if std::fs::hard_link(&installed, &planted).is_err() {
        std::fs::copy(&installed, &planted).unwrap();
    }
    let ran = planted_dir.path().join("ran");
    for name in ["berth-monitor", "berth-runtime"] {
        let p = planted_dir.path().join(name);
        write_file(
            &p,
            format!("#!/bin/sh\necho {name} >> {}\nexit 1\n", ran.display()).as_bytes(),
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let real_runtime = installed.with_file_name("berth-runtime");
    let out = run_with_timeout(
        &mut b.cmd_with(
            &planted,
            &[
                "run",
                "-d",
                "--runtime",
                real_runtime.to_str().unwrap(),
                IMAGE,
                "sh",
                "-c",
                script,
            ],
        ),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "planted: run -d: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: not running") && stderr.contains("berth-monitor"),
        "the planted monitor is named: {stderr}"
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (exe, argv, _) = monitor_process(&b, &id);
    assert_eq!(exe, planted, "berth runs as its own monitor");
    assert_eq!(argv[1], "__monitor", "{argv:?}");
    assert_eq!(b.ok(&["rm", "-f", &id]).trim(), id);
    // the runtime by name: the writable one beside `berth` is passed over for PATH's, or
    // none is found; either way it is not run
    let out = run_with_timeout(
        &mut b.cmd_with(&planted, &["run", "--rm", IMAGE, "true"]),
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("runtime \"berth-runtime\" not found"),
        "planted: run --rm: {out:?}"
    );
    assert!(
        !ran.exists(),
        "a planted helper ran: {}",
        std::fs::read_to_string(&ran).unwrap_or_default()
    );
    b.assert_clean();
}

#[test]
fn ps_json_create_start_kill_wait_prune_and_aliases() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        let created = b.ok(&[
            "create",
            "--runtime",
            rt,
            "--name",
            "c1",
            IMAGE,
            "sh",
            "-c",
            "exit 7",
        ]);
        let created = created.trim();
        let running = b.ok(&[
            "container",
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            "r1",
            IMAGE,
            "sh",
            "-c",
            "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done",
        ]);
        let running = running.trim();
        let exited = b.ok(&["run", "-d", "--runtime", rt, "--name", "e1", IMAGE, "true"]);
        let exited = exited.trim();
        assert_eq!(b.ok(&["wait", "e1"]).trim(), "0");
        let ps = b.ps_json();
        assert_eq!(ps.len(), 3, "{rt}: {ps:?}");
        let by_name = |n: &str| {
            ps.iter()
                .find(|c| c["Names"][0] == n)
                .unwrap_or_else(|| panic!("{rt}: {n} in {ps:?}"))
                .clone()
        };
        let c1 = by_name("c1");
        assert_eq!(c1["Id"], created);
        assert_eq!(c1["State"], "created");
        assert_eq!(c1["Image"], IMAGE);
        assert_eq!(c1["Command"], serde_json::json!(["sh", "-c", "exit 7"]));
        let r1 = by_name("r1");
        assert_eq!(
            (r1["Id"].as_str(), r1["State"].as_str()),
            (Some(running), Some("running"))
        );
        assert!(r1["Pid"].as_i64().unwrap() > 0, "{rt}: {r1}");
        let e1 = by_name("e1");
        assert_eq!(e1["Id"], exited);
        assert_eq!(e1["State"], "exited");
        assert_eq!(e1["ExitCode"], 0);
        assert_eq!(e1["Status"], "Exited (0)");
        for c in &ps {
            for field in [
                "Created",
                "StartedAt",
                "ExitedAt",
                "OOMKilled",
                "Runtime",
                "AutoRemove",
            ] {
                assert!(c.get(field).is_some(), "{rt}: {field} in {c}");
            }
        }
        // ps without -a: created and running; -q: short ids
        let q = b.ok(&["ps", "-q"]);
        let mut q: Vec<&str> = q.lines().collect();
        q.sort_unstable();
        let mut want = vec![&created[..12], &running[..12]];
        want.sort_unstable();
        assert_eq!(q, want, "{rt}");
        assert_eq!(b.ok(&["container", "ls", "-a", "-q"]).lines().count(), 3);
        // start -a: the created container runs, its status is ours
        let out = b.run(&["start", "-a", "c1"]);
        assert_eq!(out.status.code(), Some(7), "{rt}");
        // kill with a signal the container handles (once its trap is set)
        assert!(
            wait_until(Duration::from_secs(20), || b
                .ok(&["logs", "r1"])
                .contains("ready")),
            "{rt}: r1 is ready: logs {:?}, ps {}",
            b.run(&["logs", "r1"]),
            b.ok(&["ps", "-a"])
        );
        assert_eq!(b.ok(&["kill", "-s", "USR1", "r1"]).trim(), "r1");
        assert_eq!(b.ok(&["container", "wait", "r1"]).trim(), "42", "{rt}");
        let inspect: Value = serde_json::from_str(&b.ok(&["inspect", "r1"])).unwrap();
        assert_eq!(inspect["Id"], running);
        assert_eq!(inspect["State"]["ExitCode"], 42);
        assert_eq!(inspect["State"]["OOMKilled"], false);
        // and plain kill is SIGKILL: 128+9
        b.ok(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            "k1",
            IMAGE,
            "sleep",
            "60",
        ]);
        b.ok(&["kill", "k1"]);
        assert_eq!(b.ok(&["wait", "k1"]).trim(), "137", "{rt}");
        assert_eq!(inspect["State"]["Status"], "exited");
        // prune removes all three (and what they hold)
        let pruned = b.ok(&["container", "prune", "-f"]);
        assert_eq!(pruned.lines().count(), 4, "{rt}: {pruned}");
        b.assert_clean();
    }
    // the image is still inspectable by the same command
    let img: Value = serde_json::from_str(&b.ok(&["inspect", IMAGE])).unwrap();
    assert_eq!(img["name"], IMAGE);
}

#[test]
fn two_runs_at_once() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        let outs: Vec<(i32, String, String)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let b = &b;
                    s.spawn(move || {
                        b.run_rm(
                            rt,
                            &[],
                            &["sh", "-c", &format!("echo run{i}; exit {}", 10 + i)],
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, (code, out, err)) in outs.iter().enumerate() {
            assert_eq!(*code, 10 + i as i32, "{rt}: {err}");
            assert_eq!(out, &format!("run{i}\n"), "{rt}");
        }
        // two detached runs at once with names: both recorded
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let b = &b;
                    s.spawn(move || {
                        let n = format!("par{i}");
                        b.ok(&[
                            "run",
                            "-d",
                            "--runtime",
                            rt,
                            "--name",
                            &n,
                            IMAGE,
                            "sleep",
                            "30",
                        ])
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap().trim().to_owned())
                .collect()
        });
        assert_ne!(ids[0], ids[1]);
        assert_eq!(b.ps_json().len(), 2, "{rt}");
        b.ok(&["rm", "-f", "par0", "par1"]);
        b.assert_clean();
    }
}

#[test]
fn env_workdir_user_volumes_tmpfs_read_only_hostname_network() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    let host = tempfile::tempdir().unwrap();
    // the container's root is an unprivileged host uid (its own user namespace): the bind
    // mounted directory must let it write, as with docker's userns-remap
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    write_file(host.path().join("in.txt"), b"from the host\n");
    write_file(
        host.path().join("env.list"),
        b"# comment\nFROM_FILE=yes\nBOTH=file\n",
    );
    let bind = format!("{}:/mnt/data", host.path().display());
    let bind_ro = format!("{}:/mnt/ro:ro", host.path().display());
    let env_file = host.path().join("env.list");
    let host_ifaces = std::fs::read_to_string("/proc/net/dev").unwrap();
    let host_has_more_than_lo = host_ifaces
        .lines()
        .skip(2)
        .any(|l| !l.trim_start().starts_with("lo:"));
    for rt in runtimes() {
        let out = b.sh(
            rt,
            &[
                "-e",
                "A=1",
                "-e",
                "BOTH=flag",
                "--env-file",
                env_file.to_str().unwrap(),
            ],
            "echo $A $FROM_FILE $BOTH; echo $HOSTNAME",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "1 yes flag", "{rt}: -e wins over --env-file");
        assert_eq!(lines[1].len(), 12, "{rt}: HOSTNAME is the short id: {out}");
        assert_eq!(b.sh(rt, &["-w", "/tmp/work"], "pwd"), "/tmp/work\n", "{rt}");
        assert_eq!(
            b.sh(rt, &["-u", "app"], "id -u; id -g; id -G"),
            "1000\n1001\n1001 2000\n",
            "{rt}"
        );
        assert_eq!(
            b.sh(rt, &["-u", "1234:5678"], "id -u; id -g"),
            "1234\n5678\n",
            "{rt}"
        );
        // bind mounts: rw writes reach the host, ro refuses
        let script = "cat /mnt/data/in.txt; echo written > /mnt/data/out.txt; touch /mnt/ro/x 2>/dev/null && echo ro-writable || echo ro-refused";
        let out = b.sh(rt, &["-v", &bind, "-v", &bind_ro], script);
        assert_eq!(out, "from the host\nro-refused\n", "{rt}");
        assert_eq!(
            std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
            "written\n"
        );
        let owner = std::fs::metadata(host.path().join("out.txt"))
            .unwrap()
            .uid();
        assert!(
            owner > 65535,
            "{rt}: what container root writes is owned by a subordinate host uid, not {owner}"
        );
        std::fs::remove_file(host.path().join("out.txt")).unwrap();
        // --tmpfs and --read-only
        let out = b.sh(
            rt,
            &["--read-only", "--tmpfs", "/scratch"],
            "echo ok > /scratch/f && cat /scratch/f; grep ' /scratch ' /proc/mounts | cut -d' ' -f3; touch /newfile 2>/dev/null && echo root-writable || echo root-refused",
        );
        assert_eq!(out, "ok\ntmpfs\nroot-refused\n", "{rt}");
        assert_eq!(
            b.sh(rt, &[], "touch /newfile && echo root-writable"),
            "root-writable\n",
            "{rt}"
        );
        // --hostname
        assert_eq!(
            b.sh(rt, &["--hostname", "box1"], "hostname"),
            "box1\n",
            "{rt}"
        );
        // --network none: loopback only; host: the host's interfaces
        let none = b.sh(
            rt,
            &["--network", "none"],
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
        );
        assert_eq!(none, "lo\n", "{rt}");
        let hostnet = b.sh(
            rt,
            &["--network", "host"],
            "tail -n +3 /proc/net/dev | wc -l",
        );
        let want = host_ifaces.lines().count() - 2;
        assert_eq!(hostnet.trim(), want.to_string(), "{rt}: host network");
        assert!(host_has_more_than_lo || want == 1);
        // an anonymous volume: a fresh directory, removed with the container
        assert_eq!(
            b.sh(rt, &["-v", "/vol"], "echo v > /vol/f; cat /vol/f"),
            "v\n",
            "{rt}"
        );
        // exec with -e, -u, -w into a running container
        b.ok(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            "ex",
            IMAGE,
            "sleep",
            "60",
        ]);
        let out = b.ok(&[
            "exec",
            "-e",
            "X=42",
            "-u",
            "app",
            "-w",
            "/home/app",
            "ex",
            "sh",
            "-c",
            "echo $X; id -u; pwd",
        ]);
        assert_eq!(out, "42\n1000\n/home/app\n", "{rt}");
        let out = b.run(&["exec", "ex", "sh", "-c", "exit 5"]);
        assert_eq!(out.status.code(), Some(5), "{rt}: exec's status");
        b.ok(&["rm", "-f", "ex"]);
        b.assert_clean();
    }
}

#[test]
fn memory_limit_oom_kills_with_137_and_pids_limit_stops_a_fork_bomb() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    for rt in runtimes() {
        // a 64 MiB buffer in a 16 MiB container without swap
        let out = b.run(&[
            "run",
            "--runtime",
            rt,
            "--name",
            "oom",
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            IMAGE,
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=64M",
            "count=1",
        ]);
        assert_eq!(
            out.status.code(),
            Some(137),
            "{rt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&b.ok(&["inspect", "oom"])).unwrap();
        assert_eq!(v["State"]["OOMKilled"], true, "{rt}: {v}");
        assert_eq!(v["State"]["ExitCode"], 137, "{rt}");
        b.ok(&["rm", "oom"]);
        // the same without a limit is not killed
        let v = b.sh(
            rt,
            &[],
            "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo survived",
        );
        assert_eq!(v, "survived\n", "{rt}");
        // a fork bomb (bounded: 200 sleepers) under --pids-limit 20 gets at most 20 processes
        // (the loop runs in a subshell, which busybox sh leaves at the first fork refused;
        // the count needs no fork: a glob and `set`)
        let script = "(i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#";
        let (code, out, err) = b.run_rm(rt, &["--pids-limit", "20"], &["sh", "-c", script]);
        assert_eq!(code, 0, "{rt}: {err}");
        let n: u32 = out
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{rt}: {out} {err}"));
        assert!(
            (2..=20).contains(&n),
            "{rt}: {n} processes under --pids-limit 20"
        );
        let (_, out, _) = b.run_rm(rt, &[], &["sh", "-c", script]);
        let unlimited: u32 = out.trim().parse().unwrap();
        assert!(
            unlimited > 200,
            "{rt}: without a limit all 200 start: {unlimited}"
        );
        b.assert_clean();
    }
}

/// Regression: a container whose command exits at once could be gone (reaped by the
/// monitor, its runtime state deleted) before `runc start` returned, which then failed
/// ("remove …/exec.fifo: no such file or directory") and `berth run` exited 127 instead of
/// with the container's status. Many runs, to hit the window.
#[test]
fn fast_exiting_runs_report_their_status_not_a_start_failure() {
    requires_root!();
    requires_tool!("runc");
    let b = Berth::new();
    let mut wrong = Vec::new();
    for _ in 0..40 {
        let (code, _, err) = b.run_rm("runc", &[], &["sh", "-c", "exit 3"]);
        if code != 3 {
            wrong.push((code, err));
        }
    }
    assert!(wrong.is_empty(), "{} of 40 runs: {wrong:?}", wrong.len());
    b.assert_clean();
}

/// `--pull missing` (the default) pulls an image the store lacks, `--pull never` refuses it
/// (125), `--pull always` pulls again; from a registry on 127.0.0.1.
#[test]
fn run_pulls_per_the_pull_policy() {
    requires_root!();
    let registry = berth_test_support::Registry::start(berth_test_support::RegistryOptions::new());
    let remote = format!("{}/run/busybox:1", registry.host());
    let source = Berth::new();
    source.ok(&["tag", IMAGE, &remote]);
    source.ok(&["push", "-q", &remote]);
    let b = Berth::new();
    let out = b.run(&["run", "--rm", "--pull", "never", &remote, "true"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "--pull never of a missing image"
    );
    let run = |policy: &str| {
        b.run(&[
            "run", "--rm", "-q", "--pull", policy, &remote, "echo", "ran",
        ])
    };
    for policy in ["missing", "always", "never"] {
        let out = run(policy);
        assert!(
            out.status.success(),
            "--pull {policy}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ran\n",
            "--pull {policy}"
        );
    }
    b.assert_clean();
}

/// A foreground `run --rm` whose `berth` is killed still leaves nothing once the container
/// exits (the monitor removes it), and a foreground run relays all of an output larger than
/// the log's rotation size (10 MiB), across the rotation.
#[test]
fn foreground_rm_survives_a_killed_berth_and_relays_across_log_rotation() {
    requires_root!();
    let b = Berth::new();
    let mut cmd = b.cmd(&[
        "run",
        "--rm",
        "--runtime",
        "berth-runtime",
        "--name",
        "fg",
        IMAGE,
        "sh",
        "-c",
        "echo started; sleep 3",
    ]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut fg = ChildGuard::spawn(&mut cmd);
    assert!(
        wait_until(Duration::from_secs(30), || {
            b.run(&["logs", "fg"]).stdout == b"started\n"
        }),
        "the container runs"
    );
    // SIGKILL, by PID, and reaped
    fg.child().unwrap().kill().unwrap();
    let _ = fg.child().unwrap().wait();
    assert!(
        wait_until(Duration::from_secs(30), || b.ps_json().is_empty()),
        "the monitor removes the --rm container: {:?}",
        b.ps_json()
    );
    b.assert_clean();

    let line = "a".repeat(999);
    let script = format!("yes {line} | head -n 15000; echo last");
    let (code, out, err) = b.run_rm("berth-runtime", &[], &["sh", "-c", &script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 15001, "every line relayed across the rotation");
    assert!(lines[..15000].iter().all(|l| *l == line));
    assert_eq!(lines[15000], "last");
    b.assert_clean();
}

/// `berth ARGS…` with `input` as its stdin (a file: bounded, no thread feeding a pipe).
fn run_with_input(b: &Berth, args: &[&str], input: &[u8]) -> Output {
    let mut f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut f, input).unwrap();
    std::io::Seek::rewind(&mut f).unwrap();
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut cmd = b.cmd(args);
    cmd.stdin(f)
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let child = guard.child().unwrap();
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        }),
        "berth {args:?} did not finish"
    );
    let read = |f: std::fs::File| berth_test_support::read_output_file(&f);
    Output {
        status: status.unwrap(),
        stdout: read(out),
        stderr: read(err),
    }
}

/// `-it` on a real terminal (script(1) gives the caller a pty of a set size): the container
/// sees a pty of the caller's size and its exit code comes back; `exec -it` into a running
/// container too; `-i` without `-t` feeds stdin and keeps stdout apart. Each runtime.
#[test]
fn run_it_exec_it_and_run_i_on_a_real_terminal() {
    requires_root!();
    requires_tool!("script", "runc", "crun");
    let b = Berth::new();
    let berth = berth_bin();
    for rt in runtimes() {
        let on_a_terminal = |berth_args: &str| {
            let line = format!("stty rows 30 cols 100; {} {berth_args}", berth.display());
            let mut c = Command::new("script");
            c.args(["-qec", &line, "/dev/null"])
                .env("XDG_DATA_HOME", b.dir.path());
            let out = run_with_timeout(&mut c, Duration::from_secs(60));
            (
                out.status.code().unwrap_or(-1),
                // script(1), its stdin at end of file, passes NULs to the terminal, which
                // echoes each as `^@` whenever it is not raw (runc run by hand under script
                // shows the same): they are script's, not the container's
                String::from_utf8_lossy(&out.stdout)
                    .replace('\r', "")
                    .replace("^@", ""),
            )
        };
        let (code, out) = on_a_terminal(&format!(
            "run --rm -it --network none --runtime {rt} --cgroup-parent {} {IMAGE} sh -c 'tty; stty size; exit 7'",
            b.cgroup_parent
        ));
        assert_eq!(
            (code, out.as_str()),
            (7, "/dev/pts/0\n30 100\n"),
            "{rt}: run -it"
        );

        let id = b.ok(&["run", "-d", "--runtime", rt, IMAGE, "sleep", "100"]);
        let id = id.trim();
        let (code, out) = on_a_terminal(&format!("exec -it {id} sh -c 'tty; stty size; exit 3'"));
        assert_eq!(code, 3, "{rt}: exec -it: {out}");
        assert!(
            out.starts_with("/dev/pts/"),
            "{rt}: exec -it has a pty: {out}"
        );
        b.ok(&["rm", "-f", id]);

        let out = run_with_input(
            &b,
            &[
                "run",
                "--rm",
                "-i",
                "--runtime",
                rt,
                IMAGE,
                "sh",
                "-c",
                "cat; echo err >&2",
            ],
            b"typed\n",
        );
        assert_eq!(out.status.code(), Some(0), "{rt}: run -i: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "typed\n",
            "{rt}: stdin reached cat"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "err\n",
            "{rt}: stderr kept apart"
        );
    }
    b.assert_clean();
}

/// As root, each container has its own user namespace: container root is a subordinate host
/// id, two running containers get disjoint ranges, the image's files show as root's inside
/// (id-mapped, not copied), the range is given back when the container is removed, and
/// `--userns=host` opts out, printed as an opening.
#[test]
fn each_container_gets_its_own_host_id_range() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    let range_of = |id: &str| -> (u64, u64) {
        let v: Value = serde_json::from_str(&b.ok(&["inspect", id])).unwrap();
        let v = if v.is_array() { v[0].clone() } else { v };
        let h = &v["HostIds"];
        (
            h["host_start"].as_u64().unwrap(),
            h["size"].as_u64().unwrap(),
        )
    };
    for rt in runtimes() {
        let a = b.ok(&["run", "-d", "--runtime", rt, IMAGE, "sleep", "100"]);
        let c = b.ok(&["run", "-d", "--runtime", rt, IMAGE, "sleep", "100"]);
        let (a, c) = (a.trim(), c.trim());
        let (sa, na) = range_of(a);
        let (sc, nc) = range_of(c);
        assert_eq!((na, nc), (65536, 65536), "{rt}");
        assert!(
            sa + na <= sc || sc + nc <= sa,
            "{rt}: ranges overlap: {sa}+{na} {sc}+{nc}"
        );
        assert!(
            sa > 65535 && sc > 65535,
            "{rt}: subordinate ids, not host users'"
        );
        let map = b.ok(&["exec", a, "cat", "/proc/self/uid_map"]);
        let fields: Vec<&str> = map.split_whitespace().collect();
        assert_eq!(fields, ["0", &sa.to_string(), "65536"], "{rt}: {map}");
        // the image's files are root's inside; what the container writes is its range's
        let ls = b.ok(&[
            "exec",
            a,
            "sh",
            "-c",
            "ls -ln /bin/busybox | tr -s ' ' | cut -d' ' -f3,4; touch /made",
        ]);
        assert_eq!(ls, "0 0\n", "{rt}");
        let v: Value = serde_json::from_str(&b.ok(&["inspect", a])).unwrap();
        let v = if v.is_array() { v[0].clone() } else { v };
        let m = PathBuf::from(
            v["Rootfs"]
                .as_str()
                .expect("inspect shows the Rootfs mount"),
        );
        let made = std::fs::metadata(m.join("made")).unwrap();
        assert_eq!(
            u64::from(made.uid()),
            sa,
            "{rt}: /made owned by the range's root"
        );
        let upper_image_file = std::fs::symlink_metadata(m.join("bin/busybox")).unwrap();
        assert_eq!(
            u64::from(upper_image_file.uid()),
            sa,
            "{rt}: seen through the container's mount, the image's files are the range's root"
        );
        b.ok(&["rm", "-f", a, c]);
        let ranges = std::fs::read_to_string(b.data().join("idranges.json")).unwrap();
        assert!(
            !ranges.contains(a) && !ranges.contains(c),
            "{rt}: ranges given back on rm: {ranges}"
        );
        let (code, out, err) = b.run_rm(rt, &["--userns", "host"], &["cat", "/proc/self/uid_map"]);
        assert_eq!(code, 0, "{rt}: {err}");
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["0", "0", "4294967295"],
            "{rt}: --userns=host"
        );
        assert!(
            err.contains("warning:") && err.contains("userns"),
            "{rt}: printed: {err}"
        );
    }
    b.assert_clean();
}

/// A data directory below a directory others cannot search is out of reach of a container's
/// root: `run` says which directory (exit 125) and leaves nothing behind.
#[test]
fn a_data_directory_out_of_reach_of_the_user_namespace_is_named() {
    requires_root!();
    let b = Berth::new();
    let private = b.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = private.join("data");
    let data = data.to_str().unwrap();
    b.ok(&[
        "import",
        "--data",
        data,
        b.dir.path().join("rootfs").to_str().unwrap(),
        IMAGE,
    ]);
    let out = b.run(&["run", "--rm", "--data", data, IMAGE, "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains(&format!("{} has mode 700", private.display())) && err.contains("chmod o+x"),
        "{err}"
    );
    let ps = b.ok(&["ps", "-a", "-q", "--data", data]);
    assert_eq!(ps, "", "no record left");
    let rootfs = private.join("data/rootfs");
    let left: Vec<_> = std::fs::read_dir(&rootfs)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no mount point left: {left:?}");
}

/// A warm `berth run --rm IMAGE true` under strace: the foreground `berth` waits for its
/// container on events (poll on the log's inotify watch and the exit's eventfd), never on a
/// timer; and it fsyncs what crash safety needs and nothing more: the record durably twice
/// (`creating`, before the monitor exists, with what to undo; `running`, before `run` says
/// the container started; no `created` between, no `exited` before an `--rm` removal), the
/// snapshot index twice (the container's snapshot prepared, then removed; not the image's
/// unchanged label), and not the container's /etc files. A second run right after a first,
/// so the image's snapshots are warm.
#[test]
fn a_warm_foreground_run_waits_on_events_and_fsyncs_only_what_crash_safety_needs() {
    requires_root!();
    requires_tool!("strace");
    let b = Berth::new();
    let (code, _, err) = b.run_rm("berth-runtime", &[], &["true"]);
    assert_eq!(code, 0, "{err}");
    let trace = b.dir.path().join("strace.txt");
    let cmd = b.cmd(&["run", "--rm", "--runtime", "berth-runtime", IMAGE, "true"]);
    let text = run_under_strace(
        &cmd,
        &trace,
        "fsync,fdatasync,nanosleep,clock_nanosleep",
        Duration::from_secs(120),
    );
    let sleeps: Vec<&str> = text.lines().filter(|l| l.contains("nanosleep(")).collect();
    assert!(sleeps.is_empty(), "timer sleeps: {sleeps:#?}");
    let fsyncs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("fsync(") && !l.contains("resumed>"))
        .collect();
    let count = |needle: &str| fsyncs.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count(".container.json.tmp."), 2, "{fsyncs:#?}");
    assert_eq!(count(".metadata.json.tmp."), 2, "{fsyncs:#?}");
    let etc = b.data().join("etc");
    assert_eq!(count(etc.to_str().unwrap()), 0, "{fsyncs:#?}");
    // directories: the name index once (its entry, a symbolic link, has no content to
    // sync), the container's own once (config.json and the record as `creating`, together);
    // removals are not waited for (the containers directory, the trash) and neither is the
    // `running` record's rename
    let data = b.data();
    let dir_synced = |d: PathBuf| count(&format!("<{}>", d.display()));
    assert_eq!(dir_synced(data.join("names")), 1, "{fsyncs:#?}");
    assert_eq!(
        count(&format!("{}/", data.join("names").display())),
        0,
        "{fsyncs:#?}"
    );
    assert_eq!(dir_synced(data.join("containers")), 0, "{fsyncs:#?}");
    assert_eq!(dir_synced(data.join("snapshots/tmp")), 0, "{fsyncs:#?}");
    let own: Vec<&&str> = fsyncs
        .iter()
        .filter(|l| {
            l.contains(&format!("<{}/", data.join("containers").display()))
                && l.ends_with(">) = 0")
                && !l.contains(".tmp.")
        })
        .collect();
    assert_eq!(
        own.len(),
        1,
        "the container's directory synced once: {fsyncs:#?}"
    );
    b.assert_clean();
}

/// A container whose record is corrupt (a disk error, a hand edit) hides no other: `ps`
/// lists the rest and names it on stderr, `run` still works, `rm` without `-f` refuses with
/// the way out, and `rm -f` discards it with what its record held (its mount, snapshot, name
/// and cgroup), leaving the other containers alone.
#[test]
fn a_corrupt_record_hides_nothing_else_and_rm_f_discards_it() {
    requires_root!();
    let b = Berth::new();
    let broken = b
        .ok(&["create", "--name", "broken", IMAGE, "true"])
        .trim()
        .to_owned();
    let other = b.ok(&["run", "-d", IMAGE, "sleep", "60"]).trim().to_owned();
    let record = b
        .data()
        .join("containers")
        .join(&broken)
        .join("container.json");
    write_file(&record, b"{\"id\": trunc");
    let out = b.run(&["ps", "-a", "--no-trunc"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&other) && !stdout.contains(&broken),
        "{stdout}"
    );
    assert!(
        stderr.contains(record.to_str().unwrap()) && stderr.contains("rm -f"),
        "{stderr}"
    );
    let (code, out, err) = b.run_rm("berth-runtime", &[], &["echo", "still runs"]);
    assert_eq!((code, out.as_str()), (0, "still runs\n"), "{err}");
    let out = b.run(&["rm", "broken"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("container.json") && stderr.contains("rm -f"),
        "{stderr}"
    );
    assert!(b.container_snapshots().contains(&broken));
    let mounted = |id: &str| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(b.data().join("rootfs").join(id).to_str().unwrap())
    };
    assert!(mounted(&broken));
    b.ok(&["rm", "-f", "broken"]);
    assert!(!b.container_snapshots().contains(&broken), "snapshot left");
    assert!(!mounted(&broken), "mount left");
    for left in [
        b.data().join("containers").join(&broken),
        b.data().join("rootfs").join(&broken),
        b.data().join("etc").join(&broken),
        b.data().join("names/broken"),
    ] {
        assert!(
            std::fs::symlink_metadata(&left).is_err(),
            "{} left",
            left.display()
        );
    }
    let cgroups = b.cgroups();
    assert!(
        !cgroups.iter().any(|c| c.ends_with(&broken)),
        "cgroup left: {cgroups:?}"
    );
    // the other container was left alone, and goes the ordinary way
    assert!(mounted(&other));
    assert_eq!(b.ps_json().len(), 1);
    b.ok(&["rm", "-f", &other]);
    b.assert_clean();
}
