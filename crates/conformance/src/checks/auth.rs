//! `GET /v2/` and authentication: the challenge an anonymous client gets, whether the
//! given credentials are accepted, and the token flow step by step.
//!
//! The token flow is docker's "token authentication specification", as distribution-spec
//! registries use it: an anonymous request is answered `401` with `WWW-Authenticate: Bearer
//! realm="…",service="…",scope="repository:<name>:pull"`; the client GETs
//! `<realm>?service=…&scope=…` with its credentials (Basic) and gets `200` with a JSON
//! `token` (or OAuth2 `access_token`); the request is repeated with `Authorization: Bearer
//! <token>`. The client library follows that flow inside one call; these checks take each
//! step themselves through the recorder, so the report shows the challenge, the token
//! request and its answer (credentials and tokens redacted) and judges each.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_distribution::{Challenge, Credential, parse_challenges};
use http::Method;

use super::{Check, CheckResult, check, ensure};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req, Resp};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "auth.challenge",
            Auth,
            Must,
            "determining-support",
            "an anonymous GET /v2/ is answered 200, or 401 with a usable WWW-Authenticate challenge",
            challenge
        ),
        check!(
            "auth.credentials",
            Auth,
            Must,
            "determining-support",
            "GET /v2/ with the given credentials (challenge answered, token flow followed) is 200",
            credentials
        ),
        check!(
            "auth.challenge-repository",
            Auth,
            Should,
            "determining-support",
            "an anonymous GET of a repository's tags list is 401 with Bearer realm, service and scope=repository:<name>:pull (token spec), or Basic",
            challenge_repository
        ),
        check!(
            "auth.token",
            Auth,
            Must,
            "determining-support",
            "the token endpoint (the challenge's realm, with service and scope and the credentials) answers 200 with a token or access_token",
            token
        ),
        check!(
            "auth.token-retry",
            Auth,
            Must,
            "determining-support",
            "the challenged request, repeated with Authorization: Bearer <token>, is not refused",
            token_retry
        ),
        check!(
            "auth.wrong-credentials",
            Auth,
            Must,
            "determining-support",
            "a wrong password is refused with 401 (by the token endpoint, or by the registry)",
            wrong_credentials
        ),
    ]
}

async fn challenge(c: &mut Ctx) -> CheckResult {
    let r = c.send(Req::new(Method::GET, "/v2/").anonymous()).await?;
    if r.status() == 200 {
        return Ok(Verdict::Pass);
    }
    r.expect_status(&[401])?;
    let www: Vec<&str> = r
        .raw
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    ensure(!www.is_empty(), || {
        "GET /v2/: 401 without a WWW-Authenticate header".into()
    })?;
    let challenges: Vec<_> = www.iter().flat_map(|h| parse_challenges(h)).collect();
    if let Some(b) = challenges.iter().find(|c| c.is("bearer")) {
        let realm = b.param("realm").unwrap_or("");
        ensure(
            realm.starts_with("https://") || realm.starts_with("http://"),
            || {
                format!(
                    "GET /v2/: Bearer challenge without an absolute realm URL (realm={realm:?})"
                )
            },
        )?;
        return Ok(Verdict::Pass);
    }
    ensure(challenges.iter().any(|c| c.is("basic")), || {
        format!(
            "GET /v2/: no Bearer or Basic challenge in WWW-Authenticate: {}",
            www.join(" | ")
        )
    })?;
    Ok(Verdict::Pass)
}

async fn credentials(c: &mut Ctx) -> CheckResult {
    if !c.has_credentials {
        return Ok(Verdict::NotRun("no credentials given (--username)".into()));
    }
    let r = c.send(Req::new(Method::GET, "/v2/")).await?;
    r.expect_status(&[200])?;
    Ok(Verdict::Pass)
}

/// The repository's request again, with `token` as its bearer token (and nothing else).
async fn with_token(c: &mut Ctx, token: &str) -> Result<Resp, Verdict> {
    c.send(
        Req::new(Method::GET, repository_request(c))
            .header("authorization", &format!("Bearer {token}"))
            .anonymous(),
    )
    .await
}

