//! v1 `cpuacct`: CPU usage statistics (nothing to set).

use std::path::Path;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::Stats;

/// `USER_HZ` is 100 on Linux (runc hard-codes it as well).
const CLOCK_TICKS: u64 = 100;
const NS_PER_SEC: u64 = 1_000_000_000;

fn malformed(dir: &Path, file: &str, line: &str) -> CgroupError {
    CgroupError::Parse {
        path: dir.join(file),
        reason: format!("malformed line {line:?}"),
    }
}

fn numbers(dir: &Path, file: &str, text: &str) -> Result<Vec<u64>, CgroupError> {
    text.split_whitespace()
        .map(|v| fs::parse_u64(&dir.join(file), v))
        .collect()
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    if !fs.exists(dir) {
        return Ok(());
    }
    // "user <ticks>\nsystem <ticks>"
    let text = fs::read(fs, dir, "cpuacct.stat")?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (user, system) = match fields[..] {
        ["user", user, "system", system, ..] => (
            fs::parse_u64(&dir.join("cpuacct.stat"), user)?,
            fs::parse_u64(&dir.join("cpuacct.stat"), system)?,
        ),
        _ => return Err(malformed(dir, "cpuacct.stat", text.trim())),
    };
    let usage = &mut stats.cpu.usage;
    usage.user = user.saturating_mul(NS_PER_SEC) / CLOCK_TICKS;
    usage.kernel = system.saturating_mul(NS_PER_SEC) / CLOCK_TICKS;
    usage.total = fs::read_u64(fs, dir, "cpuacct.usage")?;
    usage.percpu = numbers(
        dir,
        "cpuacct.usage_percpu",
        &fs::read(fs, dir, "cpuacct.usage_percpu")?,
    )?;
    // "cpu user system" then one line per CPU (absent on old kernels)
    if let Some(text) = fs::optional(fs::read(fs, dir, "cpuacct.usage_all"))? {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("");
        if !header.starts_with("cpu user system") {
            return Err(malformed(dir, "cpuacct.usage_all", header));
        }
        for line in lines {
            let values = numbers(dir, "cpuacct.usage_all", line)?;
            if let [_cpu, user, system, ..] = values[..] {
                usage.percpu_user.push(user);
                usage.percpu_kernel.push(system);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;

    #[test]
    fn usage_is_read_in_nanoseconds() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpu,cpuacct/c");
        t.set_file("cpu,cpuacct/c/cpuacct.stat", "user 10\nsystem 5\n");
        t.set_file("cpu,cpuacct/c/cpuacct.usage", "150000000\n");
        t.set_file(
            "cpu,cpuacct/c/cpuacct.usage_percpu",
            "100000000 50000000 \n",
        );
        t.set_file(
            "cpu,cpuacct/c/cpuacct.usage_all",
            "cpu user system\n0 90 10\n1 40 10\n",
        );
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        let u = &s.cpu.usage;
        assert_eq!(
            (u.user, u.kernel, u.total),
            (100_000_000, 50_000_000, 150_000_000)
        );
        assert_eq!(u.percpu, [100_000_000, 50_000_000]);
        assert_eq!(u.percpu_user, [90, 40]);
        assert_eq!(u.percpu_kernel, [10, 10]);
    }

    #[test]
    fn a_missing_usage_all_is_fine_and_garbage_is_an_error() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpu,cpuacct/c");
        t.remove_file("cpu,cpuacct/c/cpuacct.usage_all");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert!(s.cpu.usage.percpu_user.is_empty());
        t.set_file("cpu,cpuacct/c/cpuacct.stat", "nonsense\n");
        let err = stats(t.fs(), &dir, &mut s).unwrap_err();
        assert!(err.to_string().contains("cpuacct.stat"), "{err}");
    }
}
