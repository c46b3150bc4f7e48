//! distribution-spec: "Pulling manifests", "Pushing Manifests", subject/referrers, tags,
//! deletes.

use berth_oci::Digest;
use serde_json::json;

use crate::{TestRegistry, random_bytes};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn put(r: &TestRegistry, name: &str, reference: &str, ct: &str, body: &[u8]) -> crate::Resp {
    r.req(
        "PUT",
        &format!("/v2/{name}/manifests/{reference}"),
        &[("content-type", ct)],
        body,
    )
}

#[test]
fn push_by_tag_pull_byte_exact_by_tag_and_digest() {
    let r = TestRegistry::start();
    let (d, bytes) = r.push_image("img", "v1", &[b"layer one", b"layer two"]);
    for reference in ["v1".to_owned(), d.to_string()] {
        let get = r.get(&format!("/v2/img/manifests/{reference}"));
        assert_eq!(get.status, 200);
        assert_eq!(get.body, bytes, "byte-exact");
        assert_eq!(get.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(get.header("docker-content-digest"), Some(d.as_str()));
        let head = r.req("HEAD", &format!("/v2/img/manifests/{reference}"), &[], b"");
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-length"),
            Some(bytes.len().to_string().as_str())
        );
    }
    let unknown = r.get("/v2/img/manifests/v2");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "MANIFEST_UNKNOWN");
}

#[test]
fn push_by_digest_checks_the_digest_and_multi_tag() {
    let r = TestRegistry::start();
    let (_, bytes) = r.push_image("m", "base", &[b"x"]);
    let d = Digest::sha256_of(&bytes);
    let wrong = Digest::sha256_of(b"other");
    let resp = put(&r, "m", wrong.as_str(), OCI_MANIFEST, &bytes);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "DIGEST_INVALID");
    let resp = r.req(
        "PUT",
        &format!("/v2/m/manifests/{d}?tag=a&tag=b"),
        &[("content-type", OCI_MANIFEST)],
        &bytes,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        resp.header("location"),
        Some(format!("/v2/m/manifests/{d}").as_str())
    );
    let tags = r.get("/v2/m/tags/list").json();
    assert_eq!(tags["tags"], json!(["a", "b", "base"]));
}

#[test]
fn manifest_naming_missing_blob_is_refused_and_not_stored() {
    let r = TestRegistry::start();
    let config = r.push_blob("mb", b"{}");
    let missing = Digest::sha256_of(b"never pushed");
    let m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing.to_string(), "size": 12}],
    });
    let resp = put(&r, "mb", "t", OCI_MANIFEST, m.to_string().as_bytes());
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(
        resp.json()["errors"][0]["detail"]["digest"],
        json!(missing.to_string())
    );
    assert_eq!(r.get("/v2/mb/manifests/t").status, 404);
}

