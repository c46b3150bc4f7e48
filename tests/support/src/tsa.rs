//! A real RFC 3161 timestamp authority for tests: a small HTTP server on 127.0.0.1 that pipes
//! each `application/timestamp-query` through `openssl ts -reply` with a TSA certificate
//! (critical extendedKeyUsage timeStamping) issued by a test root, all made by openssl in a
//! temporary directory. A [`TsaMode`] makes it misbehave on purpose: reject (a TSA whose
//! configuration accepts no SHA-2 imprint, so openssl itself answers `rejection`), answer
//! with another nonce or over other bytes (the query is altered before openssl signs it), or
//! answer HTTP 500. [`TestTsa::start_tls`] serves HTTPS instead (a [`crate::TestCerts`]
//! server certificate for 127.0.0.1). The server thread stops on `Drop`; each openssl run is
//! bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::run_with_timeout;
use crate::tls::openssl;

/// How the test TSA answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsaMode {
    /// A granted, valid token over the query as sent.
    Grant,
    /// openssl's own rejection (status 2, badAlg): the TSA accepts SHA-1 imprints only.
    Reject,
    /// A token whose nonce is not the query's (the query's nonce is changed first).
    WrongNonce,
    /// A token over other bytes (the query's hashed message is changed first).
    OtherImprint,
    /// HTTP 500 with a text body.
    ServerError,
    /// The granted token, but sent as `application/octet-stream`.
    WrongContentType,
    /// Status granted and no token.
    GrantedWithoutToken,
    /// A token without a nonce (the query's nonce is removed first).
    NoNonce,
    /// 2 MiB of reply.
    Huge,
}

/// A test TSA and its PKI (PEM files in its directory).
#[derive(Debug)]
pub struct TestTsa {
    dir: tempfile::TempDir,
    addr: String,
    tls: Option<crate::TestCerts>,
    mode: Arc<Mutex<TsaMode>>,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const CONFIG: &str = "\
[ tsa ]
default_tsa = grant

[ grant ]
dir = .
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.crt
certs = ./root.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256

[ sha1only ]
dir = .
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.crt
certs = ./root.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha1
accuracy = secs:1
ess_cert_id_alg = sha256

[ tsa_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ root_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

/// A self-signed CA `name.key`/`name.crt` in `dir`, with the subject `/CN=cn`.
pub fn openssl_root(dir: &Path, name: &str, cn: &str) {
    if !dir.join("tsa.cnf").exists() {
        crate::write_file(dir.join("tsa.cnf"), CONFIG.as_bytes());
    }
    let (key, crt, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={cn}"),
    );
    let x509 = [
        "-x509",
        "-days",
        "30",
        "-config",
        "tsa.cnf",
        "-extensions",
        "root_ext",
    ];
    openssl(dir, &ec_req(&key, &crt, &subject, &x509));
}

/// `openssl req` with a new P-256 key into `key`, output `out`, the subject, and `extra`.
fn ec_req<'a>(key: &'a str, out: &'a str, subject: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        out,
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    args
}

/// A P-256 key `name.key` and a certificate request `name.csr` for `subject` (`/CN=…`) in
/// `dir`, made by openssl.
pub fn openssl_ec_request(dir: &Path, name: &str, subject: &str) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    openssl(dir, &ec_req(&key, &csr, subject, &["-new"]));
}

impl TestTsa {
    /// Makes the PKI (root `root.crt`, TSA `tsa.crt`, and an unrelated root `other-root.crt`)
    /// and starts serving HTTP. Needs openssl (a test declares it with `requires_tool!`).
    pub fn start() -> TestTsa {
        TestTsa::start_with(false)
    }

    /// As [`TestTsa::start`], serving HTTPS with a server certificate of a test CA
    /// ([`TestTsa::tls_ca`]).
    pub fn start_tls() -> TestTsa {
        TestTsa::start_with(true)
    }

