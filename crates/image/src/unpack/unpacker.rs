//! The unpack loop and the handler of each entry type.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};

use super::root::{self, Root, is_dir, lstat_at, os, remove_all_at};
use super::stream::Meter;
use super::{Compression, DeviceNodes, SkipReason, Skipped, UnpackError, UnpackOptions};

/// Linux's `PATH_MAX`: longer entry names are refused.
const PATH_MAX: usize = 4096;
pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// Split an entry name into its components: `""` and `"."` dropped, a leading `/` dropped,
/// `..` and NUL refused.
pub(super) fn normalize(raw: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if raw.contains(&0) {
        return Err("the name contains a NUL byte");
    }
    if raw.len() > PATH_MAX {
        return Err("the name is longer than PATH_MAX (4096 bytes)");
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("the name contains a '..' component"),
            c => out.push(c),
        }
    }
    Ok(out)
}

pub(super) fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// The metadata of one entry, from its header and PAX records.
#[derive(Debug)]
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) mtime: Timespec,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) struct Unpacker<'o> {
    pub(super) root: Root,
    pub(super) root_path: PathBuf,
    pub(super) opts: &'o UnpackOptions,
    /// Paths this layer created (and their ancestors): its own whiteouts never remove them.
    pub(super) unpacked: HashSet<Vec<u8>>,
    /// Directory mtimes, set after all entries (creating children changes them).
    pub(super) dir_times: Vec<(Vec<u8>, Timespec)>,
    pub(super) stats_entries: u64,
    pub(super) whiteouts: u64,
    pub(super) skipped: Vec<Skipped>,
    pub(super) compression: Compression,
}

