//! OCI image layouts: our reader and writer, and interop with skopeo both ways.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_oci::{Digest, ManifestInfo, ManifestKind, descriptor_digest, media_type};
use berth_store::{ErrorKind, LayoutError, OciLayout, REF_NAME_ANNOTATION};
use berth_test_support::{Layer, image_config, requires_tool, run_with_timeout};
use oci_spec::image::{Descriptor, DescriptorBuilder, MediaType};
use serde_json::json;

/// Write `data` as a blob of `layout` and describe it.
fn put(layout: &OciLayout, media_type: &str, data: &[u8]) -> Descriptor {
    let d = Digest::sha256_of(data);
    assert_eq!(
        layout
            .write_blob(data, &d, Some(data.len() as u64))
            .unwrap(),
        data.len() as u64
    );
    DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(oci_spec::image::Digest::try_from(&d).unwrap())
        .size(data.len() as u64)
        .build()
        .unwrap()
}

/// An image of two layers written with our layout writer; returns the manifest descriptor.
fn write_image(layout: &OciLayout, seed: u64) -> Descriptor {
    let layers = [Layer::random(seed, 50_000), Layer::random(seed + 1, 70_000)];
    let config = serde_json::to_vec(&image_config("linux", "amd64", &layers)).unwrap();
    let config = put(layout, media_type::OCI_CONFIG, &config);
    let layer_descs: Vec<Descriptor> = layers
        .iter()
        .map(|l| put(layout, media_type::OCI_LAYER_GZIP, &l.data))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": config,
        "layers": layer_descs,
    }))
    .unwrap();
    put(layout, media_type::OCI_MANIFEST, &manifest)
}

/// Read the tree under `desc` from `layout`, verifying every blob; returns the digests seen.
fn read_tree(layout: &OciLayout, desc: &Descriptor) -> Vec<Digest> {
    let digest = descriptor_digest(desc).unwrap();
    let bytes = layout.read_blob(&digest).unwrap();
    let info = ManifestInfo::parse(&bytes, Some(desc.media_type().as_ref())).unwrap();
    let mut seen = vec![digest];
    for child in info.referenced_manifests() {
        seen.extend(read_tree(layout, child));
    }
    for blob in info.referenced_blobs() {
        let d = descriptor_digest(blob).unwrap();
        let mut verifying = berth_oci::VerifyingReader::new(
            layout.open_blob(&d).unwrap(),
            d.clone(),
            Some(blob.size()),
        );
        std::io::copy(&mut verifying, &mut std::io::sink()).unwrap();
        seen.push(d);
    }
    seen
}

