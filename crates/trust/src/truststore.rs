//! notation's trust store layout (trust-store-trust-policy.md, "Trust Store"):
//!
//! ```text
//! <root>/                         e.g. $XDG_CONFIG_HOME/notation/truststore
//!   x509/
//!     ca/NAME/*.pem|crt|cer       root certificates of code-signing CAs
//!     signingAuthority/NAME/…     roots of signing authorities
//!     tsa/NAME/…                  roots of timestamping authorities
//! ```
//!
//! A named store and its certificate files must not be symlinks (refused); sub-directories of
//! a named store are ignored, as the specification says. Every regular file is read, whatever
//! its extension (notation does the same; the specification names .pem, .crt and .cer), as PEM
//! or DER, and must hold at least one certificate, each a CA or a self-signed signing
//! certificate. The whole store is refused on any bad file, so a misconfiguration never
//! silently narrows or widens trust.

use crate::cert::Certificate;
use std::fs;
use std::path::{Path, PathBuf};

/// The three kinds of named store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreType {
    Ca,
    SigningAuthority,
    Tsa,
}

impl StoreType {
    pub fn parse(s: &str) -> Option<StoreType> {
        match s {
            "ca" => Some(StoreType::Ca),
            "signingAuthority" => Some(StoreType::SigningAuthority),
            "tsa" => Some(StoreType::Tsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }
}

/// Why a named store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("invalid named store {0:?}: names are [a-zA-Z0-9_.-]+")]
    InvalidName(String),
    #[error("trust store {path} does not exist")]
    NotFound { path: PathBuf },
    #[error(
        "{path} is a symlink: trust stores and their certificates must be regular directories and files"
    )]
    Symlink { path: PathBuf },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("failed to read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the trusted certificate {path}")]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: crate::cert::CertError,
    },
    #[error(
        "certificate {subject:?} in {path} is not a CA certificate or a self-signed signing certificate"
    )]
    NotCa { subject: String, path: PathBuf },
    #[error("certificate {subject:?} in TSA store {path} is not a self-issued root CA certificate")]
    NotTsaRoot { subject: String, path: PathBuf },
    #[error("trust store {path} has no certificates")]
    Empty { path: PathBuf },
}

/// A trust store directory (the one holding `x509/`).
#[derive(Debug, Clone)]
pub struct TrustStore {
    root: PathBuf,
}

/// Named store names notation accepts.
pub fn is_valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl TrustStore {
    /// A trust store rooted at `root` (nothing is read until certificates are asked for).
    pub fn new(root: impl Into<PathBuf>) -> TrustStore {
        TrustStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The certificates of `x509/<type>/<name>/`.
    pub fn certificates(
        &self,
        ty: StoreType,
        name: &str,
    ) -> Result<Vec<Certificate>, TrustStoreError> {
        if !is_valid_store_name(name) {
            return Err(TrustStoreError::InvalidName(name.to_string()));
        }
        let dir = self.root.join("x509").join(ty.as_str()).join(name);
        let meta = match fs::symlink_metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustStoreError::NotFound { path: dir });
            }
            Err(source) => return Err(TrustStoreError::Io { path: dir, source }),
        };
        if meta.file_type().is_symlink() {
            return Err(TrustStoreError::Symlink { path: dir });
        }
        if !meta.is_dir() {
            return Err(TrustStoreError::NotADirectory { path: dir });
        }
        let mut entries = fs::read_dir(&dir)
            .map_err(|source| TrustStoreError::Io {
                path: dir.clone(),
                source,
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TrustStoreError::Io {
                path: dir.clone(),
                source,
            })?;
        entries.sort_by_key(|e| e.file_name());
        let mut certs = Vec::new();
        for entry in entries {
            let path = entry.path();
            let ft = entry.file_type().map_err(|source| TrustStoreError::Io {
                path: path.clone(),
                source,
            })?;
            if ft.is_symlink() {
                return Err(TrustStoreError::Symlink { path });
            }
            if ft.is_dir() {
                continue; // sub-directories are ignored (specification)
            }
            let data = fs::read(&path).map_err(|source| TrustStoreError::Io {
                path: path.clone(),
                source,
            })?;
            let file_certs = Certificate::parse_many(&data).map_err(|source| {
                TrustStoreError::BadCertificate {
                    path: path.clone(),
                    source,
                }
            })?;
            for c in &file_certs {
                let self_signed = c.is_self_issued() && c.verify_signed_by(c).is_ok();
                if ty == StoreType::Tsa {
                    if !(c.is_ca() && self_signed) {
                        return Err(TrustStoreError::NotTsaRoot {
                            subject: c.subject.to_string(),
                            path,
                        });
                    }
                } else if !c.is_ca() && !self_signed {
                    return Err(TrustStoreError::NotCa {
                        subject: c.subject.to_string(),
                        path,
                    });
                }
            }
            certs.extend(file_certs);
        }
        if certs.is_empty() {
            return Err(TrustStoreError::Empty { path: dir });
        }
        Ok(certs)
    }
}
