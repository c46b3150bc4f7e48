//! `berth policy check` and `berth trust pins|accept|forget` as a user types them.
#![allow(
    clippy::disallowed_methods,
    reason = "test inputs in a temporary directory need no atomic writes"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{berth_bin, run_with_timeout};

fn berth(args: &[&str]) -> Output {
    let mut cmd = Command::new(berth_bin());
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("BERTH_LOG");
    run_with_timeout(&mut cmd, Duration::from_secs(60))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

const BASE: &str = r#"{
  "version": "berth.policy/v1",
  "trustStores": ["ca:acme"],
  "roles": {
    "dev": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=dev"]},
    "ci": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]},
    "prod": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=prod"]}
  },
  "rules": [
    {
      "name": "production",
      "registryScopes": ["registry.acme.test/*"],
      "namespaces": ["prod-*"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["dev", "ci", "prod"]}
    },
    {
      "name": "default",
      "registryScopes": ["*"],
      "signatureVerification": {"level": "audit"},
      "trustStores": ["ca:acme"],
      "requirement": {"atLeast": {"count": 1, "of": ["ci", "dev"]}}
    }
  ]
}
"#;

#[test]
fn policy_check_accepts_a_valid_policy_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(&file, BASE).unwrap();
    let out = berth(&["policy", "check", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("valid berth.policy/v1 policy"), "{stdout}");
    assert!(
        stdout.contains(
            "production: scopes registry.acme.test/*; namespaces prod-*; strict; all of dev, ci, prod"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("default: scopes *; every namespace; audit; at least 1 of ci, dev"),
        "{stdout}"
    );
    // a rule for labelled namespaces says so
    let labelled = BASE.replacen(
        r#""namespaces": ["prod-*"],"#,
        r#""namespaces": ["prod-*"], "namespaceSelector": {"matchLabels": {"tier": "gold"}},"#,
        1,
    );
    let lfile = dir.path().join("labelled.json");
    std::fs::write(&lfile, labelled).unwrap();
    let out = berth(&["policy", "check", lfile.to_str().unwrap()]);
    let summary = text(&out.stdout);
    assert!(out.status.success(), "{summary}{}", text(&out.stderr));
    assert!(
        summary.contains(
            "production: scopes registry.acme.test/*; namespaces prod-* labelled tier=gold; strict"
        ),
        "{summary}"
    );
    // and the JSON form
    let out = berth(&[
        "policy",
        "check",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["problems"], serde_json::json!([]));
}

/// Each class of problem, as `FILE:LINE:COL: message`, exit status 1.
#[test]
fn policy_check_reports_each_problem_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "syntax",
            r#""name": "production","#,
            r#""name": "production""#,
            "12:7: expected `,` or `}`",
        ),
        (
            "unknown field",
            r#""namespaces": ["prod-*"],"#,
            r#""namespace": ["prod-*"],"#,
            "13:7: unknown field `namespace`",
        ),
        (
            "undefined role",
            r#"["dev", "ci", "prod"]"#,
            r#"["dev", "ci", "qa"]"#,
            "16:46: undefined role \"qa\"",
        ),
        (
            "undefined trust store",
            r#""trustStores": ["ca:acme"],
      "requirement": {"allOf""#,
            r#""trustStores": ["ca:other"],
      "requirement": {"allOf""#,
            "15:23: undefined trust store \"ca:other\"",
        ),
        (
            "k greater than n",
            r#""count": 1"#,
            r#""count": 3"#,
            "23:44: atLeast needs 3 signers of 2 role(s)",
        ),
        (
            "duplicate rule patterns",
            r#""registryScopes": ["*"],"#,
            r#""registryScopes": ["registry.acme.test/*"], "namespaces": ["prod-*"],"#,
            "18:5: rules \"production\" and \"default\" both apply to scope \"registry.acme.test/*\" in namespaces \"prod-*\"",
        ),
        (
            "empty requirement",
            r#"{"allOf": ["dev", "ci", "prod"]}"#,
            r#"{"allOf": []}"#,
            "16:32: empty requirement: allOf lists no role",
        ),
        (
            "malformed DN",
            "O=Acme, CN=ci",
            "O=Acme, CN",
            "6:34: malformed distinguished name",
        ),
    ];
    for (label, from, to, want) in cases {
        assert!(BASE.contains(from), "{label}: {from}");
        let file = dir.path().join(format!("{}.json", label.replace(' ', "-")));
        std::fs::write(&file, BASE.replacen(from, to, 1)).unwrap();
        let path = file.to_str().unwrap();
        let out = berth(&["policy", "check", path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{label}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}:{want}")),
            "{label}: want {path}:{want} in\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("error: {path}: 1 problem(s) in the policy")),
            "{label}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{label}: nothing on stdout");
    }
    // a missing file is an ordinary error
    let out = berth(&["policy", "check", "/nonexistent/policy.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("failed to read /nonexistent/policy.json"));
}

fn write_pins(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn trust_pins_accept_and_forget() {
    let dir = tempfile::tempdir().unwrap();
    let pins = dir.path().join("pins.json");
    let p = pins.to_str().unwrap();
    let old = format!("sha256:{}", "1".repeat(64));
    let new = format!("sha256:{}", "2".repeat(64));
    write_pins(
        &pins,
        &format!(
            r#"{{"version":"berth.pins/v1","pins":{{"registry.acme.test/web":{{
            "certificateSha256":"{old}","subject":"CN=ci,O=Acme,ST=WA,C=US","pinnedAt":"2026-12-01T00:00:00Z",
            "refused":{{"certificateSha256":"{new}","subject":"CN=ci2,O=Acme,ST=WA,C=US","seenAt":"2026-12-04T00:00:00Z"}}}}}}}}"#
        ),
    );
    let out = berth(&["trust", "pins", "--pins", p]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "pinned  {old} (CN=ci,O=Acme,ST=WA,C=US) since 2026-12-01T00:00:00Z"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "accept: berth trust accept registry.acme.test/web --certificate {new}"
        )),
        "{stdout}"
    );
    // accepting another certificate than the refused one is refused, the file untouched
    let other = format!("sha256:{}", "3".repeat(64));
    let out = berth(&[
        "trust",
        "accept",
        "registry.acme.test/web",
        "--certificate",
        &other,
        "--pins",
        p,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not sha256:333"),
        "{}",
        text(&out.stderr)
    );
    // the refused one is pinned
    let out = berth(&[
        "trust",
        "accept",
        "registry.acme.test/web",
        "--certificate",
        &new,
        "--pins",
        p,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!(
        "pinned {new} (CN=ci2,O=Acme,ST=WA,C=US) (was {old}"
    )));
    let mode = std::fs::metadata(&pins).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = berth(&["trust", "pins", "--format", "json", "--pins", p]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["pins"]["registry.acme.test/web"]["certificateSha256"],
        new.as_str()
    );
    assert!(v["pins"]["registry.acme.test/web"].get("refused").is_none());
    // forget, then nothing is pinned
    let out = berth(&["trust", "forget", "registry.acme.test/web", "--pins", p]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = berth(&["trust", "pins", "--pins", p]);
    assert!(
        text(&out.stdout).contains("no pins in"),
        "{}",
        text(&out.stdout)
    );
    // a pin file others may write is refused
    std::fs::set_permissions(&pins, std::fs::Permissions::from_mode(0o622)).unwrap();
    let out = berth(&["trust", "pins", "--pins", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
}
