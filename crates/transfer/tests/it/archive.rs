//! Image archives: round trips keep digests, imports give the diff_id of their tar, and
//! hostile archives are refused with their reason, leaving the store and the filesystem
//! untouched. Peers (podman, skopeo) are in tests/e2e.

use std::path::{Path, PathBuf};

use berth_distribution::{Client, ClientOptions};
use berth_oci::{Digest, ManifestInfo, Platform, media_type};
use berth_store::Store;
use berth_transfer::archive::{self, DOCKER_LAYER_TAR};
use berth_transfer::{
    ArchiveFormat, CopyOptions, Endpoint, ErrorKind, ImportOptions, NoProgress, TransferError,
};

use crate::runtime;

fn opts() -> CopyOptions {
    CopyOptions {
        all_platforms: false,
        platform: Platform::host(),
        referrers: false,
    }
}

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

/// A small root filesystem: a binary-ish file, a text file, a symlink, an empty dir.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    berth_fsutil::atomic_write(root.join("bin/busybox"), &payload).unwrap();
    berth_fsutil::atomic_write(root.join("etc/hostname"), b"berth\n").unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    root
}

fn import(store: &Store, source: &Path, name: &str) -> berth_transfer::Imported {
    runtime()
        .block_on(archive::import(
            store,
            source,
            name,
            &ImportOptions::default(),
        ))
        .unwrap()
}

fn save(
    store: &Store,
    names: &[&str],
    dest: &Path,
    format: ArchiveFormat,
) -> Result<Vec<Digest>, TransferError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    runtime().block_on(archive::save(
        store,
        &names,
        dest,
        format,
        &opts(),
        &NoProgress,
    ))
}

fn load(store: &Store, path: &Path) -> Result<Vec<berth_transfer::Loaded>, TransferError> {
    runtime().block_on(archive::load(&client(), store, path, &opts(), &NoProgress))
}

fn manifest(store: &Store, name: &str) -> (Digest, ManifestInfo) {
    let record = store.image(name).unwrap().expect("image recorded");
    let bytes = store.read_blob(&record.digest).unwrap();
    (
        record.digest,
        ManifestInfo::parse(&bytes, Some(&record.media_type)).unwrap(),
    )
}

fn config_digest(info: &ManifestInfo) -> Digest {
    berth_oci::descriptor_digest(info.config.as_ref().unwrap()).unwrap()
}

const NAME: &str = "localhost/rootfs:v1";

#[test]
fn docker_archive_round_trip_keeps_config_and_diff_ids_and_is_a_fixed_point() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let imported = import(&a, &rootfs(dir.path()), NAME);
    let first = dir.path().join("first.tar");
    save(&a, &[NAME], &first, ArchiveFormat::Docker).unwrap();

    let b = Store::open(dir.path().join("b")).unwrap();
    let loaded = load(&b, &first).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, NAME);
    let (b_digest, info) = manifest(&b, NAME);
    assert_eq!(config_digest(&info), imported.config);
    assert_eq!(info.layers.len(), 1);
    assert_eq!(info.layers[0].media_type().to_string(), DOCKER_LAYER_TAR);
    assert_eq!(
        berth_oci::descriptor_digest(&info.layers[0]).unwrap(),
        imported.diff_id,
        "a docker-archive layer is stored as it is: its digest is the diff_id"
    );

    // saved again, the archive is the same bytes, and loading it the same manifest
    let second = dir.path().join("second.tar");
    save(&b, &[NAME], &second, ArchiveFormat::Docker).unwrap();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    let c = Store::open(dir.path().join("c")).unwrap();
    load(&c, &second).unwrap();
    assert_eq!(manifest(&c, NAME).0, b_digest);
}

