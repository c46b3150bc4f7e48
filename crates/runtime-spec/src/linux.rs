//! `linux`: namespaces, id mappings, devices, cgroup resources, seccomp and the other
//! Linux-specific parts of a config (runtime-spec config-linux.md).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `linux`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_mappings: Option<Vec<LinuxIdMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_mappings: Option<Vec<LinuxIdMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctl: Option<HashMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<LinuxResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<LinuxNamespace>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<LinuxDevice>>,
    /// runtime-spec 1.3: network devices moved into the container, by host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_devices: Option<HashMap<String, LinuxNetDevice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    /// Written after the paths (Go's `specs.Linux` has it before them), as `berth-runtime
    /// spec` has always written it: a long profile does not push the paths out of sight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<LinuxSeccomp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<LinuxIntelRdt>,
    /// runtime-spec 1.3: set_mempolicy(2) for the container process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<LinuxMemoryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<LinuxPersonality>,
    /// Time namespace offsets by clock (`monotonic`, `boottime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_offsets: Option<HashMap<String, LinuxTimeOffset>>,
}

/// One of `uidMappings`/`gidMappings`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxIdMapping {
    #[serde(default, rename = "containerID")]
    pub container_id: u32,
    #[serde(default, rename = "hostID")]
    pub host_id: u32,
    #[serde(default)]
    pub size: u32,
}

/// `linux.namespaces[].type`. Serialized as the spec spells it (`mount`, `network`);
/// displayed as `/proc/<pid>/ns` names them (`mnt`, `net`). The discriminant is the
/// namespace's `CLONE_NEW*` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LinuxNamespaceType {
    Mount = 0x0002_0000,
    Cgroup = 0x0200_0000,
    Uts = 0x0400_0000,
    Ipc = 0x0800_0000,
    User = 0x1000_0000,
    #[default]
    Pid = 0x2000_0000,
    Network = 0x4000_0000,
    Time = 0x0000_0080,
}

impl LinuxNamespaceType {
    /// Every namespace type.
    pub const ALL: &'static [Self] = &[
        Self::Mount,
        Self::Cgroup,
        Self::Uts,
        Self::Ipc,
        Self::User,
        Self::Pid,
        Self::Network,
        Self::Time,
    ];

    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mount => "mount",
            Self::Cgroup => "cgroup",
            Self::Uts => "uts",
            Self::Ipc => "ipc",
            Self::User => "user",
            Self::Pid => "pid",
            Self::Network => "network",
            Self::Time => "time",
        }
    }

    /// The name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::Mount => "mnt",
            Self::Network => "net",
            other => other.as_str(),
        }
    }

    /// The type spelled `s`: the spec's spelling or the `/proc` one.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s || t.proc_name() == s)
    }
}

impl std::fmt::Display for LinuxNamespaceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.proc_name())
    }
}

impl Serialize for LinuxNamespaceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LinuxNamespaceType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const NAMES: &[&str] = &[
            "mount", "cgroup", "uts", "ipc", "user", "pid", "network", "time",
        ];
        let s = String::deserialize(d)?;
        NAMES
            .iter()
            .position(|n| *n == s)
            .and_then(|i| Self::ALL.get(i).copied())
            .ok_or_else(|| serde::de::Error::unknown_variant(&s, NAMES))
    }
}

/// One of `linux.namespaces`: a new namespace, or the one at `path` to join.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxNamespace {
    #[serde(rename = "type")]
    pub typ: LinuxNamespaceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

spelled_enum! {
    /// A device type: `c` (character), `b` (block), `u` (unbuffered character), `p`
    /// (FIFO); `a` (all) only in cgroup device rules.
    #[derive(Default)]
    pub enum LinuxDeviceType {
        #[default]
        A => "a",
        B => "b",
        C => "c",
        U => "u",
        P => "p",
    }
}

/// One of `linux.devices`: a device node to create in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxDevice {
    #[serde(default)]
    pub path: PathBuf,
    #[serde(rename = "type")]
    pub typ: LinuxDeviceType,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// One of `linux.netDevices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxNetDevice {
    /// The name inside the container; the host name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `linux.resources`: the container's cgroup settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<LinuxDeviceCgroup>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<LinuxMemory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<LinuxCpu>,
    /// `None` also for a `pids` object without a `limit` (or with a null one): the
    /// runtime-spec says absent leaves the limit alone, while 0 is a limit of zero.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "pids_with_a_limit"
    )]
    pub pids: Option<LinuxPids>,
    #[serde(default, rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<LinuxBlockIo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepage_limits: Option<Vec<LinuxHugepageLimit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<LinuxNetwork>,
    /// By device name (`mlx5_1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<HashMap<String, LinuxRdma>>,
    /// cgroup v2 files by name (`memory.high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<HashMap<String, String>>,
}

