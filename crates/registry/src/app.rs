//! The application: shared state, the request dispatcher, and helpers every handler uses.
//!
//! One fallback handler parses the path ([`crate::routes`]), validates the repository name,
//! asks the [`Authorizer`] for the access the method needs, then calls the handler for the
//! resource. Every response passes through here, so the `Docker-Distribution-API-Version`
//! header and metrics are uniform; each response names its route ([`RouteLabel`]) for the
//! access log, which `berth-httpd`'s [`AccessLogLayer`] writes around every route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use berth_httpd::{AccessLogLayer, RouteLabel};
use berth_oci::Digester;

use crate::auth::{Access, Action, Authorizer, Decision};
use crate::config::Config;
use crate::error::{ErrorKind, RegistryError, Result};
use crate::handlers;
use crate::metrics::Metrics;
use crate::routes::{self, Route};
use crate::storage::Driver;

/// Hashing progress of an upload session kept between requests: an optimisation only. When
/// it is missing (another replica, a restart) the upload is re-hashed from storage.
#[derive(Debug)]
pub(crate) struct PartialHash {
    pub offset: u64,
    pub digester: Digester,
}

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct App<D: Driver> {
    pub(crate) driver: D,
    pub(crate) config: Config,
    pub(crate) auth: Authorizer,
    pub(crate) metrics: Metrics,
    pub(crate) hashes: Mutex<HashMap<String, PartialHash>>,
    pub(crate) tls: bool,
}

impl<D: Driver> App<D> {
    pub fn new(driver: D, config: Config, auth: Authorizer, tls: bool) -> App<D> {
        App {
            driver,
            config,
            auth,
            metrics: Metrics::new(),
            hashes: Mutex::new(HashMap::new()),
            tls,
        }
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    pub fn auth_enabled(&self) -> bool {
        self.auth.enabled()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `scheme://host[:port]` as the client addressed us, for challenge realms.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| self.config.server.listen.to_string());
        format!("{scheme}://{host}")
    }

    /// Ask the authorizer; turn a refusal into the spec's 401/403.
    pub(crate) fn authorize(&self, headers: &HeaderMap, access: &Access) -> Result<()> {
        if !self.auth.enabled() {
            return Ok(());
        }
        match self
            .auth
            .authorize(headers, &self.base_url(headers), access)
        {
            Decision::Allow(_) => Ok(()),
            Decision::Challenge {
                www_authenticate,
                message,
            } => Err(RegistryError::new(ErrorKind::Unauthorized, message)
                .header(header::WWW_AUTHENTICATE, &www_authenticate)),
            Decision::Deny { message } => Err(RegistryError::new(ErrorKind::Denied, message)),
        }
    }

    /// Refuse a write with 503 UNAVAILABLE and `Retry-After` when the storage has less free
    /// space than `storage.min_free_bytes`, so no client fills the disk and the registry
    /// keeps room for manifests, links and its own state.
    pub(crate) fn check_free_space(&self) -> Result<()> {
        self.check_free_space_while_writing(None, 0)
    }

    /// [`App::check_free_space`] for a request that has sent `written` bytes to storage
    /// since `baseline` was measured: writes are queued, so the space they will take is
    /// counted from the baseline rather than from what the filesystem reports so far.
    pub(crate) fn check_free_space_while_writing(
        &self,
        baseline: Option<u64>,
        written: u64,
    ) -> Result<()> {
        let reserve = self.config.storage.min_free_bytes;
        if reserve == 0 {
            return Ok(());
        }
        let now = self.driver.available_bytes();
        let projected = baseline.map(|b| b.saturating_sub(written));
        let free = match (now, projected) {
            (Some(n), Some(p)) => Some(n.min(p)),
            (n, p) => n.or(p),
        };
        match free {
            Some(free) if free < reserve => Err(RegistryError::storage_full(format!(
                "the registry's storage has {free} bytes free, less than its reserve of {reserve} bytes (storage.min_free_bytes); writes are refused until space is freed, retry later"
            ))
            .detail(serde_json::json!({ "available": free, "reserve": reserve }))),
            _ => Ok(()),
        }
    }

