//! The one error type of the registry client, its classification and its hints.

use std::fmt;
use std::time::Duration;

use berth_oci::Digest;

use crate::credentials::CredentialsError;

/// A boxed error from below (hyper, rustls, I/O).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an operation was about: `registry[/repository][:tag|@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    registry: Box<str>,
    repository: Option<Box<str>>,
    reference: Option<Box<str>>,
}

impl Target {
    /// A target; `reference` is a tag or a digest.
    pub fn new(registry: &str, repository: Option<&str>, reference: Option<&str>) -> Target {
        Target {
            registry: registry.into(),
            repository: repository.map(Into::into),
            reference: reference.map(Into::into),
        }
    }

    pub(crate) fn registry_only(registry: &str) -> Target {
        Target::new(registry, None, None)
    }

    /// Registry host as the user named it (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository, when the operation has one.
    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }

    /// Tag or digest, when the operation has one.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.registry)?;
        if let Some(r) = &self.repository {
            write!(f, "/{r}")?;
        }
        match &self.reference {
            Some(r) if r.contains(':') => write!(f, "@{r}"),
            Some(r) => write!(f, ":{r}"),
            None => Ok(()),
        }
    }
}

/// One entry of a registry's `{"errors":[{"code","message"}]}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryErrorCode {
    /// `MANIFEST_UNKNOWN`, `DENIED`, …
    pub code: String,
    /// The registry's message (cut to 200 characters).
    pub message: String,
}

impl fmt::Display for RegistryErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

/// `" (CODE: message; CODE2)"`, or nothing.
struct Codes<'a>(&'a [RegistryErrorCode]);

impl fmt::Display for Codes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { " (" } else { "; " })?;
            write!(f, "{c}")?;
        }
        if !self.0.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The message of [`Error::Unauthorized`].
struct Unauthorized<'a> {
    operation: &'a str,
    target: &'a Target,
    had_credentials: bool,
    username: Option<&'a str>,
    codes: &'a [RegistryErrorCode],
}

impl fmt::Display for Unauthorized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (operation, target, codes) = (self.operation, self.target, Codes(self.codes));
        if !self.had_credentials {
            return write!(
                f,
                "failed to {operation} {target}: authentication required{codes}"
            );
        }
        f.write_str("authentication failed")?;
        if let Some(user) = self.username.filter(|u| !u.is_empty()) {
            write!(f, " for user {user:?}")?;
        }
        write!(
            f,
            " at {}: the registry refused the credentials{codes}",
            target.registry()
        )?;
        if target.repository().is_some() {
            write!(f, " (to {operation} {target})")?;
        }
        Ok(())
    }
}

/// Why a connection could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectCause {
    /// The server answered a TLS handshake with something else: it speaks plain HTTP.
    PlainHttpServer,
    /// The server's certificate was refused.
    Certificate,
    /// Anything else: refused, unreachable, name resolution, reset.
    Network,
}

/// The class of a failure, shared by berth's libraries (containerd's `errdefs`).
pub use berth_errdefs::ErrorKind;

