//! OCI runtimes driven through runc's command line: a [`Runtime`] handle (binary + its own
//! `--root`), and a [`ContainerGuard`] that kills and deletes its container on `Drop`
//! (panics included) and checks the runtime removed the container's cgroups.
//!
//! Parameterised over the binary, so the same tests run against `runc`, `crun` and
//! `berth-runtime` ([`Runtime::find`]).

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::tools::{env_os, tool_available};
use crate::{Bundle, ChildGuard, wait_until, workspace_root};

/// The environment variable naming the `berth-runtime` binary to test.
pub const BERTH_RUNTIME_BIN_ENV: &str = "BERTH_RUNTIME_BIN";

/// How long one runtime command may take before the test fails (generous: the machine is
/// shared and `create` of a container with a user namespace can be slow under load).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a runtime may take to remove a container's cgroups after `delete`.
const CGROUP_REMOVAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a runtime command printed and how it exited.
#[derive(Debug)]
pub struct RtOutput {
    /// The command line, for messages.
    pub cmd: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl RtOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "{self}");
        self
    }

    /// stdout parsed as one JSON value; panics (showing everything) if it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for RtOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd,
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

/// An OCI runtime binary with its own state directory (`--root`, a tempdir removed on
/// drop), so tests never see containers of other tests or of the host.
#[derive(Debug)]
pub struct Runtime {
    name: String,
    bin: PathBuf,
    root: tempfile::TempDir,
}

impl Runtime {
    pub fn new(name: &str, bin: impl Into<PathBuf>) -> Runtime {
        let root = tempfile::Builder::new()
            .prefix(&format!("berth-rt-{name}-"))
            .tempdir()
            .expect("tempdir for the runtime's --root");
        Runtime {
            name: name.to_owned(),
            bin: bin.into(),
            root,
        }
    }

