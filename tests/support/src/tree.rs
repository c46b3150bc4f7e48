//! Comparing two root filesystems file by file: type, mode (with setuid/setgid/sticky),
//! owner, size, content hash, link target, device number and xattrs. For proving berth's
//! unpacked root filesystems equal a peer's (`umoci unpack`, podman).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_oci::Digest;

/// One file-system object, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `d`, `f`, `l`, `c`, `b`, `p`, `s`.
    pub kind: char,
    /// Permission bits with setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular files only (0 otherwise).
    pub size: u64,
    /// sha256 of a regular file's content.
    pub sha256: Option<Digest>,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
    /// Device number of a character or block device.
    pub rdev: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Every object under `root` (not `root` itself), keyed by its path relative to `root`
/// (bytes: names need not be UTF-8). Symlinks are not followed.
pub fn tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![Vec::<u8>::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(OsStr::from_bytes(&rel));
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()));
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(entry.file_name().as_bytes());
            let path = entry.path();
            let node = node(&path);
            if node.kind == 'd' {
                stack.push(child.clone());
            }
            out.insert(child, node);
        }
    }
    out
}

/// Describe one path (not following a symlink).
pub fn node(path: &Path) -> Node {
    let md = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("failed to stat {}: {e}", path.display()));
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_file() {
        'f'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        's'
    };
    let sha256 = (kind == 'f').then(|| {
        let data = std::fs::read(path)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
        Digest::sha256_of(&data)
    });
    let link = (kind == 'l').then(|| {
        std::fs::read_link(path)
            .unwrap_or_else(|e| panic!("failed to read link {}: {e}", path.display()))
            .as_os_str()
            .as_bytes()
            .to_vec()
    });
    Node {
        kind,
        mode: if kind == 'l' { 0 } else { md.mode() & 0o7777 },
        uid: md.uid(),
        gid: md.gid(),
        size: if kind == 'f' { md.len() } else { 0 },
        sha256,
        link,
        rdev: if matches!(kind, 'c' | 'b') {
            md.rdev()
        } else {
            0
        },
        xattrs: xattrs(path),
    }
}

/// The xattrs of `path` (not following a symlink), sorted by name.
pub fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value) {
            value.truncate(len);
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    out
}

/// The differences between two trees, one line each (empty when equal): paths only in one,
/// and for paths in both every field that differs.
pub fn diff_trees(
    left_name: &str,
    left: &BTreeMap<Vec<u8>, Node>,
    right_name: &str,
    right: &BTreeMap<Vec<u8>, Node>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, l) in left {
        let p = String::from_utf8_lossy(path);
        match right.get(path) {
            None => out.push(format!("{p}: only in {left_name}")),
            Some(r) if r != l => out.push(format!("{p}: {left_name} {l:?} != {right_name} {r:?}")),
            Some(_) => {}
        }
    }
    for path in right.keys() {
        if !left.contains_key(path) {
            out.push(format!(
                "{}: only in {right_name}",
                String::from_utf8_lossy(path)
            ));
        }
    }
    out
}
