//! Authentication and authorization for the registry API.
//!
//! Owns: the `[auth]` configuration, the htpasswd user file (bcrypt only), access rules, the
//! bearer-token endpoint (`/token`) and the per-request [`Authorizer::authorize`] decision.
//! Does not own: routing, request parsing or error bodies for the API itself; the core maps a
//! [`Decision`] to its 401/403 responses.
//!
//! Clients authenticate as `docker login`, podman, skopeo and containerd expect (docker
//! "token authentication specification" and its OAuth2 variant): an unauthenticated request
//! gets `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client fetches a
//! token from the realm with Basic credentials (GET) or a password/refresh grant (POST) and
//! retries with `Authorization: Bearer …`. `Authorization: Basic` is also accepted directly
//! on API requests (`curl -u`).
//!
//! Design decision: tokens are HS256 JWTs signed by this server with a key kept in the state
//! directory; they are verified on every request against the exact scope needed, and never
//! stored. With auth disabled, [`Authorizer::authorize`] returns before looking at headers.

mod access;
mod endpoint;
mod htpasswd;
mod token;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{self, HeaderMap, header};
use base64::Engine;
use serde::Deserialize;

pub use access::{AccessRule, Action};
use access::{ActionSet, Policy};
use htpasswd::Htpasswd;
use token::TokenKeys;

/// Default `service` (the token audience) when not configured.
pub const DEFAULT_SERVICE: &str = "berth-registry";
/// Default bearer-token lifetime.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;
/// Longest allowed `token_ttl_secs`: tokens cannot be revoked, so keep them short.
pub const MAX_TOKEN_TTL_SECS: u64 = 86_400;

/// The `[auth]` table of the registry configuration.
///
/// ```toml
/// [auth]
/// htpasswd = "/etc/berth/htpasswd"   # enables auth; bcrypt entries (htpasswd -B)
/// realm = "https://registry.example/token"   # default: <base URL>/token
/// service = "berth-registry"
/// token_ttl_secs = 300
/// token_key = "/etc/berth/token.key"   # shared by replicas; default <data>/registry/token.key
/// anonymous_pull = false
///
/// [[auth.access]]
/// users = ["ci"]
/// repositories = ["team/*", "exact/name"]
/// actions = ["pull", "push"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// htpasswd file with bcrypt entries; auth is enabled exactly when this is set.
    pub htpasswd: Option<PathBuf>,
    /// Token endpoint URL sent in challenges; default `<base URL>/token`.
    pub realm: Option<String>,
    /// Token audience and `service` challenge parameter; default [`DEFAULT_SERVICE`].
    pub service: Option<String>,
    /// Bearer-token lifetime in seconds; default [`DEFAULT_TOKEN_TTL_SECS`].
    pub token_ttl_secs: Option<u64>,
    /// The 32-byte token signing key, shared by every replica of one registry: it must exist
    /// (mode 0600). Default: `<state_dir>/token.key`, created on first start.
    pub token_key: Option<PathBuf>,
    /// Let unauthenticated clients pull (and call `GET /v2/`).
    pub anonymous_pull: bool,
    /// Access rules; none means every authenticated user may do everything.
    pub access: Vec<AccessRule>,
}

/// What failed while setting up authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("failed to read htpasswd file {path}")]
    ReadHtpasswd {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid htpasswd file {path} line {line}: {reason}")]
    ParseHtpasswd {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid [[auth.access]] rule #{index}: {reason}")]
    InvalidRule { index: usize, reason: String },
    #[error("invalid auth.{key}: {reason}")]
    InvalidConfig { key: &'static str, reason: String },
    #[error(
        "auth.{key} is set but auth.htpasswd is not; set auth.htpasswd to enable authentication"
    )]
    NeedsHtpasswd { key: &'static str },
    #[error("failed to read token key {path}")]
    ReadTokenKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create token key {path}")]
    WriteTokenKey {
        path: PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to generate a random token key for {path}")]
    GenerateTokenKey { path: PathBuf },
    #[error(
        "token key {path} has mode {mode:o}: group or others may read it and forge tokens; \
         hint: chmod 600 {path} (or remove it: a new key is created, and tokens issued so far stop working)"
    )]
    TokenKeyExposed { path: PathBuf, mode: u32 },
    #[error("token key {path} has {len} bytes, expected 32")]
    TokenKeyLength { path: PathBuf, len: usize },
    #[error(
        "token key {path} (auth.token_key) does not exist; hint: make it once with \
         `(umask 077; head -c 32 /dev/urandom > {path})` and give every replica the same file"
    )]
    TokenKeyMissing { path: PathBuf },
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `GET /v2/`: any valid identity when auth is on.
    Base,
    /// A repository; pushing needs `[Pull, Push]`, deleting `[Delete]`.
    Repository { name: String, actions: Vec<Action> },
    /// `GET /v2/_catalog`: scope `registry:catalog:*`.
    Catalog,
}

