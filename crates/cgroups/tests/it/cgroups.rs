//! cgroups for real, as root, on this host's kernel.
//!
//! The v1 tests use the host's hierarchies through `manager()` (legacy or hybrid hosts); the
//! v2 tests use a cgroup2 hierarchy: `/sys/fs/cgroup` on a unified host, or the (controller-
//! less) `/sys/fs/cgroup/unified` of a hybrid host, where apply, pids, freeze, destroy and the
//! eBPF device filter work without any controller. Each test names its cgroup uniquely
//! (pid + test), uses a relative cgroupsPath (below the test's own cgroups), and a guard
//! kills what runs inside and removes the cgroups on drop, panics included. Processes are
//! `perl` one-liners (perl-base is essential on Debian) that wait for a line on stdin before
//! acting, so they act only once inside the cgroup.

#![allow(
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test harness: failing loudly is the point"
)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_cgroups::{
    self as cgroups, CgroupManager, CgroupMode, CgroupMounts, CgroupSpec, FreezerState, HostCgroups,
};
use berth_runtime_spec::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNetwork,
    LinuxPids, LinuxResources, LinuxThrottleDevice,
};
use berth_test_support::{
    LoopDevice, cgroup_v2_or_skip, check_cgroup_mode, requires_root, requires_tool, wait_until,
};

/// A process started by a test: killed and reaped on drop.
struct Proc {
    child: Child,
}

impl Proc {
    /// `perl -e script args...`, stdin and stdout piped.
    fn perl(script: &str, args: &[&str]) -> Proc {
        let child = Command::new("perl")
            .arg("-e")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn perl");
        Proc { child }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Let the process go on (it waits for a line on stdin).
    fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Wait (bounded) for the exit; the status and what it printed.
    fn finish(&mut self, timeout: Duration) -> (std::process::ExitStatus, String, String) {
        let mut status = None;
        let exited = wait_until(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        assert!(
            exited,
            "process {} did not exit within {timeout:?}",
            self.pid()
        );
        let mut out = String::new();
        let mut err = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.unwrap(), out, err)
    }

    /// One-letter state from /proc/<pid>/stat (R, S, D, Z...).
    fn state(&self) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.chars().next().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A container's cgroups made by a test: thawed, emptied and removed on drop.
struct Cg {
    manager: Box<dyn CgroupManager>,
}

/// How `BERTH_TEST_EXPECT_CGROUP` names a mode.
fn mode_name(mode: CgroupMode) -> &'static str {
    match mode {
        CgroupMode::Legacy => "v1",
        CgroupMode::Hybrid => "hybrid",
        CgroupMode::Unified => "v2",
    }
}

/// This host, checked against `BERTH_TEST_EXPECT_CGROUP` (set by scripts/vm-test).
fn detect_host() -> HostCgroups {
    let host = HostCgroups::detect().unwrap();
    check_cgroup_mode(mode_name(host.mode));
    host
}

impl Cg {
    /// The v1 manager of this host for a unique relative cgroupsPath.
    fn v1(test: &str) -> Option<Cg> {
        let host = detect_host();
        if host.mode == CgroupMode::Unified {
            eprintln!("skipping: a pure cgroup v2 host has no v1 hierarchies");
            return None;
        }
        let spec = spec(test);
        Some(Cg {
            manager: cgroups::manager(&spec).unwrap(),
        })
    }

    /// The manager of a pure cgroup v2 host (controllers and all), for the tests of the real
    /// v2 interface; `None` (a skip note) on other hosts, a failure when
    /// `BERTH_TEST_EXPECT_CGROUP=v2` says this host is one.
    fn unified(test: &str) -> Option<Cg> {
        let host = HostCgroups::detect().unwrap();
        if !cgroup_v2_or_skip(mode_name(host.mode)) {
            return None;
        }
        let cg = Cg {
            manager: cgroups::manager(&spec(test)).unwrap(),
        };
        assert_eq!(cg.manager.state().mode, CgroupMode::Unified);
        Some(cg)
    }

