//! `berth attach CONTAINER`: this command's stdio to a running container (its terminal for a
//! `-t` container, raw while attached; its stdin for a `-i` one) until the container's output
//! ends; exits with the container's status.

use anyhow::Context;
use berth_engine::AttachStdio;
use clap::Args;

use super::{DataArgs, Failure};

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not feed this command's stdin to the container.
    #[arg(long)]
    no_stdin: bool,
    /// The keys that detach this terminal, leaving the container running (docker's syntax
    /// and default: ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// The container (name, id or unique id prefix).
    container: String,
}

pub fn run(args: AttachArgs) -> Result<i32, Failure> {
    attach(&args).map_err(Failure::run)
}

fn attach(args: &AttachArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let io = AttachStdio::inherit(!args.no_stdin).context("duplicating this command's stdio")?;
    let keys = super::detach::keys(args.detach_keys.as_deref())?;
    let how = engine
        .attach_with(&args.container, &io, Some(&keys))
        .with_context(|| format!("failed to attach to container {}", args.container))?;
    Ok(super::detach::status(how))
}
