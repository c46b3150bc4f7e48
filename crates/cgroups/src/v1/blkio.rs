//! v1 `blkio`: weight, leaf weight, per-device weights and throttling; I/O statistics.
//!
//! The weight files are `blkio.weight*` (CFQ) or else `blkio.bfq.weight*` (BFQ). With neither
//! scheduler (e.g. "none") a weight that is set fails naming the BFQ file, as runc; an unset
//! weight touches nothing.

use std::path::Path;

use berth_runtime_spec::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::error::CgroupError;
use crate::fs::{self, CgroupFs};
use crate::stats::{BlkioEntry, Stats};

fn wanted(b: &LinuxBlockIo) -> bool {
    let any = |v: &Option<Vec<LinuxThrottleDevice>>| v.as_ref().is_some_and(|v| !v.is_empty());
    b.weight.is_some_and(|w| w != 0)
        || b.leaf_weight.is_some_and(|w| w != 0)
        || b.weight_device.as_ref().is_some_and(|v| !v.is_empty())
        || any(&b.throttle_read_bps_device)
        || any(&b.throttle_write_bps_device)
        || any(&b.throttle_read_iops_device)
        || any(&b.throttle_write_iops_device)
}

pub(super) fn set(
    fs: &dyn CgroupFs,
    dir: Option<&Path>,
    r: &LinuxResources,
) -> Result<(), CgroupError> {
    let Some(b) = r.block_io.as_ref().filter(|b| wanted(b)) else {
        return Ok(());
    };
    let dir = super::require(dir, "blkio", "block I/O limits")?;
    let (weight_file, weight_device_file) = if fs.exists(&dir.join("blkio.weight")) {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(weight) = b.weight.filter(|w| *w != 0) {
        fs::write(fs, dir, weight_file, &weight.to_string())?;
    }
    if let Some(leaf) = b.leaf_weight.filter(|w| *w != 0) {
        fs::write(fs, dir, "blkio.leaf_weight", &leaf.to_string())?;
    }
    for wd in b.weight_device.as_deref().unwrap_or_default() {
        if let Some(weight) = wd.weight.filter(|w| *w != 0) {
            fs::write(
                fs,
                dir,
                weight_device_file,
                &format!("{}:{} {weight}", wd.major, wd.minor),
            )?;
        }
        if let Some(leaf) = wd.leaf_weight.filter(|w| *w != 0) {
            fs::write(
                fs,
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {leaf}", wd.major, wd.minor),
            )?;
        }
    }
    for (file, devices) in [
        (
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        ),
        (
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        ),
        (
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        ),
        (
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        ),
    ] {
        for td in devices.as_deref().unwrap_or_default() {
            fs::write(
                fs,
                dir,
                file,
                &format!("{}:{} {}", td.major, td.minor, td.rate),
            )?;
        }
    }
    Ok(())
}

/// "8:0 Read 123" / "8:0 123" lines; "Total N" lines are skipped. None when the file is absent.
fn entries(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
) -> Result<Option<Vec<BlkioEntry>>, CgroupError> {
    let Some(text) = fs::optional(fs::read(fs, dir, file))? else {
        return Ok(None);
    };
    let path = dir.join(file);
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        let entry = match fields[..] {
            ["Total", _] => continue,
            [major, minor, value] => BlkioEntry {
                major: fs::parse_u64(&path, major)?,
                minor: fs::parse_u64(&path, minor)?,
                op: String::new(),
                value: fs::parse_u64(&path, value)?,
            },
            [major, minor, op, value] => BlkioEntry {
                major: fs::parse_u64(&path, major)?,
                minor: fs::parse_u64(&path, minor)?,
                op: op.to_owned(),
                value: fs::parse_u64(&path, value)?,
            },
            _ => {
                return Err(CgroupError::Parse {
                    path,
                    reason: format!("malformed line {line:?}"),
                });
            }
        };
        out.push(entry);
    }
    Ok(Some(out))
}

#[derive(Clone, Copy)]
enum Field {
    ServiceBytes,
    Serviced,
    Queued,
    ServiceTime,
    WaitTime,
    Merged,
    Time,
    Sectors,
}

/// runc's order: the first group whose first file has entries wins.
const GROUPS: &[&[(&str, Field)]] = &[
    &[
        ("blkio.bfq.sectors_recursive", Field::Sectors),
        ("blkio.bfq.io_service_time_recursive", Field::ServiceTime),
        ("blkio.bfq.io_wait_time_recursive", Field::WaitTime),
        ("blkio.bfq.io_merged_recursive", Field::Merged),
        ("blkio.bfq.io_queued_recursive", Field::Queued),
        ("blkio.bfq.time_recursive", Field::Time),
        ("blkio.bfq.io_serviced_recursive", Field::Serviced),
        ("blkio.bfq.io_service_bytes_recursive", Field::ServiceBytes),
    ],
    &[
        ("blkio.bfq.io_serviced_recursive", Field::Serviced),
        ("blkio.bfq.io_service_bytes_recursive", Field::ServiceBytes),
    ],
    &[
        ("blkio.sectors_recursive", Field::Sectors),
        ("blkio.io_service_time_recursive", Field::ServiceTime),
        ("blkio.io_wait_time_recursive", Field::WaitTime),
        ("blkio.io_merged_recursive", Field::Merged),
        ("blkio.io_queued_recursive", Field::Queued),
        ("blkio.time_recursive", Field::Time),
        ("blkio.io_serviced_recursive", Field::Serviced),
        ("blkio.io_service_bytes_recursive", Field::ServiceBytes),
    ],
    &[
        ("blkio.throttle.io_serviced_recursive", Field::Serviced),
        (
            "blkio.throttle.io_service_bytes_recursive",
            Field::ServiceBytes,
        ),
    ],
    &[
        ("blkio.throttle.io_serviced", Field::Serviced),
        ("blkio.throttle.io_service_bytes", Field::ServiceBytes),
    ],
];

