//! Namespaces joined by path (a pod's containers share one network namespace this way),
//! the time and cgroup namespaces, descriptors passed in (`--preserve-fds`, systemd's
//! `LISTEN_FDS`), and terminals (a real pty in the foreground, `--console-socket`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_test_support::{
    Bundle, COMMAND_TIMEOUT, ConsoleSocket, ContainerGuard, Runtime, cgroup_dirs, read_pty,
    run_with_timeout, skip_or_fail, tool_available, write_file,
};
use serde_json::{Value, json};

use super::{host_probe, probe, runtime_test, strings};

/// A first container, started and waiting for a signal: the holder of the namespaces a
/// second container joins. The bundle must outlive the guard.
pub(super) fn holder<'r>(rt: &'r Runtime, b: &mut Bundle) -> ContainerGuard<'r> {
    b.probe(&["wait-signal"]);
    let c = ContainerGuard::create(rt, b);
    c.start();
    assert!(
        c.wait_for_status("running", COMMAND_TIMEOUT),
        "the holder never ran"
    );
    c
}

/// `readlink /proc/<pid>/ns/<name>` on the host: `net:[4026532281]`.
fn ns_link(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
        .to_string_lossy()
        .into_owned()
}

fn ns_path(pid: i32, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{name}"))
}

runtime_test! {
    /// `{"type": "network", "path": …}`: the second container is in the holder's network
    /// namespace (same inode) and sees the interfaces made there.
    fn joins_a_network_namespace_by_path(rt) {
        if !tool_available("ip") && skip_or_fail("ip (apt-get install iproute2)") {
            return;
        }
        let mut first = Bundle::new();
        let h = holder(rt, &mut first);
        let ns = ns_path(h.pid(), "net");
        // a veth pair inside the holder's namespace (both ends: they die with it)
        let out = run_with_timeout(
            Command::new("nsenter")
                .arg(format!("--net={}", ns.display()))
                .args(["ip", "link", "add", "berth-j0", "type", "veth", "peer", "name", "berth-j1"]),
            COMMAND_TIMEOUT,
        );
        assert!(out.status.success(), "ip link add: {out:?}");
        let mut second = Bundle::new();
        second.namespace_path("network", &ns).probe(&["ns", "netdevs"]);
        let v = probe(rt, &second);
        assert_eq!(v["ns"]["net"], ns_link(h.pid(), "net"), "{v}");
        let devs = strings(&v["netdevs"]);
        assert!(devs.contains(&"berth-j0".to_owned()), "{v}");
        assert!(devs.contains(&"berth-j1".to_owned()), "{v}");
        // and the host's own network namespace is not the one joined
        assert_ne!(v["ns"]["net"], ns_link(std::process::id() as i32, "net"));
    }
}

/// A named network namespace (`ip netns add`: a bind mount of nsfs under /run/netns, as
/// CNI and podman pods make them), deleted on drop.
struct NamedNetns(String);

impl NamedNetns {
    fn add(name: String) -> NamedNetns {
        let out = run_with_timeout(
            Command::new("ip").args(["netns", "add", &name]),
            COMMAND_TIMEOUT,
        );
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        NamedNetns(name)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }

    fn ip(&self, args: &[&str]) {
        let out = run_with_timeout(
            Command::new("ip").args(["-n", &self.0]).args(args),
            COMMAND_TIMEOUT,
        );
        assert!(out.status.success(), "ip -n {} {args:?}: {out:?}", self.0);
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = run_with_timeout(
            Command::new("ip").args(["netns", "delete", &self.0]),
            COMMAND_TIMEOUT,
        );
    }
}

runtime_test! {
    /// A pod's network namespace as CNI leaves it, a bind mount under /run/netns: the
    /// container joins it through that path and sees its interfaces.
    fn joins_a_bind_mounted_network_namespace(rt) {
        if !tool_available("ip") && skip_or_fail("ip (apt-get install iproute2)") {
            return;
        }
        let ns = NamedNetns::add(format!("berth-pod-{}-{}", std::process::id(), rt.name()));
        ns.ip(&["link", "add", "berth-p0", "type", "veth", "peer", "name", "berth-p1"]);
        let host_view = std::fs::metadata(ns.path()).unwrap();
        let mut b = Bundle::new();
        b.namespace_path("network", &ns.path()).probe(&["ns", "netdevs"]);
        let v = probe(rt, &b);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(v["ns"]["net"], format!("net:[{}]", host_view.ino()), "{v}");
        let devs = strings(&v["netdevs"]);
        assert!(devs.contains(&"berth-p0".to_owned()), "{v}");
    }
}

runtime_test! {
    /// `{"type": "ipc", "path": …}`: same IPC namespace as the holder.
    fn joins_an_ipc_namespace_by_path(rt) {
        let mut first = Bundle::new();
        let h = holder(rt, &mut first);
        let mut second = Bundle::new();
        second.namespace_path("ipc", &ns_path(h.pid(), "ipc")).probe(&["ns"]);
        let v = probe(rt, &second);
        assert_eq!(v["ns"]["ipc"], ns_link(h.pid(), "ipc"), "{v}");
        assert_ne!(v["ns"]["ipc"], ns_link(std::process::id() as i32, "ipc"));
        // only the joined type is shared: the network namespace is the second's own
        assert_ne!(v["ns"]["net"], ns_link(h.pid(), "net"), "{v}");
    }
}

