//! Container commands: `berth run | create | start | ps | logs | stop | kill | rm | wait |
//! exec | update` and `berth container …` (the same verbs, plus `ls` and `prune`). The lifecycle is
//! `berth-engine`'s; [`setup`] joins it to `berth-image` (image → snapshot → runtime config).
//!
//! Exit statuses follow docker's: `run`, `create`, `start` and `exec` exit 125 when berth
//! fails, 126 when the command cannot be invoked, 127 when it is not found, else with the
//! container's (or the exec'd process's) status; the other commands exit 1 on failure.

pub mod attach;
pub mod detach;
pub mod exec;
pub mod init;
pub mod kill;
pub mod logs;
pub mod port;
pub mod ps;
pub mod rm;
pub mod run;
pub mod setup;
pub mod start;
pub mod stop;
pub mod update;
pub mod wait;

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_engine::{Engine, MonitorCommand};
use clap::{Args, Subcommand};

/// `berth container …`.
#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
enum ContainerCommand {
    /// List containers.
    #[command(alias = "ps", alias = "list")]
    Ls(ps::PsArgs),
    /// Run a command in a new container.
    Run(run::RunArgs),
    /// Create a container (start it with `berth start`); prints its id.
    Create(run::RunArgs),
    /// Start created containers.
    Start(start::StartArgs),
    /// Stop running containers: the stop signal, then SIGKILL after a timeout.
    Stop(stop::StopArgs),
    /// Send a signal to running containers.
    Kill(kill::KillArgs),
    /// Remove containers, their snapshots and anonymous volumes.
    #[command(alias = "remove")]
    Rm(rm::RmArgs),
    /// Show a container's logs.
    Logs(logs::LogsArgs),
    /// Show a container's record as JSON.
    Inspect(InspectArgs),
    /// Remove every stopped container.
    Prune(rm::PruneArgs),
    /// Wait for containers to exit; prints their exit codes.
    Wait(wait::WaitArgs),
    /// List a container's published ports (`80/tcp -> 0.0.0.0:32768`).
    Port(port::PortArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Attach this terminal (or stdio) to a running container.
    Attach(attach::AttachArgs),
    /// Change a container's settings while it runs (--network-bandwidth).
    Update(update::UpdateArgs),
}

/// `berth container inspect CONTAINER…`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

/// Run `berth container …`; the exit status.
/// `warm`: the cgroup warm-up `main` started for `container run`, if it did.
pub fn run(
    args: ContainerArgs,
    warm: Option<berth_engine::cgwarm::WarmUp>,
) -> Result<i32, Failure> {
    match args.command {
        ContainerCommand::Ls(a) => ps::run(a).map_err(Failure::other),
        ContainerCommand::Run(a) => run::run(a, warm),
        ContainerCommand::Create(a) => run::create(a),
        ContainerCommand::Start(a) => start::run(a),
        ContainerCommand::Stop(a) => stop::run(a).map_err(Failure::other),
        ContainerCommand::Kill(a) => kill::run(a).map_err(Failure::other),
        ContainerCommand::Rm(a) => rm::run(a).map_err(Failure::other),
        ContainerCommand::Logs(a) => logs::run(a).map_err(Failure::other),
        ContainerCommand::Inspect(a) => inspect(a).map(|()| 0).map_err(Failure::other),
        ContainerCommand::Prune(a) => rm::prune(a).map_err(Failure::other),
        ContainerCommand::Wait(a) => wait::run(a).map_err(Failure::other),
        ContainerCommand::Port(a) => port::run(a).map_err(Failure::other),
        ContainerCommand::Exec(a) => exec::run(a),
        ContainerCommand::Attach(a) => attach::run(a),
        ContainerCommand::Update(a) => update::run(a).map_err(Failure::other),
    }
}

/// A failed command and the status it exits with.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub code: u8,
}

impl Failure {
    /// A failure of `run`, `create`, `start` or `exec`: docker's 125/126/127.
    pub fn run(error: anyhow::Error) -> Failure {
        let code = error
            .chain()
            .find_map(|c| c.downcast_ref::<berth_engine::EngineError>())
            .map_or(125, berth_engine::EngineError::exit_code);
        Failure {
            error,
            code: u8::try_from(code).unwrap_or(125),
        }
    }

    /// A failure of any other container command: 1.
    pub fn other(error: anyhow::Error) -> Failure {
        Failure { error, code: 1 }
    }
}

