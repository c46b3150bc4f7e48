//! v1 `cpu`: shares, CFS quota/period/burst, idle, realtime runtime/period; throttling stats.

use std::path::Path;

use berth_runtime_spec::{LinuxCpu, LinuxResources};

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::Stats;

fn is_einval(err: &CgroupError) -> bool {
    err.raw_os_error() == Some(libc::EINVAL)
}

fn wanted(cpu: &LinuxCpu) -> bool {
    cpu.shares.is_some_and(|v| v != 0)
        || cpu.quota.is_some_and(|v| v != 0)
        || cpu.period.is_some_and(|v| v != 0)
        || cpu.burst.is_some()
        || cpu.idle.is_some()
        || cpu.realtime_runtime.is_some_and(|v| v != 0)
        || cpu.realtime_period.is_some_and(|v| v != 0)
}

/// Realtime period and runtime, in the order the kernel accepts (runc `SetRtSched`).
fn set_rt(fs: &dyn CgroupFs, dir: &Path, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let runtime = cpu.realtime_runtime.filter(|v| *v != 0);
    let mut pending_period = None;
    if let Some(period) = cpu.realtime_period.filter(|v| *v != 0) {
        let value = period.to_string();
        match fs::write(fs, dir, "cpu.rt_period_us", &value) {
            Ok(()) => {}
            // The new period may only fit once the runtime is lowered: retry after it.
            Err(err) if is_einval(&err) && runtime.is_some() => pending_period = Some(value),
            Err(err) => return Err(err),
        }
    }
    if let Some(runtime) = runtime {
        fs::write(fs, dir, "cpu.rt_runtime_us", &runtime.to_string())?;
        if let Some(period) = pending_period {
            fs::write(fs, dir, "cpu.rt_period_us", &period)?;
        }
    }
    Ok(())
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(cpu) = r.cpu.as_ref().filter(|c| wanted(c)) else {
        return Ok(());
    };
    let dir = super::require(dir, "cpu", "cpu shares, quota or realtime limits")?;
    if let Some(shares) = cpu.shares.filter(|s| *s != 0) {
        fs::write(fs, dir, "cpu.shares", &shares.to_string())?;
        // The kernel clamps out-of-range shares: read back and say so (as runc).
        let read = fs::read_u64(fs, dir, "cpu.shares")?;
        if shares > read {
            return Err(CgroupError::InvalidResource {
                what: "cpu shares".to_owned(),
                reason: format!("the maximum allowed cpu-shares is {read}"),
            });
        } else if shares < read {
            return Err(CgroupError::InvalidResource {
                what: "cpu shares".to_owned(),
                reason: format!("the minimum allowed cpu-shares is {read}"),
            });
        }
    }
    let quota = cpu.quota.filter(|q| *q != 0);
    let mut pending_period = None;
    if let Some(period) = cpu.period.filter(|p| *p != 0) {
        let value = period.to_string();
        match fs::write(fs, dir, "cpu.cfs_period_us", &value) {
            Ok(()) => {}
            // A smaller period can exceed the parent's quota until the quota is set: retry after.
            Err(err) if is_einval(&err) && quota.is_some() => pending_period = Some(value),
            Err(err) => return Err(err),
        }
    }
    let mut pending_burst = None;
    if let Some(burst) = &cpu.burst {
        let value = burst.to_string();
        match fs::write(fs, dir, "cpu.cfs_burst_us", &value) {
            Ok(()) => {}
            // No burst knob on this kernel: ignored, as runc.
            Err(err) if err.is_not_found() => {}
            Err(err) if is_einval(&err) && quota.is_some() => pending_burst = Some(value),
            Err(err) => return Err(err),
        }
    }
    if let Some(quota) = quota {
        fs::write(fs, dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if let Some(period) = pending_period {
            fs::write(fs, dir, "cpu.cfs_period_us", &period)?;
        }
        if let Some(burst) = pending_burst {
            fs::write(fs, dir, "cpu.cfs_burst_us", &burst)?;
        }
    }
    if let Some(idle) = &cpu.idle {
        fs::write(fs, dir, "cpu.idle", &idle.to_string())?;
    }
    set_rt(fs, dir, cpu)
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let Some(values) = fs::optional(fs::read_flat_keyed(fs, dir, "cpu.stat"))? else {
        return Ok(());
    };
    let get = |k: &str| values.get(k).copied().unwrap_or(0);
    stats.cpu.throttling.periods = get("nr_periods");
    stats.cpu.throttling.throttled_periods = get("nr_throttled");
    stats.cpu.throttling.throttled_time = get("throttled_time");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;

    fn resources(f: impl FnOnce(&mut LinuxCpu)) -> LinuxResources {
        let mut cpu = LinuxCpu::default();
        f(&mut cpu);

        LinuxResources {
            cpu: Some(cpu),
            ..Default::default()
        }
    }

    #[test]
    fn every_field_goes_to_its_file() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpu,cpuacct/c");
        let r = resources(|c| {
            c.shares = Some(512);
            c.quota = Some(50_000);
            c.period = Some(100_000);
            c.burst = Some(1000);
            c.idle = Some(1);
            c.realtime_runtime = Some(950);
            c.realtime_period = Some(1000);
        });
        set(t.fs(), Some(&dir), &r).unwrap();
        assert_eq!(
            t.writes(),
            [
                ("cpu,cpuacct/c/cpu.shares", "512"),
                ("cpu,cpuacct/c/cpu.cfs_period_us", "100000"),
                ("cpu,cpuacct/c/cpu.cfs_burst_us", "1000"),
                ("cpu,cpuacct/c/cpu.cfs_quota_us", "50000"),
                ("cpu,cpuacct/c/cpu.idle", "1"),
                ("cpu,cpuacct/c/cpu.rt_period_us", "1000"),
                ("cpu,cpuacct/c/cpu.rt_runtime_us", "950"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn a_period_refused_before_the_quota_is_retried_after_it() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpu,cpuacct/c");
        t.fail_write("cpu,cpuacct/c/cpu.cfs_period_us", libc::EINVAL, 1);
        let r = resources(|c| {
            c.quota = Some(20_000);
            c.period = Some(10_000);
        });
        set(t.fs(), Some(&dir), &r).unwrap();
        let files: Vec<String> = t
            .writes()
            .into_iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        assert_eq!(
            files,
            [
                "cpu,cpuacct/c/cpu.cfs_period_us=10000", // refused
                "cpu,cpuacct/c/cpu.cfs_quota_us=20000",
                "cpu,cpuacct/c/cpu.cfs_period_us=10000",
            ]
        );
        // without a quota the EINVAL is the answer
        t.fail_write("cpu,cpuacct/c/cpu.cfs_period_us", libc::EINVAL, 1);
        let err = set(
            t.fs(),
            Some(&dir),
            &resources(|c| {
                c.period = Some(10_000);
            }),
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(err.to_string().contains("cpu.cfs_period_us"), "{err}");
    }

    #[test]
    fn clamped_shares_are_reported_and_a_missing_burst_file_is_ignored() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpu,cpuacct/c");
        t.set_file("cpu,cpuacct/c/cpu.shares", "262144");
        t.fail_write("cpu,cpuacct/c/cpu.shares", 0, 1); // the kernel "clamps": the write is dropped
        let err = set(
            t.fs(),
            Some(&dir),
            &resources(|c| {
                c.shares = Some(500_000);
            }),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid cpu shares: the maximum allowed cpu-shares is 262144"
        );
        t.remove_file("cpu,cpuacct/c/cpu.cfs_burst_us");
        set(
            t.fs(),
            Some(&dir),
            &resources(|c| {
                c.burst = Some(5);
            }),
        )
        .unwrap();
    }

    #[test]
    fn nothing_set_needs_no_cgroup_and_something_set_needs_one() {
        let t = FakeTree::v1_tree();
        set(
            t.fs(),
            None,
            &resources(|c| {
                c.shares = Some(0);
            }),
        )
        .unwrap();
        set(t.fs(), None, &LinuxResources::default()).unwrap();
        let err = set(
            t.fs(),
            None,
            &resources(|c| {
                c.quota = Some(1000);
            }),
        )
        .unwrap_err();
        assert!(
            matches!(err, CgroupError::ControllerNotMounted { ref controller, .. } if controller == "cpu"),
            "{err}"
        );
        assert!(t.writes().is_empty());
    }

    #[test]
    fn throttling_stats() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("cpu,cpuacct/c");
        t.set_file(
            "cpu,cpuacct/c/cpu.stat",
            "nr_periods 10\nnr_throttled 3\nthrottled_time 999\n",
        );
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(
            (
                s.cpu.throttling.periods,
                s.cpu.throttling.throttled_periods,
                s.cpu.throttling.throttled_time
            ),
            (10, 3, 999)
        );
    }
}
