//! Role-based policy (berth.policy/v1): evaluation over real verdicts of real envelopes
//! (tests/it/pki.rs), rule selection, and every `check` error with its LINE:COL.

use crate::pki::{self, forged_by, pki, signed_by, verified};
use berth_trust::roles::{IgnoredReason, Outcome, Policy, Rule};
use berth_trust::{Decision, VerifiedSignature, evaluate};
use std::path::Path;

pub fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/roles")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn acme() -> Policy {
    Policy::parse(&fixture("acme.json")).unwrap_or_else(|e| panic!("{e}"))
}

const PROD_IMAGE: &str = "registry.acme.test/shop/web";

fn rule<'a>(p: &'a Policy, scope: &str, ns: Option<&str>) -> &'a Rule {
    p.select(scope, ns)
        .unwrap_or_else(|| panic!("no rule for {scope} in {ns:?}"))
}

/// Signatures by these signers, verified under the rule for (scope, ns).
fn sigs(p: &Policy, scope: &str, ns: Option<&str>, who: &[&str]) -> Vec<VerifiedSignature> {
    let st = &rule(p, scope, ns).statement;
    who.iter().map(|w| signed_by(w, st)).collect()
}

fn role_line<'a>(d: &'a Decision, role: &str) -> &'a berth_trust::roles::RoleOutcome {
    match &d.outcome {
        Outcome::Roles { roles, .. } => roles
            .iter()
            .find(|r| r.role == role)
            .unwrap_or_else(|| panic!("no role {role} in {d}")),
        other => panic!("not a role outcome: {other:?}"),
    }
}

#[test]
fn dev_ci_and_prod_all_present_is_allowed_and_explained() {
    let p = acme();
    let s = sigs(&p, PROD_IMAGE, Some("prod-eu"), &["dev", "ci", "prod"]);
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
    assert!(d.allowed && d.satisfied && d.enforced, "{d}");
    assert_eq!(d.rule.as_deref(), Some("production"));
    assert_eq!(d.signers_counted, 3);
    assert!(d.ignored.is_empty(), "{d}");
    let ci = role_line(&d, "ci").satisfied_by.as_ref().expect("ci");
    assert_eq!(ci.signature, s[1].digest());
    let text = d.to_string();
    assert!(text.starts_with("allowed: registry.acme.test/shop/web in namespace prod-eu, rule \"production\" (level strict)"), "{text}");
    let short = &s[1].digest()[..19];
    assert!(
        text.contains(&format!(
            "role ci: satisfied by {short}… (CN=ci,OU=builds,O=Acme,ST=WA,C=US)"
        )),
        "{text}"
    );
}

#[test]
fn one_role_missing_is_denied_naming_it() {
    let p = acme();
    let s = sigs(&p, PROD_IMAGE, Some("payments"), &["dev", "ci"]);
    let d = evaluate(&p, PROD_IMAGE, Some("payments"), &s);
    assert!(!d.allowed && !d.satisfied, "{d}");
    assert_eq!(d.signers_counted, 2);
    let prod = role_line(&d, "prod");
    assert!(prod.satisfied_by.is_none());
    let text = d.to_string();
    assert!(text.starts_with("denied:"), "{text}");
    assert!(
        text.contains("role prod: missing — no valid signature by a trusted identity of prod"),
        "{text}"
    );
}

#[test]
fn a_forged_signature_is_not_counted_and_the_role_stays_missing() {
    let p = acme();
    let st = &rule(&p, PROD_IMAGE, Some("prod-eu")).statement;
    let s = vec![
        signed_by("dev", st),
        signed_by("ci", st),
        forged_by("prod", st),
    ];
    assert!(!s[2].verdict().passed, "the forgery must fail verification");
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
    assert!(!d.allowed, "{d}");
    assert_eq!(d.signers_counted, 2);
    assert!(role_line(&d, "prod").satisfied_by.is_none());
    assert_eq!(d.ignored.len(), 1, "{d}");
    assert_eq!(d.ignored[0].signature, s[2].digest());
    assert!(
        matches!(&d.ignored[0].reason, IgnoredReason::Invalid { detail } if detail.contains("Integrity")),
        "{:?}",
        d.ignored[0]
    );
    assert!(d.to_string().contains("invalid — Integrity"), "{d}");
}

