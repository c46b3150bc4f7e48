//! `process`: what runs in the container and with which identity, limits and privileges.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

/// `process`. `user` and `cwd` are REQUIRED by the spec, so a process without them does
/// not parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Windows only; carried through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    pub cwd: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<LinuxCapabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<Vec<PosixRlimit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<LinuxIoPriority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    #[serde(
        default,
        rename = "execCPUAffinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
}

/// `process.consoleSize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSize {
    #[serde(default)]
    pub height: u64,
    #[serde(default)]
    pub width: u64,
}

/// `process.user` (POSIX).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_gids: Option<Vec<u32>>,
    /// Windows only; carried through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A capability set.
pub type Capabilities = HashSet<Capability>;

/// `process.capabilities`: the five sets, each a list of `CAP_*` names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxCapabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Capabilities>,
}

spelled_enum! {
    lenient
    /// A Linux capability, spelled `CAP_*` (capabilities(7)). Parsing also takes the name
    /// without the prefix and in any case (`sys_admin`), as Kubernetes writes them; an
    /// unknown name does not parse.
    pub enum Capability {
        AuditControl => "CAP_AUDIT_CONTROL",
        AuditRead => "CAP_AUDIT_READ",
        AuditWrite => "CAP_AUDIT_WRITE",
        BlockSuspend => "CAP_BLOCK_SUSPEND",
        Bpf => "CAP_BPF",
        CheckpointRestore => "CAP_CHECKPOINT_RESTORE",
        Chown => "CAP_CHOWN",
        DacOverride => "CAP_DAC_OVERRIDE",
        DacReadSearch => "CAP_DAC_READ_SEARCH",
        Fowner => "CAP_FOWNER",
        Fsetid => "CAP_FSETID",
        IpcLock => "CAP_IPC_LOCK",
        IpcOwner => "CAP_IPC_OWNER",
        Kill => "CAP_KILL",
        Lease => "CAP_LEASE",
        LinuxImmutable => "CAP_LINUX_IMMUTABLE",
        MacAdmin => "CAP_MAC_ADMIN",
        MacOverride => "CAP_MAC_OVERRIDE",
        Mknod => "CAP_MKNOD",
        NetAdmin => "CAP_NET_ADMIN",
        NetBindService => "CAP_NET_BIND_SERVICE",
        NetBroadcast => "CAP_NET_BROADCAST",
        NetRaw => "CAP_NET_RAW",
        Perfmon => "CAP_PERFMON",
        Setgid => "CAP_SETGID",
        Setfcap => "CAP_SETFCAP",
        Setpcap => "CAP_SETPCAP",
        Setuid => "CAP_SETUID",
        SysAdmin => "CAP_SYS_ADMIN",
        SysBoot => "CAP_SYS_BOOT",
        SysChroot => "CAP_SYS_CHROOT",
        SysModule => "CAP_SYS_MODULE",
        SysNice => "CAP_SYS_NICE",
        SysPacct => "CAP_SYS_PACCT",
        SysPtrace => "CAP_SYS_PTRACE",
        SysRawio => "CAP_SYS_RAWIO",
        SysResource => "CAP_SYS_RESOURCE",
        SysTime => "CAP_SYS_TIME",
        SysTtyConfig => "CAP_SYS_TTY_CONFIG",
        Syslog => "CAP_SYSLOG",
        WakeAlarm => "CAP_WAKE_ALARM",
    }
}

impl Capability {
    /// Parse `CAP_SYS_ADMIN`, `SYS_ADMIN` or `sys_admin`.
    pub fn parse(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let mut bare = upper.as_str();
        while let Some(rest) = bare.strip_prefix("CAP_") {
            bare = rest;
        }
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().strip_prefix("CAP_") == Some(bare))
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::unknown_variant(&s, Self::NAMES))
    }
}

/// One of `process.rlimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosixRlimit {
    #[serde(rename = "type")]
    pub typ: PosixRlimitType,
    #[serde(default)]
    pub hard: u64,
    #[serde(default)]
    pub soft: u64,
}

