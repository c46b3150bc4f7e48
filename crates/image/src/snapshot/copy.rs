//! Copying a tree for the native snapshotter, and measuring disk usage.
//!
//! The copy keeps what an image's root filesystem needs: file types (regular, directory,
//! symlink, character and block devices, fifos, sockets), owners, modes with
//! setuid/setgid/sticky, extended attributes (`security.capability` included), hard links
//! within the tree, and modification times. Symlinks are never followed.
//!
//! [`copy_tree_shifted`] also moves every owner up by a constant (a container's id range, for
//! `crate::idmap`'s chowned fallback), rewriting `security.capability` as a version-3 value
//! whose root id moves with it ([`shift_caps`]).

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, Uid};

use super::Usage;

/// A failure naming the path it happened on.
#[derive(Debug)]
pub(crate) struct CopyError {
    pub action: &'static str,
    pub path: std::path::PathBuf,
    pub source: io::Error,
}

fn at(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.to_owned();
    move |source| CopyError {
        action,
        path,
        source,
    }
}

fn rx(e: rustix::io::Errno) -> io::Error {
    e.into()
}

/// Copy the contents of directory `src` into the existing directory `dst`, then give `dst`
/// the attributes of `src`.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), CopyError> {
    copy_tree_shifted(src, dst, 0)
}

/// [`copy_tree`] with every owner (and file capability root id) moved by `by` (up, or down
/// when negative); an id moved out of the id space is an error.
pub(crate) fn copy_tree_shifted(src: &Path, dst: &Path, by: i64) -> Result<(), CopyError> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, by, &mut links)?;
    let meta = fs::symlink_metadata(src).map_err(at("stat", src))?;
    copy_attrs(src, dst, &meta, by)
}

/// [`copy_tree_shifted`] for a destination others may be writing into (a named volume in use
/// by a running container, whose root owns what is in it): the contents are copied into
/// `staging` — a new directory beside `dst` on the same filesystem, out of reach of the
/// container — and each top-level entry is then renamed into `dst` (`RENAME_NOREPLACE`,
/// between directories opened with `O_NOFOLLOW`). Copying into `dst` by path instead would
/// follow a symlink the container swapped in for a directory being filled, onto the host.
pub(crate) fn copy_tree_staged(
    src: &Path,
    dst: &Path,
    staging: &Path,
    by: i64,
) -> Result<(), CopyError> {
    use rustix::fs::{OFlags, RenameFlags};
    let mut links = HashMap::new();
    copy_dir_contents(src, staging, by, &mut links)?;
    let open_dir = |p: &Path| {
        rustix::fs::open(
            p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| at("open directory", p)(rx(e)))
    };
    let (from, to) = (open_dir(staging)?, open_dir(dst)?);
    for entry in fs::read_dir(staging).map_err(at("read directory", staging))? {
        let entry = entry.map_err(at("read directory", staging))?;
        let name = entry.file_name();
        rustix::fs::renameat_with(&from, &name, &to, &name, RenameFlags::NOREPLACE)
            .map_err(|e| at("move into place", &dst.join(&name))(rx(e)))?;
    }
    let meta = fs::symlink_metadata(src).map_err(at("stat", src))?;
    copy_attrs(src, dst, &meta, by)
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    by: i64,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), CopyError> {
    for entry in fs::read_dir(src).map_err(at("read directory", src))? {
        let entry = entry.map_err(at("read directory", src))?;
        let s = entry.path();
        let d = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&s).map_err(at("stat", &s))?;
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &d).map_err(at("link", &d))?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), d.clone());
        }
        if ft.is_dir() {
            rustix::fs::mkdirat(CWD, &d, Mode::from_raw_mode(0o700))
                .map_err(|e| at("create directory", &d)(rx(e)))?;
            copy_dir_contents(&s, &d, by, links)?;
        } else if ft.is_file() {
            let mut from = fs::File::open(&s).map_err(at("open", &s))?;
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&d)
                .map_err(at("create", &d))?;
            io::copy(&mut from, &mut to).map_err(at("copy to", &d))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&s).map_err(at("read link", &s))?;
            rustix::fs::symlinkat(&target, CWD, &d).map_err(|e| at("create symlink", &d)(rx(e)))?;
        } else {
            let kind = if ft.is_char_device() {
                FileType::CharacterDevice
            } else if ft.is_block_device() {
                FileType::BlockDevice
            } else if ft.is_fifo() {
                FileType::Fifo
            } else if ft.is_socket() {
                FileType::Socket
            } else {
                FileType::Unknown
            };
            rustix::fs::mknodat(CWD, &d, kind, Mode::from_raw_mode(0o600), meta.rdev())
                .map_err(|e| at("create node", &d)(rx(e)))?;
        }
        copy_attrs(&s, &d, &meta, by)?;
    }
    Ok(())
}

