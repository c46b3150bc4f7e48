//! Invoking an OCI runtime through runc's command line (`berth-runtime`, `runc`, `crun`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{EngineError, Result};

/// The runtime used when none is named.
pub const DEFAULT_RUNTIME: &str = "berth-runtime";

/// Whether `helper` may be run because it sits beside `exe`, the running binary (a
/// `berth-runtime`, a `berth-monitor`): a regular executable file that nobody can have put
/// or changed there who could not also change `exe` itself. Its owner is root, this
/// process's effective user or `exe`'s owner; nobody else may write to it (a group may when
/// it may write to `exe` too). Beside a `berth` started from a directory others can write to
/// (`/tmp`), anyone could otherwise leave a file of that name for root to run.
pub fn trusted_helper(helper: &Path, exe: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(h), Ok(e)) = (std::fs::metadata(helper), std::fs::metadata(exe)) else {
        return false;
    };
    let euid = rustix::process::geteuid().as_raw();
    let owner = h.uid() == 0 || h.uid() == euid || h.uid() == e.uid();
    let group = h.mode() & 0o020 == 0 || (e.mode() & 0o020 != 0 && e.gid() == h.gid());
    h.is_file() && h.mode() & 0o111 != 0 && h.mode() & 0o002 == 0 && owner && group
}

/// Find a runtime: a path (contains `/`) is taken as is; a name is looked up next to the
/// running binary (and in its parent directory), where only a [`trusted_helper`] counts,
/// then in `search_path` (the caller's `PATH`).
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
            if trusted_helper(&c, &exe) {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        berth_test_support::write_file(&p, b"#!/bin/sh\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_helper_beside_berth_counts_only_when_nobody_else_could_have_put_it_there() {
        let dir = tempfile::tempdir().unwrap();
        let exe = file(dir.path(), "berth", 0o755);
        let ok = |name, mode| trusted_helper(&file(dir.path(), name, mode), &exe);
        assert!(ok("ok", 0o755));
        assert!(ok("owner-only", 0o700));
        assert!(!ok("group-writable", 0o775), "berth itself is not");
        assert!(!ok("world-writable", 0o757));
        assert!(!ok("not-executable", 0o644));
        assert!(!trusted_helper(&dir.path().join("missing"), &exe));
        let sub = dir.path().join("a-directory");
        std::fs::create_dir(&sub).unwrap();
        assert!(!trusted_helper(&sub, &exe));
        // a group that may write to berth may write to its helpers (user-private groups)
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(ok("group-writable-too", 0o775));
        assert!(!ok("world-writable-still", 0o777));
    }

    #[test]
    fn a_helper_owned_by_another_user_is_not_run() {
        // giving a file away needs root
        berth_test_support::requires_root!();
        let dir = tempfile::tempdir().unwrap();
        let exe = file(dir.path(), "berth", 0o755);
        let theirs = file(dir.path(), "theirs", 0o755);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        assert!(!trusted_helper(&theirs, &exe));
        // unless they own berth itself too: they could change that as well
        std::os::unix::fs::chown(&exe, Some(65534), Some(65534)).unwrap();
        assert!(trusted_helper(&theirs, &exe));
        std::os::unix::fs::chown(&exe, Some(0), Some(0)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(0), Some(0)).unwrap();
        assert!(trusted_helper(&theirs, &exe), "root's own");
    }
}
