use super::*;
use crate::media_type::*;

const CONFIG: &str = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741";
const LAYER0: &str = "sha256:9ad63333ebc97e32b987ae66aa3cff81300e4c2e6d2f2395cef8a3ae18b249fe";
const LAYER1: &str = "sha256:a2318d6c47ec9cac5acc500c47c79602bcf953cec711a18bc898911a0984365b";
const SUBJECT: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
const AMD64: &str = "sha256:ec050c32e4a6085b423d36ecd025c0d3ff00c38ab93a3d71a460ff1c44fa6d77";
const ARM64: &str = "sha256:1c1ac6bbfcb8ee6b1e2d7f43d4ffd3ac0a5d3a3d0a6cb1f2d5e2ea7d1f2a3b4c";
const EMPTY: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn docker_v2() -> String {
    format!(
        r#"{{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {{
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1457,
      "digest": "{CONFIG}"
   }},
   "layers": [
      {{
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 2220094,
         "digest": "{LAYER0}"
      }},
      {{
         "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 1069,
         "digest": "{LAYER1}",
         "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/{LAYER1}"]
      }}
   ]
}}"#
    )
}

fn oci_sbom_referrer() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/spdx+json",
  "config": {{
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "{EMPTY}",
    "size": 2,
    "data": "e30="
  }},
  "layers": [
    {{
      "mediaType": "application/spdx+json",
      "digest": "{LAYER0}",
      "size": 8321,
      "annotations": {{ "org.opencontainers.image.title": "sbom.spdx.json" }}
    }}
  ],
  "subject": {{
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "{SUBJECT}",
    "size": 1024
  }},
  "annotations": {{
    "org.opencontainers.image.created": "2024-01-02T03:04:05Z",
    "com.example.key": "value"
  }}
}}"#
    )
}

fn oci_index() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {{
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "{AMD64}",
      "size": 1035,
      "platform": {{ "architecture": "amd64", "os": "linux" }}
    }},
    {{
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "{ARM64}",
      "size": 1035,
      "platform": {{ "architecture": "arm64", "os": "linux", "variant": "v8" }}
    }},
    {{
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "{SUBJECT}",
      "size": 566,
      "annotations": {{
        "vnd.docker.reference.digest": "{AMD64}",
        "vnd.docker.reference.type": "attestation-manifest"
      }},
      "platform": {{ "architecture": "unknown", "os": "unknown" }}
    }}
  ],
  "annotations": {{ "org.opencontainers.image.source": "https://example.com/repo" }}
}}"#
    )
}

fn docker_list_body() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {{
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 528,
      "digest": "{AMD64}",
      "platform": {{ "architecture": "amd64", "os": "linux" }}
    }},
    {{
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 2398,
      "digest": "{ARM64}",
      "platform": {{
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.1817",
        "os.features": ["win32k"]
      }}
    }}
  ]
}}"#
    )
}

fn helm_chart() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "config": {{
    "mediaType": "application/vnd.cncf.helm.config.v1+json",
    "digest": "{CONFIG}",
    "size": 117
  }},
  "layers": [
    {{
      "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
      "digest": "{LAYER0}",
      "size": 2487
    }}
  ],
  "annotations": {{
    "org.opencontainers.image.title": "mychart",
    "org.opencontainers.image.version": "0.1.0"
  }}
}}"#
    )
}

fn ok(body: &str, content_type: Option<&str>) -> ManifestInfo {
    ManifestInfo::parse(body.as_bytes(), content_type)
        .unwrap_or_else(|e| panic!("should parse: {e}: {:?}", std::error::Error::source(&e)))
}

fn err(body: &str, content_type: Option<&str>) -> ManifestError {
    match ManifestInfo::parse(body.as_bytes(), content_type) {
        Ok(info) => panic!("should fail, got {info:?}"),
        Err(e) => e,
    }
}

fn digests<'a>(it: impl Iterator<Item = &'a Descriptor>) -> Vec<String> {
    it.map(|d| d.digest().to_string()).collect()
}

