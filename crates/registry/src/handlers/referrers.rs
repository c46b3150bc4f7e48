//! `GET /v2/<name>/referrers/<digest>?artifactType=` (distribution-spec: "Listing
//! Referrers"): an image index of the manifests whose `subject` is `<digest>`, filtered by
//! `artifactType` with `OCI-Filters-Applied`; an empty index when there are none.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::{App, query_get};
use crate::error::Result;
use crate::handlers::parse_digest;
use crate::paths;
use crate::storage::Driver;

pub async fn list<D: Driver>(
    app: &App<D>,
    name: &str,
    digest: &str,
    query: &str,
) -> Result<Response> {
    let subject = parse_digest(digest)?;
    let filter = query_get(query, "artifactType").filter(|s| !s.is_empty());
    let dir = paths::referrers_dir(name, &subject);
    let mut manifests: Vec<Value> = Vec::new();
    for entry in app.list_or_empty(&dir).await? {
        let raw = match app.driver.get_content(&format!("{dir}/{entry}")).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => continue, // deleted meanwhile
            Err(e) => return Err(e.into()),
        };
        let Ok(desc) = serde_json::from_slice::<Value>(&raw) else {
            tracing::warn!(repo = name, entry, "skipping corrupt referrer record");
            continue;
        };
        if let Some(f) = &filter
            && desc.get("artifactType").and_then(Value::as_str) != Some(f.as_str())
        {
            continue;
        }
        manifests.push(desc);
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media_type::OCI_INDEX,
        "manifests": manifests,
    })
    .to_string();
    let len = body.len();
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if filter.is_some() {
        h.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
