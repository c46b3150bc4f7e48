//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>` (distribution-spec:
//! "Pulling manifests", "Pushing Manifests", "Pushing Manifests with Subject", "Deleting
//! tags", "Deleting Manifests").
//!
//! Manifests are stored byte-exact as blobs and served with the media type they were pushed
//! with. A pushed manifest must name only blobs (and, for an index, manifests) already in
//! the repository, except its `subject`; one with a `subject` is recorded in the subject's
//! referrers list and answered with `OCI-Subject`. This module reads and checks the request
//! (size limit, digest, media type, tags); storing is [`crate::storage::manifests`].

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_oci::{Algorithm, Digest, ManifestInfo, validate_tag};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use crate::error::{ErrorKind, RegistryError, Result};
use crate::handlers::http::{content_length, empty, query_pairs};
use crate::state::App;
use crate::storage::Driver;

/// How much of an oversized manifest body is read and discarded before answering 413.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// A reference is a digest when it contains `:` (tags cannot).
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(reference: &str) -> Result<Reference> {
    if reference.contains(':') {
        return crate::handlers::parse_digest(reference).map(Reference::Digest);
    }
    validate_tag(reference).map_err(|e| {
        RegistryError::new(ErrorKind::ManifestInvalid, e.to_string())
            .detail(json!({ "tag": reference }))
    })?;
    Ok(Reference::Tag(reference.to_owned()))
}

/// The digest `reference` names, and whether it was a tag (read from storage).
async fn resolve<D: Driver>(app: &App<D>, name: &str, reference: &str) -> Result<(Digest, bool)> {
    // A reference that is neither a digest nor a valid tag names no manifest: 404
    // MANIFEST_UNKNOWN, as distribution answers (its route does not match) and clients
    // expect from a pull. Only a push of such a reference is a client error (400).
    let parsed = match parse_reference(reference) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::ManifestInvalid => {
            return Err(RegistryError::manifest_unknown(reference));
        }
        Err(e) => return Err(e),
    };
    match parsed {
        Reference::Digest(d) => Ok((d, false)),
        Reference::Tag(t) => app
            .storage
            .repository(name)
            .tags()
            .get(&t)
            .await?
            .map(|d| (d, true))
            .ok_or_else(|| RegistryError::manifest_unknown(reference)),
    }
}

pub async fn get<D: Driver>(
    app: &App<D>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response> {
    let (d, by_tag) = resolve(app, name, reference).await?;
    let manifests = app.storage.repository(name).manifests();
    // By a tag just read from storage, the cached content can stand for the revision record
    // (one storage request per GET instead of two; see `Manifests::tagged_from_cache`).
    let (meta, content) = match by_tag.then(|| manifests.tagged_from_cache(&d)).flatten() {
        Some((meta, content)) => (meta, Some(content)),
        None => match manifests.revision(&d).await? {
            Some(meta) => (meta, None),
            None => return Err(RegistryError::manifest_unknown(reference)),
        },
    };
    let mut resp = if head {
        Response::new(Body::empty())
    } else {
        let content = match content {
            Some(c) => c,
            None => manifests.content(&d, reference).await?,
        };
        Response::new(Body::from(content))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    if let Ok(v) = HeaderValue::from_str(&meta.media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&meta.digest) {
        h.insert("docker-content-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.digest)) {
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}

pub async fn put<D: Driver>(
    app: &App<D>,
    name: &str,
    reference: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let reference = parse_reference(reference)?;
    let mut tags = Vec::new();
    if let Reference::Tag(t) = &reference {
        tags.push(t.clone());
    }
    for (k, v) in query_pairs(query) {
        if k == "tag" {
            validate_tag(&v).map_err(|e| {
                RegistryError::new(ErrorKind::ManifestInvalid, e.to_string())
                    .detail(json!({ "tag": v }))
            })?;
            if !tags.contains(&v) {
                tags.push(v);
            }
        }
    }
    let max = app.config.storage.max_manifest_bytes;
    let too_large = |size: String| {
        RegistryError::new(
            ErrorKind::ManifestTooLarge,
            format!("manifest of {size} bytes exceeds this registry's limit of {max} bytes"),
        )
        .detail(json!({ "limit": max }))
    };
    // Read (bounded) even a body we will refuse: answering before the client has sent it
    // makes most clients report a broken pipe instead of the 413.
    let declared_too_large = content_length(headers).is_some_and(|len| len > max);
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut total: u64 = 0;
    while let Some(frame) = stream.next().await {
        let chunk = frame.map_err(|e| {
            RegistryError::new(
                ErrorKind::ManifestInvalid,
                format!("failed to read manifest body: {e}"),
            )
        })?;
        total += chunk.len() as u64;
        if total > max + DRAIN_LIMIT {
            break;
        }
        if !declared_too_large && total <= max {
            buf.extend_from_slice(&chunk);
        }
    }
    app.metrics.record_bytes_in("manifest", total);
    if declared_too_large || total > max {
        return Err(too_large(if total > max + DRAIN_LIMIT {
            format!("more than {total}")
        } else {
            total.to_string()
        }));
    }
    app.check_free_space()?;
    let bytes: Bytes = buf.freeze();
    let alg = match &reference {
        Reference::Digest(d) => d.algorithm(),
        Reference::Tag(_) => Algorithm::Sha256,
    };
    let digest = Digest::of(alg, &bytes);
    if let Reference::Digest(want) = &reference
        && want != &digest
    {
        return Err(RegistryError::digest_invalid(format!(
            "manifest body has digest {digest}, not {want}"
        ))
        .detail(json!({ "digest": want.to_string(), "actual": digest.to_string() })));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim())
        // a generic type says nothing about the manifest: let its mediaType field decide
        .filter(|v| {
            !v.is_empty()
                && !v.eq_ignore_ascii_case("application/json")
                && !v.eq_ignore_ascii_case("application/octet-stream")
        });
    let info = ManifestInfo::parse(&bytes, content_type)
        .map_err(|e| RegistryError::new(ErrorKind::ManifestInvalid, e.to_string()))?;

    let subject = app
        .storage
        .repository(name)
        .manifests()
        .put(bytes, &digest, &info, &tags)
        .await?;
    let mut h = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
    ];
    if let Some(s) = subject {
        h.push(("oci-subject", s.to_string()));
    }
    for t in tags {
        h.push(("oci-tag", t));
    }
    Ok(empty(StatusCode::CREATED, &h))
}

pub async fn delete<D: Driver>(app: &App<D>, name: &str, reference: &str) -> Result<Response> {
    if !app.config.storage.delete_enabled {
        return Err(RegistryError::new(
            ErrorKind::Unsupported,
            "deletion is disabled on this registry (storage.delete_enabled = false)",
        ));
    }
    let repo = app.storage.repository(name);
    match parse_reference(reference)? {
        Reference::Tag(t) => repo.tags().delete(&t).await?,
        Reference::Digest(d) => repo.manifests().delete(&d, reference).await?,
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}