runtime_test! {
    /// `{"type": "uts", "path": …}` without a hostname of its own: the second container
    /// sees the holder's hostname.
    fn joins_a_uts_namespace_by_path_and_sees_its_hostname(rt) {
        let mut first = Bundle::new();
        first.hostname("berth-uts-holder");
        let h = holder(rt, &mut first);
        let mut second = Bundle::new();
        second.config_mut().as_object_mut().unwrap().remove("hostname");
        second.namespace_path("uts", &ns_path(h.pid(), "uts")).probe(&["ns", "identity"]);
        let v = probe(rt, &second);
        assert_eq!(v["ns"]["uts"], ns_link(h.pid(), "uts"), "{v}");
        assert_eq!(v["identity"]["hostname"], "berth-uts-holder", "{v}");
    }
}

/// The pid of host process `pid` inside its innermost pid namespace (`NSpid`'s last).
fn inner_pid(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no NSpid in /proc/{pid}/status"))
}

runtime_test! {
    /// `{"type": "pid", "path": …}`: the second container's process is in the holder's pid
    /// namespace, visible from the holder's side (an exec there lists it), and not pid 1.
    fn joins_a_pid_namespace_by_path(rt) {
        let mut first = Bundle::new();
        let h = holder(rt, &mut first);
        let mut second = Bundle::new();
        second.namespace_path("pid", &ns_path(h.pid(), "pid"));
        let s = holder(rt, &mut second);
        assert_eq!(ns_link(s.pid(), "pid"), ns_link(h.pid(), "pid"));
        let inner = inner_pid(s.pid());
        assert_ne!(inner, 1, "the joined namespace already has its init");
        let out = h.exec(&["/probe", "pids"]);
        assert!(out.success(), "{out}");
        let pids = out.json()["pids"].clone();
        let pids: Vec<u64> = pids.as_array().unwrap().iter().filter_map(Value::as_u64).collect();
        assert!(pids.contains(&1) && pids.contains(&inner), "{pids:?} lacks 1 and {inner}");
        drop(s);
    }
}

/// Whether any process's root directory is `rootfs` (a container process left behind).
fn processes_rooted_at(rootfs: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read_link(e.path().join("root")).is_ok_and(|r| r == rootfs))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

runtime_test! {
    /// A namespace path of the wrong type, a path that is no namespace, and a missing
    /// path: `create` fails saying so, and leaves nothing behind (no state, no cgroup, no
    /// process).
    fn bad_namespace_paths_fail_cleanly(rt) {
        let mut first = Bundle::new();
        let h = holder(rt, &mut first);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-a-namespace");
        write_file(&plain, b"plain file");
        let cases: [(&str, PathBuf, &str); 3] = [
            ("wrong type", ns_path(h.pid(), "ipc"), "it is a ipc namespace"),
            ("not a namespace", plain, "not a namespace file"),
            ("missing", dir.path().join("missing/ns/net"), "No such file or directory"),
        ];
        for (what, path, why) in cases {
            let mut b = Bundle::new();
            b.namespace_path("network", &path);
            let (guard, out) = ContainerGuard::try_create(rt, &b);
            assert!(!out.success(), "{what}: create succeeded:\n{out}");
            assert!(!out.stderr.is_empty(), "{what}: no error message:\n{out}");
            if rt.name() == "berth-runtime" {
                // berth says what is wrong with which path; runc says "failed to setns into
                // net namespace: Invalid argument" without the path, crun 1.8.1 only
                // "write to sync socket: Broken pipe" for the first two
                let err = out.stderr_str();
                assert!(err.contains(&path.to_string_lossy().into_owned()), "{what}: {err}");
                assert!(err.contains(why), "{what}: {err}");
            }
            // nothing left behind, checked before the guard's own cleanup runs
            assert!(!rt.state(b.id()).success(), "{what}: the container has a state");
            assert!(!rt.root().join(b.id()).exists(), "{what}: state dir left");
            let cgroups = cgroup_dirs(&b.cgroups_path().unwrap());
            assert!(cgroups.iter().all(|d| !d.exists()), "{what}: cgroups left: {cgroups:?}");
            let left = processes_rooted_at(&b.rootfs());
            assert!(left.is_empty(), "{what}: processes left: {left:?}");
            drop(guard);
        }
    }
}

/// Offsets for the time namespace test: far from anything the host's clocks could be.
const MONOTONIC_OFFSET: i64 = 1_000 * 86_400;
const BOOTTIME_OFFSET: i64 = 2_000 * 86_400;

fn secs(v: &Value, clock: &str) -> i64 {
    v[clock]["secs"]
        .as_i64()
        .unwrap_or_else(|| panic!("no {clock} in {v}"))
}

