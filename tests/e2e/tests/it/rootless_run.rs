//! `berth run` as an ordinary user (rootless, as podman's): the test runs as root and drops
//! to the user `berth-rootless` (made by scripts/test, with subordinate ids
//! `200000:65536`), whose berth keeps its data in `$XDG_DATA_HOME` and joins a user
//! namespace held by its pause process (`$XDG_RUNTIME_DIR/berth/pause.pid`).
//!
//! Each test owns the user's HOME, XDG_DATA_HOME and XDG_RUNTIME_DIR; its guard removes
//! its containers and kills its pause process, panics included.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    berth_bin, requires_root, requires_tool, run_with_timeout, wait_until, write_file,
};

use crate::common::assert_rate;

const USER: &str = "berth-rootless";
const SUBUID_START: u32 = 200_000;
const IMAGE: &str = "localhost/busybox:rootless";
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user's berth with its own directories and a busybox image imported from a tar
/// archive (made as root, so that it can hold files of other owners).
struct UserBerth {
    home: tempfile::TempDir,
    uid: u32,
    gid: u32,
}

impl UserBerth {
    fn new() -> Option<UserBerth> {
        let Some((uid, gid)) = berth_test_support::passwd_ids(USER) else {
            berth_test_support::skip_or_fail(&format!(
                "no user {USER} (scripts/test creates it, with subordinate ids)"
            ));
            return None;
        };
        let home = tempfile::Builder::new()
            .prefix("berth-rootless-run-")
            .tempdir()
            .unwrap();
        for d in ["", "data", "run"] {
            let p = home.path().join(d);
            std::fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(
            home.path().join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let b = UserBerth { home, uid, gid };
        let tar = b.image_tar();
        b.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        Some(b)
    }

    /// A busybox root filesystem as a tar archive, `/home/app` owned by 1000:1001.
    fn image_tar(&self) -> PathBuf {
        let root = self.home.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "home/app", "proc", "sys", "dev"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in [
            "sh", "echo", "cat", "sleep", "id", "ls", "stat", "touch", "true", "ps", "mount", "tr",
            "ip", "nc",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        write_file(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
        std::os::unix::fs::chown(root.join("home/app"), Some(1000), Some(1001)).unwrap();
        let tar = self.home.path().join("rootfs.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        tar
    }

    fn data(&self) -> PathBuf {
        self.home.path().join("data/berth")
    }

    fn xdg_runtime(&self) -> PathBuf {
        self.home.path().join("run")
    }

    /// `berth ARGS…` as the user, with a clean environment, as a login shell gives one.
    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_in(None, args)
    }

    /// [`UserBerth::cmd`] in the network namespace at `netns` (the host's: `None`).
    fn cmd_in(&self, netns: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        if let Some(ns) = netns {
            c.arg(format!("--net={ns}"));
        }
        c.args(["--", "setpriv"])
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--init-groups", "--"])
            .arg(berth_bin())
            .args(args)
            .current_dir(self.home.path())
            .env_clear()
            .env("PATH", HOST_PATH)
            .env("USER", USER)
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_RUNTIME_DIR", self.xdg_runtime())
            .env("NO_COLOR", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.cmd(args), Duration::from_secs(120))
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} as {USER} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn pause_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.xdg_runtime().join("berth/pause.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for UserBerth {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-a", "-q", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        if let Some(pid) = self.pause_pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
    }
}

/// The process's real uid on the host, from `/proc/PID/status`.
fn host_uid(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

fn mounts_under(pid: i32, dir: &Path) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(dir.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_ordinary_users_run_is_root_of_its_own_namespace_and_keeps_image_owners() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap", "runc", "crun");
    let Some(b) = UserBerth::new() else { return };
    for rt in ["berth-runtime", "runc", "crun"] {
        let out = b.ok(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            IMAGE,
            "sh",
            "-c",
            "id -u; stat -c %u:%g /home/app /bin/busybox; cat /proc/self/uid_map; touch /x && echo rw",
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "0", "{rt}: {out}");
        // the image's owners kept: 1000:1001 in the layer is 1000:1001 in the container
        assert_eq!(lines[1], "1000:1001", "{rt}: {out}");
        assert_eq!(lines[2], "0:0", "{rt}: {out}");
        // root is the user, then the user's subordinate ids, nothing else of the host
        let map: Vec<Vec<&str>> = lines[3..5]
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(map[0], ["0", &b.uid.to_string(), "1"], "{rt}: {out}");
        assert_eq!(
            map[1],
            ["1", &SUBUID_START.to_string(), "65536"],
            "{rt}: {out}"
        );
        assert_eq!(lines[5], "rw", "{rt}: {out}");
    }
    // a limit without a cgroup to enforce it is refused by berth (crun would run the
    // container without it on a cgroup v1 host), and nothing is left behind
    for flag in [["--pids-limit", "10"], ["--memory", "64m"]] {
        let out = b.run(&[
            "run",
            "--rm",
            "--runtime",
            "crun",
            flag[0],
            flag[1],
            IMAGE,
            "true",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flag:?}: {err}");
        assert!(
            err.contains(&format!("{} needs a cgroup", flag[0])),
            "{err}"
        );
    }
    assert!(b.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // on disk the layer's files belong to the user and to its subordinate ids
    let found = walkdir_find(&b.data().join("snapshots"), "app");
    let meta = std::fs::metadata(found.expect("home/app in a snapshot")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (SUBUID_START + 999, SUBUID_START + 1000)
    );
    // the store belongs to the user, not to root
    assert_eq!(std::fs::metadata(b.data()).unwrap().uid(), b.uid);
}

/// The first path under `dir` named `name` (bounded depth).
fn walkdir_find(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![(dir.to_owned(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if e.file_name() == name {
                return Some(p);
            }
            if depth < 8 && e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((p, depth + 1));
            }
        }
    }
    None
}

#[test]
fn rootless_detached_container_is_seen_by_every_later_command_and_removed_cleanly() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap");
    let Some(b) = UserBerth::new() else { return };
    let vol = b.home.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(b.uid), Some(b.gid)).unwrap();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-v",
            &format!("{}:/data", vol.display()),
            IMAGE,
            "sh",
            "-c",
            "echo started; touch /data/made-by-root; exec sleep 300",
        ])
        .trim()
        .to_owned();
    let pause = b.pause_pid().expect("a pause process");
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "web"])).unwrap();
    let pid = i32::try_from(inspect[0]["State"]["Pid"].as_i64().unwrap()).unwrap();
    // container root is the user on the host, never host root
    assert_eq!(host_uid(pid), b.uid);
    assert!(
        wait_until(Duration::from_secs(10), || vol
            .join("made-by-root")
            .exists()),
        "the container did not write its volume"
    );
    assert_eq!(
        std::fs::metadata(vol.join("made-by-root")).unwrap().uid(),
        b.uid,
        "a file container root made belongs to the user"
    );
    // each later command joins the same namespace: ps, exec, logs, stop, rm
    assert!(b.ok(&["ps"]).contains("web"));
    assert_eq!(b.ok(&["exec", "web", "id", "-u"]).trim(), "0");
    assert!(
        wait_until(Duration::from_secs(10), || b
            .ok(&["logs", "web"])
            .contains("started")),
        "no log line"
    );
    assert_eq!(b.pause_pid(), Some(pause), "one pause process for them all");
    let rootfs = b.data().join("rootfs").join(&id);
    assert!(
        !mounts_under(pause, &rootfs).is_empty(),
        "the root filesystem is mounted in the user's namespace"
    );
    assert!(
        mounts_under(1, &b.data()).is_empty(),
        "nothing of the user's is mounted in the host's namespace"
    );
    b.ok(&["stop", "-t", "1", "web"]);
    b.ok(&["rm", "web"]);
    assert!(b.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(mounts_under(pause, &b.data()).is_empty(), "a mount left");
    assert!(!rootfs.exists(), "the root filesystem directory left");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the container's process left"
    );
}

