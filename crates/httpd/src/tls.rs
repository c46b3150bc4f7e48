//! TLS server configuration from PEM files (rustls with the ring provider).
//!
//! The certificate file holds the chain, leaf first; the key file one PKCS#8, PKCS#1 or SEC1
//! private key. ALPN offers `h2` then `http/1.1`, so TLS clients get HTTP/2 when they can.
//! Session tickets are enabled so reconnecting clients skip the full handshake.
//! [`reloading_server_config`] serves a renewed certificate without a restart.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SingleCertAndKey};

use berth_errdefs::error_chain;

/// ALPN protocols offered, in preference order.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// What failed while loading the TLS certificate or key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read certificate file {path}")]
    ReadCert {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("no certificate found in {path} (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCert { path: PathBuf },
    #[error("failed to read private key file {path}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("no private key found in {path} (expected a PEM `BEGIN PRIVATE KEY` block)")]
    NoKey { path: PathBuf },
    #[error("private key {key} does not match certificate {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot use certificate {cert} with private key {key}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// Build a server configuration from a PEM certificate chain and a PEM private key, read
/// once.
pub fn load_server_config(cert_pem: &Path, key_pem: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = load_certified_key(cert_pem, key_pem, &provider)?;
    server_config(
        provider,
        Arc::new(SingleCertAndKey::from(key)),
        cert_pem,
        key_pem,
    )
}

/// [`load_server_config`] whose certificate and key are read again when either file changes
/// (modification time, size or inode, looked at during a handshake at most once per
/// [`RELOAD_CHECK_INTERVAL`]), so a renewed certificate is served without a restart. A
/// change that does not load (a half-written pair, a key that does not match) is logged and
/// the previous certificate kept until the files change again.
pub fn reloading_server_config(
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let stamp = stamps(cert_pem, key_pem);
    let key = load_certified_key(cert_pem, key_pem, &provider)?;
    let resolver = Reloading {
        cert: cert_pem.to_owned(),
        key: key_pem.to_owned(),
        provider: Arc::clone(&provider),
        current: Mutex::new(Current {
            stamp,
            checked: Instant::now(),
            key: Arc::new(key),
        }),
    };
    server_config(provider, Arc::new(resolver), cert_pem, key_pem)
}

/// How often, at most, a reloading configuration looks at its files.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The certificate chain and private key in the PEM files, checked to belong together.
fn load_certified_key(
    cert_pem: &Path,
    key_pem: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ReadCert {
            path: cert_pem.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: cert_pem.to_owned(),
        });
    }
    let key = match PrivateKeyDer::from_pem_file(key_pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: key_pem.to_owned(),
            });
        }
        Err(source) => {
            return Err(TlsError::ReadKey {
                path: key_pem.to_owned(),
                source,
            });
        }
    };
    CertifiedKey::from_der(certs, key, provider).map_err(|e| config_err(e, cert_pem, key_pem))
}

fn config_err(source: rustls::Error, cert_pem: &Path, key_pem: &Path) -> TlsError {
    match source {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: cert_pem.to_owned(),
                key: key_pem.to_owned(),
            }
        }
        source => TlsError::Config {
            cert: cert_pem.to_owned(),
            key: key_pem.to_owned(),
            source,
        },
    }
}

/// The server configuration around a certificate resolver: ALPN and session tickets.
fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: Arc<dyn ResolvesServerCert>,
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let err = |e| config_err(e, cert_pem, key_pem);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(err)?;
    Ok(Arc::new(config))
}

/// What identifies one version of a file: a rewrite in place changes the modification time
/// or size, a replacement by rename the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

/// The stamps of the certificate and key files (`None` for a file that cannot be read).
fn stamps(cert_pem: &Path, key_pem: &Path) -> [Option<Stamp>; 2] {
    [cert_pem, key_pem].map(|p| {
        std::fs::metadata(p).ok().map(|m| Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            ino: m.ino(),
        })
    })
}

/// The certificate resolver of [`reloading_server_config`].
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    /// The files' stamps when they were last looked at.
    stamp: [Option<Stamp>; 2],
    checked: Instant,
    key: Arc<CertifiedKey>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            current.checked = Instant::now();
            let stamp = stamps(&self.cert, &self.key);
            if stamp != current.stamp {
                current.stamp = stamp;
                match load_certified_key(&self.cert, &self.key, &self.provider) {
                    Ok(key) => {
                        current.key = Arc::new(key);
                        tracing::info!(cert = %self.cert.display(), "reloaded the TLS certificate");
                    }
                    Err(e) => tracing::warn!(
                        error = %error_chain(&e),
                        "the TLS certificate or key changed but could not be loaded; serving the previous certificate"
                    ),
                }
            }
        }
        Some(Arc::clone(&current.key))
    }
}

/// Test helpers: self-signed certificates made with the `openssl` CLI.
#[cfg(test)]
pub(crate) mod testcert {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Write `cert.pem` and `key.pem` (P-256, CN=localhost, SAN localhost and 127.0.0.1)
    /// into `dir` under `name`-prefixed file names.
    pub(crate) fn generate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}-cert.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:prime256v1")
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext"])
            .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
            // webpki refuses a CA certificate (openssl's default) as a server's end entity.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("the openssl CLI is required for TLS tests");
        assert!(
            out.status.success(),
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_self_signed_cert_with_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = testcert::generate(dir.path(), "a");
        let cfg = load_server_config(&cert, &key).unwrap();
        assert_eq!(cfg.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = testcert::generate(dir.path(), "a");
        let (_, other_key) = testcert::generate(dir.path(), "b");
        let empty = dir.path().join("empty.pem");
        berth_fsutil::atomic_write(&empty, b"not pem at all\n").unwrap();
        let missing = dir.path().join("missing.pem");

        let err = load_server_config(&empty, &key).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no certificate found in {} (expected PEM `BEGIN CERTIFICATE` blocks)",
                empty.display()
            )
        );
        // A certificate where the key should be: no key in it.
        let err = load_server_config(&cert, &cert).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no private key found in {} (expected a PEM `BEGIN PRIVATE KEY` block)",
                cert.display()
            )
        );
        let err = load_server_config(&missing, &key).unwrap_err();
        assert!(matches!(err, TlsError::ReadCert { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("failed to read certificate file {}", missing.display())
        );
        let err = load_server_config(&cert, &missing).unwrap_err();
        assert!(matches!(err, TlsError::ReadKey { .. }), "{err:?}");
        let err = load_server_config(&cert, &other_key).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "private key {} does not match certificate {}",
                other_key.display(),
                cert.display()
            )
        );
    }
}