#[test]
fn docker_v2_manifest() {
    let info = ok(&docker_v2(), Some(DOCKER_MANIFEST_V2));
    assert_eq!(info.media_type, DOCKER_MANIFEST_V2);
    assert_eq!(info.kind, ManifestKind::Image);
    assert_eq!(info.layers.len(), 2);
    assert_eq!(info.layers[1].urls().as_ref().map(Vec::len), Some(1));
    assert_eq!(info.artifact_type.as_deref(), Some(DOCKER_CONFIG));
    assert_eq!(info.subject, None);
    assert_eq!(info.annotations, None);
    assert_eq!(digests(info.referenced_blobs()), [CONFIG, LAYER0, LAYER1]);
    assert_eq!(info.referenced_manifests().count(), 0);
    // Without a Content-Type the mediaType field decides.
    assert_eq!(ok(&docker_v2(), None).kind, ManifestKind::Image);
}

#[test]
fn oci_manifest_with_subject_and_artifact_type() {
    let info = ok(&oci_sbom_referrer(), Some(OCI_MANIFEST));
    assert_eq!(info.kind, ManifestKind::Image);
    assert_eq!(info.artifact_type.as_deref(), Some("application/spdx+json"));
    let subject = info.subject.as_ref().expect("subject");
    assert_eq!(subject.digest().to_string(), SUBJECT);
    assert_eq!(subject.size(), 1024);
    assert_eq!(
        descriptor_digest(subject).map(|d| d.to_string()).as_deref(),
        Ok(SUBJECT)
    );
    let annotations = info.annotations.as_ref().expect("annotations");
    assert_eq!(
        annotations.get("com.example.key").map(String::as_str),
        Some("value")
    );
    // The subject is not a blob this manifest needs.
    assert_eq!(digests(info.referenced_blobs()), [EMPTY, LAYER0]);
}

#[test]
fn oci_index_with_platforms() {
    let info = ok(&oci_index(), Some(OCI_INDEX));
    assert_eq!(info.kind, ManifestKind::Index);
    assert_eq!(info.config, None);
    assert!(info.layers.is_empty());
    assert_eq!(
        digests(info.referenced_manifests()),
        [AMD64, ARM64, SUBJECT]
    );
    assert_eq!(info.referenced_blobs().count(), 0);
    let platform = info.manifests[1].platform().as_ref().expect("platform");
    assert_eq!(platform.architecture().to_string(), "arm64");
    assert_eq!(platform.variant().as_deref(), Some("v8"));
    assert_eq!(info.artifact_type, None);
    assert!(info.annotations.is_some());
}

#[test]
fn docker_manifest_list() {
    let info = ok(&docker_list_body(), Some(DOCKER_MANIFEST_LIST));
    assert_eq!(info.kind, ManifestKind::Index);
    assert_eq!(info.manifests.len(), 2);
    let platform = info.manifests[1].platform().as_ref().expect("platform");
    assert_eq!(platform.os().to_string(), "windows");
}

#[test]
fn helm_chart_uses_config_media_type_as_artifact_type() {
    // Helm pushes without a mediaType field; the Content-Type says what it is.
    let info = ok(&helm_chart(), Some(OCI_MANIFEST));
    assert_eq!(info.media_type, OCI_MANIFEST);
    assert_eq!(info.kind, ManifestKind::Image);
    assert_eq!(
        info.artifact_type.as_deref(),
        Some("application/vnd.cncf.helm.config.v1+json")
    );
}

#[test]
fn empty_config_artifact() {
    let body = format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {{ "mediaType": "{OCI_EMPTY_JSON}", "digest": "{EMPTY}", "size": 2 }},
  "layers": [ {{ "mediaType": "{OCI_EMPTY_JSON}", "digest": "{EMPTY}", "size": 2 }} ]
}}"#
    );
    let info = ok(&body, Some(OCI_MANIFEST));
    // No artifactType: the referrers API falls back to config.mediaType.
    assert_eq!(info.artifact_type.as_deref(), Some(OCI_EMPTY_JSON));
    assert_eq!(digests(info.referenced_blobs()), [EMPTY, EMPTY]);
}