#[test]
fn oci_archive_round_trip_keeps_the_manifest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let imported = import(&a, &rootfs(dir.path()), NAME);
    let file = dir.path().join("image.tar");
    let saved = save(&a, &[NAME], &file, ArchiveFormat::Oci).unwrap();
    assert_eq!(saved, vec![imported.digest.clone()]);
    let b = Store::open(dir.path().join("b")).unwrap();
    load(&b, &file).unwrap();
    let (digest, info) = manifest(&b, NAME);
    assert_eq!(digest, imported.digest);
    assert_eq!(config_digest(&info), imported.config);
    assert_eq!(
        info.layers[0].media_type().to_string(),
        media_type::OCI_LAYER_GZIP
    );
}

#[test]
fn several_images_in_one_archive_load_under_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let root = rootfs(dir.path());
    import(&a, &root, "localhost/one:1");
    berth_fsutil::atomic_write(root.join("etc/hostname"), b"two\n").unwrap();
    import(&a, &root, "localhost/two:2");
    let file = dir.path().join("both.tar");
    save(
        &a,
        &["localhost/one:1", "localhost/two:2"],
        &file,
        ArchiveFormat::Docker,
    )
    .unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let names: Vec<String> = load(&b, &file)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["localhost/one:1", "localhost/two:2"]);

    // as a copy source, an archive of two images needs a name
    let err = runtime()
        .block_on(berth_transfer::copy(
            &client(),
            None,
            &Endpoint::parse(&format!("docker-archive:{}", file.display())).unwrap(),
            &Endpoint::parse(&format!("oci:{}", dir.path().join("l").display())).unwrap(),
            &opts(),
            &NoProgress,
        ))
        .unwrap_err();
    assert!(
        matches!(err, TransferError::ArchiveAmbiguous { count: 2, .. }),
        "{err}"
    );
    let layout = dir.path().join("layout");
    let copied = runtime()
        .block_on(berth_transfer::copy(
            &client(),
            None,
            &Endpoint::parse(&format!(
                "docker-archive:{}:localhost/two:2",
                file.display()
            ))
            .unwrap(),
            &Endpoint::parse(&format!("oci:{}:two", layout.display())).unwrap(),
            &opts(),
            &NoProgress,
        ))
        .unwrap();
    let b_two = manifest(&b, "localhost/two:2").0;
    assert_eq!(copied.digest, b_two);
}

#[test]
fn copy_through_an_oci_archive_to_a_layout_keeps_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let imported = import(&a, &rootfs(dir.path()), NAME);
    let file = dir.path().join("image.tar");
    let copy = |src: String, dst: String, store: Option<&Store>| {
        runtime()
            .block_on(berth_transfer::copy(
                &client(),
                store,
                &Endpoint::parse(&src).unwrap(),
                &Endpoint::parse(&dst).unwrap(),
                &opts(),
                &NoProgress,
            ))
            .unwrap()
    };
    copy(
        format!("store:{NAME}"),
        format!("oci-archive:{}:v1", file.display()),
        Some(&a),
    );
    let layout = dir.path().join("layout");
    let copied = copy(
        format!("oci-archive:{}:v1", file.display()),
        format!("oci:{}:v1", layout.display()),
        None,
    );
    assert_eq!(copied.digest, imported.digest);
}

fn tar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn import_of_a_tar_and_of_its_gzip_give_the_tar_as_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let tar = tar_bytes(&[
        ("bin/busybox", b"not really busybox"),
        ("etc/motd", b"hi\n"),
    ]);
    let plain = dir.path().join("rootfs.tar");
    berth_fsutil::atomic_write(&plain, &tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gzipped = dir.path().join("rootfs.tar.gz");
    berth_fsutil::atomic_write(&gzipped, &gz.finish().unwrap()).unwrap();

    let a = import(&store, &plain, "localhost/plain:1");
    let b = import(&store, &gzipped, "localhost/gz:1");
    assert_eq!(a.diff_id, Digest::sha256_of(&tar));
    assert_eq!(b.diff_id, Digest::sha256_of(&tar));
    // the config records the diff_id, the platform and the history entry
    let (_, info) = manifest(&store, "localhost/plain:1");
    let config: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&config_digest(&info)).unwrap()).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], a.diff_id.as_str());
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], Platform::host().architecture);
    assert!(
        config["history"][0]["created_by"]
            .as_str()
            .unwrap()
            .contains("berth import")
    );
}

