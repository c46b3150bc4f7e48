//! Pinned network namespaces, as CRI and podman make them: a new network namespace kept alive
//! by a bind mount of its `nsfs` file on a path, so that networking (CNI) can be set up in it
//! before the container exists and torn down after it is gone, and the runtime joins it by
//! path (`linux.namespaces[{type: network, path}]`).
//!
//! The namespace is made by a short-lived thread that `unshare(CLONE_NEWNET)`s itself (only
//! that thread moves; network namespaces are per task) and bind-mounts
//! `/proc/thread-self/ns/net` onto the path, as the CNI plugins' `ns` package does. Removing
//! unmounts (detached: a process still inside keeps it until it leaves) and deletes the file;
//! both are idempotent.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// Make a new network namespace pinned at `path` (its parent directory is created; the file
/// must not exist). On failure nothing is left at `path`.
pub fn create(path: &Path) -> Result<PathBuf> {
    let fail = |what: &'static str, e: std::io::Error| EngineError::io(what, path, e);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| fail("failed to create the directory of", e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| fail("failed to create the network namespace file", e))?;
    let target = path.to_owned();
    let pinned = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: only CLONE_NEWNET, on this thread alone: no file table is unshared.
        #[expect(unsafe_code, reason = "unshare of this thread's network namespace")]
        unsafe {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET)?;
        }
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")));
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(path);
        return Err(fail("failed to make a network namespace at", e));
    }
    if let Err(e) = bring_up_loopback(path) {
        let _ = remove(path);
        return Err(e);
    }
    Ok(path.to_owned())
}

/// `ip link set lo up` inside the namespace at `path` (through `nsenter`: iproute2 takes
/// only names under /run/netns), as runtimes do for a namespace they create; a network
/// namespace given by path gets no loopback from runc or crun.
fn bring_up_loopback(path: &Path) -> Result<()> {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(["ip", "link", "set", "lo", "up"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        other => {
            let detail = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => e.to_string(),
            };
            Err(EngineError::io(
                "failed to bring up the loopback device of the network namespace",
                path,
                std::io::Error::other(format!(
                    "nsenter … ip link set lo up: {detail} (hint: install util-linux and iproute2)"
                )),
            ))
        }
    }
}

/// Unpin and delete the namespace at `path`; a path already gone is fine.
pub fn remove(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(EngineError::io(
                "failed to unmount the network namespace",
                path,
                e.into(),
            ));
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(
            "failed to remove the network namespace file",
            path,
            e,
        )),
    }
}
