//! Test certificates made with the `openssl` command line: a throwaway CA and a server
//! certificate it signs for `127.0.0.1` and `localhost`.
//!
//! A CA plus a leaf rather than one self-signed certificate, because rustls (webpki) refuses a
//! CA certificate presented as a server's end-entity certificate, and Go clients (skopeo) are
//! happy either way.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fs::write_file;

/// Files of a generated test PKI.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate (PEM): trust this.
    pub ca_cert: PathBuf,
    /// The server certificate chain (PEM, leaf then CA).
    pub server_cert: PathBuf,
    /// The server's private key (PEM, PKCS#8).
    pub server_key: PathBuf,
    /// A directory holding only `ca.crt`, in the layout of containers' `certs.d` and skopeo's
    /// `--cert-dir`/`--dest-cert-dir`.
    pub cert_dir: PathBuf,
}

#[track_caller]
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = crate::run_with_timeout(
        Command::new("openssl").args(args).current_dir(dir),
        std::time::Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCerts {
    /// Generate a CA and a server certificate (EC P-256, valid two days) under `dir`.
    pub fn generate(dir: impl AsRef<Path>) -> TestCerts {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir.join("certs.d"))
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", dir.display()));
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            dir,
            &[
                &["req", "-x509", "-nodes", "-days", "2"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-subj",
                    "/CN=berth test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ][..],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                &["req", "-new", "-nodes"][..],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ][..],
            ]
            .concat(),
        );
        write_file(
            dir.join("server.ext"),
            b"basicConstraints=critical,CA:FALSE\n\
              keyUsage=critical,digitalSignature\n\
              extendedKeyUsage=serverAuth\n\
              subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server-leaf.crt",
            ],
        );
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("failed to read {name} in {}: {e}", dir.display()))
        };
        let ca = read("ca.crt");
        let chain = [read("server-leaf.crt"), ca.clone()].concat();
        write_file(dir.join("server.crt"), &chain);
        write_file(dir.join("certs.d/ca.crt"), &ca);
        TestCerts {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            cert_dir: dir.join("certs.d"),
        }
    }

    /// A rustls server configuration (ring) serving the server certificate chain.
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(&self.server_cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&self.server_key).unwrap();
        std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        )
    }

    /// The CA certificate's PEM bytes.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_cert)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", self.ca_cert.display()))
    }
}

/// Accept connections on `listener` in a thread until `stop` is set (then one more connection
/// wakes the loop), each with a 10 s read timeout, handed to `handle` one at a time.
pub(crate) fn accept_loop(
    listener: std::net::TcpListener,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut handle: impl FnMut(std::net::TcpStream) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            handle(conn);
        }
    })
}
