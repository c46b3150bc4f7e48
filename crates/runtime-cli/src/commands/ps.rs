//! `ps <id> [ps options]`: the host's `ps` filtered to the container's pids (table), or
//! the pid list (json), as runc.

use std::process::Command;

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;

pub const FLAGS: &[Flag] = &[Flag::value(
    "format",
    Some('f'),
    "select one of: table or json (default: \"table\")",
)];

#[derive(Debug, PartialEq, Eq)]
pub struct PsArgs {
    pub format: String,
    pub id: String,
    /// options passed to ps (default -ef)
    pub ps_args: Vec<String>,
}

impl PsArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let mut args = m.positionals("ps", 1, usize::MAX)?.into_iter();
        let id = args.next().unwrap_or_default();
        Ok(PsArgs {
            format: m.string("format")?.unwrap_or_else(|| "table".to_owned()),
            id,
            ps_args: args.collect(),
        })
    }
}

pub fn run(g: &Global, a: PsArgs) -> anyhow::Result<u8> {
    let c = super::load(g, &a.id)?;
    let pids = c
        .pids()
        .with_context(|| format!("failed to list the processes of container {}", a.id))?;
    match a.format.as_str() {
        "json" => {
            super::print(&format!("{}\n", serde_json::to_string(&pids)?));
            return Ok(0);
        }
        "table" => {}
        _ => anyhow::bail!("invalid format option"),
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        a.ps_args
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .context("failed to run ps")?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let idx = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| anyhow::anyhow!("couldn't find PID field in ps output"))?;
    let mut s = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(idx).unwrap_or_default();
        let p: i32 = field
            .parse()
            .with_context(|| format!("unable to parse pid {field:?}"))?;
        if pids.contains(&p) {
            s.push_str(line);
            s.push('\n');
        }
    }
    super::print(&s);
    Ok(0)
}
