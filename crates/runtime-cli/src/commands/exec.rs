//! `exec <id> [command...]` or `--process FILE`: a new process in a running container.

use std::path::PathBuf;

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;
use berth_container::{ExecOptions, ForegroundOptions, SingleThreaded, wait_foreground};
use berth_runtime_spec::Process;

pub const FLAGS: &[Flag] = &[
    Flag::value(
        "console-socket",
        None,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
    ),
    Flag::value("pidfd-socket", None, "(not supported)"),
    Flag::value("cwd", None, "current working directory in the container"),
    Flag::list("env", Some('e'), "set environment variables"),
    Flag::bool("tty", Some('t'), "allocate a pseudo-TTY"),
    Flag::value("user", Some('u'), "UID (format: <uid>[:<gid>])"),
    Flag::list("additional-gids", Some('g'), "additional gids"),
    Flag::value("process", Some('p'), "path to the process.json"),
    Flag::bool("detach", Some('d'), "detach from the container's process"),
    Flag::value(
        "pid-file",
        None,
        "specify the file to write the process id to",
    ),
    Flag::value(
        "process-label",
        None,
        "set the asm process label for the process commonly used with selinux",
    ),
    Flag::value("apparmor", None, "set the apparmor profile for the process"),
    Flag::bool(
        "no-new-privs",
        None,
        "set the no new privileges value for the process",
    ),
    Flag::list(
        "cap",
        Some('c'),
        "add a capability to the bounding set for the process",
    ),
    Flag::value(
        "preserve-fds",
        None,
        "Pass N additional file descriptors to the container (stdio + N in total) (default: 0)",
    ),
    Flag::list(
        "cgroup",
        None,
        "run the process in an (existing) sub-cgroup(s) (accepted only empty)",
    ),
    Flag::bool("ignore-paused", None, "allow exec in a paused container"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub additional_gids: Vec<i64>,
    pub process: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
    pub no_new_privs: bool,
    pub cap: Vec<String>,
    pub preserve_fds: u32,
    pub cgroup: Vec<String>,
    pub ignore_paused: bool,
    pub id: String,
    pub command: Vec<String>,
}

impl ExecArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let mut args = m.positionals("exec", 1, usize::MAX)?.into_iter();
        let id = args.next().unwrap_or_default();
        Ok(ExecArgs {
            console_socket: m.path("console-socket"),
            pidfd_socket: m.path("pidfd-socket"),
            cwd: m.path("cwd"),
            env: m.strings("env")?,
            tty: m.flag("tty"),
            user: m.string("user")?,
            additional_gids: m.numbers("additional-gids")?,
            process: m.path("process"),
            detach: m.flag("detach"),
            pid_file: m.path("pid-file"),
            process_label: m.string("process-label")?,
            apparmor: m.string("apparmor")?,
            no_new_privs: m.flag("no-new-privs"),
            cap: m.strings("cap")?,
            preserve_fds: m.number("preserve-fds")?.unwrap_or(0),
            cgroup: m.strings("cgroup")?,
            ignore_paused: m.flag("ignore-paused"),
            id,
            command: args.collect(),
        })
    }
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
            let add = |set: Option<&berth_runtime_spec::Capabilities>| {
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

pub fn run(g: &Global, a: ExecArgs, proof: SingleThreaded) -> anyhow::Result<u8> {
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
    // as run: a signal during the exec's setup is held and forwarded once the process runs
    let signals = if a.detach {
        None
    } else {
        Some(berth_container::catch_signals().context("failed to block signals for forwarding")?)
    };
    let p = c
        .exec(&opts, proof)
        .with_context(|| format!("failed to exec in container {}", a.id))?;
    for w in &p.warnings {
        g.log.warn(w);
    }
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(ForegroundOptions {
        pid: p.pid,
        pty: p.pty,
        signals,
    })
    .with_context(|| format!("failed to wait for the exec process in container {}", a.id))?;
    Ok(u8::try_from(code & 0xff).unwrap_or(255))
}