#[test]
fn malformed_manifests_are_manifest_invalid() {
    let r = TestRegistry::start();
    r.push_blob("bad", b"{}");
    for body in [&b"{\"schemaVersion\":"[..], b"[1,2]", b"not json", b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"layers\":\"x\"}"] {
        let resp = put(&r, "bad", "t", OCI_MANIFEST, body);
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(resp.code(), "MANIFEST_INVALID");
    }
    let resp = put(&r, "bad", "-bad-tag", OCI_MANIFEST, b"{}");
    assert_eq!(resp.status, 400);
    assert!(
        r.get("/v2/bad/tags/list").json()["tags"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn manifest_size_limit_4mib_accepted_larger_413() {
    let r = TestRegistry::start();
    let config = r.push_blob("big", b"{}");
    let make = |target: usize| {
        let mut m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
            "layers": [],
            "annotations": {"pad": ""},
        });
        let base = m.to_string().len();
        m["annotations"]["pad"] = json!("x".repeat(target - base));
        let s = m.to_string();
        assert_eq!(s.len(), target);
        s.into_bytes()
    };
    let exact = make(4 * 1024 * 1024);
    let ok = put(&r, "big", "four", OCI_MANIFEST, &exact);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(r.get("/v2/big/manifests/four").body.len(), exact.len());
    let over = make(4 * 1024 * 1024 + 1);
    let resp = put(&r, "big", "over", OCI_MANIFEST, &over);
    assert_eq!(resp.status, 413);
    assert_eq!(r.get("/v2/big/manifests/over").status, 404);
}

#[test]
fn unknown_media_types_and_docker_schema2_are_stored_and_served() {
    let r = TestRegistry::start();
    let config = r.push_blob("u", br#"{"architecture":"amd64","os":"linux"}"#);
    let layer = r.push_blob("u", b"layer");
    let docker = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config.to_string(), "size": 37},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.to_string(), "size": 5}],
    }).to_string();
    let resp = put(
        &r,
        "u",
        "docker",
        "application/vnd.docker.distribution.manifest.v2+json",
        docker.as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        r.get("/v2/u/manifests/docker").header("content-type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    let odd = br#"{"schemaVersion":2,"vendor":"thing"}"#;
    let resp = put(&r, "u", "odd", "application/vnd.example.thing.v1+json", odd);
    assert_eq!(resp.status, 201, "{}", resp.text());
    let got = r.get("/v2/u/manifests/odd");
    assert_eq!(got.body, odd);
    assert_eq!(
        got.header("content-type"),
        Some("application/vnd.example.thing.v1+json")
    );
}

#[test]
fn index_requires_its_child_manifests() {
    let r = TestRegistry::start();
    let (child, bytes) = r.push_image("multi", "amd64", &[b"l"]);
    let absent = Digest::sha256_of(b"absent manifest");
    let index = |digests: &[&Digest]| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": digests.iter().map(|d| json!({
                "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": bytes.len(),
                "platform": {"architecture": "amd64", "os": "linux"}
            })).collect::<Vec<_>>(),
        })
        .to_string()
    };
    let bad = put(
        &r,
        "multi",
        "latest",
        OCI_INDEX,
        index(&[&child, &absent]).as_bytes(),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "MANIFEST_BLOB_UNKNOWN");
    let good = put(
        &r,
        "multi",
        "latest",
        OCI_INDEX,
        index(&[&child]).as_bytes(),
    );
    assert_eq!(good.status, 201, "{}", good.text());
    assert_eq!(
        r.get("/v2/multi/manifests/latest").header("content-type"),
        Some(OCI_INDEX)
    );
}

#[test]
fn subject_referrers_and_artifact_type_filter() {
    let r = TestRegistry::start();
    let (subject, subject_bytes) = r.push_image("ref", "v1", &[b"app"]);
    let empty = r.push_blob("ref", b"{}");
    let artifact = |at: &str, payload: &[u8]| {
        let blob = r.push_blob("ref", payload);
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": blob.to_string(), "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_bytes.len()},
            "annotations": {"org.example.kind": at},
        })
        .to_string()
        .into_bytes()
    };
    let sig = artifact("application/vnd.example.signature", b"sig");
    let sbom = artifact("application/spdx+json", b"sbom");
    let sig_d = Digest::sha256_of(&sig);
    for m in [&sig, &sbom] {
        let d = Digest::sha256_of(m);
        let resp = put(&r, "ref", d.as_str(), OCI_MANIFEST, m);
        assert_eq!(resp.status, 201, "{}", resp.text());
        assert_eq!(resp.header("oci-subject"), Some(subject.as_str()));
    }
    let all = r.get(&format!("/v2/ref/referrers/{subject}"));
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some(OCI_INDEX));
    assert!(all.header("oci-filters-applied").is_none());
    let idx = all.json();
    assert_eq!(idx["mediaType"], json!(OCI_INDEX));
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);
    let filtered = r.get(&format!(
        "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.signature"
    ));
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let list = filtered.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], json!(sig_d.to_string()));
    assert_eq!(
        list[0]["artifactType"],
        json!("application/vnd.example.signature")
    );
    assert_eq!(list[0]["size"], json!(sig.len()));
    assert_eq!(
        list[0]["annotations"]["org.example.kind"],
        json!("application/vnd.example.signature")
    );

    // deleting the referrer removes it from the list
    assert_eq!(
        r.req("DELETE", &format!("/v2/ref/manifests/{sig_d}"), &[], b"")
            .status,
        202
    );
    let after = r.get(&format!("/v2/ref/referrers/{subject}")).json();
    assert_eq!(after["manifests"].as_array().unwrap().len(), 1);

    // unknown subject: an empty index
    let none = r.get(&format!(
        "/v2/ref/referrers/{}",
        Digest::sha256_of(b"nobody")
    ));
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["manifests"], json!([]));
    assert_eq!(r.get("/v2/ref/referrers/sha256:nothex").status, 400);
}

