//! Registry authentication: challenges, Basic credentials and bearer tokens.
//!
//! Follows docker's "token authentication specification" and its OAuth2 variant, as
//! distribution-spec registries use them: a request answered `401` carries
//! `WWW-Authenticate`; for `Basic` the credentials are sent; for `Bearer` a token is fetched
//! from the `realm` with `service` and one `scope=repository:<name>:<actions>` per
//! repository involved (GET with Basic credentials when known, anonymous otherwise; a POST
//! refresh-token grant for an identity token), then the request is repeated with it.
//! Tokens are cached per (registry, scope set) until `expires_in` (default 60 s) minus a
//! margin. A `401` with `error="insufficient_scope"` widens the scope set once to what the
//! challenge asks for.

mod challenge;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue};

pub use challenge::{Challenge, parse_challenges};

use crate::body::{Body, read_body, status_error};
use crate::credentials::{Credential, CredentialProvider, CredentialsError};
use crate::error::{BoxError, Error};
use crate::transport::{Endpoint, Op, Outgoing, SendAuth, Transport, origin};
use crate::url::{encode, with_query};

/// Default token lifetime when the token endpoint gives none (docker token spec).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Longest token-endpoint response read.
const MAX_TOKEN_BODY: usize = 1 << 20;
/// `client_id` sent with OAuth2 grants.
const CLIENT_ID: &str = "berth";

/// A set of token scopes, kept sorted so equal sets share cached tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Scopes(Vec<String>);

impl Scopes {
    /// `repository:<name>:pull`.
    pub(crate) fn pull(repository: &str) -> Scopes {
        Scopes::default().with(format!("repository:{repository}:pull"))
    }

    /// `repository:<name>:pull,push`.
    pub(crate) fn push(repository: &str) -> Scopes {
        Scopes::default().with(format!("repository:{repository}:pull,push"))
    }

    /// This set and `scope`.
    pub(crate) fn with(mut self, scope: String) -> Scopes {
        self.add(scope);
        self
    }

    fn add(&mut self, scope: String) -> bool {
        if scope.is_empty() || self.0.contains(&scope) {
            return false;
        }
        self.0.push(scope);
        self.0.sort();
        true
    }

    /// Add the space-separated scopes of a challenge; whether any was new.
    fn widen(&mut self, challenge_scopes: &str) -> bool {
        let mut added = false;
        for s in challenge_scopes.split_ascii_whitespace().take(8) {
            added |= self.add(s.to_owned());
        }
        added
    }

    fn key(&self) -> String {
        self.0.join(" ")
    }
}

#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug)]
struct Token {
    header: HeaderValue,
    expires: Instant,
}

#[derive(Debug, Default)]
struct RegistryState {
    /// Per repository (`None`: registry-wide requests); absent until looked up.
    credentials: HashMap<Option<String>, Option<Credential>>,
    scheme: Option<Scheme>,
    tokens: HashMap<String, Token>,
}

/// What a `401` told the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Something changed (scheme learned, scope widened, token dropped): try again.
    Retry,
    /// Nothing more to try.
    GiveUp {
        /// The challenge said the credentials lack the scope (`insufficient_scope`).
        insufficient_scope: bool,
    },
}

/// Authentication state of one [`Client`](crate::Client), per registry.
pub(crate) struct Authenticator {
    provider: Option<Arc<dyn CredentialProvider>>,
    state: Mutex<HashMap<String, RegistryState>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn basic_header(username: &str, password: &str) -> Option<HeaderValue> {
    sensitive(&format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    ))
}

