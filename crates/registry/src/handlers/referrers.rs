//! `GET /v2/<name>/referrers/<digest>?artifactType=` (distribution-spec: "Listing
//! Referrers"): an image index of the manifests whose `subject` is `<digest>`, filtered by
//! `artifactType` with `OCI-Filters-Applied`; an empty index when there are none.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Result;
use crate::handlers::http::query_get;
use crate::handlers::parse_digest;
use crate::state::App;
use crate::storage::Driver;

pub async fn list<D: Driver>(
    app: &App<D>,
    name: &str,
    digest: &str,
    query: &str,
) -> Result<Response> {
    let subject = parse_digest(digest)?;
    let filter = query_get(query, "artifactType").filter(|s| !s.is_empty());
    let manifests = app
        .storage
        .repository(name)
        .referrers()
        .list(&subject, filter.as_deref())
        .await?;
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