runtime_test! {
    /// `{"type": "time"}` with `linux.timeOffsets`: CLOCK_MONOTONIC and CLOCK_BOOTTIME
    /// inside are the host's plus the offsets. runc 1.1 has no time namespace support
    /// (it came in runc 1.2): it must refuse the config rather than run without it.
    fn time_namespace_offsets_the_clocks(rt) {
        if !Path::new("/proc/self/ns/time").exists()
            && skip_or_fail("a kernel with time namespaces (5.6+)")
        {
            return;
        }
        let mut b = Bundle::new();
        b.add_namespace("time");
        b.config_mut()["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": MONOTONIC_OFFSET, "nanosecs": 0},
            "boottime": {"secs": BOOTTIME_OFFSET, "nanosecs": 0}
        });
        b.probe(&["ns", "clocks"]);
        let before = host_probe(&["clocks"])["clocks"].clone();
        let out = rt.run(&b);
        let after = host_probe(&["clocks"])["clocks"].clone();
        match rt.name() {
            "runc" => {
                // runc 1.1.5 has no time namespace (runc 1.2 added it): it refuses the
                // config, naming the type, and runs nothing
                assert!(!out.success(), "runc 1.1 ran a time namespace?\n{out}");
                assert!(out.stderr_str().contains("time"), "{out}");
                return;
            }
            "crun" => {
                // crun 1.8.1 knows the type but fails every container with a time
                // namespace here, offsets or not ("write to sync socket: Broken pipe",
                // "…: Connection reset by peer", or exit 255 saying nothing); recorded, not
                // investigated further (a crun that runs it fails here, to have its
                // expectation updated)
                assert!(!out.success(), "crun ran the time namespace:\n{out}");
                return;
            }
            _ => {}
        }
        assert!(out.success(), "{out}");
        let v = out.json();
        assert_ne!(v["ns"]["time"], ns_link(std::process::id() as i32, "time"), "{v}");
        for (clock, offset) in [("monotonic", MONOTONIC_OFFSET), ("boottime", BOOTTIME_OFFSET)] {
            let inside = secs(&v["clocks"], clock);
            let lo = secs(&before, clock) + offset;
            let hi = secs(&after, clock) + offset + 1;
            assert!((lo..=hi).contains(&inside), "{clock}: {inside} not in {lo}..={hi}: {v}");
        }
    }
}

/// A cgroup the test made beside the containers' (removed on drop, panics included).
struct MarkerCgroup(PathBuf);

impl Drop for MarkerCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

runtime_test! {
    /// `{"type": "cgroup"}`: the container's own cgroup is its root — `/proc/self/cgroup`
    /// shows `/` for each hierarchy, and its cgroup mount shows its subtree only (a
    /// sibling cgroup on the host is not there).
    fn cgroup_namespace_roots_the_containers_cgroups(rt) {
        let v1 = Path::new("/sys/fs/cgroup/pids").is_dir();
        let (host_dir, inside) = if v1 {
            ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/pids")
        } else {
            ("/sys/fs/cgroup", "/sys/fs/cgroup")
        };
        let marker = MarkerCgroup(PathBuf::from(format!(
            "{host_dir}/berth-marker-{}",
            std::process::id()
        )));
        std::fs::create_dir(&marker.0).unwrap();
        let mut b = Bundle::new();
        let list = format!("list:{inside}");
        b.add_namespace("cgroup").probe(&["ns", "cgroup", "mounts", list.as_str()]);
        let v = probe(rt, &b);
        assert_ne!(v["ns"]["cgroup"], ns_link(std::process::id() as i32, "cgroup"), "{v}");
        let entries = v["cgroup"].as_array().unwrap();
        assert!(!entries.is_empty(), "{v}");
        for e in entries {
            // a v1 hierarchy the runtime does not manage (misc, rdma) keeps its `/..` path
            let controllers = strings(&e["controllers"]);
            let managed = e["id"] == 0
                || ["pids", "memory", "cpu", "devices", "freezer"]
                    .iter()
                    .any(|c| controllers.contains(&(*c).to_owned()));
            if managed {
                assert_eq!(e["path"], "/", "{e} in {v}");
            }
        }
        let cg_mounts: Vec<&Value> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["fs_type"] == "cgroup" || m["fs_type"] == "cgroup2")
            .collect();
        assert!(!cg_mounts.is_empty(), "no cgroup mounted inside: {v}");
        let pids_mount = cg_mounts
            .iter()
            .find(|m| m["mount_point"] == inside)
            .unwrap_or_else(|| panic!("{inside} is not mounted: {v}"));
        assert_eq!(pids_mount["root"], "/", "{pids_mount}");
        let names = strings(&v[list.as_str()]["entries"]);
        assert!(names.contains(&"cgroup.procs".to_owned()), "{v}");
        let name = marker.0.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!names.contains(&name), "a sibling cgroup is visible: {names:?}");
    }
}

/// `sh -c '<script>' sh <line…>`: the runtime's command line run by a host shell that
/// first does `script` (opens descriptors, sets the environment).
fn through_shell(script: &str, line: Vec<OsString>, env: &[(&str, &Path)]) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(script).arg("sh").args(line);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The probe's fd numbers.
fn fd_numbers(v: &Value) -> Vec<u64> {
    v["fds"]
        .as_array()
        .unwrap_or_else(|| panic!("no fds in {v}"))
        .iter()
        .filter_map(|f| f["fd"].as_u64())
        .collect()
}

