//! The container's on-disk record (`<root>/<id>/state.json`) and the per-container lock.
//!
//! The record holds the runtime-spec state (ociVersion, id, pid, bundle, annotations) plus
//! what later commands need: the init's start time (to tell the init from a process that
//! reused its pid), the cgroup, a snapshot of the config. The status is not trusted from
//! disk: it is derived from the init process and the exec fifo, as runc does.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_runtime_spec::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupState;
use crate::hostmounts::HostMount;
use crate::paths;

/// What failed on which state path.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("failed to read container state {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse container state {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write container state {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to lock container directory {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// runtime-spec status, plus runc's "paused".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub layout_version: u32,
    pub oci_version: String,
    pub id: String,
    /// Recorded status: `creating` until the init waits on the exec fifo, then `created`.
    /// The live status comes from [`crate::Container::status`].
    pub status: Status,
    /// Host pid of the container's init; 0 before it exists.
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// Field 22 of /proc/<pid>/stat of the init, to detect pid reuse.
    pub init_start_time: u64,
    pub(crate) cgroup: Option<CgroupState>,
    /// Set by `pause`, cleared by `resume`.
    #[serde(default)]
    pub paused: bool,
    pub rootless: bool,
    pub systemd_cgroup: bool,
    /// uid that created the container.
    pub owner: u32,
    /// The config the container was created from.
    pub config: Spec,
    /// Without a mount namespace of its own (see [`crate::hostmounts`]): the mounts at or
    /// under the rootfs in the runtime's mount namespace before the init started; `None`
    /// for a container with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host_mounts_before: Option<Vec<HostMount>>,
    /// ... and the ones the container made there, recorded once the init is ready:
    /// unmounted by `delete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) host_mounts: Vec<HostMount>,
}

impl State {
    /// Read `<root>/<id>/state.json`.
    pub fn load(root: &Path, id: &str) -> Result<State, StateError> {
        let path = paths::state_file(root, id);
        let data = std::fs::read(&path).map_err(|source| StateError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&data).map_err(|source| StateError::Parse { path, source })
    }

    /// Write it atomically.
    pub fn save(&self, root: &Path) -> Result<(), StateError> {
        let path = paths::state_file(root, &self.id);
        let data = serde_json::to_vec(self).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        // atomic for `state`, `list` and `delete` reading it concurrently, not fsynced: the
        // record describes processes that do not survive a crash either (runc and crun
        // write theirs the same way; each fsync cost a journal commit per container)
        berth_fsutil::atomic_replace(&path, &data)
            .map_err(|source| StateError::Write { path, source })
    }

    /// The runtime-spec state object given to hooks and printed by `state`.
    pub fn spec_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
        });
        if status != Status::Stopped && self.pid > 0 {
            v["pid"] = self.pid.into();
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }
}

/// An exclusive `flock` on a container directory, released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _fd: OwnedFd,
}

impl Lock {
    /// Block until the container directory is ours.
    pub(crate) fn acquire(dir: &Path) -> Result<Lock, StateError> {
        let err = |source: std::io::Error| StateError::Lock {
            path: dir.to_owned(),
            source,
        };
        let f = File::open(dir).map_err(err)?;
        rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| err(e.into()))?;
        Ok(Lock { _fd: f.into() })
    }
}

/// Start time (jiffies since boot) and state letter of a process, from /proc/<pid>/stat.
pub(crate) fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: split after the last ')'
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); starttime is field 22
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((start, state))
}

/// Whether `pid` is still the process that started at `start_time`, and not a zombie.
pub(crate) fn process_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some((start, state)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_start_time_matters() {
        let me = std::process::id() as i32;
        let (start, state) = proc_stat(me).unwrap();
        assert_ne!(state, 'Z');
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
        assert!(!process_alive(0, start));
    }
}