#[test]
fn a_killed_pause_process_leaves_running_containers_within_reach() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap");
    let Some(b) = UserBerth::new() else { return };
    let id = b
        .ok(&["run", "-d", "--name", "kept", IMAGE, "sleep", "300"])
        .trim()
        .to_owned();
    let first = b.pause_pid().expect("a pause process");
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let container_ns = ns(first);
    let status = Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        wait_until(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{first}"
        ))
        .exists()),
        "the pause process did not die"
    );
    // the next command finds the container's namespace through its monitor
    assert_eq!(b.ok(&["exec", "kept", "id", "-u"]).trim(), "0");
    let second = b.pause_pid().expect("a new pause process");
    assert_ne!(second, first);
    assert_eq!(
        ns(second),
        container_ns,
        "the new pause process holds the same namespace"
    );
    let rootfs = b.data().join("rootfs").join(&id);
    assert!(!mounts_under(second, &rootfs).is_empty());
    b.ok(&["rm", "-f", "kept"]);
    assert!(mounts_under(second, &b.data()).is_empty(), "a mount left");
    assert!(!rootfs.exists());
}

/// `tar -c` of `dir` (GNU tar writes `.wh.` names as plain files, as image builders do).
fn tar_of(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

#[test]
fn rootless_layers_with_whiteouts_and_opaque_directories_are_merged_by_overlayfs() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap", "tar");
    let Some(b) = UserBerth::new() else { return };
    // layer 1: the busybox root filesystem (left by `new`) plus /etc/motd and /opt/old;
    // layer 2 deletes
    // /etc/motd (a whiteout) and replaces /opt (an opaque directory)
    let root = b.home.path().join("rootfs");
    write_file(root.join("etc/motd"), b"old motd\n");
    std::fs::create_dir_all(root.join("opt")).unwrap();
    write_file(root.join("opt/old"), b"old\n");
    let tar1 = tar_of(&root);
    let l2 = b.home.path().join("l2");
    std::fs::create_dir_all(l2.join("etc")).unwrap();
    std::fs::create_dir_all(l2.join("opt")).unwrap();
    write_file(l2.join("etc/.wh.motd"), b"");
    write_file(l2.join("opt/.wh..wh..opq"), b"");
    write_file(l2.join("opt/new"), b"new\n");
    let layers = [
        berth_test_support::Layer::from_tar(&tar1),
        berth_test_support::Layer::from_tar(&tar_of(&l2)),
    ];
    let mut layout = berth_test_support::OciLayout::new(b.home.path().join("layout"));
    let config = berth_test_support::image_config("linux", "amd64", &layers);
    let desc = layout.image(&layers, &config);
    layout.tag(&desc, "two");
    let status = Command::new("chown")
        .args(["-R", &format!("{}:{}", b.uid, b.gid)])
        .arg(layout.dir())
        .status()
        .unwrap();
    assert!(status.success());
    b.ok(&[
        "copy",
        &format!("oci:{}:two", layout.dir().display()),
        "store:localhost/layered:two",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "localhost/layered:two",
        "sh",
        "-c",
        "ls /opt; cat /etc/motd 2>/dev/null || echo motd-gone; touch /opt/x && ls /opt",
    ]);
    assert_eq!(out, "new\nmotd-gone\nnew\nx\n");
    // the opaque directory is marked with the xattr overlayfs reads under `userxattr`
    let opaque = walkdir_find(&b.data().join("snapshots"), ".wh..wh..opq");
    assert!(opaque.is_none(), "the opaque marker was unpacked as a file");
}

