//! Registry errors and the one table that maps them to distribution-spec codes and HTTP status.
//!
//! distribution-spec v1.1, "Error Codes": every 4xx body is
//! `{"errors":[{"code":…,"message":…,"detail":…}]}`. Handlers return [`RegistryError`]; its
//! [`ErrorKind`] picks the code and status from [`ErrorKind::code_and_status`] and nothing else
//! chooses a status. The storage layer's [`StorageError`] becomes a `RegistryError` in one
//! place, `From<StorageError>` below. Internal causes are logged once here and never sent to
//! the client.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::storage::{DriverError, StorageError};

pub use crate::storage::error::error_chain;

/// The classes of failure a client can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    /// A chunk that does not continue the upload (distribution-spec: 416 with `Range`).
    ChunkOutOfOrder,
    /// A `Range` on a blob GET that lies outside the blob (distribution's RANGE_INVALID).
    RangeNotSatisfiable,
    /// A pagination `n` that is not a non-negative integer.
    PaginationNumberInvalid,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    ManifestTooLarge,
    /// A blob upload over the configured per-upload limit.
    BlobTooLarge,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    /// The operation is disabled by configuration, or the method is not allowed on the route.
    Unsupported,
    /// No such API endpoint.
    RouteUnknown,
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The single mapping from error kind to spec code, HTTP status and default message.
    pub fn code_and_status(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorKind::*;
        match self {
            BlobUnknown => (
                "BLOB_UNKNOWN",
                StatusCode::NOT_FOUND,
                "blob unknown to registry",
            ),
            BlobUploadInvalid => (
                "BLOB_UPLOAD_INVALID",
                StatusCode::BAD_REQUEST,
                "blob upload invalid",
            ),
            BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                StatusCode::NOT_FOUND,
                "blob upload unknown to registry",
            ),
            ChunkOutOfOrder => (
                "BLOB_UPLOAD_INVALID",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "chunk does not continue the upload",
            ),
            RangeNotSatisfiable => (
                "RANGE_INVALID",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "requested range not satisfiable",
            ),
            PaginationNumberInvalid => (
                "PAGINATION_NUMBER_INVALID",
                StatusCode::BAD_REQUEST,
                "invalid number of results requested",
            ),
            DigestInvalid => (
                "DIGEST_INVALID",
                StatusCode::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                StatusCode::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            ManifestInvalid => (
                "MANIFEST_INVALID",
                StatusCode::BAD_REQUEST,
                "manifest invalid",
            ),
            ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                StatusCode::NOT_FOUND,
                "manifest unknown to registry",
            ),
            ManifestTooLarge => (
                "SIZE_INVALID",
                StatusCode::PAYLOAD_TOO_LARGE,
                "manifest too large",
            ),
            BlobTooLarge => (
                "SIZE_INVALID",
                StatusCode::PAYLOAD_TOO_LARGE,
                "blob upload too large",
            ),
            NameInvalid => (
                "NAME_INVALID",
                StatusCode::BAD_REQUEST,
                "invalid repository name",
            ),
            NameUnknown => (
                "NAME_UNKNOWN",
                StatusCode::NOT_FOUND,
                "repository name not known to registry",
            ),
            SizeInvalid => (
                "SIZE_INVALID",
                StatusCode::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Unauthorized => (
                "UNAUTHORIZED",
                StatusCode::UNAUTHORIZED,
                "authentication required",
            ),
            Denied => (
                "DENIED",
                StatusCode::FORBIDDEN,
                "requested access to the resource is denied",
            ),
            Unsupported => (
                "UNSUPPORTED",
                StatusCode::METHOD_NOT_ALLOWED,
                "the operation is unsupported",
            ),
            RouteUnknown => (
                "UNSUPPORTED",
                StatusCode::NOT_FOUND,
                "no such endpoint in the distribution API",
            ),
            TooManyRequests => (
                "TOOMANYREQUESTS",
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
            ),
            Unavailable => (
                "UNAVAILABLE",
                StatusCode::SERVICE_UNAVAILABLE,
                "service unavailable",
            ),
            Internal => (
                "UNKNOWN",
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ),
        }
    }
}

/// An error answered to a client: a kind, a message, an optional `detail`, headers the spec
/// requires with it (`Range`/`Location` on 416, `WWW-Authenticate` on 401), and for internal
/// errors the cause, which is logged and never sent.
#[derive(Debug)]
pub struct RegistryError(Box<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<Value>,
    pub headers: HeaderMap,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.kind.code_and_status().0, self.0.message)
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl RegistryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RegistryError(Box::new(Inner {
            kind,
            message: message.into(),
            detail: None,
            headers: HeaderMap::new(),
            source: None,
        }))
    }

    /// With the kind's default message.
    pub fn of(kind: ErrorKind) -> Self {
        Self::new(kind, kind.code_and_status().2)
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.0.detail = Some(detail);
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.0.headers.append(name, v);
        }
        self
    }

    pub fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let mut e = Self::new(ErrorKind::Internal, context);
        e.0.source = Some(Box::new(source));
        e
    }

    pub fn blob_unknown(digest: &impl std::fmt::Display) -> Self {
        Self::of(ErrorKind::BlobUnknown).detail(json!({ "digest": digest.to_string() }))
    }

    pub fn manifest_unknown(reference: &str) -> Self {
        Self::of(ErrorKind::ManifestUnknown).detail(json!({ "reference": reference }))
    }

    pub fn name_unknown(name: &str) -> Self {
        Self::of(ErrorKind::NameUnknown).detail(json!({ "name": name }))
    }

    pub fn upload_unknown(id: &str) -> Self {
        Self::of(ErrorKind::BlobUploadUnknown).detail(json!({ "session": id }))
    }

    /// 503 UNAVAILABLE with `Retry-After`: the storage is full or below its free-space
    /// reserve. Clients (containerd, skopeo, docker) retry 503s.
    pub fn storage_full(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
            .header(header::RETRY_AFTER, &STORAGE_FULL_RETRY_AFTER.to_string())
    }

    /// 413 SIZE_INVALID: a blob upload larger than `storage.max_upload_bytes`.
    pub fn upload_too_large(limit: u64, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BlobTooLarge, message).detail(json!({ "limit": limit }))
    }

    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DigestInvalid, message)
    }

    pub fn status(&self) -> StatusCode {
        self.0.kind.code_and_status().1
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }
}