runtime_test! {
    /// systemd socket activation: with `LISTEN_FDS=1` and `LISTEN_PID` = the runtime's
    /// pid in its environment, fd 3 is passed and the process gets `LISTEN_FDS=1`,
    /// `LISTEN_PID=1`; `--preserve-fds 1` passes fd 4 after it; nothing else leaks.
    fn listen_fds_and_preserve_fds_reach_the_process(rt) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b_) = (dir.path().join("listen"), dir.path().join("preserved"));
        write_file(&a, b"from LISTEN_FDS");
        write_file(&b_, b"from --preserve-fds");
        let mut b = Bundle::new();
        b.probe(&["fds", "env", "read:/proc/self/fd/3", "read:/proc/self/fd/4"]);
        let out = rt.run_wrapped(&b, &["--preserve-fds", "1"], |line| {
            through_shell(
                r#"exec 3<"$A" 4<"$B"; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@""#,
                line,
                &[("A", &a), ("B", &b_)],
            )
        });
        assert!(out.success(), "{out}");
        let v = out.json();
        assert_eq!(fd_numbers(&v), [0, 1, 2, 3, 4], "{v}");
        assert_eq!(v["read:/proc/self/fd/3"]["head"], "from LISTEN_FDS", "{v}");
        assert_eq!(v["read:/proc/self/fd/4"]["head"], "from --preserve-fds", "{v}");
        assert_eq!(v["env"]["LISTEN_PID"], "1", "{v}");
        if rt.name() == "crun" {
            // crun sets LISTEN_PID=1 only and leaves LISTEN_FDS to the config's env
            // (src/libcrun/container.c); runc (utils_linux.go) and berth add both
            assert!(v["env"]["LISTEN_FDS"].is_null(), "{v}");
        } else {
            assert_eq!(v["env"]["LISTEN_FDS"], "1", "{v}");
        }
    }
}

runtime_test! {
    /// `LISTEN_FDS` meant for another process (`LISTEN_PID` not the runtime's) passes
    /// nothing, and the process's environment is the config's (runc's rule; crun differs).
    fn listen_fds_for_another_pid_pass_nothing(rt) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("listen");
        write_file(&a, b"not for the container");
        let mut b = Bundle::new();
        b.probe(&["fds", "env"]);
        let out = rt.run_wrapped(&b, &[], |line| {
            through_shell(
                r#"exec 3<"$A"; export LISTEN_FDS=1 LISTEN_PID=1; exec "$@""#,
                line,
                &[("A", &a)],
            )
        });
        assert!(out.success(), "{out}");
        let v = out.json();
        assert!(v["env"]["LISTEN_FDS"].is_null(), "{v}");
        if rt.name() == "crun" {
            // crun does not check LISTEN_PID (src/run_create.c): it passes fd 3 anyway
            assert_eq!(fd_numbers(&v), [0, 1, 2, 3], "{v}");
        } else {
            // runc's activation.Files: LISTEN_PID must be the runtime's own pid
            assert_eq!(fd_numbers(&v), [0, 1, 2], "{v}");
            assert!(v["env"]["LISTEN_PID"].is_null(), "{v}");
        }
    }
}

runtime_test! {
    /// `exec --preserve-fds 1`: the exec'd process gets fd 3 from the caller, and no more.
    fn exec_preserve_fds_passes_the_callers_fd(rt) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("extra");
        write_file(&a, b"for exec");
        let mut b = Bundle::new();
        let c = holder(rt, &mut b);
        let args = ["exec", "--preserve-fds", "1", c.id(), "/probe", "fds", "read:/proc/self/fd/3"];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = rt.cmd_wrapped(
            &args,
            |line| through_shell(r#"exec 3<"$A"; exec "$@""#, line, &[("A", &a)]),
            COMMAND_TIMEOUT,
        );
        assert!(out.success(), "{out}");
        let v = out.json();
        assert_eq!(fd_numbers(&v), [0, 1, 2, 3], "{v}");
        assert_eq!(v["read:/proc/self/fd/3"]["head"], "for exec", "{v}");
    }
}

