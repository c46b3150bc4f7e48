//! Whiteouts: overlayfs whiteouts and opaque xattrs, or deletions (image-spec layer.md).

use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode, XattrFlags};

use super::root::{self, is_dir, lstat_at, os};
use super::unpacker::{Unpacker, WHITEOUT_PREFIX, lossy};
use super::{SkipReason, Skipped, UnpackError, WhiteoutMode};

const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

impl Unpacker<'_> {
    pub(super) fn whiteout<R: Read>(
        &mut self,
        comps: &[&[u8]],
        name: &[u8],
        entry: &mut tar::Entry<R>,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let parents = comps
            .get(..comps.len().saturating_sub(1))
            .unwrap_or_default();
        let parent_path = parents.join(&b'/');
        if name == WHITEOUT_OPAQUE {
            return self.opaque(parents, &parent_path, raw);
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            self.skipped.push(Skipped {
                path: lossy(raw),
                reason: SkipReason::AufsMetadata,
            });
            return Ok(());
        }
        let target = name.get(WHITEOUT_PREFIX.len()..).unwrap_or_default();
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Self::refused(
                raw,
                "a whiteout must name one file: not empty, '.' or '..'",
            ));
        }
        let mut target_path = parent_path.clone();
        if !target_path.is_empty() {
            target_path.push(b'/');
        }
        target_path.extend_from_slice(target);
        if self.unpacked.contains(&target_path) {
            // image-spec: a whiteout hides only lower layers' files, not its own layer's.
            return Ok(());
        }
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                let parent = match self.root.open_dir(&parent_path) {
                    Ok(fd) => fd,
                    // nothing below to delete
                    Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) => return Ok(()),
                    Err(e)
                        if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) =>
                    {
                        return Ok(());
                    }
                    Err(e) => return Err(self.fs_err("resolve the directory of whiteout", raw)(e)),
                };
                self.clear(&parent, target, raw)
            }
            WhiteoutMode::Overlay => {
                let meta = self.meta(entry, raw)?;
                let parent = self.parent(comps, raw)?;
                self.clear(&parent, target, raw)?;
                rustix::fs::mknodat(
                    &parent,
                    os(target),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|e| self.fs_err("create the overlay whiteout for", raw)(e.into()))?;
                if let Some((u, g)) = self.ids(&meta, raw)? {
                    rustix::fs::chownat(
                        &parent,
                        os(target),
                        Some(u),
                        Some(g),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| self.fs_err("change the owner of", raw)(e.into()))?;
                }
                Ok(())
            }
        }
    }

    pub(super) fn opaque(
        &mut self,
        parents: &[&[u8]],
        parent_path: &[u8],
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                // the directory itself (created if the layer did not list it)
                let mut comps = parents.to_vec();
                comps.push(b".");
                let dirfd = self.parent(&comps, raw)?;
                let dir = root::open_subdir(&dirfd, b"")
                    .map_err(self.fs_err("open the opaque directory of", raw))?;
                let name = self.opts.opaque_xattr.name();
                rustix::fs::fsetxattr(&dir, name, b"y", XattrFlags::empty())
                    .map_err(|e| self.fs_err("set the opaque xattr for", raw)(e.into()))?;
                Ok(())
            }
            WhiteoutMode::Apply => {
                let dirfd = match self.root.open_dir(parent_path) {
                    Ok(fd) => fd,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(self.fs_err("resolve the opaque directory of", raw)(e)),
                };
                let dir = root::open_subdir(&dirfd, b"")
                    .map_err(self.fs_err("open the opaque directory of", raw))?;
                self.clear_lower(&dir, parent_path.to_vec(), raw)
            }
        }
    }

    /// Remove everything under `dir` that this layer did not create.
    pub(super) fn clear_lower(
        &self,
        dir: &OwnedFd,
        path: Vec<u8>,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let names =
            root::list_dir(dir).map_err(self.fs_err("list the opaque directory of", raw))?;
        for child in names {
            let mut cpath = path.clone();
            if !cpath.is_empty() {
                cpath.push(b'/');
            }
            cpath.extend_from_slice(&child);
            if !self.unpacked.contains(&cpath) {
                self.clear(dir, &child, raw)?;
                continue;
            }
            let st = lstat_at(dir, &child).map_err(self.fs_err("stat", raw))?;
            if st.as_ref().is_some_and(is_dir) {
                let sub = root::open_subdir(dir, &child)
                    .map_err(self.fs_err("open the opaque directory of", raw))?;
                self.clear_lower(&sub, cpath, raw)?;
            }
        }
        Ok(())
    }
}
