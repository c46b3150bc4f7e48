//! Blob uploads (distribution-spec: "Pushing blobs", "Pushing a blob monolithically",
//! "Pushing a blob in chunks", "Mounting a blob from another repository").
//!
//! A session is `_uploads/<id>/` in storage: `startedat` marks it, `data` holds the bytes
//! received so far, so any replica — or this one after a restart — can continue it. Bytes
//! are hashed as they arrive when this process saw the session from its first byte
//! ([`PartialHash`]); otherwise the data is re-hashed from storage at the final `PUT`.
//! Content becomes a blob only after its digest is verified, by one atomic move.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use berth_oci::{Algorithm, Digest, Digester};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use crate::app::{App, PartialHash, empty, query_get};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::handlers::parse_digest;
use crate::paths;
use crate::storage::{Driver, UploadWriter};

/// The most of a refused request's body read before answering (then the connection closes).
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Upload sessions whose hash state is kept between requests.
const MAX_CACHED_HASHES: usize = 4096;

/// Bytes gathered before handing a buffer to the writer task.
const WRITE_BATCH: usize = 256 * 1024;

fn session_headers(name: &str, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("range", format!("0-{}", size.saturating_sub(1))),
        ("blob-upload-session-id", id.to_owned()),
        ("docker-upload-uuid", id.to_owned()),
    ]
}

fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    let id = uuid::Uuid::new_v4().to_string();
    // The session marker is scratch space like the data: written without fsync.
    let marked = async {
        let mut marker = app.driver.writer(&paths::upload_started(name, &id)).await?;
        marker.write(Bytes::from(now_millis().to_string())).await?;
        marker.commit(false).await
    }
    .await;
    if let Err(e) = marked {
        discard(app, name, &id).await;
        drain(body).await;
        return Err(e.into());
    }
    match digest {
        None => Ok(empty(StatusCode::ACCEPTED, &session_headers(name, &id, 0))),
        Some(d) => {
            append(app, name, &id, 0, headers, body).await?;
            complete(app, name, &id, &d).await
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
    if app.linked_blob_size(from, &d).await?.is_none() {
        return Ok(None);
    }
    app.touch_blob(&d).await?;
    app.link_blob(name, &d).await?;
    Ok(Some(created(name, &d)))
}

async fn session_size<D: Driver>(app: &App<D>, name: &str, id: &str) -> Result<u64> {
    if !valid_session_id(id) {
        return Err(RegistryError::upload_unknown(id));
    }
    match app.driver.stat(&paths::upload_started(name, id)).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Err(RegistryError::upload_unknown(id)),
        Err(e) => return Err(e.into()),
    }
    match app.driver.stat(&paths::upload_data(name, id)).await {
        Ok(i) => Ok(i.size),
        Err(e) if e.is_not_found() => Ok(0),
        Err(e) => Err(e.into()),
    }
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
    let content_length = crate::app::content_length(headers);
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

/// Remove an upload session and everything it holds (a failed write, an upload over the
/// limit): its space is free again at once, and the client starts a new upload.
async fn discard<D: Driver>(app: &App<D>, name: &str, id: &str) {
    if let Ok(mut m) = app.hashes.lock() {
        m.remove(id);
    }
    match app.driver.delete(&paths::upload_dir(name, id)).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            tracing::warn!(repo = name, session = id, error = %crate::error::error_chain(&e), "failed to remove a failed upload; the next upload purge removes it");
        }
    }
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
    let content_length = crate::app::content_length(headers);
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
    let space_baseline = app.driver.available_bytes();
    // Hash as we go only when we know the hash state at `current`.
    let mut partial = {
        let mut map = app.hashes.lock().map_err(|_| {
            RegistryError::internal(
                "upload hash cache poisoned",
                std::io::Error::other("poisoned"),
            )
        })?;
        match map.remove(id) {
            Some(p) if p.offset == current => Some(p),
            _ if current == 0 => Some(PartialHash {
                offset: 0,
                digester: Digester::new(Algorithm::Sha256),
            }),
            _ => None,
        }
    };
    let mut writer = match app.driver.writer(&paths::upload_data(name, id)).await {
        Ok(w) => w,
        Err(e) => {
            discard(app, name, id).await;
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
        if let Some(p) = partial.as_mut() {
            p.digester.update(&chunk);
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
    let committed = writer.commit(false).await;
    app.metrics.record_bytes_in("upload", received);
    let outcome = match (stop, committed) {
        (None, Ok(size)) => Ok(size),
        (None, Err(e)) => Err(Stop::Storage(e)),
        (Some(stop), _) => Err(stop),
    };
    let size = match outcome {
        Ok(size) => size,
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
    if let Some(mut p) = partial
        && size == current + received
    {
        p.offset = size;
        if let Ok(mut map) = app.hashes.lock() {
            // a cache, not state: forget everything rather than grow without bound when
            // clients abandon many sessions
            if map.len() >= MAX_CACHED_HASHES {
                map.clear();
            }
            map.insert(id.to_owned(), p);
        }
    }
    Ok(size)
}

/// Verify the session's data against `expected` and, when it matches, make it a blob.
async fn complete<D: Driver>(
    app: &App<D>,
    name: &str,
    id: &str,
    expected: &Digest,
) -> Result<Response> {
    let data = paths::upload_data(name, id);
    // Flush what the session holds to disk before anything can make it visible (this also
    // creates the file for an empty blob, where nothing was ever appended).
    let flushed = async { app.driver.writer(&data).await?.commit(true).await }.await;
    let size = match flushed {
        Ok(size) => size,
        Err(e) => {
            if e.is_storage_full() {
                discard(app, name, id).await;
            }
            return Err(e.into());
        }
    };
    let cached = app.hashes.lock().ok().and_then(|mut m| m.remove(id));
    let actual = match cached {
        Some(p) if p.offset == size && p.digester.algorithm() == expected.algorithm() => {
            p.digester.finalize()
        }
        _ => rehash(app, &data, expected.algorithm()).await?,
    };
    if &actual != expected {
        let _ = app.driver.delete(&paths::upload_dir(name, id)).await;
        return Err(RegistryError::digest_invalid(format!(
            "uploaded content has digest {actual}, not {expected}; the upload was discarded"
        ))
        .detail(
            serde_json::json!({ "digest": expected.to_string(), "actual": actual.to_string() }),
        ));
    }
    // The session ends here: remove its marker before the data moves, so a crash in between
    // leaves no session that looks resumable but has lost its bytes (a client then sees
    // BLOB_UPLOAD_UNKNOWN and HEADs or re-uploads the blob).
    let started = app
        .driver
        .get_content(&paths::upload_started(name, id))
        .await
        .ok()
        .and_then(|raw| String::from_utf8_lossy(&raw).trim().parse::<u64>().ok());
    match app.driver.delete(&paths::upload_started(name, id)).await {
        Ok(()) => {}
        // another request completed or cancelled this session meanwhile
        Err(e) if e.is_not_found() => return Err(RegistryError::upload_unknown(id)),
        Err(e) => return Err(e.into()),
    }
    if app.blob_size(expected).await?.is_some() {
        app.touch_blob(expected).await.ok();
    } else {
        app.driver
            .move_to(&data, &paths::blob_data(expected))
            .await?;
    }
    app.link_blob(name, expected).await?;
    if let Some(ms) = started {
        app.metrics
            .record_upload(Duration::from_millis(now_millis().saturating_sub(ms)));
    }
    let _ = app.driver.delete(&paths::upload_dir(name, id)).await;
    tracing::debug!(repo = name, digest = %expected, size, "blob committed");
    Ok(created(name, expected))
}

async fn rehash<D: Driver>(app: &App<D>, path: &str, alg: Algorithm) -> Result<Digest> {
    let (mut reader, _) = app.driver.reader(path, 0).await?;
    let mut digester = Digester::new(alg);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| RegistryError::internal(format!("failed to re-read upload {path}"), e))?;
        if n == 0 {
            break;
        }
        digester.update(&buf[..n]);
    }
    Ok(digester.finalize())
}

/// `GET /v2/<name>/blobs/uploads/<id>` — the session's offset.
pub async fn status<D: Driver>(app: &App<D>, name: &str, id: &str) -> Result<Response> {
    let size = session_size(app, name, id).await?;
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
    let checked = match session_size(app, name, id).await {
        Ok(current) => check_chunk(name, id, current, headers).map(|()| current),
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
        let current = session_size(app, name, id).await?;
        let Some(d) = query_get(query, "digest") else {
            return Err(RegistryError::digest_invalid(
                "the digest query parameter is required to complete an upload",
            ));
        };
        let d = parse_digest(&d)?;
        check_chunk(name, id, current, headers)?;
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
    append(app, name, id, current, headers, body).await?;
    complete(app, name, id, &d).await
}

/// `DELETE /v2/<name>/blobs/uploads/<id>` — cancel.
pub async fn cancel<D: Driver>(app: &App<D>, name: &str, id: &str) -> Result<Response> {
    session_size(app, name, id).await?;
    if let Ok(mut m) = app.hashes.lock() {
        m.remove(id);
    }
    match app.driver.delete(&paths::upload_dir(name, id)).await {
        Ok(()) => Ok(empty(StatusCode::NO_CONTENT, &[])),
        Err(e) if e.is_not_found() => Err(RegistryError::upload_unknown(id)),
        Err(e) => Err(e.into()),
    }
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

    #[test]
    fn session_ids() {
        assert!(valid_session_id("0b1c-22_ab"));
        assert!(!valid_session_id("../x"));
        assert!(!valid_session_id(""));
        assert!(!valid_session_id(&"a".repeat(65)));
    }
}
