//! v2 `pids`: the task limit (same values as v1: 0 is a limit, negative is "max", absent
//! leaves it alone); stats fall back to counting `cgroup.procs`
//! when the controller is not enabled.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::Stats;

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(limit) = r.pids.as_ref().map(|p| p.limit) else {
        return Ok(());
    };
    let value = if limit < 0 {
        "max".to_owned()
    } else {
        limit.to_string()
    };
    fs::write(fs, dir, "pids.max", &value)
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    match fs::read_u64(fs, dir, "pids.current") {
        Ok(current) => {
            stats.pids.current = current;
            let max = fs::read_u64(fs, dir, "pids.max")?;
            stats.pids.limit = if max == u64::MAX { 0 } else { max };
        }
        Err(err) if err.is_not_found() => {
            stats.pids.current = u64::try_from(fs::read_procs(fs, dir)?.len()).unwrap_or(u64::MAX);
            stats.pids.limit = 0;
        }
        Err(err) => return Err(err),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxPids;

    fn resources(limit: i64) -> LinuxResources {
        let p = LinuxPids { limit };

        LinuxResources {
            pids: Some(p),
            ..Default::default()
        }
    }

    #[test]
    fn limit_max_and_unset() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(t.fs(), &dir, &resources(100)).unwrap();
        assert_eq!(t.read("c/pids.max"), "100");
        set(t.fs(), &dir, &resources(-1)).unwrap();
        assert_eq!(t.read("c/pids.max"), "max");
        set(t.fs(), &dir, &resources(0)).unwrap();
        assert_eq!(t.read("c/pids.max"), "0", "0 is a limit (runtime-spec)");
        t.clear_writes();
        set(t.fs(), &dir, &LinuxResources::default()).unwrap();
        assert!(t.writes().is_empty());
    }

    #[test]
    fn stats_without_the_controller_count_procs() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.remove_file("c/pids.current");
        t.set_file("c/cgroup.procs", "1\n2\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!((s.pids.current, s.pids.limit), (2, 0));
    }
}