#[test]
fn create_open_and_version_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout");
    let err = OciLayout::open(&path).unwrap_err();
    assert!(matches!(err, LayoutError::NotALayout { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let layout = OciLayout::create(&path).unwrap();
    assert!(path.join("blobs").is_dir());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index,
        json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": []})
    );
    assert!(layout.tags().unwrap().is_empty());
    assert_eq!(
        OciLayout::create(&path).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    OciLayout::open(&path).unwrap();
    OciLayout::open_or_create(&path).unwrap();

    berth_test_support::write_file(
        path.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    );
    let err = OciLayout::open(&path).unwrap_err();
    assert!(
        matches!(&err, LayoutError::UnsupportedVersion { version, .. } if version == "2.0.0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("1.0.0"));
}

#[test]
fn blobs_are_verified_on_write_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).unwrap();
    let d = Digest::sha256_of(b"content");
    let err = layout.write_blob(&b"other"[..], &d, None).unwrap_err();
    assert!(matches!(err, LayoutError::Verify { .. }), "{err:?}");
    let err = layout.write_blob(&b"content"[..], &d, Some(3)).unwrap_err();
    assert!(matches!(err, LayoutError::Verify { .. }), "{err:?}");
    assert!(!layout.has_blob(&d));
    assert!(berth_test_support::walk_files(dir.path().join("blobs")).is_empty());
    assert_eq!(
        layout.read_blob(&d).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    layout.write_blob(&b"content"[..], &d, Some(7)).unwrap();
    assert!(layout.has_blob(&d));
    assert_eq!(layout.read_blob(&d).unwrap(), b"content");
    // a tampered blob is caught on read
    berth_fsutil::atomic_write(layout.blob_path(&d), b"CONTENT").unwrap();
    assert!(matches!(
        layout.read_blob(&d).unwrap_err(),
        LayoutError::Verify { .. }
    ));
}

#[test]
fn symlinks_cannot_leave_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path().join("l")).unwrap();
    let secret = dir.path().join("secret");
    berth_test_support::write_file(&secret, b"secret");
    let d = Digest::sha256_of(b"secret");
    std::fs::create_dir_all(dir.path().join("l/blobs/sha256")).unwrap();
    std::os::unix::fs::symlink(&secret, layout.blob_path(&d)).unwrap();
    assert!(layout.read_blob(&d).is_err());
    assert!(!layout.has_blob(&d));
}

#[test]
fn add_manifest_replaces_by_tag_and_resolve_follows_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).unwrap();
    assert!(matches!(
        layout.resolve(None).unwrap_err(),
        LayoutError::Empty { .. }
    ));
    let one = write_image(&layout, 1);
    let two = write_image(&layout, 3);
    layout.add_manifest(&one, Some("v1")).unwrap();
    assert_eq!(layout.resolve(None).unwrap().digest(), one.digest());
    layout.add_manifest(&two, Some("v2")).unwrap();
    let err = layout.resolve(None).unwrap_err();
    assert!(
        matches!(err, LayoutError::Ambiguous { count: 2, .. }),
        "{err:?}"
    );
    assert_eq!(layout.tags().unwrap(), ["v1", "v2"]);
    // retag v1 to the second image: replaced in place
    layout.add_manifest(&two, Some("v1")).unwrap();
    assert_eq!(layout.tags().unwrap(), ["v1", "v2"]);
    let v1 = layout.resolve(Some("v1")).unwrap();
    assert_eq!(v1.digest(), two.digest());
    assert_eq!(
        v1.annotations()
            .as_ref()
            .unwrap()
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str),
        Some("v1")
    );
    // untagged entries: one per digest
    layout.add_manifest(&one, None).unwrap();
    layout.add_manifest(&one, None).unwrap();
    assert_eq!(layout.index().unwrap().manifests().len(), 3);
    assert_eq!(
        layout.resolve(Some("nope")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // content before names
    let missing = put(
        &OciLayout::create(dir.path().join("other")).unwrap(),
        "x/y",
        b"x",
    );
    assert!(matches!(
        layout.add_manifest(&missing, Some("m")).unwrap_err(),
        LayoutError::BlobNotFound { .. }
    ));
    assert!(matches!(
        layout.add_manifest(&one, Some("bad tag")).unwrap_err(),
        LayoutError::InvalidTag { .. }
    ));
}

#[test]
fn reads_a_fixture_layout_with_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = berth_test_support::OciLayout::new(dir.path());
    let a = [Layer::random(1, 10_000)];
    let b = [Layer::random(2, 10_000)];
    let ma = fixture.image(&a, &image_config("linux", "amd64", &a));
    let mb = fixture.image(&b, &image_config("linux", "arm64", &b));
    let index = fixture.index(&[
        ma.with_platform("linux", "amd64"),
        mb.with_platform("linux", "arm64"),
    ]);
    fixture.tag(&index, "multi");
    let layout = OciLayout::open(dir.path()).unwrap();
    let desc = layout.resolve(Some("multi")).unwrap();
    assert_eq!(descriptor_digest(&desc).unwrap(), index.digest);
    let seen = read_tree(&layout, &desc);
    assert_eq!(seen.len(), 1 + 2 * 3);
}

