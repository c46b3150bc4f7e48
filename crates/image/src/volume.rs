//! Anonymous volumes seeded from the image, as docker does: a new volume mounted at a path
//! where the image has a directory gets a copy of that directory's content (types, owners,
//! modes, xattrs, hard links, times) and the directory's own owner and mode.
//!
//! The source is read from the container's mounted root filesystem, before the container
//! exists: its owners are already the ones the container's user namespace shows as the
//! image's (id-mapped layers, or the chowned copy per range), so the copy keeps them as they
//! are. The path is resolved inside the root (`openat2(RESOLVE_IN_ROOT)`): a symlink in the
//! image cannot make berth copy host files into the volume.
//!
//! The copy is made in a staging directory beside the volume and moved in entry by entry
//! (`copy_tree_staged`): a named volume may be in use by a running container whose root
//! owns its content, and could otherwise swap a directory being filled for a symlink to a
//! host path between two of berth's writes.

use std::path::{Path, PathBuf};

use crate::snapshot::copy::copy_tree_staged;

/// Seeding a volume failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(
        "failed to seed the volume {volume} from the image's {dest}: failed to {action} {path}"
    )]
    Seed {
        volume: PathBuf,
        dest: PathBuf,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Copy the image's directory at `dest` (absolute, inside the root filesystem mounted at
/// `rootfs`) into the empty directory `volume`, which takes its owner and mode. `Ok(false)`
/// when the image has no directory there (the volume is left as it is, empty).
pub fn seed(rootfs: &Path, dest: &Path, volume: &Path) -> Result<bool, VolumeError> {
    seed_shifted(rootfs, dest, volume, 0)
}

/// [`seed`] with every owner moved down by `unshift`: the owners a root filesystem shifted
/// into a range starting there shows become the ids its container sees (a named volume's,
/// which keeps those ids and is bound id-mapped into each container's range).
pub fn seed_unshifted(
    rootfs: &Path,
    dest: &Path,
    volume: &Path,
    unshift: u32,
) -> Result<bool, VolumeError> {
    seed_shifted(rootfs, dest, volume, -i64::from(unshift))
}

fn seed_shifted(rootfs: &Path, dest: &Path, volume: &Path, by: i64) -> Result<bool, VolumeError> {
    let fail = |action, path: &Path| {
        let (volume, dest, path) = (volume.to_owned(), dest.to_owned(), path.to_owned());
        move |source| VolumeError::Seed {
            volume,
            dest,
            action,
            path,
            source,
        }
    };
    let root = std::fs::File::open(rootfs).map_err(fail("open", rootfs))?;
    let rel = dest.strip_prefix("/").unwrap_or(dest);
    let dir = match berth_fsutil::open_dir_in_root_at(&root, rel.as_os_str()) {
        Ok(d) => d,
        // nothing (or no directory) at that path in the image: an empty volume
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
            ) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(fail("open", dest)(e)),
    };
    // the resolved directory through its fd: nothing below it is followed (the copy stats
    // every entry without following symlinks), and nothing runs in the root yet
    use std::os::fd::AsRawFd;
    // (`/.`: the directory itself, not the magic link, is what its attributes are read from)
    let src = PathBuf::from(format!("/proc/self/fd/{}/.", dir.as_raw_fd()));
    let staging =
        staging_dir(volume).map_err(|e| fail("create a staging directory for", volume)(e))?;
    let copied = copy_tree_staged(&src, volume, &staging, by);
    let _ = std::fs::remove_dir_all(&staging);
    copied.map_err(|e| fail(e.action, &e.path)(e.source))?;
    Ok(true)
}

/// A new empty directory (0700) beside `volume`, for [`copy_tree_staged`]; those a killed
/// seeding left there are removed first (the caller holds the lock every set-up holds).
fn staging_dir(volume: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = volume.parent().unwrap_or(Path::new("/"));
    let name = volume
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".seed-{name}-");
    if let Ok(rd) = std::fs::read_dir(parent) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let staging = parent.join(format!("{prefix}{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    Ok(staging)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn the_image_directory_is_copied_and_symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::create_dir_all(d.path().join("host-secret")).unwrap();
        berth_fsutil::atomic_write(d.path().join("host-secret/key"), b"secret").unwrap();
        berth_fsutil::atomic_write(root.join("data/sub/f"), b"seed").unwrap();
        std::fs::set_permissions(root.join("data"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        // an absolute symlink resolves inside the root, not to the host's directory
        let secret = d.path().join("host-secret");
        std::os::unix::fs::symlink(&secret, root.join("escape")).unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        assert!(seed(&root, Path::new("/data"), &vol).unwrap());
        assert_eq!(std::fs::read(vol.join("sub/f")).unwrap(), b"seed");
        assert_eq!(std::fs::metadata(&vol).unwrap().mode() & 0o7777, 0o750);
        let vol2 = d.path().join("vol2");
        std::fs::create_dir(&vol2).unwrap();
        assert!(!seed(&root, Path::new("/escape"), &vol2).unwrap());
        assert!(!seed(&root, Path::new("/missing"), &vol2).unwrap());
        assert_eq!(std::fs::read_dir(&vol2).unwrap().count(), 0);
    }
}
