//! The token endpoint: `GET /token` (docker "token authentication specification") and
//! `POST /token` (docker "OAuth2 token" spec: `grant_type=password` and `refresh_token`).
//!
//! Scopes granted are the requested ones intersected with what the access rules allow;
//! unknown or unauthorised scopes are dropped, not refused, as the spec says. Bad
//! credentials get `401` with a distribution-style `{"errors":[{"code":"UNAUTHORIZED",…}]}`
//! body. Refresh tokens (POST password grant with `access_type=offline`, or GET with
//! `offline_token=true`) last [`REFRESH_TTL_SECS`] and are revoked when the user's password
//! changes or the user is removed from the htpasswd file.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::token::{Claims, RefreshClaims, ResourceActions, now_secs, rfc3339};
use super::{Action, ActionSet, Credentials, Inner, credentials, parse_actions, push_quoted};

/// Lifetime of refresh tokens (docker stores them as its `identitytoken`).
pub(crate) const REFRESH_TTL_SECS: u64 = 30 * 86_400;
/// At most this many scopes are considered per request.
const MAX_SCOPES: usize = 64;
/// At most this many form/query pairs are parsed.
const MAX_FORM_PAIRS: usize = 256;

impl Inner {
    pub(super) fn token(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query: &str,
        body: &[u8],
        _base_url: &str,
    ) -> Response {
        if method == Method::GET {
            self.token_get(headers, query)
        } else if method == Method::POST {
            self.token_post(body)
        } else {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "the token endpoint accepts GET and POST",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            r
        }
    }

    fn token_get(&self, headers: &HeaderMap, query: &str) -> Response {
        let params = Form::parse(query);
        let user = match credentials(headers) {
            Credentials::None => None,
            Credentials::Basic { user, password } => {
                if !self.htpasswd.verify(&user, &password) {
                    tracing::info!(user = %user, "token request with invalid username or password");
                    return self.unauthorized("invalid username or password");
                }
                Some(user)
            }
            Credentials::Bearer(_) | Credentials::Invalid => {
                return self.unauthorized("the token endpoint accepts Basic credentials only");
            }
        };
        if user.is_none() && !self.policy.anonymous_pull() {
            return self.unauthorized("authentication required");
        }
        let offline = params.get("offline_token") == Some("true");
        self.issue(user.as_deref(), &params, offline)
    }

    fn token_post(&self, body: &[u8]) -> Response {
        let form = Form::parse(&String::from_utf8_lossy(body));
        let (user, offline) = match form.get("grant_type") {
            Some("password") => {
                let (Some(user), Some(password)) = (form.get("username"), form.get("password"))
                else {
                    return bad_request("password grant needs username and password");
                };
                if !self.htpasswd.verify(user, password) {
                    tracing::info!(user = %user, "token request with invalid username or password");
                    return self.unauthorized("invalid username or password");
                }
                (user.to_owned(), form.get("access_type") == Some("offline"))
            }
            Some("refresh_token") => {
                let Some(refresh) = form.get("refresh_token") else {
                    return bad_request("refresh_token grant needs refresh_token");
                };
                match self.keys.verify_refresh(refresh, &self.service, now_secs()) {
                    Ok(c)
                        if self.htpasswd.fingerprint(&c.sub).as_deref() == Some(c.fp.as_str()) =>
                    {
                        (c.sub, false)
                    }
                    Ok(c) => {
                        tracing::info!(user = %c.sub, "refresh token revoked by a password change");
                        return self.unauthorized("refresh token was revoked");
                    }
                    Err(e) => return self.unauthorized(&format!("invalid refresh token: {e}")),
                }
            }
            Some(other) => {
                return bad_request(&format!("unsupported grant_type {other:?}"));
            }
            None => return bad_request("missing grant_type"),
        };
        self.issue(Some(&user), &form, offline)
    }

