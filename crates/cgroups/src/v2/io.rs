//! v2 `io`: weight (BFQ's `io.bfq.weight` as is, else `io.weight` converted from the v1 range
//! with runc's `1 + (w - 10) * 9999 / 990`), per-device BFQ weights where the kernel has them
//! (5.4+, silently skipped otherwise as runc), throttling in `io.max`; `io.stat` statistics in
//! v1's layout.

use std::path::Path;

use berth_runtime_spec::LinuxResources;

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::{BlkioEntry, Stats};

/// v1 blkio weight [10, 1000] → v2 io.weight [1, 10000]; 0 means unset.
pub(crate) fn blkio_to_io_weight(weight: u16) -> u64 {
    match u64::from(weight) {
        0 => 0,
        w if w <= 10 => 1,
        w => 1 + (w - 10) * 9999 / 990,
    }
}

pub(super) fn set(fs: &dyn CgroupFs, dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(b) = &r.block_io else { return Ok(()) };
    let weight = b.weight.filter(|w| *w != 0);
    let devices = b.weight_device.as_deref().unwrap_or_default();
    // BFQ present: its file; per-device weights only when it prints "default N" lines.
    let bfq = if weight.is_some() || !devices.is_empty() {
        fs::optional(fs::read(fs, dir, "io.bfq.weight"))?
    } else {
        None
    };
    if let Some(weight) = weight {
        if bfq.is_some() {
            fs::write(fs, dir, "io.bfq.weight", &weight.to_string())?;
        } else {
            fs::write(
                fs,
                dir,
                "io.weight",
                &blkio_to_io_weight(weight).to_string(),
            )?;
        }
    }
    if bfq
        .as_deref()
        .is_some_and(|text| text.trim().parse::<u64>().is_err())
    {
        for wd in devices {
            if let Some(w) = &wd.weight {
                fs::write(
                    fs,
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", wd.major, wd.minor),
                )?;
            }
        }
    }
    for (key, devices) in [
        ("rbps", &b.throttle_read_bps_device),
        ("wbps", &b.throttle_write_bps_device),
        ("riops", &b.throttle_read_iops_device),
        ("wiops", &b.throttle_write_iops_device),
    ] {
        for td in devices.as_deref().unwrap_or_default() {
            fs::write(
                fs,
                dir,
                "io.max",
                &format!("{}:{} {key}={}", td.major, td.minor, td.rate),
            )?;
        }
    }
    Ok(())
}

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let Some(text) = fs::optional(fs::read(fs, dir, "io.stat"))? else {
        return Ok(());
    };
    let path = dir.join("io.stat");
    let b = &mut stats.blkio;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (major, minor) = (fs::parse_u64(&path, major)?, fs::parse_u64(&path, minor)?);
        for item in fields {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (op, table) = match key {
                "rbytes" => ("Read", &mut b.io_service_bytes_recursive),
                "wbytes" => ("Write", &mut b.io_service_bytes_recursive),
                "rios" => ("Read", &mut b.io_serviced_recursive),
                "wios" => ("Write", &mut b.io_serviced_recursive),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: fs::parse_u64(&path, value)?,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::{LinuxBlockIo, LinuxThrottleDevice, LinuxWeightDevice};

    fn resources(f: impl FnOnce(&mut LinuxBlockIo)) -> LinuxResources {
        let mut b = LinuxBlockIo::default();
        f(&mut b);

        LinuxResources {
            block_io: Some(b),
            ..Default::default()
        }
    }

    #[test]
    fn weight_conversion_like_runc() {
        assert_eq!(blkio_to_io_weight(0), 0);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    #[test]
    fn weight_without_bfq_goes_to_io_weight_converted_and_throttles_to_io_max() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        let throttle = |rate: u64| LinuxThrottleDevice {
            major: 8,
            minor: 0,
            rate,
        };
        set(
            t.fs(),
            &dir,
            &resources(|b| {
                b.weight = Some(500);
                b.leaf_weight = Some(100);
                b.weight_device = Some(vec![LinuxWeightDevice {
                    major: 8,
                    minor: 0,
                    weight: Some(300u16),
                    ..Default::default()
                }]);
                b.throttle_read_bps_device = Some(vec![throttle(1000)]);
                b.throttle_write_bps_device = Some(vec![throttle(2000)]);
                b.throttle_read_iops_device = Some(vec![throttle(3)]);
                b.throttle_write_iops_device = Some(vec![throttle(4)]);
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
                "c/io.weight=4950",
                "c/io.max=8:0 rbps=1000",
                "c/io.max=8:0 wbps=2000",
                "c/io.max=8:0 riops=3",
                "c/io.max=8:0 wiops=4"
            ]
        );
    }

    #[test]
    fn bfq_takes_the_weight_as_is_and_device_weights_when_supported() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.set_file("c/io.bfq.weight", "default 100\n");
        let r = resources(|b| {
            b.weight = Some(500);
            b.weight_device = Some(vec![LinuxWeightDevice {
                major: 8,
                minor: 16,
                weight: Some(300u16),
                ..Default::default()
            }]);
        });
        set(t.fs(), &dir, &r).unwrap();
        let w: Vec<String> = t.writes().into_iter().map(|(_, v)| v).collect();
        assert_eq!(w, ["500", "8:16 300"]);
        // an old BFQ prints a bare number: no per-device weights
        t.set_file("c/io.bfq.weight", "100\n");
        t.clear_writes();
        set(t.fs(), &dir, &r).unwrap();
        assert_eq!(t.writes().len(), 1);
    }

    #[test]
    fn io_stat_maps_to_v1_tables() {
        let t = FakeTree::v2_tree();
        let dir = t.mkcg("c");
        t.set_file(
            "c/io.stat",
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(
            s.blkio.io_serviced_recursive[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 2
            }
        );
    }
}