#[test]
fn subject_need_not_exist() {
    let r = TestRegistry::start();
    let empty = r.push_blob("s", b"{}");
    let ghost = Digest::sha256_of(b"ghost subject");
    let m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-test",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": ghost.to_string(), "size": 10},
    })
    .to_string();
    let resp = put(&r, "s", "t", OCI_MANIFEST, m.as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.header("oci-subject"), Some(ghost.as_str()));
}

#[test]
fn tags_list_pagination_with_link() {
    let r = TestRegistry::start();
    let (_, bytes) = r.push_image("t", "v0", &[b"x"]);
    for tag in ["b", "a", "d", "c", "e"] {
        assert_eq!(put(&r, "t", tag, OCI_MANIFEST, &bytes).status, 201);
    }
    let all = r.get("/v2/t/tags/list").json();
    assert_eq!(
        all,
        json!({"name": "t", "tags": ["a", "b", "c", "d", "e", "v0"]})
    );
    let p1 = r.get("/v2/t/tags/list?n=2");
    assert_eq!(p1.json()["tags"], json!(["a", "b"]));
    assert_eq!(
        p1.header("link"),
        Some("</v2/t/tags/list?n=2&last=b>; rel=\"next\"")
    );
    let p2 = r.get("/v2/t/tags/list?n=2&last=b");
    assert_eq!(p2.json()["tags"], json!(["c", "d"]));
    let p4 = r.get("/v2/t/tags/list?n=2&last=d");
    assert_eq!(p4.json()["tags"], json!(["e", "v0"]));
    assert!(p4.header("link").is_none());
    assert_eq!(r.get("/v2/t/tags/list?n=0").json()["tags"], json!([]));
    let unknown = r.get("/v2/nope/tags/list");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "NAME_UNKNOWN");
}

#[test]
fn delete_tag_and_manifest() {
    let r = TestRegistry::start();
    let (d, bytes) = r.push_image("d", "one", &[b"x"]);
    assert_eq!(put(&r, "d", "two", OCI_MANIFEST, &bytes).status, 201);
    // by tag: only the tag goes
    assert_eq!(r.req("DELETE", "/v2/d/manifests/one", &[], b"").status, 202);
    assert_eq!(r.get("/v2/d/manifests/one").status, 404);
    assert_eq!(r.get("/v2/d/manifests/two").status, 200);
    assert_eq!(r.req("DELETE", "/v2/d/manifests/one", &[], b"").status, 404);
    // by digest: the manifest and every tag pointing at it
    assert_eq!(
        r.req("DELETE", &format!("/v2/d/manifests/{d}"), &[], b"")
            .status,
        202
    );
    assert_eq!(r.get(&format!("/v2/d/manifests/{d}")).status, 404);
    assert_eq!(r.get("/v2/d/manifests/two").status, 404);
    assert_eq!(r.get("/v2/d/tags/list").json()["tags"], json!([]));
    let again = r.req("DELETE", &format!("/v2/d/manifests/{d}"), &[], b"");
    assert_eq!(again.status, 404);
    assert_eq!(again.code(), "MANIFEST_UNKNOWN");
}

#[test]
fn catalog_lists_repositories_with_pagination() {
    let r = TestRegistry::start();
    for name in ["b/x", "a", "b/x/y", "c"] {
        r.push_image(name, "t", &[&random_bytes(1, 10)]);
    }
    let all = r.get("/v2/_catalog").json();
    assert_eq!(all["repositories"], json!(["a", "b/x", "b/x/y", "c"]));
    let p = r.get("/v2/_catalog?n=2");
    assert_eq!(p.json()["repositories"], json!(["a", "b/x"]));
    assert_eq!(
        p.header("link"),
        Some("</v2/_catalog?n=2&last=b/x>; rel=\"next\"")
    );
}

