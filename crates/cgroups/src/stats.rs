//! Usage statistics, serialised exactly like runc's `events --stats` data (runc
//! `types/events.go`): same field names, same omitted-when-zero fields (Go's `omitempty`
//! never omits a struct, so `usage`, `throttling`, `swap`, `kernel`… are always there),
//! maps with sorted keys, whole floats without a fraction (as Go prints them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Go's `encoding/json` prints 1.0 as `1`; serde_json would print `1.0`.
#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn go_float<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "only whole values within i64 range are cast"
    )]
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// runc `types.Stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Not collected by cgroups (runc fills it from the network namespace); `null` here.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

/// runc `types.IntelRdt`: not collected; serialised as `{}` like runc without RDT.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelRdt {}

/// runc `types.Hugetlb`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// runc `types.BlkioEntry`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// runc `types.Blkio`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServicedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioQueueRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioWaitTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioMergedRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioTimeRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "sectorsRecursive",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sectors_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// runc `types.Pids`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 means no limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// runc `types.Throttling`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// runc `types.CpuUsage`, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

/// runc `types.Cpu`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    #[serde(default)]
    pub usage: CpuUsage,
    /// Always present, `{}` when nothing was throttled (runc's field is not `omitempty`).
    #[serde(default)]
    pub throttling: Throttling,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// runc `types.CPUSet`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// runc `types.MemoryEntry`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// runc `types.Memory`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    #[serde(default)]
    pub usage: MemoryEntry,
    #[serde(default)]
    pub swap: MemoryEntry,
    #[serde(default)]
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP", default)]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// runc `cgroups.PSIData`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiData {
    #[serde(serialize_with = "go_float")]
    pub avg10: f64,
    #[serde(serialize_with = "go_float")]
    pub avg60: f64,
    #[serde(serialize_with = "go_float")]
    pub avg300: f64,
    pub total: u64,
}

impl PsiData {
    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// runc `cgroups.PSIStats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiStats {
    #[serde(default, skip_serializing_if = "PsiData::is_zero")]
    pub some: PsiData,
    #[serde(default, skip_serializing_if = "PsiData::is_zero")]
    pub full: PsiData,
}

/// Parse a PSI file (`cpu.pressure`...): "some avg10=0.00 avg60=0.00 avg300=0.00 total=0".
pub(crate) fn parse_psi(text: &str) -> Result<PsiStats, String> {
    let mut stats = PsiStats::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let target = match fields.next() {
            Some("some") => &mut stats.some,
            Some("full") => &mut stats.full,
            _ => continue,
        };
        for field in fields {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid psi data {field:?}"))?;
            let float = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("invalid {key} PSI value {value:?}"))
            };
            match key {
                "avg10" => target.avg10 = float()?,
                "avg60" => target.avg60 = float()?,
                "avg300" => target.avg300 = float()?,
                "total" => {
                    target.total = value
                        .parse()
                        .map_err(|_| format!("invalid total PSI value {value:?}"))?;
                }
                _ => {}
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_serialise_like_runc() {
        let json = serde_json::to_string(&Stats::default()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"#,
                r#""memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"#,
                r#""sched_relax_domain_level":0},"memory":{"usage":{"limit":0,"failcnt":0},"#,
                r#""swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"#,
                r#""kernelTCP":{"limit":0,"failcnt":0}},"pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"#,
                r#""network_interfaces":null}"#
            )
        );
    }

    #[test]
    fn filled_stats_serialise_like_runc() {
        let mut stats = Stats::default();
        stats.cpu.usage = CpuUsage {
            total: 5,
            percpu: vec![2, 3],
            kernel: 1,
            user: 4,
            ..Default::default()
        };
        stats.cpu.psi = Some(PsiStats {
            some: PsiData {
                avg10: 1.0,
                avg60: 0.25,
                avg300: 0.0,
                total: 7,
            },
            ..Default::default()
        });
        stats.memory.usage = MemoryEntry {
            limit: 100,
            usage: 0,
            max: 9,
            failcnt: 0,
        };
        stats.memory.raw.insert("rss".into(), 1);
        stats.memory.raw.insert("cache".into(), 2);
        stats.pids = Pids {
            current: 3,
            limit: 0,
        };
        stats.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 0,
        });
        stats.hugetlb.insert(
            "2MB".into(),
            Hugetlb {
                usage: 0,
                max: 0,
                failcnt: 0,
            },
        );
        let value: serde_json::Value = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            value["cpu"],
            serde_json::json!({"usage":{"total":5,"percpu":[2,3],"kernel":1,"user":4},"throttling":{},"psi":{"some":{"avg10":1,"avg60":0.25,"avg300":0,"total":7}}})
        );
        assert_eq!(
            value["memory"],
            serde_json::json!({"usage":{"limit":100,"max":9,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0},"raw":{"cache":2,"rss":1}})
        );
        assert_eq!(value["pids"], serde_json::json!({"current":3}));
        assert_eq!(
            value["blkio"],
            serde_json::json!({"ioServiceBytesRecursive":[{"major":8,"op":"Read"}]})
        );
        assert_eq!(value["hugetlb"], serde_json::json!({"2MB":{"failcnt":0}}));
        let text = serde_json::to_string(&stats.cpu.psi).unwrap();
        assert_eq!(
            text,
            r#"{"some":{"avg10":1,"avg60":0.25,"avg300":0,"total":7}}"#
        );
    }

    #[test]
    fn psi_files_parse() {
        let psi = parse_psi("some avg10=1.50 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n").unwrap();
        assert_eq!(psi.some.avg10, 1.5);
        assert_eq!(psi.some.total, 12);
        assert_eq!(psi.full.total, 3);
        assert!(parse_psi("some avg10").is_err());
    }
}
