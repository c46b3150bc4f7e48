//! notation trust policies (`trustpolicy.json`): validation must never panic, and an accepted
//! policy has named statements with scopes, one global scope at most, and a statement for any
//! repository its scopes name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = berth_trust::TrustPolicy::parse(data) else {
        return;
    };
    assert!(!policy.statements.is_empty());
    let mut globals = 0;
    for s in &policy.statements {
        assert!(!s.name.trim().is_empty());
        assert!(!s.registry_scopes.is_empty());
        for scope in &s.registry_scopes {
            if scope == "*" {
                globals += 1;
            } else {
                let picked = policy.statement_for(scope).map(|p| p.name.clone());
                assert_eq!(
                    picked.ok().as_deref(),
                    Some(s.name.as_str()),
                    "scope {scope}"
                );
            }
        }
    }
    assert!(globals <= 1);
});
