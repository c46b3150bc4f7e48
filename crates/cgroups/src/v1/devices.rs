//! v1 `devices`: the container's device rules (config rules then runc's defaults, from
//! deny-all) written as the smallest transition from the current `devices.list` — for a new
//! cgroup "a" to `devices.deny`, then each allow to `devices.allow`, in the config's order —
//! and checked afterwards.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::devices::{Emulator, effective_rules};
use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

fn current(fs: &dyn CgroupFs, dir: &Path) -> Result<Emulator, CgroupError> {
    let list = fs::read(fs, dir, "devices.list")?;
    Emulator::from_list(&list).map_err(|reason| CgroupError::Parse {
        path: dir.join("devices.list"),
        reason,
    })
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let dir = super::require(dir, "devices", "device rules")?;
    let target = Emulator::build(&effective_rules(r)?)?;
    for rule in current(fs, dir)?.transition(&target) {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(fs, dir, file, &rule.cgroup_string())?;
    }
    // The kernel may have ignored a rule (a parent's restrictions): check what we got.
    let after = current(fs, dir)?;
    let matches = if target.default_allow {
        after.default_allow
    } else {
        after == target
    };
    if !matches {
        return Err(CgroupError::DevicesMismatch {
            path: dir.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::{LinuxDeviceCgroup, LinuxDeviceType};

    fn deny_all_then(extra: Vec<LinuxDeviceCgroup>) -> LinuxResources {
        let deny = LinuxDeviceCgroup {
            access: Some("rwm".into()),
            ..Default::default()
        };
        let mut rules = vec![deny];
        rules.extend(extra);

        LinuxResources {
            devices: Some(rules),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_cgroup_gets_deny_all_then_the_allows() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("devices/c");
        let fuse = LinuxDeviceCgroup {
            allow: true,
            typ: Some(LinuxDeviceType::C),
            major: Some(10),
            minor: Some(229),
            access: Some("rwm".into()),
        };
        set(t.fs(), Some(&dir), &deny_all_then(vec![fuse])).unwrap();
        let w: Vec<String> = t
            .writes()
            .into_iter()
            .map(|(p, v)| format!("{}={v}", p.trim_start_matches("devices/c/")))
            .collect();
        assert_eq!(
            w,
            [
                // the config's rules in its order, then the defaults in theirs (crun's)
                "devices.deny=a *:* rwm",
                "devices.allow=c 10:229 rwm",
                "devices.allow=c *:* m",
                "devices.allow=b *:* m",
                "devices.allow=c 1:3 rwm",
                "devices.allow=c 1:8 rwm",
                "devices.allow=c 1:7 rwm",
                "devices.allow=c 5:0 rwm",
                "devices.allow=c 1:5 rwm",
                "devices.allow=c 1:9 rwm",
                "devices.allow=c 136:* rwm",
                "devices.allow=c 5:2 rwm",
                "devices.allow=c 10:200 rwm",
            ]
        );
        // and devices.list (the fake lists them in the order written, as the kernel) reads
        // the same
        let list = t.read("devices/c/devices.list");
        assert_eq!(
            list.lines().take(2).collect::<Vec<_>>(),
            ["c 10:229 rwm", "c *:* m"]
        );
        // the same rules again (update): nothing to write
        t.clear_writes();
        set(t.fs(), Some(&dir), &deny_all_then(vec![])).unwrap();
        assert_eq!(
            t.writes(),
            [(
                "devices/c/devices.deny".to_owned(),
                "c 10:229 rwm".to_owned()
            )]
        );
        t.clear_writes();
        set(t.fs(), Some(&dir), &LinuxResources::default()).unwrap();
        assert!(t.writes().is_empty());
    }

    #[test]
    fn a_kernel_that_ignores_a_rule_is_detected() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("devices/c");
        t.fail_write("devices/c/devices.allow", 0, 1);
        let err = set(t.fs(), Some(&dir), &LinuxResources::default()).unwrap_err();
        assert!(matches!(err, CgroupError::DevicesMismatch { .. }), "{err}");
    }

    #[test]
    fn the_devices_controller_is_required() {
        let t = FakeTree::v1_tree();
        let err = set(t.fs(), None, &LinuxResources::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::ControllerNotMounted { ref controller, .. } if controller == "devices")
        );
    }
}
