//! `GET /v2/_catalog?n=&last=` — the repository list. The spec reserves `_catalog` for
//! historical use and lets registries implement it; docker, skopeo and crane still call it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::error::Result;
use crate::handlers::http::{json_response, query_get};
use crate::handlers::{paginate, parse_n};
use crate::state::App;
use crate::storage::Driver;

pub async fn list<D: Driver>(app: &App<D>, query: &str) -> Result<Response> {
    let n = parse_n(query)?;
    let last = query_get(query, "last");
    let (page, more) = paginate(app.storage.repositories().await?, n, last.as_deref());
    let mut resp = json_response(StatusCode::OK, json!({ "repositories": page }).to_string());
    if let (true, Some(l), Some(n)) = (more, page.last(), n)
        && let Ok(v) =
            HeaderValue::from_str(&format!("</v2/_catalog?n={n}&last={l}>; rel=\"next\""))
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    Ok(resp)
}