/// A command line as one `sh` string (each word single-quoted), for script(1).
fn shell_line(line: &[OsString]) -> String {
    line.iter()
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `script` running `line` on a new pty whose output goes to script's stdout.
pub(super) fn on_a_pty(line: Vec<OsString>) -> Command {
    let mut c = Command::new("script");
    c.args(["--quiet", "--return", "--command"])
        .arg(shell_line(&line))
        .arg("/dev/null");
    c
}

/// crun 1.8.1 at times relays a container's terminal output through its own error log:
/// each chunk red and timestamped (`ESC[1;31m<time>: <chunk>ESC[0m` and a newline; seen once
/// under load in CI). The chunks joined again, as the container wrote them.
fn unwrap_crun_log(text: &str) -> String {
    const RED: &str = "\u{1b}[1;31m";
    const RESET: &str = "\u{1b}[0m\n";
    if !text.contains(RED) {
        return text.to_owned();
    }
    let mut out = String::new();
    for (i, piece) in text.split(RED).enumerate() {
        if i == 0 {
            out.push_str(piece);
            continue;
        }
        let chunk = piece.split_once(": ").map_or(piece, |(_, c)| c);
        out.push_str(chunk.strip_suffix(RESET).unwrap_or(chunk));
    }
    out
}

/// The probe's JSON out of what a terminal showed (CR LF line ends, maybe echo before).
pub(super) fn json_on_screen(screen: &[u8]) -> Value {
    let text = unwrap_crun_log(&String::from_utf8_lossy(screen).replace('\r', ""));
    let (start, end) = (text.find('{'), text.rfind('}'));
    match (start, end) {
        (Some(s), Some(e)) if s < e => serde_json::from_str(&text[s..=e])
            .unwrap_or_else(|err| panic!("no probe JSON on the terminal ({err}): {text:?}")),
        _ => panic!("no probe JSON on the terminal: {text:?}"),
    }
}

pub(super) fn assert_all_ttys(v: &Value) {
    for s in ["stdin", "stdout", "stderr"] {
        assert_eq!(v["tty"][s]["isatty"], true, "{s} is not a terminal: {v}");
    }
}

fn need_script() -> bool {
    tool_available("script") || !skip_or_fail("script (apt-get install bsdutils)")
}

runtime_test! {
    /// `run` with `"terminal": true`, in the foreground, no console socket, on a real pty:
    /// the process's stdio is a terminal, its output reaches the pty, its exit code is
    /// `run`'s.
    fn run_with_a_terminal_on_a_pty(rt) {
        if !need_script() {
            return;
        }
        let mut b = Bundle::new();
        b.terminal(true).args(&["/bin/sh", "-c", "/probe tty; exit 7"]);
        let out = rt.run_wrapped(&b, &[], on_a_pty);
        assert_eq!(out.code(), Some(7), "{out}");
        assert_all_ttys(&json_on_screen(&out.stdout));
    }
}

runtime_test! {
    /// `exec -t` in the foreground on a real pty: a terminal inside, the exit code back.
    fn exec_with_a_terminal_on_a_pty(rt) {
        if !need_script() {
            return;
        }
        let mut b = Bundle::new();
        let c = holder(rt, &mut b);
        let args = ["exec", "-t", c.id(), "/bin/sh", "-c", "/probe tty; exit 5"];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = rt.cmd_wrapped(&args, on_a_pty, COMMAND_TIMEOUT);
        assert_eq!(out.code(), Some(5), "{out}");
        assert_all_ttys(&json_on_screen(&out.stdout));
    }
}

runtime_test! {
    /// `create --console-socket`: the pty master arrives over SCM_RIGHTS and carries what
    /// the process writes to its terminal.
    fn create_sends_the_pty_master_to_the_console_socket(rt) {
        let console = ConsoleSocket::new();
        let mut b = Bundle::new();
        b.terminal(true).probe(&["tty"]);
        let sock = console.path().to_string_lossy().into_owned();
        let (c, out) = ContainerGuard::try_create_with(rt, &b, &["--console-socket", &sock]);
        assert!(out.success(), "{out}");
        let master = console.master(COMMAND_TIMEOUT);
        c.start();
        let screen = read_pty(master, Duration::from_secs(30));
        assert_all_ttys(&json_on_screen(&screen));
        assert!(c.wait_for_status("stopped", COMMAND_TIMEOUT));
    }
}

runtime_test! {
    /// `exec -t --console-socket`: the exec'd process's pty master arrives over the socket.
    fn exec_sends_the_pty_master_to_the_console_socket(rt) {
        let mut b = Bundle::new();
        let c = holder(rt, &mut b);
        let console = ConsoleSocket::new();
        let sock = console.path().to_string_lossy().into_owned();
        let out = rt.cmd(
            &["exec", "-d", "-t", "--console-socket", &sock, c.id(), "/probe", "tty"],
            COMMAND_TIMEOUT,
        );
        assert!(out.success(), "{out}");
        let screen = read_pty(console.master(COMMAND_TIMEOUT), Duration::from_secs(30));
        assert_all_ttys(&json_on_screen(&screen));
    }
}

/// `features` lists "time" exactly when the kernel has time namespaces (runc 1.1.5 never
/// lists it, and runs none; crun 1.8.1 has no `features` command).
#[test]
fn berth_runtime_features_list_time_as_the_kernel_has_it() {
    let Some(rt) = Runtime::find("berth-runtime") else {
        skip_or_fail("the runtime `berth-runtime` is not available");
        return;
    };
    let v = rt
        .cmd(&["features"], COMMAND_TIMEOUT)
        .assert_success()
        .json();
    let listed = strings(&v["linux"]["namespaces"]);
    let kernel = Path::new("/proc/self/ns/time").exists();
    assert_eq!(listed.contains(&"time".to_owned()), kernel, "{listed:?}");
    for always in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(listed.contains(&always.to_owned()), "{always}: {listed:?}");
    }
}

runtime_test! {
    /// A namespace type absent from `linux.namespaces` is the runtime's own: without uts and
    /// ipc entries (and so without a hostname, which needs a uts namespace of its own) the
    /// container is in the host's uts and ipc namespaces and sees the host's hostname,
    /// while the types still listed are new.
    fn absent_namespaces_are_inherited_from_the_runtime(rt) {
        let mut b = Bundle::new();
        b.config_mut().as_object_mut().unwrap().remove("hostname");
        b.remove_namespace("uts").remove_namespace("ipc").probe(&["ns", "identity"]);
        let v = probe(rt, &b);
        let me = std::process::id() as i32;
        assert_eq!(v["ns"]["uts"], ns_link(me, "uts"), "{v}");
        assert_eq!(v["ns"]["ipc"], ns_link(me, "ipc"), "{v}");
        let host = host_probe(&["identity"]);
        assert_eq!(v["identity"]["hostname"], host["identity"]["hostname"], "{v}");
        // the listed ones are still the container's own
        assert_ne!(v["ns"]["net"], ns_link(me, "net"), "{v}");
        assert_ne!(v["ns"]["mnt"], ns_link(me, "mnt"), "{v}");
    }
}

/// A process in a mount namespace of its own (`unshare --mount`) in which `mnt` of a
/// bundle's rootfs has `source` bind-mounted; killed (by pid) and reaped on drop.
struct MountNsHolder(std::process::Child);

