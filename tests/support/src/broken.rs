//! [`BrokenRegistry`]: an HTTP proxy on `127.0.0.1:0` in front of a real registry that
//! breaks exactly one thing, chosen at start ([`Break`]), so that a test can prove a
//! conformance check able to fail.
//!
//! Requests and responses stream through untouched (blobs of any size) except where the
//! break applies; a break applies only to the requests its [`Matcher`] selects (method,
//! endpoint, tag or digest reference, path and query substrings, and optionally only after
//! a trigger request has passed, e.g. once a conformance run's setup is done).
//!
//! The proxy runs on its own thread with its own single-threaded tokio runtime, so tests
//! stay synchronous; dropping the guard stops it (connections included) and joins the thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Which part of the distribution API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Any request.
    Any,
    /// `/v2/`.
    Base,
    /// `/v2/<name>/manifests/<reference>`.
    Manifests,
    /// `/v2/<name>/blobs/<digest>`.
    Blobs,
    /// `/v2/<name>/blobs/uploads/…`.
    Uploads,
    /// `/v2/<name>/tags/list`.
    Tags,
    /// `/v2/<name>/referrers/<digest>`.
    Referrers,
}

impl Endpoint {
    /// The endpoint of a request path, and the reference after `manifests/` if any.
    fn of(path: &str) -> (Endpoint, Option<&str>) {
        if path == "/v2/" || path == "/v2" {
            return (Endpoint::Base, None);
        }
        if let Some(i) = path.rfind("/manifests/") {
            return (Endpoint::Manifests, Some(&path[i + "/manifests/".len()..]));
        }
        if path.contains("/blobs/uploads") {
            return (Endpoint::Uploads, None);
        }
        if path.contains("/blobs/") {
            return (Endpoint::Blobs, None);
        }
        if path.ends_with("/tags/list") {
            return (Endpoint::Tags, None);
        }
        if path.contains("/referrers/") {
            return (Endpoint::Referrers, None);
        }
        (Endpoint::Any, None)
    }
}

/// Whether a manifest reference is a tag or a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Tag,
    Digest,
}

/// Which requests a break applies to. Parse one from `"METHOD endpoint"`:
/// `"GET manifests"`, `"PUT blobs/uploads"`, `"PATCH blobs/uploads"`, `"HEAD blobs"`,
/// `"GET tags/list"`, `"GET referrers"`, `"GET /v2/"`, `"* manifests"` (any method), `"*"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    method: Option<Method>,
    endpoint: Endpoint,
    reference: Option<RefKind>,
    path_contains: Option<String>,
    query_contains: Option<String>,
    query_lacks: Option<String>,
    after: Option<Box<Matcher>>,
    limit: Option<u64>,
}

impl Matcher {
    /// `"METHOD endpoint"`; panics on anything else (a test's typo).
    pub fn new(spec: &str) -> Matcher {
        let mut parts = spec.split_whitespace();
        let method = match parts.next() {
            None | Some("*") => None,
            Some(m) => Some(
                Method::from_bytes(m.as_bytes())
                    .unwrap_or_else(|e| panic!("bad method in matcher {spec:?}: {e}")),
            ),
        };
        let endpoint = match parts.next() {
            None | Some("*") => Endpoint::Any,
            Some("/v2/") => Endpoint::Base,
            Some("manifests") => Endpoint::Manifests,
            Some("blobs") => Endpoint::Blobs,
            Some("blobs/uploads") => Endpoint::Uploads,
            Some("tags/list") => Endpoint::Tags,
            Some("referrers") => Endpoint::Referrers,
            Some(other) => panic!("unknown endpoint {other:?} in matcher {spec:?}"),
        };
        assert!(parts.next().is_none(), "trailing words in matcher {spec:?}");
        Matcher {
            method,
            endpoint,
            reference: None,
            path_contains: None,
            query_contains: None,
            query_lacks: None,
            after: None,
            limit: None,
        }
    }

    /// Only manifests referenced by tag (or by digest).
    pub fn reference(mut self, kind: RefKind) -> Matcher {
        self.reference = Some(kind);
        self
    }

    /// Only requests whose path contains `s`.
    pub fn path_contains(mut self, s: &str) -> Matcher {
        self.path_contains = Some(s.to_owned());
        self
    }

    /// Only requests whose query contains `s` (e.g. `"mount="`, `"artifactType="`).
    pub fn query_contains(mut self, s: &str) -> Matcher {
        self.query_contains = Some(s.to_owned());
        self
    }

    /// Only requests whose query does not contain `s`.
    pub fn query_lacks(mut self, s: &str) -> Matcher {
        self.query_lacks = Some(s.to_owned());
        self
    }

    /// Only the first `n` matching requests (counted once armed).
    pub fn limit(mut self, n: u64) -> Matcher {
        self.limit = Some(n);
        self
    }

