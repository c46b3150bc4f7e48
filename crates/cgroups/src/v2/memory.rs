//! v2 `memory`: `memory.max`, `memory.low` (reservation), `memory.swap.max`; usage statistics
//! and the OOM kill count (`memory.events`).
//!
//! The config's swap is memory+swap (a v1 notion); v2 wants swap alone, so `memory.swap.max` is
//! `swap - limit` (runc `ConvertMemorySwapToCgroupV2Value`): -1 stays "max", unlimited memory
//! without a swap value makes swap unlimited too, swap == limit disables swap ("0"), and a swap
//! below the limit or without a limit is an error. Swappiness, the OOM killer switch and kernel
//! memory have no v2 file and are ignored, as runc. `checkBeforeUpdate` refuses a limit at or
//! below the current usage.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::{MemoryEntry, Stats};

/// The v2 swap value for a v1 memory+swap value.
pub(crate) fn swap_v2(swap: i64, memory: i64) -> Result<i64, CgroupError> {
    let invalid = |reason: &str| CgroupError::InvalidResource {
        what: "memory swap".to_owned(),
        reason: reason.to_owned(),
    };
    match (swap, memory) {
        (0, -1) => Ok(-1),
        (-1 | 0, _) => Ok(swap),
        (_, -1) => Ok(swap),
        (_, 0) => Err(invalid("unable to set swap limit without memory limit")),
        (_, m) if m < 0 => Err(invalid(&format!("invalid memory value: {m}"))),
        (s, m) if s < m => Err(invalid("memory+swap limit should be >= memory limit")),
        (s, m) => Ok(s - m),
    }
}

/// "max" for -1, nothing for 0 (unset).
fn value(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".to_owned()),
        v => Some(v.to_string()),
    }
}

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(m) = &r.memory else { return Ok(()) };
    let limit = m.limit.unwrap_or(0);
    let swap = m.swap.unwrap_or(0);
    let reservation = m.reservation.unwrap_or(0);
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    if m.check_before_update == Some(true) && (limit > 0 || swap > 0) {
        // best effort: a cgroup without memory.current is not checked
        if let Ok(usage) = fs::read_u64(fs, dir, "memory.current") {
            for (what, l) in [("memory+swap limit", swap), ("memory limit", limit)] {
                if l > 0 && u64::try_from(l).is_ok_and(|l| l <= usage) {
                    return Err(CgroupError::BelowUsage {
                        path: dir.to_owned(),
                        what: what.to_owned(),
                        limit: l,
                        usage,
                    });
                }
            }
        }
    }
    let swap_value = swap_v2(swap, limit)?;
    let mut swap_text = value(swap_value);
    if swap_text.is_none() && swap_value == 0 && swap > 0 {
        // memory and memory+swap equal: no swap
        swap_text = Some("0".to_owned());
    }
    if let Some(text) = swap_text {
        match fs::write(fs, dir, "memory.swap.max", &text) {
            // no swap accounting: unlimited or no swap is what we have anyway
            Err(err) if err.is_not_found() && (text == "max" || text == "0") => {}
            other => other?,
        }
    }
    if let Some(text) = value(limit) {
        fs::write(fs, dir, "memory.max", &text)?;
    }
    if let Some(text) = value(reservation) {
        fs::write(fs, dir, "memory.low", &text)?;
    }
    Ok(())
}

