//! `GET /v2/<name>/tags/list?n=&last=` (distribution-spec: "Listing Tags"): lexically sorted,
//! paginated, with a `Link: <…>; rel="next"` header when more tags follow.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::Result;
use crate::handlers::http::{json_response, query_get};
use crate::handlers::{paginate, parse_n};
use crate::state::App;
use crate::storage::Driver;

pub async fn list<D: Driver>(app: &App<D>, name: &str, query: &str) -> Result<Response> {
    let all = app.storage.repository(name).tags().list().await?;
    let n = parse_n(query)?;
    let last = query_get(query, "last");
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
