//! distribution-spec: "Pushing blobs" — monolithic, POST+PUT, chunked, status, cancel, mount.

use berth_oci::Digest;

use crate::{TestRegistry, random_bytes};

fn start_session(r: &TestRegistry, name: &str) -> String {
    let resp = r.req("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"");
    assert_eq!(resp.status, 202);
    assert_eq!(resp.header("range"), Some("0-0"));
    assert!(resp.header("blob-upload-session-id").is_some());
    resp.header("location").unwrap().to_owned()
}

#[test]
fn monolithic_post_with_digest_creates_blob() {
    let r = TestRegistry::start();
    let data = random_bytes(1, 100_000);
    let d = Digest::sha256_of(&data);
    let resp = r.req(
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={d}"),
        &[],
        &data,
    );
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.header("location"),
        Some(format!("/v2/a/blobs/{d}").as_str())
    );
    assert_eq!(resp.header("docker-content-digest"), Some(d.as_str()));
    let got = r.get(&format!("/v2/a/blobs/{d}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.body, data);
}

#[test]
fn post_then_put_with_body() {
    let r = TestRegistry::start();
    let data = random_bytes(2, 5000);
    let d = Digest::sha256_of(&data);
    let loc = start_session(&r, "a/b");
    let resp = r.req("PUT", &format!("{loc}?digest={d}"), &[], &data);
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(r.get(&format!("/v2/a/b/blobs/{d}")).body, data);
}

#[test]
fn empty_blob_uploads() {
    let r = TestRegistry::start();
    let d = Digest::sha256_of(b"");
    let loc = start_session(&r, "a");
    let resp = r.req("PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(resp.status, 201, "{}", resp.text());
    let head = r.req("HEAD", &format!("/v2/a/blobs/{d}"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("0"));
}

#[test]
fn chunked_upload_in_order_then_out_of_order_416() {
    let r = TestRegistry::start();
    let data = random_bytes(3, 30_000);
    let d = Digest::sha256_of(&data);
    let loc = start_session(&r, "c");
    let p1 = r.req(
        "PATCH",
        &loc,
        &[
            ("content-range", "0-9999"),
            ("content-type", "application/octet-stream"),
        ],
        &data[..10_000],
    );
    assert_eq!(p1.status, 202);
    assert_eq!(p1.header("range"), Some("0-9999"));
    let loc = p1.header("location").unwrap().to_owned();

    // a gap: 416 with the current range and location, nothing appended
    let bad = r.req(
        "PATCH",
        &loc,
        &[("content-range", "10001-20000")],
        &data[10_001..20_001],
    );
    assert_eq!(bad.status, 416);
    assert_eq!(bad.header("range"), Some("0-9999"));
    assert_eq!(bad.header("location"), Some(loc.as_str()));
    assert_eq!(bad.code(), "BLOB_UPLOAD_INVALID");
    // a repeat of the first chunk is out of order too
    let again = r.req(
        "PATCH",
        &loc,
        &[("content-range", "0-9999")],
        &data[..10_000],
    );
    assert_eq!(again.status, 416);

    let p2 = r.req(
        "PATCH",
        &loc,
        &[("content-range", "10000-19999")],
        &data[10_000..20_000],
    );
    assert_eq!(p2.status, 202);
    let status = r.get(&loc);
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-19999"));
    // final chunk with the PUT
    let fin = r.req(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("content-range", "20000-29999")],
        &data[20_000..],
    );
    assert_eq!(fin.status, 201, "{}", fin.text());
    assert_eq!(r.get(&format!("/v2/c/blobs/{d}")).body, data);
    // the session is gone
    assert_eq!(r.get(&loc).status, 404);
}

#[test]
fn streamed_patch_without_content_range() {
    let r = TestRegistry::start();
    let data = random_bytes(4, 70_000);
    let d = Digest::sha256_of(&data);
    let loc = start_session(&r, "s");
    assert_eq!(r.req("PATCH", &loc, &[], &data[..50_000]).status, 202);
    assert_eq!(r.req("PATCH", &loc, &[], &data[50_000..]).status, 202);
    assert_eq!(
        r.req("PUT", &format!("{loc}?digest={d}"), &[], b"").status,
        201
    );
}

#[test]
fn wrong_digest_refused_and_nothing_stored() {
    let r = TestRegistry::start();
    let data = random_bytes(5, 1000);
    let wrong = Digest::sha256_of(b"something else");
    let loc = start_session(&r, "w");
    let resp = r.req("PUT", &format!("{loc}?digest={wrong}"), &[], &data);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "DIGEST_INVALID");
    assert_eq!(r.get(&format!("/v2/w/blobs/{wrong}")).status, 404);
    let real = Digest::sha256_of(&data);
    assert_eq!(r.get(&format!("/v2/w/blobs/{real}")).status, 404);
    assert!(r.stored_blobs().is_empty(), "{:?}", r.stored_blobs());
    // the session was discarded
    assert_eq!(r.get(&loc).status, 404);
}

#[test]
fn put_without_digest_is_digest_invalid() {
    let r = TestRegistry::start();
    let loc = start_session(&r, "n");
    let resp = r.req("PUT", &loc, &[], b"abc");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "DIGEST_INVALID");
}

#[test]
fn invalid_and_unsupported_digests() {
    let r = TestRegistry::start();
    for bad in [
        "sha256:XYZ",
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        let resp = r.req(
            "POST",
            &format!("/v2/x/blobs/uploads/?digest={bad}"),
            &[],
            b"x",
        );
        assert_eq!(resp.status, 400, "{bad}");
        assert_eq!(resp.code(), "DIGEST_INVALID", "{bad}");
        let get = r.get(&format!("/v2/x/blobs/{bad}"));
        assert_eq!(get.status, 400, "{bad}");
    }
}

#[test]
fn sha512_blob() {
    let r = TestRegistry::start();
    let data = random_bytes(6, 3000);
    let d = Digest::of(berth_oci::Algorithm::Sha512, &data);
    let resp = r.req(
        "POST",
        &format!("/v2/x/blobs/uploads/?digest={d}"),
        &[],
        &data,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(r.get(&format!("/v2/x/blobs/{d}")).body, data);
}

#[test]
fn cancel_removes_session() {
    let r = TestRegistry::start();
    let loc = start_session(&r, "c");
    assert_eq!(r.req("PATCH", &loc, &[], b"partial").status, 202);
    assert_eq!(r.req("DELETE", &loc, &[], b"").status, 204);
    let gone = r.get(&loc);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(r.req("DELETE", &loc, &[], b"").status, 404);
}

#[test]
fn unknown_and_hostile_session_ids() {
    let r = TestRegistry::start();
    for id in ["nope", "..", "a..b%2f"] {
        let resp = r.get(&format!("/v2/x/blobs/uploads/{id}"));
        assert_eq!(resp.status, 404, "{id}");
        assert_eq!(resp.code(), "BLOB_UPLOAD_UNKNOWN");
    }
}

#[test]
fn mount_201_when_readable_202_otherwise() {
    let r = TestRegistry::start();
    let d = r.push_blob("src/repo", b"shared layer");
    let ok = r.req(
        "POST",
        &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
        &[],
        b"",
    );
    assert_eq!(ok.status, 201);
    assert_eq!(
        ok.header("location"),
        Some(format!("/v2/dst/blobs/{d}").as_str())
    );
    assert_eq!(r.get(&format!("/v2/dst/blobs/{d}")).body, b"shared layer");
    // unknown source repository, unknown digest, invalid from: a new session instead
    let missing = Digest::sha256_of(b"not here");
    for q in [
        format!("mount={d}&from=nowhere"),
        format!("mount={missing}&from=src/repo"),
        format!("mount={d}&from=..%2Fetc"),
        "mount=garbage&from=src/repo".to_owned(),
    ] {
        let resp = r.req("POST", &format!("/v2/dst2/blobs/uploads/?{q}"), &[], b"");
        assert_eq!(resp.status, 202, "{q}");
        assert!(resp.header("location").unwrap().contains("/blobs/uploads/"));
    }
}

#[test]
fn upload_session_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("registry");
    let data = random_bytes(7, 40_000);
    let d = Digest::sha256_of(&data);
    let loc = {
        let r = TestRegistry::on_root(&root, Default::default());
        let loc = start_session(&r, "resume");
        assert_eq!(
            r.req(
                "PATCH",
                &loc,
                &[("content-range", "0-19999")],
                &data[..20_000]
            )
            .status,
            202
        );
        loc
    }; // server stopped: the in-memory hash state is gone
    let r = TestRegistry::on_root(&root, Default::default());
    let status = r.get(&loc);
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-19999"));
    assert_eq!(
        r.req(
            "PATCH",
            &loc,
            &[("content-range", "20000-39999")],
            &data[20_000..]
        )
        .status,
        202
    );
    let fin = r.req("PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(fin.status, 201, "{}", fin.text());
    assert_eq!(r.get(&format!("/v2/resume/blobs/{d}")).body, data);
}

#[test]
fn concurrent_uploads_of_the_same_blob() {
    let r = std::sync::Arc::new(TestRegistry::start());
    let data = std::sync::Arc::new(random_bytes(8, 200_000));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let r = r.clone();
            let data = data.clone();
            std::thread::spawn(move || r.push_blob(&format!("repo{i}"), &data))
        })
        .collect();
    let digests: Vec<Digest> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(r.get(&format!("/v2/repo{i}/blobs/{d}")).body, *data);
    }
    assert!(r.stored_blobs().iter().all(|(_, ok)| *ok));
}

