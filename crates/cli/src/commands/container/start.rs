//! `berth start [-a] CONTAINER…`.

use anyhow::Context;
use clap::Args;

use super::{DataArgs, Failure};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Relay the container's output and exit with its status (one container only).
    #[arg(short = 'a', long)]
    attach: bool,
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
