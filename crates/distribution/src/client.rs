//! [`Client`]: options, repositories, the authenticated request loop, and the manifest,
//! tag and ping operations. Blobs are in `blob.rs`, referrers in `referrers.rs`.

use std::sync::Arc;
use std::time::Duration;

use berth_oci::{Reference, validate_repository_name};
use http::Method;
use http::header::{LOCATION, WWW_AUTHENTICATE};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::auth::{Authenticator, Scopes, Verdict};
use crate::body::{Body, status_error};
use crate::connect::{Connector, TlsSettings, client_config};
use crate::credentials::{Credential, CredentialProvider};
use crate::error::{Error, Target};
use crate::retry::RetryPolicy;
use crate::transport::{
    Endpoint, Op, Outgoing, PlainHttp, Reply, SendAuth, Transport, is_loopback, on_host, origin,
};
use crate::url::resolve;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// Authentication rounds (401 → learn → retry) for one request.
const MAX_AUTH_ROUNDS: usize = 3;

/// How a [`Client`] connects, authenticates and retries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Where credentials come from; `None` = anonymous everywhere.
    pub credentials: Option<Arc<dyn CredentialProvider>>,
    /// When to use plain HTTP (default: only for loopback registries that do not speak TLS).
    pub plain_http: PlainHttp,
    /// Accept any TLS certificate (test registries only).
    pub insecure_skip_verify: bool,
    /// Trust the system's root certificates (default `true`).
    pub system_roots: bool,
    /// More trusted CA certificates, PEM or DER (a registry's `certs.d/<host>/ca.crt`).
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Blob transfers running at once through this client (default 6).
    pub max_concurrency: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long to wait for a response, or for the next bytes of a body (default 60 s).
    pub timeout: Duration,
    /// Blobs up to this size are uploaded in one request (default 8 MiB).
    pub monolithic_max: u64,
    /// Chunk size of chunked uploads (default 32 MiB).
    pub chunk_size: u64,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            credentials: None,
            plain_http: PlainHttp::Auto,
            insecure_skip_verify: false,
            system_roots: true,
            extra_root_certificates: Vec::new(),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            max_concurrency: 6,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            monolithic_max: 8 << 20,
            chunk_size: 32 << 20,
        }
    }
}

/// A repository on a registry: what every operation works on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    registry: String,
    name: String,
}

impl Repository {
    /// `name` on `registry` (`host[:port]`; `docker.io` for Docker Hub). The name is checked
    /// against the distribution-spec grammar.
    pub fn new(registry: &str, name: &str) -> Result<Repository, Error> {
        let bad = |what: &'static str, value: &str, reason: String| Error::InvalidInput {
            what,
            value: value.to_owned(),
            reason,
        };
        if registry.is_empty()
            || registry.len() > 255
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        {
            return Err(bad("registry", registry, "not a host[:port]".into()));
        }
        validate_repository_name(name).map_err(|e| bad("repository name", name, e.to_string()))?;
        Ok(Repository {
            registry: registry.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The registry host.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn target(&self, reference: Option<&dyn std::fmt::Display>) -> Target {
        let reference = reference.map(ToString::to_string);
        Target::new(&self.registry, Some(&self.name), reference.as_deref())
    }

    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.name)
    }
}

impl From<&Reference> for Repository {
    fn from(r: &Reference) -> Repository {
        Repository {
            registry: r.registry().to_owned(),
            name: r.repository().to_owned(),
        }
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) auth: Authenticator,
    pub(crate) permits: Semaphore,
    pub(crate) opts: ClientOptions,
}