#[test]
fn import_refuses_a_file_that_is_not_a_tar_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let junk = dir.path().join("junk.tar");
    berth_fsutil::atomic_write(&junk, &[b'x'; 2000]).unwrap();
    let err = runtime()
        .block_on(archive::import(
            &store,
            &junk,
            NAME,
            &ImportOptions::default(),
        ))
        .unwrap_err();
    assert!(matches!(err, TransferError::NotATar { .. }), "{err}");
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn a_failed_save_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let imported = import(&store, &rootfs(dir.path()), NAME);
    let (_, info) = manifest(&store, NAME);
    let layer = berth_oci::descriptor_digest(&info.layers[0]).unwrap();
    // damage the layer in the store: the save must notice and write nothing
    let path = store.blob_path(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&path, perms).unwrap();
    berth_fsutil::atomic_replace(&path, &bytes).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for format in [ArchiveFormat::Docker, ArchiveFormat::Oci] {
        let dest = out.join("image.tar");
        let err = save(&store, &[NAME], &dest, format).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{format}: {err}");
        assert!(!dest.exists(), "{format}: a partial archive was left");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "{format}: a temp file was left"
        );
    }
    let _ = imported;
}

// ---- hostile archives ----

/// A tar written header by header, so names the `tar` crate refuses can be written.
struct RawTar(Vec<u8>);

impl RawTar {
    fn new() -> RawTar {
        RawTar(Vec::new())
    }

    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        data: &[u8],
        link: Option<&str>,
    ) -> &mut RawTar {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name.fill(0);
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        self.entry(name, tar::EntryType::Regular, data, None)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

/// A docker-archive of one image whose layer `layer_entry` is named in manifest.json;
/// the caller adds the layer (or not).
fn docker_archive(layer_entry: &str, layer: &[u8]) -> (RawTar, Vec<u8>) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(layer).as_str()]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json", "RepoTags": ["localhost/hostile:1"], "Layers": [layer_entry],
    }]))
    .unwrap();
    let mut t = RawTar::new();
    t.file("config.json", &config)
        .file("manifest.json", &manifest);
    (t, layer.to_vec())
}

