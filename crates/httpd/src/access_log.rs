//! The request span and the access log, as one tower layer for any router.
//!
//! [`AccessLogLayer`] wraps each request in a debug-level `request` span (`method`, `path`, and
//! `remote` when the request came through [`crate::Server`]), so whatever a handler logs carries
//! the request it belongs to, and after the response is built writes one access-log event:
//!
//! ```text
//! DEBUG berth_httpd::access_log: request method=GET path="/v2/" status=200 route="base" micros=41
//! ```
//!
//! `route` is the [`RouteLabel`] the handler put in the response's extensions (absent when it
//! put none); `micros` is the time from the request's arrival at the layer to its response
//! head. The event is written outside the span, so the line holds each field once.
//!
//! Both are debug-level: at info, formatting and writing a line per request costs a third of
//! a server's throughput, and a disabled span or event costs next to nothing. `--log-level
//! debug` (or a filter such as `berth_httpd=debug`) turns them on.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

/// A short, fixed name for the endpoint that answered (`"manifest"`, `"token"`), put in a
/// response's extensions by the handler for the access log's `route` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLabel(pub &'static str);

/// Adds the request span and the access log to every request of the service it wraps:
/// `Router::new().route(…).layer(AccessLogLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// The service [`AccessLogLayer`] makes.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AccessLog<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let method = req.method().clone();
        // Cheap: the path's bytes are shared with the request, not copied.
        let uri = req.uri().clone();
        let remote = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| tracing::field::display(c.0));
        let span = tracing::debug_span!("request", method = %method, path = uri.path(), remote);
        let response = self.inner.call(req).instrument(span);
        Box::pin(async move {
            let resp = response.await?;
            tracing::debug!(
                method = %method,
                path = uri.path(),
                status = resp.status().as_u16(),
                route = resp.extensions().get::<RouteLabel>().map(|r| r.0),
                micros = start.elapsed().as_micros() as u64,
                "request"
            );
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Everything the subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/labelled",
                get(|| async {
                    tracing::debug!("inside the handler");
                    let mut r = "ok".into_response();
                    r.extensions_mut().insert(RouteLabel("thing"));
                    r
                }),
            )
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no") })
            .layer(AccessLogLayer)
    }

    async fn call(app: Router, method: &str, path: &str) -> u16 {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap().status().as_u16()
    }

    fn subscriber(out: &Captured, level: tracing::Level) -> impl tracing::Subscriber {
        let out = out.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .without_time()
            .with_writer(move || out.clone())
            .finish()
    }

    #[tokio::test]
    async fn one_line_per_request_with_the_fields_of_the_access_log() {
        let out = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(&out, tracing::Level::DEBUG));
        assert_eq!(call(router(), "GET", "/labelled?x=1").await, 200);
        assert_eq!(call(router(), "DELETE", "/nowhere").await, 404);
        let text = out.text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" berth_httpd::access_log: "))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let fields = |l: &str| {
            let (_, rest) = l.split_once("request ").unwrap();
            let (head, micros) = rest.rsplit_once(" micros=").unwrap();
            assert!(micros.parse::<u64>().is_ok(), "{l}");
            head.to_owned()
        };
        assert!(
            lines[0].starts_with("DEBUG berth_httpd::access_log: "),
            "{text}"
        );
        assert_eq!(
            fields(lines[0]),
            "method=GET path=\"/labelled\" status=200 route=\"thing\""
        );
        // No label: no route field.
        assert_eq!(
            fields(lines[1]),
            "method=DELETE path=\"/nowhere\" status=404"
        );
        // What the handler logs carries the request span.
        let inside = text
            .lines()
            .find(|l| l.contains("inside the handler"))
            .unwrap();
        assert!(
            inside.contains("request{method=GET path=\"/labelled\"}"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn through_the_server_the_span_names_the_remote_address() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let out = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(&out, tracing::Level::DEBUG));
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = crate::Server::bind(crate::Config::new(listen))
            .await
            .unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(server.serve(router(), async {
            let _ = stopped.await;
        }));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = s.local_addr().unwrap();
        s.write_all(b"GET /labelled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
        stop.send(()).unwrap();
        done.await.unwrap().unwrap();
        let text = out.text();
        let want = format!("request{{method=GET path=\"/labelled\" remote={local}}}: ");
        assert!(
            text.lines()
                .any(|l| l.contains("inside the handler") && l.contains(&want)),
            "{text}"
        );
        assert!(
            text.contains(
                " berth_httpd::access_log: request method=GET path=\"/labelled\" status=200 route=\"thing\" micros="
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn nothing_is_logged_above_debug() {
        let out = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(&out, tracing::Level::INFO));
        assert_eq!(call(router(), "GET", "/labelled").await, 200);
        assert_eq!(out.text(), "");
    }
}