/// Issue 13 §3.5: a reference that is neither a digest nor a valid tag names no manifest:
/// `GET`/`HEAD` answer 404 MANIFEST_UNKNOWN (as distribution does), `PUT` still 400.
#[test]
fn get_and_head_of_an_invalid_tag_are_404_manifest_unknown() {
    let r = TestRegistry::start();
    let (_, bytes) = r.push_image("inv", "v1", &[b"layer"]);
    let bad = "-not.a-tag";
    let long = "a".repeat(129);
    for reference in [bad, long.as_str(), "t%21"] {
        let get = r.get(&format!("/v2/inv/manifests/{reference}"));
        assert_eq!(get.status, 404, "GET {reference}: {}", get.text());
        assert_eq!(get.code(), "MANIFEST_UNKNOWN", "GET {reference}");
        let head = r.req("HEAD", &format!("/v2/inv/manifests/{reference}"), &[], b"");
        assert_eq!(head.status, 404, "HEAD {reference}");
    }
    let put = put(&r, "inv", bad, OCI_MANIFEST, &bytes);
    assert_eq!(put.status, 400, "{}", put.text());
    assert_eq!(put.code(), "MANIFEST_INVALID");
}

/// Issue 13 §3.3: a descriptor whose `size` is not the stored content's size is refused,
/// for the config, a layer, and a child manifest of an index; the subject is exempt.
#[test]
fn descriptor_size_mismatch_is_manifest_invalid() {
    let r = TestRegistry::start();
    let config_bytes = br#"{"architecture":"amd64","os":"linux"}"#;
    let config = r.push_blob("sz", config_bytes);
    let layer = r.push_blob("sz", b"layer bytes");
    let manifest = |config_size: usize, layer_size: usize| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_size}],
        })
        .to_string()
    };
    for (cs, ls, what) in [
        (config_bytes.len() + 1, 11, "config too large"),
        (config_bytes.len(), 10, "layer too small"),
        (config_bytes.len(), 1 << 30, "layer far too large"),
    ] {
        let resp = put(&r, "sz", "t", OCI_MANIFEST, manifest(cs, ls).as_bytes());
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_eq!(resp.code(), "MANIFEST_INVALID", "{what}");
        assert!(resp.text().contains("size"), "{what}: {}", resp.text());
    }
    assert_eq!(
        r.get("/v2/sz/manifests/t").status,
        404,
        "nothing was tagged"
    );

    let good = manifest(config_bytes.len(), 11);
    let resp = put(&r, "sz", "t", OCI_MANIFEST, good.as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.text());
    let child = Digest::sha256_of(good.as_bytes());
    let index = |size: usize| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child.to_string(), "size": size}],
        })
        .to_string()
    };
    let resp = put(&r, "sz", "idx", OCI_INDEX, index(good.len() - 1).as_bytes());
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.code(), "MANIFEST_INVALID");
    let resp = put(&r, "sz", "idx", OCI_INDEX, index(good.len()).as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.text());

    // The subject is exempt from existence checks, and so from size checks: a wrong size
    // for a subject that exists is still accepted (clients may push referrers first).
    let referrer = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_bytes.len()},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": child.to_string(), "size": 1},
    });
    let resp = put(
        &r,
        "sz",
        "sig",
        OCI_MANIFEST,
        referrer.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
}

/// A malformed `n` on tags/list and the catalog is PAGINATION_NUMBER_INVALID (400), not
/// BLOB_UPLOAD_INVALID (which is about uploads).
#[test]
fn bad_pagination_number_is_pagination_number_invalid() {
    let r = TestRegistry::start();
    r.push_image("pg", "v1", &[b"pg layer"]);
    for path in [
        "/v2/pg/tags/list?n=abc",
        "/v2/pg/tags/list?n=-1",
        "/v2/_catalog?n=x",
    ] {
        let bad = r.get(path);
        assert_eq!(bad.status, 400, "{path}: {}", bad.text());
        assert_eq!(
            bad.code(),
            "PAGINATION_NUMBER_INVALID",
            "{path}: {}",
            bad.text()
        );
    }
}
