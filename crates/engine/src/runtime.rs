//! Invoking an OCI runtime through runc's command line (`berth-runtime`, `runc`, `crun`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{EngineError, Result};

/// The runtime used when none is named.
pub const DEFAULT_RUNTIME: &str = "berth-runtime";

/// Find a runtime: a path (contains `/`) is taken as is; a name is looked up next to the
/// running binary (and in its parent directory), then in `search_path` (the caller's `PATH`).
pub fn resolve(runtime: &str, search_path: &[PathBuf]) -> Result<PathBuf> {
    let not_found = || EngineError::RuntimeNotFound {
        runtime: runtime.to_owned(),
    };
    if runtime.is_empty() {
        return Err(not_found());
    }
    if runtime.contains('/') {
        let p = PathBuf::from(runtime);
        return if p.is_file() { Ok(p) } else { Err(not_found()) };
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for d in [Some(dir), dir.parent()].into_iter().flatten() {
            let c = d.join(runtime);
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    search_path
        .iter()
        .map(|d| d.join(runtime))
        .find(|c| c.is_file())
        .ok_or_else(not_found)
}

/// One runtime binary with its `--root`.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    pub root: PathBuf,
}

impl Runtime {
    /// A command `RUNTIME --root ROOT ARGS…`, stdin closed.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.path);
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run `args`, returning stdout; a failure carries the runtime's stderr.
    pub fn run<I, S>(&self, id: &str, op: &'static str, args: I) -> Result<Vec<u8>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self
            .command(args)
            .output()
            .map_err(|source| EngineError::RuntimeSpawn {
                runtime: self.path.clone(),
                id: id.to_owned(),
                op,
                source,
            })?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if stderr.is_empty() {
                stderr = format!("exited with {}", out.status);
            }
            Err(EngineError::Runtime {
                runtime: self.path.clone(),
                id: id.to_owned(),
                op,
                stderr,
            })
        }
    }

    pub fn start(&self, id: &str) -> Result<()> {
        self.run(id, "start", ["start", id]).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.run(id, "kill", ["kill", id, signal]).map(drop)
    }

    /// `delete --force`; a container the runtime does not know is not an error.
    pub fn delete_force(&self, id: &str) -> Result<()> {
        unknown_is_deleted(self.run(id, "delete", ["delete", "--force", id]).map(drop))
    }

    /// `delete --force` started in the background, for the caller to overlap other work
    /// with it; [`Deleting::finish`] waits and judges it as [`Runtime::delete_force`] does.
    pub fn spawn_delete_force(&self, id: &str) -> Result<Deleting> {
        let child = self
            .command(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| EngineError::RuntimeSpawn {
                runtime: self.path.clone(),
                id: id.to_owned(),
                op: "delete",
                source,
            })?;
        Ok(Deleting {
            child,
            runtime: self.path.clone(),
            id: id.to_owned(),
        })
    }

    /// The runtime's state JSON `status` field, `None` when it does not know the container.
    pub fn status(&self, id: &str) -> Option<String> {
        let out = self.run(id, "state", ["state", id]).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
        v.get("status")?.as_str().map(str::to_owned)
    }

    /// The runtime's state directory for `id` (runc, crun and berth-runtime all use ROOT/ID).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// `delete --force` of a container the runtime does not know (already deleted) succeeded.
fn unknown_is_deleted(r: Result<()>) -> Result<()> {
    match r {
        Err(EngineError::Runtime { stderr, .. })
            if stderr.contains("does not exist")
                || stderr.contains("not exist")
                || stderr.contains("not found") =>
        {
            Ok(())
        }
        r => r,
    }
}

/// A `delete --force` running in the background ([`Runtime::spawn_delete_force`]).
#[derive(Debug)]
pub struct Deleting {
    child: std::process::Child,
    runtime: PathBuf,
    id: String,
}

impl Deleting {
    /// Wait for the runtime; a container it did not know is not an error.
    pub fn finish(self) -> Result<()> {
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| EngineError::RuntimeSpawn {
                runtime: self.runtime.clone(),
                id: self.id.clone(),
                op: "delete",
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if stderr.is_empty() {
            stderr = format!("exited with {}", out.status);
        }
        unknown_is_deleted(Err(EngineError::Runtime {
            runtime: self.runtime,
            id: self.id,
            op: "delete",
            stderr,
        }))
    }
}
