//! Fixtures: a snapshot root in a temporary directory whose mounts are undone on drop, and
//! ways to write layers in overlayfs's on-disk format.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::snapshot::{Driver, Mount, SnapshotStore, Snapshotter, mount_all, unmount};

/// Whether the test may run: root, or skip (fail when `BERTH_TEST_REQUIRE_TOOLS=1`).
pub fn require_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    #[expect(clippy::disallowed_methods, reason = "tests read their own switches")]
    let required = std::env::var("BERTH_TEST_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "this test needs root (BERTH_TEST_REQUIRE_TOOLS=1)"
    );
    eprintln!("skipped: needs root");
    false
}

/// A temporary directory; on drop every mount under it is unmounted (deepest first), then
/// it is removed. Panics included.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("berth-snap-")
                .tempdir_in("/tmp")
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self, driver: Driver) -> SnapshotStore {
        SnapshotStore::open(self.path().join(driver.name()), driver).unwrap()
    }

    /// A fresh mount point under the scratch directory.
    pub fn target(&self, name: &str) -> PathBuf {
        let t = self.path().join("mnt").join(name);
        fs::create_dir_all(&t).unwrap();
        t
    }

    /// Mount `mounts` on a new mount point `name`.
    pub fn mount(&self, mounts: &[Mount], name: &str) -> PathBuf {
        let t = self.target(name);
        mount_all(mounts, &t).unwrap();
        t
    }
}

pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for m in mounts_under(self.path()) {
            if unmount(&m).is_err() {
                let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

/// The directory a writable snapshot's changes go to (the unpacker's fast path).
pub fn upper(mounts: &[Mount]) -> PathBuf {
    berth_image::snapshot::writable_dir(mounts).expect("a writable snapshot")
}

pub fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    berth_fsutil::atomic_write(&p, content.as_bytes()).unwrap();
}

/// An overlayfs whiteout: a 0/0 character device named like the deleted entry.
pub fn whiteout(root: &Path, rel: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o000),
        0,
    )
    .unwrap();
}

/// An overlayfs opaque directory: hides everything below it in lower layers.
pub fn opaque_dir(root: &Path, rel: &str) {
    let p = root.join(rel);
    fs::create_dir_all(&p).unwrap();
    rustix::fs::lsetxattr(
        &p,
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

/// Commit a one-layer change on top of `parent` as `name`, written by `fill` into the
/// snapshot's writable directory.
pub fn layer(s: &dyn Snapshotter, name: &str, parent: Option<&str>, fill: impl FnOnce(&Path)) {
    let key = format!("extract-{name}");
    let m = s.prepare(&key, parent, &Default::default()).unwrap();
    fill(&upper(&m));
    s.commit(name, &key, &Default::default()).unwrap();
}

/// What a tree looks like, entry by entry: type, mode, owner, content or link target or
/// device number, and xattrs other than overlayfs's own.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let p = root.join(&r);
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let what = if ft.is_dir() {
                stack.push(r.clone());
                "dir".to_string()
            } else if ft.is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                format!("file {:?} nlink {}", fs::read(&p).unwrap(), m.nlink())
            } else if ft.is_char_device() {
                format!("chr {}", m.rdev())
            } else if ft.is_block_device() {
                format!("blk {}", m.rdev())
            } else if ft.is_fifo() {
                "fifo".to_string()
            } else {
                "other".to_string()
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                m.permissions().mode() & 0o7777
            };
            // A directory's time changes with its entries; anything else keeps its layer's.
            let mtime = if ft.is_dir() {
                String::new()
            } else {
                format!(" mtime {}.{:09}", m.mtime(), m.mtime_nsec())
            };
            let xattrs = xattrs(&p);
            out.insert(
                r.display().to_string(),
                format!(
                    "{what} mode {mode:o} owner {}:{} xattrs {xattrs:?}{mtime}",
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    out
}

pub fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(p, &mut names[..]).unwrap_or(0);
    let mut out = BTreeMap::new();
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let mut v = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]) {
            out.insert(name, v[..len].to_vec());
        }
    }
    out
}
