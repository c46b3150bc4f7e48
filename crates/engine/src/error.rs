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
    #[error("corrupt container record {path}: {source}; remove the directory to discard it")]
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
        let t = text.to_ascii_lowercase();
        if t.contains("no such file or directory")
            || t.contains("executable file not found")
            || t.contains("not found")
        {
            127
        } else if t.contains("permission denied")
            || t.contains("exec format error")
            || t.contains("is a directory")
        {
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
