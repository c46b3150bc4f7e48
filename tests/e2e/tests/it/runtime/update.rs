//! `update` leaves the device rules alone: runc's `update` cannot change them and sets
//! `SkipDevices` (runc 1.1 `update.go`), so rules another component added on top of the
//! runtime's (a GPU plugin's allow rule) survive an update of the other limits.

use std::io::Write;

use serde_json::json;

use super::cgroups_ops::{WAIT, cg_dir_with, cg_value, sh_bundle, started};
use super::runtime_test;

/// A rule no default allows: /dev/mem.
const EXTRA_RULE: &str = "c 1:1 rwm";

runtime_test! {
    /// An allow rule added from outside to the container's devices cgroup (v1) is still
    /// there after `update --pids-limit`, which did change the pids limit. On a pure v2
    /// host (eBPF device programs) the program attached at create is the only one after
    /// the update.
    fn update_leaves_device_rules_alone(rt) {
        let mut b = sh_bundle("sleep 1000");
        b.resources(json!({"pids": {"limit": 50}}));
        let c = started(rt, &b);
        if let Some(dir) = cg_dir_with(&c, "devices.allow") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("devices.allow"))
                .and_then(|mut f| f.write_all(EXTRA_RULE.as_bytes()))
                .expect("add a device rule");
            let list = || std::fs::read_to_string(dir.join("devices.list")).unwrap_or_default();
            assert!(list().lines().any(|l| l == EXTRA_RULE), "{}", list());
            rt.cmd(&["update", "--pids-limit", "99", c.id()], WAIT).assert_success();
            assert_eq!(cg_value(&c, "pids.max"), "99", "the update was applied");
            assert!(
                list().lines().any(|l| l == EXTRA_RULE),
                "{} re-applied the device rules on update:\n{}",
                rt.name(),
                list()
            );
        } else {
            let dir = cg_dir_with(&c, "cgroup.procs").expect("the container's cgroup");
            let programs = || berth_cgroups::attached_device_programs(&dir).expect("query");
            assert_eq!(programs(), 1, "one device program after create");
            rt.cmd(&["update", "--pids-limit", "99", c.id()], WAIT).assert_success();
            assert_eq!(cg_value(&c, "pids.max"), "99", "the update was applied");
            assert_eq!(programs(), 1, "one device program after update");
        }
    }
}
