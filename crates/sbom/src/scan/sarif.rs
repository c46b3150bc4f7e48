//! SARIF 2.1.0 (OASIS, errata 01) for GitHub code scanning: one rule per vulnerability id
//! (`tool.driver.rules`, with `security-severity` for GitHub's severity column), one result
//! per vulnerable package referring to its rule by `ruleIndex`, located at the file that
//! records the package in the image and logically at the image and package
//! (`logicalLocations`, kind `package`).
//!
//! Written compact and finding by finding ([`Report::write_sarif`]): a report of tens of
//! thousands of findings is a document CI uploads, not one a person reads (the table and
//! the JSON report are those). What is said once is not repeated: a rule carries the
//! vulnerability's summary (`shortDescription`, and `fullDescription`, which GitHub
//! requires), aliases and link; a result, the package, its versions and the fix, and the
//! image only in its `fullyQualifiedName` and fingerprint (the run's properties name it).

use std::collections::HashMap;
use std::io;

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::Value;

use crate::scan::{Finding, Report, Severity};

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
    /// The SARIF log as a JSON value (for callers that edit or inspect it;
    /// [`Report::write_sarif`] writes the same document without building it in memory).
    pub fn to_sarif(&self) -> Value {
        // the report's own plain types: serialising them into a value cannot fail
        serde_json::to_value(SarifLog::of(self)).unwrap_or(Value::Null)
    }

    /// Write the SARIF log to `out` (compact JSON), result by result.
    pub fn write_sarif<W: io::Write>(&self, out: W) -> serde_json::Result<()> {
        serde_json::to_writer(out, &SarifLog::of(self))
    }
}

#[derive(Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
struct Run<'a> {
    tool: Tool<'a>,
    results: Results<'a>,
    properties: RunProperties<'a>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    information_uri: &'static str,
    version: &'static str,
    rules: Rules<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunProperties<'a> {
    subject: &'a str,
    osv_database: OsvDatabase<'a>,
    warnings: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OsvDatabase<'a> {
    built: &'a str,
    newest_modified: Option<&'a str>,
}

impl<'a> SarifLog<'a> {
    fn of(r: &'a Report) -> SarifLog<'a> {
        // one rule per vulnerability id, in the order first seen
        let mut rule_index: HashMap<&'a str, usize> = HashMap::new();
        let mut rules: Vec<&'a Finding> = Vec::new();
        for f in &r.findings {
            rule_index.entry(&f.id).or_insert_with(|| {
                rules.push(f);
                rules.len() - 1
            });
        }
        SarifLog {
            schema: SARIF_SCHEMA,
            version: "2.1.0",
            runs: [Run {
                tool: Tool {
                    driver: Driver {
                        name: "berth",
                        information_uri: "https://github.com/berth-dev/berth",
                        version: env!("CARGO_PKG_VERSION"),
                        rules: Rules(rules),
                    },
                },
                results: Results {
                    report: r,
                    rule_index,
                },
                properties: RunProperties {
                    subject: &r.subject.name,
                    osv_database: OsvDatabase {
                        built: &r.db.built,
                        newest_modified: r.db.newest_modified.as_deref(),
                    },
                    warnings: &r.warnings,
                },
            }],
        }
    }
}

/// `{"text": …}`, SARIF's message and description objects.
#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

/// The rules: each vulnerability's first finding stands for it.
struct Rules<'a>(Vec<&'a Finding>);

impl Serialize for Rules<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Rule<'a> {
            id: &'a str,
            short_description: Text<'a>,
            full_description: Text<'a>,
            help_uri: &'a str,
            help: Text<'a>,
            default_configuration: Level,
            properties: RuleProperties<'a>,
        }
        #[derive(Serialize)]
        struct Level {
            level: &'static str,
        }
        #[derive(Serialize)]
        struct RuleProperties<'a> {
            tags: [&'static str; 3],
            #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
            security_severity: Option<String>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            aliases: &'a [String],
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in &self.0 {
            let uri = format!("https://osv.dev/vulnerability/{}", f.id);
            let help = if f.aliases.is_empty() {
                uri.clone()
            } else {
                format!("{} ({uri})", f.aliases.join(", "))
            };
            // GitHub shows shortDescription as the alert's title and requires fullDescription
            let summary = f.summary.as_deref().unwrap_or(&f.id);
            seq.serialize_element(&Rule {
                id: &f.id,
                short_description: Text { text: summary },
                full_description: Text { text: summary },
                help_uri: &uri,
                help: Text { text: &help },
                default_configuration: Level {
                    level: level(f.severity.level),
                },
                properties: RuleProperties {
                    tags: ["security", "vulnerability", f.severity.level.as_str()],
                    security_severity: f.severity.score.map(|score| format!("{score:.1}")),
                    aliases: &f.aliases,
                },
            })?;
        }
        seq.end()
    }
}

struct Results<'a> {
    report: &'a Report,
    rule_index: HashMap<&'a str, usize>,
}

impl Serialize for Results<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SarifResult<'a> {
            rule_id: &'a str,
            rule_index: usize,
            level: &'static str,
            message: Text<'a>,
            locations: [Location<'a>; 1],
            partial_fingerprints: Fingerprints,
            properties: ResultProperties<'a>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Location<'a> {
            physical_location: PhysicalLocation<'a>,
            logical_locations: [LogicalLocation<'a>; 1],
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct PhysicalLocation<'a> {
            artifact_location: ArtifactLocation<'a>,
            region: Region,
        }
        #[derive(Serialize)]
        struct ArtifactLocation<'a> {
            uri: &'a str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Region {
            start_line: u32,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct LogicalLocation<'a> {
            name: &'a str,
            fully_qualified_name: String,
            kind: &'static str,
        }
        #[derive(Serialize)]
        struct Fingerprints {
            #[serde(rename = "berthVulnerability/v1")]
            v1: String,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ResultProperties<'a> {
            purl: &'a str,
            installed_version: &'a str,
            fixed_versions: &'a [String],
            severity: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            layer: Option<&'a berth_oci::Digest>,
        }
        let subject = &self.report.subject.name;
        let mut seq = s.serialize_seq(Some(self.report.findings.len()))?;
        for f in &self.report.findings {
            let message = match f.fixed_versions.as_slice() {
                [] => format!("{} {}: no fix known", f.package, f.installed_version),
                fixed => format!(
                    "{} {}: fixed in {}",
                    f.package,
                    f.installed_version,
                    fixed.join(", ")
                ),
            };
            let path = f.path.as_deref().unwrap_or("/").trim_start_matches('/');
            seq.serialize_element(&SarifResult {
                rule_id: &f.id,
                rule_index: self.rule_index.get(f.id.as_str()).copied().unwrap_or(0),
                level: level(f.severity.level),
                message: Text { text: &message },
                locations: [Location {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation {
                            uri: if path.is_empty() { "." } else { path },
                        },
                        region: Region { start_line: 1 },
                    },
                    logical_locations: [LogicalLocation {
                        name: &f.package,
                        fully_qualified_name: format!("{subject}/{}", f.purl),
                        kind: "package",
                    }],
                }],
                partial_fingerprints: Fingerprints {
                    v1: format!("{subject}|{}|{}", f.purl, f.id),
                },
                properties: ResultProperties {
                    purl: &f.purl,
                    installed_version: &f.installed_version,
                    fixed_versions: &f.fixed_versions,
                    severity: f.severity.level.as_str(),
                    layer: f.layer.as_ref(),
                },
            })?;
        }
        seq.end()
    }
}
