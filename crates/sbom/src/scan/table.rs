//! The text table a person reads.

use std::fmt::Write as _;

use crate::scan::Report;

impl Report {
    /// The findings as an aligned table, with the database's date and any warnings above it.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} packages, {} vulnerabilities",
            self.subject.name,
            self.packages_scanned,
            self.findings.len()
        );
        let _ = writeln!(
            out,
            "OSV database: built {}, newest record {}",
            self.db.built,
            self.db.newest_modified.as_deref().unwrap_or("-")
        );
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        if self.findings.is_empty() {
            return out;
        }
        let header = [
            "PACKAGE",
            "INSTALLED",
            "FIXED IN",
            "VULNERABILITY",
            "SEVERITY",
            "ALIASES",
        ];
        let rows: Vec<[String; 6]> = self
            .findings
            .iter()
            .map(|f| {
                let sev = match f.severity.score {
                    Some(s) => format!("{} {s:.1}", f.severity.level),
                    None => f.severity.level.to_string(),
                };
                [
                    f.package.clone(),
                    f.installed_version.clone(),
                    if f.fixed_versions.is_empty() {
                        "-".to_owned()
                    } else {
                        f.fixed_versions.join(", ")
                    },
                    f.id.clone(),
                    sev,
                    f.aliases.join(", "),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[&str]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ", w = widths[i]);
                }
            }
            l.trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", line(&header));
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&cells));
        }
        out
    }
}
