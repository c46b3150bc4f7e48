//! `berth logs [-f] [--tail N] [-t] CONTAINER`: the container's stdout to stdout and its
//! stderr to stderr.

use anyhow::Context;
use berth_engine::LogOptions;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following the log until the container exits.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines (`all`: every line).
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    tail: String,
    /// Prefix each line with its time (RFC 3339, nanoseconds).
    #[arg(short = 't', long)]
    timestamps: bool,
    #[command(flatten)]
    data: DataArgs,
    /// The container (name, id or unique id prefix).
    container: String,
}

pub fn run(args: LogsArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .with_context(|| format!("--tail {n}: give a number of lines or `all`"))?,
        ),
    };
    let opts = LogOptions {
        follow: args.follow,
        tail,
        timestamps: args.timestamps,
    };
    engine
        .logs(&args.container, opts, super::relay)
        .with_context(|| format!("failed to read the logs of container {}", args.container))?;
    Ok(0)
}