spelled_enum! {
    /// `process.rlimits[].type` (getrlimit(2)).
    pub enum PosixRlimitType {
        RlimitCpu => "RLIMIT_CPU",
        RlimitFsize => "RLIMIT_FSIZE",
        RlimitData => "RLIMIT_DATA",
        RlimitStack => "RLIMIT_STACK",
        RlimitCore => "RLIMIT_CORE",
        RlimitRss => "RLIMIT_RSS",
        RlimitNproc => "RLIMIT_NPROC",
        RlimitNofile => "RLIMIT_NOFILE",
        RlimitMemlock => "RLIMIT_MEMLOCK",
        RlimitAs => "RLIMIT_AS",
        RlimitLocks => "RLIMIT_LOCKS",
        RlimitSigpending => "RLIMIT_SIGPENDING",
        RlimitMsgqueue => "RLIMIT_MSGQUEUE",
        RlimitNice => "RLIMIT_NICE",
        RlimitRtprio => "RLIMIT_RTPRIO",
        RlimitRttime => "RLIMIT_RTTIME",
    }
}

/// `process.ioPriority` (ioprio_set(2)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxIoPriority {
    #[serde(default)]
    pub class: IoPriorityClass,
    #[serde(default)]
    pub priority: i64,
}

spelled_enum! {
    /// `process.ioPriority.class`.
    #[derive(Default)]
    pub enum IoPriorityClass {
        IoprioClassRt => "IOPRIO_CLASS_RT",
        #[default]
        IoprioClassBe => "IOPRIO_CLASS_BE",
        IoprioClassIdle => "IOPRIO_CLASS_IDLE",
    }
}

/// `process.scheduler` (sched_setattr(2)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduler {
    pub policy: LinuxSchedulerPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<LinuxSchedulerFlag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
}

spelled_enum! {
    /// `process.scheduler.policy`.
    #[derive(Default)]
    pub enum LinuxSchedulerPolicy {
        #[default]
        SchedOther => "SCHED_OTHER",
        SchedFifo => "SCHED_FIFO",
        SchedRr => "SCHED_RR",
        SchedBatch => "SCHED_BATCH",
        SchedIso => "SCHED_ISO",
        SchedIdle => "SCHED_IDLE",
        SchedDeadline => "SCHED_DEADLINE",
    }
}

spelled_enum! {
    /// `process.scheduler.flags[]`.
    pub enum LinuxSchedulerFlag {
        SchedFlagResetOnFork => "SCHED_FLAG_RESET_ON_FORK",
        SchedFlagReclaim => "SCHED_FLAG_RECLAIM",
        SchedFlagDlOverrun => "SCHED_FLAG_DL_OVERRUN",
        SchedFlagKeepPolicy => "SCHED_FLAG_KEEP_POLICY",
        SchedFlagKeepParams => "SCHED_FLAG_KEEP_PARAMS",
        SchedFlagUtilClampMin => "SCHED_FLAG_UTIL_CLAMP_MIN",
        SchedFlagUtilClampMax => "SCHED_FLAG_UTIL_CLAMP_MAX",
    }
}

/// `process.execCPUAffinity` (runtime-spec 1.3): CPU lists (`0-3,7`) for `exec`'s process
/// before and after it joins the container's cgroup. A list that is not a CPU list does
/// not parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCpuAffinity {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cpu_list"
    )]
    pub initial: Option<String>,
    #[serde(
        default,
        rename = "final",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cpu_list"
    )]
    pub cpu_affinity_final: Option<String>,
}

fn cpu_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    if let Some(s) = &value
        && !is_cpu_list(s)
    {
        return Err(serde::de::Error::custom(format_args!(
            "invalid execCPUAffinity {s:?}: expected a CPU list such as 0-3,7"
        )));
    }
    Ok(value)
}

/// Whether `s` is a CPU list: comma-separated decimal CPU numbers or `a-b` ranges, at
/// least one, no spaces (`0`, `0-3,7`). The grammar runtime-spec gives for
/// `execCPUAffinity`; ranges are not checked for order, as runc and oci-spec do not.
pub fn is_cpu_list(s: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    s.split(',').all(|item| match item.split_once('-') {
        Some((a, b)) => number(a) && number(b),
        None => number(item),
    })
}
