//! The container's cgroup as the kernel enforces it, on whatever the host has (v1
//! `devices.list` or a v2 eBPF device program; `memory.limit_in_bytes` or `memory.max`):
//! device rules from the inside, and `update` on a running container. `scripts/vm-test` runs
//! these on a pure cgroup v2 kernel too.

use std::time::Duration;

use berth_test_support::{Bundle, ContainerGuard, LoopDevice, requires_tool};
use serde_json::json;

use super::{outcome, probe, runtime_test};

const WAIT: Duration = Duration::from_secs(30);
const MIB: u64 = 1 << 20;

runtime_test! {
    /// A device node in `linux.devices` that no `resources.devices` rule allows cannot be
    /// opened (EPERM from the device cgroup, as root with every capability of the default
    /// set), while /dev/null, in the default rules, opens; the same node with an allow rule
    /// opens too, so the refusal is the cgroup's.
    fn device_cgroup_denies_an_unlisted_device_and_allows_dev_null(rt) {
        requires_tool!("losetup");
        let dev = LoopDevice::new(1);
        let (major, minor) = dev.major_minor();
        let mut b = Bundle::new();
        b.config_mut()["linux"]["devices"] = json!([{
            "path": "/dev/probe-disk", "type": "b", "major": major, "minor": minor,
            "fileMode": 0o660, "uid": 0, "gid": 0,
        }]);
        b.probe(&["read:/dev/null", "read:/dev/probe-disk"]);
        let v = probe(rt, &b);
        assert_eq!(outcome(&v, "read:/dev/null"), "ok", "{v}");
        assert_eq!(outcome(&v, "read:/dev/probe-disk"), "EPERM", "{v}");

        let mut b = Bundle::new();
        b.device("/dev/probe-disk", dev.path(), "r")
            .probe(&["read:/dev/probe-disk"]);
        let v = probe(rt, &b);
        assert_eq!(outcome(&v, "read:/dev/probe-disk"), "ok", "{v}");
    }
}

/// The memory limit of the container's cgroup: v1 `memory.limit_in_bytes` or v2 `memory.max`.
fn memory_limit(c: &ContainerGuard<'_>) -> Option<String> {
    let dirs = c.cgroup_dirs();
    ["memory.limit_in_bytes", "memory.max"]
        .iter()
        .find_map(|file| {
            dirs.iter().find_map(|d| {
                std::fs::read_to_string(d.join(file))
                    .ok()
                    .map(|t| t.trim().to_owned())
            })
        })
}

runtime_test! {
    /// `update --memory` on a running container changes its cgroup's memory limit, and the
    /// container goes on running; an allocation above the old limit then succeeds.
    fn update_changes_the_memory_limit_of_a_running_container(rt) {
        let mut b = Bundle::new();
        b.resources(json!({"memory": {"limit": 64 * MIB}}))
            .probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        c.start();
        assert!(c.wait_for_status("running", WAIT), "{}", c.state());
        assert_eq!(memory_limit(&c).as_deref(), Some("67108864"), "{:?}", c.cgroup_dirs());

        let bytes = (128 * MIB).to_string();
        rt.cmd(&["update", "--memory", &bytes, "--memory-swap", "-1", c.id()], WAIT)
            .assert_success();
        assert_eq!(memory_limit(&c).as_deref(), Some(bytes.as_str()), "{:?}", c.cgroup_dirs());
        assert_eq!(c.status(), "running");
        let out = c.exec(&["/probe", "alloc:96"]);
        assert!(out.success(), "96 MiB under the new 128 MiB limit: {out}");
        assert_eq!(out.json()["alloc:96"]["ok"], true, "{out}");
    }
}

/// Whether the host has a cgroup v1 hierarchy of `controller` (the v1-only tests below
/// have nothing to look at on a pure cgroup v2 host, and return).
fn v1_hierarchy(controller: &str) -> bool {
    let want = std::path::Path::new("/sys/fs/cgroup").join(controller);
    let found = berth_test_support::cgroup_mounts().contains(&want);
    if !found {
        eprintln!("no cgroup v1 {controller} hierarchy: nothing to check");
    }
    found
}

