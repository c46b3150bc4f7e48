//! Tests of the authorizer and the token endpoint, end to end through the public API.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde_json::Value;

use super::token::{Claims, ResourceActions, now_secs};
use super::*;

const BASE: &str = "https://reg.example:5000";

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) auth: Authorizer,
}

impl Fixture {
    fn inner(&self) -> &Inner {
        self.auth.inner.as_deref().unwrap()
    }

    fn set_users(&self, users: &[(&str, &str)]) {
        write_htpasswd(self.dir.path(), users);
    }

    async fn get_token(&self, headers: HeaderMap, query: &str) -> (StatusCode, HeaderMap, Value) {
        let r = self
            .auth
            .token(Method::GET, &headers, query, Bytes::new(), BASE)
            .await;
        split(r).await
    }

    async fn post_token(&self, form: &str) -> (StatusCode, HeaderMap, Value) {
        let r = self
            .auth
            .token(
                Method::POST,
                &HeaderMap::new(),
                "",
                Bytes::copy_from_slice(form.as_bytes()),
                BASE,
            )
            .await;
        split(r).await
    }

    /// A token for `user` from `GET /token` with Basic credentials.
    async fn token_for(&self, user: &str, password: &str, scopes: &[&str]) -> String {
        let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
        let query = format!("service=berth-registry&{}", query.join("&"));
        let (status, _, body) = self.get_token(basic(user, password), &query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

async fn split(r: axum::response::Response) -> (StatusCode, HeaderMap, Value) {
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, v)
}

fn write_htpasswd(dir: &std::path::Path, users: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from("# users\n");
    for (u, p) in users {
        text.push_str(&format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()));
    }
    let path = dir.join("htpasswd");
    berth_fsutil::atomic_write(&path, text.as_bytes()).unwrap();
    path
}

pub(crate) fn fixture(mut cfg: AuthConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = write_htpasswd(dir.path(), &[("alice", "secret"), ("ci", "cipass")]);
    cfg.htpasswd = Some(path);
    // Tests rewrite the file at once: notice changes without waiting.
    let auth =
        Authorizer::build(&cfg, &dir.path().join("state"), std::time::Duration::ZERO).unwrap();
    Fixture { dir, auth }
}

fn basic(user: &str, password: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let v = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
    h
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let v = format!("Bearer {token}");
    h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
    h
}

fn repo(name: &str, actions: &[Action]) -> Access {
    Access::Repository {
        name: name.into(),
        actions: actions.to_vec(),
    }
}

fn allowed(user: Option<&str>) -> Decision {
    Decision::Allow(Identity {
        subject: user.map(str::to_owned),
    })
}

fn challenge_header(d: &Decision) -> &str {
    match d {
        Decision::Challenge {
            www_authenticate, ..
        } => www_authenticate,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

const PULL_PUSH: &[Action] = &[Action::Pull, Action::Push];

#[test]
fn disabled_allows_everything_anonymously() {
    let a = Authorizer::disabled();
    assert!(!a.enabled());
    for access in [Access::Base, Access::Catalog, repo("a", &[Action::Delete])] {
        assert_eq!(a.authorize(&basic("x", "y"), BASE, &access), allowed(None));
    }
    let dir = tempfile::tempdir().unwrap();
    let a = Authorizer::new(&AuthConfig::default(), dir.path()).unwrap();
    assert!(!a.enabled());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no key without auth"
    );
}

#[test]
fn config_from_toml() {
    let cfg: AuthConfig = toml::from_str(
        r#"
        htpasswd = "/etc/berth/htpasswd"
        token_ttl_secs = 600
        anonymous_pull = true
        [[access]]
        users = ["ci"]
        repositories = ["team/*", "exact/name"]
        actions = ["pull", "push"]
        "#,
    )
    .unwrap();
    assert_eq!(
        cfg.htpasswd.as_deref(),
        Some(std::path::Path::new("/etc/berth/htpasswd"))
    );
    assert_eq!(cfg.token_ttl_secs, Some(600));
    assert!(cfg.anonymous_pull);
    assert_eq!(cfg.access[0].actions, PULL_PUSH);
    assert_eq!(
        toml::from_str::<AuthConfig>("").unwrap(),
        AuthConfig::default()
    );
    assert!(toml::from_str::<AuthConfig>("htpasswrd = \"x\"").is_err());
}

#[test]
fn new_reports_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = AuthConfig {
        htpasswd: Some(dir.path().join("nope")),
        ..AuthConfig::default()
    };
    let err = Authorizer::new(&missing, dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to read htpasswd file {}",
            dir.path().join("nope").display()
        )
    );
    let rules_only = AuthConfig {
        access: vec![AccessRule {
            users: vec!["a".into()],
            repositories: vec!["*".into()],
            actions: vec![Action::Pull],
        }],
        ..AuthConfig::default()
    };
    assert!(matches!(
        Authorizer::new(&rules_only, dir.path()),
        Err(AuthError::NeedsHtpasswd { key: "access" })
    ));
    let path = write_htpasswd(dir.path(), &[("a", "b")]);
    for (cfg, key) in [
        (
            AuthConfig {
                token_ttl_secs: Some(0),
                ..AuthConfig::default()
            },
            "token_ttl_secs",
        ),
        (
            AuthConfig {
                realm: Some("reg.example/token".into()),
                ..AuthConfig::default()
            },
            "realm",
        ),
    ] {
        let cfg = AuthConfig {
            htpasswd: Some(path.clone()),
            ..cfg
        };
        let err = Authorizer::new(&cfg, dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("invalid auth.{key}: ")),
            "{err}"
        );
    }
}

