//! The OSV schema's evaluation (`IsVulnerable`): introduced/fixed/last_affected/limit
//! events, several ranges, `versions[]`, over a simple numeric order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: failing loudly is the point; test inputs in a temporary directory need no atomic writes"
)]

use std::cell::RefCell;
use std::cmp::Ordering;

use berth_sbom::osv::{Affected, Record, Scheme, Verdict, evaluate};
use berth_sbom::package::Ecosystem;
use serde_json::{Value, json};

use crate::osv_common::numeric;

fn affected(ranges: Value, versions: Value) -> Affected {
    let rec = json!({
        "id": "TEST-1", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "p"}, "ranges": ranges, "versions": versions}],
    });
    Record::parse(&serde_json::to_vec(&rec).unwrap(), "TEST-1.json")
        .unwrap()
        .affected
        .remove(0)
}

fn eco(events: Value) -> Affected {
    affected(json!([{"type": "ECOSYSTEM", "events": events}]), json!([]))
}

fn verdict(a: &Affected, v: &str) -> Verdict {
    evaluate(a, Ecosystem::PyPI, v, &numeric).unwrap()
}

fn is(a: &Affected, v: &str) -> bool {
    verdict(a, v).affected
}

#[test]
fn introduced_zero_and_fixed() {
    let a = eco(json!([{"introduced": "0"}, {"fixed": "1.0.2"}]));
    for v in ["0.0.1", "0.9", "1.0.1", "1.0.1.9"] {
        assert!(is(&a, v), "{v}");
    }
    for v in ["1.0.2", "1.0.10", "2"] {
        assert!(!is(&a, v), "{v}");
    }
    assert_eq!(verdict(&a, "1.0.1").fixed, ["1.0.2"]);
    // every version affected, no fix
    let all = eco(json!([{"introduced": "0"}]));
    assert!(is(&all, "0.0.0.1") && is(&all, "99"));
    assert!(verdict(&all, "1").fixed.is_empty());
}

#[test]
fn several_introduced_fixed_pairs_in_any_order() {
    // the schema's "multiple range example", events given out of order
    let a = eco(
        json!([{"fixed": "3.2.5"}, {"introduced": "1.0.0"}, {"introduced": "3.0.0"}, {"fixed": "1.0.2"}]),
    );
    let cases = [
        ("0.9", false),
        ("1.0.0", true),
        ("1.0.1", true),
        ("1.0.2", false),
        ("2.9", false),
        ("3.0.0", true),
        ("3.2.4", true),
        ("3.2.5", false),
        ("4", false),
    ];
    for (v, want) in cases {
        assert_eq!(is(&a, v), want, "{v}");
    }
    // the fix reported is the one that closes the version's own interval
    assert_eq!(verdict(&a, "1.0.1").fixed, ["1.0.2"]);
    assert_eq!(verdict(&a, "3.1").fixed, ["3.2.5"]);
}

#[test]
fn last_affected_includes_the_version_itself() {
    let a = eco(json!([{"introduced": "0"}, {"last_affected": "2.1.214"}]));
    assert!(is(&a, "2.1.214"));
    assert!(is(&a, "2.1.9"));
    assert!(!is(&a, "2.1.215"));
    assert!(
        verdict(&a, "2.1.214").fixed.is_empty(),
        "last_affected is no fix"
    );
    // the same with fixed: 2.1.214 is not affected
    let f = eco(json!([{"introduced": "0"}, {"fixed": "2.1.214"}]));
    assert!(!is(&f, "2.1.214"));
}

#[test]
fn limit_bounds_a_range_from_above() {
    let a = eco(json!([{"introduced": "1.0"}, {"limit": "2.0"}]));
    assert!(!is(&a, "0.9"));
    assert!(is(&a, "1.5"));
    assert!(!is(&a, "2.0"), "at the limit");
    assert!(!is(&a, "3"), "past the limit");
    // several limits: below any of them
    let b = eco(json!([{"introduced": "0"}, {"limit": "1.5"}, {"limit": "3.0"}]));
    assert!(is(&b, "2.0"));
    assert!(!is(&b, "3.0"));
    // a limit above a fix changes nothing below the fix
    let c = eco(json!([{"introduced": "0"}, {"fixed": "1.2"}, {"limit": "5"}]));
    assert!(is(&c, "1.1") && !is(&c, "1.3"));
}

#[test]
fn versions_lists_and_ranges_are_either_or() {
    let a = affected(json!([]), json!(["1.0.0", "1.0.3"]));
    assert!(is(&a, "1.0.0") && is(&a, "1.0.3"));
    assert!(!is(&a, "1.0.1"), "versions-only: exact matches only");
    assert!(!is(&a, "1.0"), "exact string match, not order equality");
    let b = affected(
        json!([{"type": "ECOSYSTEM", "events": [{"introduced": "2"}, {"fixed": "3"}]}]),
        json!(["1.5"]),
    );
    assert!(is(&b, "1.5") && is(&b, "2.5") && !is(&b, "1.6"));
    // several ranges: in any one of them
    let c = affected(
        json!([
            {"type": "ECOSYSTEM", "events": [{"introduced": "1"}, {"fixed": "2"}]},
            {"type": "SEMVER", "events": [{"introduced": "5.0.0"}, {"fixed": "5.1.0"}]},
        ]),
        json!([]),
    );
    assert!(is(&c, "1.5") && is(&c, "5.0.3") && !is(&c, "3"));
}

#[test]
fn git_ranges_are_not_evaluated_against_versions() {
    let a = affected(
        json!([{"type": "GIT", "repo": "https://example.org/r",
        "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]),
        json!(["v1.2"]),
    );
    assert!(
        !is(&a, "1.0"),
        "a commit range says nothing about version 1.0"
    );
    assert!(is(&a, "v1.2"), "its versions[] do");
}

#[test]
fn the_range_type_chooses_the_order_and_comparison_errors_surface() {
    let seen = RefCell::new(Vec::new());
    let order = |s: Scheme, a: &str, b: &str| {
        seen.borrow_mut().push(s);
        numeric(s, a, b)
    };
    let a = affected(
        json!([
            {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.0.5"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "2"}, {"fixed": "3"}]},
        ]),
        json!([]),
    );
    evaluate(&a, Ecosystem::Npm, "1.0.1", &order).unwrap();
    let seen = seen.into_inner();
    assert!(seen.contains(&Scheme::Semver));
    assert!(seen.contains(&Scheme::Ecosystem(Ecosystem::Npm)));
    // an order that cannot compare fails the evaluation, it does not guess
    let fail = |_: Scheme, a: &str, _: &str| -> Result<Ordering, std::io::Error> {
        Err(std::io::Error::other(format!("cannot order {a}")))
    };
    let err = evaluate(
        &eco(json!([{"introduced": "1"}])),
        Ecosystem::PyPI,
        "x",
        &fail,
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot order"));
}