pub(super) fn stats(fs: &dyn CgroupFs, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    for group in GROUPS {
        for (i, (file, field)) in group.iter().enumerate() {
            let found = entries(fs, dir, file)?.filter(|e| !e.is_empty());
            let Some(found) = found else {
                if i == 0 {
                    break; // try the next group
                }
                return Ok(());
            };
            let b = &mut stats.blkio;
            let target = match field {
                Field::ServiceBytes => &mut b.io_service_bytes_recursive,
                Field::Serviced => &mut b.io_serviced_recursive,
                Field::Queued => &mut b.io_queued_recursive,
                Field::ServiceTime => &mut b.io_service_time_recursive,
                Field::WaitTime => &mut b.io_wait_time_recursive,
                Field::Merged => &mut b.io_merged_recursive,
                Field::Time => &mut b.io_time_recursive,
                Field::Sectors => &mut b.sectors_recursive,
            };
            *target = found;
            if i == group.len() - 1 {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeTree;
    use berth_runtime_spec::{LinuxThrottleDevice, LinuxWeightDevice};

    fn throttle(major: i64, minor: i64, rate: u64) -> LinuxThrottleDevice {
        LinuxThrottleDevice { major, minor, rate }
    }

    fn full() -> LinuxResources {
        let b = LinuxBlockIo {
            weight: Some(500),
            leaf_weight: Some(300),
            weight_device: Some(vec![LinuxWeightDevice {
                major: 8,
                minor: 0,
                weight: Some(200u16),
                leaf_weight: Some(100u16),
            }]),
            throttle_read_bps_device: Some(vec![throttle(8, 0, 1000)]),
            throttle_write_bps_device: Some(vec![throttle(8, 0, 2000)]),
            throttle_read_iops_device: Some(vec![throttle(8, 16, 30)]),
            throttle_write_iops_device: Some(vec![throttle(8, 16, 40)]),
        };

        LinuxResources {
            block_io: Some(b),
            ..Default::default()
        }
    }

    #[test]
    fn every_field_goes_to_its_file_with_cfq() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("blkio/c");
        for f in [
            "blkio.weight",
            "blkio.weight_device",
            "blkio.leaf_weight",
            "blkio.leaf_weight_device",
        ] {
            t.set_file(&format!("blkio/c/{f}"), "");
        }
        set(t.fs(), Some(&dir), &full()).unwrap();
        let w: Vec<String> = t
            .writes()
            .into_iter()
            .map(|(p, v)| format!("{}={v}", p.trim_start_matches("blkio/c/")))
            .collect();
        assert_eq!(
            w,
            [
                "blkio.weight=500",
                "blkio.leaf_weight=300",
                "blkio.weight_device=8:0 200",
                "blkio.leaf_weight_device=8:0 100",
                "blkio.throttle.read_bps_device=8:0 1000",
                "blkio.throttle.write_bps_device=8:0 2000",
                "blkio.throttle.read_iops_device=8:16 30",
                "blkio.throttle.write_iops_device=8:16 40",
            ]
        );
    }

    #[test]
    fn bfq_weight_files_are_used_without_cfq_and_missing_ones_fail_by_name() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("blkio/c");
        let b = LinuxBlockIo {
            weight: Some(500),
            ..Default::default()
        };
        let mut r = LinuxResources {
            block_io: Some(b),
            ..Default::default()
        };
        // no scheduler weight files at all (this host): a set weight is an error naming the file
        let err = set(t.fs(), Some(&dir), &r).unwrap_err();
        assert!(
            err.is_not_found() && err.to_string().contains("blkio.bfq.weight"),
            "{err}"
        );
        t.set_file("blkio/c/blkio.bfq.weight", "100");
        set(t.fs(), Some(&dir), &r).unwrap();
        assert_eq!(t.read("blkio/c/blkio.bfq.weight"), "500");
        // throttling alone works without any weight file
        let b = LinuxBlockIo {
            throttle_read_bps_device: Some(vec![throttle(7, 0, 1)]),
            ..Default::default()
        };
        r.block_io = Some(b);
        set(t.fs(), Some(&dir), &r).unwrap();
        assert!(matches!(
            set(t.fs(), None, &r),
            Err(CgroupError::ControllerNotMounted { .. })
        ));
    }

    #[test]
    fn stats_take_the_first_group_with_data() {
        let t = FakeTree::v1_tree();
        let dir = t.mkcg("blkio/c");
        t.set_file("blkio/c/blkio.bfq.io_serviced_recursive", "");
        t.set_file(
            "blkio/c/blkio.throttle.io_serviced_recursive",
            "8:0 Read 2\n8:0 Write 3\nTotal 5\n",
        );
        t.set_file(
            "blkio/c/blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\nTotal 4096\n",
        );
        let mut s = Stats::default();
        stats(t.fs(), &dir, &mut s).unwrap();
        assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
        assert_eq!(
            s.blkio.io_serviced_recursive[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 3
            }
        );
        assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 4096);
        t.set_file(
            "blkio/c/blkio.throttle.io_serviced_recursive",
            "garbage line here now\n",
        );
        assert!(stats(t.fs(), &dir, &mut s).is_err());
    }
}
