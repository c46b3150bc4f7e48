//! An entry's metadata: owner (through the id map), xattrs, mode, in that order.

use std::io::Read;

use rustix::fs::{Gid, Mode, Timespec, Uid, XattrFlags};

use super::root::os;
use super::unpacker::{Meta, Unpacker, lossy, parse_pax_time};
use super::{Ownership, SkipReason, Skipped, UnpackError};

impl Unpacker<'_> {
    pub(super) fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<R>,
        raw: &[u8],
    ) -> Result<Meta, UnpackError> {
        let bad = |reason| Self::refused(raw, reason);
        let h = entry.header();
        let mode = h
            .mode()
            .map_err(|_| bad("the header's mode field is invalid"))?
            & 0o7777;
        let uid = h
            .uid()
            .map_err(|_| bad("the header's uid field is invalid"))?;
        let gid = h
            .gid()
            .map_err(|_| bad("the header's gid field is invalid"))?;
        let secs = h
            .mtime()
            .map_err(|_| bad("the header's mtime field is invalid"))?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(secs).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|_| bad("the PAX header cannot be read"))?
        {
            for ext in pax {
                let ext = ext.map_err(|_| bad("a PAX record is malformed"))?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if name.is_empty() || name.contains(&0) {
                        return Err(bad("an xattr name is empty or contains a NUL byte"));
                    }
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                } else if key.starts_with(b"GNU.sparse.") {
                    return Err(UnpackError::Unsupported {
                        path: lossy(raw),
                        what: "the PAX sparse format (GNU.sparse.*; GNU tar --sparse --posix)"
                            .to_owned(),
                    });
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    pub(super) fn ids(&self, meta: &Meta, raw: &[u8]) -> Result<Option<(Uid, Gid)>, UnpackError> {
        let check = |kind: &'static str, id: u64| -> Result<u32, UnpackError> {
            match u32::try_from(id) {
                Ok(v) if v != u32::MAX => Ok(v),
                _ => Err(UnpackError::Unmapped {
                    path: lossy(raw),
                    kind,
                    id,
                }),
            }
        };
        let (uid, gid) = (check("uid", meta.uid)?, check("gid", meta.gid)?);
        match &self.opts.ownership {
            Ownership::Ignore => Ok(None),
            Ownership::Preserve => Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid)))),
            Ownership::Map(map) => {
                let u = (map.uid)(uid).filter(|v| *v != u32::MAX).ok_or_else(|| {
                    UnpackError::Unmapped {
                        path: lossy(raw),
                        kind: "uid",
                        id: u64::from(uid),
                    }
                })?;
                let g = (map.gid)(gid).filter(|v| *v != u32::MAX).ok_or_else(|| {
                    UnpackError::Unmapped {
                        path: lossy(raw),
                        kind: "gid",
                        id: u64::from(gid),
                    }
                })?;
                Ok(Some((Uid::from_raw(u), Gid::from_raw(g))))
            }
        }
    }

    /// Owner of directories the layer does not list but its entries need.
    pub(super) fn implicit_owner(&self) -> Option<(Uid, Gid)> {
        match &self.opts.ownership {
            Ownership::Map(map) => Some((
                Uid::from_raw((map.uid)(0).unwrap_or(0)),
                Gid::from_raw((map.gid)(0).unwrap_or(0)),
            )),
            Ownership::Preserve | Ownership::Ignore => None,
        }
    }

    /// Owner, then xattrs, then mode (chown clears setuid/setgid and file capabilities, so
    /// they are set after it), on an open file or directory.
    pub(super) fn apply_meta_fd(
        &mut self,
        fd: &impl std::os::fd::AsFd,
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        if let Some((u, g)) = self.ids(meta, raw)? {
            rustix::fs::fchown(fd, Some(u), Some(g))
                .map_err(|e| self.fs_err("change the owner of", raw)(e.into()))?;
        }
        for (name, value) in &meta.xattrs {
            if self.reserved_xattr(name, raw) {
                continue;
            }
            let r = rustix::fs::fsetxattr(fd, os(name), value, XattrFlags::empty());
            self.xattr_result(r, name, raw)?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.fs_err("change the mode of", raw)(e.into()))?;
        Ok(())
    }

    pub(super) fn reserved_xattr(&mut self, name: &[u8], raw: &[u8]) -> bool {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            self.skipped.push(Skipped {
                path: lossy(raw),
                reason: SkipReason::ReservedXattr { name: lossy(name) },
            });
            return true;
        }
        false
    }

    pub(super) fn xattr_result(
        &mut self,
        r: rustix::io::Result<()>,
        name: &[u8],
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        match r {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP) => {
                self.skipped.push(Skipped {
                    path: lossy(raw),
                    reason: SkipReason::XattrNotPermitted { name: lossy(name) },
                });
                Ok(())
            }
            Err(e) => Err(self.fs_err("set an xattr on", raw)(e.into())),
        }
    }
}