/// One of `linux.resources.devices`: an allow or deny rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxDeviceCgroup {
    #[serde(default)]
    pub allow: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<LinuxDeviceType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Some combination of `r`, `w`, `m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// The rule as a cgroup v1 `devices.allow` line: `c 1:3 rwm`, `a *:* m`.
impl std::fmt::Display for LinuxDeviceCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let typ = self.typ.unwrap_or_default();
        let number = |n: Option<i64>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{typ} {}:{} {}",
            number(self.major),
            number(self.minor),
            self.access.as_deref().unwrap_or("")
        )
    }
}

/// `linux.resources.memory`, in bytes; -1 is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxMemory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory plus swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    /// Deprecated by the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(default, rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(
        default,
        rename = "disableOOMKiller",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

/// `linux.resources.cpu`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxCpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    /// Microseconds per `period`; -1 is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    /// cgroup v2 `cpu.idle` (0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

/// `linux.resources.pids`. The spec requires `limit`; a `pids` without one reads as no
/// `pids` at all ([`LinuxResources::pids`]), so a `LinuxPids` always carries a limit that
/// was written down, 0 included (config-linux "PIDs": "0 is a valid limit value … and SHOULD
/// be treated as such"). 0 and negative values are limits the runtime interprets (see
/// docs/ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxPids {
    #[serde(default)]
    pub limit: i64,
}

/// [`LinuxResources::pids`]: a `pids` object whose `limit` is absent or null is `None`.
fn pids_with_a_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LinuxPids>, D::Error> {
    #[derive(Deserialize)]
    struct Written {
        #[serde(default)]
        limit: Option<i64>,
    }
    let written = Option::<Written>::deserialize(d)?;
    Ok(written
        .and_then(|w| w.limit)
        .map(|limit| LinuxPids { limit }))
}

/// `linux.resources.blockIO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxBlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_device: Option<Vec<LinuxWeightDevice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_read_bps_device: Option<Vec<LinuxThrottleDevice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_write_bps_device: Option<Vec<LinuxThrottleDevice>>,
    #[serde(
        default,
        rename = "throttleReadIOPSDevice",
        skip_serializing_if = "Option::is_none"
    )]
    pub throttle_read_iops_device: Option<Vec<LinuxThrottleDevice>>,
    #[serde(
        default,
        rename = "throttleWriteIOPSDevice",
        skip_serializing_if = "Option::is_none"
    )]
    pub throttle_write_iops_device: Option<Vec<LinuxThrottleDevice>>,
}

/// One of `blockIO.weightDevice`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxWeightDevice {
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

/// One of `blockIO.throttle*Device`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxThrottleDevice {
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default)]
    pub rate: u64,
}

/// One of `linux.resources.hugepageLimits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxHugepageLimit {
    /// `2MB`, `1GB`, …
    #[serde(default)]
    pub page_size: String,
    #[serde(default)]
    pub limit: i64,
}

/// `linux.resources.network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxNetwork {
    #[serde(default, rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<Vec<LinuxInterfacePriority>>,
}

/// One of `network.priorities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxInterfacePriority {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub priority: u32,
}

/// One of `linux.resources.rdma`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxRdma {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

/// `linux.seccomp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxSeccomp {
    pub default_action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<Arch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<LinuxSyscall>>,
}

spelled_enum! {
    /// A seccomp action.
    #[derive(Default)]
    pub enum LinuxSeccompAction {
        ScmpActKill => "SCMP_ACT_KILL",
        ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        ScmpActTrap => "SCMP_ACT_TRAP",
        ScmpActErrno => "SCMP_ACT_ERRNO",
        ScmpActTrace => "SCMP_ACT_TRACE",
        #[default]
        ScmpActAllow => "SCMP_ACT_ALLOW",
        ScmpActLog => "SCMP_ACT_LOG",
        ScmpActNotify => "SCMP_ACT_NOTIFY",
    }
}