    /// A v2 manager on this host's cgroup2 hierarchy (the hybrid one if need be).
    fn v2(test: &str) -> Cg {
        let host = detect_host();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let unified = HostCgroups::from_parts(CgroupMode::Unified, &mountinfo, &own);
        let unified = match (host.mode, unified) {
            (CgroupMode::Unified, Ok(u)) => u,
            (_, Ok(mut u)) => {
                // hybrid: the cgroup2 mount is /sys/fs/cgroup/unified
                u.unified_mount = host.unified_mount.clone();
                u
            }
            (_, Err(e)) => panic!("no cgroup2 hierarchy on this host: {e}"),
        };
        assert!(
            unified.unified_mount.is_some(),
            "this host has no cgroup2 mount"
        );
        Cg {
            manager: cgroups::manager_for_host(&spec(test), &unified).unwrap(),
        }
    }

    fn dirs(&self) -> Vec<PathBuf> {
        let state = self.manager.state();
        let mut dirs: Vec<PathBuf> = state.hierarchies.iter().map(|h| h.path.clone()).collect();
        dirs.extend(state.unified.map(|u| u.path));
        dirs
    }

    /// The container's directory for a v1 controller.
    fn v1_dir(&self, controller: &str) -> PathBuf {
        let state = self.manager.state();
        state
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .unwrap_or_else(|| panic!("no {controller} hierarchy"))
            .path
            .clone()
    }

    fn v2_dir(&self) -> PathBuf {
        self.manager.state().unified.unwrap().path
    }
}

impl Drop for Cg {
    fn drop(&mut self) {
        let _ = self.manager.freeze(FreezerState::Thawed);
        for pid in self.manager.pids().unwrap_or_default() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let gone = wait_until(Duration::from_secs(10), || self.manager.destroy().is_ok());
        if !gone && !std::thread::panicking() {
            panic!("cgroups left behind: {:?}", self.dirs());
        }
    }
}

fn spec(test: &str) -> CgroupSpec {
    CgroupSpec {
        path: format!("berth-it-{}-{test}", std::process::id()),
        systemd: false,
        container_id: format!("berth-it-{test}"),
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

/// A perl loop appending a byte to the file `$ARGV[0]` every 5 ms, once told to go.
const TICKER: &str = r#"<STDIN>; open(my $f, ">>", $ARGV[0]) or die; select($f); $| = 1;
while (1) { print "x"; select(undef, undef, undef, 0.005); }"#;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Freeze must stop the ticker and thaw must let it go on.
fn check_freeze_stops_and_thaw_resumes(cg: &Cg, proc: &Proc, ticks: &Path) {
    assert!(
        wait_until(Duration::from_secs(5), || size(ticks) > 3),
        "the ticker never ran"
    );
    cg.manager.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(cg.manager.freezer_state().unwrap(), FreezerState::Frozen);
    // A frozen task sleeps in the freezer (uninterruptible on current kernels). v2 freezes
    // asynchronously: each task enters the freezer at its next return to user space, which
    // under software emulation can be a moment after the write.
    let mut state = proc.state();
    let asleep = wait_until(Duration::from_secs(5), || {
        state = proc.state();
        state == 'D' || state == 'S'
    });
    assert!(asleep, "frozen process in state {state}");
    let frozen_at = size(ticks);
    let moved = wait_until(Duration::from_millis(300), || size(ticks) != frozen_at);
    assert!(!moved, "the ticker kept running while frozen");
    cg.manager.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(cg.manager.freezer_state().unwrap(), FreezerState::Thawed);
    assert!(
        wait_until(Duration::from_secs(5), || size(ticks) > frozen_at + 3),
        "the ticker did not resume after thaw"
    );
}

#[test]
fn v1_limits_are_written_and_read_back_and_pids_list_the_process() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("limits") else { return };
    let mut proc = Proc::perl("<STDIN>; sleep 100", &[]);
    cg.manager.apply(proc.pid()).unwrap();
    let mut r = LinuxResources::default();
    let memory = LinuxMemory {
        limit: Some(64 << 20),
        swap: Some(64 << 20),
        reservation: Some(32 << 20),
        ..Default::default()
    };
    r.memory = Some(memory);
    let pids = LinuxPids { limit: 50 };
    r.pids = Some(pids);
    let cpu = LinuxCpu {
        shares: Some(512),
        quota: Some(50_000),
        period: Some(100_000),
        cpus: Some("0".to_owned()),
        ..Default::default()
    };
    r.cpu = Some(cpu);
    cg.manager.set(&r).unwrap();

    let mem = cg.v1_dir("memory");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "67108864");
    }
    assert_eq!(read(&cg.v1_dir("pids"), "pids.max"), "50");
    let cpu_dir = cg.v1_dir("cpu");
    assert_eq!(read(&cpu_dir, "cpu.shares"), "512");
    assert_eq!(read(&cpu_dir, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu_dir, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&cg.v1_dir("cpuset"), "cpuset.cpus"), "0");

