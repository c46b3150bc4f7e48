//! Resolving untrusted relative paths inside a root.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::FsError;

/// Join an untrusted relative path onto `root` lexically, refusing anything that could leave
/// it: absolute paths, `..` components, NUL bytes and empty paths. `.` components are dropped.
///
/// This does not follow symlinks; for paths whose components may be symlinks controlled by
/// someone else, open them with [`open_in_root`].
pub fn join_in_root(root: &Path, rel: &str) -> Result<PathBuf, FsError> {
    let escape = |reason| FsError::Escape {
        root: root.to_owned(),
        path: rel.to_owned(),
        reason,
    };
    if rel.is_empty() {
        return Err(escape("empty path"));
    }
    if rel.contains('\0') {
        return Err(escape("path contains a NUL byte"));
    }
    let mut out = root.to_owned();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(escape("path contains '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(escape("path is absolute"));
            }
        }
    }
    Ok(out)
}

/// Open `rel` for reading inside the directory `root` with `openat2(RESOLVE_IN_ROOT)`: `..`,
/// absolute symlinks and magic links are all resolved as if `root` were `/`, so the result is
/// always inside `root` even when an attacker controls symlinks beneath it.
pub fn open_in_root(root: &Path, rel: &str) -> Result<File, FsError> {
    let open_err = |source: std::io::Error| FsError::Open {
        root: root.to_owned(),
        path: rel.to_owned(),
        source,
    };
    let dir = File::open(root).map_err(open_err)?;
    let fd = rustix::fs::openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| open_err(e.into()))?;
    Ok(File::from(fd))
}

/// Open the directory `rel` beneath the directory fd `root` as an `O_PATH` fd, resolved with
/// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` like [`open_in_root`]: for fd-relative
/// work in a tree someone else controls (unpacking an image layer), where every later
/// operation is an `*at` call on the returned fd that does not follow its last component.
/// An empty `rel` is `root` itself. Errors are the kernel's (`ENOENT`, `ENOTDIR`, …): the
/// caller knows what it was opening and says so.
pub fn open_dir_in_root_at(root: impl AsFd, rel: &OsStr) -> std::io::Result<OwnedFd> {
    let rel = if rel.is_empty() { OsStr::new(".") } else { rel };
    Ok(rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn join_refuses_escapes() {
        let root = Path::new("/srv/root");
        assert_eq!(
            join_in_root(root, "a/./b").unwrap(),
            PathBuf::from("/srv/root/a/b")
        );
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a/..", "a\0b"] {
            assert!(
                matches!(join_in_root(root, bad), Err(FsError::Escape { .. })),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn open_in_root_contains_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        crate::atomic_write(root.join("etc/passwd"), b"inside").unwrap();
        crate::atomic_write(dir.path().join("outside"), b"outside").unwrap();
        // absolute symlink and a `..` symlink both resolve inside the root
        std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("rel")).unwrap();
        let mut s = String::new();
        open_in_root(&root, "abs")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "inside");
        let err = open_in_root(&root, "rel").unwrap_err();
        assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
        s.clear();
        open_in_root(&root, "../../etc/passwd")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "inside");
    }

    #[test]
    fn open_dir_in_root_at_clamps_symlinks_to_the_root() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../etc", root.join("rel")).unwrap();
        let rootfd = File::open(&root).unwrap();
        let inside = std::fs::metadata(root.join("etc")).unwrap().ino();
        for rel in ["abs", "rel", "etc", "../etc"] {
            let fd = open_dir_in_root_at(&rootfd, OsStr::new(rel)).unwrap();
            let st = rustix::fs::fstat(&fd).unwrap();
            assert_eq!(st.st_ino, inside, "{rel} must resolve to <root>/etc");
        }
        let st = rustix::fs::fstat(open_dir_in_root_at(&rootfd, OsStr::new("")).unwrap()).unwrap();
        assert_eq!(st.st_ino, std::fs::metadata(&root).unwrap().ino());
    }
}
