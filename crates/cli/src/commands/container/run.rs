//! `berth run IMAGE [CMD…]` and `berth create IMAGE [CMD…]`, with docker's flags.

use std::path::PathBuf;

use anyhow::Context;
use berth_engine::{AttachStdio, Engine, LogOptions};
use clap::Args;

use super::{DataArgs, Failure, setup};
use crate::commands::image::RegistryFlags;

/// The flags of `run` and `create` (docker's names and meanings).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container (its snapshot and anonymous volumes too) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// The container's name (default: berth_ and the id's first 12 digits).
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take this shell's value).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount a host path (SRC:DST[:ro|rw]), or an anonymous volume (DST).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs (DST[:OPTIONS]).
    #[arg(long, value_name = "DST[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The user (name or uid, optionally :group).
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Replace the image's entrypoint ("" clears it).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// The container's hostname (default: the id's first 12 digits).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Publish a container's port on the host ([IP:]HOST:CONTAINER[/tcp|udp]; needs a network).
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:]HOST:CONTAINER[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish every port the image exposes (ExposedPorts) on a free host port of the
    /// ephemeral range (see `berth port NAME`).
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// The container's address on its (first) network, from the network's subnet.
    #[arg(long = "ip", value_name = "ADDRESS")]
    pub ip: Option<std::net::IpAddr>,
    /// The container's IPv6 address on its (first) network, a dual-stack one (`network
    /// create --ipv6`), from the network's IPv6 subnet.
    #[arg(long = "ip6", value_name = "ADDRESS")]
    pub ip6: Option<std::net::Ipv6Addr>,
    /// The MAC address of the container's interface on its (first) network (a unicast one,
    /// such as 02:42:ac:11:00:02).
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// Another name the container answers to on its user-defined networks (in the other
    /// containers' /etc/hosts there, beside its --name); repeatable.
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Cap the container's network traffic: egress=RATE,ingress=RATE[,burst=SIZE] (10mbit, 1M).
    #[arg(long = "network-bandwidth", value_name = "egress=RATE,ingress=RATE")]
    pub network_bandwidth: Option<String>,
    /// An annotation of the container's runtime config (KEY=VALUE); Kubernetes'
    /// kubernetes.io/ingress-bandwidth and kubernetes.io/egress-bandwidth shape its network
    /// as --network-bandwidth does (which wins where both set a direction).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Add a line to the container's /etc/hosts (NAME:IP).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// A nameserver for the container's /etc/resolv.conf (replaces the host's).
    #[arg(long, value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// A search domain for /etc/resolv.conf (`.` for none).
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// A resolver option for /etc/resolv.conf (ndots:2).
    #[arg(long = "dns-option", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Run a small init as the container's PID 1 that forwards signals and reaps zombies
    /// (a static tini or catatonit found on the host, mounted at /sbin/docker-init).
    #[arg(long)]
    pub init: bool,
    /// The init binary for --init (implies --init; default: docker-init, tini-static or
    /// catatonit on the search path).
    #[arg(long, value_name = "PATH")]
    pub init_path: Option<PathBuf>,
    /// Memory limit (64m, 1g).
    #[arg(short = 'm', long, value_parser = parse_size)]
    pub memory: Option<i64>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, value_parser = parse_size_or_unlimited, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// CPUs (1.5: one and a half CPUs' time).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10 to 1000).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Limit read rate from a device (PATH:RATE, e.g. /dev/sda:1mb).
    #[arg(long, value_name = "PATH:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate to a device (PATH:RATE).
    #[arg(long, value_name = "PATH:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit read operations per second from a device (PATH:N).
    #[arg(long, value_name = "PATH:N")]
    pub device_read_iops: Vec<String>,
    /// Limit write operations per second to a device (PATH:N).
    #[arg(long, value_name = "PATH:N")]
    pub device_write_iops: Vec<String>,
    /// Add a capability (NET_ADMIN, ALL).
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (NET_RAW, ALL).
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// seccomp=PROFILE.json|unconfined, no-new-privileges[=true|false].
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// The user namespace: auto (a range of /etc/subuid for each container) or host.
    #[arg(long, value_parser = ["auto", "host", ""], default_value = "auto")]
    pub userns: String,
    /// Every capability, no seccomp, all devices: opens the container up entirely.
    #[arg(long)]
    pub privileged: bool,
    /// When to pull the image: always, missing (default) or never.
    #[arg(long, value_parser = ["always", "missing", "never"], default_value = "missing")]
    pub pull: String,
    /// The platform of a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = crate::commands::image::parse_platform)]
    pub platform: Option<berth_oci::Platform>,
    /// The signal `stop` sends first (default: the image's, else SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// The OCI runtime: a path, or a name on PATH (berth-runtime, runc, crun).
    #[arg(long)]
    pub runtime: Option<String>,
    /// The cgroup the container's cgroup is made under (in every hierarchy; default
    /// /berth; rootless: none, the runtime's rootless cgroup manager decides).
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// The network: bridge (the default network berth0; the default as root), pasta
    /// (rootless berth's default), none (loopback only), host, a network's name,
    /// container:NAME|ID or ns:PATH.
    #[arg(long, alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,
    /// Keep stdin open: this command's stdin feeds the container's (attached in the
    /// foreground; `-d -i` keeps it open for a later `berth attach`).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The keys that detach this terminal from an `-i` container, leaving it running
    /// (docker's syntax and default: ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// No pull progress on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub data: DataArgs,
    /// The image (a name in the local store, pulled when missing).
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (default: the image's).
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

fn parse_size(s: &str) -> Result<i64, String> {
    berth_image::spec::parse_bytes(s).map_err(|e| e.to_string())
}

fn parse_size_or_unlimited(s: &str) -> Result<i64, String> {
    if s == "-1" { Ok(-1) } else { parse_size(s) }
}

/// `berth run`: create and start; in the foreground, relay the container's output and exit
/// with its status; with `-d`, print its id.
/// `warm`: the cgroup warm-up `main` started before parsing the flags, if it did.
pub fn run(args: RunArgs, warm: Option<berth_engine::cgwarm::WarmUp>) -> Result<i32, Failure> {
    // the runtime's cgroup writes come ~10 ms from now (later with a network): the
    // kernel's wait for them runs beside the set-up, kept up until the container started
    // (berth_engine::warm_up_cgroup_lock)
    let warm = warm.unwrap_or_else(berth_engine::warm_up_cgroup_lock);
    let engine = args.data.engine().map_err(Failure::run)?;
    let detach = args.detach;
    // checked before anything is set up
    let keys = super::detach::keys(args.detach_keys.as_deref()).map_err(Failure::run)?;
    // a foreground run without a terminal or stdin (nobody attaches): its monitor is
    // started first, so that its exec and start-up overlap the set-up below; it waits for
    // the container on a pipe (and exits when this command fails or is killed first)
    let early = if detach || args.tty || args.interactive {
        None
    } else {
        let id = berth_engine::new_id().map_err(|e| Failure::run(e.into()))?;
        engine.spawn_monitor(&id).ok()
    };
    let early_id = early.as_ref().map(|m| m.id().to_owned());
    let (opts, lock) = setup::create_options(&engine, &args, early_id.as_deref())
        .map_err(Failure::run)?
        .into_parts();
    let attachments = opts.attachments.clone();
    if detach {
        let rec = engine.run_detached(opts).map_err(|e| {
            let _ = attachments.teardown();
            Failure::run(anyhow::Error::new(e).context("failed to run the container"))
        })?;
        drop((lock, warm));
        super::super::image::print(&rec.id).map_err(Failure::run)?;
        return Ok(0);
    }
    // With --rm the monitor removes the container (also when this command is killed); the
    // log is read through a descriptor opened before the start, which outlives its removal.
    if !(args.tty || args.interactive) {
        // nobody attaches: the monitor starts the container right after creating it
        let created = match early {
            Some(m) => engine.create_started_by(opts, m),
            None => engine.create_started(opts),
        }
        .map_err(|e| {
            let _ = attachments.teardown();
            Failure::run(anyhow::Error::new(e).context("failed to start the container"))
        })?;
        drop((lock, warm));
        return relay_until_exit(&engine, created);
    }
    let created = engine.create_attached(opts).map_err(|e| {
        let _ = attachments.teardown();
        Failure::run(anyhow::Error::new(e).context("failed to create the container"))
    })?;
    // (the runtime's cgroup writes are in `create`)
    drop((lock, warm));
    // -t, -i: this command's stdio attached through the monitor (a raw terminal for -t,
    // its size following SIGWINCH; stdin fed for -i) before the start
    let io = AttachStdio::inherit(args.interactive)
        .context("duplicating this command's stdio")
        .map_err(Failure::run)?;
    let id = created.record.id.clone();
    let how = engine
        .start_attached_with(created, &io, Some(&keys))
        .with_context(|| format!("failed to run container {id}"))
        .map_err(Failure::run)?;
    Ok(super::detach::status(how))
}

/// Relay a container's log as it grows until its monitor reports the exit (the monitor
/// writes the last of the log before it reports). Event-driven: the monitor reports each
/// growth of the log on its report pipe, which a waiting thread reads and turns into a wake
/// of an eventfd the loop sleeps on (in `poll`), as it does the exit; no timer, and no
/// inotify watch (closing one waits for an SRCU grace period: milliseconds at every exit).
/// The exit status (255 when unknown).
fn relay_until_exit(engine: &Engine, mut created: berth_engine::Created) -> Result<i32, Failure> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let id = created.record.id.clone();
    let log = created.record.log_path.clone();
    let watch = LogWatch::new();
    // opened before the monitor had the container: an --rm container may be gone already
    let mut file = created
        .log
        .take()
        .or_else(|| std::fs::File::open(&log).ok());
    let exited = AtomicBool::new(false);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let r = engine.wait_created_with(created, || watch.wake());
            exited.store(true, Ordering::Release);
            watch.wake();
            r
        });
        let mut offset = 0u64;
        loop {
            let done = exited.load(Ordering::Acquire);
            let mut new = Vec::new();
            let mut switched = false;
            if let Some(f) = file.as_ref() {
                offset = read_at(f, offset, &mut new).unwrap_or(offset);
                if new.is_empty() && replaced(f, &log) {
                    // rotated: this file is drained, the path names the new one
                    file = std::fs::File::open(&log).ok();
                    offset = 0;
                    switched = true;
                }
            }
            for e in &new {
                super::relay(&e.stream, &e.log)
                    .with_context(|| format!("failed to relay the output of container {id}"))
                    .map_err(Failure::run)?;
            }
            if done && new.is_empty() && !switched {
                break;
            }
            if !done && new.is_empty() && !switched {
                watch.wait();
            }
        }
        let code = waiter
            .join()
            .map_err(|_| Failure::run(anyhow::anyhow!("the wait for container {id} panicked")))?
            .with_context(|| format!("failed to wait for container {id}"))
            .map_err(Failure::run)?;
        Ok(code.unwrap_or(255))
    })
}