    // the process is in every hierarchy, as the kernel says
    assert_eq!(cg.manager.pids().unwrap(), [proc.pid()]);
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", proc.pid())).unwrap();
    let name = spec("limits").path;
    for line in proc_cgroup.lines().filter(|l| !l.contains("name=systemd")) {
        assert!(
            line.ends_with(&format!("/{name}")),
            "not in the container's cgroup: {line}"
        );
    }

    // update (berth-runtime update): new values replace the old ones
    let pids = LinuxPids { limit: -1 };
    r.pids = Some(pids);
    cg.manager.set(&r).unwrap();
    assert_eq!(read(&cg.v1_dir("pids"), "pids.max"), "max");
    proc.go();
}

#[test]
fn v1_freeze_stops_the_process_and_thaw_resumes_it() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("freeze") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let mut proc = Proc::perl(TICKER, &[ticks.to_str().unwrap()]);
    cg.manager.apply(proc.pid()).unwrap();
    proc.go();
    check_freeze_stops_and_thaw_resumes(&cg, &proc, &ticks);
    assert_eq!(read(&cg.v1_dir("freezer"), "freezer.state"), "THAWED");
}

/// A perl process in `cg` allocates 512 MiB under a 32 MiB memory (and swap) limit: it must
/// be OOM-killed, and no kill counted before. Returns what it printed.
fn allocate_past_a_32_mib_limit(cg: &Cg) -> String {
    let mut proc = Proc::perl(
        "<STDIN>; my $x = 'a' x (512 * 1024 * 1024); print length($x);",
        &[],
    );
    cg.manager.apply(proc.pid()).unwrap();
    let mut r = LinuxResources::default();
    let memory = LinuxMemory {
        limit: Some(32 << 20),
        swap: Some(32 << 20),
        ..Default::default()
    };
    r.memory = Some(memory);
    cg.manager.set(&r).unwrap();
    assert_eq!(cg.manager.oom_kill_count().unwrap(), 0);
    proc.go();
    let (status, out, _) = proc.finish(Duration::from_secs(30));
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "not OOM-killed: {status:?}, printed {out:?}"
    );
    out
}

/// A perl process in `cg` forks once under a pids limit of 1 and prints the errno (or
/// "forked"); it must exit cleanly. Returns what it printed.
fn fork_under_a_pids_limit_of_1(cg: &Cg) -> String {
    let mut proc = Proc::perl(
        "<STDIN>; my $pid = fork(); if (!defined $pid) { print $! + 0; exit 0 } \
         if ($pid == 0) { exit 0 } waitpid($pid, 0); print 'forked';",
        &[],
    );
    cg.manager.apply(proc.pid()).unwrap();
    let mut r = LinuxResources::default();
    let pids = LinuxPids { limit: 1 };
    r.pids = Some(pids);
    cg.manager.set(&r).unwrap();
    proc.go();
    let (status, out, err) = proc.finish(Duration::from_secs(10));
    assert!(status.success(), "{status:?} {err}");
    out
}

#[test]
fn v1_memory_limit_oom_kills_and_is_counted() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("oom") else { return };
    let out = allocate_past_a_32_mib_limit(&cg);
    assert!(out.is_empty(), "the allocation succeeded: {out}");
    assert_eq!(cg.manager.oom_kill_count().unwrap(), 1);
    let memory = cg.manager.stats().unwrap().memory;
    // the peak reached the limit (this kernel leaves failcnt at 0 on an OOM kill)
    assert_eq!(memory.usage.limit, 32 << 20);
    assert!(
        memory.usage.max + (1 << 20) >= memory.usage.limit,
        "peak below the limit: {memory:?}"
    );
}

