//! The accept loop: TCP (optionally TLS) → hyper-util's auto builder (HTTP/1.1 and HTTP/2) →
//! the axum router, with graceful shutdown.
//!
//! - Each connection runs in its own task; the TLS handshake happens there, bounded by
//!   [`TLS_HANDSHAKE_TIMEOUT`], so a slow client never blocks `accept`.
//! - HTTP/2 is negotiated by ALPN on TLS and by prior knowledge (h2c) on plain TCP; HTTP/1.1
//!   keep-alive is on, with a header read timeout.
//! - Handlers can extract the peer address with `axum::extract::ConnectInfo<SocketAddr>`:
//!   it is inserted into every request's extensions.
//! - Accept errors (EMFILE, ENFILE, …) are logged and retried after a short back-off.
//! - On shutdown the listener is closed, in-flight requests finish (HTTP/1 connections close
//!   after their current response, HTTP/2 connections get GOAWAY), and after the drain
//!   timeout any remaining connection is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests may run after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1 client may take to send request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after an accept error that is not about a single connection (e.g. EMFILE).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve `app` on `listener` until `shutdown` completes, then drain for up to
/// [`DRAIN_TIMEOUT`]. With `tls`, connections are TLS (ALPN h2, http/1.1).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_drain(listener, app, tls, shutdown, DRAIN_TIMEOUT).await
}

/// [`serve`] with an explicit drain timeout.
pub async fn serve_with_drain(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let acceptor = tls.map(TlsAcceptor::from);
    let builder = Arc::new(http_builder());
    let graceful = GracefulShutdown::new();
    // `stop` aborts TLS handshakes when shutdown begins; dropping `kill` (when this function
    // returns) drops every connection still open after the drain.
    let (stop_tx, stop_rx) = watch::channel(());
    let (kill_tx, kill_rx) = watch::channel(());
    tracing::debug!(addr = %local, tls = acceptor.is_some(), "accept loop started");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(conn) => conn,
            Err(e) if is_per_connection(&e) => {
                tracing::debug!(error = %e, "connection failed during accept");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "failed to accept connection; retrying shortly");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let conn = Conn {
            builder: Arc::clone(&builder),
            service: ConnService {
                router: app.clone(),
                remote,
            },
            watcher: graceful.watcher(),
            stop: stop_rx.clone(),
            kill: kill_rx.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(conn.run(stream, acceptor));
    }
    drop(listener);
    let _ = stop_tx.send(());
    tracing::info!(
        connections = graceful.count(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_secs = drain.as_secs_f64(),
            "drain timed out; closing remaining connections"
        );
    }
    drop(kill_tx);
    Ok(())
}

fn http_builder() -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .timer(TokioTimer::new())
        .adaptive_window(true)
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(60))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Errors about one connection (the peer gave up before we accepted it): retry at once.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Everything one connection task needs.
struct Conn {
    builder: Arc<Builder<TokioExecutor>>,
    service: ConnService,
    watcher: Watcher,
    stop: watch::Receiver<()>,
    kill: watch::Receiver<()>,
}

