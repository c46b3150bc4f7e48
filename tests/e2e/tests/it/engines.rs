//! The drop-in proof: real container engines from Debian drive an OCI runtime through runc's
//! command line. podman (through conmon) and containerd's `ctr` (through its runc shim) run
//! a busybox image with the runtime under test; every check runs for runc, the reference,
//! beside it, and must give the same result.
//!
//! Each test owns its engine state (podman `--root`/`--runroot`, a private containerd
//! daemon with its own socket), removed on drop; nothing touches the host's engines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_test_support::{
    ChildGuard, kill_pid_and_wait, requires_root, requires_tool, run_with_timeout, wait_until,
};

const IMAGE: &str = "localhost/berth-busybox:test";

/// Engine tests run one at a time, across test processes (nextest runs each test in its
/// own): podman instances share host-wide state whatever their `--root` (the lock segment
/// in /dev/shm, the `libpod_parent` cgroup each test removes when done).
pub(crate) fn one_engine_at_a_time() -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("berth-engine-tests.lock"))
        .unwrap();
    f.lock().unwrap();
    f
}
/// This VM's hard RLIMIT_NOFILE/NPROC are below podman's defaults and the bounding set lacks
/// CAP_SYS_RESOURCE, so every runtime (runc included) must be given limits it may set.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:4096",
    "--ulimit",
    "nproc=4096:4096",
];

/// A root filesystem tar: static busybox and the applets the tests call.
pub(crate) fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "sleep", "id", "hostname", "ls", "true", "tty",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let out = run_with_timeout(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tar
}

/// Remove the (empty) parent cgroup `name` an engine created in every hierarchy; a
/// non-empty one stays (another engine's containers live there).
fn remove_parent_cgroup(name: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let _ = std::fs::remove_dir(h.path().join(name));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The ordinary user rootless podman runs as (scripts/test creates it, with subordinate
/// ids 200000:65536, for the rootless runtime tests too).
const ROOTLESS_USER: &str = "berth-rootless";

/// PATH for podman as that user (newuidmap, conmon, the runtimes).
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// podman with private storage, the cgroupfs manager and no network set-up; as root, or
/// rootless as `user` (uid, gid), its storage then under the user's own `HOME` and
/// `XDG_RUNTIME_DIR` (both in the test's directory), as a user's podman keeps it.
struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
    user: Option<(u32, u32)>,
}

impl Podman {
    fn new(runtime: &Path, user: Option<(u32, u32)>) -> Podman {
        let p = Podman {
            dir: tempfile::Builder::new()
                .prefix("berth-podman-")
                .tempdir()
                .unwrap(),
            runtime: runtime.to_owned(),
            user,
        };
        if let Some((uid, gid)) = user {
            std::fs::create_dir(p.xdg()).unwrap();
            for d in [p.dir.path(), &p.xdg()] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
            }
        }
        let tar = busybox_tar(p.dir.path());
        let out = p.run(&["import", tar.to_str().unwrap(), IMAGE]);
        assert!(out.status.success(), "podman import: {}", text(&out));
        p
    }

    /// The rootless user's `XDG_RUNTIME_DIR`.
    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = match self.user {
            None => {
                let mut c = Command::new("podman");
                c.arg("--root")
                    .arg(d.join("storage"))
                    .arg("--runroot")
                    .arg(d.join("run"))
                    .arg("--tmpdir")
                    .arg(d.join("tmp"));
                c
            }
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--init-groups", "--", "podman"])
                    .env_clear()
                    .env("PATH", HOST_PATH)
                    .env("USER", ROOTLESS_USER)
                    .env("HOME", d)
                    .env("XDG_RUNTIME_DIR", self.xdg());
                c
            }
        };
        c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["--storage-driver", "overlay"])
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(args), Duration::from_secs(120))
    }

    /// `podman run --rm` of the test image with `args` after the image name.
    fn run_image(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend(ULIMITS);
        all.extend(flags);
        all.push(IMAGE);
        all.extend(args);
        self.run(&all)
    }

    /// Rootless podman's pause process (it holds the user namespace every podman command
    /// joins, and outlives them): killed by its pid file, waited for until gone.
    fn kill_pause_process(&self) {
        let file = self.xdg().join("libpod/tmp/pause.pid");
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            assert!(
                kill_pid_and_wait(pid, Duration::from_secs(30)) || std::thread::panicking(),
                "podman's pause process {pid} outlived SIGKILL"
            );
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        if self.user.is_some() {
            // its overlay mounts live in the pause process's mount namespace
            self.kill_pause_process();
            return;
        }
        // overlay mounts podman may have left behind would keep the tempdir busy
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("storage/overlay"))
            .stderr(Stdio::null())
            .status();
        remove_parent_cgroup("libpod_parent/conmon");
        remove_parent_cgroup("libpod_parent");
    }
}

