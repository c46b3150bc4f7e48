//! Integration tests of berth-image: one binary, one module per subject (root: real overlay
//! mounts in temporary directories).
//!
//! - `snapshot`: the snapshotters (overlay and native), their crash safety and GC.
//! - `hostile`: the hostile-layer corpus (each layer built by test code); every test checks
//!   that nothing outside the target changed, besides the specific refusal or containment.
//! - `features`: everything real layers hold, both whiteout modes, compressions, id maps.
//! - `idmap`: a user namespace by default: the id-range allocator (threads, processes,
//!   release, exhaustion) and root filesystems shifted into a range — id-mapped and chowned —
//!   run by berth-runtime, runc and crun, checked from inside and outside.
//! - `rootfs`: images into chain-ID snapshots: against `umoci unpack` through an overlay
//!   mount, shared layers reused, parallel equals sequential, failures leave nothing
//!   committed, `kill -9` mid-unpack then a retry, image and container references vs `gc`.
//! - `limits`: `--memory`, `--pids-limit`, `--device-write-bps` (a loop device) and
//!   `--cpus` through `build_spec`, each run into with berth-runtime, runc and crun.
//! - `secdef`: berth's column of the security-defaults table (docs/security.md) checked
//!   from inside a default container under berth-runtime, runc and crun.
//! - `rootless`: unpacking as `nobody` (the test binary re-runs itself as uid 65534).
//! - `spec`: image config + `berth run` flags → runtime config, and a built spec run by
//!   berth-runtime, runc and crun, checked from inside.
//! - `umoci`: berth's root filesystems against `umoci unpack`, file by file: busybox, Debian
//!   (debootstrap) split into layers, and a `podman build` image (apply mode and an overlayfs
//!   mount of overlay-mode layers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default,
    clippy::print_stderr,
    reason = "tests fail by panicking, helpers included; fixtures are made, not defaulted"
)]

mod features;
mod hostile;
mod idmap;
mod limits;
mod rootfs;
mod rootfs_stream;
mod rootless;
mod secdef;
mod snapshot;
mod spec;
mod tarball;
mod umoci;

use std::path::{Path, PathBuf};

use berth_image::unpack::{
    Compression, UnpackError, UnpackOptions, UnpackStats, WhiteoutMode, unpack_stream,
};

/// A target root and, beside it, an `outside` directory holding `secret` ("original"): what
/// a hostile layer would try to reach.
#[derive(Debug)]
pub struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
    before: Vec<(PathBuf, String)>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        berth_test_support::write_file(outside.join("secret"), b"original");
        std::fs::create_dir(outside.join("dir")).unwrap();
        berth_test_support::write_file(outside.join("dir/child"), b"child");
        let before = tree_state(tmp.path(), &root);
        Fixture {
            _tmp: tmp,
            root,
            outside,
            before,
        }
    }

    /// The absolute path of `outside` as bytes, for hostile absolute names and targets.
    pub fn outside_abs(&self, rest: &str) -> Vec<u8> {
        format!("{}{rest}", self.outside.display()).into_bytes()
    }

    pub fn unpack(&self, tar: &[u8], opts: &UnpackOptions) -> Result<UnpackStats, UnpackError> {
        unpack_stream(tar, Compression::None, &self.root, opts)
    }

    pub fn apply(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        self.unpack(tar, &UnpackOptions::new(WhiteoutMode::Apply))
    }

    /// Everything outside the root (names, types, contents, link counts) is as it was.
    pub fn assert_outside_untouched(&self) {
        let after = tree_state(self._tmp.path(), &self.root);
        assert_eq!(self.before, after, "something outside the target changed");
    }
}

/// Every path under `dir` except `skip`, with its type, link count and content.
fn tree_state(dir: &Path, skip: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            if p == skip {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            let desc = if md.is_dir() {
                stack.push(p.clone());
                format!("dir {:o}", md.mode())
            } else if md.file_type().is_symlink() {
                format!("link {:?}", std::fs::read_link(&p).unwrap())
            } else {
                format!(
                    "file {:o} nlink={} {:?}",
                    md.mode(),
                    md.nlink(),
                    std::fs::read(&p).unwrap_or_default()
                )
            };
            out.push((p, desc));
        }
    }
    out
}
