//! Resource flags (`--memory`, `--cpus`, `--pids-limit`, `--blkio-weight`,
//! `--device-{read,write}-{bps,iops}`, …) → `linux.resources`, validated with docker's
//! errors.

use std::path::Path;

use berth_runtime_spec::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, LinuxThrottleDevice,
};

use super::SpecError;

/// The pids limit a container gets without `--pids-limit` (podman's default, 2048; docker
/// sets none): a fork bomb stops there instead of exhausting the host's pids.
pub const DEFAULT_PIDS_LIMIT: i64 = 2048;

/// The CFS period `--cpus` is expressed in (docker's: 100 ms).
pub const CPU_PERIOD: u64 = 100_000;

/// docker's smallest `--memory`.
const MIN_MEMORY: i64 = 6 << 20;

/// A size as docker reads one (`RAMInBytes`): a number with an optional `b`, `k`, `m`, `g`,
/// `t` or `p` suffix (binary units, any case, an optional trailing `b`: `64m`, `1GB`).
pub fn parse_bytes(s: &str) -> Result<i64, SpecError> {
    let bad = || {
        SpecError::Invalid(format!(
            "invalid size: '{s}': give bytes or a number with b, k, m, g, t or p"
        ))
    };
    let lower = s.trim().to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = value * mult;
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
    Ok(bytes as i64)
}

/// `PATH:RATE` of a `--device-*-bps` (`rate` a size) or `--device-*-iops` (a number) flag,
/// the device's major:minor read with stat(2).
fn throttle(spec: &str, flag: &str, bps: bool) -> Result<LinuxThrottleDevice, SpecError> {
    let (path, rate) = spec.rsplit_once(':').ok_or_else(|| {
        SpecError::Invalid(format!(
            "{flag} {spec}: bad format, expected DEVICE_PATH:RATE"
        ))
    })?;
    let rate = if bps {
        u64::try_from(parse_bytes(rate)?).unwrap_or(0)
    } else {
        rate.parse::<u64>().map_err(|_| {
            SpecError::Invalid(format!(
                "{flag} {spec}: invalid rate {rate:?}: give a whole number of operations per second"
            ))
        })?
    };
    let st = rustix::fs::stat(Path::new(path)).map_err(|e| SpecError::Device {
        flag: flag.to_owned(),
        path: path.into(),
        source: e.into(),
    })?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::BlockDevice {
        return Err(SpecError::Invalid(format!(
            "{flag} {path}: not a block device: give a disk's device node (/dev/sda, /dev/loop0)"
        )));
    }
    Ok(LinuxThrottleDevice {
        major: i64::from(rustix::fs::major(st.st_rdev)),
        minor: i64::from(rustix::fs::minor(st.st_rdev)),
        rate,
    })
}

fn throttles(
    list: &[String],
    flag: &str,
    bps: bool,
) -> Result<Option<Vec<LinuxThrottleDevice>>, SpecError> {
    let v = list
        .iter()
        .map(|s| throttle(s, flag, bps))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!v.is_empty()).then_some(v))
}