#[test]
fn challenge_header_exact_format() {
    let f = fixture(AuthConfig::default());
    let none = HeaderMap::new();
    let d = f.auth.authorize(&none, BASE, &repo("team/app", PULL_PUSH));
    assert_eq!(
        challenge_header(&d),
        r#"Bearer realm="https://reg.example:5000/token",service="berth-registry",scope="repository:team/app:pull,push""#
    );
    let d = f.auth.authorize(&none, BASE, &Access::Base);
    assert_eq!(
        challenge_header(&d),
        r#"Bearer realm="https://reg.example:5000/token",service="berth-registry""#
    );
    let d = f.auth.authorize(&none, BASE, &Access::Catalog);
    assert!(challenge_header(&d).ends_with(r#",scope="registry:catalog:*""#));

    let f = fixture(AuthConfig {
        realm: Some("https://auth.example/token".into()),
        service: Some("reg.example".into()),
        ..AuthConfig::default()
    });
    let d = f.auth.authorize(&none, BASE, &repo("a", &[Action::Delete]));
    assert_eq!(
        challenge_header(&d),
        r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a:delete""#
    );
}

#[test]
fn basic_auth_on_api_requests() {
    let f = fixture(AuthConfig {
        access: vec![AccessRule {
            users: vec!["ci".into()],
            repositories: vec!["team/*".into()],
            actions: PULL_PUSH.to_vec(),
        }],
        ..AuthConfig::default()
    });
    let pull = repo("team/app", &[Action::Pull]);
    assert_eq!(
        f.auth.authorize(&basic("ci", "cipass"), BASE, &pull),
        allowed(Some("ci"))
    );
    let d = f.auth.authorize(&basic("ci", "wrong"), BASE, &pull);
    assert!(challenge_header(&d).starts_with("Bearer realm="));
    // Authenticated, but the rules never grant it: 403.
    let del = repo("team/app", &[Action::Delete]);
    assert_eq!(
        f.auth.authorize(&basic("ci", "cipass"), BASE, &del),
        Decision::Deny {
            message: "user \"ci\" may not delete repository team/app".into()
        }
    );
    assert!(matches!(
        f.auth.authorize(&basic("alice", "secret"), BASE, &pull),
        Decision::Deny { .. }
    ));
    assert_eq!(
        f.auth
            .authorize(&basic("alice", "secret"), BASE, &Access::Base),
        allowed(Some("alice"))
    );
    let mut junk = HeaderMap::new();
    junk.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Digest abc"),
    );
    assert!(matches!(
        f.auth.authorize(&junk, BASE, &pull),
        Decision::Challenge { .. }
    ));
}

#[test]
fn anonymous_pull() {
    let f = fixture(AuthConfig {
        anonymous_pull: true,
        ..AuthConfig::default()
    });
    let none = HeaderMap::new();
    assert_eq!(f.auth.authorize(&none, BASE, &Access::Base), allowed(None));
    assert_eq!(
        f.auth.authorize(&none, BASE, &repo("a", &[Action::Pull])),
        allowed(None)
    );
    assert!(matches!(
        f.auth.authorize(&none, BASE, &repo("a", PULL_PUSH)),
        Decision::Challenge { .. }
    ));
    assert!(matches!(
        f.auth.authorize(&none, BASE, &Access::Catalog),
        Decision::Challenge { .. }
    ));
}

#[tokio::test]
async fn token_round_trip_and_scope_checks() {
    let f = fixture(AuthConfig::default());
    let token = f
        .token_for("alice", "secret", &["repository:team/a:pull,push"])
        .await;
    let h = bearer(&token);
    assert_eq!(
        f.auth.authorize(&h, BASE, &repo("team/a", PULL_PUSH)),
        allowed(Some("alice"))
    );
    assert_eq!(
        f.auth.authorize(&h, BASE, &Access::Base),
        allowed(Some("alice"))
    );
    // Same token, other repository: insufficient_scope, so clients fetch a new token.
    let d = f.auth.authorize(&h, BASE, &repo("team/b", &[Action::Pull]));
    assert_eq!(
        challenge_header(&d),
        r#"Bearer realm="https://reg.example:5000/token",service="berth-registry",scope="repository:team/b:pull",error="insufficient_scope""#
    );
    // Not granted delete, not the catalog.
    let d = f
        .auth
        .authorize(&h, BASE, &repo("team/a", &[Action::Delete]));
    assert!(challenge_header(&d).ends_with(r#"error="insufficient_scope""#));
    assert!(matches!(
        f.auth.authorize(&h, BASE, &Access::Catalog),
        Decision::Challenge { .. }
    ));
    let catalog = f
        .token_for("alice", "secret", &["registry:catalog:*"])
        .await;
    assert_eq!(
        f.auth.authorize(&bearer(&catalog), BASE, &Access::Catalog),
        allowed(Some("alice"))
    );
}

#[test]
fn expired_and_tampered_tokens_are_refused() {
    let f = fixture(AuthConfig::default());
    let now = now_secs();
    let claims = |exp: u64| Claims {
        iss: "berth-registry".into(),
        sub: "alice".into(),
        aud: "berth-registry".into(),
        exp,
        nbf: now - 600,
        iat: now - 600,
        jti: "x".into(),
        access: vec![ResourceActions {
            kind: "repository".into(),
            name: "a".into(),
            actions: vec!["pull".into()],
        }],
    };
    let pull = repo("a", &[Action::Pull]);
    let good = f.inner().keys.sign_access(&claims(now + 300));
    assert_eq!(
        f.auth.authorize(&bearer(&good), BASE, &pull),
        allowed(Some("alice"))
    );

    let expired = f.inner().keys.sign_access(&claims(now - 120));
    let d = f.auth.authorize(&bearer(&expired), BASE, &pull);
    assert!(
        challenge_header(&d).ends_with(r#",error="invalid_token""#),
        "{d:?}"
    );
    assert!(matches!(d, Decision::Challenge { ref message, .. } if message == "token has expired"));

    // Tamper: grant push in the payload, keep the signature.
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged = claims(now + 300);
    forged.access[0].actions.push("push".into());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    let d = f
        .auth
        .authorize(&bearer(&tampered), BASE, &repo("a", PULL_PUSH));
    assert!(challenge_header(&d).ends_with(r#",error="invalid_token""#));

    // Another service's audience.
    let mut other = claims(now + 300);
    other.aud = "elsewhere".into();
    let t = f.inner().keys.sign_access(&other);
    assert!(matches!(
        f.auth.authorize(&bearer(&t), BASE, &pull),
        Decision::Challenge { .. }
    ));
}

#[tokio::test]
async fn token_get_with_basic_auth() {
    let f = fixture(AuthConfig {
        access: vec![AccessRule {
            users: vec!["ci".into()],
            repositories: vec!["team/*".into()],
            actions: PULL_PUSH.to_vec(),
        }],
        ..AuthConfig::default()
    });
    let query = "service=berth-registry&scope=repository:team/a:pull,push,delete&scope=repository:other/x:pull&scope=registry:catalog:*&scope=bogus";
    let (status, headers, body) = f.get_token(basic("ci", "cipass"), query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert!(body.get("refresh_token").is_none());
    // Only what the rules allow was granted.
    let token = body["token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], "ci");
    assert_eq!(claims["aud"], "berth-registry");
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "team/a", "actions": ["pull", "push"]}])
    );
    for k in ["iss", "exp", "nbf", "iat", "jti"] {
        assert!(claims.get(k).is_some(), "missing claim {k}");
    }

    // No scope at all (docker login): a token with no access.
    let (status, _, _) = f
        .get_token(basic("alice", "secret"), "service=berth-registry")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn token_get_refuses_bad_credentials_and_anonymous() {
    let f = fixture(AuthConfig::default());
    let (status, headers, body) = f
        .get_token(basic("alice", "wrong"), "scope=repository:a:pull")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(body["errors"][0]["message"], "invalid username or password");
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        r#"Basic realm="berth-registry""#
    );
    let (status, _, _) = f.get_token(basic("mallory", "x"), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = f
        .get_token(HeaderMap::new(), "scope=repository:a:pull")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let f = fixture(AuthConfig {
        anonymous_pull: true,
        ..AuthConfig::default()
    });
    let (status, _, body) = f
        .get_token(HeaderMap::new(), "scope=repository:a:pull,push")
        .await;
    assert_eq!(status, StatusCode::OK);
    let t = bearer(body["token"].as_str().unwrap());
    assert_eq!(
        f.auth.authorize(&t, BASE, &repo("a", &[Action::Pull])),
        allowed(None)
    );
    assert!(matches!(
        f.auth.authorize(&t, BASE, &repo("a", PULL_PUSH)),
        Decision::Challenge { .. }
    ));
}

#[tokio::test]
async fn token_post_password_and_refresh_grants() {
    let f = fixture(AuthConfig::default());
    let (status, _, body) = f
        .post_token("grant_type=password&username=alice&password=secret&service=berth-registry&client_id=docker&access_type=offline&scope=repository%3Ateam%2Fa%3Apull%2Cpush")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        f.auth
            .authorize(&bearer(access), BASE, &repo("team/a", PULL_PUSH)),
        allowed(Some("alice"))
    );
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    // A refresh token is not an access token.
    assert!(matches!(
        f.auth.authorize(&bearer(&refresh), BASE, &Access::Base),
        Decision::Challenge { .. }
    ));

    let form = format!(
        "grant_type=refresh_token&refresh_token={refresh}&service=berth-registry&client_id=docker&scope=repository:team/b:pull"
    );
    let (status, _, body) = f.post_token(&form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    let t = bearer(body["token"].as_str().unwrap());
    assert_eq!(
        f.auth.authorize(&t, BASE, &repo("team/b", &[Action::Pull])),
        allowed(Some("alice"))
    );

    // Without access_type=offline there is no refresh token.
    let (_, _, body) = f
        .post_token("grant_type=password&username=alice&password=secret&client_id=x")
        .await;
    assert!(body.get("refresh_token").is_none());

    // Bad password, bad grant, missing fields.
    let (status, _, body) = f
        .post_token("grant_type=password&username=alice&password=nope")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let (status, _, _) = f.post_token("grant_type=authorization_code&code=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = f.post_token("grant_type=password&username=alice").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = f
        .post_token("grant_type=refresh_token&refresh_token=abc")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Changing the password revokes refresh tokens.
    f.set_users(&[("alice", "changed"), ("ci", "cipass")]);
    let (status, _, body) = f.post_token(&form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["message"], "refresh token was revoked");
}

#[tokio::test]
async fn token_endpoint_methods_and_disabled() {
    let f = fixture(AuthConfig::default());
    let r = f
        .auth
        .token(Method::DELETE, &HeaderMap::new(), "", Bytes::new(), BASE)
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = Authorizer::disabled()
        .token(Method::GET, &HeaderMap::new(), "", Bytes::new(), BASE)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[test]
fn debug_output_has_no_secrets() {
    let f = fixture(AuthConfig::default());
    let dbg = format!("{:?}", f.auth);
    assert!(dbg.contains("TokenKeys(<redacted>)"), "{dbg}");
    assert!(!dbg.contains("$2b$"), "{dbg}");
}
