//! The JSON report, schema `berth.scan/v1` (stable: fields are only ever added).
//!
//! ```text
//! {
//!   "schema": "berth.scan/v1",
//!   "created": "2026-12-05T07:40:00Z",
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

use serde_json::{Value, json};

use crate::scan::Report;

/// The schema name written into every JSON report.
pub const SCHEMA: &str = "berth.scan/v1";

impl Report {
    pub fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "id": f.id,
                    "aliases": f.aliases,
                    "summary": f.summary,
                    "package": f.package,
                    "ecosystem": f.ecosystem.osv_name(),
                    "purl": f.purl,
                    "osv_package": f.osv_package,
                    "installed_version": f.installed_version,
                    "matched_version": f.matched_version,
                    "fixed_versions": f.fixed_versions,
                    "severity": f.severity.level.as_str(),
                    "score": f.severity.score,
                    "vector": f.severity.vector,
                    "severity_source": f.severity.source,
                    "path": f.path,
                    "layer": f.layer.as_ref().map(|d| d.to_string()),
                })
            })
            .collect();
        json!({
            "schema": SCHEMA,
            "created": self.created,
            "subject": {
                "name": self.subject.name,
                "digest": self.subject.digest.as_ref().map(|d| d.to_string()),
                "layers": self.subject.layers.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            },
            "distro": self.distro,
            "database": {
                "format_version": self.db.format_version,
                "built": self.db.built,
                "newest_modified": self.db.newest_modified,
                "ecosystems": self.db.ecosystems.iter()
                    .map(|(e, n)| json!({"ecosystem": e, "records": n}))
                    .collect::<Vec<_>>(),
            },
            "packages_scanned": self.packages_scanned,
            "max_severity": self.max_severity().map(|s| s.as_str()),
            "warnings": self.warnings,
            "findings": findings,
        })
    }
}
