//! v2 devices: the container's device rules (config rules then runc's defaults, from deny-all)
//! compiled into an eBPF program attached to the cgroup, replacing the previous one.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use super::bpf::device_program;
use crate::devices::{Emulator, effective_rules};
use crate::error::CgroupError;
use crate::fs::CgroupFs;

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let emulator = Emulator::build(&effective_rules(r)?)?;
    fs.attach_device_filter(dir, &device_program(&emulator)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{Access, DevType};
    use crate::fake::FakeTree;
    use crate::v2::bpf::interpreter::run;
    use berth_runtime_spec::{LinuxDeviceCgroup, LinuxDeviceType};

    #[test]
    fn the_attached_program_allows_the_defaults_and_the_config_rules_only() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let fuse = LinuxDeviceCgroup {
            allow: true,
            typ: Some(LinuxDeviceType::C),
            major: Some(10),
            minor: Some(229),
            access: Some("rw".into()),
        };
        let r = LinuxResources {
            devices: Some(vec![fuse]),
            ..Default::default()
        };
        set(t.fs(), &dir, &r).unwrap();
        let programs = t.programs();
        assert_eq!(programs.len(), 1);
        assert_eq!(programs[0].0, dir);
        let p = &programs[0].1;
        let rw = Access::parse("rw").unwrap();
        assert!(run(p, DevType::Char, rw, 1, 3)); // /dev/null
        assert!(run(p, DevType::Char, rw, 10, 229)); // the config's fuse
        assert!(!run(
            p,
            DevType::Char,
            Access::parse("rm").unwrap(),
            10,
            229
        ));
        assert!(run(p, DevType::Block, Access::MKNOD, 8, 0)); // mknod of anything (runc default)
        assert!(!run(p, DevType::Block, Access::READ, 8, 0)); // but no disk
        assert!(!run(p, DevType::Char, rw, 4, 1)); // nor a tty other than the defaults
        // an update replaces the program
        set(t.fs(), &dir, &LinuxResources::default()).unwrap();
        let programs = t.programs();
        assert_eq!(programs.len(), 2);
        assert!(!run(&programs[1].1, DevType::Char, rw, 10, 229));
    }

    #[test]
    fn invalid_rules_are_refused_before_anything_is_attached() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let bad = LinuxDeviceCgroup {
            allow: true,
            typ: Some(LinuxDeviceType::C),
            ..Default::default()
        };
        let r = LinuxResources {
            devices: Some(vec![bad]),
            ..Default::default()
        };
        assert!(matches!(
            set(t.fs(), &dir, &r),
            Err(CgroupError::DeviceRule { .. })
        ));
        assert!(t.programs().is_empty());
    }
}
