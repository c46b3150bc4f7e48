//! `berth stop [-t SECONDS] CONTAINER…`.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short = 't', long = "time", alias = "timeout", value_name = "SECONDS")]
    time: Option<u64>,
    #[command(flatten)]
    data: DataArgs,
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(args: StopArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    super::each(&args.containers, |c| {
        let rec = engine
            .inspect(c)
            .with_context(|| format!("failed to stop container {c}"))?;
        let secs = args.time.or(rec.stop_timeout).unwrap_or(10);
        engine
            .stop(&rec.id, Duration::from_secs(secs))
            .map(drop)
            .with_context(|| format!("failed to stop container {c}"))
    })?;
    Ok(0)
}
