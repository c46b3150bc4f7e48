//! Manifest PUTs that must be refused with the distribution-spec error code and leave
//! nothing behind, and the 4 MiB size boundary.

use berth_test_support::{
    Digest, Http, Layer, MEDIA_INDEX, MEDIA_MANIFEST, Registry, RegistryOptions,
};
use serde_json::json;

use crate::common::{build_image, push_image, snapshot};

const MIB: usize = 1024 * 1024;

/// PUT `body` as `repo:tag`, expect `status` with `code`, and check the storage is untouched
/// and neither the tag nor the digest resolves.
#[track_caller]
fn refused_and_nothing_stored(
    registry: &Registry,
    http: &Http,
    (repo, tag, media_type, body): (&str, &str, &str, &[u8]),
    (status, code): (u16, Option<&str>),
) {
    let before = snapshot(&registry.storage_root());
    let r = http.put_manifest(repo, tag, media_type, body);
    r.expect_status(status, &format!("PUT manifest {repo}:{tag}"));
    if let Some(code) = code {
        assert!(
            r.error_codes().iter().any(|c| c == code),
            "expected error code {code}, got {}",
            r.text()
        );
    }
    assert_eq!(
        snapshot(&registry.storage_root()),
        before,
        "a refused manifest changed the storage"
    );
    http.get(&format!("/v2/{repo}/manifests/{tag}"))
        .expect_status(404, "the refused tag");
    let d = Digest::sha256_of(body);
    http.head(&format!("/v2/{repo}/manifests/{d}"))
        .expect_status(404, "the refused manifest by digest");
}

#[test]
fn malformed_manifest_json_is_refused_with_manifest_invalid() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    // a repository with content, so that "nothing stored" is checked against a real tree
    let img = push_image(&http, "bad/json", "good", 1, &[100]);
    let config = &img.blobs[0];
    let bodies: [&[u8]; 4] = [
        b"not json at all",
        b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":",
        b"[]",
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:nothex","size":1},"layers":[]}"#,
    ];
    for (i, body) in bodies.iter().enumerate() {
        refused_and_nothing_stored(
            &registry,
            &http,
            ("bad/json", &format!("t{i}"), MEDIA_MANIFEST, body),
            (400, Some("MANIFEST_INVALID")),
        );
    }
    // sanity: a well-formed one naming the same config is accepted
    let ok = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(),
                   "size": http.get_verified_blob("bad/json", config).len()},
        "layers": [],
    });
    http.put_manifest("bad/json", "ok", MEDIA_MANIFEST, ok.to_string().as_bytes())
        .expect_status(201, "a well-formed manifest");
}

#[test]
fn manifest_naming_missing_blobs_is_refused_with_manifest_blob_unknown() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let layers = [Layer::random(1, 2000), Layer::random(2, 3000)];
    let (manifest, blobs) = build_image(&layers);
    // push the config and the first layer only
    for (d, data) in &blobs[..2] {
        assert_eq!(&http.push_blob("bad/missing", data), d);
    }
    refused_and_nothing_stored(
        &registry,
        &http,
        ("bad/missing", "v1", MEDIA_MANIFEST, &manifest),
        (400, Some("MANIFEST_BLOB_UNKNOWN")),
    );

    // a blob that exists in another repository is still unknown to this one
    let (d, data) = &blobs[2];
    assert_eq!(&http.push_blob("bad/elsewhere", data), d);
    refused_and_nothing_stored(
        &registry,
        &http,
        ("bad/missing", "v1", MEDIA_MANIFEST, &manifest),
        (400, Some("MANIFEST_BLOB_UNKNOWN")),
    );

    // an index naming a manifest the repository does not have
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": Digest::sha256_of(&manifest).to_string(),
            "size": manifest.len(),
            "platform": {"os": "linux", "architecture": "amd64"},
        }],
    });
    refused_and_nothing_stored(
        &registry,
        &http,
        (
            "bad/missing",
            "index",
            MEDIA_INDEX,
            index.to_string().as_bytes(),
        ),
        (400, Some("MANIFEST_BLOB_UNKNOWN")),
    );
}

/// A manifest of exactly `size` bytes naming `config` (an annotation pads it).
fn manifest_of_size(config: &Digest, config_size: usize, size: usize) -> Vec<u8> {
    let build = |pad: usize| {
        json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config.to_string(), "size": config_size},
            "layers": [],
            "annotations": {"padding": "x".repeat(pad)},
        })
        .to_string()
        .into_bytes()
    };
    let overhead = build(0).len();
    let m = build(size - overhead);
    assert_eq!(m.len(), size);
    m
}

#[test]
fn manifest_over_4_mib_is_refused_with_413_and_exactly_4_mib_is_accepted() {
    let registry = Registry::start(RegistryOptions::new());
    let http = registry.http();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = http.push_blob("big/manifest", config);

    let too_big = manifest_of_size(&cd, config.len(), 4 * MIB + 1);
    refused_and_nothing_stored(
        &registry,
        &http,
        ("big/manifest", "too-big", MEDIA_MANIFEST, &too_big),
        (413, None),
    );

    let exact = manifest_of_size(&cd, config.len(), 4 * MIB);
    let r = http.put_manifest("big/manifest", "exact", MEDIA_MANIFEST, &exact);
    r.expect_status(201, "a manifest of exactly 4 MiB");
    let d = Digest::sha256_of(&exact);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let got = http.get("/v2/big/manifest/manifests/exact");
    got.expect_status(200, "GET the 4 MiB manifest");
    assert!(got.body == exact, "the 4 MiB manifest came back different");
}