runtime_test! {
    /// v1 `devices.list` lists the exceptions in the order they were written: with allow
    /// rules out of (major, minor) order, berth-runtime writes the config's rules in the
    /// config's order, then its default rules (runc's list, in runc's order), as crun
    /// does, so the list reads as the config says. Pinned: runc 1.1 sorts every rule by
    /// (major, minor, type); crun 1.8 writes them as berth-runtime, with its own
    /// defaults (/dev/console 5:1, no /dev/net/tun 10:200).
    fn device_rules_are_written_in_the_configs_order(rt) {
        if !v1_hierarchy("devices") {
            return;
        }
        let mut b = Bundle::new();
        b.resources(json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            {"allow": true, "type": "b", "major": 7, "access": "r"},
            {"allow": true, "type": "c", "major": 4, "minor": 1, "access": "rw"},
        ]}))
        .probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        let list = c
            .cgroup_dirs()
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join("devices.list")).ok())
            .unwrap_or_else(|| panic!("no devices.list in {:?}", c.cgroup_dirs()));
        let lines: Vec<&str> = list.lines().collect();
        let want: &[&str] = match rt.name() {
            "runc" => &[
                "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                "c 1:9 rwm", "c 4:1 rw", "c 5:0 rwm", "c 5:2 rwm", "b 7:* r", "c 10:200 rwm",
                "c 10:229 rwm", "c 136:* rwm",
            ],
            "crun" => &[
                "c 10:229 rwm", "b 7:* r", "c 4:1 rw", "c *:* m", "b *:* m", "c 1:3 rwm",
                "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm",
                "c 136:* rwm", "c 5:2 rwm",
            ],
            _ => &[
                "c 10:229 rwm", "b 7:* r", "c 4:1 rw", "c *:* m", "b *:* m", "c 1:3 rwm",
                "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
                "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
            ],
        };
        assert_eq!(lines, want, "{}", rt.name());
    }
}

runtime_test! {
    /// `memory.kernelTCP` on cgroup v1: berth-runtime sets the host's
    /// `memory.kmem.tcp.limit_in_bytes`, as crun does; `memory.kernel` is not set (this
    /// kernel accepts and ignores it anyway) and berth-runtime says so once on stderr.
    /// Pinned: runc 1.1 sets neither and warns once that kernel memory settings are
    /// ignored; crun 1.8 writes both (the kernel keeps kmem unlimited) and says nothing.
    fn kernel_tcp_memory_is_set_and_kernel_memory_reported(rt) {
        if !v1_hierarchy("memory") {
            return;
        }
        let mut b = Bundle::new();
        b.resources(json!({
            "memory": {"limit": 64 * MIB, "kernelTCP": 4 * MIB, "kernel": 32 * MIB}
        }))
        .probe(&["wait-signal"]);
        let (c, out) = ContainerGuard::try_create(rt, &b);
        assert!(out.success(), "{out}");
        let dirs = c.cgroup_dirs();
        let read = |f: &str| {
            dirs.iter()
                .find_map(|d| std::fs::read_to_string(d.join(f)).ok())
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {f} in {dirs:?}"))
        };
        assert_eq!(read("memory.limit_in_bytes"), (64 * MIB).to_string());
        let tcp = read("memory.kmem.tcp.limit_in_bytes");
        let stderr = out.stderr_str().to_lowercase();
        let kernel_warnings = stderr.lines().filter(|l| l.contains("kernel memory")).count();
        match rt.name() {
            "runc" => {
                assert_ne!(tcp, (4 * MIB).to_string(), "runc 1.1 ignores kernelTCP");
                assert_eq!(kernel_warnings, 1, "{out}");
            }
            "crun" => {
                assert_eq!(tcp, (4 * MIB).to_string());
                assert_eq!(kernel_warnings, 0, "{out}");
            }
            _ => {
                assert_eq!(tcp, (4 * MIB).to_string());
                assert_eq!(kernel_warnings, 1, "one warning for memory.kernel: {out}");
                assert!(stderr.contains("memory.kernel (33554432) is ignored"), "{out}");
            }
        }
    }
}