/// `/v2/<repo>/tags/list`: a request for a repository, whose challenge names its scope.
fn repository_request(c: &Ctx) -> String {
    c.path("tags/list")
}

/// The challenges of an anonymous GET of the repository's tags list; Err(not run) when it
/// is not refused (anonymous pulls are allowed, or the registry asks for nothing).
async fn repository_challenges(c: &mut Ctx) -> Result<(Resp, Vec<Challenge>), Verdict> {
    let r = c
        .send(Req::new(Method::GET, repository_request(c)).anonymous())
        .await?;
    if r.status() != 401 {
        return Err(Verdict::NotRun(format!(
            "{}: {} without credentials: anonymous pulls are allowed, no challenge",
            r.what,
            r.summary()
        )));
    }
    let challenges = r
        .raw
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect();
    Ok((r, challenges))
}

async fn challenge_repository(c: &mut Ctx) -> CheckResult {
    let (r, challenges) = repository_challenges(c).await?;
    ensure(!challenges.is_empty(), || {
        format!("{}: 401 without a WWW-Authenticate challenge", r.what)
    })?;
    let Some(b) = challenges.iter().find(|ch| ch.is("bearer")) else {
        ensure(challenges.iter().any(|ch| ch.is("basic")), || {
            format!("{}: no Bearer or Basic challenge", r.what)
        })?;
        return Ok(Verdict::Pass);
    };
    let realm = b.param("realm").unwrap_or("");
    ensure(
        realm.starts_with("https://") || realm.starts_with("http://"),
        || format!("{}: Bearer challenge without an absolute realm URL", r.what),
    )?;
    ensure(b.param("service").is_some_and(|s| !s.is_empty()), || {
        format!("{}: Bearer challenge without service", r.what)
    })?;
    let want = format!("repository:{}:pull", c.repo);
    let scope = b.param("scope").unwrap_or("");
    ensure(
        scope.split_ascii_whitespace().any(|s| {
            s.strip_prefix(&format!("repository:{}:", c.repo))
                .is_some_and(|actions| actions.split(',').any(|a| a == "pull" || a == "*"))
        }),
        || {
            format!(
                "{}: Bearer challenge scope is {scope:?}, expected {want:?}",
                r.what
            )
        },
    )?;
    Ok(Verdict::Pass)
}

/// A Bearer challenge's realm, service and scopes.
struct Bearer {
    realm: String,
    service: Option<String>,
    scopes: Vec<String>,
}

/// How the repository request asks to authenticate.
enum Scheme {
    Bearer(Bearer),
    Basic,
}

/// The challenge of the repository request; Err(not run) when there is none to answer.
async fn scheme(c: &mut Ctx) -> Result<Scheme, Verdict> {
    let (r, challenges) = repository_challenges(c).await?;
    let Some(b) = challenges
        .iter()
        .find(|ch| ch.is("bearer") && ch.param("realm").is_some_and(|r| r.contains("://")))
    else {
        if challenges.iter().any(|ch| ch.is("basic")) {
            return Ok(Scheme::Basic);
        }
        return Err(Verdict::NotRun(format!(
            "{}: no usable Bearer or Basic challenge (see auth.challenge-repository)",
            r.what
        )));
    };
    let mut scopes: Vec<String> = b
        .param("scope")
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        scopes.push(format!("repository:{}:pull", c.repo));
    }
    Ok(Scheme::Bearer(Bearer {
        realm: b.param("realm").unwrap_or("").to_owned(),
        service: b.param("service").map(str::to_owned),
        scopes,
    }))
}

/// The Bearer challenge of the repository request; Err(not run) under Basic authentication.
async fn bearer(c: &mut Ctx) -> Result<Bearer, Verdict> {
    match scheme(c).await? {
        Scheme::Bearer(b) => Ok(b),
        Scheme::Basic => Err(Verdict::NotRun(
            "the registry asks for Basic authentication: there is no token flow".into(),
        )),
    }
}