#[test]
fn a_user_without_subordinate_ids_is_told_what_to_add() {
    requires_root!();
    requires_tool!("setpriv");
    // nobody has no /etc/subuid line (scripts/test gives ranges to root, containers and
    // berth-rootless only)
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    assert!(
        !subuid
            .lines()
            .any(|l| l.starts_with("nobody:") || l.starts_with("65534:")),
        "this test needs nobody without subordinate ids"
    );
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(home.path(), Some(65534), Some(65534)).unwrap();
    let out = run_with_timeout(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(berth_bin())
            .args(["run", "--rm", IMAGE, "true"])
            .env_clear()
            .env("PATH", HOST_PATH)
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path()),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("/etc/subuid grants no subordinate ids to nobody")
            && err.contains("usermod --add-subuids"),
        "{err}"
    );
    // and no pause process was left behind
    assert!(!home.path().join("berth/pause.pid").exists());
}

#[test]
fn rootless_init_detached_exec_seeded_and_named_volumes_work_too() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap");
    let Some(b) = UserBerth::new() else { return };
    // --init: PID 1 is the init, the command its child, the exit code passed through
    let out = b.run(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("/sbin/docker-init"), "{stdout}");
    // exec -d returns at once, its process runs on
    b.ok(&["run", "-d", "--name", "bg", IMAGE, "sleep", "300"]);
    b.ok(&["exec", "-d", "bg", "sh", "-c", "sleep 1; touch /tmp/done"]);
    assert!(
        wait_until(Duration::from_secs(15), || b
            .run(&["exec", "bg", "stat", "/tmp/done"])
            .status
            .success()),
        "the detached exec never ran"
    );
    // an anonymous volume starts with the image's content, owners kept
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "/home",
        IMAGE,
        "stat",
        "-c",
        "%u:%g",
        "/home/app",
    ]);
    assert_eq!(out.trim(), "1000:1001");
    // a named volume: filled from the image, kept, the container's root is the user on disk
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "homes:/home",
        IMAGE,
        "sh",
        "-c",
        "stat -c %u:%g /home/app; echo kept > /home/note",
    ]);
    assert_eq!(out.trim(), "1000:1001");
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "homes:/home",
        IMAGE,
        "cat",
        "/home/note",
    ]);
    assert_eq!(out.trim(), "kept");
    let note = walkdir_find(&b.data(), "note").expect("the volume's file under the user's data");
    assert!(
        note.to_string_lossy().contains("named-volumes/homes/_data"),
        "{note:?}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&note).unwrap().uid(), b.uid);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "homes\n");
    b.ok(&["rm", "-f", "bg"]);
    assert_eq!(b.ok(&["volume", "rm", "homes"]), "homes\n");
}

