//! berth role policies (`berth.policy/v1`): parsing never panics; a refusal has problems, each
//! at a line and column inside the input; an accepted policy has rules, every role its
//! requirements name is defined, each rule is selected for its own exact scope and namespace,
//! and evaluating with no signatures never panics and allows only where nothing is enforced.
#![no_main]

use berth_trust::roles::{NamespacePattern, Policy, Requirement, ScopePattern, Signers, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = match Policy::parse(data) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.problems.is_empty());
            let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
            for p in &e.problems {
                assert!(p.position.line >= 1 && p.position.column >= 1, "{p}");
                assert!(p.position.line <= lines, "{p} past line {lines}");
            }
            return;
        }
    };
    assert!(!policy.rules.is_empty());
    for rule in &policy.rules {
        let roles: &[String] = match &rule.requirement {
            Some(Requirement::AllOf(r)) => r,
            Some(Requirement::AtLeast {
                count,
                of: Signers::Roles(r),
            }) => {
                assert!(*count >= 1 && *count <= r.len());
                r
            }
            Some(Requirement::AtLeast { count, .. }) => {
                assert!(*count >= 1);
                &[]
            }
            None => &[],
        };
        for r in roles {
            assert!(policy.role(r).is_some(), "undefined role {r} accepted");
        }
        let ns: Option<&str> = match rule.namespaces.first() {
            None => None,
            Some(NamespacePattern::Exact(n)) => Some(n),
            Some(_) => continue,
        };
        for scope in &rule.scopes {
            if let ScopePattern::Exact(s) = scope {
                let picked = policy.select(s, ns).map(|r| r.name.as_str());
                assert_eq!(picked, Some(rule.name.as_str()), "{s} in {ns:?}");
                let d = evaluate(&policy, s, ns, &[]);
                assert_eq!(d.rule.as_deref(), Some(rule.name.as_str()));
                assert!(!d.allowed || !d.enforced, "allowed with no signature: {d}");
                let _ = d.to_string();
            }
        }
    }
});