/// Issue 13 §3.1: one client with push rights cannot fill the disk with one upload:
/// beyond `storage.max_upload_bytes` an upload is refused with 413 SIZE_INVALID and its data
/// is removed.
#[test]
fn uploads_over_the_size_limit_are_413_and_discarded() {
    let mut config = berth_registry::Config::default();
    config.storage.max_upload_bytes = 1 << 20;
    let r = TestRegistry::with_config(config);
    let big = random_bytes(31, (1 << 20) + 1);
    let d = Digest::sha256_of(&big);
    let resp = r.req(
        "POST",
        &format!("/v2/lim/blobs/uploads/?digest={d}"),
        &[],
        &big,
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(resp.code(), "SIZE_INVALID");
    assert_eq!(
        r.req("HEAD", &format!("/v2/lim/blobs/{d}"), &[], b"")
            .status,
        404
    );

    // chunked: the chunk that crosses the limit ends the session
    let loc = start_session(&r, "lim");
    let half = 700 * 1024;
    let resp = r.req(
        "PATCH",
        &loc,
        &[("content-range", &format!("0-{}", half - 1))],
        &big[..half],
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let loc = resp.header("location").unwrap().to_owned();
    let resp = r.req(
        "PATCH",
        &loc,
        &[("content-range", &format!("{half}-{}", big.len() - 1))],
        &big[half..],
    );
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(resp.code(), "SIZE_INVALID");
    let status = r.get(&loc);
    assert_eq!(status.status, 404, "the session is gone: {}", status.text());
    assert_eq!(status.code(), "BLOB_UPLOAD_UNKNOWN");
    let uploads = r.root.join("v1/repositories/lim/_uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "upload data left behind: {left:?}");

    // exactly the limit is accepted
    let fits = &big[..1 << 20];
    r.push_blob("lim", fits);
}

/// Issue 13 §3.1: below `storage.min_free_bytes` of free space, writes are refused with 503
/// UNAVAILABLE and `Retry-After` (not 500 UNKNOWN), and no session is created.
#[test]
fn writes_below_the_free_space_reserve_are_503_with_retry_after() {
    let mut config = berth_registry::Config::default();
    config.storage.min_free_bytes = u64::MAX;
    let r = TestRegistry::with_config(config);
    let data = random_bytes(32, 1000);
    let d = Digest::sha256_of(&data);
    for (method, path) in [
        ("POST", "/v2/full/blobs/uploads/".to_owned()),
        ("POST", format!("/v2/full/blobs/uploads/?digest={d}")),
    ] {
        let resp = r.req(method, &path, &[], &data);
        assert_eq!(resp.status, 503, "{method} {path}: {}", resp.text());
        assert_eq!(resp.code(), "UNAVAILABLE");
        assert_eq!(resp.header("retry-after"), Some("60"));
        assert!(resp.text().contains("free"), "{}", resp.text());
    }
    assert!(
        !r.root.join("v1/repositories/full/_uploads").exists(),
        "a refused upload created a session"
    );
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []});
    let resp = r.req(
        "PUT",
        "/v2/full/manifests/t",
        &[("content-type", "application/vnd.oci.image.index.v1+json")],
        m.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("60"));
    // reads still work
    assert_eq!(r.get("/v2/").status, 200);
}