#[test]
fn the_same_key_signing_twice_for_two_roles_counts_once() {
    let p = acme();
    // "devci" is a second certificate, CN=ci, for dev's key: one person holding both
    let s = sigs(&p, PROD_IMAGE, Some("prod-eu"), &["dev", "devci", "prod"]);
    assert_eq!(s[0].key_sha256(), s[1].key_sha256());
    assert_ne!(s[0].certificate_sha256(), s[1].certificate_sha256());
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
    assert!(!d.allowed, "one key must not fill both dev and ci: {d}");
    assert_eq!(d.signers_counted, 2);
    let text = d.to_string();
    assert!(
        text.contains("role ci: missing — key sha256:")
            && text.contains("already fills role dev; one key fills at most one role"),
        "{text}"
    );
    assert!(
        d.ignored.iter().any(|i| i.signature == s[1].digest()
            && matches!(&i.reason, IgnoredReason::DuplicateKey { counted } if counted == s[0].digest())),
        "{d}"
    );
    // the real CI signing as well satisfies it
    let mut s2 = s.clone();
    s2.extend(sigs(&p, PROD_IMAGE, Some("prod-eu"), &["ci"]));
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s2);
    assert!(d.allowed, "{d}");
}

#[test]
fn a_key_matching_two_roles_gives_way_to_a_key_matching_one() {
    // allOf [ci, dev]: dev's key (certificates CN=dev and CN=ci) comes first and could take
    // ci; the CI key can only be ci. A greedy count denies; the matching allows.
    let text = String::from_utf8(fixture("acme.json")).unwrap().replace(
        r#""requirement": {"allOf": ["ci"]}"#,
        r#""requirement": {"allOf": ["ci", "dev"]}"#,
    );
    let p = Policy::parse(text.as_bytes()).unwrap();
    let img = "registry.other.test/x";
    let s = sigs(&p, img, None, &["devci", "dev", "ci"]);
    let d = evaluate(&p, img, None, &s);
    assert!(d.allowed, "{d}");
    assert_eq!(
        role_line(&d, "ci").satisfied_by.as_ref().unwrap().signature,
        s[2].digest()
    );
    assert_eq!(
        role_line(&d, "dev")
            .satisfied_by
            .as_ref()
            .unwrap()
            .signature,
        s[1].digest(),
        "dev's key fills dev through its CN=dev certificate"
    );
}

#[test]
fn k_of_n_counts_distinct_keys_not_signatures() {
    let p = acme();
    let img = "registry.acme.test/libs/core";
    assert_eq!(rule(&p, img, None).name, "core-libraries");
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["alice", "carol"]));
    assert!(d.allowed, "{d}");
    assert_eq!(d.signers_counted, 2);
    // alice twice (two envelopes, two digests, one key) is one signer
    let twice = sigs(&p, img, None, &["alice", "alice"]);
    assert_ne!(twice[0].digest(), twice[1].digest());
    let d = evaluate(&p, img, None, &twice);
    assert!(!d.allowed, "{d}");
    assert_eq!(d.signers_counted, 1);
    assert!(matches!(
        &d.ignored[0].reason,
        IgnoredReason::DuplicateKey { .. }
    ));
    assert!(
        d.to_string()
            .contains("requires 2 distinct signers of roles alice, bob, carol; 1 counted"),
        "{d}"
    );
    // a trusted chain that is no maintainer does not count
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["alice", "mallory"]));
    assert!(!d.allowed, "{d}");
    assert!(matches!(
        d.ignored[0].reason,
        IgnoredReason::NotARoleIdentity
    ));
}