    /// Only once a request matching `trigger` has passed (the trigger itself is not
    /// matched by it).
    pub fn after(mut self, trigger: Matcher) -> Matcher {
        self.after = Some(Box::new(trigger));
        self
    }

    /// Only after a conformance run's setup: `berth conformance` pushes its test data
    /// first and starts its checks with `GET /v2/`, which no setup request is.
    pub fn after_setup(self) -> Matcher {
        self.after(Matcher::new("GET /v2/"))
    }

    /// Whether the request line matches, ignoring the trigger.
    fn matches_request(&self, method: &Method, path: &str, query: &str) -> bool {
        let (endpoint, reference) = Endpoint::of(path);
        self.method.as_ref().is_none_or(|m| m == method)
            && (self.endpoint == Endpoint::Any || self.endpoint == endpoint)
            && self.reference.is_none_or(|want| {
                let is_digest = reference.is_some_and(|r| r.contains(':'));
                want == if is_digest {
                    RefKind::Digest
                } else {
                    RefKind::Tag
                }
            })
            && self
                .path_contains
                .as_deref()
                .is_none_or(|s| path.contains(s))
            && self
                .query_contains
                .as_deref()
                .is_none_or(|s| query.contains(s))
            && self
                .query_lacks
                .as_deref()
                .is_none_or(|s| !query.contains(s))
    }
}

/// The one thing broken. Statuses and headers are changed on the responses of matching
/// requests only when the upstream's response has what the break replaces.
#[derive(Debug, Clone)]
pub enum Break {
    /// Nothing: a transparent proxy (the baseline every break is compared with).
    None,
    /// A `from` status becomes `to` (e.g. a 404 becomes a 403); the body is kept.
    Status {
        matcher: Matcher,
        from: u16,
        to: u16,
    },
    /// The response header is removed.
    DropHeader {
        matcher: Matcher,
        header: &'static str,
    },
    /// The response header is set to `value` (only where the response has it, unless `add`).
    SetHeader {
        matcher: Matcher,
        header: &'static str,
        value: String,
        add: bool,
    },
    /// `Docker-Content-Digest` is a different (well-formed) digest.
    WrongDigest { matcher: Matcher },
    /// One byte of a 200 or 206 body is flipped (the length is kept).
    CorruptBody { matcher: Matcher },
    /// The referrers API answers 404 (as a registry without it does).
    NoReferrers,
    /// `Range` request headers are removed: blobs come whole, with 200.
    IgnoreRange,
    /// A chunk the registry refuses with 416 is answered 202 (with the upload's Location).
    AcceptOutOfOrderChunk,
    /// A JSON body of a 2xx response is edited by `edit` (tags lists, referrers indexes).
    /// The matched bodies are read whole: point it at JSON endpoints, not at blobs.
    EditJson {
        matcher: Matcher,
        edit: fn(&mut serde_json::Value),
    },
    /// The error code `from` in an `{"errors":[…]}` body of a 4xx or 5xx response becomes
    /// `to`; the status is kept. Only those (small) error bodies are read whole.
    WrongErrorCode {
        matcher: Matcher,
        from: &'static str,
        to: &'static str,
    },
}