/// The checks podman users make, for one runtime, podman running as root or rootless as
/// `user`; returns what each printed so two runtimes can be compared.
fn podman_checks(runtime: &Path, user: Option<(u32, u32)>) -> Vec<String> {
    let p = Podman::new(runtime, user);
    let mut seen = Vec::new();

    let out = p.run_image(&[], &["echo", "hello"]);
    assert!(out.status.success(), "podman run: {}", text(&out));
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());

    let out = p.run_image(&[], &["sh", "-c", "exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code passes through: {}",
        text(&out)
    );

    let out = p.run_image(&["-t"], &["tty"]);
    assert!(out.status.success(), "podman run -t: {}", text(&out));
    let tty = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        tty.starts_with("/dev/pts/"),
        "no terminal inside: {}",
        text(&out)
    );
    seen.push("tty ok".into());

    let out = p.run_image(&["--hostname", "box"], &["hostname"]);
    assert!(out.status.success(), "{}", text(&out));
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());

    let mut args = vec!["run", "-d", "--name", "long", "--network", "none"];
    args.extend(ULIMITS);
    args.extend([IMAGE, "sleep", "300"]);
    let out = p.run(&args);
    assert!(out.status.success(), "podman run -d: {}", text(&out));
    let out = p.run(&["exec", "long", "echo", "from exec"]);
    assert!(out.status.success(), "podman exec: {}", text(&out));
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());
    if user.is_none() {
        let out = p.run(&["inspect", "--format", "{{.State.Pid}}", "long"]);
        seen.push(watch_attributes(
            &String::from_utf8_lossy(&out.stdout),
            "podman",
        ));
    }
    let out = p.run(&["exec", "-t", "long", "tty"]);
    assert!(out.status.success(), "podman exec -t: {}", text(&out));
    let tty = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        tty.starts_with("/dev/pts/"),
        "no terminal in exec -t: {}",
        text(&out)
    );
    seen.push("exec tty ok".into());
    let out = p.run(&["stop", "--time", "1", "long"]);
    assert!(out.status.success(), "podman stop: {}", text(&out));
    let out = p.run(&["inspect", "--format", "{{.State.Status}}", "long"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "exited",
        "{}",
        text(&out)
    );
    let out = p.run(&["rm", "long"]);
    assert!(out.status.success(), "podman rm: {}", text(&out));
    seen
}

/// A private containerd daemon (no CRI plugin) on a socket in a temporary directory.
struct Containerd {
    dir: tempfile::TempDir,
    _daemon: ChildGuard,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        // containerd collects garbage right after any deletion (the end of the import's lease,
        // a `run --rm`), and 1.6 then dropped an imported image's snapshot or content now and
        // then ("parent snapshot … does not exist", "content digest … not found") whatever the
        // runtime. Garbage collection is not what these tests are about: the collector is
        // left to run only after an hour, so every run sees the image as imported.
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 1000000\n  mutation_threshold = 1000000\n  startup_delay = \"1h\"\n  schedule_delay = \"1h\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display(),
        );
        berth_test_support::write_file(d.join("config.toml"), config.as_bytes());
        let log = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(d.join("containerd.log"))
            .unwrap();
        let daemon = ChildGuard::spawn(
            Command::new("containerd")
                .arg("--config")
                .arg(d.join("config.toml"))
                .stdout(Stdio::null())
                .stderr(log),
        );
        let sock = d.join("containerd.sock");
        assert!(
            wait_until(Duration::from_secs(30), || sock.exists()),
            "containerd did not start: {}",
            std::fs::read_to_string(d.join("containerd.log")).unwrap_or_default()
        );
        Containerd {
            dir,
            _daemon: daemon,
        }
    }

    fn ctr(&self, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new("ctr")
                .arg("--address")
                .arg(self.dir.path().join("containerd.sock"))
                .args(["--namespace", "berth-test"])
                .args(args),
            Duration::from_secs(120),
        )
    }
}

impl Containerd {
    /// `ctr images import` of an OCI archive (unpacked into the snapshotter, as by default).
    fn import(&self, archive: &Path) -> Output {
        self.ctr(&[
            "images",
            "import",
            "--index-name",
            IMAGE,
            archive.to_str().unwrap(),
        ])
    }

