//! `berth run`'s resource flags proven with real containers: the config `build_spec` makes
//! from `RunOptions` (`--memory`, `--pids-limit`, `--device-write-bps`, `--cpus`; the user
//! namespace on, as by default) run by berth-runtime, runc and crun, each running into its
//! limit. Time is asserted only as a lower bound a limit guarantees (so many bytes at so
//! many bytes per second take at least so long) or from the cgroup's own accounting, with
//! wide margins: load on the machine can only make the measured side safer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_image::spec::{ResourceFlags, RunOptions};
use berth_test_support::{ContainerGuard, LoopDevice, requires_tool, run_with_timeout};

use crate::secdef::{RANGE, defaults, runtime, spec_bundle};

const MIB: u64 = 1 << 20;
const WAIT: Duration = Duration::from_secs(60);
const RUNTIMES: [&str; 3] = ["berth-runtime", "runc", "crun"];

/// The first line of `file` in the first of `dirs` that has it.
fn cgroup_file(dirs: &[PathBuf], file: &str) -> Option<String> {
    dirs.iter()
        .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
}

/// `key value` lines of a cgroup file (`memory.oom_control`, `cpu.stat`) → the value.
fn stat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[test]
fn memory_limit_oom_kills_a_container_of_a_built_spec() {
    berth_test_support::requires_root!();
    requires_tool!("runc");
    requires_tool!("crun");
    let o = RunOptions {
        resources: ResourceFlags {
            memory: Some(32 * MIB as i64),
            memory_swap: Some(32 * MIB as i64),
            ..Default::default()
        },
        ..defaults()
    };
    for name in RUNTIMES {
        let rt = runtime(name);
        // under the limit: fine
        let out = rt.run(&spec_bundle(&["alloc:8"], &o));
        assert!(out.success(), "{name}: {out}");
        assert_eq!(out.json()["alloc:8"]["ok"], true, "{name}: {out}");
        // over it: the OOM killer's SIGKILL, the probe never prints
        let out = rt.run(&spec_bundle(&["alloc:128"], &o));
        assert_eq!(out.code(), Some(128 + 9), "{name}: {out}");
        assert!(out.stdout.is_empty(), "{name}: {out}");
        // and the kill is the cgroup's: its OOM counter (v1 memory.oom_control, v2
        // memory.events) says so
        let bundle = spec_bundle(&["alloc:128"], &o);
        let c = ContainerGuard::create(&rt, &bundle);
        let dirs = c.cgroup_dirs();
        let limit = cgroup_file(&dirs, "memory.limit_in_bytes")
            .or_else(|| cgroup_file(&dirs, "memory.max"))
            .unwrap_or_default();
        assert_eq!(limit.trim(), (32 * MIB).to_string(), "{name}: {dirs:?}");
        c.start();
        assert!(c.wait_for_status("stopped", WAIT), "{name}: {}", c.state());
        let events = cgroup_file(&dirs, "memory.oom_control")
            .or_else(|| cgroup_file(&dirs, "memory.events"))
            .unwrap_or_default();
        let kills = stat(&events, "oom_kill").unwrap_or(0);
        eprintln!("{name}: --memory 32m, 128 MiB touched: oom_kill {kills}");
        assert!(
            kills >= 1,
            "{name}: no OOM kill counted in {dirs:?}: {events}"
        );
        assert!(c.stdout().is_empty(), "{name}: the probe finished");
    }
}

#[test]
fn fork_bomb_stops_at_pids_limit_of_a_built_spec() {
    berth_test_support::requires_root!();
    requires_tool!("runc");
    requires_tool!("crun");
    let o = RunOptions {
        resources: ResourceFlags {
            pids_limit: Some(16),
            ..Default::default()
        },
        ..defaults()
    };
    for name in RUNTIMES {
        let rt = runtime(name);
        let out = rt.run(&spec_bundle(&["fork:1000"], &o));
        assert!(out.success(), "{name}: {out}");
        let f = &out.json()["fork:1000"];
        assert_eq!(f["errno_name"], "EAGAIN", "{name}: {f}");
        let forked = f["forked"].as_u64().unwrap();
        assert!(
            (1..16).contains(&forked),
            "{name}: forked {forked} under 16: {f}"
        );
        assert_eq!(f["reaped"], f["forked"], "{name}: {f}");
    }
}

/// An ext4 filesystem on a loop device, mounted on a temporary directory owned by the
/// container's root (host uid 100000); unmounted on drop.
struct Volume {
    dev: LoopDevice,
    dir: tempfile::TempDir,
}