impl MountNsHolder {
    fn spawn(source: &Path, target: &Path) -> MountNsHolder {
        let script = format!(
            "mount --bind '{}' '{}' && exec sleep 600",
            source.display(),
            target.display()
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .spawn()
            .expect("spawn unshare --mount");
        let h = MountNsHolder(child);
        let pid = h.pid();
        let target_s = target.to_string_lossy().into_owned();
        assert!(
            berth_test_support::wait_until(COMMAND_TIMEOUT, || {
                std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                    .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(&target_s)))
                    && std::fs::read_link(format!("/proc/{pid}/exe"))
                        .is_ok_and(|e| e.to_string_lossy().contains("sleep"))
            }),
            "the helper never mounted {target_s} in its mount namespace"
        );
        h
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for MountNsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

runtime_test! {
    /// `{"type": "mount", "path": …}`: the container joins that mount namespace and builds
    /// its root filesystem there (runc and crun both do the whole rootfs setup, pivot_root
    /// included, inside the joined namespace), so a bind mount made in that namespace under
    /// the rootfs — and only there — is visible in the container.
    fn joins_a_mount_namespace_by_path_and_sets_up_the_rootfs_in_it(rt) {
        let mut b = Bundle::new();
        let src = tempfile::tempdir().expect("tempdir");
        write_file(src.path().join("marker"), b"from the joined namespace\n");
        let target = b.rootfs().join("mnt");
        let h = MountNsHolder::spawn(src.path(), &target);
        b.namespace_path("mount", &ns_path(h.pid(), "mnt"))
            .probe(&["ns", "mounts", "read:/mnt/marker"]);
        let v = probe(rt, &b);
        assert_eq!(v["ns"]["mnt"], ns_link(h.pid(), "mnt"), "{v}");
        assert_ne!(v["ns"]["mnt"], ns_link(std::process::id() as i32, "mnt"), "{v}");
        assert_eq!(crate::runtime::outcome(&v, "read:/mnt/marker"), "ok", "{v}");
        assert_eq!(v["read:/mnt/marker"]["head"], "from the joined namespace\n", "{v}");
        // the rootfs was set up there: / is the rootfs, /proc a fresh procfs
        let mounts = v["mounts"].as_array().expect("mounts");
        assert!(
            mounts.iter().any(|m| m["mount_point"] == "/proc" && m["fs_type"] == "proc"),
            "{v}"
        );
        assert!(mounts.iter().any(|m| m["mount_point"] == "/mnt"), "{v}");
        // and nothing of it leaked into the host's mount namespace
        let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let rootfs = b.rootfs().to_string_lossy().into_owned();
        assert!(!host.contains(&rootfs), "the host sees mounts under {rootfs}:\n{host}");
    }
}

/// The mount points at or under `dir` (component-wise) in `mountinfo`'s text.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(str::to_owned)
        .collect()
}

/// The mount points at or under `dir` in the host's mount namespace.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    mounts_under(
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        dir,
    )
}

/// Unmount (lazily, recursively) what a reference runtime left on the host.
fn unmount_leaked(leaked: &[String]) {
    if !leaked.is_empty() {
        let _ = run_with_timeout(
            Command::new("umount")
                .arg("--lazy")
                .arg("--recursive")
                .args(leaked),
            COMMAND_TIMEOUT,
        );
    }
}

/// On drop, unmount whatever is still mounted under a rootfs on the host (what crun leaves),
/// so that a failed assertion does not leave it there.
struct SweepHostMounts(PathBuf);

impl Drop for SweepHostMounts {
    fn drop(&mut self) {
        unmount_leaked(&host_mounts_under(&self.0));
    }
}

/// A config with no namespace at all, and so nothing that needs one: no hostname, no
/// masked or read-only paths.
fn without_namespaces(b: &mut Bundle) -> &mut Bundle {
    let c = b.config_mut();
    c.as_object_mut().unwrap().remove("hostname");
    let linux = c["linux"].as_object_mut().unwrap();
    linux.insert("namespaces".into(), json!([]));
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    b
}

/// What a runtime did in a throwaway mount namespace of its own (`unshare --mount`, copies
/// of the host's mounts): the runtime's command line ran there, after a private bind of
/// `shared/` made shared; its namespace link and its mountinfo once the runtime exited are
/// kept. Nothing of it reaches the host's mount namespace, whatever the runtime does there.
struct ThrowawayMntns {
    dir: tempfile::TempDir,
}

impl ThrowawayMntns {
    fn new() -> ThrowawayMntns {
        let dir = tempfile::Builder::new()
            .prefix("berth-mntns-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        ThrowawayMntns { dir }
    }

    /// The wrapper for [`Runtime::run_wrapped`] and [`Runtime::cmd_wrapped`].
    fn wrap(&self, line: Vec<OsString>) -> Command {
        let script = r#"set -e
d=$1; shift
mount --bind "$d/shared" "$d/shared"
mount --make-shared "$d/shared"
readlink /proc/self/ns/mnt > "$d/mntns"
rc=0
"$@" || rc=$?
cat /proc/self/mountinfo > "$d/mountinfo"
exit $rc"#;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "unchanged",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(self.dir.path())
        .args(line);
        cmd
    }

    /// `mnt:[…]` of the throwaway namespace.
    fn mntns(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mntns"))
            .expect("the wrapper recorded its mount namespace")
            .trim()
            .to_owned()
    }

    /// Its mountinfo after the runtime exited.
    fn mountinfo(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mountinfo"))
            .expect("the wrapper recorded its mounts")
    }

    /// Whether `shared/` was still shared after the runtime exited.
    fn still_shared(&self) -> bool {
        let shared = self.dir.path().join("shared");
        let info = self.mountinfo();
        let line = info
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(4).map(Path::new) == Some(shared.as_path()))
            .unwrap_or_else(|| panic!("{} is not mounted:\n{info}", shared.display()));
        line.split(" - ")
            .next()
            .unwrap_or_default()
            .split(' ')
            .any(|f| f.starts_with("shared:"))
    }
}

