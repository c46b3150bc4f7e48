//! `berth rm [-f] CONTAINER…` and `berth container prune`: a container's record, its
//! runtime state, its mounted root filesystem, its snapshot and its anonymous volumes.

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    force: bool,
    /// Anonymous volumes are always removed with their container (docker's -v).
    #[arg(short = 'v', long = "volumes")]
    volumes: bool,
    #[command(flatten)]
    data: DataArgs,
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(args: RmArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let _ = args.volumes;
    let mut discarded = false;
    let removed = super::each(&args.containers, |c| {
        // `-f` of a container whose record cannot be read discards it
        discarded |= engine
            .remove_or_discard(c, args.force)
            .with_context(|| format!("failed to remove container {c}"))?;
        Ok(())
    });
    if discarded {
        // what the lost record listed (mount, snapshot, volumes, host ids, network) is
        // unrecorded now: taken away as a killed `run`'s is
        let data = crate::commands::image::DataArgs {
            data: args.data.data.clone(),
        };
        crate::commands::system::collect_killed_runs(&data)
            .context("failed to clean up after the discarded containers")?;
    }
    removed?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask (berth never asks: accepted for docker's scripts).
    #[arg(short = 'f', long)]
    force: bool,
    #[command(flatten)]
    data: DataArgs,
}

/// Remove every exited container; prints their ids.
pub fn prune(args: PruneArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let _ = args.force;
    for id in engine
        .prune()
        .context("failed to remove the stopped containers")?
    {
        crate::commands::image::print(&id)?;
    }
    Ok(0)
}
