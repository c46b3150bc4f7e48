//! docs/schema/policy-v1.json against every example of docs/policy.md and every fixture, with
//! an independent JSON Schema validator (python3's `jsonschema`, draft 2020-12; scripts/test
//! installs python3-jsonschema), and the parser on the same documents.

use berth_trust::roles::Policy;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every ```json block of docs/policy.md: each is a complete policy.
fn doc_examples() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/policy.md")).unwrap();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("```json\n") {
        let body = &rest[i + 8..];
        let end = body.find("\n```").expect("unterminated block");
        out.push(body[..end].to_string());
        rest = &body[end + 4..];
    }
    out
}

fn fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/roles");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

const VALIDATE: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    print("python3's jsonschema module is missing (apt-get install python3-jsonschema; scripts/test installs it)")
    sys.exit(3)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(v.iter_errors(json.load(open(path))), key=lambda e: list(e.path))
    print(("OK " if not errors else "FAIL ") + path + "".join("\n  " + "/".join(map(str, e.path)) + ": " + e.message for e in errors))
"#;

/// The validator's verdict on each document: true = valid.
fn schema_verdicts(docs: &[String]) -> Vec<(bool, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let p = tmp.path().join(format!("doc{i}.json"));
        std::fs::write(&p, d).unwrap();
        paths.push(p);
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(root().join("docs/schema/policy-v1.json"))
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for the schema test: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "schema validation did not run: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut verdicts = Vec::new();
    // one entry per document, in order: "OK path" or "FAIL path\n  errors"
    let mut current: Option<(bool, String)> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("OK ") {
            verdicts.extend(current.take());
            current = Some((true, rest.to_string()));
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            verdicts.extend(current.take());
            current = Some((false, rest.to_string()));
        } else if let Some(c) = current.as_mut() {
            c.1.push('\n');
            c.1.push_str(line);
        }
    }
    verdicts.extend(current);
    assert_eq!(verdicts.len(), docs.len(), "{stdout}");
    verdicts
}

#[test]
fn every_documented_example_and_fixture_is_valid_by_schema_and_parser() {
    let examples = doc_examples();
    assert!(
        examples.len() >= 2,
        "docs/policy.md has {} json examples",
        examples.len()
    );
    let mut docs = examples.clone();
    let fx = fixtures();
    assert!(!fx.is_empty());
    docs.extend(fx.iter().map(|(_, d)| d.clone()));
    for (i, d) in docs.iter().enumerate() {
        Policy::parse(d.as_bytes())
            .unwrap_or_else(|e| panic!("document {i} of docs/policy.md + fixtures: {e}\n{d}"));
    }
    for (i, (ok, what)) in schema_verdicts(&docs).into_iter().enumerate() {
        assert!(ok, "document {i} fails the schema: {what}\n{}", docs[i]);
    }
}

#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    let base = doc_examples().into_iter().next().unwrap();
    let mutations = [
        (r#""version": "berth.policy/v1""#, r#""version": "1.0""#),
        (
            r#""name": "production","#,
            r#""name": "production", "nmae": "x","#,
        ),
        (
            r#"{"level": "strict", "verifyTimestamp": "afterCertExpiry"}"#,
            r#"{"level": "strictest"}"#,
        ),
        (r#""count": 2"#, r#""count": 0"#),
        (
            r#"{"allOf": ["dev", "ci"]}"#,
            r#"{"allOf": ["dev", "ci"], "atLeast": {"count": 1, "of": ["dev"]}}"#,
        ),
        (r#"{"allOf": ["dev", "ci"]}"#, "{}"),
        (r#"{"allOf": ["dev", "ci"]}"#, r#"{"allOf": []}"#),
        (
            r#""count": 2, "of""#,
            r#""count": 2, "signers": "any-trusted", "of""#,
        ),
        (r#""namespaces": ["dev-*"]"#, r#""namespaces": ["Dev_*"]"#),
        (
            r#""registryScopes": ["registry.acme.example/libs/core"]"#,
            r#""registryScopes": ["registry.acme.example/*/core"]"#,
        ),
        (
            r#""trustStores": ["ca:acme", "tsa:acme-tsa"],"#,
            r#""trustStores": ["ca:acme", "cb:acme-tsa"],"#,
        ),
        // (a DN without C, ST or O is refused by the parser only: the schema says so)
        (
            "x509.subject: C=US, ST=WA, O=Acme, CN=bob",
            "x509.subjekt: C=US, ST=WA, O=Acme, CN=bob",
        ),
        (r#""sha256:3f1d"#, r#""sha256:zz1d"#),
    ];
    let mut docs = Vec::new();
    for (from, to) in mutations {
        assert!(base.contains(from), "{from}");
        let d = base.replacen(from, to, 1);
        assert!(
            Policy::parse(d.as_bytes()).is_err(),
            "the parser accepts the mutation {to}"
        );
        docs.push(d);
    }
    for (i, (ok, what)) in schema_verdicts(&docs).into_iter().enumerate() {
        assert!(
            !ok,
            "the schema accepts mutation {:?}: {what}",
            mutations[i].1
        );
    }
}

#[test]
fn the_schema_refuses_bad_sbom_and_scan_requirements_as_the_parser_does() {
    let base = doc_examples()
        .into_iter()
        .find(|d| d.contains("requireScan"))
        .expect("docs/policy.md's requireScan example");
    let scan = r#""requireScan": {"signedBy": "ci", "maxAgeDays": 7, "failOn": "high"}"#;
    let mutations = [
        (
            scan,
            r#""requireScan": {"signedBy": "ci", "maxAgeDays": 0}"#,
        ),
        (
            scan,
            r#""requireScan": {"signedBy": "ci", "maxAgeDays": 7, "failOn": "severe"}"#,
        ),
        (
            scan,
            r#""requireScan": {"signedBy": "ci", "failOn": "high"}"#,
        ),
        (
            scan,
            r#""requireScan": {"signedBy": "ci", "maxAgeDays": 7, "when": 1}"#,
        ),
        (
            r#""requireSbom": {"signedBy": "ci"}"#,
            r#""requireSbom": {}"#,
        ),
        (
            r#""requireSbom": {"signedBy": "ci"}"#,
            r#""requireSbom": "ci""#,
        ),
    ];
    let mut docs = Vec::new();
    for (from, to) in mutations {
        assert!(base.contains(from), "{from}");
        let d = base.replacen(from, to, 1);
        assert!(
            Policy::parse(d.as_bytes()).is_err(),
            "the parser accepts the mutation {to}"
        );
        docs.push(d);
    }
    for (i, (ok, what)) in schema_verdicts(&docs).into_iter().enumerate() {
        assert!(
            !ok,
            "the schema accepts mutation {:?}: {what}",
            mutations[i].1
        );
    }
}