/// The user name and password to send to the token endpoint; Err(not run) without them.
async fn basic_credentials(c: &Ctx) -> Result<(String, String), Verdict> {
    match c.credential().await {
        Some(Credential::Basic { username, password }) => {
            Ok((username, password.expose().to_owned()))
        }
        Some(Credential::IdentityToken { .. }) => Err(Verdict::NotRun(
            "the credentials are an identity token (OAuth2 refresh grant): not checked step by step".into(),
        )),
        None => Err(Verdict::NotRun("no credentials given (--username)".into())),
    }
}

/// Query-encode `s` (RFC 3986 unreserved characters, and `:` `/` `,` of scopes, kept).
fn q(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b':'
            | b'/'
            | b',' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET the realm for `b`'s scopes as `username` with `password`.
async fn token_request(
    c: &mut Ctx,
    b: &Bearer,
    username: &str,
    password: &str,
) -> Result<Resp, Verdict> {
    let mut url = b.realm.clone();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    let mut add = |url: &mut String, k: &str, v: &str| {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&q(v));
        sep = '&';
    };
    if let Some(s) = &b.service {
        add(&mut url, "service", s);
    }
    for s in &b.scopes {
        add(&mut url, "scope", s);
    }
    add(&mut url, "account", username);
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    );
    c.send(
        Req::new(Method::GET, url)
            .header("authorization", &basic)
            .anonymous(),
    )
    .await
}

/// The `token` (or `access_token`) of a token response; Err(violation) when it has none.
fn token_of(r: &Resp) -> Result<String, Verdict> {
    r.expect_status(&[200])?;
    let v: serde_json::Value = serde_json::from_slice(r.body()).map_err(|e| {
        Verdict::violation(format!("{}: the token response is not JSON: {e}", r.what))
    })?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| v[*k].as_str().filter(|t| !t.is_empty()))
        .map(str::to_owned)
        .ok_or_else(|| {
            Verdict::violation(format!(
                "{}: 200 without a token or access_token in the JSON body",
                r.what
            ))
        })
}

async fn token(c: &mut Ctx) -> CheckResult {
    let (username, password) = basic_credentials(c).await?;
    let b = bearer(c).await?;
    let r = token_request(c, &b, &username, &password).await?;
    token_of(&r)?;
    Ok(Verdict::Pass)
}

async fn token_retry(c: &mut Ctx) -> CheckResult {
    let (username, password) = basic_credentials(c).await?;
    let b = bearer(c).await?;
    let r = token_request(c, &b, &username, &password).await?;
    let token = token_of(&r).map_err(|v| match v {
        Verdict::Violation(why) => Verdict::NotRun(format!("no token to retry with: {why}")),
        v => v,
    })?;
    let retry = with_token(c, &token).await?;
    ensure(!matches!(retry.status(), 401 | 403), || {
        format!(
            "{}: the token from the realm is refused: {}",
            retry.what,
            retry.summary()
        )
    })?;
    Ok(Verdict::Pass)
}

async fn wrong_credentials(c: &mut Ctx) -> CheckResult {
    let (username, _) = basic_credentials(c).await?;
    let wrong = format!("wrong-{}", crate::data::random_hex(8));
    match scheme(c).await? {
        Scheme::Bearer(b) => {
            let r = token_request(c, &b, &username, &wrong).await?;
            if r.status() == 401 {
                return Ok(Verdict::Pass);
            }
            ensure(r.status() == 200, || {
                format!(
                    "{}: a wrong password is answered {}, expected 401",
                    r.what,
                    r.summary()
                )
            })?;
            // A realm may hand out an anonymous token; the registry must refuse it then.
            let token = token_of(&r).map_err(|_| {
                Verdict::violation(format!(
                    "{}: a wrong password is answered 200 (without a token), expected 401",
                    r.what
                ))
            })?;
            let retry = with_token(c, &token).await?;
            retry.expect_status(&[401])?;
            Ok(Verdict::Pass)
        }
        Scheme::Basic => {
            let basic = format!("Basic {}", STANDARD.encode(format!("{username}:{wrong}")));
            c.send(
                Req::new(Method::GET, repository_request(c))
                    .header("authorization", &basic)
                    .anonymous(),
            )
            .await?
            .expect_status(&[401])?;
            Ok(Verdict::Pass)
        }
    }
}