/// Who made the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user name; `None` for anonymous requests.
    pub subject: Option<String>,
}

/// The outcome of [`Authorizer::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Identity),
    /// 401: no or bad credentials, or token lacks the scope. `www_authenticate` is the full header value.
    Challenge {
        www_authenticate: String,
        message: String,
    },
    /// 403: authenticated, but the access rules never grant this.
    Deny {
        message: String,
    },
}

/// Decides every request. Cheap to clone (one `Arc`).
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    htpasswd: Htpasswd,
    policy: Policy,
    keys: TokenKeys,
    realm: Option<String>,
    service: String,
    ttl: u64,
}

/// Credentials from an `Authorization` header. No `Debug`: it holds a password.
enum Credentials<'a> {
    None,
    Basic { user: String, password: String },
    Bearer(&'a str),
    Invalid,
}

impl Authorizer {
    /// No authentication: every request is allowed anonymously.
    pub fn disabled() -> Authorizer {
        Authorizer { inner: None }
    }

    /// Build from configuration. Without `htpasswd` the result is [`Authorizer::disabled`];
    /// otherwise the htpasswd file must load and the token key in `state_dir` is loaded or
    /// created.
    pub fn new(cfg: &AuthConfig, state_dir: &std::path::Path) -> Result<Authorizer, AuthError> {
        Authorizer::build(cfg, state_dir, htpasswd::RECHECK)
    }

    fn build(
        cfg: &AuthConfig,
        state_dir: &std::path::Path,
        recheck: std::time::Duration,
    ) -> Result<Authorizer, AuthError> {
        let Some(path) = &cfg.htpasswd else {
            if !cfg.access.is_empty() {
                return Err(AuthError::NeedsHtpasswd { key: "access" });
            }
            if cfg.token_key.is_some() {
                return Err(AuthError::NeedsHtpasswd { key: "token_key" });
            }
            return Ok(Authorizer::disabled());
        };
        let ttl = cfg.token_ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
        if ttl == 0 || ttl > MAX_TOKEN_TTL_SECS {
            return Err(AuthError::InvalidConfig {
                key: "token_ttl_secs",
                reason: format!("{ttl} is not between 1 and {MAX_TOKEN_TTL_SECS}"),
            });
        }
        let is_url = |r: &String| r.starts_with("https://") || r.starts_with("http://");
        if let Some(realm) = cfg.realm.as_ref().filter(|r| !is_url(r)) {
            return Err(AuthError::InvalidConfig {
                key: "realm",
                reason: format!("{realm:?} is not an http(s) URL"),
            });
        }
        let service = cfg
            .service
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVICE.into());
        if service.is_empty() || service.contains('"') {
            return Err(AuthError::InvalidConfig {
                key: "service",
                reason: format!("{service:?} must be non-empty and contain no quotes"),
            });
        }
        let policy = Policy::new(&cfg.access, cfg.anonymous_pull)?;
        let htpasswd = Htpasswd::load(path, recheck)?;
        let keys = match &cfg.token_key {
            Some(path) => TokenKeys::load(path)?,
            None => TokenKeys::load_or_create(state_dir)?,
        };
        Ok(Authorizer {
            inner: Some(Arc::new(Inner {
                htpasswd,
                policy,
                keys,
                realm: cfg.realm.clone(),
                service,
                ttl,
            })),
        })
    }

    /// Whether authentication is on (`auth.htpasswd` configured).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Decide one request. `base_url` = scheme://host[:port] the client used, for the realm.
    pub fn authorize(&self, headers: &HeaderMap, base_url: &str, access: &Access) -> Decision {
        match &self.inner {
            None => Decision::Allow(Identity { subject: None }),
            Some(inner) => inner.authorize(headers, base_url, access),
        }
    }

    /// `GET` and `POST /token` (docker token spec + OAuth2 password/refresh grants).
    pub async fn token(
        &self,
        method: http::Method,
        headers: &HeaderMap,
        query: &str,
        body: bytes::Bytes,
        base_url: &str,
    ) -> axum::response::Response {
        match &self.inner {
            None => endpoint::not_enabled(),
            Some(inner) => inner.token(&method, headers, query, &body, base_url),
        }
    }
}