    /// The runtime called `name`, if its binary is available: `runc` and `crun` from
    /// `PATH`; `berth-runtime` from `$BERTH_RUNTIME_BIN`, else the cargo-built
    /// `target/<profile>/berth-runtime` beside the running test, else
    /// `<workspace>/target/debug/berth-runtime`.
    pub fn find(name: &str) -> Option<Runtime> {
        if name == "berth-runtime" {
            return berth_runtime_bin().map(|bin| Runtime::new(name, bin));
        }
        tool_available(name).then(|| Runtime::new(name, name))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `<bin> --root <root>`, ready for a subcommand.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root.path());
        cmd
    }

    /// Run `<bin> --root <root> args…` to completion within `timeout`; panics (after
    /// killing it) if it takes longer.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S], timeout: Duration) -> RtOutput {
        let mut cmd = self.command();
        cmd.args(args);
        let files = Stdio2::new();
        let status = run_to_files(&mut cmd, timeout, &files);
        let out = |status| RtOutput {
            cmd: describe(&cmd),
            status,
            stdout: read_all(&files.out),
            stderr: read_all(&files.err),
        };
        match status {
            Some(s) => out(s),
            None => panic!(
                "`{}` did not finish within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                describe(&cmd),
                String::from_utf8_lossy(&read_all(&files.out)),
                String::from_utf8_lossy(&read_all(&files.err)),
            ),
        }
    }

    /// As [`Runtime::cmd`], but `None` instead of a panic on timeout (for cleanup paths,
    /// which may run while a test is already panicking).
    fn try_cmd(&self, args: &[&str], timeout: Duration) -> Option<ExitStatus> {
        let mut cmd = self.command();
        cmd.args(args);
        run_to_files(&mut cmd, timeout, &Stdio2::new())
    }

    /// `create --bundle <bundle> <id>`; the container's stdout and stderr go to `stdio`'s
    /// files (see [`ContainerGuard`], which calls this).
    fn create_with(&self, bundle: &Bundle, extra: &[&str], stdio: &Stdio2) -> RtOutput {
        bundle.write_config();
        let mut cmd = self.command();
        cmd.arg("create")
            .args(extra)
            .arg("--bundle")
            .arg(bundle.path())
            .arg(bundle.id());
        let Some(status) = run_to_files(&mut cmd, COMMAND_TIMEOUT, stdio) else {
            panic!(
                "`{}` did not finish within {COMMAND_TIMEOUT:?}\n--- stderr\n{}",
                describe(&cmd),
                String::from_utf8_lossy(&read_all(&stdio.err)),
            );
        };
        RtOutput {
            cmd: describe(&cmd),
            status,
            stdout: read_all(&stdio.out),
            stderr: read_all(&stdio.err),
        }
    }

    /// `run --bundle <bundle> <id>` in the foreground: the container's exit code is the
    /// runtime's and its stdout is the output's. The container is owned by a guard for the
    /// duration, so a timeout or panic still kills and deletes it.
    pub fn run(&self, bundle: &Bundle) -> RtOutput {
        self.run_with_timeout(bundle, COMMAND_TIMEOUT)
    }

    pub fn run_with_timeout(&self, bundle: &Bundle, timeout: Duration) -> RtOutput {
        bundle.write_config();
        let guard = ContainerGuard::adopt(self, bundle);
        let out = self.cmd(
            &[
                OsStr::new("run"),
                OsStr::new("--bundle"),
                bundle.path().as_os_str(),
                OsStr::new(bundle.id()),
            ],
            timeout,
        );
        drop(guard);
        out
    }

    /// Run `<bin> --root <root> args…` through a wrapper: `wrap` gets that whole command
    /// line and returns the command to spawn (a shell that opens descriptors first,
    /// `script` for a terminal). Its stdin is a pipe held open until it exits (script(1)
    /// hangs up on EOF); stdout and stderr go to files. Panics (after killing it) when it
    /// outlives `timeout`.
    pub fn cmd_wrapped(
        &self,
        args: &[&OsStr],
        wrap: impl FnOnce(Vec<std::ffi::OsString>) -> Command,
        timeout: Duration,
    ) -> RtOutput {
        let mut line = vec![self.bin.clone().into_os_string(), "--root".into()];
        line.push(self.root.path().as_os_str().to_owned());
        line.extend(args.iter().map(|a| a.to_os_string()));
        let mut cmd = wrap(line);
        let files = Stdio2::new();
        cmd.stdin(Stdio::piped())
            .stdout(files.out.try_clone().expect("clone stdout file"))
            .stderr(files.err.try_clone().expect("clone stderr file"));
        let mut guard = ChildGuard::spawn(&mut cmd);
        let child = guard.child().expect("just spawned");
        let keyboard = child.stdin.take();
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        drop(keyboard);
        drop(guard);
        let Some(status) = status else {
            panic!(
                "`{}` did not finish within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                describe(&cmd),
                String::from_utf8_lossy(&read_all(&files.out)),
                String::from_utf8_lossy(&read_all(&files.err)),
            );
        };
        RtOutput {
            cmd: describe(&cmd),
            status,
            stdout: read_all(&files.out),
            stderr: read_all(&files.err),
        }
    }

    /// `run <extra…> --bundle <bundle> <id>` in the foreground through `wrap` (see
    /// [`Runtime::cmd_wrapped`]), the container owned by a guard meanwhile.
    pub fn run_wrapped(
        &self,
        bundle: &Bundle,
        extra: &[&str],
        wrap: impl FnOnce(Vec<std::ffi::OsString>) -> Command,
    ) -> RtOutput {
        bundle.write_config();
        let guard = ContainerGuard::adopt(self, bundle);
        let mut args: Vec<&OsStr> = vec![OsStr::new("run")];
        args.extend(extra.iter().map(OsStr::new));
        args.extend([
            OsStr::new("--bundle"),
            bundle.path().as_os_str(),
            OsStr::new(bundle.id()),
        ]);
        let out = self.cmd_wrapped(&args, wrap, COMMAND_TIMEOUT);
        drop(guard);
        out
    }

    pub fn start(&self, id: &str) -> RtOutput {
        self.cmd(&["start", id], COMMAND_TIMEOUT)
    }

    pub fn state(&self, id: &str) -> RtOutput {
        self.cmd(&["state", id], COMMAND_TIMEOUT)
    }

    /// `kill <id> <signal>` (a name like `KILL` or a number).
    pub fn kill(&self, id: &str, signal: &str) -> RtOutput {
        self.cmd(&["kill", id, signal], COMMAND_TIMEOUT)
    }

    pub fn delete(&self, id: &str) -> RtOutput {
        self.cmd(&["delete", id], COMMAND_TIMEOUT)
    }

    pub fn delete_force(&self, id: &str) -> RtOutput {
        self.cmd(&["delete", "--force", id], COMMAND_TIMEOUT)
    }

    /// `exec <id> args…` in the foreground.
    pub fn exec(&self, id: &str, args: &[&str]) -> RtOutput {
        let mut a = vec!["exec", id];
        a.extend_from_slice(args);
        self.cmd(&a, COMMAND_TIMEOUT)
    }

    /// `ps --format json <id>`.
    pub fn ps(&self, id: &str) -> RtOutput {
        self.cmd(&["ps", "--format", "json", id], COMMAND_TIMEOUT)
    }

    /// `list --format json`.
    pub fn list(&self) -> RtOutput {
        self.cmd(&["list", "--format", "json"], COMMAND_TIMEOUT)
    }
}

