//! distribution-spec: "Pulling blobs", "Checking if content exists", "Deleting blobs".

use berth_oci::Digest;

use crate::{TestRegistry, random_bytes};

#[test]
fn head_and_get_headers() {
    let r = TestRegistry::start();
    let data = random_bytes(10, 12_345);
    let d = r.push_blob("p", &data);
    let head = r.req("HEAD", &format!("/v2/p/blobs/{d}"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("12345"));
    assert_eq!(head.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        head.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let get = r.get(&format!("/v2/p/blobs/{d}"));
    assert_eq!(get.body, data);
    assert_eq!(get.header("etag"), Some(format!("\"{d}\"").as_str()));
    let cached = r.req(
        "GET",
        &format!("/v2/p/blobs/{d}"),
        &[("if-none-match", &format!("\"{d}\""))],
        b"",
    );
    assert_eq!(cached.status, 304);
}

#[test]
fn unknown_blob_is_404_blob_unknown() {
    let r = TestRegistry::start();
    let d = Digest::sha256_of(b"missing");
    let resp = r.get(&format!("/v2/p/blobs/{d}"));
    assert_eq!(resp.status, 404);
    assert_eq!(resp.code(), "BLOB_UNKNOWN");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        r.req("HEAD", &format!("/v2/p/blobs/{d}"), &[], b"").status,
        404
    );
}

#[test]
fn blobs_are_scoped_by_repository() {
    let r = TestRegistry::start();
    let d = r.push_blob("team-a/app", b"secret layer");
    assert_eq!(r.get(&format!("/v2/team-b/app/blobs/{d}")).status, 404);
}

#[test]
fn range_requests() {
    let r = TestRegistry::start();
    let data = random_bytes(11, 1000);
    let d = r.push_blob("r", &data);
    let path = format!("/v2/r/blobs/{d}");
    let part = r.req("GET", &path, &[("range", "bytes=100-199")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(part.body, &data[100..200]);
    let tail = r.req("GET", &path, &[("range", "bytes=900-")], b"");
    assert_eq!(tail.body, &data[900..]);
    let suffix = r.req("GET", &path, &[("range", "bytes=-10")], b"");
    assert_eq!(suffix.body, &data[990..]);
    let bad = r.req("GET", &path, &[("range", "bytes=1000-")], b"");
    assert_eq!(bad.status, 416);
    assert_eq!(bad.header("content-range"), Some("bytes */1000"));
}

#[test]
fn delete_blob_then_404_and_405_when_disabled() {
    let r = TestRegistry::start();
    let d = r.push_blob("del", b"bye");
    assert_eq!(
        r.req("DELETE", &format!("/v2/del/blobs/{d}"), &[], b"")
            .status,
        202
    );
    assert_eq!(r.get(&format!("/v2/del/blobs/{d}")).status, 404);
    assert_eq!(
        r.req("DELETE", &format!("/v2/del/blobs/{d}"), &[], b"")
            .status,
        404
    );

    let mut cfg = berth_registry::Config::default();
    cfg.storage.delete_enabled = false;
    let r = TestRegistry::with_config(cfg);
    let d = r.push_blob("keep", b"stay");
    let resp = r.req("DELETE", &format!("/v2/keep/blobs/{d}"), &[], b"");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.code(), "UNSUPPORTED");
    assert_eq!(r.get(&format!("/v2/keep/blobs/{d}")).status, 200);
}

#[test]
fn base_endpoint_and_unknown_routes() {
    let r = TestRegistry::start();
    let base = r.get("/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(r.get("/v2/a/unknown").status, 404);
    assert_eq!(r.req("PUT", "/v2/a/tags/list", &[], b"").status, 405);
    let metrics = r.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains(
            "berth_registry_requests_total{route=\"base\",method=\"GET\",status=\"200\"} 1"
        )
    );
}

/// distribution's code for a `Range` outside the blob is RANGE_INVALID (416), not
/// BLOB_UNKNOWN: the blob exists, so a client must not treat it as missing.
#[test]
fn unsatisfiable_range_is_range_invalid_416() {
    let r = TestRegistry::start();
    let d = r.push_blob("rng", &random_bytes(12, 100));
    for range in ["bytes=100-", "bytes=500-600"] {
        let bad = r.req(
            "GET",
            &format!("/v2/rng/blobs/{d}"),
            &[("range", range)],
            b"",
        );
        assert_eq!(bad.status, 416, "{range}: {}", bad.text());
        assert_eq!(bad.code(), "RANGE_INVALID", "{range}: {}", bad.text());
        assert_eq!(bad.header("content-range"), Some("bytes */100"));
    }
}
