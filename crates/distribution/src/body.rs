//! Request and response bodies: bodies that can be produced again for a retry, streaming
//! from a caller's reader, reading responses with limits and idle timeouts, and turning an
//! unexpected response into an [`Error`] with the registry's error codes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::Response;
use http::header::RETRY_AFTER;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncRead, ReadBuf};

use crate::credentials::Credential;
use crate::error::{BoxError, Error, RegistryErrorCode};
use crate::retry::parse_retry_after;
use crate::transport::Op;

/// A request body as hyper sends it.
pub(crate) type ReqBody = UnsyncBoxBody<Bytes, io::Error>;

/// Longest error body read to find the registry's error codes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An I/O error of the caller's content source, marked so it is not mistaken for a network
/// failure and retried.
#[derive(Debug, thiserror::Error)]
#[error("reading the content source failed")]
pub(crate) struct SourceRead(#[source] pub io::Error);

/// A body that can be produced again for each attempt.
#[derive(Clone)]
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes, produced by `open` for each attempt.
    Reopen {
        len: u64,
        open: Arc<dyn Fn() -> BoxFuture<'static, io::Result<ReqBody>> + Send + Sync>,
    },
}

/// The slowest upload rate waited for before a request with a body counts as timed out.
const MIN_UPLOAD_RATE: u64 = 32 * 1024;

impl Body {
    /// How long a request carrying this body may take: `base`, plus time to send the body
    /// at [`MIN_UPLOAD_RATE`].
    pub(crate) fn timeout(&self, base: Duration) -> Duration {
        let len = match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Reopen { len, .. } => *len,
        };
        base + Duration::from_secs(len / MIN_UPLOAD_RATE)
    }

    pub(crate) async fn make(&self) -> io::Result<ReqBody> {
        match self {
            Body::Empty => Ok(Empty::new().map_err(|e| match e {}).boxed_unsync()),
            Body::Bytes(b) => Ok(Full::new(b.clone()).map_err(|e| match e {}).boxed_unsync()),
            Body::Reopen { open, .. } => open().await,
        }
    }
}

/// The next data chunk of `body`; `Ok(None)` at its end. Waits at most `idle` for it.
pub(crate) async fn next_chunk(
    body: &mut Incoming,
    idle: Duration,
) -> Result<Option<Bytes>, BoxError> {
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(format!("no data for {idle:?}").into()),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(Box::new(e)),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The whole body of `resp`, at most `limit` bytes.
pub(crate) async fn read_body(
    op: &Op,
    resp: Response<Incoming>,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, Error> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    loop {
        match next_chunk(&mut body, idle).await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > limit {
                    return Err(Error::InvalidResponse {
                        operation: op.name,
                        target: op.target.clone(),
                        reason: format!("body larger than {limit} bytes"),
                    });
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(out)),
            Err(source) => {
                return Err(Error::Transport {
                    operation: op.name,
                    target: op.target.clone(),
                    source,
                });
            }
        }
    }
}

/// The registry's error codes in an `{"errors":[…]}` body (distribution-spec "Error Codes").
pub(crate) fn parse_error_codes(body: &[u8]) -> Vec<RegistryErrorCode> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(b) = serde_json::from_slice::<Body>(body) else {
        return Vec::new();
    };
    b.errors
        .into_iter()
        .take(8)
        .map(|e| RegistryErrorCode {
            code: e.code.chars().take(64).collect(),
            message: e.message.chars().take(200).collect(),
        })
        .collect()
}

/// The error for a response whose status the operation did not expect.
pub(crate) async fn status_error(
    op: &Op,
    resp: Response<Incoming>,
    credential: Option<&Credential>,
    idle: Duration,
) -> Error {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let codes = match read_body(op, resp, MAX_ERROR_BODY, idle).await {
        Ok(b) => parse_error_codes(&b),
        Err(_) => Vec::new(),
    };
    let (operation, target) = (op.name, op.target.clone());
    match status {
        401 => Error::Unauthorized {
            operation,
            target,
            had_credentials: credential.is_some(),
            username: credential.map(|c| c.username().to_owned()),
            codes,
        },
        403 => Error::Denied {
            operation,
            target,
            codes,
        },
        404 => Error::NotFound {
            operation,
            target,
            codes,
        },
        429 => Error::TooManyRequests {
            operation,
            target,
            retry_after,
        },
        _ => Error::Status {
            operation,
            target,
            status,
            codes,
        },
    }
}

/// A reader of exactly `len` bytes of `inner`: fewer is an `UnexpectedEof` error.
pub(crate) struct Exact<R> {
    inner: tokio::io::Take<R>,
    remaining: u64,
}

impl<R: AsyncRead> Exact<R> {
    pub(crate) fn new(inner: R, len: u64) -> Exact<R> {
        use tokio::io::AsyncReadExt;
        Exact {
            inner: inner.take(len),
            remaining: len,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Exact<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.remaining == 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("content source ended {} bytes early", self.remaining),
                    )));
                }
                self.remaining = self.remaining.saturating_sub(n);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// A streaming request body reading `reader`; read errors are marked [`SourceRead`].
pub(crate) fn stream_body<R: AsyncRead + Send + 'static>(reader: R) -> ReqBody {
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map(|r| {
        r.map(Frame::data)
            .map_err(|e| io::Error::other(SourceRead(e)))
    });
    StreamBody::new(stream).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let codes = parse_error_codes(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}},{"code":"X"}]}"#,
        );
        assert_eq!(codes.len(), 2);
        assert_eq!(codes[0].to_string(), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(codes[1].to_string(), "X");
        assert!(parse_error_codes(b"<html>").is_empty());
        assert!(parse_error_codes(b"{\"errors\": 3}").is_empty());
    }

    #[tokio::test]
    async fn exact_reader_refuses_short_sources() {
        use tokio::io::AsyncReadExt;
        let mut ok = Exact::new(&b"hello world"[..], 5);
        let mut s = String::new();
        ok.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello");
        let mut short = Exact::new(&b"hi"[..], 5);
        let e = short.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
