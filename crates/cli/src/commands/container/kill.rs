//! `berth kill [-s SIGNAL] CONTAINER…`.

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal (a name, SIGTERM or TERM, or a number).
    #[arg(short = 's', long, default_value = "SIGKILL")]
    signal: String,
    #[command(flatten)]
    data: DataArgs,
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(args: KillArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let signal = berth_image::spec::parse_signal(&args.signal)?;
    super::each(&args.containers, |c| {
        engine
            .kill(c, &signal)
            .with_context(|| format!("failed to kill container {c}"))
    })?;
    Ok(0)
}
