//! File-system operations confined to the unpack target.
//!
//! Every operation is relative to a directory fd. Parent directories are resolved with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from the target's fd (berth-fsutil's
//! in-root resolution: `..` and absolute symlinks resolve as if the target were `/`), and the
//! last component is handled by an `*at` call that never follows it (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `unlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`). So no entry of a
//! layer, whatever symlinks earlier entries planted, makes us write or read outside the root.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

/// The unpack target, opened once.
#[derive(Debug)]
pub(super) struct Root {
    fd: OwnedFd,
}

/// A resolved parent directory (an `O_PATH` fd) and the final component under it.
#[derive(Debug)]
pub(super) struct Parent {
    pub fd: OwnedFd,
}

pub(super) fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

fn dot_if_empty(rel: &[u8]) -> &[u8] {
    if rel.is_empty() { b"." } else { rel }
}

impl Root {
    pub fn open(path: &std::path::Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Open the directory `rel` (components joined by `/`, already validated: no `..`, no
    /// NUL, not absolute) resolved inside the root. Symlinks on the way are followed, but
    /// clamped to the root.
    pub fn open_dir(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        berth_fsutil::open_dir_in_root_at(&self.fd, os(rel))
    }

    /// Like [`Root::open_dir`], creating missing directories (mode 0755, then `on_create`,
    /// which sets their owner) as `tar` does for entries whose parents the layer omits.
    pub fn open_dir_all(
        &self,
        components: &[&[u8]],
        mut on_create: impl FnMut(&OwnedFd, &[u8]) -> io::Result<()>,
    ) -> io::Result<Parent> {
        let full = components.join(&b'/');
        match self.open_dir(&full) {
            Ok(fd) => return Ok(Parent { fd }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut prefix: Vec<u8> = Vec::new();
        let mut dir = self.open_dir(b"")?;
        for comp in components {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(comp);
            dir = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Created relative to the resolved parent fd; the name is a plain
                    // component, and mkdirat never follows a symlink in its last component
                    // (EEXIST when a dangling symlink is in the way).
                    rustix::fs::mkdirat(&dir, os(comp), Mode::from_raw_mode(0o755))?;
                    on_create(&dir, comp)?;
                    self.open_dir(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(Parent { fd: dir })
    }
}

/// `lstat` of `name` in `dir`: `None` when it does not exist.
pub(super) fn lstat_at(dir: &impl AsFd, name: &[u8]) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn is_dir(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// Remove `name` in `dir` and, when it is a directory, everything under it, never following
/// a symlink. A missing `name` is not an error.
pub(super) fn remove_all_at(dir: &impl AsFd, name: &[u8]) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = rustix::fs::openat(
            dir,
            os(name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        clear_dir(&sub, &mut |_| false)?;
        drop(sub);
        rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, os(name), AtFlags::empty())?;
    }
    Ok(())
}

/// Remove every child of the open directory `dir` for which `keep` (given the child's
/// name) is false. Children that are kept and are directories are not descended into here;
/// the caller decides (see the opaque whiteout in apply mode).
pub(super) fn clear_dir(dir: &OwnedFd, keep: &mut dyn FnMut(&[u8]) -> bool) -> io::Result<()> {
    let names = list_dir(dir)?;
    for name in names {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in an open (readable) directory, without `.` and `..`.
pub(super) fn list_dir(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut it = Dir::read_from(dir)?;
    while let Some(ent) = it.read() {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(name.to_vec());
    }
    Ok(names)
}

/// Open the directory `name` in `dir` for reading (to list it or set its xattrs), without
/// following a symlink.
pub(super) fn open_subdir(dir: &impl AsFd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        os(dot_if_empty(name)),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}