/// The resource flags of `berth run`/`create`, as docker names them and as given (sizes in
/// bytes, [`parse_bytes`]; throttles as `PATH:RATE`). The CLI fills them, the engine passes
/// them on, [`build_spec`](super::build_spec) turns them into the cgroup limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceFlags {
    pub memory: Option<i64>,
    /// Memory plus swap; -1 unlimited.
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`; `None` is [`DEFAULT_PIDS_LIMIT`], 0 or -1 unlimited.
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// `--device-read-bps PATH:RATE` (and the three others alike).
    pub device_read_bps: Vec<String>,
    pub device_write_bps: Vec<String>,
    pub device_read_iops: Vec<String>,
    pub device_write_iops: Vec<String>,
}

impl ResourceFlags {
    /// The first flag given, by its name (`--memory`): every one of them needs a cgroup.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.memory.is_some(), "--memory"),
            (self.memory_swap.is_some(), "--memory-swap"),
            (self.cpus.is_some(), "--cpus"),
            (self.cpu_shares.is_some(), "--cpu-shares"),
            (self.pids_limit.is_some(), "--pids-limit"),
            (self.blkio_weight.is_some(), "--blkio-weight"),
            (!self.device_read_bps.is_empty(), "--device-read-bps"),
            (!self.device_write_bps.is_empty(), "--device-write-bps"),
            (!self.device_read_iops.is_empty(), "--device-read-iops"),
            (!self.device_write_iops.is_empty(), "--device-write-iops"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// Apply the resource flags `opts` to `res` (`rootless`: no default pids limit).
pub(super) fn apply(
    opts: &ResourceFlags,
    rootless: bool,
    res: &mut LinuxResources,
) -> Result<(), SpecError> {
    if let Some(m) = opts.memory
        && m < MIN_MEMORY
    {
        return Err(SpecError::Invalid(
            "--memory: minimum memory limit allowed is 6MB".into(),
        ));
    }
    match (opts.memory, opts.memory_swap) {
        (None, Some(s)) if s > 0 => {
            return Err(SpecError::Invalid(
                "--memory-swap: you should always set the memory limit when using memoryswap limit (--memory)".into(),
            ));
        }
        (Some(m), Some(s)) if s > 0 && s < m => {
            return Err(SpecError::Invalid(
                "--memory-swap: minimum memoryswap limit should be larger than memory limit".into(),
            ));
        }
        _ => {}
    }
    if let Some(m) = opts.memory {
        res.memory = Some(LinuxMemory {
            limit: Some(m),
            // docker: memory plus as much swap by default; -1 unlimited
            swap: Some(match opts.memory_swap {
                Some(s) if s != 0 => s,
                _ => m.saturating_mul(2),
            }),
            ..LinuxMemory::default()
        });
    }
    let mut cpu = LinuxCpu::default();
    if let Some(cpus) = opts.cpus {
        let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        #[allow(clippy::cast_precision_loss, reason = "a cpu count")]
        if !(0.01..=n as f64).contains(&cpus) {
            return Err(SpecError::Invalid(format!(
                "--cpus: Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
            )));
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            reason = "range checked"
        )]
        {
            cpu.quota = Some((cpus * CPU_PERIOD as f64).round() as i64);
        }
        cpu.period = Some(CPU_PERIOD);
    }
    if let Some(shares) = opts.cpu_shares {
        // the kernel's bounds, as docker clamps
        cpu.shares = Some(shares.clamp(2, 262_144));
    }
    if cpu != LinuxCpu::default() {
        res.cpu = Some(cpu);
    }
    // podman's default pids limit unless `--pids-limit` says (0 or -1: unlimited, docker's)
    // (rootless: only when asked, a cgroup may not be the user's to limit)
    if let Some(limit) = opts
        .pids_limit
        .or((!rootless).then_some(DEFAULT_PIDS_LIMIT))
    {
        res.pids = Some(LinuxPids {
            limit: if limit <= 0 { -1 } else { limit },
        });
    }
    let mut blkio = LinuxBlockIo::default();
    if let Some(w) = opts.blkio_weight {
        if !(10..=1000).contains(&w) {
            return Err(SpecError::Invalid(
                "--blkio-weight: range of blkio weight is from 10 to 1000".into(),
            ));
        }
        blkio.weight = Some(w);
    }
    blkio.throttle_read_bps_device = throttles(&opts.device_read_bps, "--device-read-bps", true)?;
    blkio.throttle_write_bps_device =
        throttles(&opts.device_write_bps, "--device-write-bps", true)?;
    blkio.throttle_read_iops_device =
        throttles(&opts.device_read_iops, "--device-read-iops", false)?;
    blkio.throttle_write_iops_device =
        throttles(&opts.device_write_iops, "--device-write-iops", false)?;
    if blkio != LinuxBlockIo::default() {
        res.block_io = Some(blkio);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("10b").unwrap(), 10);
        for bad in ["", "m", "12x", "-5m", "1e400"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} parsed");
        }
    }
}
