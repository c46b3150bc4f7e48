//! `create <id>`.

use std::path::PathBuf;

use anyhow::Context;
use berth_container::{Container, CreateOptions};
use clap::Args;

use crate::Global;

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the init process (not supported)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    #[command(flatten)]
    pub flags: CreateFlags,
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

pub fn run(g: &Global, a: CreateArgs) -> anyhow::Result<u8> {
    let opts = options(g, &a.id, &a.flags)?;
    let (c, _) =
        Container::create(&opts).with_context(|| format!("failed to create container {}", a.id))?;
    g.log.debug(&format!(
        "container {} created, init pid {}",
        c.id(),
        c.state.pid
    ));
    Ok(0)
}