/// `ls`-like commands of a resource kept in the data directory (`volume ls`, `network ls`,
/// `network prune`).
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Names only.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Commands over resources named on the command line (`volume inspect`, `network inspect`,
/// `network rm`).
#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Where the engine keeps its state: the data directory (`containers/`, `names/`,
/// `runtime/`, and `rootfs/` and `volumes/` for what `run` sets up).
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Data directory (default: $XDG_DATA_HOME/berth, or /var/lib/berth for root).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        crate::dirs::data_dir(self.data.clone())
    }

    /// The engine over the data directory, its monitor [`monitor_command`], runtimes given
    /// by name looked up on `PATH` (and the sbin directories).
    pub fn engine(&self) -> anyhow::Result<Engine> {
        let dir = self.dir()?;
        let exe = std::env::current_exe().context("failed to find the berth binary")?;
        let engine = Engine::new(&dir, monitor_command(exe))
            .with_context(|| format!("failed to open the container state in {}", dir.display()))?;
        Ok(engine.with_search_path(crate::dirs::search_path()))
    }

    /// The same directory as the image commands see it.
    pub fn image_data(&self) -> super::image::DataArgs {
        super::image::DataArgs {
            data: self.data.clone(),
        }
    }
}

/// The name of the monitor binary installed next to `berth`.
pub const MONITOR_BIN: &str = "berth-monitor";

/// The monitor: `berth-monitor` next to the `berth` binary `exe` when it is there (installed
/// together by `cargo install --path crates/cli`; it links only the engine, so it holds less
/// memory for its container's whole life), else `exe`'s own `__monitor` mode. A
/// `berth-monitor` that someone could have put or changed there who cannot change `berth`
/// itself ([`berth_engine::runtime::trusted_helper`]) is never run.
fn monitor_command(exe: PathBuf) -> MonitorCommand {
    let beside = exe.with_file_name(MONITOR_BIN);
    let trusted = berth_engine::runtime::trusted_helper(&beside, &exe);
    if !trusted && beside.exists() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "warning: not running {}: someone who cannot change berth itself could have changed it (its owner, or others' write permission); berth runs as its own monitor instead\nhint: give it berth's owner and chmod go-w it, or reinstall berth (cargo install --path crates/cli)",
            beside.display()
        );
    }
    if trusted {
        MonitorCommand {
            program: beside,
            args: vec![],
        }
    } else {
        MonitorCommand {
            program: exe,
            args: vec!["__monitor".into()],
        }
    }
}

/// Print `containers` records as a JSON array.
pub fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let engine = args.data.engine()?;
    let mut out = Vec::new();
    for c in &args.containers {
        out.push(inspect_one(&engine, c)?);
    }
    super::image::print(&serde_json::to_string_pretty(&out)?)
}