/// What a foreground run sleeps on between reads of the log: an eventfd the waiting thread
/// signals when the monitor reports that the log grew, and when it reports the exit.
/// Without an eventfd (none left) it falls back to looking every 10 ms.
struct LogWatch {
    wake: Option<std::os::fd::OwnedFd>,
}

impl LogWatch {
    fn new() -> LogWatch {
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .ok();
        LogWatch { wake }
    }

    /// Wake [`LogWatch::wait`] (the log grew, or the exit was reported).
    fn wake(&self) {
        if let Some(e) = &self.wake {
            let _ = rustix::io::write(e, &1u64.to_ne_bytes());
        }
    }

    /// Sleep until woken since the last wait (a wake before this call returns at once, so
    /// none is lost; spurious wakeups are fine: the caller reads again).
    fn wait(&self) {
        use rustix::event::{PollFd, PollFlags, poll};
        let Some(wake) = &self.wake else {
            pause();
            return;
        };
        let mut fds = [PollFd::new(wake, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => pause(),
        }
        // reset the count: the next wait sleeps until the next wake
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(wake, &mut buf);
    }
}

/// The complete entries of `f` from `offset`; the offset after them.
fn read_at(
    f: &std::fs::File,
    offset: u64,
    out: &mut Vec<berth_engine::logs::Entry>,
) -> std::io::Result<u64> {
    use std::io::Seek;
    let mut c = f.try_clone()?;
    c.seek(std::io::SeekFrom::Start(offset))?;
    berth_engine::logs::read_from(c, out)
}

/// Whether `path` now names another file than `f` (the log was rotated); `false` when it
/// names none (an `--rm` container's directory is removed).
fn replaced(f: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
        _ => false,
    }
}

