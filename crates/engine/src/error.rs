//! The engine's errors: what failed, on which container, what to do.

use std::path::PathBuf;

/// Everything an engine operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such container: {0} (list them with `berth ps -a`)")]
    NotFound(String),
    #[error(
        "container reference {reference:?} is ambiguous: it matches {count} containers; give more of the id"
    )]
    Ambiguous { reference: String, count: usize },
    #[error(
        "the container name {name:?} is already in use by container {id}; remove that container or choose another name"
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: names match [a-zA-Z0-9][a-zA-Z0-9_.-]+")]
    InvalidName(String),
    #[error("container {id} is {status}: {what}")]
    State {
        id: String,
        status: String,
        what: String,
    },
    #[error("runtime {runtime:?} not found: give a path or a name on PATH with --runtime")]
    RuntimeNotFound { runtime: String },
    #[error("could not run the runtime {runtime} for container {id} ({op}): {source}")]
    RuntimeSpawn {
        runtime: PathBuf,
        id: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime {runtime} {op} failed for container {id}: {stderr}")]
    Runtime {
        runtime: PathBuf,
        id: String,
        op: &'static str,
        stderr: String,
    },
    #[error("the monitor of container {id} failed to start the container: {message}")]
    Monitor { id: String, message: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Fs {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error(
        "corrupt container record {path}: {source}; `berth rm -f` of the container discards it"
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to remove snapshot {key} of the container")]
    Snapshot {
        key: String,
        #[source]
        source: Box<berth_image::snapshot::SnapshotError>,
    },
    #[error("{0}")]
    Invalid(String),
    /// Setting up or tearing down a container's networks (CNI).
    #[error("{0}")]
    Network(String),
}

impl EngineError {
    /// Docker's exit status for a `run` that failed before the container's process ran:
    /// 127 when the command is not found, 126 when it cannot be invoked, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        let text = match self {
            EngineError::Monitor { message, .. } => message.as_str(),
            EngineError::Runtime {
                stderr,
                op: "start" | "create",
                ..
            } => stderr.as_str(),
            _ => return 125,
        };
        // docker's translation of the runtime's start error, narrowed to lines about the
        // exec of the container's process (a cgroup's "permission denied" is berth's 125)
        let about_exec: Vec<String> = text
            .lines()
            .map(str::to_ascii_lowercase)
            .filter(|l| l.contains("exec"))
            .collect();
        let any = |words: &[&str]| {
            about_exec
                .iter()
                .any(|l| words.iter().any(|w| l.contains(w)))
        };
        if any(&[
            "no such file or directory",
            "executable file not found",
            "not found",
        ]) {
            127
        } else if any(&["permission denied", "exec format error", "is a directory"]) {
            126
        } else {
            125
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(message: &str) -> EngineError {
        EngineError::Monitor {
            id: "c".into(),
            message: message.into(),
        }
    }

    #[test]
    fn start_errors_exit_as_dockers_by_what_the_runtime_said_of_the_exec() {
        // what berth-runtime, runc and crun print (seen on this machine)
        let cases = [
            (
                r#"msg="failed to create container c: exec: "nope": executable file not found in $PATH: No such file or directory (os error 2)""#,
                127,
            ),
            (
                r#"msg="runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH""#,
                127,
            ),
            (
                "executable file `nope` not found in $PATH: No such file or directory",
                127,
            ),
            (
                "failed to create container c: execute /bin: Permission denied (os error 13)",
                126,
            ),
            (
                r#"msg="runc create failed: unable to start container process: exec: "/bin": permission denied""#,
                126,
            ),
            // a cgroup refused is berth's (or the runtime's) failure, not the command's
            (
                "rootless container c asks for cgroup limits but the runtime cannot create or join a cgroup: failed to create cgroup directory /sys/fs/cgroup/cpuset/c: Permission denied (os error 13)",
                125,
            ),
            ("mount /proc: No such file or directory", 125),
        ];
        for (text, code) in cases {
            assert_eq!(monitor(text).exit_code(), code, "{text}");
        }
    }
}