#[test]
fn unknown_media_type_is_kept_and_fields_picked_leniently() {
    let body = format!(
        r#"{{
  "mediaType": "application/vnd.oci.artifact.manifest.v1+json",
  "artifactType": "application/vnd.example.signature.v1",
  "blobs": [ {{ "mediaType": "application/octet-stream", "digest": "{LAYER0}", "size": 10 }} ],
  "subject": {{ "mediaType": "{OCI_MANIFEST}", "digest": "{SUBJECT}", "size": 1024 }},
  "layers": [
    {{ "mediaType": "application/octet-stream", "digest": "{LAYER1}", "size": 10 }},
    {{ "mediaType": "application/octet-stream", "digest": "sha256:NOT-HEX", "size": 10 }},
    {{ "mediaType": "application/octet-stream", "digest": "md5:abc", "size": 10 }},
    "not a descriptor",
    {{ "digest": "{LAYER1}" }}
  ],
  "manifests": 42,
  "config": {{ "mediaType": "x/y" }},
  "annotations": {{ "a": "b" }}
}}"#
    );
    let info = ok(&body, None);
    assert_eq!(
        info.media_type,
        "application/vnd.oci.artifact.manifest.v1+json"
    );
    assert_eq!(info.kind, ManifestKind::Unknown);
    assert_eq!(
        info.subject
            .as_ref()
            .map(|s| s.digest().to_string())
            .as_deref(),
        Some(SUBJECT)
    );
    assert_eq!(digests(info.layers.iter()), [LAYER1]);
    assert!(info.manifests.is_empty());
    assert_eq!(info.config, None);
    assert_eq!(
        info.artifact_type.as_deref(),
        Some("application/vnd.example.signature.v1")
    );
    assert_eq!(info.annotations.as_ref().map(HashMap::len), Some(1));
}

#[test]
fn unknown_media_type_falls_back_to_config_media_type() {
    let body = format!(
        r#"{{ "mediaType": "application/vnd.example.thing+json",
             "config": {{ "mediaType": "application/vnd.example.config+json", "digest": "{CONFIG}", "size": 3 }},
             "subject": "nope", "annotations": {{ "n": 1 }} }}"#
    );
    let info = ok(&body, Some("application/vnd.example.thing+json"));
    assert_eq!(info.kind, ManifestKind::Unknown);
    assert_eq!(
        info.artifact_type.as_deref(),
        Some("application/vnd.example.config+json")
    );
    assert_eq!(info.subject, None);
    assert_eq!(info.annotations, None);
    // Even an empty object is accepted when the Content-Type names a type.
    let info = ok("{}", Some("application/vnd.example.thing+json"));
    assert_eq!(info.kind, ManifestKind::Unknown);
    assert_eq!(info.artifact_type, None);
}

#[test]
fn content_type_parameters_and_case_are_ignored() {
    let info = ok(
        &oci_sbom_referrer(),
        Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    );
    assert_eq!(info.media_type, OCI_MANIFEST);
    let info = ok(
        &oci_sbom_referrer(),
        Some("Application/VND.OCI.Image.Manifest.v1+json"),
    );
    assert_eq!(info.media_type, OCI_MANIFEST);
    // Without a mediaType field, the Content-Type is lowercased.
    let info = ok(
        &helm_chart(),
        Some("application/VND.oci.image.manifest.v1+JSON"),
    );
    assert_eq!(info.media_type, OCI_MANIFEST);
    assert_eq!(info.kind, ManifestKind::Image);
    // An empty Content-Type is no Content-Type.
    assert_eq!(ok(&oci_sbom_referrer(), Some("")).media_type, OCI_MANIFEST);
}

#[test]
fn body_must_be_a_json_object() {
    for body in ["", "nope", "[]", "\"manifest\"", "null", "{\"a\":", "{} {}"] {
        let e = err(body, Some(OCI_MANIFEST));
        assert!(
            matches!(e, ManifestError::InvalidJson { .. }),
            "{body:?}: {e:?}"
        );
    }
    let e = err("[1,2]", None);
    assert_eq!(e.to_string(), "manifest body is not a JSON object");
    let source = std::error::Error::source(&e)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(source.contains("expected a map"), "{source}");
}

