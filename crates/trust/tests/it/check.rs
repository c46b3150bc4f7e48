//! `Policy::parse`'s refusals: each class of problem, at its LINE:COL.

use berth_trust::roles::Policy;

const BASE: &str = r#"{
  "version": "berth.policy/v1",
  "trustStores": ["ca:acme", "tsa:stamps"],
  "roles": {
    "dev": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=dev"]},
    "ci": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]}
  },
  "rules": [
    {
      "name": "prod",
      "registryScopes": ["r.test/team/*"],
      "namespaces": ["prod-*"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["dev", "ci"]}
    }
  ]
}"#;

/// Every problem as "LINE:COL: message; hint".
fn problems(doc: &str) -> Vec<String> {
    match Policy::parse(doc.as_bytes()) {
        Ok(_) => panic!("accepted:\n{doc}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

/// The LINE:COL where `needle` starts in `doc` (1-based), `nth` occurrence (0-based).
fn at(doc: &str, needle: &str, nth: usize) -> String {
    let i = doc
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle}"))
        .0;
    let line = doc[..i].matches('\n').count() + 1;
    let col = doc[..i].rsplit('\n').next().unwrap().chars().count() + 1;
    format!("{line}:{col}")
}

fn assert_one(doc: &str, want: &str) {
    let p = problems(doc);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with(want), "want {want:?}, got {:?}", p[0]);
}

#[test]
fn the_base_policy_is_valid() {
    let p = Policy::parse(BASE.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.roles.len(), 2);
    assert_eq!(p.roles[0].name, "dev", "roles keep file order");
    assert_eq!(p.rules.len(), 1);
}

#[test]
fn json_syntax_errors_carry_serde_json_line_and_column() {
    let doc = with(r#""name": "prod","#, r#""name": "prod""#);
    assert_one(&doc, "11:7: expected `,` or `}`; fix the JSON syntax here");
}

#[test]
fn unknown_fields_are_refused_where_they_are() {
    let doc = with(
        r#""namespaces": ["prod-*"],"#,
        r#""namespace": ["prod-*"],"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: unknown field `namespace`, expected one of",
            at(&doc, r#""namespace""#, 0)
        ),
    );
    let doc = with(
        r#""version": "berth.policy/v1","#,
        r#""version": "berth.policy/v1", "extra": 1,"#,
    );
    assert_one(&doc, "2:33: unknown field `extra`");
    assert!(problems(&doc)[0].contains("remove the field or correct its spelling"));
}

#[test]
fn wrong_types_are_refused_where_they_are() {
    let doc = with(
        r#"{"allOf": ["dev", "ci"]}"#,
        r#"{"atLeast": {"count": "2", "of": ["dev", "ci"]}}"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: invalid type: string \"2\", expected u64",
            at(&doc, r#""2""#, 0)
        ),
    );
}

#[test]
fn an_unsupported_version_points_at_it() {
    let doc = with(r#""berth.policy/v1""#, r#""1.0""#);
    let want = format!(
        "{}: unsupported version \"1.0\"; this looks like notation's trustpolicy.json",
        at(&doc, r#""1.0""#, 0)
    );
    assert_one(&doc, &want);
}

#[test]
fn an_undefined_role_points_at_its_name() {
    let doc = with(r#"["dev", "ci"]}"#, r#"["dev", "prod"]}"#);
    let want = format!(
        "{}: undefined role \"prod\"; define it under \"roles\" or correct the name (defined: dev, ci)",
        at(&doc, r#""prod"]"#, 0)
    );
    assert_eq!(want.split(':').next(), Some("15"));
    assert_one(&doc, &want);
}

#[test]
fn an_undefined_trust_store_points_at_it() {
    let doc = with(
        r#""trustStores": ["ca:acme"],"#,
        r#""trustStores": ["ca:acme", "ca:other"],"#,
    );
    let want = format!(
        "{}: undefined trust store \"ca:other\"; declare it in the top-level \"trustStores\" (declared: ca:acme, tsa:stamps)",
        at(&doc, r#""ca:other""#, 0)
    );
    assert_one(&doc, &want);
    // a malformed reference
    let doc = with(
        r#""trustStores": ["ca:acme"],"#,
        r#""trustStores": ["cb:acme"],"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: trust store \"cb:acme\" has unknown type \"cb\"",
            at(&doc, r#""cb:acme""#, 0)
        ),
    );
    // only a tsa store
    let doc = with(
        r#""trustStores": ["ca:acme"],"#,
        r#""trustStores": ["tsa:stamps"],"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: trustStores names no ca or signingAuthority store",
            at(&doc, r#"["tsa:stamps"],"#, 0)
        ),
    );
}

#[test]
fn k_greater_than_the_roles_it_counts_is_refused() {
    let doc = with(
        r#"{"allOf": ["dev", "ci"]}"#,
        r#"{"atLeast": {"count": 3, "of": ["dev", "ci"]}}"#,
    );
    let want = format!(
        "{}: atLeast needs 3 signers of 2 role(s), which can never be satisfied; lower count to at most 2",
        at(&doc, "3, \"of\"", 0)
    );
    assert_one(&doc, &want);
    let doc = with(
        r#"{"allOf": ["dev", "ci"]}"#,
        r#"{"atLeast": {"count": 0, "signers": "any-trusted"}}"#,
    );
    assert_one(
        &doc,
        &format!("{}: atLeast count is 0", at(&doc, "0, \"signers\"", 0)),
    );
}

#[test]
fn empty_requirements_are_refused() {
    let doc = with(r#"{"allOf": ["dev", "ci"]}"#, "{}");
    assert_one(
        &doc,
        &format!("{}: empty requirement; give \"allOf\"", at(&doc, "{}", 0)),
    );
    let doc = with(r#"["dev", "ci"]}"#, "[]}");
    assert_one(
        &doc,
        &format!(
            "{}: empty requirement: allOf lists no role",
            at(&doc, "[]", 0)
        ),
    );
    let doc = with(
        r#"{"allOf": ["dev", "ci"]}"#,
        r#"{"atLeast": {"count": 1, "of": []}}"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: empty requirement: atLeast of lists no role",
            at(&doc, "[]", 0)
        ),
    );
    let doc = with(
        r#"      "requirement": {"allOf": ["dev", "ci"]}
"#,
        "",
    );
    let doc = doc.replace(
        r#""trustStores": ["ca:acme"],"#,
        r#""trustStores": ["ca:acme"]"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: rule \"prod\" has no requirement",
            at(&doc, "{\n      \"name\"", 0)
        ),
    );
}

#[test]
fn duplicate_rule_patterns_are_ambiguous() {
    let second = r#"    },
    {
      "name": "prod-again",
      "registryScopes": ["r.test/other", "r.test/team/*"],
      "namespaces": ["staging", "prod-*"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:acme"],
      "requirement": {"allOf": ["ci"]}
    }
  ]"#;
    let doc = with("    }\n  ]", second);
    let want = format!(
        "{}: rules \"prod\" and \"prod-again\" both apply to scope \"r.test/team/*\" in namespaces \"prod-*\" with the same specificity",
        at(&doc, "{\n      \"name\": \"prod-again\"", 0)
    );
    assert_one(&doc, &want);
    // the same patterns in another namespace are not ambiguous
    let ok = doc.replace(r#"["staging", "prod-*"]"#, r#"["staging"]"#);
    Policy::parse(ok.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    // a scope listed twice within a rule
    let doc = with(
        r#"["r.test/team/*"]"#,
        r#"["r.test/team/*", "r.test/team/*"]"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: scope \"r.test/team/*\" is listed twice",
            at(&doc, r#""r.test/team/*""#, 1)
        ),
    );
}

#[test]
fn malformed_distinguished_names_are_refused() {
    let doc = with("O=Acme, CN=ci", "O=Acme, CN");
    assert_one(
        &doc,
        &format!(
            "{}: malformed distinguished name in \"x509.subject: C=US, ST=WA, O=Acme, CN\": \"CN\" is not TYPE=value",
            at(&doc, r#""x509.subject: C=US, ST=WA, O=Acme, CN""#, 0)
        ),
    );
    let doc = with("C=US, ST=WA, O=Acme, CN=ci", "C=US, O=Acme, CN=ci");
    assert_one(
        &doc,
        &format!(
            "{}: identity \"x509.subject: C=US, O=Acme, CN=ci\" lacks ST",
            at(&doc, r#""x509.subject: C=US, O=Acme, CN=ci""#, 0)
        ),
    );
    let doc = with(
        "x509.subject: C=US, ST=WA, O=Acme, CN=ci",
        "x509.san: ci@acme",
    );
    assert_one(
        &doc,
        &format!(
            "{}: identity \"x509.san: ci@acme\" has unsupported type",
            at(&doc, r#""x509.san"#, 0)
        ),
    );
    // a bad certificate pin points at the pin
    let doc = with(
        r#""x509.subject: C=US, ST=WA, O=Acme, CN=ci""#,
        r#"{"identity": "x509.subject: C=US, ST=WA, O=Acme, CN=ci", "certificateSha256": "abc"}"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: certificateSha256 \"abc\" is not a SHA-256 in hex",
            at(&doc, r#""abc""#, 0)
        ),
    );
}

#[test]
fn a_role_defined_twice_is_refused_at_the_second() {
    let doc = with(
        r#"    "ci": {"#,
        r#"    "dev": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=x"]},
    "ci": {"#,
    );
    assert_one(
        &doc,
        &format!(
            "{}: \"dev\" appears twice in the same object",
            at(&doc, r#""dev": {"#, 1)
        ),
    );
}

#[test]
fn bad_patterns_are_refused() {
    let doc = with(r#"["prod-*"]"#, r#"["Prod_*"]"#);
    assert_one(
        &doc,
        &format!(
            "{}: namespace pattern \"Prod_*\" is not a Kubernetes namespace name or prefix",
            at(&doc, r#""Prod_*""#, 0)
        ),
    );
    let doc = with(r#"["r.test/team/*"]"#, r#"["r.test/*/x"]"#);
    assert_one(
        &doc,
        &format!(
            "{}: scope \"r.test/*/x\": \"*\" may only be the whole scope or its last component",
            at(&doc, r#""r.test/*/x""#, 0)
        ),
    );
    let doc = with(r#"["r.test/team/*"]"#, r#"["r.test/Team:latest"]"#);
    assert_one(
        &doc,
        &format!(
            "{}: scope \"r.test/Team:latest\"",
            at(&doc, r#""r.test/Team"#, 0)
        ),
    );
    let doc = with(r#""level": "strict""#, r#""level": "strictest""#);
    assert_one(
        &doc,
        &format!(
            "{}: unknown verification level \"strictest\"",
            at(&doc, r#""strictest""#, 0)
        ),
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let doc =
        with(r#""berth.policy/v1""#, r#""2""#).replace(r#"["dev", "ci"]}"#, r#"["dev", "qa"]}"#);
    let p = problems(&doc);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with("2:14: unsupported version"), "{p:#?}");
    assert!(p[1].starts_with("15:40: undefined role \"qa\""), "{p:#?}");
}

/// `namespaceSelector.matchLabels`: labels as Kubernetes spells them, never empty, nothing
/// but `matchLabels`.
#[test]
fn a_namespace_selector_is_checked() {
    let ok = with(
        r#""namespaces": ["prod-*"],"#,
        r#""namespaceSelector": {"matchLabels": {"tier": "gold", "example.com/team": "pay"}},"#,
    );
    let p = Policy::parse(ok.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.rules[0].namespace_selector.len(), 2);
    assert!(p.rules[0].namespaces.is_empty());
    let empty = with(
        r#""namespaces": ["prod-*"],"#,
        r#""namespaceSelector": {"matchLabels": {}},"#,
    );
    assert_one(
        &empty,
        &format!("{}: matchLabels is empty", at(&empty, "{}", 0)),
    );
    let bad = with(
        r#""namespaces": ["prod-*"],"#,
        r#""namespaceSelector": {"matchLabels": {"tier": "gold!"}},"#,
    );
    let p = problems(&bad);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].contains("label value \"gold!\""), "{p:?}");
    let expr = with(
        r#""namespaces": ["prod-*"],"#,
        r#""namespaceSelector": {"matchExpressions": []},"#,
    );
    let p = problems(&expr);
    assert!(p[0].contains("unknown field `matchExpressions`"), "{p:?}");
}

/// Two rules with selectors of one size that one namespace's labels could both satisfy
/// would tie; conflicting values or different sizes cannot.
#[test]
fn selectors_that_could_tie_are_refused() {
    let two = |a: &str, b: &str| {
        BASE.replacen(
            r#"      "namespaces": ["prod-*"],"#,
            &format!(r#"      "namespaceSelector": {{"matchLabels": {a}}},"#),
            1,
        )
        .replacen(
            "  ]\n}",
            &format!(
                r#"    ,{{
      "name": "other",
      "registryScopes": ["r.test/team/*"],
      "namespaceSelector": {{"matchLabels": {b}}},
      "signatureVerification": {{"level": "strict"}},
      "trustStores": ["ca:acme"],
      "requirement": {{"allOf": ["ci"]}}
    }}
  ]
}}"#
            ),
            1,
        )
    };
    let tie = two(r#"{"tier": "gold"}"#, r#"{"team": "pay"}"#);
    let p = problems(&tie);
    assert!(
        p[0].contains("rules \"prod\" and \"other\" both apply"),
        "{p:?}"
    );
    for (a, b) in [
        (r#"{"tier": "gold"}"#, r#"{"tier": "silver"}"#),
        (r#"{"tier": "gold"}"#, r#"{"tier": "gold", "team": "pay"}"#),
    ] {
        let doc = two(a, b);
        Policy::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{a} {b}: {e}"));
    }
}

#[test]
fn sbom_and_scan_requirements_are_read() {
    let doc = with(
        r#""requirement": {"allOf": ["dev", "ci"]}"#,
        r#""requirement": {"allOf": ["dev", "ci"]},
      "requireSbom": {"signedBy": "ci"},
      "requireScan": {"signedBy": "ci", "maxAgeDays": 7, "failOn": "high"}"#,
    );
    let p = Policy::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let r = &p.rules[0];
    assert_eq!(r.require_sbom.as_ref().unwrap().signed_by, "ci");
    let scan = r.require_scan.as_ref().unwrap();
    assert_eq!((scan.signed_by.as_str(), scan.max_age_days), ("ci", 7));
    assert_eq!(
        scan.fail_on,
        Some(berth_trust::evidence::ScanSeverity::High)
    );
    assert_eq!(
        scan.to_string(),
        "a scan report signed by role \"ci\" at most 7 day(s) old with no finding at or above high"
    );
    // failOn is optional: the age alone
    let doc = with(
        r#""requirement": {"allOf": ["dev", "ci"]}"#,
        r#""requirement": {"allOf": ["dev", "ci"]}, "requireScan": {"signedBy": "dev", "maxAgeDays": 1}"#,
    );
    let p = Policy::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.rules[0].require_scan.as_ref().unwrap().fail_on, None);
}

#[test]
fn bad_sbom_and_scan_requirements_point_at_the_field() {
    let req = r#""requirement": {"allOf": ["dev", "ci"]}"#;
    let doc = with(
        req,
        &format!(r#"{req}, "requireSbom": {{"signedBy": "release"}}"#),
    );
    assert_one(
        &doc,
        &format!(
            "{}: undefined role \"release\"; name the role whose signature the artifact must carry (defined: dev, ci)",
            at(&doc, r#""release""#, 0)
        ),
    );
    let doc = with(
        req,
        &format!(
            r#"{req}, "requireScan": {{"signedBy": "ci", "maxAgeDays": 0, "failOn": "severe"}}"#
        ),
    );
    let p = problems(&doc);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(&format!(
            "{}: maxAgeDays 0 is out of range",
            at(&doc, "0,", 0)
        )),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with(&format!(
            "{}: unknown severity \"severe\"",
            at(&doc, r#""severe""#, 0)
        )),
        "{p:#?}"
    );
    // maxAgeDays is required; unknown fields refused
    let doc = with(
        req,
        &format!(r#"{req}, "requireScan": {{"signedBy": "ci"}}"#),
    );
    assert!(
        problems(&doc)[0].contains("missing field `maxAgeDays`"),
        "{:?}",
        problems(&doc)
    );
    let doc = with(
        req,
        &format!(r#"{req}, "requireSbom": {{"signedBy": "ci", "format": "spdx"}}"#),
    );
    assert!(problems(&doc)[0].contains("unknown field `format`"));
    // a skip rule requires nothing
    let doc = with(r#"{"level": "strict"}"#, r#"{"level": "skip"}"#)
        .replacen(r#""trustStores": ["ca:acme"],"#, "", 1)
        .replacen(req, r#""requireSbom": {"signedBy": "ci"}"#, 1);
    assert_one(
        &doc,
        &format!(
            "{}: a skip rule verifies nothing and requires no SBOM",
            at(&doc, r#"{"signedBy""#, 0)
        ),
    );
}
