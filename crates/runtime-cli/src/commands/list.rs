//! `list` (`--format table|json`, `--quiet`).

use crate::Global;
use crate::args::{Flag, Matches, UsageError};

pub const FLAGS: &[Flag] = &[
    Flag::value(
        "format",
        Some('f'),
        "select one of: table or json (default: \"table\")",
    ),
    Flag::bool("quiet", Some('q'), "display only container IDs"),
];

#[derive(Debug, PartialEq, Eq)]
pub struct ListArgs {
    pub format: String,
    pub quiet: bool,
}

impl ListArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        m.positionals("list", 0, 0)?;
        Ok(ListArgs {
            format: m.string("format")?.unwrap_or_else(|| "table".to_owned()),
            quiet: m.flag("quiet"),
        })
    }
}

pub fn run(g: &Global, a: ListArgs) -> anyhow::Result<u8> {
    let mut items = Vec::new();
    for entry in berth_container::list(&g.root)? {
        match entry {
            Ok(c) => items.push(c),
            Err((id, e)) => g.log.warn(&format!(
                "load container {id}: {}",
                crate::log::chain(&anyhow::Error::new(e))
            )),
        }
    }
    if a.quiet {
        let mut s = String::new();
        for c in &items {
            s.push_str(c.id());
            s.push('\n');
        }
        super::print(&s);
        return Ok(0);
    }
    match a.format.as_str() {
        "table" => {
            let rows: Vec<[String; 6]> = items
                .iter()
                .map(|c| {
                    let st = c.state_json();
                    [
                        c.id().to_owned(),
                        st["pid"].to_string(),
                        c.status().to_string(),
                        c.state.bundle.display().to_string(),
                        c.state.created.clone(),
                        owner_name(c.state.owner),
                    ]
                })
                .collect();
            super::print(&table(
                &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                &rows,
            ));
        }
        "json" => {
            let v: Vec<serde_json::Value> = items.iter().map(|c| c.state_json()).collect();
            let text = if v.is_empty() {
                "null".to_owned()
            } else {
                serde_json::to_string(&v)?
            };
            super::print(&format!("{text}\n"));
        }
        _ => anyhow::bail!("invalid format option"),
    }
    Ok(0)
}

fn owner_name(uid: u32) -> String {
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut f = line.split(':');
            if let (Some(name), Some(_), Some(u)) = (f.next(), f.next(), f.next())
                && u.parse::<u32>().ok() == Some(uid)
            {
                return name.to_owned();
            }
        }
    }
    format!("#{uid}")
}

/// Go tabwriter with minwidth 12, padding 3 (runc's).
fn table(header: &[&str], rows: &[[String; 6]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            s.push_str(c);
            if i + 1 < n {
                let w = (widths[i] + 3).max(12);
                s.push_str(&" ".repeat(w - c.len()));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
    }
    out
}