impl Volume {
    fn new() -> Volume {
        let dev = LoopDevice::new(64);
        let ok = |cmd: &mut Command| {
            let out = run_with_timeout(cmd, Duration::from_secs(60));
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(dev.path()));
        let dir = tempfile::Builder::new()
            .prefix("berth-vol-")
            .tempdir()
            .unwrap();
        ok(Command::new("mount").arg(dev.path()).arg(dir.path()));
        let v = Volume { dev, dir };
        std::os::unix::fs::chown(v.dir.path(), Some(RANGE.host_start), Some(RANGE.host_start))
            .unwrap();
        v
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The bundle with `/data` in its root filesystem (made by host root, as the engine makes
/// a volume's mount point; the user-namespaced runtime could not).
fn with_data_dir(bundle: berth_test_support::Bundle) -> berth_test_support::Bundle {
    std::fs::create_dir_all(bundle.rootfs().join("data")).unwrap();
    bundle
}

#[test]
fn device_write_bps_holds_on_a_loop_device_volume() {
    berth_test_support::requires_root!();
    requires_tool!("runc");
    requires_tool!("crun");
    requires_tool!("losetup");
    requires_tool!("mkfs.ext4");
    let vol = Volume::new();
    let bytes = 3 * MIB;
    let step = format!("write-direct:/data/out:{bytes}");
    let volume = format!("{}:/data", vol.path().display());
    for name in RUNTIMES {
        let rt = runtime(name);
        // unthrottled, for the log: what this disk does
        let free = RunOptions {
            volumes: vec![volume.clone()],
            ..defaults()
        };
        let out = rt.run(&with_data_dir(spec_bundle(&[&step], &free)));
        assert!(out.success(), "{name}: {out}");
        let v = &out.json()[&step];
        assert_eq!(v["ok"], true, "{name}: {v}");
        let free_ms = v["elapsed_ms"].as_u64().unwrap();
        // at 1 MiB/s: at least ~2 s for 3 MiB (bound 1.5 s, for the first slice's burst)
        let o = RunOptions {
            volumes: vec![volume.clone()],
            resources: ResourceFlags {
                device_write_bps: vec![format!("{}:1mb", vol.dev.path().display())],
                ..Default::default()
            },
            ..defaults()
        };
        let bundle = with_data_dir(spec_bundle(&[&step], &o));
        let (major, minor) = vol.dev.major_minor();
        let throttle = &bundle.config()["linux"]["resources"]["blockIO"]["throttleWriteBpsDevice"];
        assert_eq!(
            throttle,
            &serde_json::json!([{"major": major, "minor": minor, "rate": MIB}]),
            "{name}"
        );
        let out = rt.run(&bundle);
        assert!(out.success(), "{name}: {out}");
        let v = &out.json()[&step];
        assert_eq!(v["ok"], true, "{name}: {v}");
        assert_eq!(v["bytes"], bytes, "{name}: {v}");
        let ms = v["elapsed_ms"].as_u64().unwrap();
        let rate = |ms: u64| bytes as f64 / MIB as f64 / (ms.max(1) as f64 / 1000.0);
        eprintln!(
            "{name}: O_DIRECT write of 3 MiB: {free_ms} ms unthrottled ({:.1} MiB/s), {ms} ms at --device-write-bps 1mb ({:.2} MiB/s)",
            rate(free_ms),
            rate(ms)
        );
        assert!(ms >= 1500, "{name}: 3 MiB under 1 MiB/s in {ms} ms: {v}");
    }
}

#[test]
fn cpus_quota_holds_by_the_cgroups_own_accounting() {
    berth_test_support::requires_root!();
    requires_tool!("runc");
    requires_tool!("crun");
    let o = RunOptions {
        resources: ResourceFlags {
            cpus: Some(0.5),
            ..Default::default()
        },
        ..defaults()
    };
    for name in RUNTIMES {
        let rt = runtime(name);
        let bundle = spec_bundle(&["burn:1500:2"], &o);
        let c = ContainerGuard::create(&rt, &bundle);
        let dirs = c.cgroup_dirs();
        let quota = match cgroup_file(&dirs, "cpu.cfs_quota_us") {
            Some(q) => format!(
                "{} {}",
                q.trim(),
                cgroup_file(&dirs, "cpu.cfs_period_us")
                    .unwrap_or_default()
                    .trim()
            ),
            None => cgroup_file(&dirs, "cpu.max")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        assert_eq!(quota, "50000 100000", "{name}: the quota in {dirs:?}");
        c.start();
        assert!(c.wait_for_status("stopped", WAIT), "{name}: {}", c.state());
        let v = c.wait_stdout_json(WAIT);
        let burn = &v["burn:1500:2"];
        let wall_ms = burn["wall_ms"].as_u64().unwrap();
        assert!(wall_ms >= 1500, "{name}: {burn}");
        // CPU time as the cgroup counted it (v1 cpuacct.usage in ns, v2 cpu.stat usage_usec)
        let used_ms = match cgroup_file(&dirs, "cpuacct.usage") {
            Some(ns) => ns.trim().parse::<u64>().unwrap() / 1_000_000,
            None => {
                stat(
                    &cgroup_file(&dirs, "cpu.stat").unwrap_or_default(),
                    "usage_usec",
                )
                .unwrap()
                    / 1000
            }
        };
        let cpu_stat = cgroup_file(&dirs, "cpu.stat").unwrap_or_default();
        let ratio = used_ms as f64 / wall_ms as f64;
        eprintln!(
            "{name}: --cpus 0.5, two threads spinning: the cgroup used {used_ms} ms of CPU in {wall_ms} ms ({ratio:.3} CPU); throttled {} times",
            stat(&cpu_stat, "nr_throttled").unwrap_or(0)
        );
        // two threads would use up to 2 CPUs unthrottled; the quota holds them near 0.5
        assert!(
            ratio <= 0.7,
            "{name}: --cpus 0.5 but the cgroup used {ratio:.3} CPU"
        );
        assert!(
            ratio > 0.05,
            "{name}: the probe barely ran ({ratio:.3}): proves nothing"
        );
    }
}
