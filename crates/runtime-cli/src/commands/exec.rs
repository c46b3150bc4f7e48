//! `exec <id> [command...]` or `--process FILE`: a new process in a running container.

use std::path::PathBuf;

use anyhow::Context;
use berth_container::{ExecOptions, ForegroundOptions, wait_foreground};
use berth_oci::runtime::Process;
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// (not supported)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// set environment variables
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<i64>,
    /// path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors to the container (stdio + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// run the process in an (existing) sub-cgroup(s) (accepted only empty)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn process_of(a: &ExecArgs, base: Option<&Process>) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let data =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        let p: Process = serde_json::from_slice(&data)
            .with_context(|| format!("failed to parse {}", path.display()))?;
        return Ok(p);
    }
    let mut p = base
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the container config has no process"))?;
    if a.command.is_empty() {
        anyhow::bail!("exec args cannot be empty");
    }
    p.args = Some(a.command.clone());
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(ap) = &a.apparmor {
        p.apparmor_profile = Some(ap.clone());
    }
    if let Some(l) = &a.process_label {
        p.selinux_label = Some(l.clone());
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities.clone().unwrap_or_default();
        for name in &a.cap {
            let c = berth_container::caps::parse(name)
                .ok_or_else(|| anyhow::anyhow!("unknown capability {name:?}"))?;
            let add = |set: Option<&berth_oci::runtime::Capabilities>| {
                let mut s = set.cloned().unwrap_or_default();
                s.insert(c);
                Some(s)
            };
            caps.bounding = add(caps.bounding.as_ref());
            caps.effective = add(caps.effective.as_ref());
            caps.permitted = add(caps.permitted.as_ref());
            if caps.inheritable.is_some() {
                caps.ambient = add(caps.ambient.as_ref());
            }
        }
        p.capabilities = Some(caps);
    }
    let mut env = p.env.clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.env = Some(env);
    p.terminal = Some(a.tty);
    if a.no_new_privs {
        p.no_new_privileges = Some(true);
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        if let Some(g) = gid {
            p.user.gid = g.parse().with_context(|| format!("bad gid: {g:?}"))?;
        }
        p.user.uid = uid.parse().with_context(|| format!("bad uid: {uid:?}"))?;
    }
    if !a.additional_gids.is_empty() {
        let mut gids = p.user.additional_gids.clone().unwrap_or_default();
        for g in &a.additional_gids {
            let g = u32::try_from(*g)
                .map_err(|_| anyhow::anyhow!("additional-gids must be a positive number {g}"))?;
            gids.push(g);
        }
        p.user.additional_gids = Some(gids);
    }
    Ok(p)
}

pub fn run(g: &Global, a: ExecArgs) -> anyhow::Result<u8> {
    if a.pidfd_socket.is_some() {
        anyhow::bail!("--pidfd-socket is not supported by berth-runtime");
    }
    if a.cgroup.iter().any(|c| !c.is_empty()) {
        anyhow::bail!("--cgroup is not supported by berth-runtime");
    }
    let c = super::load(g, &a.id)?;
    let process = process_of(&a, c.state.config.process.as_ref())?;
    let terminal = process.terminal.unwrap_or(false);
    let opts = ExecOptions {
        process,
        console_socket: a.console_socket.clone(),
        keep_pty: terminal && !a.detach && a.console_socket.is_none(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    let p = c
        .exec(&opts)
        .with_context(|| format!("failed to exec in container {}", a.id))?;
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(ForegroundOptions {
        pid: p.pid,
        pty: p.pty,
    })
    .with_context(|| format!("failed to wait for the exec process in container {}", a.id))?;
    Ok(u8::try_from(code & 0xff).unwrap_or(255))
}
