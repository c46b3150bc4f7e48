//! v1 `net_cls`: the network class id of the container's packets.
//!
//! When the controller is not mounted (as on this host) and a config sets a class id, the error
//! names the controller (runc fails there too, with "cannot set net_cls limit").

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(class_id) = r
        .network
        .as_ref()
        .and_then(|n| n.class_id)
        .filter(|c| *c != 0)
    else {
        return Ok(());
    };
    let dir = super::require(dir, "net_cls", "a network classID")?;
    fs::write(fs, dir, "net_cls.classid", &class_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxNetwork;

    #[test]
    fn class_id_is_written_in_decimal_and_needs_the_controller() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("net_cls,net_prio/c");
        let n = LinuxNetwork {
            class_id: Some(0x0010_0001),
            ..Default::default()
        };
        let r = LinuxResources {
            network: Some(n),
            ..Default::default()
        };
        set(t.fs(), Some(&dir), &r).unwrap();
        assert_eq!(t.read("net_cls,net_prio/c/net_cls.classid"), "1048577");
        let err = set(t.fs(), None, &r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the net_cls cgroup controller is not mounted on this host, but the configuration sets a network classID"
        );
    }
}
