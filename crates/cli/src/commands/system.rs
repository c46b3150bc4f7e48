//! `berth system df` (what the local store and the snapshots take, and what is reclaimable)
//! and `berth system prune` (collect the snapshots no image or container references, then the
//! blobs no image references).

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::image::DataArgs;
use crate::duration;

/// `berth system …`.
#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    command: SystemCommand,
}

#[derive(Debug, Subcommand)]
enum SystemCommand {
    /// Show the space images and snapshots take and how much is reclaimable.
    Df(DfArgs),
    /// Remove snapshots no image or container references, then unreferenced blobs.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// One line per snapshot too.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep unreferenced blobs younger than this (a pull may be about to use them). DURATION:
    /// seconds, or 90s, 15m, 2h, 1h30m, 2d. [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    grace: Option<Duration>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: SystemArgs) -> anyhow::Result<()> {
    match args.command {
        SystemCommand::Df(a) => df(a),
        SystemCommand::Prune(a) => prune(a),
    }
}

fn df(args: DfArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let images = store.images()?;
    let blobs = store.prune(berth_store::PruneOptions {
        dry_run: true,
        grace: Duration::ZERO,
    })?;
    let mut out = format!(
        "TYPE        TOTAL  SIZE          RECLAIMABLE\nimages      {:<6} {:<13} {} ({} blobs)\n",
        images.len(),
        "-",
        blobs.bytes_freed(),
        blobs.removed_blobs.len()
    );
    let usage = match args.data.existing_snapshots()? {
        Some(snap) => {
            berth_image::rootfs::disk_usage(&snap).context("failed to measure the snapshots")?
        }
        None => Vec::new(),
    };
    let total: u64 = usage.iter().map(|u| u.size).sum();
    let free: u64 = usage.iter().filter(|u| !u.kept).map(|u| u.size).sum();
    out.push_str(&format!(
        "snapshots   {:<6} {:<13} {} ({} snapshots)",
        usage.len(),
        total,
        free,
        usage.iter().filter(|u| !u.kept).count()
    ));
    if args.verbose {
        for u in &usage {
            out.push_str(&format!(
                "\n{} {} {} {} {}",
                u.key,
                u.kind,
                u.size,
                if u.kept { "kept" } else { "reclaimable" },
                u.referenced_by.join(",")
            ));
        }
    }
    super::image::print(&out)
}

fn prune(args: PruneArgs) -> anyhow::Result<()> {
    let killed = collect_killed_runs(&args.data)?;
    let store = args.data.open()?;
    let mut out = super::image::prune::collect_snapshots(&store, &args.data)?;
    if killed > 0 {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "cleaned up after {killed} container(s) whose run was killed during set-up"
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let report = store.prune(berth_store::PruneOptions {
        dry_run: false,
        grace: args.grace.unwrap_or(berth_store::DEFAULT_GRACE),
    })?;
    out.push_str(&format!(
        "removed {} blobs, {} bytes",
        report.removed_blobs.len(),
        report.bytes_freed()
    ));
    super::image::print(&out)
}

/// Undo what containers whose `run` was killed before their record existed left behind
/// (mounts, snapshots, volumes, host ids, networks: `setup::collect_killed_runs`), under the
/// lock every `run` holds until its record exists.
pub(crate) fn collect_killed_runs(data: &DataArgs) -> anyhow::Result<usize> {
    let containers = super::container::DataArgs {
        data: data.data.clone(),
    };
    let dir = containers.dir()?;
    if !dir.is_dir() {
        return Ok(0);
    }
    let _lock = super::container::setup::lock_host_ids(&dir)?;
    let engine = containers.engine()?;
    // every container on disk, its record readable or not
    let live: std::collections::HashSet<String> = engine.ids()?.into_iter().collect();
    let snap = data.snapshots()?;
    super::container::setup::collect_killed_runs(&dir, &snap, &live)
}