impl Inner {
    fn authorize(&self, headers: &HeaderMap, base_url: &str, access: &Access) -> Decision {
        let anonymous = Identity { subject: None };
        match credentials(headers) {
            Credentials::None => {
                if self.user_allowed(None, access) {
                    Decision::Allow(anonymous)
                } else {
                    self.challenge(base_url, access, None, "authentication required".into())
                }
            }
            Credentials::Basic { user, password } => {
                if !self.htpasswd.verify(&user, &password) {
                    tracing::info!(user = %user, "invalid username or password");
                    return self.challenge(
                        base_url,
                        access,
                        None,
                        "invalid username or password".into(),
                    );
                }
                if self.user_allowed(Some(&user), access) {
                    Decision::Allow(Identity {
                        subject: Some(user),
                    })
                } else {
                    Decision::Deny {
                        message: format!("user {user:?} may not {}", describe(access)),
                    }
                }
            }
            Credentials::Bearer(token) => {
                let claims = match self
                    .keys
                    .verify_access(token, &self.service, token::now_secs())
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(error = %e, "bearer token refused");
                        return self.challenge(
                            base_url,
                            access,
                            Some("invalid_token"),
                            e.to_string(),
                        );
                    }
                };
                let subject = (!claims.sub.is_empty()).then_some(claims.sub);
                if token_grants(&claims.access, access) || self.user_allowed(None, access) {
                    Decision::Allow(Identity { subject })
                } else {
                    self.challenge(
                        base_url,
                        access,
                        Some("insufficient_scope"),
                        format!("token does not grant access to {}", describe(access)),
                    )
                }
            }
            Credentials::Invalid => self.challenge(
                base_url,
                access,
                None,
                "unsupported or malformed Authorization header".into(),
            ),
        }
    }

    /// Whether the rules let `user` (`None` = anonymous) perform `access`.
    fn user_allowed(&self, user: Option<&str>, access: &Access) -> bool {
        match access {
            Access::Base => self.policy.base_allowed(user),
            Access::Catalog => self.policy.catalog_allowed(user),
            Access::Repository { name, actions } => self
                .policy
                .allowed(user, name)
                .contains_all(required(actions)),
        }
    }

    fn realm(&self, base_url: &str) -> String {
        match &self.realm {
            Some(r) => r.clone(),
            None => format!("{}/token", base_url.trim_end_matches('/')),
        }
    }

    fn challenge(
        &self,
        base_url: &str,
        access: &Access,
        error: Option<&str>,
        message: String,
    ) -> Decision {
        let mut h = String::with_capacity(160);
        h.push_str("Bearer realm=");
        push_quoted(&mut h, &self.realm(base_url));
        h.push_str(",service=");
        push_quoted(&mut h, &self.service);
        if let Some(scope) = scope_of(access) {
            h.push_str(",scope=");
            push_quoted(&mut h, &scope);
        }
        if let Some(error) = error {
            h.push_str(",error=");
            push_quoted(&mut h, error);
        }
        Decision::Challenge {
            www_authenticate: h,
            message,
        }
    }
}

/// The actions a repository access needs; an empty list is treated as pull.
fn required(actions: &[Action]) -> ActionSet {
    let set = ActionSet::from_actions(actions);
    if set.is_empty() {
        ActionSet::NONE.with(Action::Pull)
    } else {
        set
    }
}

/// Whether a token's `access` claim covers `access`.
fn token_grants(granted: &[token::ResourceActions], access: &Access) -> bool {
    match access {
        Access::Base => true,
        Access::Catalog => granted.iter().any(|r| {
            r.kind == "registry" && r.name == "catalog" && r.actions.iter().any(|a| a == "*")
        }),
        Access::Repository { name, actions } => granted
            .iter()
            .filter(|r| r.kind == "repository" && r.name == *name)
            .fold(ActionSet::NONE, |acc, r| {
                acc.union(parse_actions(&r.actions))
            })
            .contains_all(required(actions)),
    }
}

/// Scope actions (`"*"` = all) as a set; unknown actions are ignored.
fn parse_actions<S: AsRef<str>>(actions: &[S]) -> ActionSet {
    actions
        .iter()
        .fold(ActionSet::NONE, |acc, a| match a.as_ref() {
            "*" => ActionSet::ALL,
            a => Action::parse(a).map_or(acc, |a| acc.with(a)),
        })
}

/// The token scope for `access` (`repository:name:pull,push`), if it has one.
fn scope_of(access: &Access) -> Option<String> {
    match access {
        Access::Base => None,
        Access::Catalog => Some("registry:catalog:*".into()),
        Access::Repository { name, actions } => {
            let mut s = format!("repository:{name}:");
            let actions: &[Action] = if actions.is_empty() {
                &[Action::Pull]
            } else {
                actions
            };
            for (i, a) in actions.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(a.as_str());
            }
            Some(s)
        }
    }
}

fn describe(access: &Access) -> String {
    match access {
        Access::Base => "access the registry".into(),
        Access::Catalog => "list the catalog".into(),
        Access::Repository { name, actions } => {
            let actions: Vec<&str> = required(actions).iter().map(Action::as_str).collect();
            format!("{} repository {name}", actions.join(","))
        }
    }
}

/// Append `v` as an RFC 7230 quoted-string.
fn push_quoted(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Invalid;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Credentials::Bearer(rest)
    } else if scheme.eq_ignore_ascii_case("basic") {
        parse_basic(rest).unwrap_or(Credentials::Invalid)
    } else {
        Credentials::Invalid
    }
}

fn parse_basic(b64: &str) -> Option<Credentials<'static>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let raw = STANDARD
        .decode(b64)
        .or_else(|_| STANDARD_NO_PAD.decode(b64))
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some(Credentials::Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
