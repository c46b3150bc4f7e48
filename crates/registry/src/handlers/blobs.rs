//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>` (distribution-spec: "Pulling blobs",
//! "Deleting blobs"), with single-range `Range` requests (RFC 9110 §14).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::error::{ErrorKind, RegistryError, Result};
use crate::handlers::http::empty;
use crate::handlers::parse_digest;
use crate::state::App;
use crate::storage::Driver;

const STREAM_CHUNK: usize = 256 * 1024;

/// A parsed `Range: bytes=…` header, resolved against the blob size.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// Serve the whole blob (no header, or one we do not honour such as multiple ranges).
    Full,
    /// Inclusive byte range.
    Part(u64, u64),
    Unsatisfiable,
}

pub(crate) fn parse_range(h: Option<&HeaderValue>, size: u64) -> RangeSpec {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else {
        return RangeSpec::Full;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // suffix range: last N bytes
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Full;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Part(size.saturating_sub(n), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Full;
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size - 1),
            _ => return RangeSpec::Full,
        }
    };
    RangeSpec::Part(start, end)
}

pub async fn get<D: Driver>(
    app: &App<D>,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response> {
    let d = parse_digest(digest)?;
    let blobs = app.storage.repository(name).blobs();
    let Some(size) = blobs.size(&d).await? else {
        return Err(RegistryError::blob_unknown(&d));
    };
    let etag = format!("\"{d}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok(empty(
            StatusCode::NOT_MODIFIED,
            &[("etag", etag), ("docker-content-digest", d.to_string())],
        ));
    }
    // an object store's presigned URL: the client downloads from it directly, sending
    // its Range there (distribution's `redirect` option)
    if !head && let Some(url) = blobs.redirect(&d).await? {
        let mut resp = empty(
            StatusCode::TEMPORARY_REDIRECT,
            &[("docker-content-digest", d.to_string())],
        );
        if let Ok(v) = HeaderValue::from_str(&url) {
            resp.headers_mut().insert(header::LOCATION, v);
            return Ok(resp);
        }
    }
    let range = parse_range(headers.get(header::RANGE), size);
    let (status, start, len) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeSpec::Unsatisfiable => {
            return Err(RegistryError::of(ErrorKind::RangeNotSatisfiable)
                .header(header::CONTENT_RANGE, &format!("bytes */{size}")));
        }
    };
    let mut resp = if head {
        Response::new(Body::empty())
    } else {
        let stream = blobs.stream(&d, start, len, STREAM_CHUNK).await?;
        Response::new(Body::from_stream(stream))
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
    if let Ok(v) = HeaderValue::from_str(d.as_ref()) {
        h.insert("docker-content-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {}-{}/{}", start, start + len - 1, size);
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

pub async fn delete<D: Driver>(app: &App<D>, name: &str, digest: &str) -> Result<Response> {
    if !app.config.storage.delete_enabled {
        return Err(RegistryError::new(
            ErrorKind::Unsupported,
            "deletion is disabled on this registry (storage.delete_enabled = false)",
        ));
    }
    let d = parse_digest(digest)?;
    // Only the repository's link goes; the content is shared and collected by `gc`.
    app.storage.repository(name).blobs().unlink(&d).await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, size: u64) -> RangeSpec {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(r("bytes=0-4", 10), RangeSpec::Part(0, 4));
        assert_eq!(r("bytes=5-", 10), RangeSpec::Part(5, 9));
        assert_eq!(r("bytes=5-100", 10), RangeSpec::Part(5, 9));
        assert_eq!(r("bytes=-3", 10), RangeSpec::Part(7, 9));
        assert_eq!(r("bytes=-30", 10), RangeSpec::Part(0, 9));
        assert_eq!(r("bytes=10-", 10), RangeSpec::Unsatisfiable);
        assert_eq!(r("bytes=0-0", 0), RangeSpec::Unsatisfiable);
        assert_eq!(r("bytes=0-1,3-4", 10), RangeSpec::Full);
        assert_eq!(r("items=0-1", 10), RangeSpec::Full);
        assert_eq!(r("bytes=4-2", 10), RangeSpec::Full);
    }
}
