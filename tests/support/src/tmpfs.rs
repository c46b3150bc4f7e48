//! [`Tmpfs`]: a small tmpfs mounted on a temporary directory (root only), unmounted on
//! `Drop` (panics included): a real filesystem that fills up, for ENOSPC tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::run_with_timeout;

/// A mounted tmpfs of a fixed size.
#[derive(Debug)]
pub struct Tmpfs {
    mountpoint: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size_kib` KiB (`mount -t tmpfs -o size=…`). Needs root.
    pub fn new(size_kib: u64) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("berth-tmpfs-")
            .tempdir()
            .expect("tempdir");
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).expect("create the mount point");
        let out = run_with_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size_kib}k,mode=0755"))
                .arg("tmpfs")
                .arg(&mountpoint),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "mount -t tmpfs on {} failed (root is required): {}",
            mountpoint.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            mountpoint,
            _dir: dir,
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Bytes available to unprivileged writers (`statvfs`).
    pub fn available(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.mountpoint).expect("statvfs the tmpfs");
        st.f_bavail * st.f_frsize
    }

    /// Total size in bytes (`statvfs`).
    pub fn size(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.mountpoint).expect("statvfs the tmpfs");
        st.f_blocks * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // lazy: a process that still has a file open there must not make this fail
        let _ = run_with_timeout(
            Command::new("umount").arg("-l").arg(&self.mountpoint),
            Duration::from_secs(30),
        );
    }
}
