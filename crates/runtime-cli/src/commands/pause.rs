//! `pause <id>` / `resume <id>` (the freezer).

use anyhow::Context;
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct PauseArgs {
    pub id: String,
}

pub fn run(g: &Global, a: PauseArgs, pause: bool) -> anyhow::Result<u8> {
    let mut c = super::load(g, &a.id)?;
    if pause {
        c.pause()
            .with_context(|| format!("failed to pause container {}", a.id))?;
    } else {
        c.resume()
            .with_context(|| format!("failed to resume container {}", a.id))?;
    }
    Ok(0)
}