/// The pids of live (not zombie) processes whose command line mentions `needle`: a pasta
/// attached to a container's namespace names its path, which holds the container's id.
fn processes_naming(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true);
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// The host's IPv4 addresses (read only: the interfaces are never touched).
fn host_ipv4_addresses() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            f.find(|w| *w == "inet")?;
            Some(f.next()?.split('/').next()?.to_owned())
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn rootless_run_gets_a_network_through_pasta_and_a_published_port_answers_on_loopback() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap", "pasta", "ip");
    let Some(b) = UserBerth::new() else { return };
    // the default network of an ordinary user's berth: an interface with the host's address
    let out = b.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ip -o -4 addr show dev eth0; ip route",
    ]);
    let address = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no IPv4 address on eth0:\n{out}"))
        .to_owned();
    assert!(
        host_ipv4_addresses().contains(&address),
        "pasta copies the host's address; {address} is not one:\n{out}"
    );
    assert!(
        out.contains("default via"),
        "the host's routes copied:\n{out}"
    );
    // its own sysfs: the namespace is the container's (made in the user namespace it shares),
    // so none of the host's interfaces shows under /sys/class/net
    let out = b.ok(&["run", "--rm", IMAGE, "sh", "-c", "echo /sys/class/net/*"]);
    assert_eq!(out, "/sys/class/net/eth0 /sys/class/net/lo\n");

    // -p: pasta listens on the host's loopback as the user and forwards into the container
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            IMAGE,
            "sh",
            "-c",
            "while true; do echo hello-from-pasta | nc -l -p 8080; done",
        ])
        .trim()
        .to_owned();
    let mut answer = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            use std::io::Read;
            answer.clear();
            std::net::TcpStream::connect(("127.0.0.1", port))
                .and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    s.read_to_string(&mut answer)
                })
                .is_ok()
                && answer.contains("hello-from-pasta")
        }),
        "127.0.0.1:{port} did not answer from the container (last: {answer:?})"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "web"])).unwrap();
    let net = &inspect[0]["NetworkSettings"];
    assert_eq!(net["Networks"]["pasta"]["Interface"], "eth0", "{net}");
    assert_eq!(
        net["Networks"]["pasta"]["IPAddress"],
        address.as_str(),
        "{net}"
    );
    assert_eq!(
        net["Ports"][0],
        format!("127.0.0.1:{port}->8080/tcp"),
        "{net}"
    );
    let netns_path = b.data().join("netns").join(&id);
    let pasta = processes_naming(netns_path.to_str().unwrap());
    assert_eq!(pasta.len(), 1, "one pasta for the container: {pasta:?}");
    assert_eq!(host_uid(pasta[0]), b.uid, "pasta runs as the user");

    // shaping is made in the container's own namespace (its rates are measured in
    // `rootless_bandwidth_limits_hold_through_pasta_and_change_on_update`)
    let out = b.ok(&[
        "run",
        "--rm",
        "--annotation",
        "kubernetes.io/ingress-bandwidth=1M",
        IMAGE,
        "ip",
        "-o",
        "link",
        "show",
    ]);
    assert!(
        out.contains("berth-ingress"),
        "the IFB of the ingress shaping: {out}"
    );

    // rm: the namespace is unpinned and pasta exits with it
    b.ok(&["rm", "-f", "web"]);
    assert!(
        wait_until(Duration::from_secs(10), || processes_naming(
            netns_path.to_str().unwrap()
        )
        .is_empty()),
        "pasta left after rm"
    );
    let netns = b.data().join("netns");
    let left: Vec<String> = std::fs::read_dir(&netns)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&id))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", netns.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "127.0.0.1:{port} still answers after rm"
    );
}

