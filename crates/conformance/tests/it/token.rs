//! The token flow as the report shows it: berth's registry issues bearer tokens from its
//! `/token` realm to htpasswd users; the auth checks take each step themselves (challenge,
//! token request, retried request, a wrong password), and the recorded exchanges say so —
//! with no password, Basic credential, token or `Authorization` value in any report.
//!
//! docker-registry's `auth: token:` mode is not used: it verifies tokens signed with an
//! RSA/ECDSA certificate (`rootcertbundle`), while berth's realm signs HS256 JWTs with a
//! secret key, so no docker-registry can accept berth's tokens. docker-registry's htpasswd
//! (Basic) mode is checked instead.

use std::collections::BTreeSet;

use berth_conformance::{Exchange, Report, Status, Workflow, render};
use berth_test_support::{DockerRegistry, Registry, RegistryOptions, requires_tool};

use super::{base64_of, check, explain, ids};

/// A token from the registry's realm, fetched with the test's own HTTP client.
fn real_token(reg: &Registry) -> String {
    reg.http()
        .basic("alice", "s3cret-pw")
        .token("repository:conformance/test:pull")
}

fn result<'a>(report: &'a Report, id: &str) -> &'a berth_conformance::CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.info.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn header<'a>(e: &'a Exchange, name: &str) -> Option<&'a str> {
    e.request_headers
        .iter()
        .chain(&e.response_headers)
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The path of an exchange's URL, without scheme, host and query.
fn path(e: &Exchange) -> &str {
    let rest = e.url.split_once("://").map_or(e.url.as_str(), |(_, r)| r);
    let p = rest.find('/').map_or("/", |i| &rest[i..]);
    p.split('?').next().unwrap_or(p)
}

/// Whether `text` holds a JWT: `eyJ` (base64url of `{"`), base64url characters, then the
/// `.` before the next part (random base64 in a blob's body has no `.`).
fn has_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(i, _)| {
        let rest = &text[i..];
        let run = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .count();
        run >= 10 && rest[run..].starts_with('.')
    })
}

#[test]
fn the_token_flow_is_recorded_step_by_step_and_no_secret_reaches_a_report() {
    requires_tool!("htpasswd");
    let reg = Registry::start(RegistryOptions::new().user("alice", "s3cret-pw"));
    let report = check(&reg.host(), Some(("alice", "s3cret-pw")), &Workflow::ALL);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    for id in [
        "auth.challenge-repository",
        "auth.token",
        "auth.token-retry",
        "auth.wrong-credentials",
    ] {
        assert_eq!(
            result(&report, id).outcome.status,
            Status::Pass,
            "{id}: {why}"
        );
    }
    let tags = "/v2/conformance/test/tags/list";

    // The challenge: 401 with Bearer realm, service and the repository's pull scope.
    let e = &result(&report, "auth.challenge-repository").exchanges;
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].status, path(&e[0])), (Some(401), tags));
    let www = header(&e[0], "www-authenticate").unwrap();
    assert!(
        www.starts_with("Bearer realm=\"http://")
            && www.contains("/token\"")
            && www.contains("service=\"berth-registry\"")
            && www.contains("scope=\"repository:conformance/test:pull\""),
        "{www}"
    );

    // The token request: the realm with service, scope and account, Basic credentials
    // (redacted), answered 200 with a token (redacted).
    let e = &result(&report, "auth.token").exchanges;
    assert_eq!(e.len(), 2, "{e:#?}");
    let tok = &e[1];
    assert_eq!((tok.method.as_str(), path(tok)), ("GET", "/token"));
    assert_eq!(tok.status, Some(200));
    assert!(
        tok.url.contains("service=berth-registry")
            && tok.url.contains("scope=repository:conformance/test:pull")
            && tok.url.contains("account=alice"),
        "{}",
        tok.url
    );
    assert_eq!(header(tok, "authorization"), Some("<redacted>"));
    let body = &tok.response_body.as_ref().unwrap().content;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["token"], "<redacted>", "{body}");

    // The retry: challenge, token, then the same request with the token: 200.
    let e = &result(&report, "auth.token-retry").exchanges;
    let statuses: Vec<_> = e.iter().map(|x| (x.status, path(x))).collect();
    assert_eq!(
        statuses,
        [(Some(401), tags), (Some(200), "/token"), (Some(200), tags)]
    );
    assert_eq!(header(&e[2], "authorization"), Some("<redacted>"));

    // A wrong password: the realm answers 401.
    let e = &result(&report, "auth.wrong-credentials").exchanges;
    let statuses: Vec<_> = e.iter().map(|x| (x.status, path(x))).collect();
    assert_eq!(statuses, [(Some(401), tags), (Some(401), "/token")]);

    // No secret anywhere: not the password, its Basic encoding, a JWT (a token), or an
    // Authorization value; checked in the three files as written. The detector is proven on
    // a real token first.
    assert!(has_jwt(&format!("x{}y", real_token(&reg))));
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "report.json",
            serde_json::to_string_pretty(&report).unwrap(),
        ),
        ("report.html", render::html::render(&report)),
        ("report.xml", render::junit::render(&report)),
    ];
    for (name, text) in &files {
        let p = dir.path().join(name);
        berth_test_support::write_file(&p, text.as_bytes());
        let written = std::fs::read_to_string(&p).unwrap();
        for secret in ["s3cret-pw".to_owned(), base64_of("alice:s3cret-pw")] {
            assert!(!written.contains(&secret), "{name} holds {secret:?}");
        }
        assert!(!has_jwt(&written), "{name} holds a token");
        // "Bearer " and "Basic " start challenges and titles, never a credential (a run of
        // base64 or JWT characters).
        for scheme in ["Bearer ", "Basic "] {
            for (i, _) in written.match_indices(scheme) {
                let run = written[i + scheme.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "+/=._-".contains(*c))
                    .count();
                assert!(run < 16, "{name}: a credential after {scheme:?} at {i}");
            }
        }
        // The exchanges are in the JSON and the HTML (JUnit has only failures' reasons).
        if !name.ends_with(".xml") {
            assert!(
                written.contains("&lt;redacted&gt;") || written.contains("<redacted>"),
                "{name}"
            );
        }
    }
}

