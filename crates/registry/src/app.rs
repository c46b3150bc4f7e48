//! The application: the router and the request dispatcher over the shared state
//! ([`crate::state::App`]).
//!
//! One fallback handler parses the path ([`crate::routes`]), validates the repository name,
//! asks the [`Authorizer`] for the access the method needs, then calls the handler for the
//! resource. Every response passes through here, so the `Docker-Distribution-API-Version`
//! header and metrics are uniform; each response names its route ([`RouteLabel`]) for the
//! access log, which `berth-httpd`'s [`AccessLogLayer`] writes around every route.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use berth_httpd::{AccessLogLayer, RouteLabel};

use crate::auth::{Access, Action};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::handlers;
use crate::handlers::http::{content_length, json_response, method_not_allowed};
use crate::routes::{self, Route};
pub use crate::state::App;
use crate::storage::Driver;

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
        app.metrics.render_with(&app.driver().metrics()),
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
