//! CVE-2019-5736: the container must never get a writable handle on the runtime binary
//! (a process in the container can open /proc/<runtime pid>/exe while the runtime joins
//! it). Commands that enter a container re-execute the runtime from a protected copy, as
//! runc does:
//!
//! 1. (root, runc ≥ 1.2's method) the binary opened through a private, read-only
//!    overlayfs mount that is never attached anywhere (fsopen/fsmount): no copy, the page
//!    cache is shared, and /proc/<pid>/exe is a file on a read-only mount nobody can reach
//!    to remount;
//! 2. (fallback, runc 1.1.12's method) a sealed memfd copy: cannot be written, grown or
//!    shrunk. Costs a copy of the binary per invocation.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

/// What failed while sealing.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("failed to {what} while re-executing from a sealed copy")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> SealError {
    move |e| SealError::Io {
        what,
        source: e.into(),
    }
}

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Whether `exe` is a sealed memfd or a file of a read-only overlayfs mount.
fn protected(exe: &OwnedFd) -> bool {
    if rustix::fs::fcntl_get_seals(exe).is_ok_and(|s| s.contains(SEALS)) {
        return true;
    }
    let overlay = rustix::fs::fstatfs(exe).is_ok_and(|st| st.f_type == OVERLAYFS_SUPER_MAGIC);
    let ro = rustix::fs::fstatvfs(exe)
        .is_ok_and(|st| st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
    overlay && ro
}

/// Escape a path for an overlayfs lowerdir list.
fn esc(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Open the running binary through a detached read-only overlayfs (an `O_PATH` descriptor
/// to `fexecve`). Lower-only overlayfs (which refuses every write) needs two lower layers:
/// the binary's directory on top, and below it `spare_lower` — an existing directory that
/// neither contains nor is inside the binary's (the runtime's state root, as runc uses its
/// own) — or, without one, an empty detached tmpfs. Older kernels (Debian 12's 6.1; 6.18
/// accepts it) refuse a detached mount as a layer ("failed to clone lowerpath" in the kernel
/// log), hence the spare directory first.
pub fn overlay_copy(spare_lower: Option<&Path>) -> Result<OwnedFd, rustix::io::Errno> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let path = std::fs::read_link("/proc/self/exe").map_err(|_| rustix::io::Errno::NOENT)?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(rustix::io::Errno::INVAL);
    };
    let ro = MountAttrFlags::MOUNT_ATTR_RDONLY
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOSUID;
    let overlay = |second: &Path| -> Result<OwnedFd, rustix::io::Errno> {
        let ctx = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        let lower = format!("{}:{}", esc(dir), esc(second));
        rustix::mount::fsconfig_set_string(&ctx, "lowerdir", lower.as_str())?;
        let _ = rustix::mount::fsconfig_set_string(&ctx, "xino", "off");
        rustix::mount::fsconfig_create(&ctx)?;
        rustix::mount::fsmount(&ctx, FsMountFlags::FSMOUNT_CLOEXEC, ro)
    };
    let detached_tmpfs = || -> Result<OwnedFd, rustix::io::Errno> {
        let tmp = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
        rustix::mount::fsconfig_set_string(&tmp, "size", "4k")?;
        rustix::mount::fsconfig_create(&tmp)?;
        let empty = rustix::mount::fsmount(&tmp, FsMountFlags::FSMOUNT_CLOEXEC, ro)?;
        overlay(Path::new(&format!("/proc/self/fd/{}", empty.as_raw_fd())))
    };
    let spare = spare_lower.filter(|p| !p.starts_with(dir) && !dir.starts_with(p));
    let mnt = match spare.map(overlay) {
        Some(Ok(mnt)) => mnt,
        _ => detached_tmpfs()?,
    };
    rustix::fs::openat(
        &mnt,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Re-execute from a protected copy unless already running from one. Returns `Ok(())`
/// only when the process already runs protected; otherwise it does not return (or returns
/// the error).
///
/// `spare_lower` is an existing directory away from the binary (the state root), for the
/// overlay on kernels that refuse a detached tmpfs as a layer.
pub fn ensure_sealed(
    argv: Vec<OsString>,
    envp: Vec<OsString>,
    spare_lower: Option<&Path>,
) -> Result<(), SealError> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io("open /proc/self/exe"))?;
    if protected(&exe) {
        return Ok(());
    }
    let to_c = |v: Vec<OsString>| -> Vec<CString> {
        v.into_iter()
            .filter_map(|s| CString::new(s.into_vec()).ok())
            .collect()
    };
    let argv_c = to_c(argv);
    let envp_c = to_c(envp);
    if let Ok(fd) = overlay_copy(spare_lower) {
        // returns only on failure: then fall back to the memfd copy
        let _ = crate::sys::fexecve(fd.as_fd(), &argv_c, &envp_c);
    }
    let size = rustix::fs::fstat(&exe)
        .map_err(io("stat /proc/self/exe"))?
        .st_size as u64;
    let mem = rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(io("create a memfd"))?;
    rustix::fs::ftruncate(&mem, size).map_err(io("size the memfd"))?;
    let mut done = 0u64;
    while done < size {
        let n = rustix::fs::sendfile(&mem, &exe, None, (size - done) as usize)
            .map_err(io("copy the binary"))?;
        if n == 0 {
            break;
        }
        done += n as u64;
    }
    rustix::fs::fcntl_add_seals(&mem, SEALS).map_err(io("seal the memfd"))?;
    let err = crate::sys::fexecve(mem.as_fd(), &argv_c, &envp_c);
    Err(SealError::Io {
        what: "execute the sealed copy",
        source: err,
    })
}
