//! `kill <id> [signal]` (default SIGTERM; names or numbers), `--all`.

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;

pub const FLAGS: &[Flag] = &[Flag::bool(
    "all",
    Some('a'),
    "send the specified signal to all processes inside the container",
)];

#[derive(Debug, PartialEq, Eq)]
pub struct KillArgs {
    pub id: String,
    pub signal: String,
    pub all: bool,
}

impl KillArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let mut args = m.positionals("kill", 1, 2)?.into_iter();
        let id = args.next().unwrap_or_default();
        Ok(KillArgs {
            id,
            signal: args.next().unwrap_or_else(|| "SIGTERM".to_owned()),
            all: m.flag("all"),
        })
    }
}

pub fn run(g: &Global, a: KillArgs) -> anyhow::Result<u8> {
    let sig = berth_container::signal::parse_signal(&a.signal)
        .ok_or_else(|| anyhow::anyhow!("unknown signal {:?}", a.signal))?;
    let c = super::load(g, &a.id)?;
    c.kill(sig, a.all)
        .with_context(|| format!("failed to kill container {}", a.id))?;
    Ok(0)
}