#[test]
fn wrong_credentials_given_fail_the_token_checks_with_the_realms_401() {
    requires_tool!("htpasswd");
    let reg = Registry::start(RegistryOptions::new().user("alice", "s3cret-pw"));
    let report = check(
        &reg.host(),
        Some(("alice", "not-the-password")),
        &[Workflow::Auth],
    );
    let why = explain(&report);
    assert!(!report.conformant);
    assert_eq!(
        ids(&report, Status::Fail),
        BTreeSet::from(["auth.credentials", "auth.token"]),
        "{why}"
    );
    assert!(
        result(&report, "auth.token")
            .outcome
            .reason
            .contains("expected 200, got 401"),
        "{why}"
    );
    // No token, no retry; the wrong password of the check itself is still refused.
    assert_eq!(
        ids(&report, Status::Skip),
        BTreeSet::from(["auth.token-retry"]),
        "{why}"
    );
    assert_eq!(
        result(&report, "auth.wrong-credentials").outcome.status,
        Status::Pass
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("not-the-password") && !has_jwt(&json));
}

#[test]
fn docker_registry_with_htpasswd_has_basic_authentication_and_no_token_flow() {
    requires_tool!("htpasswd", "docker-registry");
    let reg = DockerRegistry::start(Some(("bob", "b0b-pw")));
    let report = check(&reg.host(), Some(("bob", "b0b-pw")), &[Workflow::Auth]);
    let why = explain(&report);
    assert!(report.conformant, "{why}");
    assert_eq!(
        ids(&report, Status::Pass),
        BTreeSet::from([
            "auth.challenge",
            "auth.challenge-repository",
            "auth.credentials",
            "auth.wrong-credentials",
        ]),
        "{why}"
    );
    assert_eq!(
        ids(&report, Status::Skip),
        BTreeSet::from(["auth.token", "auth.token-retry"]),
        "{why}"
    );
    assert!(
        result(&report, "auth.token")
            .outcome
            .reason
            .contains("Basic authentication"),
        "{why}"
    );
    let e = &result(&report, "auth.wrong-credentials").exchanges;
    assert_eq!(e.last().unwrap().status, Some(401));
    assert_eq!(
        header(e.last().unwrap(), "authorization"),
        Some("<redacted>")
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("b0b-pw") && !json.contains(&base64_of("bob:b0b-pw")));
}
