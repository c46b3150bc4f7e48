//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>` (distribution-spec:
//! "Pulling manifests", "Pushing Manifests", "Pushing Manifests with Subject", "Deleting
//! tags", "Deleting Manifests").
//!
//! Manifests are stored byte-exact as blobs and served with the media type they were pushed
//! with. A pushed manifest must name only blobs (and, for an index, manifests) already in
//! the repository, except its `subject`; one with a `subject` is recorded in the subject's
//! referrers list and answered with `OCI-Subject`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_oci::{Algorithm, Digest, ManifestInfo, validate_tag};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use crate::app::{App, content_length, empty, query_pairs};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::paths;
use crate::repo::RevisionMeta;
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

async fn resolve<D: Driver>(app: &App<D>, name: &str, reference: &str) -> Result<Digest> {
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
        Reference::Digest(d) => Ok(d),
        Reference::Tag(t) => app
            .tag_target(name, &t)
            .await?
            .ok_or_else(|| RegistryError::manifest_unknown(reference)),
    }
}

/// A descriptor must give the size of the content it names: a client trusting the manifest
/// would otherwise read a truncated or overlong blob. MANIFEST_INVALID, the spec's code for
/// a manifest that fails the registry's checks (distribution 2.8 does not compare sizes and
/// accepts such a manifest; SIZE_INVALID is for upload lengths).
fn check_size(d: &Digest, declared: u64, stored: u64, what: &str) -> Result<()> {
    if declared == stored {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::ManifestInvalid,
        format!(
            "descriptor of {what} {d} gives size {declared}, but the stored {what} has {stored} bytes; fix the manifest's size field"
        ),
    )
    .detail(json!({ "digest": d.to_string(), "size": declared, "stored": stored })))
}

pub async fn get<D: Driver>(
    app: &App<D>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response> {
    let d = resolve(app, name, reference).await?;
    let Some(meta) = app.revision(name, &d).await? else {
        return Err(RegistryError::manifest_unknown(reference));
    };
    let mut resp = if head {
        Response::new(Body::empty())
    } else {
        let bytes = match app.driver.get_content(&paths::blob_data(&d)).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(RegistryError::manifest_unknown(reference)),
            Err(e) => return Err(e.into()),
        };
        Response::new(Body::from(bytes))
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

    // Every referenced blob and child manifest must already be in this repository. From the
    // first touch below to the revision record, at most gc::MAX_PUSH_WINDOW may pass: that
    // bound is what makes a concurrent garbage collection safe (see gc.rs).
    let window = std::time::Instant::now();
    for desc in info.referenced_blobs() {
        let d = berth_oci::descriptor_digest(desc).map_err(|e| {
            RegistryError::new(
                ErrorKind::ManifestInvalid,
                format!("invalid descriptor: {e}"),
            )
        })?;
        let foreign = desc.urls().as_ref().is_some_and(|u| !u.is_empty());
        let Some(stored) = app.linked_blob_size(name, &d).await? else {
            if foreign {
                continue; // non-distributable layer fetched from its URLs
            }
            return Err(RegistryError::new(
                ErrorKind::ManifestBlobUnknown,
                format!(
                    "manifest references blob {d}, which is not in repository {name}; push it first"
                ),
            )
            .detail(json!({ "digest": d.to_string() })));
        };
        check_size(&d, desc.size(), stored, "blob")?;
        app.touch_blob(&d).await.map_err(|_| {
            RegistryError::new(
                ErrorKind::ManifestBlobUnknown,
                format!("blob {d} was removed"),
            )
            .detail(json!({ "digest": d.to_string() }))
        })?;
    }
    for desc in info.referenced_manifests() {
        let d = berth_oci::descriptor_digest(desc).map_err(|e| {
            RegistryError::new(
                ErrorKind::ManifestInvalid,
                format!("invalid descriptor: {e}"),
            )
        })?;
        let Some(child) = app.revision(name, &d).await? else {
            return Err(RegistryError::new(
                ErrorKind::ManifestBlobUnknown,
                format!("index references manifest {d}, which is not in repository {name}; push it first"),
            )
            .detail(json!({ "digest": d.to_string() })));
        };
        check_size(&d, desc.size(), child.size, "manifest")?;
        app.touch_blob(&d).await.ok();
    }

    let subject = match &info.subject {
        Some(s) => Some(berth_oci::descriptor_digest(s).map_err(|e| {
            RegistryError::new(ErrorKind::ManifestInvalid, format!("invalid subject: {e}"))
        })?),
        None => None,
    };

    // Content first, then the links that make it visible.
    if app.blob_size(&digest).await?.is_none() {
        app.driver
            .put_content(&paths::blob_data(&digest), bytes.clone())
            .await?;
    } else {
        app.touch_blob(&digest).await.ok();
    }
    app.link_blob(name, &digest).await?;
    let meta = RevisionMeta {
        digest: digest.to_string(),
        media_type: info.media_type.clone(),
        size: bytes.len() as u64,
        subject: subject.as_ref().map(|s| s.to_string()),
    };
    let meta_json = serde_json::to_vec(&meta)
        .map_err(|e| RegistryError::internal("failed to encode revision record", e))?;
    if let Some(s) = &subject {
        let mut desc = json!({
            "mediaType": info.media_type,
            "digest": digest.to_string(),
            "size": bytes.len(),
        });
        if let Some(at) = &info.artifact_type {
            desc["artifactType"] = json!(at);
        }
        if let Some(a) = &info.annotations
            && !a.is_empty()
        {
            desc["annotations"] = json!(a);
        }
        app.driver
            .put_content(
                &paths::referrer_entry(name, s, &digest),
                Bytes::from(desc.to_string()),
            )
            .await?;
    }
    if window.elapsed() > crate::gc::MAX_PUSH_WINDOW {
        return Err(RegistryError::new(
            ErrorKind::Unavailable,
            format!(
                "storing the manifest took longer than {:?}; it was not recorded so that a concurrent garbage collection cannot break it; retry the push",
                crate::gc::MAX_PUSH_WINDOW
            ),
        ));
    }
    app.driver
        .put_content(&paths::revision_link(name, &digest), Bytes::from(meta_json))
        .await?;
    for t in &tags {
        app.driver
            .put_content(&paths::tag_link(name, t), Bytes::from(digest.to_string()))
            .await?;
    }
    tracing::debug!(repo = name, digest = %digest, tags = ?tags, "manifest stored");
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
    match parse_reference(reference)? {
        Reference::Tag(t) => {
            if app.tag_target(name, &t).await?.is_none() {
                return Err(RegistryError::manifest_unknown(reference));
            }
            app.driver.delete(&paths::tag_dir(name, &t)).await?;
            Ok(empty(StatusCode::ACCEPTED, &[]))
        }
        Reference::Digest(d) => {
            let Some(meta) = app.revision(name, &d).await? else {
                return Err(RegistryError::manifest_unknown(reference));
            };
            // Tags first, so no tag ever points at a missing manifest.
            for t in app.list_or_empty(&paths::tags_dir(name)).await? {
                if app.tag_target(name, &t).await?.as_ref() == Some(&d) {
                    app.driver.delete(&paths::tag_dir(name, &t)).await.ok();
                }
            }
            if let Some(s) = meta.subject.as_deref().and_then(|s| Digest::parse(s).ok()) {
                app.driver
                    .delete(&paths::referrer_entry(name, &s, &d))
                    .await
                    .ok();
            }
            app.driver.delete(&paths::revision_link(name, &d)).await?;
            Ok(empty(StatusCode::ACCEPTED, &[]))
        }
    }
}
