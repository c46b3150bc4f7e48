//! `state <id>`: runc's indented JSON.

use crate::Global;
use crate::args::{Matches, UsageError};

#[derive(Debug, PartialEq, Eq)]
pub struct StateArgs {
    pub id: String,
}

impl StateArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("state", m)?;
        Ok(StateArgs { id })
    }
}

pub fn run(g: &Global, a: StateArgs) -> anyhow::Result<u8> {
    let c = super::load(g, &a.id)?;
    let text = serde_json::to_string_pretty(&c.state_json())?;
    super::print(&text);
    Ok(0)
}