    /// Issue an access token (and a refresh token when `offline`) for the request's scopes.
    fn issue(&self, user: Option<&str>, params: &Form, offline: bool) -> Response {
        let now = now_secs();
        let scopes = params
            .all("scope")
            .flat_map(str::split_whitespace)
            .take(MAX_SCOPES);
        let access = self.grant(user, scopes);
        let claims = Claims {
            iss: self.service.clone(),
            sub: user.unwrap_or_default().to_owned(),
            aud: self.service.clone(),
            exp: now + self.ttl,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
        };
        let token = self.keys.sign_access(&claims);
        tracing::debug!(user = claims.sub, access = ?claims.access, "issued token");
        let mut body = json!({
            "token": token,
            "access_token": token,
            "expires_in": self.ttl,
            "issued_at": rfc3339(now),
        });
        let refresh_for = user
            .filter(|_| offline)
            .and_then(|u| Some((u, self.htpasswd.fingerprint(u)?)));
        if let Some((user, fp)) = refresh_for {
            let refresh = self.keys.sign_refresh(&RefreshClaims {
                iss: self.service.clone(),
                sub: user.to_owned(),
                aud: self.service.clone(),
                exp: now + REFRESH_TTL_SECS,
                nbf: now,
                iat: now,
                jti: uuid::Uuid::new_v4().simple().to_string(),
                fp,
            });
            body["refresh_token"] = refresh.into();
        }
        json_response(StatusCode::OK, &body)
    }

    /// Requested scopes ∩ what the rules allow `user`; duplicates merged, others dropped.
    fn grant<'a>(
        &self,
        user: Option<&str>,
        scopes: impl Iterator<Item = &'a str>,
    ) -> Vec<ResourceActions> {
        let mut repos: Vec<(&str, ActionSet)> = Vec::new();
        let mut catalog = false;
        for scope in scopes {
            let Some((kind, name, actions)) = parse_scope(scope) else {
                continue;
            };
            let actions: Vec<&str> = actions.split(',').collect();
            match kind {
                "repository" => {
                    let granted =
                        parse_actions(&actions).intersect(self.policy.allowed(user, name));
                    if granted.is_empty() {
                        continue;
                    }
                    match repos.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, set)) => *set = set.union(granted),
                        None => repos.push((name, granted)),
                    }
                }
                "registry" if name == "catalog" && actions.contains(&"*") => {
                    catalog = catalog || self.policy.catalog_allowed(user);
                }
                _ => {}
            }
        }
        let mut out: Vec<ResourceActions> = repos
            .into_iter()
            .map(|(name, set)| ResourceActions {
                kind: "repository".into(),
                name: name.to_owned(),
                actions: set.iter().map(|a: Action| a.as_str().to_owned()).collect(),
            })
            .collect();
        if catalog {
            out.push(ResourceActions {
                kind: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
            });
        }
        out
    }

    fn unauthorized(&self, message: &str) -> Response {
        let mut r = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        let mut challenge = String::from("Basic realm=");
        push_quoted(&mut challenge, &self.service);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// Response when auth is disabled.
pub(super) fn not_enabled() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "UNSUPPORTED",
        "token authentication is not enabled on this registry",
    )
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "UNSUPPORTED", message)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"errors": [{"code": code, "message": message, "detail": null}]}),
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// `type[(class)]:name:actions`; the name may itself contain `:` (host:port/repo).
fn parse_scope(s: &str) -> Option<(&str, &str, &str)> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    Some((kind, name, actions))
}

/// An `application/x-www-form-urlencoded` query or body.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn parse(s: &str) -> Form {
        Form(
            s.split('&')
                .filter(|kv| !kv.is_empty())
                .take(MAX_FORM_PAIRS)
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decode with `+` as space; malformed escapes are kept literally.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: Option<&u8>) -> Option<u8> {
    let c = *c?;
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f = Form::parse(
            "scope=repository%3Aa%2Fb%3Apull+repository:c:push&scope=x&service=berth&bad=%zz%4&empty",
        );
        let scopes: Vec<&str> = f.all("scope").collect();
        assert_eq!(scopes, ["repository:a/b:pull repository:c:push", "x"]);
        assert_eq!(f.get("service"), Some("berth"));
        assert_eq!(f.get("bad"), Some("%zz%4"));
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn scope_parsing() {
        assert_eq!(
            parse_scope("repository:a/b:pull,push"),
            Some(("repository", "a/b", "pull,push"))
        );
        assert_eq!(
            parse_scope("repository(plugin):host:5000/a:pull"),
            Some(("repository", "host:5000/a", "pull"))
        );
        assert_eq!(
            parse_scope("registry:catalog:*"),
            Some(("registry", "catalog", "*"))
        );
        assert_eq!(parse_scope("repository::pull"), None);
        assert_eq!(parse_scope("repository:a"), None);
    }
}