#[test]
fn v1_pids_limit_makes_fork_fail_with_eagain() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("pids") else { return };
    let out = fork_under_a_pids_limit_of_1(&cg);
    assert_eq!(
        out,
        libc::EAGAIN.to_string(),
        "fork was not refused with EAGAIN"
    );
    let stats = cg.manager.stats().unwrap();
    assert_eq!(stats.pids.limit, 1);
}

#[test]
fn v1_stats_are_plausible_and_serialise_like_runc() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("stats") else { return };
    // burn a little CPU and hold some memory, then wait
    let mut proc = Proc::perl(
        "<STDIN>; my $x = 'a' x (8 * 1024 * 1024); my $n = 0; $n++ for 1 .. 3_000_000; \
         print \"ready\\n\"; close(STDOUT); <STDIN>;",
        &[],
    );
    cg.manager.apply(proc.pid()).unwrap();
    cg.manager.set(&LinuxResources::default()).unwrap();
    proc.go();
    let mut line = [0u8; 6];
    proc.child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    let stats = cg.manager.stats().unwrap();
    assert_eq!(stats.pids.current, 1);
    assert!(
        stats.cpu.usage.total > 1_000_000,
        "cpu usage {:?}",
        stats.cpu.usage
    );
    assert!(stats.cpu.usage.user + stats.cpu.usage.kernel > 0);
    assert!(!stats.cpu.usage.percpu.is_empty());
    assert!(
        stats.memory.usage.usage >= 8 << 20,
        "memory {:?}",
        stats.memory.usage
    );
    assert!(stats.memory.raw.contains_key("rss"));
    assert!(!stats.cpuset.cpus.is_empty());
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["memory"]["usage"]["limit"].as_u64().unwrap() > 0);
    assert!(json["network_interfaces"].is_null());
    assert_eq!(json["intel_rdt"], serde_json::json!({}));
    proc.go();
}

#[test]
fn v1_destroy_removes_every_dir_once_the_dead_process_is_reaped() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("destroy") else { return };
    let mut proc = Proc::perl("<STDIN>;", &[]);
    cg.manager.apply(proc.pid()).unwrap();
    let dirs = cg.dirs();
    assert!(dirs.len() >= 5, "{dirs:?}");
    for dir in &dirs {
        assert!(dir.is_dir(), "{} was not created", dir.display());
    }
    // with the process alive the kernel refuses
    let err = cg.manager.destroy().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    // the process dies and is reaped: every directory goes
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    cg.manager.destroy().unwrap();
    for dir in &dirs {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    cg.manager.destroy().unwrap();
}

#[test]
fn v1_device_rules_deny_what_the_config_does_not_allow() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::v1("devices") else { return };
    let open = "<STDIN>; for my $d (@ARGV) { if (open(my $f, '<', $d)) { print \"$d ok\\n\" } \
                else { print \"$d \", $! + 0, \"\\n\" } }";
    let mut proc = Proc::perl(open, &["/dev/null", "/dev/kmsg"]);
    cg.manager.apply(proc.pid()).unwrap();
    cg.manager.set(&LinuxResources::default()).unwrap();
    let list = read(&cg.v1_dir("devices"), "devices.list");
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("a ")), "{list}");
    proc.go();
    let (_, out, _) = proc.finish(Duration::from_secs(10));
    assert_eq!(out, format!("/dev/null ok\n/dev/kmsg {}\n", libc::EPERM));

    // update with a rule for /dev/kmsg: only what changed is written, and it now opens
    let kmsg = LinuxDeviceCgroup {
        allow: true,
        typ: Some(LinuxDeviceType::C),
        major: Some(1),
        minor: Some(11),
        access: Some("r".to_owned()),
    };
    let r = LinuxResources {
        devices: Some(vec![kmsg]),
        ..Default::default()
    };
    cg.manager.set(&r).unwrap();
    let mut proc = Proc::perl(open, &["/dev/kmsg"]);
    cg.manager.apply(proc.pid()).unwrap();
    proc.go();
    let (_, out, _) = proc.finish(Duration::from_secs(10));
    assert_eq!(out, "/dev/kmsg ok\n");
}