/// A network namespace of the test's own with a default route (pasta copies the routes and
/// addresses of the namespace it starts in), deleted on drop.
struct RoutedNetns(String);

impl RoutedNetns {
    /// Its address, on one end of a veth pair whose both ends it holds.
    const ADDRESS: &'static str = "10.91.7.2";

    fn new() -> RoutedNetns {
        let name = format!("berth-e2e-{}-pasta", std::process::id());
        let ns = RoutedNetns(name);
        for args in [
            vec!["netns", "add", &ns.0],
            vec![
                "-n", &ns.0, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
            ],
            vec!["-n", &ns.0, "addr", "add", "10.91.7.2/24", "dev", "d0"],
            vec!["-n", &ns.0, "link", "set", "d0", "up"],
            vec!["-n", &ns.0, "link", "set", "d1", "up"],
            vec!["-n", &ns.0, "link", "set", "lo", "up"],
            vec!["-n", &ns.0, "route", "add", "default", "via", "10.91.7.1"],
        ] {
            let out = Command::new("ip").args(&args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        }
        ns
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for RoutedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// iperf3 from the namespace `from` to `ADDRESS:port`; `reverse`: the server sends. Mbit/s
/// received, measured again (bounded) while the server is between two tests.
fn iperf_mbits(from: &str, port: u16, reverse: bool) -> f64 {
    let mut last = serde_json::Value::Null;
    let measured = wait_until(Duration::from_secs(20), || {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={from}")).args([
            "iperf3",
            "-c",
            RoutedNetns::ADDRESS,
            "-p",
            &port.to_string(),
            "-J",
            "-t",
            "3",
        ]);
        if reverse {
            c.arg("-R");
        }
        let out = run_with_timeout(&mut c, Duration::from_secs(40));
        last = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        !last["error"].as_str().is_some_and(|e| {
            e.contains("Connection refused") || e.contains("busy") || e.contains("reset by peer")
        })
    });
    assert!(measured, "iperf3 kept being refused: {last}");
    last["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate in {last}"))
        / 1e6
}

