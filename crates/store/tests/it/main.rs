//! Integration tests of berth-store: one binary, one module per resource.
//!
//! Some tests re-run this binary as a child process (see [`run_child`]) to get a second
//! process on the same store: the child is an `#[ignore]`d test that does nothing unless
//! `BERTH_STORE_CHILD` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking, helpers included"
)]

mod content;
mod gc;
mod index;
mod layout;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use berth_oci::{Digest, media_type};
use berth_store::{BlobWriter, ImageRecord, Store, StoreError};
use serde_json::json;

/// A store in a fresh temporary data directory (kept alive by the returned guard).
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

/// Store a small blob under a lease that ends on return (as a pull that has finished).
#[expect(
    clippy::result_large_err,
    reason = "the store's own error, as its API returns it"
)]
pub fn put(store: &Store, data: &[u8], expected: Option<&Digest>) -> Result<Digest, StoreError> {
    let lease = store.lease("test put")?;
    store.ingester(&lease).put_bytes(data, expected)
}

/// Open an ingest under a lease that ends on return: the writer does not need it alive,
/// only prune protection does (tests that want that take their own lease).
#[expect(
    clippy::result_large_err,
    reason = "the store's own error, as its API returns it"
)]
pub fn ingest(
    store: &Store,
    key: &str,
    expected: &Digest,
    size: Option<u64>,
) -> Result<BlobWriter, StoreError> {
    let lease = store.lease("test ingest")?;
    store.ingester(&lease).writer(key, expected, size)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Set `path`'s modification time `ago` in the past (blobs are read-only: open for reading).
pub fn age(path: &Path, ago: Duration) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.set_modified(SystemTime::now() - ago)
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

/// Age every blob in the store by an hour, past the default grace period.
pub fn age_all_blobs(store: &Store) {
    for f in berth_test_support::walk_files(store.root().join("blobs")) {
        age(&f, Duration::from_secs(3600));
    }
}

/// Every blob digest present in the store, sorted.
pub fn stored_blobs(store: &Store) -> Vec<Digest> {
    let mut out: Vec<Digest> = berth_test_support::walk_files(store.root().join("blobs"))
        .iter()
        .filter_map(|p| {
            let alg = p.parent()?.file_name()?.to_str()?;
            let hex = p.file_name()?.to_str()?;
            Digest::parse(&format!("{alg}:{hex}")).ok()
        })
        .collect();
    out.sort();
    out
}

/// An image stored blob by blob: its manifest, config and layers.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

impl StoredImage {
    pub fn all(&self) -> Vec<Digest> {
        let mut v = vec![self.manifest.clone(), self.config.clone()];
        v.extend(self.layers.iter().cloned());
        v
    }
}

/// Store an image of two random layers (seeded) through `put_blob_bytes`.
pub fn store_image(store: &Store, seed: u64) -> StoredImage {
    let layers: Vec<Vec<u8>> = (0..2)
        .map(|i| berth_test_support::random_bytes(seed * 10 + i, 1000))
        .collect();
    let layer_digests: Vec<Digest> = layers
        .iter()
        .map(|l| crate::put(store, l, None).unwrap())
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "seed": seed,
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let config_digest = crate::put(store, &config, None).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": layers.iter().zip(&layer_digests).map(|(l, d)| json!({
            "mediaType": media_type::OCI_LAYER_GZIP, "digest": d, "size": l.len(),
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = crate::put(store, &manifest, None).unwrap();
    StoredImage {
        manifest: manifest_digest,
        manifest_size: manifest.len() as u64,
        config: config_digest,
        layers: layer_digests,
    }
}

/// A record naming `digest`.
pub fn record(name: &str, digest: &Digest, media_type: &str, size: u64) -> ImageRecord {
    ImageRecord {
        name: name.to_owned(),
        digest: digest.clone(),
        media_type: media_type.to_owned(),
        size,
        platform: None,
        pulled_at: 0,
    }
}

/// The environment of a child run, if this process is one: `(role, data dir, argument)`.
#[expect(
    clippy::disallowed_methods,
    reason = "the child mode of the test binary is configured by its parent through the environment"
)]
pub fn child_env() -> Option<(String, PathBuf, String)> {
    let role = std::env::var("BERTH_STORE_CHILD").ok()?;
    let dir = std::env::var_os("BERTH_STORE_CHILD_DIR")?;
    let arg = std::env::var("BERTH_STORE_CHILD_ARG").unwrap_or_default();
    Some((role, PathBuf::from(dir), arg))
}

/// Spawn this test binary running the ignored test `test` in child mode `role`.
pub fn spawn_child(test: &str, role: &str, dir: &Path, arg: &str) -> std::process::Child {
    let exe = std::env::current_exe().expect("current exe");
    Command::new(exe)
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BERTH_STORE_CHILD", role)
        .env("BERTH_STORE_CHILD_DIR", dir)
        .env("BERTH_STORE_CHILD_ARG", arg)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

/// Run a child to completion and assert it succeeded.
pub fn run_child(test: &str, role: &str, dir: &Path, arg: &str) {
    let status = spawn_child(test, role, dir, arg)
        .wait()
        .expect("wait child");
    assert!(status.success(), "child {test} ({role}) failed: {status}");
}
