//! `GET /v2/<name>/tags/list?n=&last=` (distribution-spec: "Listing Tags"): lexically sorted,
//! paginated, with a `Link: <…>; rel="next"` header when more tags follow.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::app::{App, json_response, query_get};
use crate::error::{RegistryError, Result};
use crate::handlers::{paginate, parse_n};
use crate::paths;
use crate::storage::Driver;

pub async fn list<D: Driver>(app: &App<D>, name: &str, query: &str) -> Result<Response> {
    if !app.repo_exists(name).await? {
        return Err(RegistryError::name_unknown(name));
    }
    let n = parse_n(query)?;
    let last = query_get(query, "last");
    let all = app.list_or_empty(&paths::tags_dir(name)).await?;
    let (page, more) = paginate(all, n, last.as_deref());
    let next = match (more, page.last(), n) {
        (true, Some(l), Some(n)) => Some(format!(
            "</v2/{name}/tags/list?n={n}&last={l}>; rel=\"next\""
        )),
        _ => None,
    };
    let mut resp = json_response(
        StatusCode::OK,
        json!({ "name": name, "tags": page }).to_string(),
    );
    if let Some(link) = next.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(axum::http::header::LINK, link);
    }
    Ok(resp)
}