    /// Whether the caller may pull from `name` (used for cross-repository mounts).
    pub(crate) fn may_pull(&self, headers: &HeaderMap, name: &str) -> bool {
        self.authorize(
            headers,
            &Access::Repository {
                name: name.to_owned(),
                actions: vec![Action::Pull],
            },
        )
        .is_ok()
    }
}

/// Build the router over an app. `/metrics` is served here (behind authentication when it
/// is on) unless `server.metrics_listen` moves it to [`metrics_router`].
pub fn router<D: Driver>(app: Arc<App<D>>) -> Router {
    let mut r = Router::new().route("/token", axum::routing::get(token::<D>).post(token::<D>));
    if app.config.server.metrics_listen.is_none() {
        r = r.route("/metrics", axum::routing::get(metrics::<D>));
    }
    r.fallback(dispatch::<D>)
        .with_state(app)
        .layer(AccessLogLayer)
}

/// The router of the separate `server.metrics_listen` listener (loopback only, enforced by
/// [`Config::validate`]): `/metrics` without authentication, nothing else.
pub fn metrics_router<D: Driver>(app: Arc<App<D>>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(render_metrics::<D>))
        .with_state(app)
        .layer(AccessLogLayer)
}

async fn render_metrics<D: Driver>(State(app): State<Arc<App<D>>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        Extension(RouteLabel("metrics")),
        app.metrics.render(),
    )
        .into_response()
}

async fn token<D: Driver>(State(app): State<Arc<App<D>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let base = app.base_url(&parts.headers);
    let body = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            let e = RegistryError::new(ErrorKind::SizeInvalid, "token request body too large");
            return (Extension(RouteLabel("token")), e).into_response();
        }
    };
    let query = parts.uri.query().unwrap_or("");
    let mut resp = app
        .auth
        .token(parts.method.clone(), &parts.headers, query, body, &base)
        .await;
    resp.extensions_mut().insert(RouteLabel("token"));
    app.metrics
        .record_request("token", parts.method.as_str(), resp.status().as_u16(), 0);
    resp
}

/// `/metrics` reveals repository activity (routes, volumes, timings): when authentication
/// is on it needs the same as `GET /v2/` — any valid identity.
async fn metrics<D: Driver>(state: State<Arc<App<D>>>, headers: HeaderMap) -> Response {
    if let Err(e) = state.0.authorize(&headers, &Access::Base) {
        let resp = (Extension(RouteLabel("metrics")), e).into_response();
        state
            .0
            .metrics
            .record_request("metrics", "GET", resp.status().as_u16(), 0);
        return resp;
    }
    render_metrics(state).await
}