#[test]
fn hostile_archives_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let layer = tar_bytes(&[("etc/motd", b"hello\n")]);
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let escape = format!("{}/escape", outside.display());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot entry",
            {
                let (mut t, l) = docker_archive("layer.tar", &layer);
                t.file("layer.tar", &l).file("../../escape", b"x").finish()
            },
            "contains `..`",
        ),
        (
            "absolute entry",
            {
                let (mut t, l) = docker_archive("layer.tar", &layer);
                t.file("layer.tar", &l).file(&escape, b"x").finish()
            },
            "is absolute",
        ),
        (
            "layer is a symlink to an absolute path",
            {
                let (mut t, _) = docker_archive("layer.tar", &layer);
                t.entry(
                    "layer.tar",
                    tar::EntryType::Symlink,
                    b"",
                    Some("/etc/passwd"),
                )
                .finish()
            },
            "a symlink to an absolute path",
        ),
        (
            "layer is a symlink out of the archive",
            {
                let (mut t, _) = docker_archive("d/layer.tar", &layer);
                t.entry(
                    "d/layer.tar",
                    tar::EntryType::Symlink,
                    b"",
                    Some("../../etc/passwd"),
                )
                .finish()
            },
            "leads outside the archive",
        ),
        (
            "symlink loop",
            {
                let (mut t, _) = docker_archive("a", &layer);
                t.entry("a", tar::EntryType::Symlink, b"", Some("b"))
                    .entry("b", tar::EntryType::Symlink, b"", Some("a"))
                    .finish()
            },
            "a symlink loop",
        ),
        (
            "manifest names a missing layer",
            {
                let (mut t, _) = docker_archive("missing.tar", &layer);
                t.finish()
            },
            "names \"missing.tar\", which is not in it",
        ),
        (
            "hard link",
            {
                let (mut t, l) = docker_archive("layer.tar", &layer);
                t.file("layer.tar", &l)
                    .entry("other", tar::EntryType::Link, b"", Some("layer.tar"))
                    .finish()
            },
            "a hard link",
        ),
        (
            "device node",
            {
                let (mut t, l) = docker_archive("layer.tar", &layer);
                t.file("layer.tar", &l)
                    .entry("dev", tar::EntryType::Char, b"", None)
                    .finish()
            },
            "a device, fifo or other special entry",
        ),
        (
            "name given twice",
            {
                let (mut t, l) = docker_archive("layer.tar", &layer);
                t.file("layer.tar", &l).file("layer.tar", &l).finish()
            },
            "appears twice",
        ),
        (
            "layer does not match its diff_id",
            {
                let (mut t, _) = docker_archive("layer.tar", &layer);
                let mut other = layer.clone();
                other[600] ^= 1;
                t.file("layer.tar", &other).finish()
            },
            "(at entry \"layer.tar\"): failed to copy blob",
        ),
        (
            "truncated archive",
            {
                let (mut t, l) = docker_archive("layer.tar", &layer);
                let mut v = t.file("layer.tar", &l).finish();
                v.truncate(v.len() - 1024 - 700);
                v
            },
            "cut short",
        ),
        (
            "oci-archive manifest that does not match its name",
            {
                let fake = Digest::sha256_of(b"something else");
                let index =
                    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
                {"mediaType": media_type::OCI_MANIFEST, "digest": fake.as_str(), "size": 5,
                 "annotations": {"org.opencontainers.image.ref.name": "localhost/x:1"}}]}))
                    .unwrap();
                RawTar::new()
                    .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                    .file("index.json", &index)
                    .file(&format!("blobs/sha256/{}", fake.hex()), b"hello")
                    .finish()
            },
            "not sha256:",
        ),
        (
            "neither format",
            RawTar::new().file("hello", b"x").finish(),
            "neither a docker-archive",
        ),
    ];
    for (what, bytes, reason) in cases {
        let file = dir.path().join("hostile.tar");
        berth_fsutil::atomic_replace(&file, &bytes).unwrap();
        let store =
            Store::open(dir.path().join(format!("store-{}", what.replace(' ', "-")))).unwrap();
        let err = load(&store, &file).expect_err(what);
        let chain = error_chain(&err);
        assert!(
            chain.contains(reason),
            "{what}: expected {reason:?} in: {chain}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {chain}");
        assert!(
            store.images().unwrap().is_empty(),
            "{what}: an image was recorded"
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{what}: something was written outside"
        );
    }
    assert!(
        !Path::new("/etc/escape").exists() && !dir.path().parent().unwrap().join("escape").exists()
    );
}