#[test]
fn v1_network_class_id_needs_net_cls() {
    requires_root!();
    let Some(cg) = Cg::v1("netcls") else { return };
    cg.manager.apply(-1).unwrap();
    let network = LinuxNetwork {
        class_id: Some(0x0010_0001),
        ..Default::default()
    };
    let r = LinuxResources {
        network: Some(network),
        ..Default::default()
    };
    let mounted = cg
        .manager
        .state()
        .hierarchies
        .iter()
        .any(|h| h.controllers.iter().any(|c| c == "net_cls"));
    let result = cg.manager.set(&r);
    if mounted {
        result.unwrap();
        assert_eq!(read(&cg.v1_dir("net_cls"), "net_cls.classid"), "1048577");
    } else {
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the net_cls cgroup controller is not mounted on this host, but the configuration sets a network classID"
        );
    }
}

#[test]
fn v1_mounts_and_state_match_the_host() {
    requires_root!();
    let Some(cg) = Cg::v1("mounts") else { return };
    let state = cg.manager.state();
    let again = cgroups::from_state(
        &serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(again.state(), state);
    match cg.manager.mounts() {
        CgroupMounts::V1 {
            hierarchies,
            unified,
        } => {
            for (name, path) in &hierarchies {
                let mount = Path::new(cgroups::CGROUP_ROOT).join(name);
                assert!(
                    path.starts_with(&mount),
                    "{} not below {}",
                    path.display(),
                    mount.display()
                );
            }
            assert_eq!(unified.is_some(), state.mode == CgroupMode::Hybrid);
        }
        CgroupMounts::V2(path) => panic!("v2 mounts on a v1 host: {}", path.display()),
    }
}

#[test]
fn v2_apply_pids_freeze_and_destroy_on_the_cgroup2_hierarchy() {
    requires_root!();
    requires_tool!("perl");
    let cg = Cg::v2("v2freeze");
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let mut proc = Proc::perl(TICKER, &[ticks.to_str().unwrap()]);
    cg.manager.apply(proc.pid()).unwrap();
    let cgroup = cg.v2_dir();
    assert_eq!(read(&cgroup, "cgroup.procs"), proc.pid().to_string());
    assert_eq!(cg.manager.pids().unwrap(), [proc.pid()]);
    proc.go();
    check_freeze_stops_and_thaw_resumes(&cg, &proc, &ticks);
    assert!(read(&cgroup, "cgroup.events").contains("frozen 0"));
    // stats work without controllers (pids counted from cgroup.procs)
    assert_eq!(cg.manager.stats().unwrap().pids.current, 1);
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    cg.manager.destroy().unwrap();
    assert!(!cgroup.exists());
    cg.manager.destroy().unwrap();
}

#[test]
fn v2_device_filter_denies_with_eperm_and_is_replaced_on_update() {
    requires_root!();
    requires_tool!("perl");
    let cg = Cg::v2("v2devices");
    let open = "<STDIN>; for my $d (@ARGV) { if (open(my $f, '<', $d)) { print \"$d ok\\n\" } \
                else { print \"$d \", $! + 0, \"\\n\" } }";
    let mut proc = Proc::perl(open, &["/dev/null", "/dev/zero", "/dev/kmsg"]);
    cg.manager.apply(proc.pid()).unwrap();
    cg.manager.set(&LinuxResources::default()).unwrap();
    let cgroup = cg.v2_dir();
    assert_eq!(cgroups::attached_device_programs(&cgroup).unwrap(), 1);
    proc.go();
    let (_, out, _) = proc.finish(Duration::from_secs(10));
    assert_eq!(
        out,
        format!("/dev/null ok\n/dev/zero ok\n/dev/kmsg {}\n", libc::EPERM)
    );

    // update: allow /dev/kmsg; the program is replaced, not added
    let kmsg = LinuxDeviceCgroup {
        allow: true,
        typ: Some(LinuxDeviceType::C),
        major: Some(1),
        minor: Some(11),
        access: Some("r".to_owned()),
    };
    let r = LinuxResources {
        devices: Some(vec![kmsg]),
        ..Default::default()
    };
    cg.manager.set(&r).unwrap();
    assert_eq!(cgroups::attached_device_programs(&cgroup).unwrap(), 1);
    let mut proc = Proc::perl(open, &["/dev/kmsg", "/dev/full"]);
    cg.manager.apply(proc.pid()).unwrap();
    proc.go();
    let (_, out, _) = proc.finish(Duration::from_secs(10));
    assert_eq!(out, "/dev/kmsg ok\n/dev/full ok\n");
    // a process outside the cgroup is not affected
    let mut outside = Proc::perl(open, &["/dev/kmsg"]);
    outside.go();
    let (_, out, _) = outside.finish(Duration::from_secs(10));
    assert_eq!(out, "/dev/kmsg ok\n");
}

// --- the real cgroup v2 interface: pure v2 hosts only (scripts/vm-test's VM) ---------------

/// The controllers enabled for the container's cgroup (its parent's subtree_control).
fn enabled_controllers(cg: &Cg) -> Vec<String> {
    read(cg.v2_dir().parent().unwrap(), "cgroup.subtree_control")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn v2_real_freeze_writes_cgroup_freeze_and_the_kernel_reports_frozen() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::unified("rfreeze") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let mut proc = Proc::perl(TICKER, &[ticks.to_str().unwrap()]);
    cg.manager.apply(proc.pid()).unwrap();
    proc.go();
    assert!(
        wait_until(Duration::from_secs(5), || size(&ticks) > 3),
        "the ticker never ran"
    );
    let cgroup = cg.v2_dir();
    cg.manager.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(read(&cgroup, "cgroup.freeze"), "1");
    assert!(
        read(&cgroup, "cgroup.events")
            .lines()
            .any(|l| l == "frozen 1"),
        "{}",
        read(&cgroup, "cgroup.events")
    );
    assert_eq!(cg.manager.freezer_state().unwrap(), FreezerState::Frozen);
    cg.manager.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(read(&cgroup, "cgroup.freeze"), "0");
    assert!(
        read(&cgroup, "cgroup.events")
            .lines()
            .any(|l| l == "frozen 0")
    );
    check_freeze_stops_and_thaw_resumes(&cg, &proc, &ticks);
}

#[test]
fn v2_real_limits_are_written_converted_and_read_back() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::unified("rlimits") else {
        return;
    };
    let mut proc = Proc::perl("<STDIN>; sleep 100", &[]);
    cg.manager.apply(proc.pid()).unwrap();
    let enabled = enabled_controllers(&cg);
    for c in ["cpu", "cpuset", "io", "memory", "pids"] {
        assert!(
            enabled.iter().any(|e| e == c),
            "{c} not enabled for the container: {enabled:?}"
        );
    }
    let mut r = LinuxResources::default();
    let mut memory = LinuxMemory {
        limit: Some(64 << 20),
        ..Default::default()
    };
    // memory+swap (v1's notion) 96 MiB: 32 MiB of swap in v2's terms
    memory.swap = Some(96 << 20);
    memory.reservation = Some(32 << 20);
    r.memory = Some(memory);
    let pids = LinuxPids { limit: 50 };
    r.pids = Some(pids);
    let cpu = LinuxCpu {
        shares: Some(512),
        quota: Some(50_000),
        period: Some(100_000),
        cpus: Some("0".to_owned()),
        ..Default::default()
    };
    r.cpu = Some(cpu);
    cg.manager.set(&r).unwrap();

    let dir = cg.v2_dir();
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "memory.swap.max"), "33554432");
    assert_eq!(read(&dir, "memory.low"), "33554432");
    assert_eq!(read(&dir, "pids.max"), "50");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    // shares 512 → weight 1 + (512 - 2) * 9999 / 262142 (runc's conversion)
    assert_eq!(read(&dir, "cpu.weight"), "20");
    assert_eq!(read(&dir, "cpuset.cpus"), "0");
    assert_eq!(
        read(&dir, "cgroup.procs"),
        proc.pid().to_string(),
        "the process is in the container's cgroup"
    );

    // memory+swap equal to memory: no swap at all; -1: unlimited
    let memory = LinuxMemory {
        limit: Some(64 << 20),
        swap: Some(64 << 20),
        ..Default::default()
    };
    r.memory = Some(memory);
    cg.manager.set(&r).unwrap();
    assert_eq!(read(&dir, "memory.swap.max"), "0");
    let memory = LinuxMemory {
        limit: Some(128 << 20),
        swap: Some(-1),
        ..Default::default()
    };
    r.memory = Some(memory);
    let pids = LinuxPids { limit: -1 };
    r.pids = Some(pids);
    cg.manager.set(&r).unwrap();
    assert_eq!(read(&dir, "memory.max"), "134217728");
    assert_eq!(read(&dir, "memory.swap.max"), "max");
    assert_eq!(read(&dir, "pids.max"), "max");
    let stats = cg.manager.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 128 << 20);
    assert_eq!(stats.pids.current, 1);
    proc.go();
}