#[test]
fn media_type_rules() {
    let e = err(&oci_sbom_referrer(), Some(OCI_INDEX));
    assert!(
        matches!(&e, ManifestError::MediaTypeMismatch { body, content_type }
            if body == OCI_MANIFEST && content_type == OCI_INDEX),
        "{e:?}"
    );
    assert!(matches!(
        err(&oci_sbom_referrer(), Some("application/json")),
        ManifestError::MediaTypeMismatch { .. }
    ));
    assert!(matches!(
        err(&helm_chart(), None),
        ManifestError::MissingMediaType
    ));
    assert!(matches!(
        err(r#"{"mediaType": 5}"#, Some(OCI_MANIFEST)),
        ManifestError::MediaTypeNotString
    ));
}

#[test]
fn docker_schema1_is_unsupported() {
    let body = r#"{"schemaVersion": 1, "name": "library/busybox", "tag": "latest", "architecture": "amd64",
                   "fsLayers": [], "history": [], "signatures": []}"#;
    for ct in [DOCKER_MANIFEST_V1_SIGNED, DOCKER_MANIFEST_V1] {
        let e = err(body, Some(ct));
        assert!(
            matches!(&e, ManifestError::Unsupported { media_type } if media_type == ct),
            "{e:?}"
        );
    }
    let body = format!(r#"{{"schemaVersion": 1, "mediaType": "{DOCKER_MANIFEST_V1}"}}"#);
    assert!(matches!(
        err(&body, None),
        ManifestError::Unsupported { .. }
    ));
}

#[test]
fn structure_errors_are_invalid() {
    let cases = [
        // schemaVersion must be 2
        docker_v2().replace("\"schemaVersion\": 2", "\"schemaVersion\": 1"),
        // config missing
        helm_chart().replace("\"config\"", "\"konfig\""),
        // layers missing
        helm_chart().replace("\"layers\"", "\"layerz\""),
        // layers not an array
        format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a/b","digest":"{CONFIG}","size":1}},"layers":{{}}}}"#
        ),
        // negative size
        docker_v2().replace("1457", "-1"),
        // schemaVersion absent
        docker_v2().replace("\"schemaVersion\": 2,", ""),
    ];
    for body in &cases {
        let e = err(
            body,
            Some(if body.contains("docker") {
                DOCKER_MANIFEST_V2
            } else {
                OCI_MANIFEST
            }),
        );
        assert!(
            matches!(e, ManifestError::Invalid { .. }),
            "{e:?} for {body}"
        );
    }
    let e = err(&cases[0], None);
    assert_eq!(
        e.to_string(),
        "manifest does not follow the application/vnd.docker.distribution.manifest.v2+json schema"
    );
    let source = std::error::Error::source(&e)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert_eq!(source, "schemaVersion must be 2, found 1");

    // An index without manifests.
    let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
    assert!(matches!(err(body, None), ManifestError::Invalid { .. }));
}

#[test]
fn descriptor_digests_are_checked_by_field() {
    let upper = LAYER1.replace('a', "A");
    let body = docker_v2().replace(LAYER1, &upper);
    let e = err(&body, None);
    assert!(
        matches!(&e, ManifestError::InvalidDescriptor { field, source: DigestError::Invalid { .. } } if field == "layers[1]"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "manifest descriptor layers[1] has an unusable digest"
    );

    let sha384 = format!("sha384:{}", "0".repeat(96));
    let body = oci_sbom_referrer().replace(SUBJECT, &sha384);
    let e = err(&body, None);
    assert!(
        matches!(&e, ManifestError::InvalidDescriptor { field, source: DigestError::Unsupported { .. } } if field == "subject"),
        "{e:?}"
    );

    let body = oci_sbom_referrer().replace(EMPTY, "sha256:short");
    assert!(
        matches!(err(&body, None), ManifestError::InvalidDescriptor { field, .. } if field == "config")
    );

    let body = oci_index().replace(ARM64, "sha256:../../etc/passwd");
    assert!(
        matches!(err(&body, None), ManifestError::InvalidDescriptor { field, .. } if field == "manifests[1]")
    );
}

#[test]
fn sha512_descriptors_are_accepted() {
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let body = docker_v2().replace(LAYER0, &sha512);
    let info = ok(&body, None);
    assert_eq!(
        descriptor_digest(&info.layers[0]).map(|d| d.algorithm()),
        Ok(crate::Algorithm::Sha512)
    );
}
