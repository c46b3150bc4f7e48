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

/// An HTTP/2 client's connection preface (prior knowledge) and its empty SETTINGS frame.
const H2C_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: JoinHandle<std::io::Result<()>>,
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl Running {
    /// Stop the server and wait (bounded by the caller) until it has drained.
    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        self.done.await.unwrap().unwrap();
    }
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

/// A config for 127.0.0.1:0.
fn config(tls: Option<TlsFiles>) -> Config {
    Config {
        tls,
        ..Config::new(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

async fn start(config: Config) -> Running {
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let (stop, rx) = oneshot::channel::<()>();
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let app = app(Arc::clone(&started), Arc::clone(&release));
    let shutdown = async move {
        let _ = rx.await;
    };
    let done = tokio::spawn(server.serve(app, shutdown));
    Running {
        addr,
        stop,
        done,
        started,
        release,
    }
}

/// The files of a fresh self-signed certificate (the certificate is also what clients trust).
fn tls_files(dir: &std::path::Path) -> TlsFiles {
    let (cert, key) = crate::tls::testcert::generate(dir, "srv");
    TlsFiles {
        cert,
        key,
        reload: false,
    }
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
    // Every connection a full handshake, so it shows the certificate served now (a resumed
    // session reports the one it was first made with).
    client.resumption = rustls::client::Resumption::disabled();
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
        let srv = start(config(None)).await;
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
        h2.write_all(H2C_PREFACE).await.unwrap();
        let mut frame = [0u8; 9];
        h2.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame[3], 0x4, "expected a SETTINGS frame, got {frame:?}");
        // (An HTTP/2 client that never answers the shutdown PING would hold the drain
        // until DRAIN_TIMEOUT; this one hangs up.)
        drop(h2);

        srv.shut_down().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tls_http1_alpn_h2_and_stalled_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let files = tls_files(dir.path());
    let h1 = connector(&files.cert, &[b"http/1.1"]);
    let h2 = connector(&files.cert, &[b"h2", b"http/1.1"]);
    tokio::time::timeout(LIMIT, async {
        let srv = start(config(Some(files))).await;
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

        srv.shut_down().await;
        // The pending handshake was abandoned at shutdown.
        assert!(closed(&mut stalled).await);
    })
    .await
    .unwrap();
}

async fn graceful_case(tls: Option<(TlsFiles, TlsConnector)>) {
    let (files, connector) = match tls {
        Some((s, c)) => (Some(s), Some(c)),
        None => (None, None),
    };
    let srv = start(config(files)).await;
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
    let files = tls_files(dir.path());
    let client = connector(&files.cert, &[b"http/1.1"]);
    let tls = (files, client);
    tokio::time::timeout(LIMIT, graceful_case(Some(tls)))
        .await
        .unwrap();
}

#[tokio::test]
async fn drain_timeout_caps_shutdown() {
    tokio::time::timeout(LIMIT, async {
        let srv = start(Config {
            drain_timeout: Duration::from_millis(200),
            ..config(None)
        })
        .await;
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

/// Whether the peer closes the connection (EOF or reset) within `within`, whatever it sends
/// before.
async fn closes_within<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(within, async {
        while let Ok(1..) = s.read(&mut sink).await {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_answered_400_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    tokio::time::timeout(LIMIT, async {
        let srv = start(config(Some(tls_files(dir.path())))).await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        send(&mut s, "/fast", false).await;
        let (status, head, body) = read_response(&mut s).await;
        assert_eq!((status, body.as_str()), (400, PLAIN_HTTP_ON_TLS));
        assert!(head.contains("connection: close"), "{head}");
        assert!(closed(&mut s).await);
        srv.shut_down().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn header_read_timeout_closes_a_client_that_never_finishes_its_headers() {
    tokio::time::timeout(LIMIT, async {
        let srv = start(Config {
            limits: Limits {
                header_read_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            ..config(None)
        })
        .await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /fast HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        // Far below the default (30 s): the configured limit closed it.
        assert!(closes_within(&mut s, Duration::from_secs(5)).await);
        // Others are still served.
        let mut ok = TcpStream::connect(srv.addr).await.unwrap();
        send(&mut ok, "/fast", true).await;
        assert_eq!(read_response(&mut ok).await.0, 200);
        srv.shut_down().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tls_handshake_timeout_drops_a_client_that_never_says_hello() {
    let dir = tempfile::tempdir().unwrap();
    let files = tls_files(dir.path());
    let client = connector(&files.cert, &[b"http/1.1"]);
    tokio::time::timeout(LIMIT, async {
        let srv = start(Config {
            limits: Limits {
                tls_handshake_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            ..config(Some(files))
        })
        .await;
        let mut silent = TcpStream::connect(srv.addr).await.unwrap();
        // Far below the default (10 s), and while the server keeps running.
        assert!(closes_within(&mut silent, Duration::from_secs(5)).await);
        assert!(!srv.done.is_finished());
        let mut s = tls_connect(&client, srv.addr).await;
        send(&mut s, "/fast", true).await;
        assert_eq!(read_response(&mut s).await.0, 200);
        srv.shut_down().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn bind_loads_tls_first_and_names_the_address_it_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Server::bind(Config::new(addr)).await.unwrap_err();
    assert!(matches!(err, ServerError::Bind { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("failed to listen on {addr}"));
    // A bad certificate is reported before the address is tried.
    let missing = dir.path().join("missing.pem");
    let err = Server::bind(Config {
        tls: Some(TlsFiles {
            cert: missing.clone(),
            key: missing.clone(),
            reload: false,
        }),
        ..Config::new(addr)
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, ServerError::Tls(TlsError::ReadCert { .. })),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("failed to read certificate file {}", missing.display())
    );
}

#[tokio::test]
async fn h2_max_concurrent_streams_is_what_the_server_announces() {
    tokio::time::timeout(LIMIT, async {
        let srv = start(Config {
            limits: Limits {
                h2_max_concurrent_streams: 7,
                ..Limits::default()
            },
            ..config(None)
        })
        .await;
        let mut h2 = TcpStream::connect(srv.addr).await.unwrap();
        h2.write_all(H2C_PREFACE).await.unwrap();
        // The server's first frame is its SETTINGS: 6-byte entries (id, value).
        let mut head = [0u8; 9];
        h2.read_exact(&mut head).await.unwrap();
        assert_eq!(head[3], 0x4, "expected a SETTINGS frame, got {head:?}");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        h2.read_exact(&mut payload).await.unwrap();
        let settings: Vec<(u16, u32)> = payload
            .chunks_exact(6)
            .map(|e| {
                (
                    u16::from_be_bytes([e[0], e[1]]),
                    u32::from_be_bytes([e[2], e[3], e[4], e[5]]),
                )
            })
            .collect();
        // SETTINGS_MAX_CONCURRENT_STREAMS is 0x3 (RFC 9113, 6.5.2).
        assert!(settings.contains(&(0x3, 7)), "{settings:?}");
        drop(h2);
        srv.shut_down().await;
    })
    .await
    .unwrap();
}

/// The DER of the first certificate in a PEM file.
fn der(pem: &std::path::Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem).unwrap().to_vec()
}

/// The leaf certificate the TLS server at `addr` presents.
async fn presented(c: &TlsConnector, addr: SocketAddr) -> Vec<u8> {
    let s = tls_connect(c, addr).await;
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn tls_certificate_is_reloaded_when_its_files_change_and_only_when_asked() {
    use berth_fsutil::atomic_write;
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = crate::tls::testcert::generate(dir.path(), "a");
    let (b_cert, b_key) = crate::tls::testcert::generate(dir.path(), "b");
    let install = |files: &TlsFiles, cert: &std::path::Path, key: &std::path::Path| {
        atomic_write(&files.key, &std::fs::read(key).unwrap()).unwrap();
        atomic_write(&files.cert, &std::fs::read(cert).unwrap()).unwrap();
    };
    let files = |name: &str, reload| TlsFiles {
        cert: dir.path().join(format!("{name}.crt")),
        key: dir.path().join(format!("{name}.key")),
        reload,
    };
    let reloading = files("reloading", true);
    let fixed = files("fixed", false);
    install(&reloading, &a_cert, &a_key);
    install(&fixed, &a_cert, &a_key);
    // A client trusting both certificates.
    let both = dir.path().join("both.pem");
    let pems = [
        std::fs::read(&a_cert).unwrap(),
        std::fs::read(&b_cert).unwrap(),
    ]
    .concat();
    atomic_write(&both, &pems).unwrap();
    let client = connector(&both, &[b"http/1.1"]);
    tokio::time::timeout(LIMIT, async {
        let r = start(config(Some(reloading.clone()))).await;
        let f = start(config(Some(fixed.clone()))).await;
        assert_eq!(presented(&client, r.addr).await, der(&a_cert));
        assert_eq!(presented(&client, f.addr).await, der(&a_cert));

        install(&reloading, &b_cert, &b_key);
        install(&fixed, &b_cert, &b_key);
        // The files are looked at once per RELOAD_CHECK_INTERVAL (bounded by LIMIT).
        while presented(&client, r.addr).await != der(&b_cert) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Without `reload`, the certificate read at bind stays.
        assert_eq!(presented(&client, f.addr).await, der(&a_cert));

        // A change that does not load (A's certificate beside B's key) keeps B…
        atomic_write(&reloading.cert, &std::fs::read(&a_cert).unwrap()).unwrap();
        // (a negative: give the server one check interval to look at the broken pair)
        tokio::time::sleep(crate::tls::RELOAD_CHECK_INTERVAL + Duration::from_millis(300)).await;
        assert_eq!(presented(&client, r.addr).await, der(&b_cert));
        // …until the pair is whole again.
        atomic_write(&reloading.key, &std::fs::read(&a_key).unwrap()).unwrap();
        while presented(&client, r.addr).await != der(&a_cert) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        r.shut_down().await;
        f.shut_down().await;
    })
    .await
    .unwrap();
}