/// Owner, then mode (a chown clears setuid/setgid), then xattrs (a chown clears
/// `security.capability`), then times (last, after a directory's entries were created).
fn copy_attrs(src: &Path, dst: &Path, meta: &fs::Metadata, by: i64) -> Result<(), CopyError> {
    let symlink = meta.file_type().is_symlink();
    let shift = |id: u32| {
        shift_id(id, by).ok_or_else(|| {
            at("shift the owner of", src)(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("id {id} moved by {by} is out of the id space"),
            ))
        })
    };
    rustix::fs::chownat(
        CWD,
        dst,
        Some(Uid::from_raw(shift(meta.uid())?)),
        Some(Gid::from_raw(shift(meta.gid())?)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| at("change owner of", dst)(rx(e)))?;
    if !symlink {
        rustix::fs::chmodat(
            CWD,
            dst,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            AtFlags::empty(),
        )
        .map_err(|e| at("change mode of", dst)(rx(e)))?;
    }
    copy_xattrs(src, dst, by)?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| at("set times of", dst)(rx(e)))
}

fn copy_xattrs(src: &Path, dst: &Path, by: i64) -> Result<(), CopyError> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(src, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(()),
            Err(e) => return Err(at("list xattrs of", src)(rx(e))),
        }
    };
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let mut value = vec![0u8; 4096];
        let len = loop {
            match rustix::fs::lgetxattr(src, name, &mut value[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(rustix::io::Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(at("read xattr of", src)(rx(e))),
            }
        };
        if len == usize::MAX {
            continue;
        }
        value.truncate(len);
        if by != 0 && name == CAPS_XATTR {
            value = shift_caps(&value, by).ok_or_else(|| {
                at("shift security.capability of", src)(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a version 2 or 3 capability",
                ))
            })?;
        }
        rustix::fs::lsetxattr(dst, name, &value, rustix::fs::XattrFlags::empty())
            .map_err(|e| at("set xattr on", dst)(rx(e)))?;
    }
    Ok(())
}

/// `id` moved by `by`, if still an id.
fn shift_id(id: u32, by: i64) -> Option<u32> {
    u32::try_from(i64::from(id).checked_add(by)?).ok()
}

const CAPS_XATTR: &str = "security.capability";
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;

/// A `security.capability` value (version 2: 20 bytes; version 3: 24, ending with the root
/// id) as a version-3 value whose root id is moved by `by`: the file's capabilities then
/// apply in the user namespace whose root is that id (a version-2 value applies in every
/// namespace below the host's), as the kernel shows them through an id-mapped mount.
pub(crate) fn shift_caps(value: &[u8], by: i64) -> Option<Vec<u8>> {
    let magic = u32::from_le_bytes(value.get(..4)?.try_into().ok()?);
    let rootid = match (magic & VFS_CAP_REVISION_MASK, value.len()) {
        (VFS_CAP_REVISION_2, 20) => 0,
        (VFS_CAP_REVISION_3, 24) => u32::from_le_bytes(value.get(20..24)?.try_into().ok()?),
        _ => return None,
    };
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&((magic & !VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_3).to_le_bytes());
    out.extend_from_slice(value.get(4..20)?);
    out.extend_from_slice(&shift_id(rootid, by)?.to_le_bytes());
    Some(out)
}

/// Disk usage of the tree under `dir`: allocated bytes and inodes, hard links counted once.
pub(crate) fn usage(dir: &Path) -> io::Result<Usage> {
    let mut seen = HashSet::new();
    let mut u = Usage { size: 0, inodes: 0 };
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            u.inodes += 1;
            u.size += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_become_version_3_with_the_shifted_root() {
        // cap_net_raw+ep, version 2 (what `setcap` writes as host root)
        let mut v2 = vec![0x01, 0, 0, 0x02];
        v2.extend_from_slice(&[0, 0x20, 0, 0, 0, 0, 0, 0]);
        v2.extend_from_slice(&[0; 8]);
        let v3 = shift_caps(&v2, 100000).unwrap();
        assert_eq!(v3.len(), 24);
        assert_eq!(&v3[..4], &[0x01, 0, 0, 0x03]);
        assert_eq!(&v3[4..20], &v2[4..20]);
        assert_eq!(u32::from_le_bytes(v3[20..].try_into().unwrap()), 100000);
        // version 3 for root id 1000 → 101000
        let mut v3b = v3.clone();
        v3b[20..].copy_from_slice(&1000u32.to_le_bytes());
        let out = shift_caps(&v3b, 100000).unwrap();
        assert_eq!(u32::from_le_bytes(out[20..].try_into().unwrap()), 101000);
        assert_eq!(shift_caps(&[1, 2, 3], 1), None);
        assert_eq!(shift_caps(&[0; 20], 1), None);
        assert_eq!(shift_caps(&v3b, i64::from(u32::MAX)), None);
        assert_eq!(shift_caps(&v3b, -1001), None, "below 0");
        let down = shift_caps(&v3b, -1000).unwrap();
        assert_eq!(u32::from_le_bytes(down[20..].try_into().unwrap()), 0);
    }
}