/// A registry client (distribution-spec v1.1). Cheap to clone; clones share connections,
/// tokens and the concurrency limit.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.inner.transport)
            .field("max_concurrency", &self.inner.opts.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with `opts`. Fails only on an unusable TLS configuration (a bad extra root
    /// certificate).
    pub fn new(opts: ClientOptions) -> Result<Client, Error> {
        let tls = client_config(&TlsSettings {
            system_roots: opts.system_roots && opts.plain_http != PlainHttp::Always,
            extra_roots: opts.extra_root_certificates.clone(),
            insecure_skip_verify: opts.insecure_skip_verify,
        })?;
        let max = opts.max_concurrency.max(1);
        let transport = Transport::new(
            Connector::new(tls),
            opts.plain_http,
            opts.retry.clone(),
            opts.timeout,
            &opts.user_agent,
            max,
        );
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                auth: Authenticator::new(opts.credentials.clone()),
                permits: Semaphore::new(max),
                opts,
            }),
        })
    }

    pub(crate) fn opts(&self) -> &ClientOptions {
        &self.inner.opts
    }

    pub(crate) fn idle(&self) -> Duration {
        self.inner.transport.timeout
    }

    /// A slot for one blob transfer.
    pub(crate) async fn permit(&self) -> Option<SemaphorePermit<'_>> {
        self.inner.permits.acquire().await.ok()
    }

    /// Send `out`, answering authentication challenges and following redirects (for GET and
    /// HEAD). Returns the final response, whatever its status except a `401` that could not
    /// be answered (an error).
    pub(crate) async fn call(
        &self,
        op: &Op,
        registry: &str,
        mut scopes: Scopes,
        mut out: Outgoing,
    ) -> Result<Reply, Error> {
        let t = &self.inner.transport;
        let auth = &self.inner.auth;
        let (mut rounds, mut hops) = (0, 0);
        loop {
            let header = auth.header(t, op, registry, &scopes).await?;
            let send_auth = header.as_ref().map_or(SendAuth::None, SendAuth::Registry);
            let reply = t.send(op, registry, &out, send_auth).await?;
            let status = reply.status();
            let on_registry = on_host(&reply.url, registry);
            if status == 401 && on_registry {
                let www: Vec<&str> = reply
                    .resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                let verdict = if rounds < MAX_AUTH_ROUNDS {
                    auth.challenged(
                        registry,
                        op.target.repository(),
                        &mut scopes,
                        &www,
                        header.is_some(),
                    )
                } else {
                    Verdict::GiveUp {
                        insufficient_scope: false,
                    }
                };
                rounds += 1;
                match verdict {
                    Verdict::Retry => continue,
                    Verdict::GiveUp { insufficient_scope } => {
                        let sent = match header {
                            Some(_) => auth.credential(registry, op.target.repository()).await?,
                            None => None,
                        };
                        let err = status_error(op, reply.resp, sent.as_ref(), self.idle()).await;
                        return Err(match err {
                            Error::Unauthorized {
                                operation,
                                target,
                                codes,
                                ..
                            } if insufficient_scope && sent.is_some() => Error::Denied {
                                operation,
                                target,
                                codes,
                            },
                            e => e,
                        });
                    }
                }
            }
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308)
                && (out.method == Method::GET || out.method == Method::HEAD);
            if !redirect {
                return Ok(reply);
            }
            hops += 1;
            let invalid = |reason: String| Error::InvalidResponse {
                operation: op.name,
                target: op.target.clone(),
                reason,
            };
            if hops > MAX_REDIRECTS {
                return Err(invalid(format!("more than {MAX_REDIRECTS} redirects")));
            }
            let location = reply
                .header(LOCATION)
                .and_then(|l| resolve(&reply.url, l))
                .ok_or_else(|| invalid(format!("redirect {status} without a usable Location")))?;
            let downgrade = reply.url.starts_with("https:")
                && location.starts_with("http:")
                && !origin(&location).is_some_and(|(_, a)| is_loopback(a));
            if downgrade {
                return Err(invalid("redirect from HTTPS to plain HTTP refused".into()));
            }
            tracing::debug!(status, to = %crate::transport::redact(&location), "following redirect");
            out.endpoint = Endpoint::Url(location);
            out.body = Body::Empty;
        }
    }

    /// `call`, then an error unless the status is one of `ok`.
    pub(crate) async fn expect(
        &self,
        op: &Op,
        registry: &str,
        scopes: Scopes,
        out: Outgoing,
        ok: &[u16],
    ) -> Result<Reply, Error> {
        let reply = self.call(op, registry, scopes, out).await?;
        if ok.contains(&reply.status()) {
            return Ok(reply);
        }
        Err(self.error(op, registry, reply).await)
    }

    /// `expect` a pull-scoped request to answer 200, or 404 for "not there" (`None`).
    pub(crate) async fn pull_if_found(
        &self,
        op: &Op,
        repo: &Repository,
        out: Outgoing,
    ) -> Result<Option<Reply>, Error> {
        let reply = self
            .expect(
                op,
                repo.registry(),
                Scopes::pull(repo.name()),
                out,
                &[200, 404],
            )
            .await?;
        Ok((reply.status() != 404).then_some(reply))
    }

    pub(crate) async fn error(&self, op: &Op, registry: &str, reply: Reply) -> Error {
        let credential = self
            .inner
            .auth
            .credential(registry, op.target.repository())
            .await
            .ok()
            .flatten();
        status_error(op, reply.resp, credential.as_ref(), self.idle()).await
    }

    /// The credentials this client sends to `registry` (looked up once), for tools that
    /// follow the token flow step by step themselves (the conformance checks record each
    /// step). `None` when it has none.
    pub async fn credential(&self, registry: &str) -> Result<Option<Credential>, Error> {
        self.inner.auth.credential(registry, None).await
    }

    /// Check that `registry` answers the API and accepts this client's credentials (`GET
    /// /v2/`, answering its challenge): what `berth login` verifies.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %registry))]
    pub async fn ping(&self, registry: &str) -> Result<(), Error> {
        let op = Op {
            name: "reach registry",
            target: Target::registry_only(registry),
        };
        let out = Outgoing::new(Method::GET, Endpoint::Path("/v2/".into()));
        self.expect(&op, registry, Scopes::default(), out, &[200])
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_their_futures_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let c = Client::new(ClientOptions::default()).unwrap();
        send_sync(&c);
        let r = Repository::new("127.0.0.1:1", "a").unwrap();
        let d = berth_oci::Digest::sha256_of(b"");
        let mut sink = Vec::new();
        send(c.push_blob(&r, &d, 0, crate::BytesSource(bytes::Bytes::new())));
        send(c.get_blob(&r, &d, None, &mut sink));
        send(c.get_manifest(&r, "v1", &[]));
        send(c.put_manifest(&r, "v1", b"{}", "a/b"));
        send(c.referrers(&r, &d, None));
        send(c.mount_blob(&r, &d, "b"));
        send(c.ping("127.0.0.1:1"));
    }

    #[test]
    fn repositories() {
        let r = Repository::new("127.0.0.1:5000", "team/app").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app");
        assert_eq!(r.path("tags/list"), "/v2/team/app/tags/list");
        assert!(Repository::new("r.example", "Bad").is_err());
        assert!(Repository::new("r.example/x", "a").is_err());
        assert!(Repository::new("", "a").is_err());
        assert!(Repository::new("[::1]:5000", "a").is_ok());
        let reference: Reference = "busybox".parse().unwrap();
        let r = Repository::from(&reference);
        assert_eq!((r.registry(), r.name()), ("docker.io", "library/busybox"));
    }
}
