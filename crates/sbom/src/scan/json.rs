//! The JSON report, schema `berth.scan/v1` (stable: fields are only ever added).
//!
//! ```text
//! {
//!   "schema": "berth.scan/v1",
//!   "created": "2026-12-05T07:40:00.123456789Z",   (RFC 3339, nanoseconds as Go writes them)
//!   "subject": {"name", "digest"?, "layers": [diff IDs]},
//!   "distro": {"id", "version_id"?, "codename"?, "id_like", "pretty_name"?} | null,
//!   "database": {"format_version", "built", "newest_modified"?,
//!                "ecosystems": [{"ecosystem", "records"}]},
//!   "packages_scanned": n,
//!   "max_severity": "critical" | … | null,
//!   "warnings": [string],
//!   "findings": [{
//!     "id", "aliases": [..], "summary"?, "package", "ecosystem", "purl",
//!     "osv_package", "installed_version", "matched_version", "fixed_versions": [..],
//!     "severity": "critical|high|medium|low|negligible|unknown",
//!     "score"?: number, "vector"?: string, "severity_source": string,
//!     "path"?: string, "layer"?: "sha256:…"
//!   }]
//! }
//! ```

use std::io;

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::Value;

use crate::package::{Distro, Subject};
use crate::scan::{Finding, Report};

/// The schema name written into every JSON report.
pub const SCHEMA: &str = "berth.scan/v1";

impl Report {
    /// The report as a JSON value (for callers that edit or inspect it; [`Report::write_json`]
    /// writes the same document without building it in memory).
    pub fn to_json(&self) -> Value {
        // the report's own plain types: serialising them into a value cannot fail
        serde_json::to_value(JsonReport::of(self)).unwrap_or(Value::Null)
    }

    /// Write the report as pretty-printed JSON to `out`, finding by finding: memory stays
    /// that of one finding whatever the report's size.
    pub fn write_json<W: io::Write>(&self, out: W) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(out, &JsonReport::of(self))
    }
}

/// The document, borrowed from the report; members in the order the schema above lists.
#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    created: &'a str,
    subject: &'a Subject,
    distro: Option<&'a Distro>,
    database: JsonDatabase<'a>,
    packages_scanned: usize,
    max_severity: Option<&'static str>,
    warnings: &'a [String],
    findings: JsonFindings<'a>,
}

impl<'a> JsonReport<'a> {
    fn of(r: &'a Report) -> JsonReport<'a> {
        JsonReport {
            schema: SCHEMA,
            created: &r.created,
            subject: &r.subject,
            distro: r.distro.as_ref(),
            database: JsonDatabase {
                format_version: r.db.format_version,
                built: &r.db.built,
                newest_modified: r.db.newest_modified.as_deref(),
                ecosystems: JsonEcosystems(&r.db.ecosystems),
            },
            packages_scanned: r.packages_scanned,
            max_severity: r.max_severity().map(|s| s.as_str()),
            warnings: &r.warnings,
            findings: JsonFindings(&r.findings),
        }
    }
}

#[derive(Serialize)]
struct JsonDatabase<'a> {
    format_version: u32,
    built: &'a str,
    newest_modified: Option<&'a str>,
    ecosystems: JsonEcosystems<'a>,
}

struct JsonEcosystems<'a>(&'a [(String, u64)]);

impl Serialize for JsonEcosystems<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            ecosystem: &'a str,
            records: u64,
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (ecosystem, records) in self.0 {
            seq.serialize_element(&Entry {
                ecosystem,
                records: *records,
            })?;
        }
        seq.end()
    }
}

struct JsonFindings<'a>(&'a [Finding]);

impl Serialize for JsonFindings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in self.0 {
            seq.serialize_element(&JsonFinding::of(f))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    id: &'a str,
    aliases: &'a [String],
    summary: Option<&'a str>,
    package: &'a str,
    ecosystem: &'static str,
    purl: &'a str,
    osv_package: &'a str,
    installed_version: &'a str,
    matched_version: &'a str,
    fixed_versions: &'a [String],
    severity: &'static str,
    score: Option<f64>,
    vector: Option<&'a str>,
    severity_source: &'a str,
    path: Option<&'a str>,
    layer: Option<&'a berth_oci::Digest>,
}

impl<'a> JsonFinding<'a> {
    fn of(f: &'a Finding) -> JsonFinding<'a> {
        JsonFinding {
            id: &f.id,
            aliases: &f.aliases,
            summary: f.summary.as_deref(),
            package: &f.package,
            ecosystem: f.ecosystem.osv_name(),
            purl: &f.purl,
            osv_package: &f.osv_package,
            installed_version: &f.installed_version,
            matched_version: &f.matched_version,
            fixed_versions: &f.fixed_versions,
            severity: f.severity.level.as_str(),
            score: f.severity.score,
            vector: f.severity.vector.as_deref(),
            severity_source: &f.severity.source,
            path: f.path.as_deref(),
            layer: f.layer.as_ref(),
        }
    }
}
