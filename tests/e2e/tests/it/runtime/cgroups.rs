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
