//! Sending one request: scheme choice (HTTPS, or plain HTTP where allowed), timeouts,
//! retries with backoff, and turning failures into [`Error`]s. No authentication here.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Method, Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::{Body, ReqBody, SourceRead};
use crate::connect::{ConnectFailure, Connector};
use crate::error::{ConnectCause, Error, Target};
use crate::retry::{MAX_RETRY_AFTER, RetryPolicy, parse_retry_after, retryable_status};

/// When to use plain HTTP instead of HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainHttp {
    /// HTTPS, except for loopback registries (`localhost`, `127.0.0.0/8`, `::1`): those are
    /// tried over HTTPS first and fall back to plain HTTP when the server does not speak
    /// TLS, as docker does for its default insecure registries.
    #[default]
    Auto,
    /// Always plain HTTP (`--plain-http`).
    Always,
    /// Always HTTPS, loopback included.
    Never,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    /// A path (and query) under the registry's base URL: `/v2/…`.
    Path(String),
    /// An absolute URL (an upload `Location`, a redirect, a token realm).
    Url(String),
}

/// A request before the scheme and credentials are chosen.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub method: Method,
    pub endpoint: Endpoint,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Outgoing {
    pub(crate) fn new(method: Method, endpoint: Endpoint) -> Outgoing {
        Outgoing {
            method,
            endpoint,
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }

    pub(crate) fn header(mut self, name: http::header::HeaderName, value: &str) -> Outgoing {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub(crate) fn body(mut self, body: Body) -> Outgoing {
        self.body = body;
        self
    }
}

/// Which credentials a request carries, and where they may go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SendAuth<'a> {
    None,
    /// Only to the registry's own host: dropped when a redirect leads elsewhere.
    Registry(&'a HeaderValue),
    /// To the request's URL wherever it is (a token realm the registry named).
    Realm(&'a HeaderValue),
}

/// A response and the URL that answered it (to resolve relative `Location`s against).
#[derive(Debug)]
pub(crate) struct Reply {
    pub resp: Response<Incoming>,
    pub url: String,
}

impl Reply {
    pub(crate) fn status(&self) -> u16 {
        self.resp.status().as_u16()
    }

    pub(crate) fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.resp.headers().get(name).and_then(|v| v.to_str().ok())
    }
}

/// What an operation is, for its errors.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub name: &'static str,
    pub target: Target,
}

/// The HTTP client shared by all operations of a [`Client`](crate::Client).
pub(crate) struct Transport {
    http: HyperClient<Connector, ReqBody>,
    plain_http: PlainHttp,
    /// Loopback registries under [`PlainHttp::Auto`]: `true` = HTTPS worked, `false` = HTTP.
    pins: Mutex<HashMap<String, bool>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("plain_http", &self.plain_http)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The host serving a registry's API: Docker Hub's is not `docker.io`.
pub(crate) fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        r => r,
    }
}

