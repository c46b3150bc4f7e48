//! Id-mapped mounts: a user namespace for a range, `open_tree(OPEN_TREE_CLONE)` +
//! `mount_setattr(MOUNT_ATTR_IDMAP)` of a layer directory, and the one-time probe of
//! whether overlayfs accepts such mounts as lower layers here.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use rustix::mount::{OpenTreeFlags, open_tree};

use super::IdmapError;
use crate::snapshot::{Mount, mount_all};
use crate::spec::IdRange;

/// A user namespace whose ids `0..size` are host ids `host_start..` (uid and gid), kept
/// alive by its file descriptor only.
///
/// Made as containerd's `GetUsernsFD` does: a short-lived child enters a new user namespace
/// (`unshare(CLONE_NEWUSER)` before it execs `cat`, which then waits on its stdin), we write
/// its maps, open `/proc/PID/ns/user` and let it exit.
pub(crate) fn userns_fd(range: IdRange) -> Result<OwnedFd, IdmapError> {
    let err = |action: &'static str| {
        move |source: io::Error| IdmapError::Userns {
            action,
            host_start: range.host_start,
            size: range.size,
            source,
        }
    };
    // an absolute path: a library running as root does not search $PATH
    let cat = ["/usr/bin/cat", "/bin/cat"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/cat");
    let mut cmd = Command::new(cat);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and makes one raw
    // system call (unshare), which is async-signal-safe; it allocates and locks nothing.
    #[expect(
        unsafe_code,
        reason = "pre_exec: unshare(CLONE_NEWUSER) in the forked child"
    )]
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER)
                .map_err(io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(err("start a helper (cat) in a new user namespace"))?;
    let result = (|| {
        let map = format!("0 {} {}\n", range.host_start, range.size);
        let pid = child.id();
        for file in ["uid_map", "gid_map"] {
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/{file}"))
                .and_then(|mut f| f.write_all(map.as_bytes()))
                .map_err(err("write the id map"))?;
        }
        File::open(format!("/proc/{pid}/ns/user"))
            .map(OwnedFd::from)
            .map_err(err("open the user namespace"))
    })();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `struct mount_attr` of `<linux/mount.h>`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached mount of `dir` showing its owners shifted by `userns`'s map (on-disk id `n`
/// appears as host id `host_start + n`). Kept alive by the returned descriptor.
pub(crate) fn idmapped_tree(dir: &Path, userns: &OwnedFd) -> Result<OwnedFd, IdmapError> {
    let err = |source: io::Error| IdmapError::IdmapMount {
        path: dir.to_owned(),
        source,
    };
    let tree = open_tree(
        rustix::fs::CWD,
        dir,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| err(e.into()))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::try_from(userns.as_raw_fd())
            .map_err(|_| err(io::Error::other("bad fd")))?,
    };
    // SAFETY: mount_setattr(2) reads `size_of::<MountAttr>()` bytes from `&attr`, a live
    // `#[repr(C)]` struct of exactly the kernel's layout (MOUNT_ATTR_SIZE_VER0 = 32); the
    // path is a NUL-terminated empty string with AT_EMPTY_PATH; no memory is written.
    #[expect(unsafe_code, reason = "mount_setattr(2): no wrapper in rustix")]
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(tree)
}

/// The path overlayfs is given for a detached mount: `/proc/self/fd/N` (short, so a
/// container with many layers stays far below the one-page mount data limit).
pub(crate) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Whether id-mapped lower layers work for an overlay here (kernel ≥ 5.19 with a filesystem
/// that supports id-mapped mounts, and detached mounts accepted as layers), probed once per
/// kernel release by mounting one in a scratch directory under `dir` (the snapshot root): a
/// success is kept in `dir`'s `idmap-probe` file with the release it was found on (a failure,
/// which may be passing, only for the process). `Err` carries the reason.
pub(crate) fn probe(dir: &Path) -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT.get_or_init(|| probe_cached(dir)).clone()
}

fn probe_cached(dir: &Path) -> Result<(), String> {
    let file = crate::snapshot::layout::idmap_probe(dir);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_owned())
        .unwrap_or_default();
    let known = format!("{release}\nok");
    if !release.is_empty() && std::fs::read_to_string(&file).is_ok_and(|t| t == known) {
        return Ok(());
    }
    let result = probe_uncached(dir);
    if result.is_ok() && !release.is_empty() {
        // a cache: when it cannot be written, the next process probes again
        let _ = berth_fsutil::atomic_write(&file, known.as_bytes());
    }
    result
}

fn probe_uncached(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let scratch = dir.join(format!(".idmap-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(scratch.join(d))
                .map_err(|e| format!("cannot create {d}: {e}"))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(scratch.join("lower/f"))
            .map_err(|e| format!("cannot create a file: {e}"))?;
        let range = IdRange {
            host_start: 1 << 20,
            size: 1,
        };
        let ns = userns_fd(range).map_err(|e| berth_errdefs::error_chain(&e))?;
        let lower = idmapped_tree(&scratch.join("lower"), &ns)
            .map_err(|e| berth_errdefs::error_chain(&e))?;
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", fd_path(&lower).display()),
                format!("upperdir={}", scratch.join("upper").display()),
                format!("workdir={}", scratch.join("work").display()),
            ],
        };
        let merged = scratch.join("merged");
        mount_all(&[m], &merged).map_err(|e| berth_errdefs::error_chain(&e))?;
        let uid = std::fs::symlink_metadata(merged.join("f")).map(|m| m.uid());
        let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
        match uid {
            Ok(u) if u == range.host_start => Ok(()),
            Ok(u) => Err(format!(
                "a file owned by 0 appeared as {u}, not {}",
                range.host_start
            )),
            Err(e) => Err(format!("cannot stat through the mount: {e}")),
        }
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
