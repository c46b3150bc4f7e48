//! v1 `memory`: limit, swap (memory+swap in `memsw`), reservation, OOM killer, swappiness;
//! usage statistics and the OOM kill count.
//!
//! `kernelTCP` goes to `memory.kmem.tcp.limit_in_bytes`, as crun (runc 1.1 ignores it).
//! As runc: kernel memory limits (`kernel`) are not set (deprecated since Linux 5.16, whose
//! later versions accept and ignore them; `create` warns, see
//! [`crate::resource_warnings`]); `useHierarchy` and `checkBeforeUpdate` are ignored
//! on v1 (the kernel refuses a limit below the usage with EBUSY, reported with the usage).

use std::path::Path;

use berth_runtime_spec::{LinuxMemory, LinuxResources};

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::{MemoryEntry, Stats};

const LIMIT: &str = "memory.limit_in_bytes";
const SWAP_LIMIT: &str = "memory.memsw.limit_in_bytes";
const KERNEL_TCP_LIMIT: &str = "memory.kmem.tcp.limit_in_bytes";

fn set_limit(fs: &dyn CgroupFs, dir: &Path, limit: i64) -> Result<(), CgroupError> {
    if limit == 0 {
        return Ok(());
    }
    match fs::write(fs, dir, LIMIT, &limit.to_string()) {
        Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
            // Below the current usage: say by how much.
            let usage = fs::read_u64(fs, dir, "memory.usage_in_bytes")?;
            let peak = fs::read_u64(fs, dir, "memory.max_usage_in_bytes")?;
            Err(CgroupError::MemoryLimitTooLow {
                path: dir.to_owned(),
                limit,
                usage,
                peak,
            })
        }
        other => other,
    }
}

fn set_swap(fs: &dyn CgroupFs, dir: &Path, swap: i64) -> Result<(), CgroupError> {
    if swap == 0 {
        return Ok(());
    }
    fs::write(fs, dir, SWAP_LIMIT, &swap.to_string())
}

fn wanted(m: &LinuxMemory) -> bool {
    m.limit.unwrap_or(0) != 0
        || m.swap.unwrap_or(0) != 0
        || m.reservation.unwrap_or(0) != 0
        || m.disable_oom_killer == Some(true)
        || m.swappiness.is_some_and(|s| s != u64::MAX)
        || m.kernel_tcp.unwrap_or(0) != 0
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(m) = r.memory.as_ref().filter(|m| wanted(m)) else {
        return Ok(());
    };
    let dir = super::require(dir, "memory", "memory limits")?;
    let limit = m.limit.unwrap_or(0);
    let mut swap = m.swap.unwrap_or(0);
    // Unlimited memory without a swap value means unlimited swap too (when swap is accounted).
    if limit == -1 && swap == 0 && fs.exists(&dir.join(SWAP_LIMIT)) {
        swap = -1;
    }
    // memsw must stay >= the memory limit at every step: order the two writes accordingly.
    let mut swap_first = false;
    if limit != 0 && swap != 0 {
        let current = fs::read_u64(fs, dir, LIMIT)?;
        swap_first = swap == -1 || u64::try_from(swap).is_ok_and(|s| current < s);
    }
    if swap_first {
        set_swap(fs, dir, swap)?;
        set_limit(fs, dir, limit)?;
    } else {
        set_limit(fs, dir, limit)?;
        set_swap(fs, dir, swap)?;
    }
    if let Some(reservation) = m.reservation.filter(|v| *v != 0) {
        fs::write(
            fs,
            dir,
            "memory.soft_limit_in_bytes",
            &reservation.to_string(),
        )?;
    }
    if m.disable_oom_killer == Some(true) {
        fs::write(fs, dir, "memory.oom_control", "1")?;
    }
    // u64::MAX is -1 in the Go types: "unset".
    if let Some(swappiness) = m.swappiness.filter(|s| *s != u64::MAX) {
        if swappiness > 100 {
            return Err(CgroupError::InvalidResource {
                what: "memory swappiness".to_owned(),
                reason: format!("{swappiness} (valid range is 0-100)"),
            });
        }
        fs::write(fs, dir, "memory.swappiness", &swappiness.to_string())?;
    }
    // a kernel without TCP accounting has no such file: an error naming it, as for swap
    if let Some(tcp) = m.kernel_tcp.filter(|v| *v != 0) {
        fs::write(fs, dir, KERNEL_TCP_LIMIT, &tcp.to_string())?;
    }
    Ok(())
}