#[test]
fn v2_real_io_max_is_written_for_a_loop_device() {
    requires_root!();
    requires_tool!("losetup");
    let Some(cg) = Cg::unified("rio") else {
        return;
    };
    let dev = LoopDevice::new(16);
    let (major, minor) = dev.major_minor();
    cg.manager.apply(-1).unwrap();
    let throttle = |rate: u64| -> LinuxThrottleDevice {
        LinuxThrottleDevice {
            major: i64::try_from(major).unwrap(),
            minor: i64::try_from(minor).unwrap(),
            rate,
        }
    };
    let io = LinuxBlockIo {
        throttle_read_bps_device: Some(vec![throttle(1 << 20)]),
        throttle_write_iops_device: Some(vec![throttle(100)]),
        ..Default::default()
    };
    let r = LinuxResources {
        block_io: Some(io),
        ..Default::default()
    };
    cg.manager.set(&r).unwrap();
    let io_max = read(&cg.v2_dir(), "io.max");
    assert_eq!(
        io_max,
        format!("{major}:{minor} rbps=1048576 wbps=max riops=max wiops=100"),
        "io.max"
    );
}

#[test]
fn v2_real_oom_kill_shows_in_memory_events() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::unified("room") else {
        return;
    };
    allocate_past_a_32_mib_limit(&cg);
    let events = read(&cg.v2_dir(), "memory.events");
    assert!(
        events.lines().any(|l| l == "oom_kill 1"),
        "memory.events: {events}"
    );
    assert_eq!(cg.manager.oom_kill_count().unwrap(), 1);
    let memory = cg.manager.stats().unwrap().memory;
    assert_eq!(memory.usage.limit, 32 << 20);
}

