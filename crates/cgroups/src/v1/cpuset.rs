//! v1 `cpuset`: cpus and mems. A new cpuset cgroup starts empty and refuses tasks, so before
//! joining, every level from the hierarchy's root down gets its parent's cpus/mems when it has
//! none (runc `cpusetEnsureParent`).

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::Stats;

/// The cpuset file name: "cpuset.<name>", or "<name>" on a hierarchy mounted with noprefix.
fn file(fs: &dyn CgroupFs, dir: &Path, name: &str) -> String {
    let prefixed = format!("cpuset.{name}");
    if !fs.exists(&dir.join(&prefixed)) && fs.exists(&dir.join(name)) {
        return name.to_owned();
    }
    prefixed
}

fn copy_if_empty(fs: &dyn CgroupFs, dir: &Path, parent: &Path) -> Result<(), CgroupError> {
    for name in ["cpus", "mems"] {
        let current = fs::read_trimmed(fs, dir, &file(fs, dir, name))?;
        if current.is_empty() {
            let value = fs::read_trimmed(fs, parent, &file(fs, parent, name))?;
            fs::write(fs, dir, &file(fs, dir, name), &value)?;
        }
    }
    Ok(())
}

pub(super) fn apply(
    fs: &dyn CgroupFs,
    mount_point: &Path,
    path: &Path,
    pid: i32,
) -> Result<(), CgroupError> {
    fs::mkdir_all(fs, mount_point, path)?;
    let relative = path
        .strip_prefix(mount_point)
        .map_err(|_| CgroupError::InvalidState {
            reason: format!("{} is not below {}", path.display(), mount_point.display()),
        })?;
    let mut parent = mount_point.to_path_buf();
    for component in relative.components() {
        let current = parent.join(component);
        copy_if_empty(fs, &current, &parent)?;
        parent = current;
    }
    fs::join(fs, path, pid)
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(cpu) = &r.cpu else { return Ok(()) };
    let cpus = cpu.cpus.as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems.as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let dir = super::require(dir, "cpuset", "cpus or mems")?;
    if let Some(cpus) = cpus {
        fs::write(fs, dir, &file(fs, dir, "cpus"), cpus)?;
    }
    if let Some(mems) = mems {
        fs::write(fs, dir, &file(fs, dir, "mems"), mems)?;
    }
    Ok(())
}

/// "0-2,4" → [0, 1, 2, 4].
pub(crate) fn parse_list(path: &Path, text: &str) -> Result<Vec<u16>, CgroupError> {
    let bad = |reason: String| CgroupError::Parse {
        path: path.to_owned(),
        reason,
    };
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let number = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| bad(format!("invalid cpu or node {s:?}")))
        };
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (number(from)?, number(to)?);
                if from > to {
                    return Err(bad(format!("invalid range {part:?}")));
                }
                out.extend(from..=to);
            }
            None => out.push(number(part)?),
        }
    }
    Ok(out)
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let s = &mut stats.cpuset;
    let list = |name: &str| -> Result<Vec<u16>, CgroupError> {
        let f = file(fs, dir, name);
        Ok(match fs::optional(fs::read(fs, dir, &f))? {
            Some(text) => parse_list(&dir.join(&f), &text)?,
            None => Vec::new(),
        })
    };
    let number = |name: &str| -> Result<u64, CgroupError> {
        Ok(fs::optional(fs::read_u64(fs, dir, &file(fs, dir, name)))?.unwrap_or(0))
    };
    s.cpus = list("cpus")?;
    s.mems = list("mems")?;
    s.cpu_exclusive = number("cpu_exclusive")?;
    s.mem_hardwall = number("mem_hardwall")?;
    s.mem_exclusive = number("mem_exclusive")?;
    s.memory_migrate = number("memory_migrate")?;
    s.memory_spread_page = number("memory_spread_page")?;
    s.memory_spread_slab = number("memory_spread_slab")?;
    s.memory_pressure = number("memory_pressure")?;
    s.sched_load_balance = number("sched_load_balance")?;
    s.sched_relax_domain_level = fs::optional(fs::read_i64(
        fs,
        dir,
        &file(fs, dir, "sched_relax_domain_level"),
    ))?
    .unwrap_or(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxCpu;

    #[test]
    fn apply_fills_empty_ancestors_from_the_root_down() {
        let t = FakeTree::v1_tree();
        let mount = t.root().join("cpuset");
        let path = mount.join("a/b/c");
        apply(t.fs(), &mount, &path, 42).unwrap();
        for level in ["cpuset/a", "cpuset/a/b", "cpuset/a/b/c"] {
            assert_eq!(t.read(&format!("{level}/cpuset.cpus")), "0-3");
            assert_eq!(t.read(&format!("{level}/cpuset.mems")), "0");
        }
        assert_eq!(t.read("cpuset/a/b/c/cgroup.procs"), "42\n");
        // a level that has its own cpus keeps them
        t.set_file("cpuset/a/cpuset.cpus", "1");
        t.set_file("cpuset/a/b/cpuset.cpus", "");
        apply(t.fs(), &mount, &path, 43).unwrap();
        assert_eq!(t.read("cpuset/a/cpuset.cpus"), "1");
        assert_eq!(t.read("cpuset/a/b/cpuset.cpus"), "1");
    }

    #[test]
    fn cpus_and_mems_are_written_and_noprefix_mounts_work() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpuset/c");
        let cpu = LinuxCpu {
            cpus: Some("0-1".into()),
            mems: Some("0".into()),
            ..Default::default()
        };
        let r = LinuxResources {
            cpu: Some(cpu),
            ..Default::default()
        };
        set(t.fs(), Some(&dir), &r).unwrap();
        assert_eq!(t.read("cpuset/c/cpuset.cpus"), "0-1");
        assert_eq!(t.read("cpuset/c/cpuset.mems"), "0");
        let dir = t.mkcg("cpuset/noprefix");
        t.remove_file("cpuset/noprefix/cpuset.cpus");
        t.set_file("cpuset/noprefix/cpus", "");
        set(t.fs(), Some(&dir), &r).unwrap();
        assert_eq!(t.read("cpuset/noprefix/cpus"), "0-1");
        assert!(matches!(
            set(t.fs(), None, &r),
            Err(CgroupError::ControllerNotMounted { .. })
        ));
    }

    #[test]
    fn lists_parse() {
        let p = Path::new("x");
        assert_eq!(parse_list(p, "0-2,4\n").unwrap(), [0, 1, 2, 4]);
        assert_eq!(parse_list(p, "\n").unwrap(), Vec::<u16>::new());
        assert!(parse_list(p, "3-1").is_err());
        assert!(parse_list(p, "a").is_err());
    }

    #[test]
    fn stats_read_every_file() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpuset/c");
        t.set_file("cpuset/c/cpuset.cpus", "0-1\n");
        t.set_file("cpuset/c/cpuset.sched_relax_domain_level", "-1\n");
        t.set_file("cpuset/c/cpuset.sched_load_balance", "1\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.cpuset.cpus, [0, 1]);
        assert_eq!(s.cpuset.sched_relax_domain_level, -1);
        assert_eq!(s.cpuset.sched_load_balance, 1);
    }
}