/// The host part of `host[:port]` (brackets of IPv6 literals removed).
fn host_only(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// `localhost`, `127.0.0.0/8` or `::1` (with or without a port).
pub(crate) fn is_loopback(authority: &str) -> bool {
    let host = host_only(authority);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` is on `registry`'s API host (default ports ignored).
pub(crate) fn on_host(url: &str, registry: &str) -> bool {
    let strip = |scheme: &str, authority: &str| -> String {
        let a = authority.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        a.strip_suffix(default).map(str::to_owned).unwrap_or(a)
    };
    let Some((scheme, authority)) = origin(url) else {
        return false;
    };
    strip(scheme, authority) == strip(scheme, api_host(registry))
}

/// `scheme://authority` of an absolute URL.
pub(crate) fn origin(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some((scheme, authority))
}

impl Transport {
    pub(crate) fn new(
        connector: Connector,
        plain_http: PlainHttp,
        retry: RetryPolicy,
        timeout: Duration,
        user_agent: &str,
        max_idle: usize,
    ) -> Transport {
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        Transport {
            http,
            plain_http,
            pins: Mutex::new(HashMap::new()),
            retry,
            timeout,
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("berth")),
        }
    }

    fn pin(&self, registry: &str) -> Option<bool> {
        self.pins.lock().ok().and_then(|m| m.get(registry).copied())
    }

    fn set_pin(&self, registry: &str, https: bool) {
        if let Ok(mut m) = self.pins.lock() {
            m.insert(registry.to_owned(), https);
        }
    }

    /// Whether plain HTTP is acceptable for `authority` (credentials may be sent there).
    pub(crate) fn plain_http_allowed(&self, authority: &str) -> bool {
        match self.plain_http {
            PlainHttp::Always => true,
            PlainHttp::Auto => is_loopback(authority),
            PlainHttp::Never => false,
        }
    }

    /// `scheme://host` for `registry`, and whether the scheme is a first HTTPS try that may
    /// fall back to HTTP.
    pub(crate) fn base_url(&self, registry: &str) -> (String, bool) {
        let host = api_host(registry);
        let (https, tentative) = match self.plain_http {
            PlainHttp::Always => (false, false),
            PlainHttp::Never => (true, false),
            PlainHttp::Auto if !is_loopback(registry) => (true, false),
            PlainHttp::Auto => match self.pin(registry) {
                Some(https) => (https, false),
                None => (true, true),
            },
        };
        let scheme = if https { "https" } else { "http" };
        (format!("{scheme}://{host}"), tentative)
    }

    /// The absolute URL of `endpoint` on `registry`.
    pub(crate) fn url(&self, registry: &str, endpoint: &Endpoint) -> (String, bool) {
        match endpoint {
            Endpoint::Url(u) => (u.clone(), false),
            Endpoint::Path(p) => {
                let (base, tentative) = self.base_url(registry);
                (format!("{base}{p}"), tentative)
            }
        }
    }

    /// Send `out` to `registry`, retrying what may succeed on another attempt. Any
    /// response is returned, whatever its status, once retries are done. `auth` is sent
    /// only to the registry's own host unless it is for a token realm.
    pub(crate) async fn send(
        &self,
        op: &Op,
        registry: &str,
        out: &Outgoing,
        auth: SendAuth<'_>,
    ) -> Result<Reply, Error> {
        let mut attempt = 1u32;
        let mut fell_back = false;
        loop {
            let (url, tentative) = self.url(registry, &out.endpoint);
            let same_host = on_host(&url, registry);
            let body = out.body.make().await.map_err(|source| Error::Source {
                target: op.target.clone(),
                source,
            })?;
            let mut req = Request::builder()
                .method(out.method.clone())
                .uri(url.as_str());
            if let Some(h) = req.headers_mut() {
                h.extend(out.headers.clone());
                h.insert(USER_AGENT, self.user_agent.clone());
                match auth {
                    SendAuth::Registry(a) if same_host => {
                        h.insert(AUTHORIZATION, a.clone());
                    }
                    SendAuth::Realm(a) => {
                        h.insert(AUTHORIZATION, a.clone());
                    }
                    _ => {}
                }
            }
            let req = req.body(body).map_err(|e| Error::InvalidInput {
                what: "URL",
                value: url.clone(),
                reason: e.to_string(),
            })?;
            tracing::trace!(method = %out.method, url = %url, attempt, "sending");
            let limit = out.body.timeout(self.timeout);
            let failure = match tokio::time::timeout(limit, self.http.request(req)).await {
                Ok(Ok(resp)) => {
                    if tentative {
                        self.set_pin(registry, true);
                    }
                    let status = resp.status().as_u16();
                    if !retryable_status(status) || attempt >= self.retry.max_attempts {
                        return Ok(Reply { resp, url });
                    }
                    let asked = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let wait = match asked {
                        Some(d) if d > MAX_RETRY_AFTER => return Ok(Reply { resp, url }),
                        Some(d) => d,
                        None => self.retry.backoff(attempt),
                    };
                    tracing::debug!(status, url = %url, attempt, ?wait, "retrying after a transient status");
                    drop(resp);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
                Ok(Err(e)) => e,
                Err(_) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(Error::Timeout {
                            operation: op.name,
                            target: op.target.clone(),
                            after: limit,
                        });
                    }
                    tracing::debug!(url = %url, attempt, "retrying after a timeout");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
            };
            if let Some(SourceRead(source)) = find_in_chain::<SourceRead>(&failure) {
                return Err(Error::Source {
                    target: op.target.clone(),
                    source: io::Error::new(source.kind(), source.to_string()),
                });
            }
            let connect = find_in_chain::<ConnectFailure>(&failure);
            let cause = match connect {
                Some(ConnectFailure::Tls {
                    certificate: true, ..
                }) => ConnectCause::Certificate,
                Some(ConnectFailure::Tls {
                    looks_plain: true, ..
                }) => ConnectCause::PlainHttpServer,
                _ => ConnectCause::Network,
            };
            if tentative && cause == ConnectCause::PlainHttpServer && !fell_back {
                tracing::debug!(registry, "no TLS on a loopback registry; using plain HTTP");
                self.set_pin(registry, false);
                fell_back = true;
                continue;
            }
            let permanent = matches!(
                cause,
                ConnectCause::Certificate | ConnectCause::PlainHttpServer
            ) || matches!(connect, Some(ConnectFailure::ServerName { .. }));
            if !permanent && attempt < self.retry.max_attempts {
                let wait = self.retry.backoff(attempt);
                tracing::debug!(url = %url, attempt, ?wait, error = %failure, "retrying after a connection error");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(if connect.is_some() || failure.is_connect() {
                Error::Connect {
                    operation: op.name,
                    target: op.target.clone(),
                    url: redact_query(&url),
                    cause,
                    source: Box::new(failure),
                }
            } else {
                Error::Transport {
                    operation: op.name,
                    target: op.target.clone(),
                    source: Box::new(failure),
                }
            });
        }
    }
}

/// `url` without its query (which may hold upload state or signed tokens), for messages.
pub(crate) fn redact(url: &str) -> String {
    redact_query(url)
}

fn redact_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// The first error of type `T` in `e`'s source chain (including `e`).
pub(crate) fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(t) = inner.downcast_ref::<T>()
        {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "localhost.example",
            "10.0.0.1:5000",
            "[::2]:5000",
            "128.0.0.1",
            "docker.io",
            "",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://a.example:5000/v2/x?y"),
            Some(("https", "a.example:5000"))
        );
        assert_eq!(origin("http://[::1]:80"), Some(("http", "[::1]:80")));
        assert_eq!(origin("/v2/"), None);
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert!(on_host("https://ghcr.io:443/v2/", "ghcr.io"));
        assert!(on_host("https://GHCR.io/v2/", "ghcr.io"));
        assert!(on_host("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"));
        assert!(!on_host("http://localhost:5000/v2/", "127.0.0.1:5000"));
        assert!(on_host("https://registry-1.docker.io/v2/", "docker.io"));
        assert!(!on_host("https://ghcr.io.evil.example/v2/", "ghcr.io"));
    }
}
