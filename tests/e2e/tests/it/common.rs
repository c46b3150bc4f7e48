//! Helpers shared by the e2e modules: pushing images over HTTP, snapshots of a data
//! directory, a hermetic skopeo, and a measured rate checked against a limit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    Digest, Http, Layer, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, Resp, image_config, run_with_timeout,
    walk_files, write_file,
};
use serde_json::{Value, json};

/// Paths (relative to `root`) of every file under it.
pub fn snapshot(root: &Path) -> BTreeSet<PathBuf> {
    walk_files(root)
        .into_iter()
        .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
        .collect()
}

/// An image pushed over HTTP.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub repo: String,
    pub manifest: Vec<u8>,
    pub digest: Digest,
    /// Config and layers.
    pub blobs: Vec<Digest>,
}

/// Build an image from `layers` (config included) without pushing it: (manifest bytes,
/// blobs as (digest, bytes) with the config first).
pub fn build_image(layers: &[Layer]) -> (Vec<u8>, Vec<(Digest, Vec<u8>)>) {
    let config = serde_json::to_vec(&image_config("linux", "amd64", layers)).expect("json");
    let mut blobs = vec![(Digest::sha256_of(&config), config.clone())];
    blobs.extend(layers.iter().map(|l| (l.digest(), l.data.clone())));
    let manifest = json!({
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
    });
    (serde_json::to_vec(&manifest).expect("json"), blobs)
}

/// Push an image of random layers (sizes from `layer_sizes`, content from `seed`) and tag it.
#[track_caller]
pub fn push_image(
    http: &Http,
    repo: &str,
    tag: &str,
    seed: u64,
    layer_sizes: &[usize],
) -> PushedImage {
    let layers: Vec<Layer> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, n)| Layer::random(seed * 1000 + i as u64, *n))
        .collect();
    let (manifest, blobs) = build_image(&layers);
    for (d, data) in &blobs {
        assert_eq!(&http.push_blob(repo, data), d);
    }
    http.put_manifest(repo, tag, MEDIA_MANIFEST, &manifest)
        .expect_status(201, &format!("pushing manifest {repo}:{tag}"));
    PushedImage {
        repo: repo.to_owned(),
        digest: Digest::sha256_of(&manifest),
        manifest,
        blobs: blobs.into_iter().map(|(d, _)| d).collect(),
    }
}

/// One `PATCH` with `Content-Range: range`.
#[track_caller]
pub fn patch_chunk(http: &Http, location: &str, range: &str, data: &[u8]) -> Resp {
    http.request(
        "PATCH",
        location,
        &[
            ("content-type", "application/octet-stream"),
            ("content-range", range),
        ],
        Some(data),
    )
}

/// The (first, last) byte of an upload session's `Range: 0-<last>` header.
pub fn parse_range(v: &str) -> (u64, u64) {
    let (a, b) = v
        .trim()
        .trim_start_matches("bytes=")
        .split_once('-')
        .unwrap_or_else(|| panic!("bad Range header {v:?}"));
    (
        a.parse().unwrap_or_else(|_| panic!("bad Range {v:?}")),
        b.parse().unwrap_or_else(|_| panic!("bad Range {v:?}")),
    )
}

/// A skopeo with its own empty registries.conf and auth file, so a developer's
/// configuration cannot change what a test sees.
#[derive(Debug)]
pub struct Skopeo {
    dir: tempfile::TempDir,
}

impl Skopeo {
    pub fn new() -> Skopeo {
        let dir = tempfile::Builder::new()
            .prefix("berth-skopeo-")
            .tempdir()
            .expect("tempdir");
        write_file(dir.path().join("registries.conf"), b"");
        Skopeo { dir }
    }

    /// A temporary auth file path for `skopeo login --authfile`.
    pub fn authfile(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// Run skopeo with `args` (after `--insecure-policy`), returning its output.
    pub fn try_run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("skopeo");
        cmd.arg("--insecure-policy")
            .args(args)
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.path().join("registries.conf"),
            )
            .env(
                "REGISTRY_AUTH_FILE",
                self.dir.path().join("default-auth.json"),
            )
            .env("TMPDIR", self.dir.path());
        run_with_timeout(&mut cmd, Duration::from_secs(600))
    }

    /// Run skopeo and panic unless it succeeds; returns stdout.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = self.try_run(args);
        assert!(
            out.status.success(),
            "skopeo {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// Check that the registry serves the manifest tree rooted at `digest` byte-identical to the
/// layout in `layout_dir`: every manifest by digest, every config and layer by blob GET.
#[track_caller]
pub fn verify_tree_in_registry(http: &Http, repo: &str, digest: &Digest, layout_dir: &Path) {
    let want = berth_test_support::OciLayout::read_blob(layout_dir, digest);
    let r = http.request(
        "GET",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )],
        None,
    );
    r.expect_status(200, &format!("GET manifest {digest}"));
    assert_eq!(
        r.body, want,
        "manifest {digest} in {repo} differs from the pushed one"
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.as_str()),
        "Docker-Content-Digest of {digest}"
    );
    let v: Value = serde_json::from_slice(&want).expect("manifest JSON");
    for m in v["manifests"].as_array().into_iter().flatten() {
        let d = Digest::parse(m["digest"].as_str().expect("digest")).expect("digest");
        verify_tree_in_registry(http, repo, &d, layout_dir);
    }
    let blobs = v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&v["config"]).filter(|c| c.is_object()));
    for b in blobs {
        let d = Digest::parse(b["digest"].as_str().expect("digest")).expect("digest");
        let got = http.get_verified_blob(repo, &d);
        assert_eq!(
            got,
            berth_test_support::OciLayout::read_blob(layout_dir, &d),
            "blob {d}"
        );
    }
}

/// The stdout of a finished `what args…` as text; panics with its stderr unless it
/// succeeded.
#[track_caller]
pub fn stdout_of(what: &str, args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("output is UTF-8")
}

/// `measure()` (Mbit/s) is within ±10 % of `want`: measured again, twice at most, when it is
/// not (a loaded machine's scheduler can starve the shaper's timer or the sender for a
/// moment); a limit that does not hold fails all three.
#[track_caller]
pub fn assert_rate(what: &str, measure: impl Fn() -> f64, want: f64) {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let got = measure();
        eprintln!("{what}: measured {got:.2} Mbit/s, limit {want} Mbit/s");
        if (got - want).abs() <= want * 0.10 {
            return;
        }
        seen.push(format!("{got:.2}"));
    }
    panic!(
        "{what}: measured {} Mbit/s against a limit of {want} Mbit/s",
        seen.join(", ")
    );
}
