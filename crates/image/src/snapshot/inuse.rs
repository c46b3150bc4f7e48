//! Is a snapshot mounted? Read from `/proc/self/mountinfo` (the caller's mount namespace).
//!
//! A snapshot directory is in use when an overlay mount names a path under it as its
//! `upperdir`, `workdir` or a `lowerdir` (berth's mounts always pass the upper and work
//! directories as absolute paths), or when a mount's root is its `fs` directory (a bind
//! mount: the mount point has the directory's device and inode).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One parsed mount.
#[derive(Debug, Clone)]
pub(crate) struct MountEntry {
    pub dev: (u32, u32),
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub super_options: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse the text of a mountinfo file.
pub(crate) fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (maj, min) = l.get(2)?.split_once(':')?;
            Some(MountEntry {
                dev: (maj.parse().ok()?, min.parse().ok()?),
                mountpoint: PathBuf::from(unescape(l.get(4)?)),
                fstype: (*r.first()?).to_owned(),
                super_options: unescape(r.get(2).copied().unwrap_or_default()),
            })
        })
        .collect()
}

/// The current mounts; empty when mountinfo cannot be read (then nothing is known in use,
/// which callers treat as "not mounted": `/proc` is always there on a working system).
pub(crate) fn current() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// Paths an overlay super-options string names (`upperdir`, `workdir`, each `lowerdir`).
fn overlay_paths(opts: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Options are comma-separated with `\,` escapes; paths in them escape `:` too.
    let mut cur = String::new();
    let mut fields = Vec::new();
    let mut chars = opts.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    for f in fields {
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
            for p in overlay_paths(&m.super_options) {
                if Path::new(&p).starts_with(dir) {
                    return Some(format!("overlay on {} uses {p}", m.mountpoint.display()));
                }
            }
        }
        if let Some(meta) = &fs_meta {
            let dev = (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()));
            if m.dev == dev
                && let Ok(mp) = std::fs::symlink_metadata(&m.mountpoint)
                && mp.dev() == meta.dev()
                && mp.ino() == meta.ino()
            {
                return Some(format!("bind-mounted on {}", m.mountpoint.display()));
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
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - overlay overlay rw,lowerdir=/s/1/fs:/s/2/fs,upperdir=/s/3/fs,workdir=/s/3/work\n";
        let m = parse(text);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].dev, (98, 0));
        assert_eq!(
            overlay_paths(&m[0].super_options),
            vec!["/s/1/fs", "/s/2/fs", "/s/3/fs", "/s/3/work"]
        );
        assert!(in_use(&m, Path::new("/s/3")).is_some());
        assert!(in_use(&m, Path::new("/s/2")).is_some());
        assert!(in_use(&m, Path::new("/s/4")).is_none());
    }
}
