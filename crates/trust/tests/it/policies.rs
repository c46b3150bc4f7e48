use berth_trust::policy::{Action, Level, TrustPolicy};

const DIR: &str = "notation/test/e2e/testdata/config/trustpolicies";

fn parse(name: &str) -> Result<TrustPolicy, berth_trust::PolicyError> {
    TrustPolicy::parse(&crate::read(&format!("{DIR}/{name}")))
}

/// Every trust policy file of notation's e2e suite gets notation's verdict on loading.
#[test]
fn notation_trust_policy_files_get_notations_verdict() {
    let valid = [
        "any_registry_scope_trust_policy.json",
        "audit_trustpolicy.json",
        "generate_test_trustpolicy.json",
        // syntactically valid; they fail at verification (no such repo / store / subject)
        "invalid_registry_scope_trustpolicy.json",
        "invalid_trust_store_trustpolicy.json",
        "invalid_trusted_identity_trustpolicy.json",
        "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
        "multiple_registry_scope_trustpolicy.json",
        "multiple_trust_store_trustpolicy.json",
        "multiple_trusted_identity_trustpolicy.json",
        // notation does not check overlapping trust stores (its e2e test is skipped for that)
        "overlapped_trust_store_trustpolicy.json",
        "override_audit_trustpolicy.json",
        "override_permissive_trustpolicy.json",
        "override_strict_trustpolicy.json",
        "permissive_trustpolicy.json",
        "quickstart_trustpolicy.json",
        "registry_scope_trustpolicy.json",
        "skip_trustpolicy.json",
        "timestamp_after_cert_expiry_trustpolicy.json",
        "timestamp_trustpolicy.json",
        "trustpolicy.json",
        "valid_trusted_identity_trustpolicy.json",
    ];
    let invalid = [
        // a blob policy (globalPolicy, no registryScopes) is not an OCI policy
        ("blob_trust_policy.json", "not valid JSON"),
        (
            "empty_registry_scope_trustpolicy.json",
            "registryScopes is empty",
        ),
        (
            "empty_trusted_identity_trustpolicy.json",
            "not \"x509.subject: DN\"",
        ),
        ("invalid_format_trustpolicy.json", "not valid JSON"),
        (
            "malformed_registry_scope_trustpolicy.json",
            "not REGISTRY/REPOSITORY",
        ),
        ("malformed_trust_store_trustpolicy.json", "name must be"),
        (
            "malformed_trusted_identity_trustpolicy.json",
            "not \"x509.subject: DN\"",
        ),
        (
            "missing_country_trusted_identity_trustpolicy.json",
            "lacks C",
        ),
        (
            "missing_organization_trusted_identity_trustpolicy.json",
            "lacks O",
        ),
        (
            "missing_state_trusted_identity_trustpolicy.json",
            "lacks ST",
        ),
        (
            "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json",
            "global scope",
        ),
        (
            "multi_statements_with_the_same_name_trustpolicy.json",
            "named \"e2e\"",
        ),
        (
            "multi_statements_with_the_same_registry_scope_trustpolicy.json",
            "is in both statements",
        ),
        ("overlapped_registry_scope_trustpolicy.json", "listed twice"),
        ("overlapped_trusted_identity_trustpolicy.json", "overlaps"),
        (
            "override_integrity_for_permissive_trustpolicy.json",
            "integrity validation cannot be overridden",
        ),
        ("unset_trust_store_trustpolicy.json", "trustStores is empty"),
        (
            "unset_trusted_identity_trustpolicy.json",
            "trustedIdentities is empty",
        ),
        (
            "wildcard_plus_other_registry_scope_trustpolicy.json",
            "must be the only scope",
        ),
        (
            "wildcard_plus_other_trusted_identity_trustpolicy.json",
            "must be the only identity",
        ),
        ("wildcard_trust_store_trustpolicy.json", "not TYPE:NAME"),
    ];
    let listed: usize = valid.len() + invalid.len();
    let on_disk = std::fs::read_dir(crate::vectors().join(DIR))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        listed, on_disk,
        "every policy file in {DIR} must have a verdict here"
    );
    for name in valid {
        if let Err(e) = parse(name) {
            panic!("{name} should load, got: {e}");
        }
    }
    for (name, why) in invalid {
        match parse(name) {
            Ok(_) => panic!("{name} should be refused ({why})"),
            Err(e) => {
                let msg = format!("{e}");
                assert!(msg.contains(why), "{name}: expected {why:?} in {msg:?}");
            }
        }
    }
}

#[test]
fn levels_and_overrides_follow_the_specification_table() {
    let p = parse("override_strict_trustpolicy.json").expect("valid");
    let v = p.statements[0].verification;
    assert_eq!(v.level, Level::Strict);
    assert_eq!(
        (
            v.authenticity,
            v.authentic_timestamp,
            v.expiry,
            v.revocation
        ),
        (Action::Log, Action::Log, Action::Log, Action::Log)
    );
    let p = parse("permissive_trustpolicy.json").expect("valid");
    let v = p.statements[0].verification;
    assert_eq!(
        (
            v.authenticity,
            v.authentic_timestamp,
            v.expiry,
            v.revocation
        ),
        (Action::Enforce, Action::Log, Action::Log, Action::Log)
    );
    let p = parse("audit_trustpolicy.json").expect("valid");
    assert_eq!(p.statements[0].verification.authenticity, Action::Log);
}

#[test]
fn statement_selection_prefers_the_exact_scope_over_the_global_one() {
    let p = parse("multi_statements_with_wildcard_registry_scope_trustpolicy.json").expect("valid");
    assert_eq!(
        p.statement_for("localhost:5000/test-repo9")
            .map(|s| s.name.as_str())
            .ok(),
        Some("e2e")
    );
    assert_eq!(
        p.statement_for("localhost:5000/other")
            .map(|s| s.name.as_str())
            .ok(),
        Some("e2e2")
    );
    let p = parse("registry_scope_trustpolicy.json").expect("valid");
    assert!(
        p.statement_for("localhost:5000/other").is_err(),
        "no statement applies: refused"
    );
}

#[test]
fn trusted_identities_match_subject_attributes() {
    let p = parse("valid_trusted_identity_trustpolicy.json").expect("valid");
    let cert = &berth_trust::Certificate::parse_many(&crate::read(
        "notation/test/e2e/testdata/config/localkeys/e2e.crt",
    ))
    .expect("e2e.crt")[0];
    assert!(
        p.statements[0].trusted_identities[0].matches(&cert.subject),
        "{}",
        cert.subject
    );
    let p = parse("invalid_trusted_identity_trustpolicy.json").expect("valid");
    assert!(
        !p.statements[0].trusted_identities[0].matches(&cert.subject),
        "C=USB must not match C=US"
    );
}