#[test]
fn v2_real_pids_limit_makes_fork_fail_with_eagain() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::unified("rpids") else {
        return;
    };
    let out = fork_under_a_pids_limit_of_1(&cg);
    assert_eq!(out, libc::EAGAIN.to_string(), "fork was not refused");
    let events = read(&cg.v2_dir(), "pids.events");
    assert!(events.contains("max 1"), "pids.events: {events}");
}

#[test]
fn v2_real_destroy_leaves_nothing_behind() {
    requires_root!();
    requires_tool!("perl");
    let Some(cg) = Cg::unified("rdestroy") else {
        return;
    };
    let mut proc = Proc::perl("<STDIN>;", &[]);
    cg.manager.apply(proc.pid()).unwrap();
    cg.manager.set(&LinuxResources::default()).unwrap();
    let dir = cg.v2_dir();
    // a child cgroup (as a nested container runtime would make) with a process of its own
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut child = Proc::perl("<STDIN>;", &[]);
    // the kernel's no-internal-processes rule: the parent's process moves to a leaf first
    let leaf = dir.join("leaf");
    std::fs::create_dir(&leaf).unwrap();
    let procs = |d: &Path, pid: i32| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("cgroup.procs"))
            .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
    };
    procs(&leaf, proc.pid()).unwrap();
    procs(&sub, child.pid()).unwrap();
    let mut pids = cg.manager.pids().unwrap();
    pids.sort_unstable();
    let mut want = vec![proc.pid(), child.pid()];
    want.sort_unstable();
    assert_eq!(pids, want);
    // with processes alive the kernel refuses
    assert!(cg.manager.destroy().is_err());
    assert!(dir.is_dir());
    for p in [&mut proc, &mut child] {
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }
    cg.manager.destroy().unwrap();
    assert!(!dir.exists(), "{} is left", dir.display());
    let parent = dir.parent().unwrap();
    let name = dir.file_name().unwrap();
    assert!(
        !std::fs::read_dir(parent)
            .unwrap()
            .flatten()
            .any(|e| e.file_name() == name),
        "the container's cgroup is still listed in {}",
        parent.display()
    );
    cg.manager.destroy().unwrap();
}