/// A container's record in docker's `inspect` shape (the fields berth knows), with the
/// runtime config it was created with.
pub fn inspect_one(engine: &Engine, reference: &str) -> anyhow::Result<serde_json::Value> {
    use berth_engine::Status;
    let rec = engine
        .inspect(reference)
        .with_context(|| format!("failed to inspect container {reference}"))?;
    let config: serde_json::Value = std::fs::read(rec.bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(serde_json::json!({
        "Id": rec.id,
        "Name": rec.name,
        "Image": rec.image,
        "Created": rec.created,
        "Path": config["process"]["args"][0],
        "Args": config["process"]["args"].as_array().map(|a| a.iter().skip(1).cloned().collect::<Vec<_>>()),
        "State": {
            "Status": rec.status.as_str(),
            "Running": rec.status == Status::Running,
            "ExitCode": rec.exit_code,
            "OOMKilled": rec.oom_killed,
            "Pid": rec.init_pid,
            "StartedAt": rec.started,
            "FinishedAt": rec.finished,
            "Note": rec.note,
        },
        "LogPath": rec.log_path,
        "Runtime": rec.runtime,
        "AutoRemove": rec.auto_remove,
        "StopSignal": rec.stop_signal,
        "StopTimeout": rec.stop_timeout,
        "Rootfs": rec.attachments.rootfs_mount,
        "Snapshot": rec.attachments.snapshot,
        "Volumes": rec.attachments.volumes,
        "Mounts": mounts_of(&rec, &config),
        "HostIds": rec.attachments.host_ids,
        "NetworkSettings": rec.attachments.network.as_ref().map(|n| serde_json::json!({
            "SandboxKey": (!n.released).then_some(&n.netns),
            "Networks": n.networks.iter().map(|(name, ifname)| (name.clone(), ifname.clone()))
                .chain(n.pasta.as_ref().map(|_| (berth_engine::pasta::NETWORK.to_owned(), berth_engine::pasta::IFNAME.to_owned())))
                .map(|(name, ifname)| {
                    let on = |v4: bool| n.addresses.iter()
                        .find(|(a, ip)| *a == name && ip.is_ipv4() == v4)
                        .map(|(_, ip)| ip.to_string());
                    let mac = n.macs.iter().find(|(a, _)| *a == name).map(|(_, m)| m.clone());
                    let settings = serde_json::json!({
                        "Interface": ifname,
                        "IPAddress": on(true),
                        "GlobalIPv6Address": on(false),
                        "MacAddress": mac,
                        "Aliases": (name != berth_engine::network::DEFAULT_NETWORK
                            && !n.aliases.is_empty())
                            .then_some(&n.aliases),
                    });
                    (name, settings)
                }).collect::<serde_json::Map<String, serde_json::Value>>(),
            "Pasta": n.pasta,
            "Ports": n.published,
            "Bandwidth": n.bandwidth,
        })),
        "Bundle": rec.bundle,
        // the SBOM the trust gate verified (requireSbom), kept for `berth watch`
        "Sbom": rec.sbom.as_ref().map(|s| serde_json::json!({
            "Manifest": s.manifest,
            "ArtifactType": s.artifact_type,
            "Signer": s.signer,
            "Sha256": s.sha256,
            "Path": engine.sbom_path(&rec.id),
        })),
        "Spec": config,
    }))
}

/// docker's `Mounts`: the config's bind mounts, those of named volumes (bound from the
/// volume, or id-mapped from `volume-mounts/ID/N`) as `volume` with their name.
fn mounts_of(rec: &berth_engine::Record, config: &serde_json::Value) -> Vec<serde_json::Value> {
    let named = |src: &Path| -> Option<String> {
        if let Some(i) = rec.attachments.mounts.iter().position(|m| m == src) {
            return rec.attachments.named_volumes.get(i).cloned();
        }
        // `named-volumes/NAME/_data` (no user namespace of its own)
        let parent = src.parent()?;
        (src.file_name()? == "_data" && parent.parent()?.file_name()? == "named-volumes")
            .then(|| parent.file_name().map(|n| n.to_string_lossy().into_owned()))
            .flatten()
    };
    config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "bind")
        .filter_map(|m| {
            let src = Path::new(m["source"].as_str()?);
            // berth's own files (the container's /etc files, the init), as docker omits its
            if m["destination"] == "/sbin/docker-init"
                || (src.parent().and_then(Path::file_name) == Some(rec.id.as_ref())
                    && src.parent()?.parent().and_then(Path::file_name) == Some("etc".as_ref()))
            {
                return None;
            }
            let opts: Vec<&str> = m["options"]
                .as_array()
                .map(|o| o.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let rw = !opts.contains(&"ro");
            let dest = &m["destination"];
            Some(match named(src) {
                Some(name) => serde_json::json!({
                    "Type": "volume", "Name": name, "Source": src,
                    "Destination": dest, "Driver": "local", "RW": rw,
                }),
                None => serde_json::json!({
                    "Type": "bind", "Source": src, "Destination": dest, "RW": rw,
                }),
            })
        })
        .collect()
}

/// Run a per-container operation on each of `refs`, printing each reference that succeeded
/// (as docker does); the first failure is returned after all were tried.
pub fn each(refs: &[String], mut op: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut first: Option<anyhow::Error> = None;
    for r in refs {
        match op(r) {
            Ok(()) => super::image::print(r)?,
            Err(e) => {
                if first.is_some() {
                    use std::io::Write;
                    let _ = writeln!(std::io::stderr().lock(), "error: {e:#}");
                } else {
                    first = Some(e);
                }
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Write one log entry to stdout or stderr, as the container wrote it.
pub fn relay(stream: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if stream == "stderr" {
        let mut e = std::io::stderr().lock();
        e.write_all(text.as_bytes())?;
        e.flush()
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(text.as_bytes())?;
        o.flush()
    }
}
