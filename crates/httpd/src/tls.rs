//! TLS server configuration from PEM files (rustls with the ring provider).
//!
//! The certificate file holds the chain, leaf first; the key file one PKCS#8, PKCS#1 or SEC1
//! private key. ALPN offers `h2` then `http/1.1`, so TLS clients get HTTP/2 when they can.
//! Session tickets are enabled so reconnecting clients skip the full handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// Build a server configuration from a PEM certificate chain and a PEM private key.
pub fn load_server_config(cert_pem: &Path, key_pem: &Path) -> Result<Arc<ServerConfig>, TlsError> {
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
    let config_err = |source: rustls::Error| match source {
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
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(config_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(config_err)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(config_err)?;
    Ok(Arc::new(config))
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
