//! A loop block device over a sparse temporary file, detached on `Drop` (panics included):
//! a real block device with a known major:minor for block IO limit tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::bundle::{libc_major, libc_minor};
use crate::run_with_timeout;

/// A loop device attached to a file in a temporary directory.
#[derive(Debug)]
pub struct LoopDevice {
    dev: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopDevice {
    /// Attach a new loop device (`losetup --find --show`) to a sparse file of `size_mib`
    /// MiB. Needs root and `losetup` (util-linux).
    pub fn new(size_mib: u64) -> LoopDevice {
        let dir = tempfile::Builder::new()
            .prefix("berth-loop-")
            .tempdir()
            .expect("tempdir");
        let file = dir.path().join("backing.img");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", file.display()));
        f.set_len(size_mib << 20).expect("size the backing file");
        drop(f);
        let out = run_with_timeout(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&file),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "losetup --find --show {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // own the device before checking anything else, so a failed check still detaches it
        let guard = LoopDevice {
            dev: PathBuf::from(&printed),
            _dir: dir,
        };
        assert!(
            printed.starts_with("/dev/loop"),
            "losetup printed no device: {printed:?}"
        );
        guard
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.dev
    }

    /// The device's (major, minor).
    pub fn major_minor(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.dev)
            .unwrap_or_else(|e| panic!("failed to stat {}: {e}", self.dev.display()))
            .rdev();
        (libc_major(rdev), libc_minor(rdev))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let mut cmd = Command::new("losetup");
        cmd.arg("--detach").arg(&self.dev);
        let ok = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok && !std::thread::panicking() {
            panic!("failed to detach {}", self.dev.display());
        }
    }
}
