//! Blob uploads (distribution-spec: "Pushing blobs", "Pushing a blob monolithically",
//! "Pushing a blob in chunks", "Mounting a blob from another repository").
//!
//! This module speaks HTTP: `Content-Range` checks, the body stream, per-upload and
//! free-space limits, draining refused bodies. The session itself — storage, hashing,
//! verification, commit — is [`crate::storage::uploads`].

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use berth_oci::Digest;
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::error::{ErrorKind, RegistryError, Result};
use crate::handlers::http::{content_length, empty, query_get};
use crate::handlers::parse_digest;
use crate::state::App;
use crate::storage::{Driver, Session};

/// The most of a refused request's body read before answering (then the connection closes).
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Bytes gathered before handing a buffer to the writer task.
const WRITE_BATCH: usize = 256 * 1024;

/// The largest blob a request that carries all of it (`POST ?digest=`, or the `PUT` of a
/// session that holds nothing yet, with a `Content-Length`) commits from memory
/// (`Uploads::commit_whole`): stored by one conditional create under its digest rather than
/// written to the session and moved. Well under an S3 part (the S3 writer holds a part in
/// memory anyway), so concurrent small pushes cost no more memory than chunked ones.
const WHOLE_COMMIT_MAX: u64 = 1024 * 1024;

fn session_headers(name: &str, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("range", format!("0-{}", size.saturating_sub(1))),
        ("blob-upload-session-id", id.to_owned()),
        ("docker-upload-uuid", id.to_owned()),
    ]
}

fn created(name: &str, d: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{d}")),
            ("docker-content-digest", d.to_string()),
        ],
    )
}

/// `POST /v2/<name>/blobs/uploads/` — start a session, upload monolithically (`?digest=`),
/// or mount from another repository (`?mount=&from=`).
pub async fn start<D: Driver>(
    app: &App<D>,
    name: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    if let (Some(mount), Some(from)) = (query_get(query, "mount"), query_get(query, "from"))
        && let Some(r) = try_mount(app, name, &mount, &from, headers).await?
    {
        return Ok(r);
    }
    let digest = match query_get(query, "digest")
        .map(|d| parse_digest(&d))
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    if let Err(e) = app.check_free_space() {
        drain(body).await;
        return Err(e);
    }
    if let Some(d) = &digest
        && let Some(len) = whole_length(app, headers)
    {
        return commit_whole(app, name, None, d, len, body).await;
    }
    let id = match app.storage.repository(name).uploads().create().await {
        Ok(id) => id,
        Err(e) => {
            drain(body).await;
            return Err(e.into());
        }
    };
    match digest {
        None => Ok(empty(StatusCode::ACCEPTED, &session_headers(name, &id, 0))),
        Some(d) => {
            let started = std::time::SystemTime::now();
            let size = append(app, name, &id, 0, headers, body).await?;
            // created just now by this request: its marker and what was appended
            let session = Session {
                size,
                started: Some(started),
                tidy: true,
                has_data: true,
            };
            complete(app, name, &id, &d, session).await
        }
    }
}

/// A mount succeeds only when the caller may pull from `from` and the blob is linked there;
/// otherwise the spec says to fall back to a new upload session.
async fn try_mount<D: Driver>(
    app: &App<D>,
    name: &str,
    mount: &str,
    from: &str,
    headers: &HeaderMap,
) -> Result<Option<Response>> {
    let Ok(d) = Digest::parse(mount) else {
        return Ok(None);
    };
    if berth_oci::validate_repository_name(from).is_err() || !app.may_pull(headers, from) {
        return Ok(None);
    }
    if !app.storage.repository(name).blobs().mount(from, &d).await? {
        return Ok(None);
    }
    Ok(Some(created(name, &d)))
}

async fn session<D: Driver>(app: &App<D>, name: &str, id: &str) -> Result<Session> {
    Ok(app.storage.repository(name).uploads().session(id).await?)
}

/// `Content-Range: <start>-<end>` (also accepting `bytes=a-b` and `bytes a-b/total`).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b >= a).then_some((a, b))
}

fn out_of_order(name: &str, id: &str, size: u64, why: String) -> RegistryError {
    let mut e = RegistryError::new(ErrorKind::ChunkOutOfOrder, why);
    for (k, v) in session_headers(name, id, size) {
        e = e.header(header::HeaderName::from_static(k), &v);
    }
    e
}

/// Check that a chunk's `Content-Range` (when given) continues the upload at `current` and
/// agrees with its `Content-Length`; 416 with the session's `Range` otherwise.
fn check_chunk(name: &str, id: &str, current: u64, headers: &HeaderMap) -> Result<()> {
    let content_length = content_length(headers);
    if let Some(cr) = headers.get(header::CONTENT_RANGE) {
        let text = cr.to_str().unwrap_or("");
        let Some((a, b)) = parse_content_range(text) else {
            return Err(out_of_order(
                name,
                id,
                current,
                format!("invalid Content-Range {text:?}: expected <start>-<end>"),
            ));
        };
        if a != current {
            return Err(out_of_order(
                name,
                id,
                current,
                format!(
                    "chunk starts at {a} but the upload has {current} bytes; resume from {current}"
                ),
            ));
        }
        if let Some(len) = content_length
            && b - a + 1 != len
        {
            return Err(out_of_order(
                name,
                id,
                current,
                format!("Content-Range {a}-{b} does not match Content-Length {len}"),
            ));
        }
    }
    Ok(())
}

