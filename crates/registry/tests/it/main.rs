//! In-process integration tests: the whole HTTP stack (server loop, router, handlers,
//! storage layer, filesystem, in-memory or S3 driver) on 127.0.0.1, one module per API
//! resource, and `memory` for the registry over the in-memory driver.

#![allow(
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: failing loudly is the point"
)]
mod blobs;
mod cache;
mod disk_cache;
mod gc;
mod lease;
mod manifests;
mod memory;
mod names;
mod s3;
mod s3_adopt;
mod s3_ranged;
mod s3_requests;
mod uploads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_oci::Digest;
use berth_registry::auth::Authorizer;
use berth_registry::storage::Driver;
use berth_registry::storage::fs::FsDriver;
use berth_registry::storage::memory::MemoryDriver;
use berth_registry::{App, Config};

/// A registry served from a background runtime; stopped (gracefully) on drop.
pub struct TestRegistry {
    pub addr: SocketAddr,
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    agent: ureq::Agent,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("registry");
        let mut r = Self::on_root(&root, config);
        r._dir = Some(dir);
        r
    }

    /// Serve an existing storage root (a "restart" when the previous one was dropped).
    pub fn on_root(root: &Path, config: Config) -> TestRegistry {
        std::fs::create_dir_all(root).unwrap();
        let mut r = Self::serve(FsDriver::new(root), config);
        r.root = root.to_owned();
        r
    }

    /// Serve `driver` (an in-memory one: `root` is then meaningless and left empty).
    pub fn in_memory(driver: MemoryDriver, config: Config) -> TestRegistry {
        Self::serve(driver, config)
    }

    /// Serve any driver (root left empty).
    pub fn serve<D: Driver>(driver: D, config: Config) -> TestRegistry {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listen = SocketAddr::from(([127, 0, 0, 1], 0));
                let server = berth_httpd::Server::bind(berth_httpd::Config::new(listen))
                    .await
                    .unwrap();
                addr_tx.send(server.local_addr()).unwrap();
                let app = Arc::new(App::new(driver, config, Authorizer::disabled(), false));
                server
                    .serve(berth_registry::router(app), async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        TestRegistry {
            addr,
            root: PathBuf::new(),
            _dir: None,
            stop: Some(stop_tx),
            thread: Some(thread),
            agent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body.to_vec()).unwrap();
        let mut resp = self.agent.run(req).unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap()
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[], b"")
    }

    /// Push a blob monolithically; returns its digest.
    pub fn push_blob(&self, name: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let r = self.req(
            "POST",
            &format!("/v2/{name}/blobs/uploads/?digest={d}"),
            &[("content-type", "application/octet-stream")],
            data,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        d
    }

    /// Push `data` monolithically as `d` (right or wrong); returns the status.
    pub fn push_blob_status(&self, name: &str, data: &[u8], d: &Digest) -> u16 {
        self.req(
            "POST",
            &format!("/v2/{name}/blobs/uploads/?digest={d}"),
            &[("content-type", "application/octet-stream")],
            data,
        )
        .status
    }

    /// Push an OCI image manifest over the given blobs (first is the config).
    pub fn push_image(&self, name: &str, tag: &str, layers: &[&[u8]]) -> (Digest, Vec<u8>) {
        let config = self.push_blob(name, br#"{"architecture":"amd64","os":"linux"}"#);
        let mut descs = Vec::new();
        for l in layers {
            let d = self.push_blob(name, l);
            descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d.to_string(),
                "size": l.len(),
            }));
        }
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.to_string(),
                "size": 37,
            },
            "layers": descs,
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        let r = self.req(
            "PUT",
            &format!("/v2/{name}/manifests/{tag}"),
            &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            &bytes,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        (Digest::sha256_of(&bytes), bytes)
    }

    /// Every blob data file in storage, with whether its content matches its digest.
    pub fn stored_blobs(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let base = self.root.join("v1/blobs/sha256");
        let Ok(prefixes) = std::fs::read_dir(&base) else {
            return out;
        };
        for p in prefixes {
            for b in std::fs::read_dir(p.unwrap().path()).unwrap() {
                let b = b.unwrap();
                let hex = b.file_name().to_string_lossy().into_owned();
                let data = std::fs::read(b.path().join("data")).unwrap_or_default();
                let ok = Digest::sha256_of(&data).hex() == hex;
                out.push((hex, ok));
            }
        }
        out
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The first error code of a spec error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Deterministic incompressible bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