/// `memory[.<name>].{usage,max_usage,failcnt,limit}`; absent swap and kmem accounting is zero.
fn entry(fs: &dyn CgroupFs, dir: &Path, name: &str) -> Result<MemoryEntry, CgroupError> {
    let module = if name.is_empty() {
        "memory".to_owned()
    } else {
        format!("memory.{name}")
    };
    let usage = match fs::read_u64(fs, dir, &format!("{module}.usage_in_bytes")) {
        Err(err) if !name.is_empty() && err.is_not_found() => return Ok(MemoryEntry::default()),
        other => other?,
    };
    let max = fs::read_u64(fs, dir, &format!("{module}.max_usage_in_bytes"))?;
    let failcnt = fs::read_u64(fs, dir, &format!("{module}.failcnt"))?;
    let limit = match fs::read_u64(fs, dir, &format!("{module}.limit_in_bytes")) {
        // kmem.limit_in_bytes is gone from newer kernels
        Err(err) if name == "kmem" && err.is_not_found() => 0,
        other => other?,
    };
    Ok(MemoryEntry {
        limit,
        usage,
        max,
        failcnt,
    })
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let Some(raw) = fs::optional(fs::read_flat_keyed(fs, dir, "memory.stat"))? else {
        return Ok(());
    };
    let memory = &mut stats.memory;
    memory.cache = raw.get("cache").copied().unwrap_or(0);
    memory.raw = raw;
    memory.usage = entry(fs, dir, "")?;
    memory.swap = entry(fs, dir, "memsw")?;
    memory.kernel = entry(fs, dir, "kmem")?;
    memory.kernel_tcp = entry(fs, dir, "kmem.tcp")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;

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
            .map(|(p, v)| format!("{}={v}", p.rsplit('/').next().unwrap()))
            .collect()
    }

    #[test]
    fn every_field_goes_to_its_file() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        let r = resources(|m| {
            m.limit = Some(64 << 20);
            m.swap = Some(128 << 20);
            m.reservation = Some(32 << 20);
            m.kernel = Some(1 << 20);
            m.kernel_tcp = Some(1 << 20);
            m.swappiness = Some(10);
            m.disable_oom_killer = Some(true);
            m.use_hierarchy = Some(false);
            m.check_before_update = Some(true);
        });
        set(t.fs(), Some(&dir), &r).unwrap();
        // the current limit (unlimited) is above the new swap: memory first
        assert_eq!(
            writes(&t),
            [
                "memory.limit_in_bytes=67108864",
                "memory.memsw.limit_in_bytes=134217728",
                "memory.soft_limit_in_bytes=33554432",
                "memory.oom_control=1",
                "memory.swappiness=10",
                "memory.kmem.tcp.limit_in_bytes=1048576",
            ]
        );
    }

    #[test]
    fn kernel_tcp_alone_is_written_and_a_kernel_without_it_is_an_error() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        set(
            t.fs(),
            Some(&dir),
            &resources(|m| m.kernel_tcp = Some(4 << 20)),
        )
        .unwrap();
        assert_eq!(writes(&t), ["memory.kmem.tcp.limit_in_bytes=4194304"]);
        assert_eq!(t.read("memory/c/memory.kmem.tcp.limit_in_bytes"), "4194304");
        // and it shows in the stats
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.memory.kernel_tcp.limit, 4 << 20);
        // `kernel` alone: nothing written (create warns)
        t.clear_writes();
        set(t.fs(), Some(&dir), &resources(|m| m.kernel = Some(4 << 20))).unwrap();
        assert!(t.writes().is_empty(), "{:?}", t.writes());
        t.remove_file("memory/c/memory.kmem.tcp.limit_in_bytes");
        let err = set(
            t.fs(),
            Some(&dir),
            &resources(|m| m.kernel_tcp = Some(1 << 20)),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("memory.kmem.tcp.limit_in_bytes") && err.is_not_found(),
            "{err}"
        );
    }

    #[test]
    fn raising_limits_writes_swap_first() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        t.set_file("memory/c/memory.limit_in_bytes", "1048576\n");
        set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.limit = Some(2 << 20);
                m.swap = Some(4 << 20);
            }),
        )
        .unwrap();
        assert_eq!(
            writes(&t),
            [
                "memory.memsw.limit_in_bytes=4194304",
                "memory.limit_in_bytes=2097152"
            ]
        );
    }

    #[test]
    fn unlimited_memory_makes_swap_unlimited_when_accounted() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.limit = Some(-1);
            }),
        )
        .unwrap();
        assert_eq!(
            writes(&t),
            ["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"]
        );
        // without swap accounting: only memory
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        t.remove_file("memory/c/memory.memsw.limit_in_bytes");
        set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.limit = Some(-1);
            }),
        )
        .unwrap();
        assert_eq!(writes(&t), ["memory.limit_in_bytes=-1"]);
        // but an explicit swap without accounting is an error naming the file
        let err = set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.limit = Some(1 << 20);
                m.swap = Some(2 << 20);
            }),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("memory.memsw.limit_in_bytes") && err.is_not_found(),
            "{err}"
        );
    }

    #[test]
    fn a_limit_below_usage_reports_the_usage() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        t.set_file("memory/c/memory.usage_in_bytes", "5000\n");
        t.set_file("memory/c/memory.max_usage_in_bytes", "6000\n");
        t.fail_write("memory/c/memory.limit_in_bytes", libc::EBUSY, 1);
        let err = set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.limit = Some(4096);
            }),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unable to set memory limit to 4096")
                && err
                    .to_string()
                    .contains("current usage: 5000, peak usage: 6000"),
            "{err}"
        );
    }

    #[test]
    fn swappiness_is_checked_and_minus_one_skipped() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.swappiness = Some(u64::MAX);
            }),
        )
        .unwrap();
        assert!(t.writes().is_empty());
        let err = set(
            t.fs(),
            Some(&dir),
            &resources(|m| {
                m.swappiness = Some(101);
            }),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid memory swappiness: 101 (valid range is 0-100)"
        );
        // only ignored fields: nothing needed, nothing written, even without the controller
        set(
            t.fs(),
            None,
            &resources(|m| {
                m.kernel = Some(1);
                m.use_hierarchy = Some(true);
            }),
        )
        .unwrap();
        assert!(matches!(
            set(
                t.fs(),
                None,
                &resources(|m| {
                    m.limit = Some(1);
                })
            ),
            Err(CgroupError::ControllerNotMounted { .. })
        ));
    }

    #[test]
    fn stats_read_usage_swap_and_kernel() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("memory/c");
        t.set_file("memory/c/memory.stat", "cache 4096\nrss 8192\n");
        t.set_file("memory/c/memory.usage_in_bytes", "12288\n");
        t.set_file("memory/c/memory.limit_in_bytes", "1048576\n");
        t.set_file("memory/c/memory.memsw.usage_in_bytes", "16384\n");
        t.remove_file("memory/c/memory.kmem.limit_in_bytes");
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.memory.cache, 4096);
        assert_eq!(s.memory.raw["rss"], 8192);
        assert_eq!(s.memory.usage.usage, 12288);
        assert_eq!(s.memory.usage.limit, 1_048_576);
        assert_eq!(s.memory.swap.usage, 16384);
        assert_eq!(s.memory.kernel.limit, 0);
        // no swap accounting at all: zero swap entry
        t.remove_file("memory/c/memory.memsw.usage_in_bytes");
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.memory.swap, MemoryEntry::default());
    }
}