/// What failed in a registry operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {operation} {target}: cannot connect to {url}")]
    Connect {
        operation: &'static str,
        target: Target,
        url: String,
        cause: ConnectCause,
        #[source]
        source: BoxError,
    },
    #[error("failed to {operation} {target}: connection to the registry failed")]
    Transport {
        operation: &'static str,
        target: Target,
        #[source]
        source: BoxError,
    },
    #[error("failed to {operation} {target}: no answer within {after:?}")]
    Timeout {
        operation: &'static str,
        target: Target,
        after: Duration,
    },
    #[error(
        "failed to {operation} {target}: registry answered {status}{}",
        Codes(codes)
    )]
    Status {
        operation: &'static str,
        target: Target,
        status: u16,
        codes: Vec<RegistryErrorCode>,
    },
    #[error("failed to {operation} {target}: not found{}", Codes(codes))]
    NotFound {
        operation: &'static str,
        target: Target,
        codes: Vec<RegistryErrorCode>,
    },
    /// `401`: without credentials, "authentication required"; with them, "authentication
    /// failed" naming the registry and the user.
    #[error("{}", Unauthorized { operation, target, had_credentials: *had_credentials, username: username.as_deref(), codes })]
    Unauthorized {
        operation: &'static str,
        target: Target,
        had_credentials: bool,
        /// The user whose credentials were refused (`None`: none sent, or no name).
        username: Option<String>,
        codes: Vec<RegistryErrorCode>,
    },
    #[error("failed to {operation} {target}: access denied{}", Codes(codes))]
    Denied {
        operation: &'static str,
        target: Target,
        codes: Vec<RegistryErrorCode>,
    },
    #[error("failed to {operation} {target}: too many requests{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    TooManyRequests {
        operation: &'static str,
        target: Target,
        retry_after: Option<Duration>,
    },
    #[error("content of {target} does not match its digest: it hashes to {actual}")]
    DigestMismatch { target: Target, actual: Digest },
    #[error("content of {target} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        target: Target,
        expected: u64,
        actual: u64,
    },
    #[error("failed to {operation} {target}: invalid response from the registry: {reason}")]
    InvalidResponse {
        operation: &'static str,
        target: Target,
        reason: String,
    },
    #[error("failed to get a token for {target} from {realm}")]
    Token {
        target: Target,
        realm: String,
        #[source]
        source: BoxError,
    },
    #[error("refusing to send credentials for {registry} to {url} over plain HTTP")]
    InsecureRealm { registry: String, url: String },
    #[error("failed to look up credentials for {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: Box<CredentialsError>,
    },
    #[error("failed to read the content to upload to {target}")]
    Source {
        target: Target,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write the content of {target}")]
    Sink {
        target: Target,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidInput {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid {what} from {target}")]
    InvalidDocument {
        what: &'static str,
        target: Target,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid TLS configuration: {reason}")]
    TlsConfig {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// The classification callers branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Unauthorized { .. } | Error::Denied { .. } | Error::InsecureRealm { .. } => {
                ErrorKind::Denied
            }
            Error::Connect { .. }
            | Error::Transport { .. }
            | Error::Timeout { .. }
            | Error::TooManyRequests { .. } => ErrorKind::Unavailable,
            Error::Status { status, .. } => match status {
                404 => ErrorKind::NotFound,
                401 | 403 => ErrorKind::Denied,
                409 => ErrorKind::Conflict,
                400 | 405 | 413 | 416 => ErrorKind::InvalidInput,
                429 | 502..=504 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Error::InvalidInput { .. } | Error::TlsConfig { .. } | Error::Source { .. } => {
                ErrorKind::InvalidInput
            }
            Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::InvalidResponse { .. }
            | Error::InvalidDocument { .. }
            | Error::Token { .. }
            | Error::Credentials { .. }
            | Error::Sink { .. } => ErrorKind::Internal,
        }
    }

    /// The HTTP status the registry answered, when the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::NotFound { .. } => Some(404),
            Error::Unauthorized { .. } => Some(401),
            Error::Denied { .. } => Some(403),
            Error::TooManyRequests { .. } => Some(429),
            _ => None,
        }
    }

    /// The registry's error codes, when it sent any.
    pub fn codes(&self) -> &[RegistryErrorCode] {
        match self {
            Error::Status { codes, .. }
            | Error::NotFound { codes, .. }
            | Error::Unauthorized { codes, .. }
            | Error::Denied { codes, .. } => codes,
            _ => &[],
        }
    }

    /// What the operation was about, when it had a target.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Error::Connect { target, .. }
            | Error::Transport { target, .. }
            | Error::Timeout { target, .. }
            | Error::Status { target, .. }
            | Error::NotFound { target, .. }
            | Error::Unauthorized { target, .. }
            | Error::Denied { target, .. }
            | Error::TooManyRequests { target, .. }
            | Error::DigestMismatch { target, .. }
            | Error::SizeMismatch { target, .. }
            | Error::InvalidResponse { target, .. }
            | Error::Token { target, .. }
            | Error::Source { target, .. }
            | Error::Sink { target, .. }
            | Error::InvalidDocument { target, .. } => Some(target),
            _ => None,
        }
    }

    /// A line telling the user what to do, for errors where berth can know
    /// (`hint: the registry speaks plain HTTP; add --plain-http`).
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Connect {
                cause: ConnectCause::PlainHttpServer,
                ..
            } => Some("hint: the registry speaks plain HTTP; add --plain-http".into()),
            Error::Connect {
                cause: ConnectCause::Certificate,
                target,
                ..
            } => Some(format!(
                "hint: the certificate of {} is not trusted; add its CA certificate to the trust store (or, for a test registry, --insecure-skip-verify)",
                target.registry()
            )),
            Error::Unauthorized {
                target,
                had_credentials: false,
                ..
            } => Some(format!("hint: run berth login {}", target.registry())),
            Error::Unauthorized { target, .. } => Some(format!(
                "hint: check the username and password for {} (berth login {})",
                target.registry(),
                target.registry()
            )),
            Error::Denied { target, .. } => Some(format!(
                "hint: the account used for {} may not access {}",
                target.registry(),
                target.repository().unwrap_or("this repository")
            )),
            Error::InsecureRealm { .. } => {
                Some("hint: use a registry whose token service is served over HTTPS".into())
            }
            Error::TooManyRequests { .. } => {
                Some("hint: the registry is rate limiting; try again later or log in".into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        Target::new("r.example", Some("team/app"), Some("v1"))
    }

    #[test]
    fn messages_name_the_target_and_codes() {
        let e = Error::NotFound {
            operation: "get manifest",
            target: t(),
            codes: vec![RegistryErrorCode {
                code: "MANIFEST_UNKNOWN".into(),
                message: "manifest unknown".into(),
            }],
        };
        assert_eq!(
            e.to_string(),
            "failed to get manifest r.example/team/app:v1: not found (MANIFEST_UNKNOWN: manifest unknown)"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let target = Target::new("r.example", Some("team/app"), Some("sha256:abc"));
        assert_eq!(target.to_string(), "r.example/team/app@sha256:abc");
        let e = Error::Unauthorized {
            operation: "push blob",
            target: t(),
            had_credentials: true,
            username: Some("alice".into()),
            codes: vec![],
        };
        assert_eq!(
            e.to_string(),
            "authentication failed for user \"alice\" at r.example: the registry refused the credentials (to push blob r.example/team/app:v1)"
        );
        let e = Error::Unauthorized {
            operation: "reach registry",
            target: Target::registry_only("r.example"),
            had_credentials: true,
            username: Some("alice".into()),
            codes: vec![RegistryErrorCode {
                code: "UNAUTHORIZED".into(),
                message: "invalid username or password".into(),
            }],
        };
        assert_eq!(
            e.to_string(),
            "authentication failed for user \"alice\" at r.example: the registry refused the credentials (UNAUTHORIZED: invalid username or password)"
        );
        assert_eq!(
            e.hint().unwrap(),
            "hint: check the username and password for r.example (berth login r.example)"
        );
    }
}