#[test]
fn a_gzip_compressed_archive_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("image.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(
        &mut gz,
        &RawTar::new().file("manifest.json", b"[]").finish(),
    )
    .unwrap();
    berth_fsutil::atomic_write(&file, &gz.finish().unwrap()).unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let err = load(&store, &file).unwrap_err();
    assert!(
        matches!(err, TransferError::CompressedArchive { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("hint: decompress it first"),
        "{err}"
    );
}

#[test]
fn an_archive_without_names_is_refused_with_a_hint_and_copies_under_a_given_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    import(&a, &rootfs(dir.path()), NAME);
    let file = dir.path().join("unnamed.tar");
    runtime()
        .block_on(berth_transfer::copy(
            &client(),
            Some(&a),
            &Endpoint::Store(NAME.into()),
            &Endpoint::parse(&format!("docker-archive:{}", file.display())).unwrap(),
            &opts(),
            &NoProgress,
        ))
        .unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let err = load(&b, &file).unwrap_err();
    assert!(matches!(err, TransferError::ArchiveUnnamed { .. }), "{err}");
    assert!(
        err.to_string().contains("berth copy docker-archive:"),
        "{err}"
    );
    runtime()
        .block_on(berth_transfer::copy(
            &client(),
            Some(&b),
            &Endpoint::parse(&format!("docker-archive:{}", file.display())).unwrap(),
            &Endpoint::parse("store:localhost/named:1").unwrap(),
            &opts(),
            &NoProgress,
        ))
        .unwrap();
    assert!(b.image("localhost/named:1").unwrap().is_some());
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

#[test]
fn docker_archives_of_each_docker_generation_load() {
    let dir = tempfile::tempdir().unwrap();
    let layer = tar_bytes(&[("etc/motd", b"hello\n")]);
    let hex = Digest::sha256_of(&layer).hex().to_owned();
    // docker < 25 (`<v1 id>/layer.tar`), docker 25+ (an OCI layout inside, layers under
    // blobs/sha256/, manifest.json beside index.json), podman (`<diff_id>.tar`)
    let legacy = format!("{hex}/layer.tar");
    let oci = format!("blobs/sha256/{hex}");
    let podman = format!("{hex}.tar");
    for entry in [legacy, oci, podman] {
        let (mut t, l) = docker_archive(&entry, &layer);
        t.file(&entry, &l);
        if entry.starts_with("blobs/") {
            t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                .file("index.json", br#"{"schemaVersion":2,"manifests":[]}"#);
        }
        let file = dir.path().join("image.tar");
        berth_fsutil::atomic_replace(&file, &t.finish()).unwrap();
        let store = Store::open(dir.path().join(entry.replace('/', "-"))).unwrap();
        let loaded = load(&store, &file).unwrap_or_else(|e| panic!("{entry}: {}", error_chain(&e)));
        assert_eq!(loaded[0].name, "localhost/hostile:1", "{entry}");
        let (_, info) = manifest(&store, "localhost/hostile:1");
        assert_eq!(
            berth_oci::descriptor_digest(&info.layers[0]).unwrap(),
            Digest::sha256_of(&layer),
            "{entry}"
        );
    }
}

#[test]
fn a_docker_archive_with_a_gzip_layer_loads_it_compressed_and_saves_it_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let layer = tar_bytes(&[("etc/motd", b"hello\n"), ("bin/x", &[7u8; 5000])]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &layer).unwrap();
    let gz = gz.finish().unwrap();
    let (mut t, _) = docker_archive("layer.tar.gz", &layer);
    let file = dir.path().join("gz.tar");
    berth_fsutil::atomic_write(&file, &t.file("layer.tar.gz", &gz).finish()).unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    load(&store, &file).unwrap();
    let (_, info) = manifest(&store, "localhost/hostile:1");
    assert_eq!(
        berth_oci::descriptor_digest(&info.layers[0]).unwrap(),
        Digest::sha256_of(&gz)
    );
    assert_eq!(
        info.layers[0].media_type().to_string(),
        media_type::DOCKER_LAYER_GZIP
    );

    let out = dir.path().join("out.tar");
    save(
        &store,
        &["localhost/hostile:1"],
        &out,
        ArchiveFormat::Docker,
    )
    .unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let name = format!("{}.tar", Digest::sha256_of(&layer).hex());
    let mut found = false;
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name.as_str()) {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut got).unwrap();
            assert_eq!(got, layer, "the saved layer is the uncompressed tar");
            found = true;
        }
    }
    assert!(found, "no {name} in the saved archive");
}

