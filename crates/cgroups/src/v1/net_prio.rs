//! v1 `net_prio`: per-interface priorities, one `ifname prio` write each.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(priorities) = r
        .network
        .as_ref()
        .and_then(|n| n.priorities.as_ref())
        .filter(|p| !p.is_empty())
    else {
        return Ok(());
    };
    let dir = super::require(dir, "net_prio", "network interface priorities")?;
    for p in priorities {
        fs::write(
            fs,
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name, p.priority),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::{LinuxInterfacePriority, LinuxNetwork};

    #[test]
    fn each_interface_is_one_write() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("net_cls,net_prio/c");
        let n = LinuxNetwork {
            priorities: Some(vec![
                LinuxInterfacePriority {
                    name: "lo".to_owned(),
                    priority: 2u32,
                },
                LinuxInterfacePriority {
                    name: "eth0".to_owned(),
                    priority: 5u32,
                },
            ]),
            ..Default::default()
        };
        let r = LinuxResources {
            network: Some(n),
            ..Default::default()
        };
        set(t.fs(), Some(&dir), &r).unwrap();
        let w: Vec<String> = t.writes().into_iter().map(|(_, v)| v).collect();
        assert_eq!(w, ["lo 2", "eth0 5"]);
        assert!(
            set(t.fs(), None, &r)
                .unwrap_err()
                .to_string()
                .contains("net_prio cgroup controller is not mounted")
        );
    }
}
