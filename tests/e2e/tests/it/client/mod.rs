//! The image commands of the `berth` binary (`copy`, `pull`, `push`, `images`, `inspect`,
//! `tag`, `rmi`, `image prune`, `login`) against `berth registry serve` and docker-registry,
//! checked against what skopeo produces for the same copies. One module per concern; the
//! shared test environment is here.

mod auth;
mod faults;
mod first_image;
mod listing;
mod pull_unpack;
mod referrers;
mod roundtrip;
mod terminal;
mod unpack;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_test_support::{
    Digest, Layer, OciLayout, berth_bin, image_config, run_with_timeout, walk_files,
};

pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A temporary home for one test: the berth data directory and docker's config directory,
/// so no test reads or writes the developer's.
pub(crate) struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("berth-client-")
                .tempdir()
                .unwrap(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.args(args)
            .env("XDG_DATA_HOME", self.path("data"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("HOME", self.dir.path())
            // containers' auth.json files, kept inside the test's home too
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("REGISTRY_AUTH_FILE")
            .env("NO_COLOR", "1");
        cmd
    }

    pub(crate) fn try_berth(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(args), Duration::from_secs(120))
    }

    /// Run berth, panic unless it succeeds; returns stdout as text.
    #[track_caller]
    pub(crate) fn berth(&self, args: &[&str]) -> String {
        let out = self.try_berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run berth with `stdin` on its standard input.
    pub(crate) fn berth_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub(crate) fn store_blobs(&self) -> Vec<PathBuf> {
        let dir = self.path("data/berth/store/v1/blobs");
        if dir.exists() {
            walk_files(dir)
        } else {
            Vec::new()
        }
    }
}

/// A layout at `dir` holding one image tagged `tag`; returns its manifest digest.
pub(crate) fn single_image(dir: &Path, tag: &str, seed: u64) -> Digest {
    let mut layout = OciLayout::new(dir);
    let layers = [Layer::random(seed, 3000), Layer::random(seed + 1, 300_000)];
    let config = image_config("linux", host_arch(), &layers);
    let desc = layout.image(&layers, &config);
    layout.tag(&desc, tag);
    desc.digest
}

/// A layout at `dir` holding an index of an amd64 and an arm64 image tagged `tag`.
pub(crate) fn multi_arch(dir: &Path, tag: &str) -> Digest {
    let mut layout = OciLayout::new(dir);
    let mut children = Vec::new();
    for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
        let layers = [Layer::random(100 + i as u64, 5000)];
        let config = image_config("linux", arch, &layers);
        children.push(layout.image(&layers, &config).with_platform("linux", arch));
    }
    let index = layout.index(&children);
    layout.tag(&index, tag);
    index.digest
}

pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub(crate) fn tagged_digest(dir: &Path, tag: &str) -> String {
    let d = OciLayout::resolve_tag(dir, tag)
        .unwrap_or_else(|| panic!("{} has no tag {tag}", dir.display()));
    d["digest"].as_str().unwrap().to_owned()
}