#[test]
fn a_registry_image_copies_into_both_archive_formats() {
    berth_test_support::requires_tool!("docker-registry");
    let reg = berth_test_support::DockerRegistry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let imported = import(&a, &rootfs(dir.path()), NAME);
    let remote = format!("{}/archive/rootfs:v1", reg.host());
    let copy = |src: &str, dst: &str, store: Option<&Store>| {
        runtime()
            .block_on(berth_transfer::copy(
                &client(),
                store,
                &Endpoint::parse(src).unwrap(),
                &Endpoint::parse(dst).unwrap(),
                &opts(),
                &NoProgress,
            ))
            .unwrap_or_else(|e| panic!("copy {src} {dst}: {}", error_chain(&e)))
    };
    copy(&format!("store:{NAME}"), &remote, Some(&a));
    for format in ["docker-archive", "oci-archive"] {
        let file = dir.path().join(format!("{format}.tar"));
        // the layers stream from the registry into the archive
        copy(
            &remote,
            &format!("{format}:{}:{remote}", file.display()),
            None,
        );
        let b = Store::open(dir.path().join(format!("b-{format}"))).unwrap();
        let loaded = load(&b, &file).unwrap();
        let name = &loaded[0].name;
        let (digest, info) = manifest(&b, name);
        assert_eq!(config_digest(&info), imported.config, "{format}");
        if format == "oci-archive" {
            assert_eq!(digest, imported.digest, "{format}");
        }
    }
}

#[test]
fn mutated_archives_never_panic_and_never_record_unverified_content() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let tar = tar_bytes(&[("etc/motd", b"hello\n"), ("bin/x", &[3u8; 3000])]);
    let plain = dir.path().join("rootfs.tar");
    berth_fsutil::atomic_write(&plain, &tar).unwrap();
    import(&a, &plain, NAME);
    let mut originals = Vec::new();
    for format in [ArchiveFormat::Docker, ArchiveFormat::Oci] {
        let file = dir.path().join(format!("{format}.tar"));
        save(&a, &[NAME], &file, format).unwrap();
        originals.push(std::fs::read(&file).unwrap());
    }
    let mut rng = berth_test_support::XorShift::new(0x0a7c_417e);
    let file = dir.path().join("mutated.tar");
    let (mut loaded, mut refused) = (0, 0);
    for round in 0..300 {
        let mut bytes = originals[round % 2].clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = usize::try_from(rng.next_u64() % bytes.len() as u64).unwrap();
            bytes[at] ^= 1 << (rng.next_u64() % 8);
        }
        berth_fsutil::atomic_replace(&file, &bytes).unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        match load(&store, &file) {
            Ok(images) => {
                loaded += 1;
                // whatever was recorded is complete and verified
                for image in images {
                    let (_, info) = manifest(&store, &image.name);
                    for d in info.layers.iter().chain(info.config.iter()) {
                        let digest = berth_oci::descriptor_digest(d).unwrap();
                        store.read_blob(&digest).unwrap();
                    }
                }
            }
            Err(_) => refused += 1,
        }
        for image in store.images().unwrap() {
            store.remove_image(&image.name).unwrap();
        }
    }
    // flips in padding and unused header fields are harmless; the rest is refused
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
}

#[test]
fn import_of_a_directory_keeps_hard_links_symlinks_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let root = rootfs(dir.path());
    std::fs::hard_link(root.join("bin/busybox"), root.join("bin/ls")).unwrap();
    let mut perms = std::fs::metadata(root.join("etc/hostname"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o4750);
    std::fs::set_permissions(root.join("etc/hostname"), perms).unwrap();
    import(&store, &root, NAME);
    let (_, info) = manifest(&store, NAME);
    let layer = store
        .open_blob(&berth_oci::descriptor_digest(&info.layers[0]).unwrap())
        .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut seen = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().to_str().unwrap().to_owned();
        let h = e.header();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_str().unwrap().to_owned());
        seen.insert(
            name,
            (h.entry_type(), h.mode().unwrap(), h.size().unwrap(), link),
        );
    }
    let names: Vec<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin/busybox",
            "bin/ls",
            "bin/sh",
            "etc",
            "etc/hostname",
            "tmp"
        ],
        "in name order, without the root"
    );
    // busybox comes first in name order: ls is the link
    assert_eq!(seen["bin/busybox"].0, tar::EntryType::Regular);
    assert_eq!(seen["bin/busybox"].2, 300_000);
    assert_eq!(seen["bin/ls"].0, tar::EntryType::Link);
    assert_eq!(seen["bin/ls"].3.as_deref(), Some("bin/busybox"));
    assert_eq!(seen["bin/sh"].0, tar::EntryType::Symlink);
    assert_eq!(seen["bin/sh"].3.as_deref(), Some("busybox"));
    assert_eq!(seen["etc/hostname"].1 & 0o7777, 0o4750);
    assert_eq!(seen["tmp"].0, tar::EntryType::Directory);
}