#[test]
fn rootless_bandwidth_limits_hold_through_pasta_and_change_on_update() {
    requires_root!();
    requires_tool!(
        "setpriv",
        "newuidmap",
        "newgidmap",
        "pasta",
        "ip",
        "nsenter",
        "iperf3",
        "tc",
        "ss"
    );
    let Some(b) = UserBerth::new() else { return };
    // the user's berth in a namespace of the test's own: pasta's host side is there, and
    // iperf3 reaches the published port at its address (not loopback, which pasta splices
    // past the container's interface)
    let ns = RoutedNetns::new();
    let run = |args: &[&str]| {
        let out = run_with_timeout(
            &mut b.cmd_in(Some(&ns.path()), args),
            Duration::from_secs(120),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "run",
        "-d",
        "--name",
        "capped",
        "-p",
        "5301:5201",
        "--network-bandwidth",
        "egress=10mbit,ingress=10mbit",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "capped"])).unwrap();
    let bw = &inspect[0]["NetworkSettings"]["Bandwidth"];
    assert_eq!(bw["egress_rate"], 10_000_000, "{inspect}");
    assert_eq!(bw["ingress_rate"], 10_000_000, "{inspect}");
    let pid = inspect[0]["State"]["Pid"].as_i64().unwrap();
    let container_ns = format!("/proc/{pid}/ns/net");
    // the server in the container's namespace, the client on pasta's side
    let _server = berth_test_support::ChildGuard::spawn(
        Command::new("nsenter")
            .arg(format!("--net={container_ns}"))
            .args(["iperf3", "-s", "-p", "5201"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let ss = Command::new("nsenter")
                .arg(format!("--net={container_ns}"))
                .args(["ss", "-ltn"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&ss.stdout).contains(":5201")
        }),
        "iperf3 -s did not listen in the container's namespace"
    );
    let into = || iperf_mbits(&ns.path(), 5301, false);
    let out_of = || iperf_mbits(&ns.path(), 5301, true);
    assert_rate("into the container", into, 10.0);
    assert_rate("out of the container", out_of, 10.0);

    // the container cannot lift its limits: it has no CAP_NET_ADMIN, and berth refuses to
    // shape one that would
    let out = b.run(&["exec", "capped", "ip", "link", "del", "berth-ingress"]);
    assert!(!out.status.success(), "the container removed its IFB");
    // nor can a neighbour sharing its network namespace, with the default capabilities
    let (code, _, err) = run(&[
        "run",
        "--rm",
        "--network",
        "container:capped",
        IMAGE,
        "ip",
        "link",
        "del",
        "berth-ingress",
    ]);
    assert!(
        code.is_some_and(|c| c != 0 && c != 125),
        "a neighbour's ip link del ran and must fail: {code:?} {err}"
    );
    assert_rate("into the container, after its try", into, 10.0);
    // each refused with an error naming the capability
    let refused = |code: Option<i32>, err: &str, want: Option<i32>| {
        match want {
            Some(c) => assert_eq!(code, Some(c), "{err}"),
            None => assert_ne!(code, Some(0), "{err}"),
        }
        assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    };
    // `run -d --name NAME FLAGS… IMAGE sleep 300`, which must start
    let detached = |name: &str, flags: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend(flags);
        args.extend([IMAGE, "sleep", "300"]);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
    };
    let net_admin = ["--cap-add", "NET_ADMIN"];
    let (code, _, err) = run(&[
        "run",
        "--rm",
        "--cap-add",
        "NET_ADMIN",
        "--network-bandwidth",
        "egress=1mbit",
        IMAGE,
        "true",
    ]);
    refused(code, &err, Some(125));
    detached("admin", &net_admin);
    let (code, _, err) = run(&["update", "--network-bandwidth", "egress=1mbit", "admin"]);
    refused(code, &err, None);
    // nor may a neighbour in the capped container's namespace hold it: not one joining it
    // now, and no cap on a container that such a neighbour already shares (an uncapped
    // container takes one: the control)
    let (code, _, err) = run(&[
        "run",
        "--rm",
        "--network",
        "container:capped",
        "--cap-add",
        "NET_ADMIN",
        IMAGE,
        "true",
    ]);
    refused(code, &err, Some(125));
    detached(
        "admin-neighbour",
        &["--network", "container:admin", "--cap-add", "NET_ADMIN"],
    );
    b.ok(&["rm", "-f", "admin-neighbour", "admin"]);
    detached("plain", &[]);
    detached(
        "plain-neighbour",
        &["--network", "container:plain", "--cap-add", "NET_ADMIN"],
    );
    let (code, _, err) = run(&["update", "--network-bandwidth", "egress=1mbit", "plain"]);
    refused(code, &err, None);
    assert!(err.contains("held by"), "{err}");
    b.ok(&["rm", "-f", "plain-neighbour", "plain"]);

    // update: out of the container at 20 Mbit/s, into it unshaped (well over the old limit)
    let (code, out, err) = run(&["update", "--network-bandwidth", "egress=20mbit", "capped"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_rate("out of the container, updated", out_of, 20.0);
    let free = into();
    eprintln!("into the container, unshaped after the update: {free:.2} Mbit/s");
    assert!(
        free > 30.0,
        "into the container after update: {free:.2} Mbit/s"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "capped"])).unwrap();
    let bw = &inspect[0]["NetworkSettings"]["Bandwidth"];
    assert_eq!(bw["egress_rate"], 20_000_000, "{inspect}");
    assert_eq!(bw["ingress_rate"], 0, "{inspect}");
    b.ok(&["rm", "-f", "capped"]);
}