fn berth_runtime_bin() -> Option<PathBuf> {
    if let Some(p) = env_os(BERTH_RUNTIME_BIN_ENV) {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            candidates.push(dir.join("berth-runtime"));
        }
    }
    candidates.push(workspace_root().join("target/debug/berth-runtime"));
    candidates.into_iter().find(|c| c.is_file())
}

/// A container's stdout and stderr: files the runtime passes to the container's process.
#[derive(Debug)]
struct Stdio2 {
    out: File,
    err: File,
}

impl Stdio2 {
    fn new() -> Stdio2 {
        Stdio2 {
            out: tempfile::tempfile().expect("temporary file for stdout"),
            err: tempfile::tempfile().expect("temporary file for stderr"),
        }
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn read_all(f: &File) -> Vec<u8> {
    crate::read_output_file(f)
}

/// Run `cmd` with stdin null and stdout/stderr to `files`: files, not pipes, because a
/// container started by `create` keeps its stdio open after the runtime exits. `None` (the
/// command killed and reaped) when it outlives `timeout`.
fn run_to_files(cmd: &mut Command, timeout: Duration, files: &Stdio2) -> Option<ExitStatus> {
    cmd.stdin(Stdio::null())
        .stdout(files.out.try_clone().expect("clone stdout file"))
        .stderr(files.err.try_clone().expect("clone stderr file"));
    let mut guard = ChildGuard::spawn(cmd);
    let child = guard.child().expect("just spawned");
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    // on timeout, dropping the guard kills and reaps the command
    status
}

/// A container created by a runtime. On `Drop` (panics included) it runs `kill <id> KILL`
/// and `delete --force <id>`, then checks that every cgroup directory of the bundle's
/// `cgroupsPath` is gone: if one is left, it kills what is inside, removes it, and fails
/// the test (unless the test is already failing).
#[derive(Debug)]
pub struct ContainerGuard<'r> {
    rt: &'r Runtime,
    id: String,
    cgroups_path: Option<String>,
    stdio: Stdio2,
}

impl<'r> ContainerGuard<'r> {
    /// Own the container `bundle` describes without creating it (for `run`).
    pub fn adopt(rt: &'r Runtime, bundle: &Bundle) -> ContainerGuard<'r> {
        ContainerGuard {
            rt,
            id: bundle.id().to_owned(),
            cgroups_path: bundle.cgroups_path(),
            stdio: Stdio2::new(),
        }
    }

    /// `create` the container; the guard owns it whether or not that worked. The output
    /// is `create`'s (its stdout and stderr are the container's files, still empty).
    pub fn try_create(rt: &'r Runtime, bundle: &Bundle) -> (ContainerGuard<'r>, RtOutput) {
        ContainerGuard::try_create_with(rt, bundle, &[])
    }

    /// As [`ContainerGuard::try_create`], with `extra` arguments to `create`
    /// (`--console-socket <path>`).
    pub fn try_create_with(
        rt: &'r Runtime,
        bundle: &Bundle,
        extra: &[&str],
    ) -> (ContainerGuard<'r>, RtOutput) {
        let guard = ContainerGuard::adopt(rt, bundle);
        let out = rt.create_with(bundle, extra, &guard.stdio);
        (guard, out)
    }

    /// `create` the container; panics (cleaning up) if that fails.
    #[track_caller]
    pub fn create(rt: &'r Runtime, bundle: &Bundle) -> ContainerGuard<'r> {
        let (guard, out) = ContainerGuard::try_create(rt, bundle);
        out.assert_success();
        guard
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn runtime(&self) -> &Runtime {
        self.rt
    }

    #[track_caller]
    pub fn start(&self) {
        self.rt.start(&self.id).assert_success();
    }

    /// `state <id>` as JSON; panics if the command fails.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.rt.state(&self.id).assert_success().json()
    }

    /// The `status` field of `state`.
    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The container's init pid on the host, from `state`.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let s = self.state();
        s["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or_else(|| panic!("state has no pid: {s}"))
    }

    /// Poll `state` until its status is `want`; returns whether it got there in `timeout`.
    pub fn wait_for_status(&self, want: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            let out = self.rt.state(&self.id);
            out.success()
                && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["status"] == want)
        })
    }

    pub fn kill(&self, signal: &str) -> RtOutput {
        self.rt.kill(&self.id, signal)
    }

    /// Sends `signal` once the container's process (the probe's `wait-signal`) sleeps in
    /// sigwaitinfo(2). Sent earlier, it is lost: the namespace's init has no handler yet,
    /// and the kernel drops such signals to a pid-namespace init even from the host.
    #[track_caller]
    pub fn kill_when_waiting(&self, signal: &str, timeout: Duration) -> RtOutput {
        let pid = self.pid();
        assert!(
            wait_until(timeout, || in_sigwait(pid)),
            "the container's process {pid} never waited for a signal within {timeout:?}"
        );
        self.kill(signal)
    }