runtime_test! {
    /// runtime-spec: "If a namespace type is not specified in the namespaces array, the
    /// container MUST inherit the runtime namespace of that type" — the mount namespace
    /// too (runtime-tools' linux_ns_itype). With no namespace at all the container is in
    /// every one of the runtime's: the rootfs is set up in the runtime's mount namespace
    /// and entered with chroot. berth-runtime changes no mount of the runtime's but its
    /// own and leaves nothing mounted under the rootfs once the container is deleted.
    /// Pinned: runc 1.1 makes the runtime's `/` rslave, recursively (a shared mount of the
    /// host stops propagating), and leaves the rootfs bind and every mount under it; crun
    /// 1.8 leaves every mount under the rootfs. So runc runs only in a throwaway mount
    /// namespace here, and crun's leftovers are unmounted by the test.
    fn a_config_without_namespaces_runs_in_the_runtimes_own(rt) {
        let mut b = Bundle::new();
        without_namespaces(&mut b).probe(&["ns", "mounts"]);
        let me = std::process::id() as i32;
        let types = ["cgroup", "ipc", "net", "pid", "pid_for_children", "time", "user", "uts"];

        // in a throwaway mount namespace: which mounts of the runtime's it changes
        let t = ThrowawayMntns::new();
        let out = rt.run_wrapped(&b, &[], |line| t.wrap(line));
        assert!(out.success(), "{out}");
        let v = out.json();
        for name in types {
            assert_eq!(v["ns"][name], ns_link(me, name), "{name}: {v}");
        }
        assert_eq!(v["ns"]["mnt"], t.mntns(), "{v}");
        // the container's / is its rootfs, with a fresh /proc on it
        let mounts = v["mounts"].as_array().expect("mounts");
        assert!(mounts.iter().any(|m| m["mount_point"] == "/proc" && m["fs_type"] == "proc"), "{v}");
        let left = mounts_under(&t.mountinfo(), &b.rootfs());
        match rt.name() {
            "runc" => {
                assert!(!t.still_shared(), "runc no longer changes the runtime's / propagation");
                assert!(!left.is_empty(), "runc left no mount under the rootfs");
            }
            "crun" => {
                assert!(t.still_shared(), "crun changed the propagation of a mount of the runtime's");
                assert!(!left.is_empty(), "crun left no mount under the rootfs");
            }
            name => {
                assert!(t.still_shared(), "{name} changed the propagation of a mount of the runtime's");
                assert!(left.is_empty(), "{name} left {left:?} mounted under the rootfs");
            }
        }

        // in the test's own mount namespace: the init and a process `exec`'d into the
        // container are in every one of the test process's namespaces, the exec'd one in
        // the container's root
        if rt.name() == "runc" {
            return;
        }
        b.probe(&["wait-signal"]);
        // crun's leftovers are unmounted even when an assertion fails (after the guard)
        let _sweep = SweepHostMounts(b.rootfs());
        let c = ContainerGuard::create(rt, &b);
        c.start();
        assert!(c.wait_for_status("running", COMMAND_TIMEOUT), "the container never ran");
        for name in types.iter().chain(&["mnt"]) {
            assert_eq!(ns_link(c.pid(), name), ns_link(me, name), "{name} of the init");
        }
        let out = c.exec(&["/probe", "ns", "mounts"]);
        if rt.name() == "crun" {
            // pinned: crun 1.8 does not enter the container's root for `exec` without a
            // mount namespace; the program is looked up on the host
            assert!(!out.success(), "{out}");
            assert!(out.stderr_str().contains("/probe` not found"), "{out}");
        } else {
            assert!(out.success(), "{out}");
            let v = out.json();
            for name in types.iter().chain(&["mnt"]) {
                assert_eq!(v["ns"][*name], ns_link(me, name), "{name} of the exec'd process: {v}");
            }
            let mounts = v["mounts"].as_array().expect("mounts");
            assert!(
                mounts.iter().any(|m| m["mount_point"] == "/proc" && m["fs_type"] == "proc"),
                "the exec'd process is not in the container's root: {v}"
            );
        }
        c.kill("KILL");
        assert!(c.wait_for_status("stopped", COMMAND_TIMEOUT), "the container never stopped");
        let out = c.delete();
        let leaked = host_mounts_under(&b.rootfs());
        unmount_leaked(&leaked);
        assert!(out.success(), "{out}");
        if rt.name() == "crun" {
            assert!(!leaked.is_empty(), "crun left no mount on the host this time");
        } else {
            assert!(leaked.is_empty(), "{} left {leaked:?} on the host", rt.name());
        }
    }
}

