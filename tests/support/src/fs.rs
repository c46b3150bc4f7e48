//! File helpers for fixtures and for inspecting a registry's data directory.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Write a fixture file atomically (through `berth_fsutil`, as the project's lint asks),
/// creating its parent directories.
pub fn write_file(path: impl AsRef<Path>, data: &[u8]) {
    let path = path.as_ref();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", parent.display()));
    }
    berth_fsutil::atomic_write(path, data)
        .unwrap_or_else(|e| panic!("failed to write {}: {e}", path.display()));
}

/// Set a file's modification time (to age a blob or an upload past a GC threshold).
pub fn set_mtime(path: impl AsRef<Path>, t: SystemTime) {
    let path = path.as_ref();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("failed to open {} to set its mtime: {e}", path.display()));
    f.set_modified(t)
        .unwrap_or_else(|e| panic!("failed to set the mtime of {}: {e}", path.display()));
}

/// Every regular file under `root` (recursively, not following symlinks), sorted; empty when
/// `root` does not exist.
pub fn walk_files(root: impl AsRef<Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.as_ref().to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