#[test]
fn rootless_network_none_still_works_and_a_killed_rm_container_leaves_no_pasta() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap", "pasta");
    let Some(b) = UserBerth::new() else { return };
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "ip -o link show",
    ]);
    let links: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim))
        .collect();
    assert_eq!(links, ["lo"], "{out}");

    // a --rm container killed: its monitor tears the network down, pasta goes with it
    let id = b
        .ok(&["run", "-d", "--rm", IMAGE, "sleep", "300"])
        .trim()
        .to_owned();
    let netns = b.data().join("netns").join(&id);
    let netns = netns.to_str().unwrap();
    assert_eq!(
        processes_naming(netns).len(),
        1,
        "a pasta for the container"
    );
    b.ok(&["kill", &id]);
    assert!(
        wait_until(Duration::from_secs(20), || b
            .ok(&["ps", "-a", "-q", "--no-trunc"])
            .trim()
            .is_empty()),
        "the --rm container was not removed"
    );
    assert!(
        wait_until(Duration::from_secs(10), || processes_naming(netns)
            .is_empty()),
        "pasta left after the killed container was removed: {:?}",
        processes_naming(netns)
    );
}

#[test]
fn a_rootless_run_killed_after_pasta_started_leaves_nothing_after_system_prune() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap", "pasta");
    let Some(b) = UserBerth::new() else { return };
    // a `pasta` first on PATH that runs the real one, says so, and then hangs: the `run`
    // is killed while it waits, after the namespace and pasta exist and before any record
    let bin = b.home.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let started = b.home.path().join("pasta-started");
    let wrapper_pid = b.home.path().join("wrapper.pid");
    write_file(
        bin.join("pasta"),
        format!(
            "#!/bin/sh\n/usr/bin/pasta \"$@\" || exit $?\necho $$ > {}\ntouch {}\nexec sleep 300\n",
            wrapper_pid.display(),
            started.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(
        bin.join("pasta"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::chown(&bin, Some(b.uid), Some(b.gid)).unwrap();
    let mut run = b.cmd(&["run", "-d", IMAGE, "sleep", "300"]);
    run.env("PATH", format!("{}:{HOST_PATH}", bin.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = run.spawn().unwrap();
    let seen = wait_until(Duration::from_secs(30), || started.exists());
    // setpriv execs berth: the child is berth itself
    let _ = child.kill();
    let _ = child.wait();
    if let Ok(pid) = std::fs::read_to_string(&wrapper_pid) {
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).output();
    }
    assert!(seen, "the wrapped pasta never started");
    let netns = b.data().join("netns");
    let id = std::fs::read_dir(&netns)
        .unwrap()
        .flatten()
        .find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".json").map(str::to_owned)
        })
        .expect("the killed run's intent file");
    let ns_path = netns.join(&id);
    let ns_path = ns_path.to_str().unwrap();
    assert_eq!(
        processes_naming(ns_path).len(),
        1,
        "pasta runs for the killed run's namespace"
    );
    assert!(b.ok(&["ps", "-a", "-q"]).trim().is_empty(), "no record");

    b.ok(&["system", "prune"]);
    assert!(
        wait_until(Duration::from_secs(10), || processes_naming(ns_path)
            .is_empty()),
        "pasta left after system prune"
    );
    let left: Vec<String> = std::fs::read_dir(&netns)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", netns.display());
}

impl UserBerth {
    /// A second image: busybox with the probe at `/bin/probe`.
    fn probe_image(&self) -> &'static str {
        const PROBE_IMAGE: &str = "localhost/probe:rootless";
        let root = self.home.path().join("probe-rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in ["sh", "cat", "ls", "kill", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        std::fs::copy(berth_test_support::probe_bin(), root.join("bin/probe")).unwrap();
        let tar = self.home.path().join("probe-rootfs.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        self.ok(&["import", tar.to_str().unwrap(), PROBE_IMAGE]);
        PROBE_IMAGE
    }
}

/// The comms of the processes a `neighbour-scan` saw, with whether any attack on each
/// (its /proc/PID/mem, its descriptors, ptrace) succeeded.
fn scanned(out: &str) -> Vec<(String, bool)> {
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("probe output {out:?}: {e}"));
    v["neighbour-scan"]["pids"]
        .as_object()
        .unwrap_or_else(|| panic!("no scan in {v}"))
        .values()
        .map(|p| {
            let fd_opened = p["fd"]["fds"]
                .as_object()
                .is_some_and(|fds| fds.values().any(|f| f["open"]["ok"] == true));
            let won = p["mem"]["ok"] == true || p["ptrace"]["ok"] == true || fd_opened;
            (p["comm"].as_str().unwrap_or("").to_owned(), won)
        })
        .collect()
}

/// pasta runs as the user — the same host uid as a rootless container's root — so only the
/// container's own pid namespace keeps it out of reach: from inside the container (an
/// `exec`) and from a `--network container:` neighbour sharing its network namespace, no
/// process seen is pasta, its host pid names nothing (`kill` fails), and pasta keeps
/// running. The control runs the neighbour with its pid namespace taken out of the config
/// and the host's /proc bound in (a runtime editing the config): then the same scan finds
/// pasta, so the check is one that can fail.
#[test]
fn pasta_is_out_of_sight_and_reach_of_its_container_and_a_network_neighbour() {
    requires_root!();
    requires_tool!("setpriv", "newuidmap", "newgidmap", "pasta", "jq");
    let Some(b) = UserBerth::new() else { return };
    let image = b.probe_image();
    let id = b
        .ok(&["run", "-d", "--name", "owner", image, "sleep", "600"])
        .trim()
        .to_owned();
    let netns_path = b.data().join("netns").join(&id);
    let pasta = processes_naming(netns_path.to_str().unwrap());
    assert_eq!(pasta.len(), 1, "one pasta for the container: {pasta:?}");
    let pasta = pasta[0];
    assert_eq!(host_uid(pasta), b.uid, "pasta runs as the user");
    let pasta_comm = std::fs::read_to_string(format!("/proc/{pasta}/comm")).unwrap();
    let pasta_comm = pasta_comm.trim();
    let kill = format!("kill -TERM {pasta} && echo killed; kill -0 {pasta} && echo alive; true");

    let from_inside = b.ok(&["exec", "owner", "/bin/probe", "neighbour-scan"]);
    let from_neighbour = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        image,
        "/bin/probe",
        "neighbour-scan",
    ]);
    for (who, out) in [
        ("the container", &from_inside),
        ("the neighbour", &from_neighbour),
    ] {
        let seen = scanned(out);
        assert!(
            seen.iter().all(|(c, _)| c != pasta_comm),
            "{who} sees pasta: {seen:?}"
        );
        assert!(
            seen.iter().all(|(c, _)| c == "sleep"),
            "{who} sees processes not its container's: {seen:?}"
        );
    }
    for who in [
        vec!["exec", "owner", "sh", "-c", &kill],
        vec![
            "run",
            "--rm",
            "--network",
            "container:owner",
            image,
            "sh",
            "-c",
            &kill,
        ],
    ] {
        let out = b.ok(&who);
        assert!(
            !out.contains("killed") && !out.contains("alive"),
            "{who:?} reached pid {pasta}: {out}"
        );
    }
    assert_eq!(
        processes_naming(netns_path.to_str().unwrap()),
        vec![pasta],
        "pasta still runs"
    );

    // control: without a pid namespace of its own, the neighbour does see pasta
    let control = crate::neighbours::runtime_editing(
        b.home.path(),
        "no-pidns",
        ".linux.namespaces |= map(select(.type != \"pid\")) | .mounts |= map(if .destination \
         == \"/proc\" then {destination: \"/proc\", type: \"bind\", source: \"/proc\", \
         options: [\"rbind\", \"nosuid\", \"nodev\", \"noexec\"]} else . end)",
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--runtime",
        control.to_str().unwrap(),
        "--network",
        "container:owner",
        image,
        "/bin/probe",
        "neighbour-scan",
    ]);
    let seen = scanned(&out);
    let found: Vec<_> = seen.iter().filter(|(c, _)| c == pasta_comm).collect();
    eprintln!("control: a neighbour without its pid namespace sees pasta: {found:?}");
    assert!(
        !found.is_empty(),
        "control: without its pid namespace the neighbour should see pasta: {seen:?}"
    );
    b.ok(&["rm", "-f", "owner"]);
}