#[test]
fn import_of_a_directory_keeps_extended_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let root = rootfs(dir.path());
    let file = root.join("bin/busybox");
    // a capability set as `setcap cap_net_raw+ep` writes it (VFS_CAP_REVISION_2)
    let cap: [u8; 20] = [
        0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    rustix::fs::setxattr(
        &file,
        "security.capability",
        &cap,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(&file, "user.note", b"kept", rustix::fs::XattrFlags::empty()).unwrap();
    import(&store, &root, NAME);
    let (_, info) = manifest(&store, NAME);
    let layer = store
        .open_blob(&berth_oci::descriptor_digest(&info.layers[0]).unwrap())
        .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut found = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_str().unwrap().to_owned();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                found.insert(
                    (name.clone(), x.key().unwrap().to_owned()),
                    x.value_bytes().to_vec(),
                );
            }
        }
    }
    assert_eq!(
        found.get(&(
            "bin/busybox".to_owned(),
            "SCHILY.xattr.security.capability".to_owned()
        )),
        Some(&cap.to_vec()),
        "{found:?}"
    );
    assert_eq!(
        found.get(&(
            "bin/busybox".to_owned(),
            "SCHILY.xattr.user.note".to_owned()
        )),
        Some(&b"kept".to_vec())
    );
    assert_eq!(found.len(), 2, "only busybox has xattrs: {found:?}");
}

#[test]
fn import_records_the_platform_and_message_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let opts = ImportOptions {
        message: Some("from a rootfs".into()),
        platform: Platform::parse("linux/arm64/v8").unwrap(),
        ..ImportOptions::default()
    };
    let imported = runtime()
        .block_on(archive::import(&store, &rootfs(dir.path()), NAME, &opts))
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&imported.config).unwrap()).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["history"][0]["comment"], "from a rootfs");
    assert_eq!(
        store.image(NAME).unwrap().unwrap().platform.as_deref(),
        Some("linux/arm64/v8")
    );
    // saving it for another platform than this machine's works: the image is not an index
    let file = dir.path().join("arm.tar");
    save(&store, &[NAME], &file, ArchiveFormat::Oci).unwrap();
}

#[test]
fn import_writes_the_config_asked_for_and_a_fixed_time_makes_the_same_image_twice() {
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let mut config = serde_json::Map::new();
    config.insert(
        "Entrypoint".into(),
        serde_json::json!(["/bin/busybox", "sh"]),
    );
    config.insert("User".into(), serde_json::json!("65532"));
    config.insert(
        "Labels".into(),
        serde_json::json!({"org.opencontainers.image.version": "1.0"}),
    );
    let created = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let opts = ImportOptions {
        config: config.clone(),
        created: Some(created),
        ..ImportOptions::default()
    };
    let mut digests = Vec::new();
    for n in 0..2 {
        let store = Store::open(dir.path().join(format!("s{n}"))).unwrap();
        let imported = runtime()
            .block_on(archive::import(&store, &root, NAME, &opts))
            .unwrap();
        let c: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&imported.config).unwrap()).unwrap();
        assert_eq!(c["config"], serde_json::Value::Object(config.clone()));
        assert_eq!(c["created"], "2023-11-14T22:13:20Z");
        assert_eq!(c["history"][0]["created"], "2023-11-14T22:13:20Z");
        digests.push(imported.digest);
    }
    assert_eq!(
        digests[0], digests[1],
        "same tree, same time: same manifest"
    );
    // without a fixed time the config says now: another image
    let store = Store::open(dir.path().join("now")).unwrap();
    let now = runtime()
        .block_on(archive::import(
            &store,
            &root,
            NAME,
            &ImportOptions::default(),
        ))
        .unwrap();
    assert_ne!(now.digest, digests[0]);
}