impl Unpacker<'_> {
    pub(super) fn run<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        meter: &Meter,
    ) -> Result<(), UnpackError> {
        let mut last: Option<String> = None;
        let compression = self.compression.name();
        let entries = archive.entries().map_err(|source| UnpackError::Read {
            compression,
            at_entry: None,
            source,
        })?;
        meter.in_headers.set(true);
        meter.metadata.set(0);
        for item in entries {
            let mut entry = item.map_err(|source| UnpackError::Read {
                compression,
                at_entry: last.clone(),
                source,
            })?;
            meter.in_headers.set(false);
            let raw = entry.path_bytes().into_owned();
            self.entry(&mut entry, &raw)?;
            // Consume what the handler did not read (a directory's or device's data), so
            // the parser's skip to the next header reads only padding.
            io::copy(&mut entry, &mut io::sink()).map_err(|source| UnpackError::Read {
                compression,
                at_entry: Some(lossy(&raw)),
                source,
            })?;
            last = Some(lossy(&raw));
            meter.in_headers.set(true);
            meter.metadata.set(0);
        }
        Ok(())
    }

    pub(super) fn fs_err(
        &self,
        op: &'static str,
        path: &[u8],
    ) -> impl FnOnce(io::Error) -> UnpackError {
        let root = self.root_path.clone();
        let path = lossy(path);
        move |source| UnpackError::Fs {
            op,
            root,
            path,
            source,
        }
    }

    pub(super) fn refused(path: &[u8], reason: &'static str) -> UnpackError {
        UnpackError::Refused {
            path: lossy(path),
            reason,
        }
    }

    pub(super) fn mark_unpacked(&mut self, comps: &[&[u8]]) {
        for i in 1..=comps.len() {
            let p = comps.get(..i).unwrap_or_default().join(&b'/');
            self.unpacked.insert(p);
        }
    }

    pub(super) fn parent(&self, comps: &[&[u8]], raw: &[u8]) -> Result<OwnedFd, UnpackError> {
        let owner = self.implicit_owner();
        let parents = comps
            .get(..comps.len().saturating_sub(1))
            .unwrap_or_default();
        self.root
            .open_dir_all(parents, |dir, name| {
                if let Some((u, g)) = owner {
                    rustix::fs::chownat(
                        dir,
                        os(name),
                        Some(u),
                        Some(g),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                }
                Ok(())
            })
            .map(|p| p.fd)
            .map_err(self.fs_err("resolve the parent directory of", raw))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>, raw: &[u8]) -> Result<(), UnpackError> {
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats_entries += 1;
        if self.stats_entries > self.opts.limits.max_entries {
            return Err(UnpackError::Limit {
                limit: "max_entries",
                value: self.opts.limits.max_entries,
            });
        }
        let comps = normalize(raw).map_err(|reason| Self::refused(raw, reason))?;
        let Some((&name, _)) = comps.split_last() else {
            // "./" or "/": the root itself. Only a directory may describe it.
            if etype.is_dir() {
                let meta = self.meta(entry, raw)?;
                let fd = root::open_subdir(self.root.fd(), b"")
                    .map_err(self.fs_err("open the root directory", raw))?;
                self.apply_meta_fd(&fd, &meta, raw)?;
                self.dir_times.push((Vec::new(), meta.mtime));
                return Ok(());
            }
            return Err(Self::refused(
                raw,
                "a non-directory entry names the root itself",
            ));
        };
        if name.starts_with(WHITEOUT_PREFIX) {
            self.whiteouts += 1;
            return self.whiteout(&comps, name, entry, raw);
        }
        let meta = self.meta(entry, raw)?;
        let parent = self.parent(&comps, raw)?;
        match etype {
            tar::EntryType::Directory => self.dir(&parent, name, &comps, &meta, raw)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
                if raw.ends_with(b"/") && etype != tar::EntryType::GNUSparse =>
            {
                // old (v7) tar: a directory is a regular entry whose name ends in '/'
                self.dir(&parent, name, &comps, &meta, raw)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(
                    &parent,
                    name,
                    entry,
                    &meta,
                    raw,
                    etype == tar::EntryType::GNUSparse,
                )?;
            }
            tar::EntryType::Symlink => self.symlink(&parent, name, entry, &meta, raw)?,
            tar::EntryType::Link => self.hardlink(&parent, name, &comps, entry, raw)?,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.node(&parent, name, etype, entry, &meta, raw)?;
            }
            other => {
                return Err(UnpackError::Unsupported {
                    path: lossy(raw),
                    what: format!("tar entry type {:?}", char::from(other.as_byte())),
                });
            }
        }
        self.mark_unpacked(&comps);
        Ok(())
    }

    /// Make room for a new non-directory `name` (or a directory replacing a non-directory):
    /// whatever is there goes, a directory with everything in it.
    pub(super) fn clear(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        remove_all_at(parent, name).map_err(self.fs_err("remove the existing", raw))
    }

    fn dir(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        comps: &[&[u8]],
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let existing = lstat_at(parent, name).map_err(self.fs_err("stat", raw))?;
        match existing {
            Some(st) if is_dir(&st) => {}
            other => {
                if other.is_some() {
                    self.clear(parent, name, raw)?;
                }
                rustix::fs::mkdirat(parent, os(name), Mode::from_raw_mode(0o700))
                    .map_err(|e| self.fs_err("create directory", raw)(e.into()))?;
            }
        }
        let fd = root::open_subdir(parent, name).map_err(self.fs_err("open directory", raw))?;
        self.apply_meta_fd(&fd, meta, raw)?;
        self.dir_times.push((comps.join(&b'/'), meta.mtime));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        entry: &mut tar::Entry<R>,
        meta: &Meta,
        raw: &[u8],
        sparse: bool,
    ) -> Result<(), UnpackError> {
        self.clear(parent, name, raw)?;
        let fd = rustix::fs::openat(
            parent,
            os(name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.fs_err("create file", raw)(e.into()))?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let mut buf = vec![0u8; 128 * 1024];
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Read {
                        compression: self.compression.name(),
                        at_entry: Some(lossy(raw)),
                        source,
                    });
                }
            };
            let chunk = buf.get(..n).unwrap_or_default();
            if sparse && chunk.iter().all(|b| *b == 0) {
                file.seek(io::SeekFrom::Current(n as i64))
                    .map_err(self.fs_err("seek in", raw))?;
            } else {
                file.write_all(chunk).map_err(self.fs_err("write", raw))?;
            }
            written += n as u64;
        }
        if written != expected {
            return Err(UnpackError::Truncated {
                path: lossy(raw),
                expected,
                actual: written,
            });
        }
        if sparse {
            file.set_len(written)
                .map_err(self.fs_err("set the size of", raw))?;
        }
        self.apply_meta_fd(&file, meta, raw)?;
        rustix::fs::futimens(&file, &times(meta.mtime))
            .map_err(|e| self.fs_err("set the mtime of", raw)(e.into()))?;
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        entry: &mut tar::Entry<R>,
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let target = link_target(entry);
        if target.is_empty() {
            return Err(Self::refused(raw, "a symlink with an empty target"));
        }
        if target.contains(&0) {
            return Err(Self::refused(raw, "a symlink target contains a NUL byte"));
        }
        self.clear(parent, name, raw)?;
        rustix::fs::symlinkat(os(&target), parent, os(name))
            .map_err(|e| self.fs_err("create symlink", raw)(e.into()))?;
        if let Some((u, g)) = self.ids(meta, raw)? {
            rustix::fs::chownat(
                parent,
                os(name),
                Some(u),
                Some(g),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.fs_err("change the owner of", raw)(e.into()))?;
        }
        if !meta.xattrs.is_empty() {
            // No fd-relative lsetxattr before setxattrat (Linux 6.13): go through the
            // parent's fd in /proc, whose last component lsetxattr does not follow.
            let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            path.extend_from_slice(name);
            for (xname, value) in &meta.xattrs {
                if self.reserved_xattr(xname, raw) {
                    continue;
                }
                let r = rustix::fs::lsetxattr(os(&path), os(xname), value, XattrFlags::empty());
                self.xattr_result(r, xname, raw)?;
            }
        }
        self.set_times_at(parent, name, meta.mtime, raw)?;
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        comps: &[&[u8]],
        entry: &mut tar::Entry<R>,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let target = link_target(entry);
        let tcomps = normalize(&target).map_err(|reason| Self::refused(raw, reason))?;
        let Some((&tname, tparents)) = tcomps.split_last() else {
            return Err(Self::refused(raw, "a hardlink to the root directory"));
        };
        if tcomps == comps {
            return Ok(()); // a link to itself: nothing to do
        }
        let tparent = match self.root.open_dir(&tparents.join(&b'/')) {
            Ok(fd) => fd,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) =>
            {
                return Err(Self::refused(
                    raw,
                    "a hardlink to a path that does not exist in the layer",
                ));
            }
            Err(e) => return Err(self.fs_err("resolve the hardlink target of", raw)(e)),
        };
        match lstat_at(&tparent, tname).map_err(self.fs_err("stat the hardlink target of", raw))? {
            None => {
                return Err(Self::refused(
                    raw,
                    "a hardlink to a path that does not exist in the layer",
                ));
            }
            Some(st) if is_dir(&st) => {
                return Err(Self::refused(raw, "a hardlink to a directory"));
            }
            Some(_) => {}
        }
        self.clear(parent, name, raw)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink, never what it names.
        rustix::fs::linkat(&tparent, os(tname), parent, os(name), AtFlags::empty())
            .map_err(|e| self.fs_err("create hardlink", raw)(e.into()))?;
        Ok(())
    }

    fn node<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        etype: tar::EntryType,
        entry: &mut tar::Entry<R>,
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let h = entry.header();
        let bad = |_| Self::refused(raw, "the device number fields are invalid");
        let major = h.device_major().map_err(bad)?.unwrap_or(0);
        let minor = h.device_minor().map_err(bad)?.unwrap_or(0);
        let (ft, kind) = match etype {
            tar::EntryType::Char => (FileType::CharacterDevice, 'c'),
            tar::EntryType::Block => (FileType::BlockDevice, 'b'),
            _ => (FileType::Fifo, 'p'),
        };
        if ft != FileType::Fifo && self.opts.devices == DeviceNodes::Skip {
            self.skipped.push(Skipped {
                path: lossy(raw),
                reason: SkipReason::Device { kind, major, minor },
            });
            return Ok(());
        }
        self.clear(parent, name, raw)?;
        let dev = rustix::fs::makedev(major, minor);
        match rustix::fs::mknodat(parent, os(name), ft, Mode::from_raw_mode(0o600), dev) {
            Ok(()) => {}
            Err(rustix::io::Errno::PERM) if ft != FileType::Fifo => {
                return Err(UnpackError::DeviceNotPermitted {
                    root: self.root_path.clone(),
                    path: lossy(raw),
                    source: rustix::io::Errno::PERM.into(),
                });
            }
            Err(e) => return Err(self.fs_err("create device node", raw)(e.into())),
        }
        self.node_meta(parent, name, meta, raw)
    }

    /// Metadata of a node that cannot be opened for it (a device or fifo).
    fn node_meta(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        // An O_PATH fd of the node itself (never following): fchown/fchmod do not take O_PATH
        // fds, but the *at calls with an empty path and AT_EMPTY_PATH do.
        let fd = rustix::fs::openat(
            parent,
            os(name),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.fs_err("open", raw)(e.into()))?;
        if let Some((u, g)) = self.ids(meta, raw)? {
            rustix::fs::chownat(&fd, "", Some(u), Some(g), AtFlags::EMPTY_PATH)
                .map_err(|e| self.fs_err("change the owner of", raw)(e.into()))?;
        }
        // fchmodat has no AT_EMPTY_PATH before fchmodat2; the node was just created by us in
        // a directory only we write, and is not a symlink, so a by-name chmod is exact.
        rustix::fs::chmodat(
            parent,
            os(name),
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(|e| self.fs_err("change the mode of", raw)(e.into()))?;
        self.set_times_at(parent, name, meta.mtime, raw)?;
        Ok(())
    }

    /// Times of `name` in `parent`, never following it (symlinks, device nodes, fifos).
    fn set_times_at(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        mtime: Timespec,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        rustix::fs::utimensat(parent, os(name), &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fs_err("set the mtime of", raw)(e.into()))
    }

    pub(super) fn set_dir_times(&mut self) -> Result<(), UnpackError> {
        // Deepest first is not needed (setting a child's times does not touch its parent's),
        // but every directory's times come after all entries.
        for (path, mtime) in std::mem::take(&mut self.dir_times) {
            let comps: Vec<&[u8]> = path
                .split(|b| *b == b'/')
                .filter(|c| !c.is_empty())
                .collect();
            let (dir, name): (Vec<u8>, &[u8]) = match comps.split_last() {
                Some((name, parents)) => (parents.join(&b'/'), name),
                None => (Vec::new(), b"."),
            };
            let parent = match self.root.open_dir(&dir) {
                Ok(fd) => fd,
                Err(_) => continue, // removed or replaced later in the layer
            };
            match rustix::fs::utimensat(&parent, os(name), &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
            {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(self.fs_err("set the mtime of", &path)(e.into())),
            }
        }
        Ok(())
    }
}

/// A symlink's or hardlink's target (PAX `linkpath`, GNU long link or the header's), empty
/// when there is none.
fn link_target<R: Read>(entry: &tar::Entry<R>) -> Vec<u8> {
    entry
        .link_name_bytes()
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// A PAX time: `SECONDS[.FRACTION]`, possibly negative.
pub(super) fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut tv_nsec: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    for _ in digits.len()..9 {
        tv_nsec *= 10;
    }
    if secs.starts_with('-') && tv_nsec > 0 {
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: 1_000_000_000 - tv_nsec,
        });
    }
    Some(Timespec { tv_sec, tv_nsec })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        use Compression::*;
        for (mt, c) in [
            ("application/vnd.oci.image.layer.v1.tar", None),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Zstd),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Gzip,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
        ] {
            assert_eq!(Compression::for_media_type(mt).unwrap(), c, "{mt}");
        }
        assert!(matches!(
            Compression::for_media_type("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
            Err(UnpackError::Encrypted { .. })
        ));
        assert!(matches!(
            Compression::for_media_type(
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            ),
            Err(UnpackError::Foreign { .. })
        ));
        assert!(matches!(
            Compression::for_media_type("application/octet-stream"),
            Err(UnpackError::UnknownMediaType { .. })
        ));
    }

    #[test]
    fn normalize_refuses_dotdot_and_nul_and_strips_root() {
        assert_eq!(
            normalize(b"/etc//./passwd").unwrap(),
            vec![&b"etc"[..], b"passwd"]
        );
        assert!(normalize(b"./").unwrap().is_empty());
        assert!(normalize(b"a/../b").is_err());
        assert!(normalize(b"../x").is_err());
        assert!(normalize(b"a\0b").is_err());
        assert!(normalize(&[b'a'; 5000]).is_err());
        // not UTF-8: legal
        assert_eq!(normalize(b"caf\xe9").unwrap(), vec![&b"caf\xe9"[..]]);
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
        assert!(parse_pax_time(b"x").is_none());
    }
}