    fn start_with(tls: bool) -> TestTsa {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl_root(d, "root", "berth test TSA root");
        openssl_root(d, "other-root", "berth unrelated TSA root");
        openssl_ec_request(d, "tsa", "/CN=berth test TSA");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "root.crt",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                "tsa.cnf",
                "-extensions",
                "tsa_ext",
                "-out",
                "tsa.crt",
            ],
        );
        crate::write_file(d.join("serial"), b"01\n");
        let certs = tls.then(|| crate::TestCerts::generate(d.join("tls")));
        let server_config = certs.as_ref().map(crate::TestCerts::server_config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mode = Arc::new(Mutex::new(TsaMode::Grant));
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (dir, mode, served, stop) =
                (d.to_owned(), mode.clone(), served.clone(), stop.clone());
            crate::tls::accept_loop(listener, stop, move |conn| {
                let m = *mode.lock().unwrap();
                match &server_config {
                    None => serve(&dir, conn, m, &served),
                    Some(config) => {
                        if let Ok(tls) = rustls::ServerConnection::new(config.clone()) {
                            serve(&dir, rustls::StreamOwned::new(tls, conn), m, &served)
                        }
                    }
                }
            })
        };
        TestTsa {
            dir,
            addr,
            tls: certs,
            mode,
            served,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/tsa` (`https://` for [`TestTsa::start_tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/tsa", self.addr)
    }

    /// The CA certificate (PEM) of the HTTPS server certificate, for [`TestTsa::start_tls`].
    pub fn tls_ca(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|c| c.ca_cert.clone())
    }

    /// The root certificate the TSA's certificate chains to (PEM).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root.crt")
    }

    /// A root certificate the TSA's certificate does not chain to (PEM).
    pub fn other_root(&self) -> PathBuf {
        self.dir.path().join("other-root.crt")
    }

    /// The TSA's own certificate (PEM).
    pub fn tsa_cert(&self) -> PathBuf {
        self.dir.path().join("tsa.crt")
    }

    /// The directory of the PKI files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How the next requests are answered.
    pub fn set_mode(&self, mode: TsaMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Requests received whole so far (counted before they are answered, so a client that
    /// has its answer sees its request counted).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// DER header at `at`: (header length, content length).
fn der_header(b: &[u8], at: usize) -> (usize, usize) {
    let first = b[at + 1];
    if first < 0x80 {
        return (2, usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    let len = b[at + 2..at + 2 + n]
        .iter()
        .fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
    (2 + n, len)
}

/// A query altered as `mode` says: the last byte of the nonce or of the hashed message
/// flipped, or the nonce removed. Requests of berth and notation both end `INTEGER nonce,
/// BOOLEAN TRUE`.
fn alter(query: &[u8], mode: TsaMode) -> Vec<u8> {
    let mut q = query.to_vec();
    let (top_h, _) = der_header(&q, 0);
    let version = top_h;
    let (vh, vl) = der_header(&q, version);
    let imprint = version + vh + vl;
    let (ih, il) = der_header(&q, imprint);
    let nonce = imprint + ih + il;
    let (nh, nl) = der_header(&q, nonce);
    match mode {
        TsaMode::WrongNonce => q[nonce + nh + nl - 1] ^= 0x01,
        TsaMode::OtherImprint => q[imprint + ih + il - 1] ^= 0x01,
        TsaMode::NoNonce => {
            let content = [&q[version..nonce], &q[nonce + nh + nl..]].concat();
            let mut out = vec![0x30];
            if content.len() < 0x80 {
                out.push(content.len() as u8);
            } else {
                out.extend([0x81, content.len() as u8]);
            }
            out.extend(content);
            q = out;
        }
        _ => {}
    }
    q
}

/// Reads one request, counts it in `received`, answers it.
fn serve(dir: &Path, mut conn: impl Read + Write, mode: TsaMode, received: &AtomicUsize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 << 10 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let query = alter(&buf[header_end..header_end + len], mode);
    received.fetch_add(1, Ordering::SeqCst);
    let (status, ctype, body) = if mode == TsaMode::GrantedWithoutToken {
        // TimeStampResp { PKIStatusInfo { granted } }
        (
            200,
            "application/timestamp-reply",
            vec![0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00],
        )
    } else if mode == TsaMode::Huge {
        (200, "application/timestamp-reply", vec![0u8; 2 << 20])
    } else if mode == TsaMode::ServerError {
        (
            500,
            "text/plain",
            b"the TSA is down for maintenance".to_vec(),
        )
    } else {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let q = format!("q{n}.tsq");
        let r = format!("r{n}.tsr");
        crate::write_file(dir.join(&q), &query);
        let section = if mode == TsaMode::Reject {
            "sha1only"
        } else {
            "grant"
        };
        let out = run_with_timeout(
            Command::new("openssl")
                .args([
                    "ts",
                    "-reply",
                    "-config",
                    "tsa.cnf",
                    "-section",
                    section,
                    "-queryfile",
                    &q,
                    "-out",
                    &r,
                ])
                .current_dir(dir),
            Duration::from_secs(30),
        );
        match std::fs::read(dir.join(&r)) {
            Ok(reply) if out.status.success() && mode == TsaMode::WrongContentType => {
                (200, "application/octet-stream", reply)
            }
            Ok(reply) if out.status.success() => (200, "application/timestamp-reply", reply),
            _ => (
                500,
                "text/plain",
                format!(
                    "openssl ts -reply failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into_bytes(),
            ),
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(&body))
        .and_then(|()| conn.flush());
}
