//! Faults during `berth pull`: a registry killed in the middle of a layer, and a registry
//! serving bytes that do not match their digest. Whatever happens, the store's `blobs/`
//! holds only whole, verified blobs and no image names incomplete content.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_test_support::{
    ChildGuard, Digest, DockerRegistry, Layer, OciLayout, Registry, RegistryOptions, image_config,
    requires_tool, wait_until, walk_files,
};

use super::{Env, host_arch};

/// A layout at `dir` with one image of a small layer and a `big`-byte one, tagged `v1`;
/// returns the manifest digest and the big layer's digest.
fn image_with_big_layer(dir: &Path, big: usize) -> (Digest, Digest) {
    let mut layout = OciLayout::new(dir);
    let layers = [Layer::random(41, 4096), Layer::random(42, big)];
    let config = image_config("linux", host_arch(), &layers);
    let desc = layout.image(&layers, &config);
    layout.tag(&desc, "v1");
    (desc.digest, layers[1].digest())
}

/// Every blob in the store hashes to its name.
fn assert_store_blobs_verify(env: &Env) {
    for path in env.store_blobs() {
        let hex = path.file_name().unwrap().to_str().unwrap();
        let alg = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(
            Digest::sha256_of(&data).as_str(),
            format!("{alg}:{hex}"),
            "{} does not match its name",
            path.display()
        );
    }
}

fn store_has(env: &Env, digest: &Digest) -> bool {
    let hex = digest.as_str().split_once(':').unwrap().1;
    env.store_blobs().iter().any(|p| p.ends_with(hex))
}

