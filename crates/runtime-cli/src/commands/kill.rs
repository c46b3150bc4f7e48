//! `kill <id> [signal]` (default SIGTERM; names or numbers), `--all`.

use anyhow::Context;
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// send the specified signal to all processes inside the container
    #[arg(short = 'a', long)]
    pub all: bool,
}

pub fn run(g: &Global, a: KillArgs) -> anyhow::Result<u8> {
    let sig = berth_container::signal::parse_signal(&a.signal)
        .ok_or_else(|| anyhow::anyhow!("unknown signal {:?}", a.signal))?;
    let c = super::load(g, &a.id)?;
    c.kill(sig, a.all)
        .with_context(|| format!("failed to kill container {}", a.id))?;
    Ok(0)
}
