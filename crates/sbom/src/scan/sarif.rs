//! SARIF 2.1.0 (OASIS, errata 01) for GitHub code scanning: one rule per vulnerability
//! (`tool.driver.rules`, with `security-severity` for GitHub's severity column), one result
//! per vulnerable package, located at the file that records the package in the image and
//! logically at the image and package (`logicalLocations`, kind `package`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::scan::{Report, Severity};

pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium | Severity::Unknown => "warning",
        Severity::Low | Severity::Negligible => "note",
    }
}

impl Report {
    pub fn to_sarif(&self) -> Value {
        // one rule per vulnerability id, in the order first seen
        let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut rules: Vec<Value> = Vec::new();
        for f in &self.findings {
            if rule_index.contains_key(f.id.as_str()) {
                continue;
            }
            rule_index.insert(&f.id, rules.len());
            let summary = f.summary.clone().unwrap_or_else(|| f.id.clone());
            let mut props = json!({
                "tags": ["security", "vulnerability", f.severity.level.as_str()],
            });
            if let Some(score) = f.severity.score {
                props["security-severity"] = json!(format!("{score:.1}"));
            }
            if !f.aliases.is_empty() {
                props["aliases"] = json!(f.aliases);
            }
            rules.push(json!({
                "id": f.id,
                "name": f.id.replace(['-', ':'], ""),
                "shortDescription": {"text": summary},
                "fullDescription": {"text": summary},
                "helpUri": format!("https://osv.dev/vulnerability/{}", f.id),
                "help": {
                    "text": format!("{summary}\nAliases: {}\nhttps://osv.dev/vulnerability/{}",
                        if f.aliases.is_empty() { "-".to_owned() } else { f.aliases.join(", ") }, f.id),
                },
                "defaultConfiguration": {"level": level(f.severity.level)},
                "properties": props,
            }));
        }
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let fixed = if f.fixed_versions.is_empty() {
                    "no fixed version is known".to_owned()
                } else {
                    format!("fixed in {}", f.fixed_versions.join(", "))
                };
                let path = f
                    .path
                    .as_deref()
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_owned();
                let mut result = json!({
                    "ruleId": f.id,
                    "ruleIndex": rule_index.get(f.id.as_str()).copied().unwrap_or(0),
                    "level": level(f.severity.level),
                    "message": {"text": format!(
                        "{} {} in {} is affected by {} ({}): {}",
                        f.package, f.installed_version, self.subject.name, f.id,
                        f.severity.level, fixed
                    )},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": if path.is_empty() { ".".to_owned() } else { path }},
                            "region": {"startLine": 1},
                        },
                        "logicalLocations": [{
                            "name": f.package,
                            "fullyQualifiedName": format!("{}/{}", self.subject.name, f.purl),
                            "kind": "package",
                        }],
                    }],
                    "partialFingerprints": {
                        "berthVulnerability/v1": format!("{}|{}|{}", self.subject.name, f.purl, f.id),
                    },
                    "properties": {
                        "purl": f.purl,
                        "installedVersion": f.installed_version,
                        "fixedVersions": f.fixed_versions,
                        "severity": f.severity.level.as_str(),
                    },
                });
                if let Some(layer) = &f.layer {
                    result["properties"]["layer"] = json!(layer.to_string());
                }
                result
            })
            .collect();
        json!({
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "berth",
                    "informationUri": "https://github.com/berth-dev/berth",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }},
                "results": results,
                "properties": {
                    "subject": self.subject.name,
                    "osvDatabase": {
                        "built": self.db.built,
                        "newestModified": self.db.newest_modified,
                    },
                    "warnings": self.warnings,
                },
            }],
        })
    }
}
