//! v2 `cpu`: weight (from the config's v1 shares), `cpu.max` quota and period, burst, idle;
//! usage and throttling statistics.
//!
//! Shares → weight: `1 + ((shares - 2) * 9999) / 262142`, the linear map of [2, 262144] onto
//! [1, 10000] used by runc up to 1.3 and by Debian's runc. (runc 1.4 switched to a quadratic
//! fit that maps the default 1024 to 100.) Realtime runtime/period have no v2 file and are
//! ignored, as runc does.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::Stats;

/// cgroup v1 `cpu.shares` → v2 `cpu.weight`; 0 means unset.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        s if s <= 2 => 1,
        s if s >= 262_144 => 10_000,
        s => 1 + ((s - 2) * 9999) / 262_142,
    }
}

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(cpu) = &r.cpu else { return Ok(()) };
    if let Some(idle) = &cpu.idle {
        fs::write(fs, dir, "cpu.idle", &idle.to_string())?;
    }
    let weight = shares_to_weight(cpu.shares.unwrap_or(0));
    if weight != 0 {
        fs::write(fs, dir, "cpu.weight", &weight.to_string())?;
    }
    let quota = cpu.quota.unwrap_or(0);
    let period = cpu.period.unwrap_or(0);
    let mut pending_burst = None;
    if let Some(burst) = &cpu.burst {
        let value = burst.to_string();
        match fs::write(fs, dir, "cpu.max.burst", &value) {
            Ok(()) => {}
            // may exceed the old quota until cpu.max is written: retry after
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && quota != 0 => {
                pending_burst = Some(value)
            }
            Err(err) => return Err(err),
        }
    }
    if quota != 0 || period != 0 {
        let quota = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_owned()
        };
        // the kernel's default period
        let period = if period == 0 { 100_000 } else { period };
        fs::write(fs, dir, "cpu.max", &format!("{quota} {period}"))?;
        if let Some(burst) = pending_burst {
            fs::write(fs, dir, "cpu.max.burst", &burst)?;
        }
    }
    Ok(())
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let Some(values) = fs::optional(fs::read_flat_keyed(fs, dir, "cpu.stat"))? else {
        return Ok(());
    };
    let get = |k: &str| values.get(k).copied().unwrap_or(0);
    stats.cpu.usage.total = get("usage_usec").saturating_mul(1000);
    stats.cpu.usage.user = get("user_usec").saturating_mul(1000);
    stats.cpu.usage.kernel = get("system_usec").saturating_mul(1000);
    stats.cpu.throttling.periods = get("nr_periods");
    stats.cpu.throttling.throttled_periods = get("nr_throttled");
    stats.cpu.throttling.throttled_time = get("throttled_usec").saturating_mul(1000);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxCpu;

    fn resources(f: impl FnOnce(&mut LinuxCpu)) -> LinuxResources {
        let mut cpu = LinuxCpu::default();
        f(&mut cpu);

        LinuxResources {
            cpu: Some(cpu),
            ..Default::default()
        }
    }

    #[test]
    fn shares_convert_to_weight_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
    }

    #[test]
    fn every_field_goes_to_its_file() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(
            t.fs(),
            &dir,
            &resources(|c| {
                c.shares = Some(1024);
                c.quota = Some(50_000);
                c.period = Some(200_000);
                c.burst = Some(10);
                c.idle = Some(0);
                c.realtime_runtime = Some(5);
                c.realtime_period = Some(10);
            }),
        )
        .unwrap();
        let w: Vec<String> = t
            .writes()
            .into_iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        assert_eq!(
            w,
            [
                "c/cpu.idle=0",
                "c/cpu.weight=39",
                "c/cpu.max.burst=10",
                "c/cpu.max=50000 200000"
            ]
        );
    }

    #[test]
    fn quota_without_period_and_unlimited_quota() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(
            t.fs(),
            &dir,
            &resources(|c| {
                c.quota = Some(25_000);
            }),
        )
        .unwrap();
        assert_eq!(t.read("c/cpu.max"), "25000 100000");
        set(
            t.fs(),
            &dir,
            &resources(|c| {
                c.quota = Some(-1);
            }),
        )
        .unwrap();
        assert_eq!(t.read("c/cpu.max"), "max 100000");
        set(
            t.fs(),
            &dir,
            &resources(|c| {
                c.period = Some(50_000);
            }),
        )
        .unwrap();
        assert_eq!(t.read("c/cpu.max"), "max 50000");
        // a controller that is not enabled: the error names the file
        t.remove_file("c/cpu.weight");
        let err = set(
            t.fs(),
            &dir,
            &resources(|c| {
                c.shares = Some(100);
            }),
        )
        .unwrap_err();
        assert!(
            err.is_not_found() && err.to_string().contains("cpu.weight"),
            "{err}"
        );
    }

    #[test]
    fn usage_stats_in_nanoseconds() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.set_file("c/cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 2\nnr_throttled 1\nthrottled_usec 3\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(
            (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
            (10_000, 6000, 4000)
        );
        assert_eq!(s.cpu.throttling.throttled_time, 3000);
    }
}