async fn dispatch<D: Driver>(State(app): State<Arc<App<D>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let route = routes::parse(parts.uri.path());
    let label = route.label();
    let mut resp = match handle(&app, route, &parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    let status = resp.status().as_u16();
    let bytes_out = if parts.method == Method::HEAD {
        0
    } else {
        content_length(resp.headers()).unwrap_or(0)
    };
    app.metrics
        .record_request(label, parts.method.as_str(), status, bytes_out);
    resp.extensions_mut().insert(RouteLabel(label));
    resp
}

async fn handle<D: Driver>(
    app: &App<D>,
    route: Route<'_>,
    parts: &Parts,
    body: Body,
) -> Result<Response> {
    let method = &parts.method;
    let headers = &parts.headers;
    let query = parts.uri.query().unwrap_or("");
    match route {
        Route::Unknown => Err(RegistryError::of(ErrorKind::RouteUnknown)),
        Route::Base => {
            app.authorize(headers, &Access::Base)?;
            match *method {
                Method::GET | Method::HEAD => Ok(json_response(StatusCode::OK, "{}".into())),
                _ => Err(method_not_allowed(method)),
            }
        }
        Route::Catalog => {
            app.authorize(headers, &Access::Catalog)?;
            match *method {
                Method::GET => handlers::catalog::list(app, query).await,
                _ => Err(method_not_allowed(method)),
            }
        }
        _ => {
            let name = route.name().unwrap_or_default();
            if let Err(e) = berth_oci::validate_repository_name(name) {
                return Err(RegistryError::new(ErrorKind::NameInvalid, e.to_string())
                    .detail(serde_json::json!({ "name": name })));
            }
            let actions = match (&route, method) {
                (Route::Upload { .. } | Route::UploadStart { .. }, _) => {
                    vec![Action::Pull, Action::Push]
                }
                (_, &Method::GET | &Method::HEAD) => vec![Action::Pull],
                (_, &Method::DELETE) => vec![Action::Delete],
                _ => vec![Action::Pull, Action::Push],
            };
            app.authorize(
                headers,
                &Access::Repository {
                    name: name.to_owned(),
                    actions,
                },
            )?;
            let head = *method == Method::HEAD;
            match (route, method) {
                (Route::Tags { name }, &Method::GET) => {
                    handlers::tags::list(app, name, query).await
                }
                (Route::Manifest { name, reference }, &Method::GET | &Method::HEAD) => {
                    handlers::manifests::get(app, name, reference, head).await
                }
                (Route::Manifest { name, reference }, &Method::PUT) => {
                    handlers::manifests::put(app, name, reference, query, headers, body).await
                }
                (Route::Manifest { name, reference }, &Method::DELETE) => {
                    handlers::manifests::delete(app, name, reference).await
                }
                (Route::Blob { name, digest }, &Method::GET | &Method::HEAD) => {
                    handlers::blobs::get(app, name, digest, headers, head).await
                }
                (Route::Blob { name, digest }, &Method::DELETE) => {
                    handlers::blobs::delete(app, name, digest).await
                }
                (Route::UploadStart { name }, &Method::POST) => {
                    handlers::uploads::start(app, name, query, headers, body).await
                }
                (Route::Upload { name, session }, &Method::GET) => {
                    handlers::uploads::status(app, name, session).await
                }
                (Route::Upload { name, session }, &Method::PATCH) => {
                    handlers::uploads::patch(app, name, session, headers, body).await
                }
                (Route::Upload { name, session }, &Method::PUT) => {
                    handlers::uploads::finish(app, name, session, query, headers, body).await
                }
                (Route::Upload { name, session }, &Method::DELETE) => {
                    handlers::uploads::cancel(app, name, session).await
                }
                (Route::Referrers { name, digest }, &Method::GET) => {
                    handlers::referrers::list(app, name, digest, query).await
                }
                _ => Err(method_not_allowed(method)),
            }
        }
    }
}

pub(crate) fn method_not_allowed(method: &Method) -> RegistryError {
    RegistryError::new(
        ErrorKind::Unsupported,
        format!("method {method} is not allowed on this endpoint"),
    )
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let len = body.len();
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// A response with no body and the given headers.
pub(crate) fn empty(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    let h = r.headers_mut();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.append(*k, v);
        }
    }
    if !h.contains_key(header::CONTENT_LENGTH) {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    r
}

/// Query parameters, percent-decoded, in order (keys may repeat: `?tag=a&tag=b`).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(crate) fn query_get(query: &str, key: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_pairs("digest=sha256%3Aab&tag=a&tag=b&x"),
            vec![
                ("digest".into(), "sha256:ab".into()),
                ("tag".into(), "a".into()),
                ("tag".into(), "b".into()),
                ("x".into(), "".into()),
            ]
        );
        assert_eq!(query_get("a=%zz&b=%4", "a").as_deref(), Some("%zz"));
        assert_eq!(query_get("b=%4", "b").as_deref(), Some("%4"));
    }
}
