//! `pause <id>` / `resume <id>` (the freezer).

use crate::Global;
use crate::args::{Matches, UsageError};
use anyhow::Context;

#[derive(Debug, PartialEq, Eq)]
pub struct PauseArgs {
    pub id: String,
}

impl PauseArgs {
    /// For `pause` and `resume` (`verb`).
    pub fn from_matches(verb: &str, m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>(verb, m)?;
        Ok(PauseArgs { id })
    }
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
