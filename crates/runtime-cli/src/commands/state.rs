//! `state <id>`: runc's indented JSON.

use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct StateArgs {
    pub id: String,
}

pub fn run(g: &Global, a: StateArgs) -> anyhow::Result<u8> {
    let c = super::load(g, &a.id)?;
    let text = serde_json::to_string_pretty(&c.state_json())?;
    super::print(&text);
    Ok(0)
}