    /// `ctr run …`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run"];
        all.extend(args);
        self.ctr(&all)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in ["once", "long", "tty"] {
            let _ = self.ctr(&["task", "kill", "--signal", "KILL", id]);
            let _ = self.ctr(&["task", "delete", "--force", id]);
            let _ = self.ctr(&["container", "delete", id]);
        }
        remove_parent_cgroup("berth-test");
    }
}

/// The checks containerd users make with `ctr`, for one runtime.
fn ctr_checks(runtime: &Path) -> Vec<String> {
    // the image, as an OCI archive podman writes
    let p = Podman::new(Path::new("/usr/sbin/runc"), None);
    let archive = p.dir.path().join("image.tar");
    let out = p.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        IMAGE,
    ]);
    assert!(out.status.success(), "podman save: {}", text(&out));
    let c = Containerd::start();
    let out = c.import(&archive);
    let listed = c.ctr(&["images", "ls", "-q"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(IMAGE),
        "ctr images import: {}",
        text(&out)
    );
    let rt = runtime.to_str().unwrap();
    let mut seen = Vec::new();

    let out = c.run(&["--rm", "--runc-binary", rt, IMAGE, "once", "echo", "hello"]);
    assert!(out.status.success(), "ctr run: {}", text(&out));
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());

    let out = c.run(&["-d", "--runc-binary", rt, IMAGE, "long", "sleep", "300"]);
    assert!(out.status.success(), "ctr run -d: {}", text(&out));
    let listed = c.ctr(&["task", "ls"]);
    let pid = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find_map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next() == Some("long")).then(|| cols.next().unwrap_or_default().to_owned())
        })
        .unwrap_or_default();
    seen.push(watch_attributes(&pid, "containerd"));
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "long",
        "echo",
        "from exec",
    ]);
    assert!(out.status.success(), "ctr task exec: {}", text(&out));
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());
    let out = c.ctr(&["task", "kill", "--signal", "KILL", "long"]);
    assert!(out.status.success(), "ctr task kill: {}", text(&out));
    let stopped = wait_until(Duration::from_secs(30), || {
        String::from_utf8_lossy(&c.ctr(&["task", "ls"]).stdout)
            .lines()
            .any(|l| l.starts_with("long ") && l.contains("STOPPED"))
    });
    assert!(
        stopped,
        "the killed task never stopped: {}",
        text(&c.ctr(&["task", "ls"]))
    );
    let out = c.ctr(&["task", "delete", "long"]);
    assert!(out.status.success(), "ctr task delete: {}", text(&out));
    let out = c.ctr(&["container", "delete", "long"]);
    assert!(out.status.success(), "ctr container delete: {}", text(&out));
    seen
}

fn runc() -> PathBuf {
    PathBuf::from("/usr/sbin/runc")
}