/// skopeo with an empty registries.conf, so a developer's configuration cannot interfere.
fn skopeo(tmp: &Path, args: &[&str]) -> Output {
    berth_test_support::write_file(tmp.join("registries.conf"), b"");
    let mut cmd = Command::new("skopeo");
    cmd.arg("--insecure-policy")
        .args(args)
        .env("CONTAINERS_REGISTRIES_CONF", tmp.join("registries.conf"))
        .env("REGISTRY_AUTH_FILE", tmp.join("auth.json"))
        .env("TMPDIR", tmp);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "skopeo {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn skopeo_round_trip_both_ways() {
    requires_tool!("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));

    // written by us, read by skopeo
    let ours = OciLayout::create(&a).unwrap();
    let manifest = write_image(&ours, 10);
    ours.add_manifest(&manifest, Some("v1")).unwrap();
    let a_ref = format!("oci:{}:v1", a.display());
    let raw = skopeo(&tmp, &["inspect", "--raw", &a_ref]).stdout;
    assert_eq!(
        Digest::sha256_of(&raw),
        descriptor_digest(&manifest).unwrap()
    );
    let inspect: serde_json::Value =
        serde_json::from_slice(&skopeo(&tmp, &["inspect", &a_ref]).stdout).unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));

    // copied by skopeo into a new layout, read by us
    skopeo(
        &tmp,
        &["copy", &a_ref, &format!("oci:{}:copied", b.display())],
    );
    let theirs = OciLayout::open(&b).unwrap();
    assert_eq!(theirs.tags().unwrap(), ["copied"]);
    let desc = theirs.resolve(Some("copied")).unwrap();
    assert_eq!(
        desc.digest(),
        manifest.digest(),
        "skopeo kept the manifest byte-identical"
    );
    let seen = read_tree(&theirs, &desc);
    assert_eq!(seen, read_tree(&ours, &manifest));
    assert_eq!(theirs.resolve(None).unwrap().digest(), manifest.digest());

    // and back by skopeo into our layout, beside our own entry
    skopeo(
        &tmp,
        &[
            "copy",
            &format!("oci:{}:copied", b.display()),
            &format!("oci:{}:back", a.display()),
        ],
    );
    assert_eq!(ours.tags().unwrap(), ["v1", "back"]);
    assert_eq!(
        ours.resolve(Some("back")).unwrap().digest(),
        manifest.digest()
    );

    // our writer adds to the layout skopeo created, and skopeo reads the result
    let second = write_image(&theirs, 20);
    theirs.add_manifest(&second, Some("second")).unwrap();
    let raw = skopeo(
        &tmp,
        &["inspect", "--raw", &format!("oci:{}:second", b.display())],
    )
    .stdout;
    assert_eq!(Digest::sha256_of(&raw), descriptor_digest(&second).unwrap());
}

#[test]
fn skopeo_written_index_is_read() {
    requires_tool!("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let mut fixture = berth_test_support::OciLayout::new(&src);
    let a = [Layer::random(5, 20_000)];
    let b = [Layer::random(6, 20_000)];
    let ma = fixture.image(&a, &image_config("linux", "amd64", &a));
    let mb = fixture.image(&b, &image_config("linux", "arm64", &b));
    let index = fixture.index(&[
        ma.with_platform("linux", "amd64"),
        mb.with_platform("linux", "arm64"),
    ]);
    fixture.tag(&index, "multi");
    skopeo(
        &tmp,
        &[
            "copy",
            "--all",
            &format!("oci:{}:multi", src.display()),
            &format!("oci:{}:multi", dst.display()),
        ],
    );
    let layout = OciLayout::open(&dst).unwrap();
    let desc = layout.resolve(None).unwrap();
    assert_eq!(descriptor_digest(&desc).unwrap(), index.digest);
    let bytes = layout.read_blob(&index.digest).unwrap();
    let info = ManifestInfo::parse(&bytes, None).unwrap();
    assert_eq!(info.kind, ManifestKind::Index);
    assert_eq!(read_tree(&layout, &desc).len(), 1 + 2 * 3);
}