/// `memory[.<name>].{current,max,peak}`; absent swap accounting is zero.
fn entry(fs: &dyn CgroupFs, dir: &Path, name: &str) -> Result<MemoryEntry, CgroupError> {
    let module = if name.is_empty() {
        "memory".to_owned()
    } else {
        format!("memory.{name}")
    };
    let usage = match fs::read_u64(fs, dir, &format!("{module}.current")) {
        Err(err) if !name.is_empty() && err.is_not_found() => return Ok(MemoryEntry::default()),
        other => other?,
    };
    let limit = fs::read_u64(fs, dir, &format!("{module}.max"))?;
    // memory.peak since 5.19, memory.swap.peak since 6.5
    let max = fs::optional(fs::read_u64(fs, dir, &format!("{module}.peak")))?.unwrap_or(0);
    Ok(MemoryEntry {
        limit,
        usage,
        max,
        failcnt: 0,
    })
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let Some(raw) = fs::optional(fs::read_flat_keyed(fs, dir, "memory.stat"))? else {
        return Ok(());
    };
    let memory = &mut stats.memory;
    memory.cache = raw.get("file").copied().unwrap_or(0);
    memory.raw = raw;
    memory.usage = match entry(fs, dir, "") {
        // the root cgroup has no memory.current
        Err(err) if err.is_not_found() => return Ok(()),
        other => other?,
    };
    let swap_only = entry(fs, dir, "swap")?;
    // v1 reports memory+swap: add memory, as runc does for compatibility
    memory.swap = MemoryEntry {
        usage: swap_only.usage.saturating_add(memory.usage.usage),
        limit: if swap_only.limit == u64::MAX {
            u64::MAX
        } else {
            swap_only.limit.saturating_add(memory.usage.limit)
        },
        max: 0,
        failcnt: 0,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::LinuxMemory;

    fn resources(f: impl FnOnce(&mut LinuxMemory)) -> LinuxResources {
        let mut m = LinuxMemory::default();
        f(&mut m);

        LinuxResources {
            memory: Some(m),
            ..Default::default()
        }
    }

    fn writes(t: &FakeTree) -> Vec<String> {
        t.writes()
            .into_iter()
            .map(|(p, v)| format!("{}={v}", p.trim_start_matches("c/")))
            .collect()
    }

    #[test]
    fn swap_conversion_matches_runc() {
        assert_eq!(swap_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_v2(500, -1).unwrap(), 500);
        assert_eq!(swap_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_v2(100, 100).unwrap(), 0);
        assert!(
            swap_v2(100, 0)
                .unwrap_err()
                .to_string()
                .contains("without memory limit")
        );
        assert!(
            swap_v2(50, 100)
                .unwrap_err()
                .to_string()
                .contains("should be >= memory limit")
        );
        assert!(swap_v2(50, -5).is_err());
    }

    #[test]
    fn every_field_goes_to_its_file() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(100 << 20);
                m.swap = Some(300 << 20);
                m.reservation = Some(50 << 20);
                m.swappiness = Some(10);
                m.disable_oom_killer = Some(true);
                m.kernel = Some(1);
            }),
        )
        .unwrap();
        assert_eq!(
            writes(&t),
            [
                "memory.swap.max=209715200",
                "memory.max=104857600",
                "memory.low=52428800"
            ]
        );
    }

    #[test]
    fn unlimited_and_no_swap() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(-1);
            }),
        )
        .unwrap();
        assert_eq!(writes(&t), ["memory.swap.max=max", "memory.max=max"]);
        t.clear_writes();
        set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(1000);
                m.swap = Some(1000);
            }),
        )
        .unwrap();
        assert_eq!(writes(&t), ["memory.swap.max=0", "memory.max=1000"]);
        // no swap accounting: "0" and "max" are skipped, a real swap limit is an error
        t.remove_file("c/memory.swap.max");
        t.clear_writes();
        set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(-1);
            }),
        )
        .unwrap();
        assert_eq!(writes(&t), ["memory.max=max"]);
        let err = set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(1000);
                m.swap = Some(3000);
            }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("memory.swap.max"), "{err}");
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.set_file("c/memory.current", "5000\n");
        let err = set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(4000);
                m.check_before_update = Some(true);
            }),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("rejecting memory limit 4000")
                && err.to_string().contains("5000"),
            "{err}"
        );
        set(
            t.fs(),
            &dir,
            &resources(|m| {
                m.limit = Some(4000);
            }),
        )
        .unwrap();
        assert_eq!(t.read("c/memory.max"), "4000");
    }

    #[test]
    fn stats_combine_swap_with_memory_like_v1() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.set_file("c/memory.stat", "anon 4096\nfile 8192\n");
        t.set_file("c/memory.current", "12288\n");
        t.set_file("c/memory.max", "1000000\n");
        t.set_file("c/memory.swap.current", "100\n");
        t.set_file("c/memory.swap.max", "2000\n");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.memory.cache, 8192);
        assert_eq!(
            s.memory.usage,
            MemoryEntry {
                limit: 1_000_000,
                usage: 12288,
                max: 0,
                failcnt: 0
            }
        );
        assert_eq!(
            s.memory.swap,
            MemoryEntry {
                limit: 1_002_000,
                usage: 12388,
                max: 0,
                failcnt: 0
            }
        );
    }
}