/// What a client is told to wait before retrying when the storage is full (seconds).
pub const STORAGE_FULL_RETRY_AFTER: u64 = 60;

impl From<DriverError> for RegistryError {
    fn from(e: DriverError) -> Self {
        if e.is_storage_full() {
            tracing::error!(error = %error_chain(&e), "the registry's storage is full");
            return RegistryError::storage_full(
                "the registry's storage is full; nothing was stored, retry later",
            );
        }
        RegistryError::internal("storage operation failed", e)
    }
}

/// The one mapping from storage failures to what a client is told.
impl From<StorageError> for RegistryError {
    fn from(e: StorageError) -> Self {
        let message = e.to_string();
        match e {
            StorageError::BlobUnknown { digest, .. } => RegistryError::blob_unknown(&digest),
            StorageError::ManifestUnknown { reference, .. } => {
                RegistryError::manifest_unknown(&reference)
            }
            StorageError::RepositoryUnknown { repo } => RegistryError::name_unknown(&repo),
            StorageError::UploadUnknown { id } => RegistryError::upload_unknown(&id),
            StorageError::ManifestBlobUnknown { digest, .. } => {
                RegistryError::new(ErrorKind::ManifestBlobUnknown, message)
                    .detail(json!({ "digest": digest.to_string() }))
            }
            StorageError::InvalidDescriptor { source } => RegistryError::new(
                ErrorKind::ManifestInvalid,
                format!("invalid descriptor: {source}"),
            ),
            StorageError::InvalidSubject { source } => RegistryError::new(
                ErrorKind::ManifestInvalid,
                format!("invalid subject: {source}"),
            ),
            // distribution 2.8 does not compare sizes; SIZE_INVALID is for upload lengths
            StorageError::DescriptorSizeMismatch {
                digest,
                declared,
                stored,
                ..
            } => RegistryError::new(ErrorKind::ManifestInvalid, message).detail(
                json!({ "digest": digest.to_string(), "size": declared, "stored": stored }),
            ),
            StorageError::DigestMismatch { expected, actual } => {
                RegistryError::digest_invalid(message)
                    .detail(json!({ "digest": expected.to_string(), "actual": actual.to_string() }))
            }
            StorageError::PushWindowExceeded { .. } => {
                RegistryError::new(ErrorKind::Unavailable, message)
            }
            StorageError::Driver { source } => source.into(),
            e @ (StorageError::Corrupt { .. } | StorageError::Reread { .. }) => {
                RegistryError::internal(message, e)
            }
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let this = *self.0;
        let (code, status, _) = this.kind.code_and_status();
        if this.kind == ErrorKind::Internal || status.is_server_error() {
            let cause = this
                .source
                .as_deref()
                .map(|e| error_chain(e))
                .unwrap_or_default();
            tracing::error!(code, message = %this.message, cause, "request failed");
        }
        let message = if this.kind == ErrorKind::Internal {
            // never leak internal detail (paths, errno) to clients
            "internal error; see the registry log".to_owned()
        } else {
            this.message
        };
        let mut err = json!({ "code": code, "message": message });
        if let Some(d) = this.detail {
            err["detail"] = d;
        }
        let body = json!({ "errors": [err] }).to_string();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in this.headers.iter() {
            h.append(name.clone(), value.clone());
        }
        resp
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_spec_statuses() {
        use ErrorKind::*;
        let cases = [
            (BlobUnknown, "BLOB_UNKNOWN", 404),
            (BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
            (BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
            (ChunkOutOfOrder, "BLOB_UPLOAD_INVALID", 416),
            (RangeNotSatisfiable, "RANGE_INVALID", 416),
            (PaginationNumberInvalid, "PAGINATION_NUMBER_INVALID", 400),
            (DigestInvalid, "DIGEST_INVALID", 400),
            (ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
            (ManifestInvalid, "MANIFEST_INVALID", 400),
            (ManifestUnknown, "MANIFEST_UNKNOWN", 404),
            (ManifestTooLarge, "SIZE_INVALID", 413),
            (BlobTooLarge, "SIZE_INVALID", 413),
            (Unavailable, "UNAVAILABLE", 503),
            (NameInvalid, "NAME_INVALID", 400),
            (NameUnknown, "NAME_UNKNOWN", 404),
            (SizeInvalid, "SIZE_INVALID", 400),
            (Unauthorized, "UNAUTHORIZED", 401),
            (Denied, "DENIED", 403),
            (Unsupported, "UNSUPPORTED", 405),
            (TooManyRequests, "TOOMANYREQUESTS", 429),
        ];
        for (kind, code, status) in cases {
            let (c, s, _) = kind.code_and_status();
            assert_eq!((c, s.as_u16()), (code, status), "{kind:?}");
        }
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let e = RegistryError::internal(
            "failed to read /var/lib/secret/path",
            std::io::Error::other("EIO on /dev/sda"),
        );
        let resp = e.into_response();
        assert_eq!(resp.status(), 500);
    }
}