/// The bytes received so far by unfinished downloads in the store.
fn ingested_bytes(env: &Env) -> u64 {
    let dir = env.path("data/berth/store/v1/ingest");
    if !dir.exists() {
        return 0;
    }
    walk_files(dir)
        .iter()
        .filter(|p| p.ends_with("data"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn pull_resumes_after_the_registry_is_killed_in_the_middle_of_a_layer() {
    const BIG: usize = 192 << 20;
    let mut registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let a = env.path("a");
    let (digest, big) = image_with_big_layer(&a, BIG);
    let reference = format!("{}/killed:v1", registry.host());
    env.berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &reference]);

    let log = env.path("pull.log");
    let mut pull = ChildGuard::spawn(
        env.command(&["pull", &reference])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .open(&log)
                    .unwrap(),
            ),
    );
    // Kill the server once part, but not all, of the big layer has arrived.
    assert!(
        wait_until(Duration::from_secs(60), || ingested_bytes(&env) > 0),
        "the pull never started writing the big layer"
    );
    registry.kill9();
    let at_kill = ingested_bytes(&env);
    assert!(
        at_kill < BIG as u64,
        "the layer had fully arrived before the kill ({at_kill} bytes)"
    );
    assert!(
        !store_has(&env, &big),
        "a partial layer is visible in blobs/"
    );
    registry.restart();

    let child = pull.child().unwrap();
    let mut status = None;
    wait_until(Duration::from_secs(120), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let stderr = std::fs::read_to_string(&log).unwrap();
    let status = status.unwrap_or_else(|| panic!("the pull did not finish:\n{stderr}"));
    assert!(
        status.success(),
        "the pull did not recover from the restart:\n{stderr}"
    );
    assert!(
        store_has(&env, &big),
        "the big layer is missing after the pull"
    );
    assert_store_blobs_verify(&env);
    let images = env.berth(&["images", "--format", "json"]);
    assert!(images.contains(digest.as_str()), "{images}");
}

/// Overwrite the middle of a blob file with other bytes of the same length.
fn corrupt(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(b"this is not what the digest says").unwrap();
}

fn corrupt_pull_is_refused(env: &Env, reference: &str, layer: &Digest, blob_file: PathBuf) {
    corrupt(&blob_file);
    let out = env.try_berth(&["pull", reference]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(layer.as_str()) && stderr.contains("digest"),
        "the error names neither the blob nor the digest mismatch:\n{stderr}"
    );
    assert!(!store_has(env, layer), "the corrupt layer was stored");
    assert_store_blobs_verify(env);
    let images = env.berth(&["images", "--format", "json"]);
    assert_eq!(images.trim(), "[]", "an image was recorded: {images}");
}

/// An image with one big layer of `size` bytes pushed with berth to `host`/corrupt:v1:
/// the reference and the layer's digest.
fn push_big_layer(env: &Env, host: &str, size: usize) -> (String, Digest) {
    let a = env.path("a");
    let (_, layer) = image_with_big_layer(&a, size);
    let reference = format!("{host}/corrupt:v1");
    env.berth(&["copy", "-q", &format!("oci:{}:v1", a.display()), &reference]);
    (reference, layer)
}

/// Where distribution's layout (and berth's registry's) keeps a blob, below `blobs/`.
fn blob_rel(layer: &Digest) -> String {
    let hex = layer.as_str().split_once(':').unwrap().1;
    format!("sha256/{}/{hex}/data", &hex[..2])
}

#[test]
fn pull_refuses_a_corrupt_blob_from_berth_registry_and_stores_nothing() {
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let (reference, layer) = push_big_layer(&env, &registry.host(), 1 << 20);
    let file = registry.blobs_dir().join(blob_rel(&layer));
    corrupt_pull_is_refused(&env, &reference, &layer, file);
}

#[test]
fn pull_refuses_a_corrupt_blob_from_docker_registry_and_stores_nothing() {
    requires_tool!("docker-registry");
    let registry = DockerRegistry::start(None);
    let env = Env::new();
    let (reference, layer) = push_big_layer(&env, &registry.host(), 1 << 20);
    let file = registry
        .storage_root()
        .join("docker/registry/v2/blobs")
        .join(blob_rel(&layer));
    corrupt_pull_is_refused(&env, &reference, &layer, file);
}

/// `berth copy REGISTRY/… oci:DIR` of an image whose big layer the registry serves
/// corrupted: refused, naming the layer and the mismatch, and nothing of it is visible in
/// the layout — neither the blob nor an `index.json` entry. (The download is hashed once, by
/// the layout's writer, not also by the registry client: this is what keeps that safe.)
fn corrupt_copy_to_a_layout_is_refused(env: &Env, reference: &str, layer: &Digest, blob: PathBuf) {
    corrupt(&blob);
    let out_dir = env.path("out");
    let out = env.try_berth(&[
        "copy",
        "-q",
        reference,
        &format!("oci:{}:v1", out_dir.display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(layer.as_str()) && stderr.contains("digest"),
        "the error names neither the blob nor the digest mismatch:\n{stderr}"
    );
    let hex = layer.as_str().split_once(':').unwrap().1;
    let blobs = walk_files(out_dir.join("blobs"));
    assert!(
        !blobs.iter().any(|p| p.ends_with(hex)),
        "the corrupt layer is visible in the layout: {blobs:?}"
    );
    for path in &blobs {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            !name.starts_with('.'),
            "a temporary file was left: {}",
            path.display()
        );
        let data = std::fs::read(path).unwrap();
        assert_eq!(Digest::sha256_of(&data).as_str(), format!("sha256:{name}"));
    }
    let index = std::fs::read_to_string(out_dir.join("index.json")).unwrap_or_default();
    assert!(!index.contains("\"v1\""), "the image was tagged: {index}");
}

#[test]
fn copy_to_a_layout_refuses_a_corrupt_blob_from_berth_registry() {
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let (reference, layer) = push_big_layer(&env, &registry.host(), 3 << 20);
    let file = registry.blobs_dir().join(blob_rel(&layer));
    corrupt_copy_to_a_layout_is_refused(&env, &reference, &layer, file);
}

#[test]
fn copy_to_a_layout_refuses_a_corrupt_blob_from_docker_registry() {
    requires_tool!("docker-registry");
    let registry = DockerRegistry::start(None);
    let env = Env::new();
    let (reference, layer) = push_big_layer(&env, &registry.host(), 3 << 20);
    let file = registry
        .storage_root()
        .join("docker/registry/v2/blobs")
        .join(blob_rel(&layer));
    corrupt_copy_to_a_layout_is_refused(&env, &reference, &layer, file);
}
