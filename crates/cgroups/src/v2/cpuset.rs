//! v2 `cpuset`: cpus and mems.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(cpu) = &r.cpu else { return Ok(()) };
    if let Some(cpus) = cpu.cpus.as_deref().filter(|s| !s.is_empty()) {
        fs::write(fs, dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems.as_deref().filter(|s| !s.is_empty()) {
        fs::write(fs, dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxCpu;

    #[test]
    fn cpus_and_mems() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let cpu = LinuxCpu {
            cpus: Some("1".into()),
            mems: Some("0".into()),
            ..Default::default()
        };
        let mut r = LinuxResources {
            cpu: Some(cpu),
            ..Default::default()
        };
        set(t.fs(), &dir, &r).unwrap();
        assert_eq!(
            (t.read("c/cpuset.cpus"), t.read("c/cpuset.mems")),
            ("1".into(), "0".into())
        );
        t.clear_writes();
        r.cpu = Some(LinuxCpu::default());
        set(t.fs(), &dir, &r).unwrap();
        assert!(t.writes().is_empty());
    }
}