spelled_enum! {
    /// A seccomp architecture (libseccomp's names). `SCMP_ARCH_NATIVE` is not in the spec
    /// but is accepted, as libseccomp and oci-spec accept it.
    pub enum Arch {
        ScmpArchNative => "SCMP_ARCH_NATIVE",
        ScmpArchX86 => "SCMP_ARCH_X86",
        ScmpArchX86_64 => "SCMP_ARCH_X86_64",
        ScmpArchX32 => "SCMP_ARCH_X32",
        ScmpArchArm => "SCMP_ARCH_ARM",
        ScmpArchAarch64 => "SCMP_ARCH_AARCH64",
        ScmpArchLoongarch64 => "SCMP_ARCH_LOONGARCH64",
        ScmpArchM68k => "SCMP_ARCH_M68K",
        ScmpArchMips => "SCMP_ARCH_MIPS",
        ScmpArchMips64 => "SCMP_ARCH_MIPS64",
        ScmpArchMips64n32 => "SCMP_ARCH_MIPS64N32",
        ScmpArchMipsel => "SCMP_ARCH_MIPSEL",
        ScmpArchMipsel64 => "SCMP_ARCH_MIPSEL64",
        ScmpArchMipsel64n32 => "SCMP_ARCH_MIPSEL64N32",
        ScmpArchPpc => "SCMP_ARCH_PPC",
        ScmpArchPpc64 => "SCMP_ARCH_PPC64",
        ScmpArchPpc64le => "SCMP_ARCH_PPC64LE",
        ScmpArchS390 => "SCMP_ARCH_S390",
        ScmpArchS390x => "SCMP_ARCH_S390X",
        ScmpArchSh => "SCMP_ARCH_SH",
        ScmpArchSheb => "SCMP_ARCH_SHEB",
        ScmpArchParisc => "SCMP_ARCH_PARISC",
        ScmpArchParisc64 => "SCMP_ARCH_PARISC64",
        ScmpArchRiscv64 => "SCMP_ARCH_RISCV64",
    }
}

spelled_enum! {
    /// A seccomp(2) filter flag.
    pub enum LinuxSeccompFilterFlag {
        SeccompFilterFlagTsync => "SECCOMP_FILTER_FLAG_TSYNC",
        SeccompFilterFlagLog => "SECCOMP_FILTER_FLAG_LOG",
        SeccompFilterFlagSpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        SeccompFilterFlagWaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
}

spelled_enum! {
    /// A seccomp argument comparison.
    #[derive(Default)]
    pub enum LinuxSeccompOperator {
        ScmpCmpNe => "SCMP_CMP_NE",
        ScmpCmpLt => "SCMP_CMP_LT",
        ScmpCmpLe => "SCMP_CMP_LE",
        #[default]
        ScmpCmpEq => "SCMP_CMP_EQ",
        ScmpCmpGe => "SCMP_CMP_GE",
        ScmpCmpGt => "SCMP_CMP_GT",
        ScmpCmpMaskedEq => "SCMP_CMP_MASKED_EQ",
    }
}

/// One of `seccomp.syscalls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxSyscall {
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<LinuxSeccompArg>>,
}

/// One of `syscalls[].args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxSeccompArg {
    pub index: usize,
    pub value: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_two: Option<u64>,
    pub op: LinuxSeccompOperator,
}

/// `linux.intelRdt` (resctrl).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxIntelRdt {
    #[serde(default, rename = "closID", skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    /// runtime-spec 1.3: whole lines of the `schemata` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemata: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3_cache_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bw_schema: Option<String>,
    #[serde(default, rename = "enableCMT", skip_serializing_if = "Option::is_none")]
    pub enable_cmt: Option<bool>,
    #[serde(default, rename = "enableMBM", skip_serializing_if = "Option::is_none")]
    pub enable_mbm: Option<bool>,
    /// runtime-spec 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_monitoring: Option<bool>,
}

/// `linux.personality`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxPersonality {
    pub domain: LinuxPersonalityDomain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
}

spelled_enum! {
    /// `linux.personality.domain`.
    #[derive(Default)]
    pub enum LinuxPersonalityDomain {
        #[default]
        PerLinux => "LINUX",
        PerLinux32 => "LINUX32",
    }
}

/// `linux.memoryPolicy` (runtime-spec 1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxMemoryPolicy {
    pub mode: MemoryPolicyMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<MemoryPolicyFlag>>,
}

spelled_enum! {
    /// `memoryPolicy.mode`.
    #[derive(Default)]
    pub enum MemoryPolicyMode {
        #[default]
        MpolDefault => "MPOL_DEFAULT",
        MpolBind => "MPOL_BIND",
        MpolInterleave => "MPOL_INTERLEAVE",
        MpolWeightedInterleave => "MPOL_WEIGHTED_INTERLEAVE",
        MpolPreferred => "MPOL_PREFERRED",
        MpolPreferredMany => "MPOL_PREFERRED_MANY",
        MpolLocal => "MPOL_LOCAL",
    }
}

spelled_enum! {
    /// `memoryPolicy.flags[]`.
    pub enum MemoryPolicyFlag {
        MpolFNumaBalancing => "MPOL_F_NUMA_BALANCING",
        MpolFRelativeNodes => "MPOL_F_RELATIVE_NODES",
        MpolFStaticNodes => "MPOL_F_STATIC_NODES",
    }
}

/// One of `linux.timeOffsets`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxTimeOffset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nanosecs: Option<u32>,
}
