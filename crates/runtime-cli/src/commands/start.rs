//! `start <id>`.

use crate::Global;
use crate::args::{Matches, UsageError};
use anyhow::Context;

#[derive(Debug, PartialEq, Eq)]
pub struct StartArgs {
    pub id: String,
}

impl StartArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("start", m)?;
        Ok(StartArgs { id })
    }
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