    pub fn exec(&self, args: &[&str]) -> RtOutput {
        self.rt.exec(&self.id, args)
    }

    /// What the container's process has written to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        read_all(&self.stdio.out)
    }

    /// What the container's process has written to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        read_all(&self.stdio.err)
    }

    /// The container's stdout parsed as JSON, polling until a whole JSON value is there
    /// (the process may still be writing); panics after `timeout`.
    #[track_caller]
    pub fn wait_stdout_json(&self, timeout: Duration) -> Value {
        let mut v = None;
        wait_until(timeout, || {
            v = serde_json::from_slice(&self.stdout()).ok();
            v.is_some()
        });
        v.unwrap_or_else(|| {
            panic!(
                "no JSON on the container's stdout within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&self.stdout()),
                String::from_utf8_lossy(&self.stderr())
            )
        })
    }

    /// The host directories of this container's cgroups (one per mounted hierarchy).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroups_path
            .as_deref()
            .map(cgroup_dirs)
            .unwrap_or_default()
    }

    /// `delete` the container (not forced); the guard still checks the cgroups on drop.
    pub fn delete(&self) -> RtOutput {
        self.rt.delete(&self.id)
    }
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .rt
            .try_cmd(&["kill", &self.id, "KILL"], COMMAND_TIMEOUT);
        let _ = self
            .rt
            .try_cmd(&["delete", "--force", &self.id], COMMAND_TIMEOUT);
        let Some(path) = self.cgroups_path.clone() else {
            return;
        };
        let left = remove_leftover_cgroups(&path, CGROUP_REMOVAL_TIMEOUT);
        if !left.is_empty() && !std::thread::panicking() {
            panic!(
                "{} left cgroup directories of container {} behind after `delete --force`: {left:?}",
                self.rt.name, self.id
            );
        }
    }
}

/// Wait up to `timeout` for every directory of `cgroups_path` to be gone; return those
/// that were not, after killing what they hold and removing them (so a leak is reported
/// once and not left for the next test).
pub fn remove_leftover_cgroups(cgroups_path: &str, timeout: Duration) -> Vec<PathBuf> {
    let gone = wait_until(timeout, || {
        cgroup_dirs(cgroups_path).iter().all(|d| !d.exists())
    });
    if gone {
        return Vec::new();
    }
    let left: Vec<PathBuf> = cgroup_dirs(cgroups_path)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    for d in &left {
        remove_cgroup(d);
    }
    left
}

/// The mount points of every cgroup (v1) and cgroup2 hierarchy mounted with its root.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let fs_type = *fields.get(sep + 1)?;
            let root = *fields.get(3)?;
            let mount_point = *fields.get(4)?;
            ((fs_type == "cgroup" || fs_type == "cgroup2") && root == "/")
                .then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// The directories a `cgroupsPath` (absolute, cgroupfs driver) names in each hierarchy.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() {
        return Vec::new();
    }
    cgroup_mounts().into_iter().map(|m| m.join(rel)).collect()
}

/// Kill every process in the cgroup at `dir` and its children, then remove them (deepest
/// first). Best effort: the caller reports the leak either way.
fn remove_cgroup(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                }
            }
        }
        i += 1;
    }
    for d in dirs.iter().rev() {
        let procs = || {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        };
        for pid in procs() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        wait_until(Duration::from_secs(5), || procs().is_empty());
        let _ = std::fs::remove_dir(d);
    }
}

/// The controllers still enabled on the cgroup2 hierarchy of a hybrid host (v1 controllers
/// at `/sys/fs/cgroup/<name>`, cgroup2 at `/sys/fs/cgroup/unified`); empty on pure v1 or v2.
///
/// crun refuses any container on a hybrid host where this is not empty ("cgroups in hybrid
/// mode not supported, drop all controllers from cgroupv2"). The workaround is to bind each
/// listed controller to a v1 hierarchy, which takes it off cgroup2 for the whole host, e.g.
/// where nothing else sees the mount:
///
/// ```text
/// mkdir -p /run/berth-hugetlb-v1
/// unshare -m --propagation private sh -c \
///     'mount -t cgroup -o hugetlb cgroup /run/berth-hugetlb-v1 && exec sleep infinity' &
/// ```
///
/// or visibly, as systemd's hybrid layout does: `mkdir /sys/fs/cgroup/hugetlb && mount -t
/// cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb`.
pub fn hybrid_cgroup2_controllers() -> Vec<String> {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !cgroup_mounts().iter().any(|m| m == unified) {
        return Vec::new();
    }
    std::fs::read_to_string(unified.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Whether the process `pid` sleeps in sigwaitinfo(2) (its `SigBlk` in /proc does not
/// tell: the kernel unblocks the awaited signals while the process waits).
pub fn in_sigwait(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("sigtimedwait"))
}