impl Conn {
    async fn run(mut self, stream: TcpStream, acceptor: Option<TlsAcceptor>) {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "failed to set TCP_NODELAY");
        }
        let Some(acceptor) = acceptor else {
            return self.http(stream).await;
        };
        // Every TLS connection opens with a handshake record (content type 0x16). Anything
        // else is most likely plain HTTP sent to this port: answer it in plain text, as Go's
        // net/http does, instead of dropping a connection the client cannot make sense of.
        let mut first = [0u8; 1];
        let peek = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, stream.peek(&mut first));
        let peeked = tokio::select! {
            _ = self.stop.changed() => return,
            r = peek => r,
        };
        match peeked {
            Ok(Ok(1..)) if first[0] != TLS_HANDSHAKE_RECORD => {
                tracing::debug!(remote = %self.service.remote, "plain HTTP on the TLS port");
                return refuse_plain_http(stream).await;
            }
            Ok(Ok(1..)) => {}
            // closed, failed or silent before sending anything
            _ => return,
        }
        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
        let tls = tokio::select! {
            _ = self.stop.changed() => return,
            r = handshake => r,
        };
        match tls {
            Ok(Ok(tls)) => self.http(tls).await,
            Ok(Err(e)) => {
                tracing::debug!(remote = %self.service.remote, error = %e, "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(remote = %self.service.remote, "TLS handshake timed out");
            }
        }
    }

    async fn http<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            builder,
            service,
            watcher,
            mut kill,
            ..
        } = self;
        let remote = service.remote;
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::select! {
            r = watcher.watch(conn) => {
                if let Err(e) = r {
                    tracing::debug!(remote = %remote, error = %e, "connection ended with an error");
                }
            }
            _ = kill.changed() => {}
        }
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain-HTTP client on the TLS port is told (Go's net/http sends the first sentence).
const PLAIN_HTTP_ON_TLS: &str =
    "Client sent an HTTP request to an HTTPS server: this server speaks HTTPS only; use https://\n";

/// Answer `400` in plain HTTP and close. The rest of the request is read (bounded in size
/// and time) after answering, so closing does not reset the connection before the client
/// has read the answer.
async fn refuse_plain_http(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{PLAIN_HTTP_ON_TLS}",
        PLAIN_HTTP_ON_TLS.len()
    );
    let answered = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, async {
        stream.write_all(resp.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(answered, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(PLAIN_HTTP_LINGER, async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// How long a refused plain-HTTP connection is kept open for the client to read the answer.
const PLAIN_HTTP_LINGER: Duration = Duration::from_secs(2);

/// The per-connection hyper service: adds `ConnectInfo` and calls the router.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        tower::Service::call(&mut self.router.clone(), req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{Notify, oneshot};
    use tokio::task::JoinHandle;
    use tokio_rustls::TlsConnector;

    /// Upper bound for anything a test waits on.
    const LIMIT: Duration = Duration::from_secs(10);

    struct Server {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        done: JoinHandle<std::io::Result<()>>,
        started: Arc<Notify>,
        release: Arc<Notify>,
    }

    fn app(started: Arc<Notify>, release: Arc<Notify>) -> Router {
        Router::new()
            .route("/fast", get(|| async { "fast" }))
            .route(
                "/addr",
                get(|ConnectInfo(a): ConnectInfo<SocketAddr>| async move { a.to_string() }),
            )
            .route(
                "/slow",
                get(move || async move {
                    started.notify_one();
                    release.notified().await;
                    "slow done"
                }),
            )
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, drain: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let started = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let app = app(Arc::clone(&started), Arc::clone(&release));
        let shutdown = async move {
            let _ = rx.await;
        };
        let done = tokio::spawn(serve_with_drain(listener, app, tls, shutdown, drain));
        Server {
            addr,
            stop,
            done,
            started,
            release,
        }
    }

    /// A server config from a fresh self-signed certificate, and the certificate path.
    fn tls_server(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, std::path::PathBuf) {
        let (cert, key) = crate::tls::testcert::generate(dir, "srv");
        (crate::tls::load_server_config(&cert, &key).unwrap(), cert)
    }

    /// A client trusting `cert` and offering `alpn`.
    fn connector(cert: &std::path::Path, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(client))
    }

    async fn tls_connect(
        c: &TlsConnector,
        addr: SocketAddr,
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        c.connect(name, tcp).await.unwrap()
    }

    async fn send<S: AsyncWrite + Unpin>(s: &mut S, path: &str, close: bool) {
        let conn = if close { "Connection: close\r\n" } else { "" };
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{conn}\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        s.flush().await.unwrap();
    }

    /// Read one HTTP/1.1 response with a `content-length` body: (status, headers, body).
    async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> (u16, String, String) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let status = head[9..12].parse().unwrap();
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    return (status, head, body);
                }
            }
            let n = s.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "connection closed mid-response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the peer closed the connection (EOF or reset) without sending more.
    async fn closed<S: AsyncRead + Unpin>(s: &mut S) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(LIMIT, s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// Wait (bounded) until the listener is gone.
    async fn until_refused(addr: SocketAddr) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while TcpStream::connect(addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "listener still open"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn plain_http1_connect_info_and_h2c() {
        tokio::time::timeout(LIMIT, async {
            let srv = start(None, DRAIN_TIMEOUT).await;
            let mut s = TcpStream::connect(srv.addr).await.unwrap();
            let local = s.local_addr().unwrap();
            send(&mut s, "/addr", false).await;
            let (status, _, body) = read_response(&mut s).await;
            assert_eq!((status, body), (200, local.to_string()));
            // Keep-alive: a second request on the same connection.
            send(&mut s, "/fast", true).await;
            let (status, _, body) = read_response(&mut s).await;
            assert_eq!((status, body.as_str()), (200, "fast"));

            // h2c with prior knowledge: the server answers the preface with SETTINGS.
            let mut h2 = TcpStream::connect(srv.addr).await.unwrap();
            h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                .await
                .unwrap();
            let mut frame = [0u8; 9];
            h2.read_exact(&mut frame).await.unwrap();
            assert_eq!(frame[3], 0x4, "expected a SETTINGS frame, got {frame:?}");
            // (An HTTP/2 client that never answers the shutdown PING would hold the drain
            // until DRAIN_TIMEOUT; this one hangs up.)
            drop(h2);

            srv.stop.send(()).unwrap();
            srv.done.await.unwrap().unwrap();
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn tls_http1_alpn_h2_and_stalled_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let (server_cfg, cert) = tls_server(dir.path());
        let h1 = connector(&cert, &[b"http/1.1"]);
        let h2 = connector(&cert, &[b"h2", b"http/1.1"]);
        tokio::time::timeout(LIMIT, async {
            let srv = start(Some(server_cfg), DRAIN_TIMEOUT).await;
            // A client that connects and never says hello must not block others.
            let mut stalled = TcpStream::connect(srv.addr).await.unwrap();
            let mut s = tls_connect(&h1, srv.addr).await;
            assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            send(&mut s, "/fast", true).await;
            let (status, _, body) = read_response(&mut s).await;
            assert_eq!((status, body.as_str()), (200, "fast"));
            let s2 = tls_connect(&h2, srv.addr).await;
            assert_eq!(s2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            drop(s2);

            srv.stop.send(()).unwrap();
            srv.done.await.unwrap().unwrap();
            // The pending handshake was abandoned at shutdown.
            assert!(closed(&mut stalled).await);
        })
        .await
        .unwrap();
    }

    async fn graceful_case(tls: Option<(Arc<rustls::ServerConfig>, TlsConnector)>) {
        let (server_cfg, connector) = match tls {
            Some((s, c)) => (Some(s), Some(c)),
            None => (None, None),
        };
        let srv = start(server_cfg, DRAIN_TIMEOUT).await;
        let mut conn: Box<dyn AsyncReadWrite> = match &connector {
            Some(c) => Box::new(tls_connect(c, srv.addr).await),
            None => Box::new(TcpStream::connect(srv.addr).await.unwrap()),
        };
        send(&mut conn, "/slow", false).await;
        srv.started.notified().await;
        srv.stop.send(()).unwrap();
        // New connections are refused while the in-flight request is still running.
        until_refused(srv.addr).await;
        assert!(!srv.done.is_finished());
        srv.release.notify_one();
        let (status, head, body) = read_response(&mut conn).await;
        assert_eq!((status, body.as_str()), (200, "slow done"));
        assert!(head.contains("connection: close"), "{head}");
        srv.done.await.unwrap().unwrap();
        assert!(closed(&mut conn).await);
    }

    trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

    #[tokio::test]
    async fn graceful_shutdown_lets_in_flight_request_finish_plain() {
        tokio::time::timeout(LIMIT, graceful_case(None))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn graceful_shutdown_lets_in_flight_request_finish_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (server_cfg, cert) = tls_server(dir.path());
        let tls = (server_cfg, connector(&cert, &[b"http/1.1"]));
        tokio::time::timeout(LIMIT, graceful_case(Some(tls)))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn drain_timeout_caps_shutdown() {
        tokio::time::timeout(LIMIT, async {
            let srv = start(None, Duration::from_millis(200)).await;
            let mut s = TcpStream::connect(srv.addr).await.unwrap();
            send(&mut s, "/slow", false).await;
            srv.started.notified().await;
            srv.stop.send(()).unwrap();
            // Never released: serve returns after the drain timeout and drops the connection.
            srv.done.await.unwrap().unwrap();
            assert!(closed(&mut s).await);
        })
        .await
        .unwrap();
    }
}
