//! `berth start [-a [-i] [--detach-keys KEYS]] CONTAINER…`.

use anyhow::Context;
use clap::Args;

use super::{DataArgs, Failure};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Relay the container's output and exit with its status (one container only).
    #[arg(short = 'a', long)]
    attach: bool,
    /// With -a: this command's stdin feeds the container's (through its monitor; a `-t`
    /// container's terminal raw while attached).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// The keys that detach this terminal from `start -a -i`, leaving the container running
    /// (docker's syntax and default: ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(args: StartArgs) -> Result<i32, Failure> {
    let engine = args.data.engine().map_err(Failure::run)?;
    if args.attach {
        let [c] = args.containers.as_slice() else {
            return Err(Failure::run(anyhow::anyhow!(
                "start -a takes one container; give one or start without -a"
            )));
        };
        if args.interactive {
            let keys = super::detach::keys(args.detach_keys.as_deref()).map_err(Failure::run)?;
            let io = berth_engine::AttachStdio::inherit(true)
                .context("duplicating this command's stdio")
                .map_err(Failure::run)?;
            let how = engine
                .start_and_attach(c, &io, Some(&keys))
                .with_context(|| format!("failed to start container {c}"))
                .map_err(Failure::run)?;
            return Ok(super::detach::status(how));
        }
        let rec = engine
            .start(c)
            .with_context(|| format!("failed to start container {c}"))
            .map_err(Failure::run)?;
        return super::run::attach(&engine, &rec.id);
    }
    super::each(&args.containers, |c| {
        engine
            .start(c)
            .map(drop)
            .with_context(|| format!("failed to start container {c}"))
    })
    .map_err(Failure::run)?;
    Ok(0)
}