#[test]
fn any_trusted_counts_distinct_keys() {
    let p = acme();
    let img = "registry.acme.test/any/thing";
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["mallory", "bob"]));
    assert!(d.allowed, "{d}");
    assert!(matches!(&d.outcome, Outcome::AnyTrusted { signers, .. } if signers.len() == 2));
    // two certificates of one key are one signer
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["dev", "devci"]));
    assert!(!d.allowed, "{d}");
    assert_eq!(d.signers_counted, 1);
    // a chain to a root outside the trust store is not trusted
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["bob", "outsider"]));
    assert!(!d.allowed, "{d}");
    assert!(
        matches!(&d.ignored[0].reason, IgnoredReason::Invalid { detail } if detail.contains("Authenticity")),
        "{d}"
    );
}

/// Junk anyone with push rights can attach: garbage bytes, signatures over another image,
/// forgeries, untrusted roots, trusted signers outside the roles.
fn junk(st: &berth_trust::policy::PolicyStatement, n: usize) -> Vec<VerifiedSignature> {
    let mut other = pki::target();
    other.digest = format!("sha256:{}", "c".repeat(64));
    let over_other = pki::envelope(pki().signer("prod"), &other);
    (0..n)
        .map(|i| match i % 5 {
            0 => verified(format!("junk {i}").as_bytes(), st),
            1 => verified(&over_other, st),
            2 => forged_by("ci", st),
            3 => signed_by("outsider", st),
            _ => signed_by("mallory", st),
        })
        .collect()
}

#[test]
fn two_hundred_junk_signatures_do_not_spoil_a_valid_set() {
    let p = acme();
    let st = &rule(&p, PROD_IMAGE, Some("prod-eu")).statement;
    let mut s = junk(st, 100);
    s.extend(sigs(
        &p,
        PROD_IMAGE,
        Some("prod-eu"),
        &["dev", "ci", "prod"],
    ));
    s.extend(junk(st, 100));
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
    assert!(d.allowed, "{d}");
    assert_eq!(d.signers_counted, 3);
    assert_eq!(d.ignored.len(), 200);
    // and junk alone is denied
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &junk(st, 200));
    assert!(!d.allowed);
    assert_eq!(d.signers_counted, 0);
}

#[test]
fn the_namespace_specific_rule_beats_the_default() {
    let p = acme();
    let s = sigs(&p, PROD_IMAGE, None, &["ci"]);
    // only CI signed: enough by default, not in production namespaces
    let d = evaluate(&p, PROD_IMAGE, None, &s);
    assert_eq!(d.rule.as_deref(), Some("default"));
    assert!(d.allowed, "{d}");
    let d = evaluate(&p, PROD_IMAGE, Some("web"), &s);
    assert_eq!(d.rule.as_deref(), Some("default"));
    assert!(d.allowed, "{d}");
    for ns in ["prod-eu", "payments"] {
        let d = evaluate(&p, PROD_IMAGE, Some(ns), &s);
        assert_eq!(d.rule.as_deref(), Some("production"), "{ns}");
        assert!(!d.allowed, "{d}");
    }
    // namespaces match exactly or by prefix: "payments-x" and "prod" are not production
    for ns in ["payments-x", "prod", "preprod-eu"] {
        assert_eq!(rule(&p, PROD_IMAGE, Some(ns)).name, "default", "{ns}");
    }
}

#[test]
fn audit_namespaces_report_but_do_not_enforce() {
    let p = acme();
    let img = "registry.acme.test/shop/web";
    let s = sigs(&p, img, Some("dev-alice"), &["dev"]);
    let d = evaluate(&p, img, Some("dev-alice"), &s);
    assert_eq!(d.rule.as_deref(), Some("development"));
    assert!(d.allowed && !d.satisfied && !d.enforced, "{d}");
    assert!(
        d.to_string()
            .starts_with("allowed (audit: the requirement is not met"),
        "{d}"
    );
    assert!(d.to_string().contains("role ci: missing"), "{d}");
}