impl Authenticator {
    pub(crate) fn new(provider: Option<Arc<dyn CredentialProvider>>) -> Authenticator {
        Authenticator {
            provider,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn with_state<T>(&self, registry: &str, f: impl FnOnce(&mut RegistryState) -> T) -> T {
        match self.state.lock() {
            Ok(mut m) => f(m.entry(registry.to_owned()).or_default()),
            Err(poisoned) => f(poisoned
                .into_inner()
                .entry(registry.to_owned())
                .or_default()),
        }
    }

    /// The credentials for `repository` on `registry`, looked up once (on a blocking
    /// thread: the lookup may run a credential helper).
    pub(crate) async fn credential(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<Credential>, Error> {
        let key = repository.map(str::to_owned);
        if let Some(c) = self.with_state(registry, |s| s.credentials.get(&key).cloned()) {
            return Ok(c);
        }
        let Some(provider) = self.provider.clone() else {
            return Ok(None);
        };
        let (reg, repo) = (registry.to_owned(), key.clone());
        let found =
            tokio::task::spawn_blocking(move || provider.get_for_repository(&reg, repo.as_deref()))
                .await
                .unwrap_or_else(|e| {
                    Err(CredentialsError::Interrupted {
                        reason: e.to_string(),
                    })
                })
                .map_err(|source| Error::Credentials {
                    registry: registry.to_owned(),
                    source: Box::new(source),
                })?;
        self.with_state(registry, |s| s.credentials.insert(key, found.clone()));
        Ok(found)
    }

    /// The `Authorization` header for a request needing `scopes` on `registry`, once the
    /// registry's scheme is known (fetching a token when none is cached).
    pub(crate) async fn header(
        &self,
        t: &Transport,
        op: &Op,
        registry: &str,
        scopes: &Scopes,
    ) -> Result<Option<HeaderValue>, Error> {
        let Some(scheme) = self.with_state(registry, |s| s.scheme.clone()) else {
            return Ok(None);
        };
        match scheme {
            Scheme::Basic => Ok(
                match self.credential(registry, op.target.repository()).await? {
                    Some(Credential::Basic { username, password }) => {
                        basic_header(&username, password.expose())
                    }
                    _ => None,
                },
            ),
            Scheme::Bearer { realm, service } => {
                let key = scopes.key();
                let now = Instant::now();
                let cached = self.with_state(registry, |s| {
                    s.tokens
                        .get(&key)
                        .filter(|tok| tok.expires > now)
                        .map(|tok| tok.header.clone())
                });
                if let Some(h) = cached {
                    return Ok(Some(h));
                }
                let credential = self.credential(registry, op.target.repository()).await?;
                let token = fetch_token(
                    t,
                    op,
                    registry,
                    &realm,
                    service.as_deref(),
                    scopes,
                    credential.as_ref(),
                )
                .await?;
                let header = token.header.clone();
                self.with_state(registry, |s| s.tokens.insert(key, token));
                Ok(Some(header))
            }
        }
    }

    /// Learn from a `401`'s `WWW-Authenticate` values. `sent` says whether the refused
    /// request carried credentials.
    pub(crate) fn challenged(
        &self,
        registry: &str,
        repository: Option<&str>,
        scopes: &mut Scopes,
        www_authenticate: &[&str],
        sent: bool,
    ) -> Verdict {
        let challenges: Vec<Challenge> = www_authenticate
            .iter()
            .flat_map(|h| parse_challenges(h))
            .collect();
        let bearer = challenges
            .iter()
            .find(|c| c.is("bearer") && c.param("realm").is_some_and(|r| !r.is_empty()));
        let chosen = bearer.or_else(|| challenges.iter().find(|c| c.is("basic")));
        let Some(c) = chosen else {
            return Verdict::GiveUp {
                insufficient_scope: false,
            };
        };
        let insufficient = c.param("error") == Some("insufficient_scope");
        let scheme = if c.is("bearer") {
            Scheme::Bearer {
                realm: c.param("realm").unwrap_or_default().to_owned(),
                service: c.param("service").map(str::to_owned),
            }
        } else {
            Scheme::Basic
        };
        let key = scopes.key();
        // Some(true/false) once looked up, None before.
        let has_credential = self.with_state(registry, |s| {
            s.scheme = Some(scheme.clone());
            s.tokens.remove(&key);
            s.credentials
                .get(&repository.map(str::to_owned))
                .map(Option::is_some)
        });
        let widened = insufficient && c.param("scope").is_some_and(|sc| scopes.widen(sc));
        match scheme {
            _ if widened => Verdict::Retry,
            // First contact: now that the scheme is known, send what we have.
            _ if !sent => match scheme {
                Scheme::Bearer { .. } => Verdict::Retry,
                // Basic without credentials cannot succeed; the lookup happens in `header`.
                Scheme::Basic => match (has_credential, self.provider.is_some()) {
                    (Some(true), _) | (None, true) => Verdict::Retry,
                    _ => Verdict::GiveUp {
                        insufficient_scope: false,
                    },
                },
            },
            // A refused token may just have expired early: one fresh token is worth a try.
            Scheme::Bearer { .. } if c.param("error") == Some("invalid_token") => Verdict::Retry,
            _ => Verdict::GiveUp {
                insufficient_scope: insufficient,
            },
        }
    }
}

/// Fetch a token from `realm` for `scopes`.
async fn fetch_token(
    t: &Transport,
    op: &Op,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &Scopes,
    credential: Option<&Credential>,
) -> Result<Token, Error> {
    let token_err = |source: BoxError| Error::Token {
        target: op.target.clone(),
        realm: realm.to_owned(),
        source,
    };
    let Some((scheme, authority)) = origin(realm).filter(|(s, _)| *s == "https" || *s == "http")
    else {
        return Err(token_err(
            format!("realm {realm:?} is not an http(s) URL").into(),
        ));
    };
    if scheme == "http" && credential.is_some() && !t.plain_http_allowed(authority) {
        return Err(Error::InsecureRealm {
            registry: registry.to_owned(),
            url: realm.to_owned(),
        });
    }
    let mut auth = None;
    let out = match credential {
        Some(Credential::IdentityToken { token, .. }) => {
            let mut form = format!(
                "grant_type=refresh_token&client_id={}&refresh_token={}",
                encode(CLIENT_ID),
                encode(token.expose())
            );
            if let Some(s) = service {
                form.push_str(&format!("&service={}", encode(s)));
            }
            if !scopes.0.is_empty() {
                form.push_str(&format!("&scope={}", encode(&scopes.key())));
            }
            Outgoing::new(Method::POST, Endpoint::Url(realm.to_owned()))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::Bytes(form.into()))
        }
        other => {
            let mut url = realm.to_owned();
            if let Some(s) = service {
                url = with_query(&url, "service", s);
            }
            for s in &scopes.0 {
                url = with_query(&url, "scope", s);
            }
            if let Some(Credential::Basic { username, password }) = other {
                url = with_query(&url, "account", username);
                auth = basic_header(username, password.expose());
            }
            Outgoing::new(Method::GET, Endpoint::Url(url))
        }
    };
    let send_auth = auth.as_ref().map_or(SendAuth::None, SendAuth::Realm);
    let resp = t.send(op, registry, &out, send_auth).await?.resp;
    let status = resp.status().as_u16();
    if status != 200 {
        // 401/403 from the token service: the credentials (or their absence) are refused.
        return Err(status_error(op, resp, credential, t.timeout).await);
    }
    let body = read_body(op, resp, MAX_TOKEN_BODY, t.timeout).await?;
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| token_err(Box::new(e)))?;
    let value = if parsed.token.is_empty() {
        parsed.access_token
    } else {
        parsed.token
    };
    if value.is_empty() {
        return Err(token_err("the response holds no token".into()));
    }
    let header = sensitive(&format!("Bearer {value}"))
        .ok_or_else(|| token_err("the token is not a valid header value".into()))?;
    let lifetime = parsed
        .expires_in
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    tracing::debug!(registry, scopes = %scopes.key(), ?lifetime, "got a registry token");
    Ok(Token {
        header,
        expires: Instant::now() + lifetime - expiry_margin(lifetime),
    })
}

/// How long before its expiry a token is no longer used: a tenth, at most 30 s.
fn expiry_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_a_sorted_set() {
        let s = Scopes::push("b")
            .with("repository:a:pull".into())
            .with("repository:a:pull".into());
        assert_eq!(s.key(), "repository:a:pull repository:b:pull,push");
        let mut s = Scopes::pull("x");
        assert!(s.widen("repository:x:pull repository:y:pull"));
        assert!(!s.widen("repository:y:pull"));
        assert_eq!(s.0.len(), 2);
    }

