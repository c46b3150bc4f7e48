//! Shared helpers: a runtime, clients, images, and a `docker-registry` guard.

use std::sync::Arc;
use std::time::Duration;

use berth_distribution::{
    BlobPush, BytesSource, Client, ClientOptions, Credential, PlainHttp, Repository, RetryPolicy,
    Secret, StaticCredentials,
};
use berth_oci::Digest;
use berth_test_support::{Layer, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, image_config, random_bytes};
use serde_json::{Value, json};

/// Run `f` on a fresh two-worker runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Options for tests: hermetic roots, quick retries.
pub fn options() -> ClientOptions {
    ClientOptions {
        system_roots: false,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    }
}

pub fn client(opts: ClientOptions) -> Client {
    Client::new(opts).expect("client")
}

/// Options with `user`/`password` for `registry`.
pub fn with_user(
    mut opts: ClientOptions,
    registry: &str,
    user: &str,
    password: &str,
) -> ClientOptions {
    opts.credentials = Some(Arc::new(StaticCredentials::new().with(
        registry,
        Credential::Basic {
            username: user.into(),
            password: Secret::new(password),
        },
    )));
    opts
}

pub fn repo(registry: &str, name: &str) -> Repository {
    Repository::new(registry, name).expect("repository")
}

/// An image built from random layers: (manifest bytes, blobs with the config first).
pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub blobs: Vec<(Digest, Vec<u8>)>,
}

pub fn image(seed: u64, layer_sizes: &[usize]) -> Image {
    let layers: Vec<Layer> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, n)| Layer::random(seed * 1000 + i as u64, *n))
        .collect();
    let config = serde_json::to_vec(&image_config("linux", "amd64", &layers)).expect("json");
    let mut blobs = vec![(Digest::sha256_of(&config), config.clone())];
    blobs.extend(layers.iter().map(|l| (l.digest(), l.data.clone())));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": blobs[0].0.to_string(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": MEDIA_LAYER_GZIP,
            "digest": l.digest().to_string(),
            "size": l.data.len(),
        })).collect::<Vec<Value>>(),
    }))
    .expect("json");
    Image {
        digest: Digest::sha256_of(&manifest),
        manifest,
        blobs,
    }
}

/// Push every blob of `img` and its manifest under `tag`.
pub async fn push_image(c: &Client, r: &Repository, img: &Image, tag: &str) {
    for (d, data) in &img.blobs {
        c.push_blob(r, d, data.len() as u64, BytesSource(data.clone().into()))
            .await
            .unwrap_or_else(|e| panic!("push blob {d}: {e:?}"));
    }
    let d = c
        .put_manifest(r, tag, &img.manifest, MEDIA_MANIFEST)
        .await
        .unwrap_or_else(|e| panic!("push manifest: {e:?}"));
    assert_eq!(d, img.digest);
}

/// An artifact manifest (empty config, one layer) whose subject is `subject`; its blobs are
/// pushed, the manifest is not. Returns (manifest bytes, digest).
pub async fn artifact(
    c: &Client,
    r: &Repository,
    subject: &Image,
    artifact_type: &str,
    payload: &[u8],
) -> (Vec<u8>, Digest) {
    for data in [&b"{}"[..], payload] {
        let d = Digest::sha256_of(data);
        let pushed = c
            .push_blob(r, &d, data.len() as u64, BytesSource(data.to_vec().into()))
            .await
            .expect("push artifact blob");
        assert!(matches!(
            pushed,
            BlobPush::Uploaded | BlobPush::AlreadyPresent
        ));
    }
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::sha256_of(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": Digest::sha256_of(payload).to_string(), "size": payload.len()}],
        "subject": {"mediaType": MEDIA_MANIFEST, "digest": subject.digest.to_string(), "size": subject.manifest.len()},
    }))
    .expect("json");
    let d = Digest::sha256_of(&m);
    (m, d)
}

/// Download a blob into memory through the verifying client.
pub async fn pull_blob(c: &Client, r: &Repository, d: &Digest, size: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let n = c
        .get_blob(r, d, size, &mut out)
        .await
        .unwrap_or_else(|e| panic!("get blob {d}: {e:?}"));
    assert_eq!(n, out.len() as u64);
    out
}

/// `n` random bytes.
pub fn blob(seed: u64, n: usize) -> (Digest, Vec<u8>) {
    let data = random_bytes(seed, n);
    (Digest::sha256_of(&data), data)
}

pub use berth_test_support::DockerRegistry;

/// A client for a plain-HTTP registry on loopback (found by the HTTPS→HTTP fallback).
pub fn plain_client() -> Client {
    client(ClientOptions {
        plain_http: PlainHttp::Auto,
        ..options()
    })
}