/// How often a foreground run looks at the log when it cannot be woken (no eventfd).
#[allow(
    clippy::disallowed_methods,
    reason = "polling a file another process appends to, not a test"
)]
fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(10));
}

/// Relay a started container's output until it exits; its exit status (255 when unknown).
pub fn attach(engine: &Engine, id: &str) -> Result<i32, Failure> {
    let opts = LogOptions {
        follow: true,
        tail: None,
        timestamps: false,
    };
    engine
        .logs(id, opts, super::relay)
        .with_context(|| format!("failed to relay the output of container {id}"))
        .map_err(Failure::run)?;
    let code = engine
        .wait(id, None)
        .with_context(|| format!("failed to wait for container {id}"))
        .map_err(Failure::run)?;
    Ok(code.unwrap_or(255))
}

/// `berth create`: prints the new container's id.
pub fn create(args: RunArgs) -> Result<i32, Failure> {
    let engine = args.data.engine().map_err(Failure::run)?;
    let (opts, lock) = setup::create_options(&engine, &args, None)
        .map_err(Failure::run)?
        .into_parts();
    let attachments = opts.attachments.clone();
    let rec = engine.create(opts).map_err(|e| {
        let _ = attachments.teardown();
        Failure::run(anyhow::Error::new(e).context("failed to create the container"))
    })?;
    drop(lock);
    super::super::image::print(&rec.id).map_err(Failure::run)?;
    Ok(0)
}
