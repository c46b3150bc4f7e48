//! Test helpers: a busybox bundle in a tempdir, the runtime binary under a private
//! `--root`, container guards, polling with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// Fail (not skip) when the test cannot do its job.
pub fn require_root_and_busybox() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests need root"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "these tests need busybox-static (apt-get install -y busybox-static)"
    );
}

/// Poll `probe` until it returns Some or the deadline passes.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        });
    }
}

/// A bundle: rootfs with busybox and a config from our own `spec`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        require_root_and_busybox();
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "ls", "cat", "echo", "true", "false", "hostname", "id", "sleep", "ps", "touch",
            "readlink", "grep", "tty", "head", "wc", "stat", "mount",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let out = Command::new(BIN)
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(args);
        config["hostname"] = "berth-test".into();
        let b = Bundle { dir, config };
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn save(&self) {
        berth_fsutil::atomic_write(
            self.dir.path().join("config.json"),
            &serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

/// The runtime with a private `--root`; force-deletes what it created on drop.
pub struct Runtime {
    pub root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: tempfile::tempdir().unwrap(),
            ids: Default::default(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root.path());
        c.stdin(Stdio::null());
        c
    }

    /// Run to completion. stdout/stderr go to files, not pipes: a created container's init
    /// inherits the runtime's stdio (as with runc), so pipes would never reach EOF.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        output(cmd)
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth-runtime {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_owned());
    }

    pub fn create(&self, id: &str, bundle: &Bundle) {
        self.track(id);
        self.ok(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_owned()
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        wait_until(
            &format!("{id} to be {want}"),
            Duration::from_secs(10),
            || (self.status(id) == want).then_some(()),
        );
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd().args(["delete", "--force", id]).output();
        }
    }
}

/// Run to completion. stdout/stderr go to files, not pipes: a created container's init
/// inherits the runtime's stdio (as with runc), so pipes would never reach EOF.
pub fn output(mut cmd: Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let status = cmd
        .stdout(
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&out_path)
                .unwrap(),
        )
        .stderr(
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&err_path)
                .unwrap(),
        )
        .status()
        .unwrap();
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// Host cgroup directories of a process, from /proc/<pid>/cgroup (v1 and v2).
pub fn cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if path == "/" {
            continue;
        }
        let base = if ctrl.is_empty() {
            PathBuf::from("/sys/fs/cgroup/unified")
        } else {
            let name = ctrl.trim_start_matches("name=");
            PathBuf::from("/sys/fs/cgroup").join(name)
        };
        if base.exists() {
            out.push(base.join(path.trim_start_matches('/')));
        }
    }
    out
}

/// Field `key:` of /proc/<pid>/status.
pub fn proc_status(pid: i32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// Waits (at most 10 s) until process `pid` has executed a program named `comm`: `start`
/// returns once the exec fifo is opened, a moment before the container's `execve`.
pub fn wait_for_exec(pid: i32, comm: &str) {
    wait_until(
        &format!("process {pid} to exec {comm}"),
        Duration::from_secs(10),
        || {
            let now = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (now.trim() == comm).then_some(())
        },
    )
}

/// Nothing of the container `id` is left: no state dir, no cgroup dir, no mount of the
/// bundle, no process `pid`.
pub fn assert_nothing_left(
    rt: &Runtime,
    id: &str,
    bundle: &Bundle,
    pid: Option<i32>,
    cgroups: &[PathBuf],
) {
    assert!(!rt.state_dir(id).exists(), "state dir of {id} left behind");
    for c in cgroups {
        assert!(!c.exists(), "cgroup {} left behind", c.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = bundle.rootfs();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "a mount of {} is left",
        root.display()
    );
    if let Some(pid) = pid {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "process {pid} left behind");
    }
}

/// Search for a cgroup directory named `id` under the mounted hierarchies (depth 3).
pub fn cgroup_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack: Vec<(PathBuf, u32)> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| (e.path(), 0)).collect())
        .unwrap_or_default();
    while let Some((dir, depth)) = stack.pop() {
        if dir.file_name().is_some_and(|n| n == id) {
            found.push(dir.clone());
        }
        if depth < 3
            && let Ok(rd) = std::fs::read_dir(&dir)
        {
            for e in rd.filter_map(|e| e.ok()) {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
    }
    found
}

/// /proc/<pid>/exe is not the runtime binary on disk and cannot be written: a file of a
/// detached read-only overlayfs, or a sealed memfd.
pub fn assert_protected_exe(pid: i32) {
    let exe_path = format!("/proc/{pid}/exe");
    let target = std::fs::read_link(&exe_path).unwrap();
    assert_ne!(
        target,
        std::path::Path::new(BIN),
        "the init runs the binary on disk"
    );
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(&exe_path)
        .unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EROFS) | Some(libc::EPERM) | Some(libc::ETXTBSY)
        ),
        "{err}"
    );
    let fd = rustix::fs::open(
        exe_path.as_str(),
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let sealed = rustix::fs::fcntl_get_seals(&fd).is_ok_and(|s| {
        s.contains(
            rustix::fs::SealFlags::WRITE
                | rustix::fs::SealFlags::GROW
                | rustix::fs::SealFlags::SHRINK,
        )
    });
    let overlay_ro = rustix::fs::fstatfs(&fd).unwrap().f_type == 0x794c_7630
        && rustix::fs::fstatvfs(&fd)
            .unwrap()
            .f_flag
            .contains(rustix::fs::StatVfsMountFlags::RDONLY);
    assert!(
        sealed || overlay_ro,
        "{target:?} is neither a sealed memfd nor on a read-only overlay"
    );
}