/// berth watch's attribution of an engine's running container (issue 22 §2: containers
/// started by berth-runtime under podman and containerd, and by runc): the state directories
/// and `/proc` lead from the container's cgroup id (the inode of its cgroup2 directory, what
/// the probes report) to it, with its init's pid.
fn watch_attributes(pid: &str, engine: &str) -> String {
    use berth_watch::containers::{Containers, Sources};
    use std::os::unix::fs::MetadataExt as _;
    let pid: u32 = pid
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{engine} gave no pid for the running container: {pid:?}"));
    let sources = Sources::host(Path::new("/proc")).expect("the host's cgroup2 mount");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line for {pid}: {cgroup}"));
    let dir = sources.cgroup2.join(path.trim_start_matches('/'));
    let id = std::fs::metadata(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .ino();
    let (found, problems) = Containers::scan(&sources);
    let c = found.by_cgroup(id).unwrap_or_else(|| {
        panic!(
            "berth watch does not attribute cgroup {id} ({}) of {engine}'s container (pid {pid}); problems: {problems:?}",
            dir.display()
        )
    });
    assert_eq!(c.pid, pid, "{c:?}");
    assert!(
        c.overlay.is_some(),
        "{engine}'s container root is an overlay: {c:?}"
    );
    "watch attributes it".to_owned()
}

#[test]
fn podman_runs_busybox_with_runc() {
    requires_root!();
    requires_tool!("podman", "runc", "busybox", "tar");
    let _one = one_engine_at_a_time();
    let seen = podman_checks(&runc(), None);
    assert_eq!(
        seen,
        [
            "hello\n",
            "tty ok",
            "box\n",
            "from exec\n",
            "watch attributes it",
            "exec tty ok"
        ]
    );
}

#[test]
fn ctr_runs_busybox_with_runc() {
    requires_root!();
    requires_tool!("podman", "containerd", "ctr", "runc", "busybox", "tar");
    let _one = one_engine_at_a_time();
    let seen = ctr_checks(&runc());
    assert_eq!(seen, ["hello\n", "watch attributes it", "from exec\n"]);
}

/// berth-runtime, built by the workspace (`target/<profile>/berth-runtime`).
pub(crate) fn berth_runtime() -> PathBuf {
    berth_test_support::Runtime::find("berth-runtime")
        .expect("berth-runtime is not built; hint: cargo build --workspace")
        .bin()
        .to_owned()
}

#[test]
fn podman_runs_busybox_with_berth_runtime_as_with_runc() {
    requires_root!();
    requires_tool!("podman", "runc", "busybox", "tar");
    let _one = one_engine_at_a_time();
    let reference = podman_checks(&runc(), None);
    let berth = podman_checks(&berth_runtime(), None);
    assert_eq!(berth, reference);
}

#[test]
fn ctr_runs_busybox_with_berth_runtime_as_with_runc() {
    requires_root!();
    requires_tool!("podman", "containerd", "ctr", "runc", "busybox", "tar");
    let _one = one_engine_at_a_time();
    let reference = ctr_checks(&runc());
    let berth = ctr_checks(&berth_runtime());
    assert_eq!(berth, reference);
}

/// The rootless user's uid and gid, or `None` after a skip (a failure under
/// `BERTH_TEST_REQUIRE_TOOLS=1`) when it or its subordinate ids are missing.
fn rootless_user() -> Option<(u32, u32)> {
    let ids = berth_test_support::passwd_ids(ROOTLESS_USER);
    let granted = |f: &str| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines()
                .any(|l| l.starts_with(&format!("{ROOTLESS_USER}:")))
        })
    };
    if ids.is_none() || !granted("/etc/subuid") || !granted("/etc/subgid") {
        berth_test_support::skip_or_fail(&format!(
            "no user {ROOTLESS_USER} with subordinate ids (scripts/test creates it)"
        ));
        return None;
    }
    ids
}

/// What the rootless checks add: who the process is inside, and the user namespace's
/// mappings podman set up (the user as root, its subordinate ids after).
fn rootless_identity(runtime: &Path, user: (u32, u32)) -> Vec<String> {
    let mut seen = podman_checks(runtime, Some(user));
    let p = Podman::new(runtime, Some(user));
    let out = p.run_image(
        &[],
        &["sh", "-c", "id; cat /proc/self/uid_map /proc/self/gid_map"],
    );
    assert!(out.status.success(), "podman run: {}", text(&out));
    seen.push(String::from_utf8_lossy(&out.stdout).into_owned());
    seen
}

/// The rootless user, when root runs the test and rootless podman's tools are there (else
/// the test is skipped, or fails under BERTH_TEST_REQUIRE_TOOLS=1).
fn rootless_podman_user() -> Option<(u32, u32)> {
    if !berth_test_support::is_root() && berth_test_support::skip_or_fail("the test needs root") {
        return None;
    }
    for tool in [
        "podman",
        "runc",
        "busybox",
        "tar",
        "setpriv",
        "newuidmap",
        "newgidmap",
    ] {
        if !berth_test_support::tool_available(tool)
            && berth_test_support::skip_or_fail(&format!("the tool `{tool}` is not on PATH"))
        {
            return None;
        }
    }
    rootless_user()
}

#[test]
fn podman_rootless_runs_busybox_with_runc() {
    let Some(user) = rootless_podman_user() else {
        return;
    };
    let _one = one_engine_at_a_time();
    let seen = rootless_identity(&runc(), user);
    assert_eq!(
        seen[..5],
        ["hello\n", "tty ok", "box\n", "from exec\n", "exec tty ok"]
    );
    // root inside (no /etc/passwd in the image: no names), the user as 0, its
    // subordinate ids from 1
    let (uid, gid) = (user.0.to_string(), user.1.to_string());
    let want = [
        "uid=0", "gid=0", "0", &uid, "1", "1", "200000", "65536", "0", &gid, "1", "1", "200000",
        "65536",
    ];
    let got: Vec<&str> = seen[5].split_whitespace().collect();
    assert_eq!(got, want, "{}", seen[5]);
}

#[test]
fn podman_rootless_runs_busybox_with_berth_runtime_as_with_runc() {
    let Some(user) = rootless_podman_user() else {
        return;
    };
    let _one = one_engine_at_a_time();
    let reference = rootless_identity(&runc(), user);
    let berth = rootless_identity(&berth_runtime(), user);
    assert_eq!(berth, reference);
}