    #[test]
    fn margins() {
        assert_eq!(
            expiry_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(
            expiry_margin(Duration::from_secs(3600)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn challenge_verdicts() {
        let a = Authenticator::new(None);
        let mut scopes = Scopes::pull("app");
        let bearer =
            r#"Bearer realm="http://127.0.0.1:1/token",service="svc",scope="repository:app:pull""#;
        assert_eq!(
            a.challenged("r", None, &mut scopes, &[bearer], false),
            Verdict::Retry
        );
        // a token that was refused without a reason: give up
        assert_eq!(
            a.challenged("r", None, &mut scopes, &[bearer], true),
            Verdict::GiveUp {
                insufficient_scope: false
            }
        );
        let wider = r#"Bearer realm="http://127.0.0.1:1/token",error="insufficient_scope",scope="repository:app:pull repository:src:pull""#;
        assert_eq!(
            a.challenged("r", None, &mut scopes, &[wider], true),
            Verdict::Retry
        );
        assert_eq!(
            a.challenged("r", None, &mut scopes, &[wider], true),
            Verdict::GiveUp {
                insufficient_scope: true
            }
        );
        let expired = r#"Bearer realm="http://127.0.0.1:1/token",error="invalid_token""#;
        assert_eq!(
            a.challenged("r", None, &mut scopes, &[expired], true),
            Verdict::Retry
        );
        // Basic without any credential source cannot succeed
        assert_eq!(
            a.challenged("b", None, &mut scopes, &[r#"Basic realm="x""#], false),
            Verdict::GiveUp {
                insufficient_scope: false
            }
        );
        assert_eq!(
            a.challenged("c", None, &mut scopes, &["Negotiate abc"], false),
            Verdict::GiveUp {
                insufficient_scope: false
            }
        );
    }
}
