//! The accept loop: TCP (optionally TLS) → hyper-util's auto builder (HTTP/1.1 and HTTP/2) →
//! an axum router, with graceful shutdown.
//!
//! - [`Server::bind`] loads the TLS certificate (when configured) and binds the listener;
//!   [`Server::serve`] runs until the shutdown future completes, then drains.
//! - Each connection runs in its own task; the TLS handshake happens there, bounded by
//!   [`Limits::tls_handshake_timeout`], so a slow client never blocks `accept`.
//! - HTTP/2 is negotiated by ALPN on TLS and by prior knowledge (h2c) on plain TCP; HTTP/1.1
//!   keep-alive is on, with a header read timeout ([`Limits::header_read_timeout`]).
//! - Plain HTTP sent to a TLS port is answered `400` in plain text (as Go's net/http does).
//! - Handlers can extract the peer address with `axum::extract::ConnectInfo<SocketAddr>`:
//!   it is inserted into every request's extensions.
//! - Accept errors (EMFILE, ENFILE, …) are logged and retried after a short back-off.
//! - On shutdown the listener is closed, in-flight requests finish (HTTP/1 connections close
//!   after their current response, HTTP/2 connections get GOAWAY), and after the drain
//!   timeout any remaining connection is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
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

use crate::tls::{self, TlsError};

/// How long in-flight requests may run after shutdown begins, by default.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to complete the TLS handshake, by default.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1 client may take to send request headers, by default.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How many requests one HTTP/2 connection may have in flight, by default.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 256;
/// Pause after an accept error that is not about a single connection (e.g. EMFILE).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What to serve on, and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (port 0: any free port; see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// Serve TLS with this certificate and key; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Timeouts and sizes that bound what one client can hold.
    pub limits: Limits,
    /// How long in-flight requests may run after shutdown begins.
    pub drain_timeout: Duration,
}

impl Config {
    /// Plain HTTP on `listen` with the default limits and drain timeout.
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            tls: None,
            limits: Limits::default(),
            drain_timeout: DRAIN_TIMEOUT,
        }
    }
}

/// The PEM files of a TLS server (see [`crate::tls::load_server_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// Read both files again when either changes, so a renewed certificate is served without
    /// a restart ([`crate::tls::reloading_server_config`]); `false`: read once, at bind.
    pub reload: bool,
}

/// Timeouts and sizes that bound what one client can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send its first byte and complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// How long an HTTP/1 client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How many requests one HTTP/2 connection may have in flight.
    pub h2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            h2_max_concurrent_streams: H2_MAX_CONCURRENT_STREAMS,
        }
    }
}

/// What failed while setting up a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("failed to listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound listener, ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    drain_timeout: Duration,
}

impl Server {
    /// Load the TLS certificate and key (when configured), then bind `config.listen`.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let tls = match &config.tls {
            Some(f) if f.reload => Some(tls::reloading_server_config(&f.cert, &f.key)?),
            Some(f) => Some(tls::load_server_config(&f.cert, &f.key)?),
            None => None,
        };
        let addr = config.listen;
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        Ok(Server {
            listener,
            local,
            tls,
            limits: config.limits,
            drain_timeout: config.drain_timeout,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serve `app` until `shutdown` completes, then drain for up to the drain timeout. With
    /// TLS, connections are TLS (ALPN h2, http/1.1).
    pub async fn serve(
        self,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Server {
            listener,
            local,
            tls,
            limits,
            drain_timeout,
        } = self;
        let acceptor = tls.map(TlsAcceptor::from);
        let builder = Arc::new(http_builder(&limits));
        let graceful = GracefulShutdown::new();
        // `stop` aborts TLS handshakes when shutdown begins; dropping `kill` (when this
        // function returns) drops every connection still open after the drain.
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
                handshake_timeout: limits.tls_handshake_timeout,
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
        if tokio::time::timeout(drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_secs = drain_timeout.as_secs_f64(),
                "drain timed out; closing remaining connections"
            );
        }
        drop(kill_tx);
        Ok(())
    }
}

fn http_builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout);
    b.http2()
        .timer(TokioTimer::new())
        .adaptive_window(true)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
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
    handshake_timeout: Duration,
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
        let peek = tokio::time::timeout(self.handshake_timeout, stream.peek(&mut first));
        let peeked = tokio::select! {
            _ = self.stop.changed() => return,
            r = peek => r,
        };
        match peeked {
            Ok(Ok(1..)) if first[0] != TLS_HANDSHAKE_RECORD => {
                tracing::debug!(remote = %self.service.remote, "plain HTTP on the TLS port");
                return refuse_plain_http(stream, self.handshake_timeout).await;
            }
            Ok(Ok(1..)) => {}
            // closed, failed or silent before sending anything
            _ => return,
        }
        let handshake = tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream));
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
pub const PLAIN_HTTP_ON_TLS: &str =
    "Client sent an HTTP request to an HTTPS server: this server speaks HTTPS only; use https://\n";

/// Answer `400` in plain HTTP and close. The rest of the request is read (bounded in size
/// and time) after answering, so closing does not reset the connection before the client
/// has read the answer.
async fn refuse_plain_http(mut stream: TcpStream, timeout: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{PLAIN_HTTP_ON_TLS}",
        PLAIN_HTTP_ON_TLS.len()
    );
    let answered = tokio::time::timeout(timeout, async {
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
mod tests;
