//! `berth volume create | ls | inspect | rm | prune`: named volumes in berth's data directory
//! (`berth_engine::volumes`), as `docker volume` manages them. `-v NAME:DST` on `run` makes a
//! missing one too.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::container::{DataArgs, LsArgs, NamesArgs};
use berth_engine::volumes::Volumes;

/// `berth volume …`.
#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
enum VolumeCommand {
    /// Create a named volume (nothing happens if it exists); prints its name.
    Create(CreateArgs),
    /// List the named volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON (docker's fields).
    Inspect(NamesArgs),
    /// Remove volumes and their data (none in use by a container).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every volume no container uses.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The volume's name ([a-zA-Z0-9][a-zA-Z0-9_.-]+).
    name: String,
    /// Only `local`.
    #[arg(long, short, default_value = "local")]
    driver: String,
    /// A label, KEY=VALUE (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Ignored (docker's flag: a volume in use is never removed).
    #[arg(long, short)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask (berth never asks).
    #[arg(long, short)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: VolumeArgs) -> anyhow::Result<()> {
    match args.command {
        VolumeCommand::Create(a) => create(a),
        VolumeCommand::Ls(a) => ls(a),
        VolumeCommand::Inspect(a) => inspect(a),
        VolumeCommand::Rm(a) => rm(a),
        VolumeCommand::Prune(a) => prune(a),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    if args.driver != "local" {
        anyhow::bail!(
            "--driver {}: only local volumes can be created",
            args.driver
        );
    }
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let store = Volumes::new(&args.data.dir()?);
    let (v, _) = store
        .create(&args.name, &labels)
        .with_context(|| format!("failed to create volume {}", args.name))?;
    super::image::print(&v.name)
}

fn ls(args: LsArgs) -> anyhow::Result<()> {
    let store = Volumes::new(&args.data.dir()?);
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        writeln!(out, "{:<12}VOLUME NAME", "DRIVER")?;
    }
    for v in store.list()? {
        if args.quiet {
            writeln!(out, "{}", v.name)?;
        } else {
            writeln!(out, "{:<12}{}", v.driver, v.name)?;
        }
    }
    Ok(())
}

fn inspect(args: NamesArgs) -> anyhow::Result<()> {
    let store = Volumes::new(&args.data.dir()?);
    let mut out = Vec::new();
    for name in &args.names {
        match store.get(name)? {
            Some(v) => out.push(v),
            None => anyhow::bail!("no such volume: {name}"),
        }
    }
    super::image::print(&serde_json::to_string_pretty(&out)?)
}

/// The volumes each container (any status) uses: name → container names.
fn users(engine: &berth_engine::Engine) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut by_volume: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // a container whose record cannot be read may use one: refused until it is discarded
    let (records, corrupt) = engine.list_checked(true)?;
    if let Some(e) = corrupt.into_iter().next() {
        return Err(anyhow::Error::new(e).context("cannot tell which containers use volumes"));
    }
    for r in records {
        let names: HashSet<&String> = r.attachments.named_volumes.iter().collect();
        for v in names {
            by_volume.entry(v.clone()).or_default().push(r.name.clone());
        }
    }
    Ok(by_volume)
}

fn rm(args: RmArgs) -> anyhow::Result<()> {
    let dir = args.data.dir()?;
    // under the lock `run` holds from set-up to record: no run is between binding a volume
    // and recording that it uses it
    let _lock = super::container::setup::lock_host_ids(&dir)?;
    let engine = args.data.engine()?;
    let store = Volumes::new(&dir);
    let users = users(&engine)?;
    super::container::each(&args.names, |name| {
        if let Some(c) = users.get(name) {
            anyhow::bail!(
                "volume {name} is in use by container(s) {}: remove them first",
                c.join(", ")
            );
        }
        store
            .remove(name)
            .with_context(|| format!("failed to remove volume {name}"))
    })
}

fn prune(args: PruneArgs) -> anyhow::Result<()> {
    let dir = args.data.dir()?;
    let _lock = super::container::setup::lock_host_ids(&dir)?;
    let engine = args.data.engine()?;
    let store = Volumes::new(&dir);
    let users = users(&engine)?;
    for v in store.list()? {
        if !users.contains_key(&v.name) {
            store
                .remove(&v.name)
                .with_context(|| format!("failed to remove volume {}", v.name))?;
            super::image::print(&v.name)?;
        }
    }
    Ok(())
}