runtime_test! {
    /// The same, with the bundle reached through a symlink (`/var/run` → `/run` is common):
    /// the kernel reports the mounts under the resolved rootfs path, and berth-runtime still
    /// finds and detaches every one of them. runc's and crun's leftovers pinned, as above.
    fn a_bundle_behind_a_symlink_without_a_mount_namespace_leaves_no_mount(rt) {
        let mut b = Bundle::new();
        without_namespaces(&mut b).probe(&["self"]);
        b.write_config();
        let links = tempfile::tempdir().expect("tempdir");
        let link = links.path().join("bundle");
        std::os::unix::fs::symlink(b.path(), &link).unwrap();
        let t = ThrowawayMntns::new();
        let guard = ContainerGuard::adopt(rt, &b);
        let args = [OsStr::new("run"), OsStr::new("--bundle"), link.as_os_str(), OsStr::new(b.id())];
        let out = rt.cmd_wrapped(&args, |line| t.wrap(line), COMMAND_TIMEOUT);
        drop(guard);
        assert!(out.success(), "{out}");
        let left = mounts_under(&t.mountinfo(), &b.rootfs());
        assert_only_peers_leak(rt, &left);
    }
}

/// Mounts left under the rootfs in the runtime's mount namespace: none for berth-runtime;
/// pinned for runc 1.1 and crun 1.8, which leave theirs.
#[track_caller]
fn assert_only_peers_leak(rt: &Runtime, left: &[String]) {
    match rt.name() {
        "runc" | "crun" => {
            assert!(
                !left.is_empty(),
                "{} left no mount under the rootfs",
                rt.name()
            );
        }
        name => assert!(
            left.is_empty(),
            "{name} left {left:?} mounted under the rootfs"
        ),
    }
}

runtime_test! {
    /// A `create` without a mount namespace that fails half-way (a bind mount whose source
    /// is missing, after /proc, /dev, /sys... are mounted): berth-runtime detaches what the
    /// init had mounted in the runtime's mount namespace. Pinned: runc 1.1 and crun 1.8
    /// leave those mounts (in a throwaway mount namespace here).
    fn a_failed_create_without_a_mount_namespace_leaves_no_mount(rt) {
        let mut b = Bundle::new();
        without_namespaces(&mut b);
        b.config_mut()["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/missing",
            "type": "bind",
            "source": "/nonexistent-berth-source",
            "options": ["rbind"]
        }));
        b.write_config();
        let t = ThrowawayMntns::new();
        let guard = ContainerGuard::adopt(rt, &b);
        let bundle = b.path().as_os_str();
        let args = [OsStr::new("create"), OsStr::new("--bundle"), bundle, OsStr::new(b.id())];
        let out = rt.cmd_wrapped(&args, |line| t.wrap(line), COMMAND_TIMEOUT);
        drop(guard);
        assert!(!out.success(), "{out}");
        assert!(out.stderr_str().contains("nonexistent-berth-source"), "{out}");
        let left = mounts_under(&t.mountinfo(), &b.rootfs());
        assert_only_peers_leak(rt, &left);
    }
}

runtime_test! {
    /// No mount namespace, but masked and read-only paths (mounts over /proc and /sys that
    /// would be made in the runtime's own mount namespace): refused with runc's reason
    /// ("unable to restrict sys entries without a private MNT namespace"), and by
    /// berth-runtime with a hint. crun 1.8 truly differs, pinned: it runs the container and
    /// leaves its mounts (/proc, /dev, /sys...) on the host under the rootfs, which this
    /// test then unmounts.
    fn masked_paths_without_a_mount_namespace_are_refused(rt) {
        let mut b = Bundle::new();
        b.remove_namespace("mount").probe(&["self"]);
        let _sweep = SweepHostMounts(b.rootfs());
        let out = rt.run(&b);
        let leaked = host_mounts_under(&b.rootfs());
        unmount_leaked(&leaked);
        match rt.name() {
            "crun" => {
                assert!(out.success(), "{out}");
                assert!(!leaked.is_empty(), "crun left no mount on the host this time: {out}");
            }
            name => {
                assert!(!out.success(), "{name} ran without a mount namespace: {out}");
                assert!(leaked.is_empty(), "{name} left {leaked:?} on the host");
                let err = out.stderr_str();
                assert!(
                    err.contains("unable to restrict sys entries without a private MNT namespace"),
                    "{out}"
                );
                if name == "berth-runtime" {
                    assert!(err.contains("hint: add"), "{out}");
                    assert!(err.contains("to linux.namespaces, or empty linux.maskedPaths"), "{out}");
                }
            }
        }
    }
}

/// crun's error-log wrapping (as seen in CI, 2026-12-04) is taken off chunk by chunk.
#[test]
fn crun_log_wrapping_is_taken_off_the_screen() {
    let screen = "\u{1b}[1;31m2026-12-04T10:38:41.348766Z: {\"a\":{\"errno_n\u{1b}[0m\n\u{1b}[1;31m2026-12-04T10:38:41.348789Z: ame\":\"EPERM\"},\"b\":1}\n\u{1b}[0m\n";
    assert_eq!(
        json_on_screen(screen.as_bytes()),
        serde_json::json!({"a": {"errno_name": "EPERM"}, "b": 1})
    );
    assert_eq!(unwrap_crun_log("plain {\"x\":1}"), "plain {\"x\":1}");
}
