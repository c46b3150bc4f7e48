//! The one error type of the cgroup module.

use std::io;
use std::path::PathBuf;

/// What failed while managing a container's cgroups, on which file or directory.
///
/// Kernel errors keep their errno (`source` is the `std::io::Error`); messages say what
/// failed on what and never repeat the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {value:?} to {}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("failed to create cgroup directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to remove cgroup directory {}", path.display())]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to list cgroup directory {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to add pid {pid} to cgroup {}", path.display())]
    Join {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to find the filesystem type of {}", path.display())]
    Statfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no cgroup filesystem at {} (filesystem type {fs_type:#x})", path.display())]
    NoCgroupFs { path: PathBuf, fs_type: u64 },
    #[error(
        "the {controller} cgroup controller is not mounted on this host, but the configuration sets {what}"
    )]
    ControllerNotMounted { controller: String, what: String },
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// runc's exact wording (`cgroups.ErrV1NoUnified`).
    #[error("invalid configuration: cannot use unified on cgroup v1")]
    UnifiedOnV1,
    #[error("invalid {what}: {reason}")]
    InvalidResource { what: String, reason: String },
    #[error("unable to set memory limit to {limit} in {} (current usage: {usage}, peak usage: {peak})", path.display())]
    MemoryLimitTooLow {
        path: PathBuf,
        limit: i64,
        usage: u64,
        peak: u64,
    },
    #[error("rejecting {what} {limit} for {}: not above the current usage {usage}", path.display())]
    BelowUsage {
        path: PathBuf,
        what: String,
        limit: i64,
        usage: u64,
    },
    #[error("failed to freeze cgroup {}: still {state} after {attempts} attempts", path.display())]
    FreezeTimeout {
        path: PathBuf,
        state: String,
        attempts: u32,
    },
    #[error("cgroup {} is in freezer state {state:?}, expected {expected}", path.display())]
    FreezerState {
        path: PathBuf,
        state: String,
        expected: String,
    },
    #[error("cannot use the freezer: no freezer cgroup for this container")]
    NoFreezer,
    #[error("invalid device rule {rule:?}: {reason}")]
    DeviceRule { rule: String, reason: String },
    #[error("devices cgroup {} does not match the requested rules after writing them", path.display())]
    DevicesMismatch { path: PathBuf },
    #[error("failed to {op} the device filter program on {}", path.display())]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the kernel rejected the device filter program for {}: {log}", path.display())]
    BpfLoad {
        path: PathBuf,
        log: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter cgroup {}: {reason}", path.display())]
    CgroupType { path: PathBuf, reason: String },
    #[error("invalid cgroup state: {reason}")]
    InvalidState { reason: String },
    #[error("failed to remove cgroups {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Destroy {
        paths: Vec<PathBuf>,
        #[source]
        source: Box<CgroupError>,
    },
}

impl CgroupError {
    /// The errno behind this error, if a system call failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Read { source, .. }
            | Self::Write { source, .. }
            | Self::CreateDir { source, .. }
            | Self::RemoveDir { source, .. }
            | Self::ReadDir { source, .. }
            | Self::Join { source, .. }
            | Self::Statfs { source, .. }
            | Self::Bpf { source, .. }
            | Self::BpfLoad { source, .. } => source.raw_os_error(),
            Self::Destroy { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the error is a missing file or directory (ENOENT).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Read { source, .. }
            | Self::Write { source, .. }
            | Self::ReadDir { source, .. }
            | Self::Join { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}
