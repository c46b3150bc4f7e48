//! `create <id>`.

use std::path::PathBuf;

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;
use berth_container::{Container, CreateOptions, SingleThreaded};

/// The flags `create` and `run` share.
pub const FLAGS: &[Flag] = &[
    Flag::value(
        "bundle",
        Some('b'),
        "path to the root of the bundle directory, defaults to the current directory",
    ),
    Flag::value(
        "console-socket",
        None,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
    ),
    Flag::value(
        "pidfd-socket",
        None,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the init process (not supported)",
    ),
    Flag::value(
        "pid-file",
        None,
        "specify the file to write the process id to",
    ),
    Flag::bool(
        "no-pivot",
        None,
        "do not use pivot root to jail process inside rootfs",
    ),
    Flag::bool(
        "no-new-keyring",
        None,
        "do not create a new session keyring for the container",
    ),
    Flag::value(
        "preserve-fds",
        None,
        "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFlags {
    pub bundle: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

impl CreateFlags {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        Ok(CreateFlags {
            bundle: m.path("bundle"),
            console_socket: m.path("console-socket"),
            pidfd_socket: m.path("pidfd-socket"),
            pid_file: m.path("pid-file"),
            no_pivot: m.flag("no-pivot"),
            no_new_keyring: m.flag("no-new-keyring"),
            preserve_fds: m.number("preserve-fds")?.unwrap_or(0),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct CreateArgs {
    pub id: String,
    pub flags: CreateFlags,
}

impl CreateArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("create", m)?;
        Ok(CreateArgs {
            id,
            flags: CreateFlags::from_matches(m)?,
        })
    }
}

pub fn options(g: &Global, id: &str, f: &CreateFlags) -> anyhow::Result<CreateOptions> {
    if f.pidfd_socket.is_some() {
        anyhow::bail!("--pidfd-socket is not supported by berth-runtime");
    }
    Ok(CreateOptions {
        root: g.root.clone(),
        id: id.to_owned(),
        bundle: f.bundle.clone().unwrap_or_default(),
        console_socket: f.console_socket.clone(),
        pid_file: f.pid_file.clone(),
        no_pivot: f.no_pivot,
        no_new_keyring: f.no_new_keyring,
        preserve_fds: f.preserve_fds,
        listen_fds: super::listen_fds(),
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.rootless,
        keep_pty: false,
    })
}

pub fn run(g: &Global, a: CreateArgs, proof: SingleThreaded) -> anyhow::Result<u8> {
    let opts = options(g, &a.id, &a.flags)?;
    let (c, _) = Container::create(&opts, proof)
        .with_context(|| format!("failed to create container {}", a.id))?;
    for w in &c.warnings {
        g.log.warn(w);
    }
    g.log.debug(&format!(
        "container {} created, init pid {}",
        c.id(),
        c.state.pid
    ));
    Ok(0)
}