impl Break {
    fn matcher(&self) -> Option<&Matcher> {
        match self {
            Break::Status { matcher, .. }
            | Break::DropHeader { matcher, .. }
            | Break::SetHeader { matcher, .. }
            | Break::WrongDigest { matcher }
            | Break::CorruptBody { matcher }
            | Break::EditJson { matcher, .. }
            | Break::WrongErrorCode { matcher, .. } => Some(matcher),
            Break::None
            | Break::NoReferrers
            | Break::IgnoreRange
            | Break::AcceptOutOfOrderChunk => None,
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    brk: Break,
    client: Client<HttpConnector, Incoming>,
    /// Whether the matcher's `after` trigger has been seen.
    armed: AtomicBool,
    /// Requests matched so far (for the matcher's `limit`).
    matched: AtomicU64,
    /// Responses the break changed.
    hits: Arc<AtomicU64>,
}

/// A running proxy: `127.0.0.1:PORT` in front of `upstream`, breaking one thing. Dropping it
/// stops it and joins its thread.
#[derive(Debug)]
pub struct BrokenRegistry {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    hits: Arc<AtomicU64>,
}

impl BrokenRegistry {
    /// Start a proxy to the plain-HTTP registry at `upstream` that applies `brk`.
    pub fn start(upstream: SocketAddr, brk: Break) -> BrokenRegistry {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("failed to bind the broken registry's port on 127.0.0.1");
        let addr = listener.local_addr().expect("the listener's address");
        listener
            .set_nonblocking(true)
            .expect("set the listener non-blocking");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let hits = Arc::new(AtomicU64::new(0));
        let hits2 = Arc::clone(&hits);
        let thread = std::thread::Builder::new()
            .name(format!("broken-registry-{}", addr.port()))
            .spawn(move || serve(listener, upstream, brk, rx, hits2))
            .expect("failed to start the broken registry's thread");
        BrokenRegistry {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
            hits,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT` as text, the registry host in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// How many responses the break has changed (or requests it answered itself) so far:
    /// a break that never applied proves nothing.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for BrokenRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    brk: Break,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
    hits: Arc<AtomicU64>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the broken registry");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .expect("register the broken registry's listener with tokio");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let armed = brk.matcher().is_none_or(|m| m.after.is_none());
        let shared = Arc::new(Shared {
            upstream,
            brk,
            client,
            armed: AtomicBool::new(armed),
            matched: AtomicU64::new(0),
            hits,
        });
        loop {
            let stream = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, std::convert::Infallible>(handle(&shared, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    // Dropping the runtime cancels the connections still open.
}

/// How long the upstream may take to answer (its headers) before the proxy gives up.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Hop-by-hop headers, not forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn error_response(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn full(b: Bytes) -> ProxyBody {
    Full::new(b).map_err(|never| match never {}).boxed()
}

async fn handle(s: &Shared, req: Request<Incoming>) -> Response<ProxyBody> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());

    // Whether the break applies to this request.
    let applies = match s.brk.matcher() {
        Some(m) => {
            let armed = s.armed.load(Ordering::SeqCst);
            let hit = armed
                && m.matches_request(&method, &path, &query)
                && m.limit
                    .is_none_or(|n| s.matched.fetch_add(1, Ordering::SeqCst) < n);
            if !armed
                && let Some(trigger) = &m.after
                && trigger.matches_request(&method, &path, &query)
            {
                s.armed.store(true, Ordering::SeqCst);
            }
            hit
        }
        None => match &s.brk {
            Break::NoReferrers => {
                Endpoint::of(&path).0 == Endpoint::Referrers && method == Method::GET
            }
            Break::IgnoreRange => Endpoint::of(&path).0 == Endpoint::Blobs,
            Break::AcceptOutOfOrderChunk => {
                Endpoint::of(&path).0 == Endpoint::Uploads && method == Method::PATCH
            }
            _ => false,
        },
    };

    if applies && matches!(s.brk, Break::NoReferrers) {
        s.hits.fetch_add(1, Ordering::SeqCst);
        return error_response(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "the referrers API is not implemented (broken registry)",
        );
    }

    let (mut parts, body) = req.into_parts();
    let uri = format!("http://{}{path_and_query}", s.upstream);
    parts.uri = match uri.parse() {
        Ok(u) => u,
        Err(_) => {
            return error_response(StatusCode::BAD_REQUEST, "UNSUPPORTED", "bad request URI");
        }
    };
    for h in HOP_BY_HOP {
        parts.headers.remove(h);
    }
    if applies && matches!(s.brk, Break::IgnoreRange) && parts.headers.remove("range").is_some() {
        s.hits.fetch_add(1, Ordering::SeqCst);
    }
    let forwarded = tokio::time::timeout(
        UPSTREAM_TIMEOUT,
        s.client.request(Request::from_parts(parts, body)),
    )
    .await;
    let upstream = match forwarded {
        Ok(Ok(r)) => r,
        Err(_) => {
            return error_response(
                StatusCode::GATEWAY_TIMEOUT,
                "UNAVAILABLE",
                &format!(
                    "the broken registry's upstream did not answer within {UPSTREAM_TIMEOUT:?}"
                ),
            );
        }
        Ok(Err(e)) => {
            return error_response(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                &format!("the broken registry's upstream failed: {e}"),
            );
        }
    };
    let (mut parts, body) = upstream.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(h);
    }
    let mut body: ProxyBody = body.boxed();
    if applies {
        let changed = apply(&s.brk, &mut parts, &mut body, &path_and_query).await;
        if changed {
            s.hits.fetch_add(1, Ordering::SeqCst);
        }
    }
    Response::from_parts(parts, body)
}

/// Apply the break to a response; whether it changed anything.
async fn apply(
    brk: &Break,
    parts: &mut hyper::http::response::Parts,
    body: &mut ProxyBody,
    path_and_query: &str,
) -> bool {
    match brk {
        Break::None | Break::NoReferrers | Break::IgnoreRange => false,
        Break::Status { from, to, .. } => {
            if parts.status.as_u16() != *from {
                return false;
            }
            parts.status = StatusCode::from_u16(*to).expect("a valid status code in a Break");
            true
        }
        Break::AcceptOutOfOrderChunk => {
            if parts.status != StatusCode::RANGE_NOT_SATISFIABLE {
                return false;
            }
            parts.status = StatusCode::ACCEPTED;
            if let Ok(v) = HeaderValue::from_str(path_and_query) {
                parts.headers.insert(hyper::header::LOCATION, v);
            }
            true
        }
        Break::DropHeader { header, .. } => parts.headers.remove(*header).is_some(),
        Break::SetHeader {
            header, value, add, ..
        } => {
            if !add && !parts.headers.contains_key(*header) {
                return false;
            }
            let v = HeaderValue::from_str(value).expect("a valid header value in a Break");
            parts.headers.insert(HeaderName::from_static(header), v);
            true
        }
        Break::WrongDigest { .. } => {
            let Some(old) = parts.headers.get("docker-content-digest") else {
                return false;
            };
            let wrong = crate::sha256(old.as_bytes()).to_string();
            let v = HeaderValue::from_str(&wrong).expect("a digest is a valid header value");
            parts.headers.insert("docker-content-digest", v);
            true
        }
        Break::CorruptBody { .. } => {
            if !matches!(parts.status.as_u16(), 200 | 206) {
                return false;
            }
            let inner = std::mem::replace(body, full(Bytes::new()));
            let flipped = Arc::new(AtomicBool::new(false));
            let f2 = Arc::clone(&flipped);
            *body = inner
                .map_frame(move |frame| match frame.into_data() {
                    Ok(data) if !data.is_empty() && !f2.swap(true, Ordering::SeqCst) => {
                        let mut v = data.to_vec();
                        let mid = v.len() / 2;
                        v[mid] ^= 0x01;
                        Frame::data(Bytes::from(v))
                    }
                    Ok(data) => Frame::data(data),
                    Err(frame) => frame,
                })
                .boxed();
            // The body is flipped when it streams; count the intent (HEAD bodies are empty
            // and the matcher should not select them).
            true
        }
        Break::EditJson { edit, .. } => {
            if !parts.status.is_success() {
                return false;
            }
            let inner = std::mem::replace(body, full(Bytes::new()));
            let bytes = match inner.collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return false,
            };
            let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                *body = full(bytes);
                return false;
            };
            let before = v.clone();
            edit(&mut v);
            if v == before {
                *body = full(bytes);
                return false;
            }
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            *body = full(Bytes::from(v.to_string()));
            true
        }
        Break::WrongErrorCode { from, to, .. } => {
            if !(parts.status.is_client_error() || parts.status.is_server_error()) {
                return false;
            }
            let inner = std::mem::replace(body, full(Bytes::new()));
            let bytes = match inner.collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return false,
            };
            let mut changed = false;
            let new = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut v) => {
                    if let Some(errs) = v.get_mut("errors").and_then(|e| e.as_array_mut()) {
                        for e in errs {
                            if e.get("code").and_then(|c| c.as_str()) == Some(from) {
                                e["code"] = serde_json::json!(to);
                                changed = true;
                            }
                        }
                    }
                    if changed {
                        Bytes::from(v.to_string())
                    } else {
                        bytes
                    }
                }
                Err(_) => bytes,
            };
            if changed {
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
            }
            *body = full(new);
            changed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_matchers() {
        assert_eq!(Endpoint::of("/v2/").0, Endpoint::Base);
        assert_eq!(
            Endpoint::of("/v2/a/b/manifests/latest"),
            (Endpoint::Manifests, Some("latest"))
        );
        assert_eq!(Endpoint::of("/v2/a/blobs/uploads/").0, Endpoint::Uploads);
        assert_eq!(Endpoint::of("/v2/a/blobs/uploads/x").0, Endpoint::Uploads);
        assert_eq!(Endpoint::of("/v2/a/blobs/sha256:00").0, Endpoint::Blobs);
        assert_eq!(Endpoint::of("/v2/a/tags/list").0, Endpoint::Tags);
        assert_eq!(
            Endpoint::of("/v2/a/referrers/sha256:0").0,
            Endpoint::Referrers
        );
        let m = Matcher::new("GET manifests").reference(RefKind::Digest);
        assert!(m.matches_request(&Method::GET, "/v2/a/manifests/sha256:00", ""));
        assert!(!m.matches_request(&Method::GET, "/v2/a/manifests/latest", ""));
        assert!(!m.matches_request(&Method::HEAD, "/v2/a/manifests/sha256:00", ""));
        let m = Matcher::new("POST blobs/uploads").query_contains("mount=");
        assert!(m.matches_request(&Method::POST, "/v2/a/blobs/uploads/", "mount=x&from=b"));
        assert!(!m.matches_request(&Method::POST, "/v2/a/blobs/uploads/", ""));
        assert!(Matcher::new("*").matches_request(&Method::DELETE, "/anything", ""));
    }
}
