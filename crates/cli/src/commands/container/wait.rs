//! `berth wait CONTAINER…`: prints each container's exit code once it has exited.

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Containers (names, ids or unique id prefixes).
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn run(args: WaitArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    for c in &args.containers {
        let code = engine
            .wait(c, None)
            .with_context(|| format!("failed to wait for container {c}"))?;
        // an unknown exit code is reported as docker's -1
        crate::commands::image::print(&code.unwrap_or(-1).to_string())?;
    }
    Ok(0)
}
