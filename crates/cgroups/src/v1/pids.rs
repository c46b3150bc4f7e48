//! v1 `pids`: the task limit; current count and limit in stats.
//!
//! `pids.limit` >= 0 is written as is, < 0 as "max" (runtime-spec config-linux "PIDs": -1 is
//! "max", and "0 is a valid limit value … and SHOULD be treated as such"). An absent `pids`
//! leaves the limit alone; the config and `update` parsers turn a `pids` object without a
//! limit into an absent one (`cgroups::update::normalize`), since the typed parse reads it as 0.
//! Peers differ on 0: runc up to 1.1 leaves the limit unset, runc 1.2+ writes 1.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::Stats;

/// The value for `pids.max`, or None to leave it.
pub(crate) fn limit_value(r: &LinuxResources) -> Option<String> {
    let limit = r.pids.as_ref()?.limit;
    Some(if limit < 0 {
        "max".to_owned()
    } else {
        limit.to_string()
    })
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(value) = limit_value(r) else {
        return Ok(());
    };
    let dir = super::require(dir, "pids", "a pids limit")?;
    fs::write(fs, dir, "pids.max", &value)
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    if !fs.exists(dir) {
        return Ok(());
    }
    stats.pids.current = fs::read_u64(fs, dir, "pids.current")?;
    let max = fs::read_u64(fs, dir, "pids.max")?;
    // "max" is reported as 0, as runc
    stats.pids.limit = if max == u64::MAX { 0 } else { max };
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
    fn limits_and_max() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("pids/c");
        set(t.fs(), Some(&dir), &resources(42)).unwrap();
        assert_eq!(t.read("pids/c/pids.max"), "42");
        set(t.fs(), Some(&dir), &resources(-1)).unwrap();
        assert_eq!(t.read("pids/c/pids.max"), "max");
        set(t.fs(), Some(&dir), &resources(0)).unwrap();
        assert_eq!(
            t.read("pids/c/pids.max"),
            "0",
            "0 is a limit (runtime-spec)"
        );
        t.clear_writes();
        set(t.fs(), Some(&dir), &LinuxResources::default()).unwrap();
        set(t.fs(), None, &LinuxResources::default()).unwrap();
        assert!(t.writes().is_empty());
        assert!(matches!(
            set(t.fs(), None, &resources(5)),
            Err(CgroupError::ControllerNotMounted { .. })
        ));
    }

    #[test]
    fn stats_report_max_as_zero() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("pids/c");
        t.set_file("pids/c/pids.current", "3\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!((s.pids.current, s.pids.limit), (3, 0));
        t.set_file("pids/c/pids.max", "10\n");
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.pids.limit, 10);
    }
}
