//! Helpers the OSV and scan tests share: exports written as osv.dev writes them (zips of
//! `<ID>.json`, by Python's `zipfile`, an implementation independent of berth's reader),
//! version orders for the evaluation (a simple numeric one, and dpkg's own), and the
//! tools these need, which fail the test loudly when missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: failing loudly is the point; test inputs in a temporary directory need no atomic writes"
)]

use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_sbom::osv::Scheme;
use serde_json::Value;

/// Fail (not skip) when a tool a test needs is missing.
pub fn require_tool(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "this test needs `{tool}`, which is not on PATH\nhint: {hint}"
    );
}

/// Fail (not skip) when a Python module a test needs is missing from berth-sbom's Python
/// venv ([`crate::tools::sbom_python`]), where `scripts/test` installs it pinned.
pub fn require_python_module(module: &str) {
    crate::tools::require_sbom_python_module(module);
}

/// Write `records` (id, JSON) into a zip at `zip`, deflated, one `<ID>.json` each, as
/// osv.dev's `all.zip` exports are.
pub fn write_export(zip: &Path, records: &[(String, Value)]) {
    let lines: Vec<String> = records
        .iter()
        .map(|(id, v)| format!("{id}.json\t{}", serde_json::to_string(v).unwrap()))
        .collect();
    write_export_raw(zip, &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Write raw `name\tcontents` entries into a zip (contents may be anything, even invalid).
pub fn write_export_raw(zip: &Path, lines: &[&str]) {
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", compression=zipfile.ZIP_DEFLATED) as z:
    for line in sys.stdin.buffer:
        name, _, data = line.rstrip(b"\n").partition(b"\t")
        z.writestr(name.decode(), data)
"#;
    // only the standard library's zipfile: Debian's own python3
    let mut child = Command::new(crate::tools::DEBIAN_PYTHON)
        .args(["-c", script])
        .arg(zip)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            stdin.write_all(l.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
        }
    }
    assert!(child.wait().unwrap().success(), "python3 zipfile failed");
}

/// A simple version order for the tests: digit runs compare as numbers, other runs as
/// text (`1.10 > 1.9`, `1.2.3-r1 > 1.2.3-r0`); an empty version is an error.
pub fn numeric(_scheme: Scheme, a: &str, b: &str) -> Result<Ordering, std::io::Error> {
    fn runs(s: &str) -> Result<Vec<(bool, String)>, std::io::Error> {
        if s.is_empty() {
            return Err(std::io::Error::other("empty version"));
        }
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let d = c.is_ascii_digit();
            match out.last_mut() {
                Some((k, r)) if *k == d => r.push(c),
                _ => out.push((d, c.to_string())),
            }
        }
        Ok(out)
    }
    let (ra, rb) = (runs(a)?, runs(b)?);
    for (x, y) in ra.iter().zip(rb.iter()) {
        let o = match (x, y) {
            ((true, p), (true, q)) => p
                .trim_start_matches('0')
                .len()
                .cmp(&q.trim_start_matches('0').len())
                .then_with(|| p.trim_start_matches('0').cmp(q.trim_start_matches('0'))),
            ((_, p), (_, q)) => p.cmp(q),
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(ra.len().cmp(&rb.len()))
}

/// dpkg's own version order (`dpkg --compare-versions`), for Debian records.
pub fn dpkg(_scheme: Scheme, a: &str, b: &str) -> Result<Ordering, std::io::Error> {
    let lt = |x: &str, y: &str| -> Result<bool, std::io::Error> {
        let out = Command::new("dpkg")
            .args(["--compare-versions", x, "lt", y])
            .stderr(Stdio::piped())
            .output()?;
        if !out.stderr.is_empty() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(out.status.success())
    };
    if a == b {
        return Ok(Ordering::Equal);
    }
    if lt(a, b)? {
        Ok(Ordering::Less)
    } else if lt(b, a)? {
        Ok(Ordering::Greater)
    } else {
        Ok(Ordering::Equal)
    }
}

/// A record as osv.dev writes them, for one package.
pub fn record(id: &str, ecosystem: &str, name: &str, events: Value) -> Value {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-05-01T10:00:00Z",
        "published": "2024-04-01T10:00:00Z",
        "aliases": [format!("CVE-2024-{}", id.len() * 1000 + name.len())],
        "summary": format!("{name}: a vulnerability"),
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }],
    })
}
