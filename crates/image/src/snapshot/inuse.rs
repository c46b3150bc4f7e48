//! Is a snapshot mounted? Read from `/proc/self/mountinfo` (the caller's mount namespace).
//!
//! A snapshot directory is in use when an overlay mount names a path under it as its
//! `upperdir`, `workdir` or a `lowerdir` (berth's mounts always pass the upper and work
//! directories as absolute paths), or when a mount's root is its `fs` directory (a bind
//! mount: the mount point has the directory's device and inode).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) use berth_fsutil::mountinfo::{Mount as MountEntry, current};

/// Paths an overlay's super options name (`upperdir`, `workdir`, each `lowerdir`), given
/// split and unescaped ([`MountEntry::super_option_list`]); a path's own `\:` and `\,`
/// (overlayfs' escapes of a colon and a comma in a layer path) undone.
fn overlay_paths(options: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for f in options {
        let Some((k, v)) = f.split_once('=') else {
            continue;
        };
        let k = k.trim_end_matches('+');
        if !matches!(k, "upperdir" | "workdir" | "lowerdir" | "datadir") {
            continue;
        }
        let mut part = String::new();
        let mut it = v.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => {
                    if let Some(n) = it.next() {
                        part.push(n);
                    }
                }
                ':' => out.push(std::mem::take(&mut part)),
                _ => part.push(c),
            }
        }
        out.push(part);
    }
    out
}

/// How `dir` (a `snapshots/<id>` directory) is in use, if it is: a sentence for the error.
pub(crate) fn in_use(mounts: &[MountEntry], dir: &Path) -> Option<String> {
    let fs = dir.join("fs");
    let fs_meta = std::fs::symlink_metadata(&fs).ok();
    for m in mounts {
        if m.fstype == "overlay" {
            for p in overlay_paths(&m.super_option_list()) {
                if Path::new(&p).starts_with(dir) {
                    return Some(format!("overlay on {} uses {p}", m.mount_point.display()));
                }
            }
        }
        if let Some(meta) = &fs_meta {
            let dev = (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()));
            if m.dev == dev
                && let Ok(mp) = std::fs::symlink_metadata(&m.mount_point)
                && mp.dev() == meta.dev()
                && mp.ino() == meta.ino()
            {
                return Some(format!("bind-mounted on {}", m.mount_point.display()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overlay_and_escapes() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - overlay overlay rw,lowerdir=/s/1/fs:/s/2/fs,upperdir=/s/3/fs,workdir=/s/3/work\n\
                    37 35 98:1 / /mnt/c rw - overlay overlay rw,lowerdir=/d\\054x/1/fs,upperdir=/d\\054x/2/fs,workdir=/d\\054x/2/work\n";
        let m = berth_fsutil::mountinfo::parse(text);
        assert_eq!(m.len(), 2);
        // a data directory with a comma in its path (mountinfo writes it \054)
        assert!(in_use(&m, Path::new("/d,x/1")).is_some());
        assert!(in_use(&m, Path::new("/d,x/2")).is_some());
        assert_eq!(m[0].mount_point, std::path::PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].dev, (98, 0));
        assert_eq!(
            overlay_paths(&m[0].super_option_list()),
            vec!["/s/1/fs", "/s/2/fs", "/s/3/fs", "/s/3/work"]
        );
        assert!(in_use(&m, Path::new("/s/3")).is_some());
        assert!(in_use(&m, Path::new("/s/2")).is_some());
        assert!(in_use(&m, Path::new("/s/4")).is_none());
    }
}