/// Read and discard what is left of a request body — at most [`DRAIN_LIMIT`] bytes — so an
/// error answer reaches a client that is still sending instead of a reset connection.
async fn drain(body: Body) {
    drain_stream(body.into_data_stream()).await;
}

async fn drain_stream(mut stream: axum::body::BodyDataStream) {
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// Remove an upload session and everything it holds (see `Uploads::discard`).
async fn discard<D: Driver>(app: &App<D>, name: &str, id: &str) {
    app.storage.repository(name).uploads().discard(id).await;
}

/// Why an append stopped before the end of the body.
enum Stop {
    TooLarge,
    LowSpace(RegistryError),
    Storage(crate::storage::DriverError),
}

fn too_large(limit: u64, size: u64) -> RegistryError {
    RegistryError::upload_too_large(
        limit,
        format!(
            "the upload would hold {size} bytes, more than this registry's limit of {limit} bytes per blob (storage.max_upload_bytes); the upload was discarded"
        ),
    )
}

/// Append the request body to the session after checking `Content-Range` continues it.
/// Returns the session's new size.
async fn append<D: Driver>(
    app: &App<D>,
    name: &str,
    id: &str,
    current: u64,
    headers: &HeaderMap,
    body: Body,
) -> Result<u64> {
    check_chunk(name, id, current, headers)?;
    let content_length = content_length(headers);
    if content_length == Some(0) {
        return Ok(current);
    }
    let limit = app.config.storage.max_upload_bytes;
    if let Some(len) = content_length
        && current.saturating_add(len) > limit
    {
        discard(app, name, id).await;
        drain(body).await;
        return Err(too_large(limit, current.saturating_add(len)));
    }
    if let Err(e) = app.check_free_space() {
        drain(body).await;
        return Err(e);
    }
    let space_baseline = app.driver().available_bytes();
    let uploads = app.storage.repository(name).uploads();
    let mut writer = match uploads.writer(id, current).await {
        Ok(w) => w,
        Err(e) => {
            drain(body).await;
            return Err(e.into());
        }
    };
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::with_capacity(WRITE_BATCH);
    let mut received: u64 = 0;
    let mut body_error = None;
    let mut stop = None;
    while let Some(frame) = stream.next().await {
        let chunk = match frame {
            Ok(c) => c,
            Err(e) => {
                body_error = Some(e);
                break;
            }
        };
        received += chunk.len() as u64;
        if current.saturating_add(received) > limit {
            stop = Some(Stop::TooLarge);
            break;
        }
        buf.extend_from_slice(&chunk);
        if buf.len() >= WRITE_BATCH {
            // the reserve holds while the upload streams, not only when it starts
            if let Err(e) = app.check_free_space_while_writing(space_baseline, received) {
                stop = Some(Stop::LowSpace(e));
                break;
            }
            if let Err(e) = writer.write(buf.split().freeze()).await {
                stop = Some(Stop::Storage(e));
                break;
            }
        }
    }
    if stop.is_none()
        && !buf.is_empty()
        && let Err(e) = writer.write(buf.freeze()).await
    {
        stop = Some(Stop::Storage(e));
    }
    // Whatever arrived is a prefix of the client's data; a status request reports it and
    // the client resumes from there. Durability is for the final commit: a session lost in
    // a machine crash is answered BLOB_UPLOAD_UNKNOWN, and the client restarts it.
    let closed = writer.close().await;
    app.metrics.record_bytes_in("upload", received);
    let outcome = match (stop, closed) {
        (None, Ok(closed)) => Ok(closed),
        (None, Err(e)) => Err(Stop::Storage(e)),
        (Some(stop), _) => Err(stop),
    };
    let closed = match outcome {
        Ok(closed) => closed,
        // A write that failed (storage full, I/O error) or went over a limit leaves the
        // session unusable: remove it now so its space is free again, not at the next GC.
        Err(stop) => {
            discard(app, name, id).await;
            drain_stream(stream).await;
            return Err(match stop {
                Stop::TooLarge => too_large(limit, current.saturating_add(received)),
                Stop::LowSpace(e) => e,
                Stop::Storage(e) if e.is_storage_full() => {
                    tracing::error!(repo = name, error = %crate::error::error_chain(&e), "the registry's storage is full");
                    RegistryError::storage_full(
                        "the registry's storage is full; the upload was discarded, retry later",
                    )
                }
                Stop::Storage(e) => e.into(),
            });
        }
    };
    let size = closed.size;
    if let Some(e) = body_error {
        return Err(RegistryError::new(
            ErrorKind::BlobUploadInvalid,
            format!(
                "request body ended early after {received} bytes ({e}); the upload can resume from byte {size}"
            ),
        ));
    }
    if let Some(len) = content_length
        && received != len
    {
        return Err(RegistryError::new(
            ErrorKind::SizeInvalid,
            format!("received {received} bytes but Content-Length was {len}"),
        ));
    }
    uploads.keep_hash(closed);
    Ok(size)
}

/// The body's length when the request carries a whole blob small enough for
/// [`WHOLE_COMMIT_MAX`] (and within `max_upload_bytes`), without a `Content-Range`.
fn whole_length<D: Driver>(app: &App<D>, headers: &HeaderMap) -> Option<u64> {
    let len = content_length(headers)?;
    (len > 0
        && len <= WHOLE_COMMIT_MAX
        && len <= app.config.storage.max_upload_bytes
        && !headers.contains_key(header::CONTENT_RANGE))
    .then_some(len)
}

/// Read a body of `len` bytes (its `Content-Length`) into memory.
async fn read_whole<D: Driver>(app: &App<D>, len: u64, body: Body) -> Result<bytes::Bytes> {
    let limit = usize::try_from(len).unwrap_or(usize::MAX);
    // one byte more than announced is enough to tell a body that runs over
    let read = axum::body::to_bytes(body, limit.saturating_add(1)).await;
    let content = match read {
        Ok(c) => c,
        Err(e) => {
            return Err(RegistryError::new(
                ErrorKind::BlobUploadInvalid,
                format!("reading the request body failed ({e}); retry the upload"),
            ));
        }
    };
    app.metrics.record_bytes_in("upload", content.len() as u64);
    if content.len() as u64 != len {
        return Err(RegistryError::new(
            ErrorKind::SizeInvalid,
            format!(
                "received {} bytes but Content-Length was {len}",
                content.len()
            ),
        ));
    }
    Ok(content)
}

/// The answer to a committed upload (and its duration, for the metrics).
/// A blob the request carries whole (`len` bytes, see [`whole_length`]): read, then created
/// under its digest by one conditional create, ending `session` if there is one.
async fn commit_whole<D: Driver>(
    app: &App<D>,
    name: &str,
    session: Option<(&str, crate::storage::uploads::Session)>,
    d: &Digest,
    len: u64,
    body: Body,
) -> Result<Response> {
    let content = read_whole(app, len, body).await?;
    let committed = app
        .storage
        .repository(name)
        .uploads()
        .commit_whole(session, d, content)
        .await?;
    Ok(done(app, name, d, committed))
}

fn done<D: Driver>(
    app: &App<D>,
    name: &str,
    d: &Digest,
    committed: crate::storage::uploads::Committed,
) -> Response {
    if let Some(t) = committed.duration {
        app.metrics.record_upload(t);
    }
    created(name, d)
}

/// Verify the session's data against `expected` and, when it matches, make it a blob.
async fn complete<D: Driver>(
    app: &App<D>,
    name: &str,
    id: &str,
    expected: &Digest,
    session: Session,
) -> Result<Response> {
    let committed = app
        .storage
        .repository(name)
        .uploads()
        .commit(id, expected, session)
        .await?;
    if let Some(d) = committed.duration {
        app.metrics.record_upload(d);
    }
    Ok(created(name, expected))
}

/// `GET /v2/<name>/blobs/uploads/<id>` — the session's offset.
pub async fn status<D: Driver>(app: &App<D>, name: &str, id: &str) -> Result<Response> {
    let size = session(app, name, id).await?.size;
    Ok(empty(
        StatusCode::NO_CONTENT,
        &session_headers(name, id, size),
    ))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>` — append a chunk.
pub async fn patch<D: Driver>(
    app: &App<D>,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let checked = match session(app, name, id).await {
        Ok(s) => check_chunk(name, id, s.size, headers).map(|()| s.size),
        Err(e) => Err(e),
    };
    let current = match checked {
        Ok(c) => c,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    let size = append(app, name, id, current, headers, body).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        &session_headers(name, id, size),
    ))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=` — optional last chunk, then verify and commit.
pub async fn finish<D: Driver>(
    app: &App<D>,
    name: &str,
    id: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let checked = async {
        let current = session(app, name, id).await?;
        let Some(d) = query_get(query, "digest") else {
            return Err(RegistryError::digest_invalid(
                "the digest query parameter is required to complete an upload",
            ));
        };
        let d = parse_digest(&d)?;
        check_chunk(name, id, current.size, headers)?;
        Ok((current, d))
    }
    .await;
    let (current, d) = match checked {
        Ok(v) => v,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    if current.size == 0
        && let Some(len) = whole_length(app, headers)
    {
        return commit_whole(app, name, Some((id, current)), &d, len, body).await;
    }
    let size = append(app, name, id, current.size, headers, body).await?;
    complete(app, name, id, &d, Session { size, ..current }).await
}

/// `DELETE /v2/<name>/blobs/uploads/<id>` — cancel.
pub async fn cancel<D: Driver>(app: &App<D>, name: &str, id: &str) -> Result<Response> {
    app.storage.repository(name).uploads().cancel(id).await?;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-9"), Some((0, 9)));
        assert_eq!(parse_content_range("bytes=10-19"), Some((10, 19)));
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 19)));
        assert_eq!(parse_content_range("9-0"), None);
        assert_eq!(parse_content_range("abc"), None);
    }
}
