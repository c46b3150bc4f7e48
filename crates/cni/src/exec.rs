//! Running one plugin binary: found in the CNI path, `CNI_*` parameters in its environment,
//! its request on stdin, stdout and stderr captured, a bounded wait (SPEC.md, "Section 2:
//! Execution Protocol").
//!
//! The plugin runs in a process group of its own, so that on a timeout the plugin and what
//! it started (an IPAM plugin it delegated to, an `iptables` it ran) are killed together.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::error::{CniError, Result};

/// The environment variables of the protocol; any the caller's environment holds are
/// replaced, never inherited.
const CNI_VARS: [&str; 6] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

/// The parameters of one invocation (SPEC.md, "Parameters"); `None` leaves a variable unset.
#[derive(Debug, Default)]
pub(crate) struct Invocation<'a> {
    pub command: &'static str,
    pub container_id: Option<&'a str>,
    pub netns: Option<&'a str>,
    pub ifname: Option<&'a str>,
    pub args: Option<String>,
}

/// What a finished plugin left.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The first executable named `plugin` in `dirs` (SPEC.md: the `type` field names the
/// binary; `CNI_PATH` lists the directories to search).
pub(crate) fn find_plugin(plugin: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|d| d.join(plugin)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Run the plugin at `path` with `inv` and `stdin`, waiting at most `timeout`.
pub(crate) fn run(
    path: &Path,
    cni_path: &str,
    inv: &Invocation<'_>,
    stdin: &[u8],
    timeout: Duration,
    network: &str,
) -> Result<Output> {
    let mut cmd = Command::new(path);
    for v in CNI_VARS {
        cmd.env_remove(v);
    }
    cmd.env("CNI_COMMAND", inv.command)
        .env("CNI_PATH", cni_path);
    if let Some(v) = inv.container_id {
        cmd.env("CNI_CONTAINERID", v);
    }
    if let Some(v) = inv.netns {
        cmd.env("CNI_NETNS", v);
    }
    if let Some(v) = inv.ifname {
        cmd.env("CNI_IFNAME", v);
    }
    if let Some(v) = &inv.args {
        cmd.env("CNI_ARGS", v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let spawn_err = |source| CniError::Spawn {
        path: path.to_owned(),
        command: inv.command,
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // stdin is written and stdout/stderr read by threads of their own, so a plugin that
    // prints before it reads (or a request larger than a pipe) cannot deadlock us
    let mut child_stdin = child.stdin.take();
    let request = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = child_stdin.as_mut() {
            // EPIPE: the plugin does not read its stdin (VERSION may not); that is its call
            let _ = s.write_all(&request);
        }
    });
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    // (the whole group is killed on the deadline: the plugin and whatever it started)
    let status = berth_fsutil::wait_or_kill_group(&mut child, timeout).map_err(spawn_err)?;
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(CniError::Timeout {
            network: network.to_owned(),
            plugin: path.display().to_string(),
            command: inv.command,
            timeout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        });
    };
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}