#[test]
fn a_verdict_at_a_weaker_level_does_not_count() {
    let p = acme();
    let audit = &rule(&p, PROD_IMAGE, Some("dev-x")).statement;
    let s: Vec<_> = ["dev", "ci", "prod"]
        .iter()
        .map(|w| signed_by(w, audit))
        .collect();
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
    assert!(!d.allowed, "{d}");
    assert!(matches!(
        &d.ignored[0].reason,
        IgnoredReason::WeakerLevel { verified, required } if verified == "audit" && required == "strict"
    ));
}

#[test]
fn no_applicable_rule_denies_with_the_reason() {
    let p = Policy::parse(
        br#"{"version":"berth.policy/v1","trustStores":["ca:acme"],
        "roles":{"ci":{"trustedIdentities":["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]}},
        "rules":[{"name":"only","registryScopes":["registry.acme.test/a"],
        "signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],
        "requirement":{"allOf":["ci"]}}]}"#,
    )
    .unwrap();
    let d = evaluate(&p, "registry.acme.test/b", None, &[]);
    assert!(!d.allowed && d.rule.is_none());
    assert!(
        d.to_string()
            .contains("no rule of the policy applies to registry.acme.test/b")
    );
}

#[test]
fn scope_and_namespace_patterns_pick_the_most_specific_rule() {
    let rule_json = |name: &str, scopes: &str, ns: Option<&str>| {
        format!(
            r#"{{"name":"{name}","registryScopes":{scopes},{}"signatureVerification":{{"level":"strict"}},"trustStores":["ca:acme"],"requirement":{{"allOf":["ci"]}}}}"#,
            ns.map(|n| format!(r#""namespaces":{n},"#))
                .unwrap_or_default()
        )
    };
    let rules = [
        rule_json("any", r#"["*"]"#, None),
        rule_json("registry", r#"["r.test/*"]"#, None),
        rule_json("team", r#"["r.test/team/*"]"#, None),
        rule_json("app", r#"["r.test/team/app"]"#, None),
        rule_json("ns-any", r#"["*"]"#, Some(r#"["*"]"#)),
        rule_json("ns-prod", r#"["*"]"#, Some(r#"["prod-*"]"#)),
        rule_json("ns-prod-eu", r#"["*"]"#, Some(r#"["prod-eu-*"]"#)),
        rule_json(
            "ns-prod-eu-team",
            r#"["r.test/team/*"]"#,
            Some(r#"["prod-eu-*"]"#),
        ),
        rule_json("ns-exact", r#"["*"]"#, Some(r#"["prod-eu-1"]"#)),
    ]
    .join(",");
    let doc = format!(
        r#"{{"version":"berth.policy/v1","trustStores":["ca:acme"],"roles":{{"ci":{{"trustedIdentities":["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]}}}},"rules":[{rules}]}}"#
    );
    let p = Policy::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    for (scope, ns, want) in [
        ("r.test/team/app", None, "app"),
        ("r.test/team/app/sub", None, "team"),
        ("r.test/team/other", None, "team"),
        ("r.test/teamx/app", None, "registry"),
        ("r.test/x", None, "registry"),
        ("r2.test/team/app", None, "any"),
        ("r.test/team/app", Some("web"), "ns-any"),
        ("r.test/team/app", Some("prod-us"), "ns-prod"),
        ("r.test/x", Some("prod-eu-2"), "ns-prod-eu"),
        ("r.test/team/app", Some("prod-eu-2"), "ns-prod-eu-team"),
        ("r.test/team/app", Some("prod-eu-1"), "ns-exact"),
    ] {
        assert_eq!(rule(&p, scope, ns).name, want, "{scope} in {ns:?}");
    }
}

#[test]
fn a_certificate_pin_narrows_a_role_to_one_certificate() {
    let ci = pki().signer("ci");
    let fp = pki::digest_of(ci.leaf_der());
    let doc = |pin: &str| {
        format!(
            r#"{{"version":"berth.policy/v1","trustStores":["ca:acme"],
            "roles":{{"ci":{{"trustedIdentities":[{{"identity":"x509.subject: C=US, ST=WA, O=Acme, CN=ci","certificateSha256":"{pin}"}}]}}}},
            "rules":[{{"name":"r","registryScopes":["*"],"signatureVerification":{{"level":"strict"}},
            "trustStores":["ca:acme"],"requirement":{{"allOf":["ci"]}}}}]}}"#
        )
    };
    let p = Policy::parse(doc(&fp).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let img = "r.test/a";
    // the pinned certificate counts; devci has the same subject (CN=ci) but another certificate
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["ci"]));
    assert!(d.allowed, "{d}");
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["devci"]));
    assert!(!d.allowed, "{d}");
    assert!(matches!(
        d.ignored[0].reason,
        IgnoredReason::NotARoleIdentity
    ));
    // openssl's colon form and upper case are accepted
    let colons = fp.as_bytes()[7..]
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let p = Policy::parse(doc(&colons).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let d = evaluate(&p, img, None, &sigs(&p, img, None, &["ci"]));
    assert!(d.allowed, "{d}");
}

#[test]
fn skip_rules_allow_without_verifying() {
    let p = Policy::parse(
        br#"{"version":"berth.policy/v1","rules":[{"name":"sandbox","registryScopes":["*"],
        "namespaces":["sandbox"],"signatureVerification":{"level":"skip"}}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let d = evaluate(&p, "r.test/a", Some("sandbox"), &[]);
    assert!(
        d.allowed && !d.enforced && d.outcome == Outcome::Skipped,
        "{d}"
    );
    // outside that namespace no rule applies
    assert!(!evaluate(&p, "r.test/a", Some("prod"), &[]).allowed);
}

/// The decision serialises for `--format json` and the admission webhook.
#[test]
fn the_decision_serialises_to_json() {
    let p = acme();
    let s = sigs(&p, PROD_IMAGE, Some("prod-eu"), &["dev", "ci", "mallory"]);
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["rule"], "production");
    assert_eq!(v["outcome"]["kind"], "roles");
    assert_eq!(v["outcome"]["roles"][2]["role"], "prod");
    assert!(v["outcome"]["roles"][2]["satisfiedBy"].is_null());
    assert_eq!(v["ignored"][0]["reason"], "notARoleIdentity");
}

/// Repeated evaluation gives the same decision every time (no state carried between calls),
/// and prints its timing for docs/performance.md — never asserted, as CI's machine is shared:
/// `cargo test --release -p berth-trust --test it roles::evaluation_micro_bench -- --nocapture`
#[test]
fn evaluation_micro_bench() {
    let p = acme();
    for (label, who) in [
        ("3 signatures", vec!["dev", "ci", "prod"]),
        (
            "10 signatures",
            vec![
                "mallory", "dev", "devci", "ci", "alice", "bob", "carol", "outsider", "prod", "dev",
            ],
        ),
    ] {
        let s = sigs(&p, PROD_IMAGE, Some("prod-eu"), &who);
        let first = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
        assert!(first.allowed, "{first}");
        let mut times = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let t = std::time::Instant::now();
            let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &s);
            times.push(t.elapsed());
            assert_eq!(d, first);
        }
        times.sort();
        println!(
            "evaluate, {label}: median {:?}, p99 {:?} over 2000",
            times[1_000], times[1_980]
        );
    }
}

/// The same policy over envelopes berth itself signs (`berth_trust::sign`, JWS and COSE, EC
/// P-256 and P-384 keys, certificates from `certgen`), verified by `verify`: dev + CI + prod
/// allowed; dev's key with a second, CN=ci certificate fills one role only.
#[test]
fn envelopes_berth_signs_fill_roles_by_key() {
    use berth_trust::cert::DistinguishedName;
    use berth_trust::certgen::{self, CertParams};
    use berth_trust::{EnvelopeFormat, KeySpec, SignOptions, SigningKey, Timestamp, TrustStore};

    let params = |cn: &str| CertParams {
        subject: DistinguishedName(vec![
            ("C".into(), "US".into()),
            ("ST".into(), "WA".into()),
            ("O".into(), "Acme".into()),
            ("CN".into(), cn.into()),
        ]),
        not_before: Timestamp(Timestamp::now().0 - 60),
        not_after: Timestamp(Timestamp::now().0 + 86_400),
    };
    let ca_key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let ca = certgen::ca(&params("Acme Root"), &ca_key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("x509/ca/acme");
    std::fs::create_dir_all(&store_dir).unwrap();
    std::fs::write(store_dir.join("root.der"), ca.der()).unwrap();
    let store = TrustStore::new(tmp.path());

    let p = acme();
    let st = &rule(&p, PROD_IMAGE, Some("prod-eu")).statement;
    let target = pki::target();
    let sign_as = |cn: &str, key: &SigningKey, format| {
        let leaf = certgen::leaf(&params(cn), key, &ca, &ca_key).unwrap();
        let env = berth_trust::sign(&target, key, &[leaf, ca.clone()], &SignOptions::new(format))
            .unwrap();
        let opts = berth_trust::VerifyOptions {
            statement: st,
            artifact: Some(&target),
            now: Timestamp::now(),
            revocation: &berth_trust::revocation::HTTP,
        };
        let verdict = berth_trust::verify(&env, format.media_type(), &store, &opts);
        assert!(verdict.passed, "{cn}: {:?}", verdict.failure());
        VerifiedSignature::new(pki::digest_of(&env), verdict)
    };
    let dev_key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let ci_key = SigningKey::generate(KeySpec::EcP384).unwrap();
    let prod_key = SigningKey::generate(KeySpec::EcP256).unwrap();
    let dev = sign_as("dev", &dev_key, EnvelopeFormat::Cose);
    let ci = sign_as("ci", &ci_key, EnvelopeFormat::Jws);
    let prod = sign_as("prod", &prod_key, EnvelopeFormat::Cose);
    let dev_as_ci = sign_as("ci", &dev_key, EnvelopeFormat::Jws);

    let all = [dev.clone(), ci, prod.clone()];
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &all);
    assert!(d.allowed, "{d}");
    let d = evaluate(&p, PROD_IMAGE, Some("prod-eu"), &[dev, dev_as_ci, prod]);
    assert!(!d.allowed, "{d}");
    assert!(
        role_line(&d, "ci")
            .missing
            .as_deref()
            .unwrap()
            .contains("already fills role dev"),
        "{d}"
    );
}

/// `verify_and_evaluate`: fetched envelopes in, decision out (the call `berth verify
/// --policy` and the webhook make).
#[test]
fn verify_and_evaluate_takes_fetched_envelopes() {
    use berth_trust::envelope::MEDIA_TYPE_JWS;
    use berth_trust::roles::FetchedSignature;
    let p = acme();
    let target = pki::target();
    let envs: Vec<Vec<u8>> = ["dev", "ci", "prod"]
        .iter()
        .map(|w| pki::envelope(pki().signer(w), &target))
        .collect();
    let digests: Vec<String> = envs.iter().map(|e| pki::digest_of(e)).collect();
    let fetched: Vec<FetchedSignature<'_>> = envs
        .iter()
        .zip(&digests)
        .map(|(e, d)| FetchedSignature {
            digest: d,
            media_type: MEDIA_TYPE_JWS,
            envelope: e,
        })
        .collect();
    let now = berth_trust::Timestamp::now();
    let d = p.verify_and_evaluate(
        PROD_IMAGE,
        Some("prod-eu"),
        &target,
        &fetched,
        &pki().store,
        now,
    );
    assert!(d.allowed, "{d}");
    // the same signatures do not count for another image
    let mut other = target.clone();
    other.digest = format!("sha256:{}", "d".repeat(64));
    let d = p.verify_and_evaluate(
        PROD_IMAGE,
        Some("prod-eu"),
        &other,
        &fetched,
        &pki().store,
        now,
    );
    assert!(!d.allowed, "{d}");
    assert_eq!(d.ignored.len(), 3);
    assert!(
        d.to_string().contains("the signature is over sha256:bbbb"),
        "{d}"
    );
    // no rule: nothing verified, denied
    let strict_only = Policy::parse(
        br#"{"version":"berth.policy/v1","trustStores":["ca:acme"],"roles":{"ci":{"trustedIdentities":["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]}},
        "rules":[{"name":"a","registryScopes":["r.test/a"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"requirement":{"allOf":["ci"]}}]}"#,
    )
    .unwrap();
    let d = strict_only.verify_and_evaluate(PROD_IMAGE, None, &target, &fetched, &pki().store, now);
    assert!(!d.allowed && d.rule.is_none(), "{d}");
}

/// `namespaceSelector`: a rule for labelled namespaces applies only where the labels match;
/// it beats `*` and a rule without namespaces, loses to a name pattern, and a selector asking
/// more labels beats one asking fewer. Without labels (outside the webhook) it never applies.
#[test]
fn rules_by_namespace_labels() {
    let doc = r#"{
      "version": "berth.policy/v1",
      "trustStores": ["ca:acme"],
      "roles": {"ci": {"trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=ci"]}},
      "rules": [
        {"name": "everywhere", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}},
        {"name": "any-ns", "registryScopes": ["*"], "namespaces": ["*"], "signatureVerification": {"level": "skip"}},
        {"name": "gold", "registryScopes": ["*"], "namespaceSelector": {"matchLabels": {"tier": "gold"}},
         "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"], "requirement": {"allOf": ["ci"]}},
        {"name": "gold-pay", "registryScopes": ["*"], "namespaceSelector": {"matchLabels": {"tier": "gold", "team": "pay"}},
         "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"], "requirement": {"allOf": ["ci"]}},
        {"name": "prod", "registryScopes": ["*"], "namespaces": ["prod-*"], "signatureVerification": {"level": "skip"}}
      ]
    }"#;
    let p = Policy::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let labels = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let pick = |ns: Option<&str>, l: Option<&std::collections::BTreeMap<String, String>>| {
        p.select_with_labels("r.test/app", ns, l)
            .map(|r| r.name.as_str())
    };
    let gold = labels(&[("tier", "gold")]);
    let gold_pay = labels(&[("tier", "gold"), ("team", "pay")]);
    let bronze = labels(&[("tier", "bronze")]);
    assert_eq!(pick(Some("web"), Some(&gold)), Some("gold"));
    assert_eq!(pick(Some("web"), Some(&gold_pay)), Some("gold-pay"));
    assert_eq!(pick(Some("web"), Some(&bronze)), Some("any-ns"));
    assert_eq!(pick(Some("web"), None), Some("any-ns"), "unknown labels");
    assert_eq!(
        pick(Some("prod-eu"), Some(&gold)),
        Some("prod"),
        "a name pattern first"
    );
    assert_eq!(pick(None, Some(&gold)), Some("everywhere"), "no namespace");
    // select() is select_with_labels without labels
    assert_eq!(p.select("r.test/app", Some("web")).unwrap().name, "any-ns");
    // and evaluation chooses the same rule
    let d =
        berth_trust::roles::evaluate_with_labels(&p, "r.test/app", Some("web"), Some(&gold), &[]);
    assert_eq!(d.rule.as_deref(), Some("gold"));
    assert!(!d.allowed, "ci is missing: {d}");
}
