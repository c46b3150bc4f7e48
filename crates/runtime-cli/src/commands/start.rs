//! `start <id>`.

use anyhow::Context;
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct StartArgs {
    pub id: String,
}

pub fn run(g: &Global, a: StartArgs) -> anyhow::Result<u8> {
    let mut c = super::load(g, &a.id)?;
    let warnings = c
        .start()
        .with_context(|| format!("failed to start container {}", a.id))?;
    for w in warnings {
        g.log.warn(&crate::log::chain(&anyhow::Error::new(w)));
    }
    Ok(0)
}
