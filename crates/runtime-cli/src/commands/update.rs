//! `update <id>`: `--resources FILE|-` and runc's per-field flags, applied to the cgroup.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use crate::Global;
use crate::args::{Flag, Matches, UsageError};

pub const FLAGS: &[Flag] = &[
    Flag::value(
        "resources",
        Some('r'),
        "path to the file containing the resources to update or '-' to read from the standard input",
    ),
    Flag::value(
        "blkio-weight",
        None,
        "Specifies per cgroup weight, range is from 10 to 1000",
    ),
    Flag::value(
        "cpu-period",
        None,
        "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    Flag::value(
        "cpu-quota",
        None,
        "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    Flag::value("cpu-burst", None, "CPU CFS hardcap burst limit (in usecs)"),
    Flag::value(
        "cpu-share",
        None,
        "CPU shares (relative weight vs. other containers)",
    ),
    Flag::value(
        "cpu-rt-period",
        None,
        "CPU realtime period to be used for hardcapping (in usecs)",
    ),
    Flag::value(
        "cpu-rt-runtime",
        None,
        "CPU realtime hardcap limit (in usecs)",
    ),
    Flag::value("cpuset-cpus", None, "CPU(s) to use"),
    Flag::value("cpuset-mems", None, "Memory node(s) to use"),
    Flag::value("kernel-memory", None, "(obsoleted; do not use)"),
    Flag::value("kernel-memory-tcp", None, "(obsoleted; do not use)"),
    Flag::value("memory", None, "Memory limit (in bytes)"),
    Flag::value(
        "cpu-idle",
        None,
        "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE",
    ),
    Flag::value(
        "memory-reservation",
        None,
        "Memory reservation or soft_limit (in bytes)",
    ),
    Flag::value(
        "memory-swap",
        None,
        "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
    ),
    Flag::value(
        "pids-limit",
        None,
        "Maximum number of pids allowed in the container",
    ),
    Flag::value(
        "l3-cache-schema",
        None,
        "The string of Intel RDT/CAT L3 cache schema (not supported)",
    ),
    Flag::value(
        "mem-bw-schema",
        None,
        "The string of Intel RDT/MBA memory bandwidth schema (not supported)",
    ),
];

#[derive(Debug, PartialEq, Eq)]
pub struct UpdateArgs {
    pub id: String,
    pub resources: Option<PathBuf>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_burst: Option<u64>,
    pub cpu_share: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub memory: Option<String>,
    pub cpu_idle: Option<i64>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

impl UpdateArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("update", m)?;
        Ok(UpdateArgs {
            id,
            resources: m.path("resources"),
            blkio_weight: m.number("blkio-weight")?,
            cpu_period: m.number("cpu-period")?,
            cpu_quota: m.number("cpu-quota")?,
            cpu_burst: m.number("cpu-burst")?,
            cpu_share: m.number("cpu-share")?,
            cpu_rt_period: m.number("cpu-rt-period")?,
            cpu_rt_runtime: m.number("cpu-rt-runtime")?,
            cpuset_cpus: m.string("cpuset-cpus")?,
            cpuset_mems: m.string("cpuset-mems")?,
            kernel_memory: m.string("kernel-memory")?,
            kernel_memory_tcp: m.string("kernel-memory-tcp")?,
            memory: m.string("memory")?,
            cpu_idle: m.number("cpu-idle")?,
            memory_reservation: m.string("memory-reservation")?,
            memory_swap: m.string("memory-swap")?,
            pids_limit: m.number("pids-limit")?,
            l3_cache_schema: m.string("l3-cache-schema")?,
            mem_bw_schema: m.string("mem-bw-schema")?,
        })
    }
}

/// docker's units.RAMInBytes: "512m", "1g", "100" (binary multiples), "-1".
pub fn ram_in_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size: {s:?}"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => anyhow::bail!("invalid size: {s:?}"),
    };
    Ok((n * mult) as i64)
}

fn set(v: &mut Value, section: &str, key: &str, val: Value) {
    if !v[section].is_object() {
        v[section] = json!({});
    }
    v[section][key] = val;
}

/// A runc size flag (`--memory 512m`, `-1`) as JSON.
fn size(flag: &str, s: &str) -> anyhow::Result<Value> {
    Ok(ram_in_bytes(s)
        .with_context(|| format!("invalid value for --{flag}"))?
        .into())
}

/// The LinuxResources patch runc's per-field flags ask for (only the flags given).
pub fn flags_patch(a: &UpdateArgs) -> anyhow::Result<Value> {
    let mut v = json!({});
    if let Some(w) = a.blkio_weight {
        set(&mut v, "blockIO", "weight", w.into());
    }
    if let Some(x) = a.cpu_period {
        set(&mut v, "cpu", "period", x.into());
    }
    if let Some(x) = a.cpu_quota {
        set(&mut v, "cpu", "quota", x.into());
    }
    if let Some(x) = a.cpu_burst {
        set(&mut v, "cpu", "burst", x.into());
    }
    if let Some(x) = a.cpu_share {
        set(&mut v, "cpu", "shares", x.into());
    }
    if let Some(x) = a.cpu_rt_period {
        set(&mut v, "cpu", "realtimePeriod", x.into());
    }
    if let Some(x) = a.cpu_rt_runtime {
        set(&mut v, "cpu", "realtimeRuntime", x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&mut v, "cpu", "cpus", x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set(&mut v, "cpu", "mems", x.clone().into());
    }
    if let Some(x) = a.cpu_idle {
        set(&mut v, "cpu", "idle", x.into());
    }
    if let Some(x) = &a.memory {
        set(&mut v, "memory", "limit", size("memory", x)?);
    }
    if let Some(x) = &a.memory_reservation {
        set(
            &mut v,
            "memory",
            "reservation",
            size("memory-reservation", x)?,
        );
    }
    if let Some(x) = &a.memory_swap {
        set(&mut v, "memory", "swap", size("memory-swap", x)?);
    }
    if let Some(x) = a.pids_limit {
        set(&mut v, "pids", "limit", x.into());
    }
    Ok(v)
}

fn read_resources(p: &std::path::Path) -> anyhow::Result<Value> {
    let mut data = Vec::new();
    if p.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("failed to read resources from stdin")?;
    } else {
        data = std::fs::read(p)
            .with_context(|| format!("failed to read resources from {}", p.display()))?;
    }
    serde_json::from_slice(&data).context("failed to parse the resources as JSON")
}

/// Whether any per-field flag was given (ignored beside `--resources`, as runc).
fn any_flag(a: &UpdateArgs) -> anyhow::Result<bool> {
    Ok(flags_patch(a)?.as_object().is_some_and(|o| !o.is_empty()))
}

pub fn run(g: &Global, a: UpdateArgs) -> anyhow::Result<u8> {
    // nothing is read or changed before every argument is known to be good
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        anyhow::bail!("Intel RDT is not supported by berth-runtime (this host has no resctrl)");
    }
    let patch = match &a.resources {
        Some(p) => {
            if any_flag(&a).unwrap_or(true) {
                g.log.warn(
                    "the per-field flags are ignored when --resources is given (as runc does)",
                );
            }
            read_resources(p)?
        }
        None => flags_patch(&a)?,
    };
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        g.log.warn("kernel memory settings are ignored");
    }
    let mut c = super::load(g, &a.id)?;
    let current = c
        .state
        .config
        .linux
        .as_ref()
        .and_then(|l| l.resources.as_ref());
    let res = berth_cgroups::update::merge(current, &patch).context("invalid resources")?;
    c.update(&res)
        .with_context(|| format!("failed to update container {}", a.id))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_args(argv: &[&str]) -> Result<UpdateArgs, crate::args::UsageError> {
        let argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        let m = crate::args::lex(
            &argv,
            &[FLAGS],
            crate::args::Positionals::Interleaved,
            false,
        )?;
        UpdateArgs::from_matches(&m)
    }

    fn args(argv: &[&str]) -> UpdateArgs {
        try_args(argv).unwrap()
    }

    #[test]
    fn flags_become_a_patch_of_only_what_was_given() {
        let a = args(&[
            "--cpu-period",
            "200000",
            "--cpu-quota",
            "-1",
            "--cpu-share",
            "512",
            "--cpuset-cpus",
            "0-1",
            "--memory",
            "128m",
            "--memory-swap",
            "-1",
            "--pids-limit",
            "-1",
            "--blkio-weight",
            "300",
            "c1",
        ]);
        assert_eq!(
            flags_patch(&a).unwrap(),
            json!({
                "cpu": {"period": 200_000, "quota": -1, "shares": 512, "cpus": "0-1"},
                "memory": {"limit": 128 << 20, "swap": -1},
                "pids": {"limit": -1},
                "blockIO": {"weight": 300},
            })
        );
        assert_eq!(flags_patch(&args(&["c1"])).unwrap(), json!({}));
        assert_eq!(
            flags_patch(&args(&["--pids-limit", "0", "c1"])).unwrap(),
            json!({"pids": {"limit": 0}})
        );
    }

    #[test]
    fn bad_values_are_refused() {
        // a flag is not a value: only numbers may start with '-'
        assert!(try_args(&["--memory", "--pids-limit", "1", "c1"]).is_err());
        assert!(flags_patch(&args(&["--memory", "12x", "c1"])).is_err());
        assert!(try_args(&["--pids-limit", "abc", "c1"]).is_err());
        assert!(try_args(&["--bogus", "1", "c1"]).is_err());
        assert!(try_args(&["--blkio-weight", "70000", "c1"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("2kb").unwrap(), 2048);
        assert_eq!(ram_in_bytes("-1").unwrap(), -1);
        assert!(ram_in_bytes("12x").is_err());
    }

    /// runc takes `--memory-swap -1` (unlimited swap) and the other -1s as values (clap
    /// once took them for flags and refused `update`: found running the e2e `update` test).
    #[test]
    fn minus_one_is_a_value_of_the_numeric_flags() {
        let a = args(&[
            "--memory",
            "-1",
            "--memory-swap",
            "-1",
            "--memory-reservation",
            "-1",
            "--cpu-quota",
            "-1",
            "--cpu-rt-runtime",
            "-1",
            "--pids-limit",
            "-1",
            "ctr",
        ]);
        assert_eq!(a.id, "ctr");
        assert_eq!(a.memory_swap.as_deref(), Some("-1"));
        assert_eq!(a.memory.as_deref(), Some("-1"));
        assert_eq!(a.memory_reservation.as_deref(), Some("-1"));
        assert_eq!(a.cpu_quota, Some(-1));
        assert_eq!(a.cpu_rt_runtime, Some(-1));
        assert_eq!(a.pids_limit, Some(-1));
    }
}
