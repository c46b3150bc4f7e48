//! Mounts: what a snapshot's [`Mount`]s are, and performing and undoing them.
//!
//! An overlay mount's options travel to the kernel in one page (4096 bytes) of mount data; a
//! long `lowerdir=` list does not fit. As containerd's `mount_linux.go`, [`mount_all`] then
//! mounts with the lower directories relative to their common parent (a thread that has its
//! own working directory through `unshare(CLONE_FS)`, so the process's is untouched). On
//! kernels with the `lowerdir+` key (6.8+) it first uses the new mount API instead, one
//! `fsconfig` call per layer, where no page limit applies (each path must be under 256
//! bytes). Either way overlayfs itself stacks at most 500 lower layers.

use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use serde::{Deserialize, Serialize};

use super::error::MountError;

/// The kernel copies at most one page of mount data.
pub const MOUNT_DATA_LIMIT: usize = 4096;

/// The most lower layers overlayfs stacks (`OVL_MAX_STACK`).
pub const OVERLAY_MAX_LOWER: usize = 500;

/// One mount, as containerd's `mount.Mount`: `type`, `source`, `options`. `overlay` mounts
/// carry `lowerdir=`, `upperdir=`, `workdir=` options with absolute paths; `bind` mounts
/// carry `rbind` and `ro` or `rw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

impl Mount {
    pub(crate) fn bind(source: PathBuf, read_only: bool) -> Mount {
        Mount {
            kind: "bind".into(),
            source,
            options: vec!["rbind".into(), if read_only { "ro" } else { "rw" }.into()],
        }
    }

    /// The value of option `key=VALUE`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// Whether this mount is read-only.
    pub fn is_read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
            || (self.kind == "overlay" && self.option("upperdir").is_none())
    }

    /// The lower directories of an overlay mount, uppermost first.
    pub fn lowerdirs(&self) -> Vec<PathBuf> {
        self.option("lowerdir")
            .map(|l| l.split(':').map(PathBuf::from).collect())
            .unwrap_or_default()
    }
}

/// The directory where a writable snapshot's changes live, so a layer can be unpacked into
/// it directly (containerd's overlay fast path): the `upperdir` of an overlay, the source of
/// a writable bind. Changes written there must use overlayfs's format for deletions
/// (a `0/0` character device for a whiteout, `trusted.overlay.opaque=y` on an opaque
/// directory) when the snapshot has a parent. `None` for read-only mounts.
pub fn writable_dir(mounts: &[Mount]) -> Option<PathBuf> {
    match mounts {
        [m] if m.kind == "overlay" => m.option("upperdir").map(PathBuf::from),
        [m] if m.kind == "bind" && !m.is_read_only() => Some(m.source.clone()),
        _ => None,
    }
}

/// How [`mount_all_with`] passes an overlay's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One `mount(2)` when the options fit in a page, else `lowerdir+` (new mount API), else
    /// relative paths. What [`mount_all`] does.
    Auto,
    /// Always one `mount(2)` with absolute paths (fails past a page: the test of the limit).
    Plain,
    /// `fsopen`/`fsconfig("lowerdir+")` per layer/`fsmount`/`move_mount`.
    LowerdirPlus,
    /// `mount(2)` from the lower directories' common parent, with relative paths.
    Relative,
}

/// Mount `mounts` on `target`, in order (containerd's `mount.All`).
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    mount_all_with(mounts, target, Strategy::Auto)
}

/// [`mount_all`] with a chosen [`Strategy`] for overlay mounts.
pub fn mount_all_with(
    mounts: &[Mount],
    target: &Path,
    strategy: Strategy,
) -> Result<(), MountError> {
    for m in mounts {
        match m.kind.as_str() {
            "bind" => mount_bind(m, target)?,
            "overlay" => mount_overlay(m, target, strategy)?,
            other => {
                return Err(MountError::Unsupported {
                    fstype: other.to_owned(),
                    target: target.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// How long [`unmount`] keeps retrying a mount the kernel calls busy.
const UNMOUNT_BUSY_FOR: std::time::Duration = std::time::Duration::from_millis(2500);

/// Unmount `target` (one mount).
///
/// A mount is busy for a moment when another thread of this process forks while it has a
/// file under the mount open: the child holds a copy of the descriptor until its `exec`
/// closes it (`O_CLOEXEC`). As containerd's `mount.Unmount` (50 tries, 50 ms apart),
/// `EBUSY` is retried for up to 2.5 s before it is reported; anything else fails at once.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    let deadline = std::time::Instant::now() + UNMOUNT_BUSY_FOR;
    let mut wait = std::time::Duration::from_millis(1);
    loop {
        match rustix::mount::unmount(target, UnmountFlags::empty()) {
            Err(rustix::io::Errno::BUSY) if std::time::Instant::now() < deadline => {
                pause(wait);
                wait = (wait * 2).min(std::time::Duration::from_millis(50));
            }
            r => {
                return r.map_err(|e| MountError::Unmount {
                    target: target.to_owned(),
                    source: e.into(),
                });
            }
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "waiting for another process to drop a mount, not a test"
)]
fn pause(d: std::time::Duration) {
    std::thread::sleep(d);
}

fn mount_err(m: &Mount, target: &Path, source: io::Error) -> MountError {
    const SHOWN: usize = 300;
    let mut options = m.options.join(",");
    if options.len() > SHOWN {
        let total = options.len();
        let mut end = SHOWN;
        while !options.is_char_boundary(end) {
            end -= 1;
        }
        options.truncate(end);
        options.push_str(&format!("… ({total} bytes)"));
    }
    MountError::Mount {
        fstype: m.kind.clone(),
        source_path: m.source.clone(),
        target: target.to_owned(),
        options,
        source,
    }
}

fn mount_bind(m: &Mount, target: &Path) -> Result<(), MountError> {
    let recursive = m.options.iter().any(|o| o == "rbind");
    let r = if recursive {
        rustix::mount::mount_bind_recursive(&m.source, target)
    } else {
        rustix::mount::mount_bind(&m.source, target)
    };
    r.map_err(|e| mount_err(m, target, e.into()))?;
    if m.is_read_only() {
        // A bind mount takes MS_RDONLY only on a remount.
        if let Err(e) =
            rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
        {
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
            return Err(mount_err(m, target, e.into()));
        }
    }
    Ok(())
}

/// Escape a path for the comma-separated mount data (`\`, `,` and `:` are special to
/// overlayfs's option parser).
fn escape(p: &str) -> String {
    let mut s = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, '\\' | ',' | ':') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// The overlay options as mount data, with `rel` applied to the lower directories.
fn overlay_data(m: &Mount, lowers: &[String]) -> String {
    let mut parts = Vec::with_capacity(m.options.len());
    for o in &m.options {
        if o.starts_with("lowerdir=") {
            let joined: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
            parts.push(format!("lowerdir={}", joined.join(":")));
        } else if let Some((k, v)) = o.split_once('=') {
            parts.push(format!("{k}={}", escape(v)));
        } else if o != "ro" && o != "rw" {
            parts.push(o.clone());
        }
    }
    parts.join(",")
}

fn mount_flags(m: &Mount) -> MountFlags {
    if m.options.iter().any(|o| o == "ro") {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    }
}

fn mount_overlay(m: &Mount, target: &Path, strategy: Strategy) -> Result<(), MountError> {
    // root in a user namespace (rootless berth) cannot use `trusted.overlay.*` xattrs: the
    // layers were unpacked with `user.overlay.*` ones, which `userxattr` makes overlayfs read
    let with_userxattr;
    let m = if berth_fsutil::running_in_user_namespace()
        && !m.options.iter().any(|o| o == "userxattr")
    {
        let mut c = m.clone();
        c.options.push("userxattr".into());
        with_userxattr = c;
        &with_userxattr
    } else {
        m
    };
    let lowers: Vec<String> = m
        .lowerdirs()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if lowers.len() > OVERLAY_MAX_LOWER {
        return Err(MountError::TooManyLayers {
            target: target.to_owned(),
            layers: lowers.len(),
            max: OVERLAY_MAX_LOWER,
        });
    }
    let data = overlay_data(m, &lowers);
    let fits = data.len() < MOUNT_DATA_LIMIT;
    match strategy {
        Strategy::Plain => plain(m, target, &data),
        Strategy::LowerdirPlus => lowerdir_plus(m, target).map_err(|e| mount_err(m, target, e)),
        Strategy::Relative => relative(m, target, &lowers),
        Strategy::Auto if fits => plain(m, target, &data),
        Strategy::Auto => match lowerdir_plus(m, target) {
            Ok(()) => Ok(()),
            // EINVAL: a kernel without `lowerdir+` (before 6.8) or a path of 256 bytes or
            // more; ENOSYS: no new mount API. Fall back to relative paths.
            Err(e)
                if matches!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS)
                ) =>
            {
                relative(m, target, &lowers)
            }
            Err(e) => Err(mount_err(m, target, e)),
        },
    }
}

fn plain(m: &Mount, target: &Path, data: &str) -> Result<(), MountError> {
    let data = std::ffi::CString::new(data).map_err(|_| {
        mount_err(
            m,
            target,
            io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount options"),
        )
    })?;
    rustix::mount::mount(
        &m.source,
        target,
        m.kind.as_str(),
        mount_flags(m),
        Some(data.as_c_str()),
    )
    .map_err(|e| mount_err(m, target, e.into()))
}

/// The new mount API: one `fsconfig` per lower layer, so no option string is long.
fn lowerdir_plus(m: &Mount, target: &Path) -> io::Result<()> {
    use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen};
    let ctx = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let _ = fsconfig_set_string(&ctx, "source", m.source.as_path());
    for o in &m.options {
        if let Some(lowers) = o.strip_prefix("lowerdir=") {
            for l in lowers.split(':') {
                fsconfig_set_string(&ctx, "lowerdir+", l)?;
            }
        } else if let Some((k, v)) = o.split_once('=') {
            fsconfig_set_string(&ctx, k, v)?;
        } else if o != "ro" && o != "rw" {
            fsconfig_set_flag(&ctx, o.as_str())?;
        }
    }
    fsconfig_create(&ctx)?;
    let attrs = if m.options.iter().any(|o| o == "ro") {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&ctx, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    rustix::mount::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// The deepest directory containing every path in `paths` (all absolute).
fn common_parent(paths: &[PathBuf]) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for p in paths {
        let dir = p.parent().unwrap_or(Path::new("/")).to_path_buf();
        common = Some(match common {
            None => dir,
            Some(c) => {
                let mut acc = PathBuf::new();
                for (a, b) in c.components().zip(dir.components()) {
                    if a != b {
                        break;
                    }
                    acc.push(a);
                }
                acc
            }
        });
    }
    match common {
        Some(c) if !c.as_os_str().is_empty() => c,
        _ => PathBuf::from("/"),
    }
}

/// containerd's approach: mount from the lower directories' common parent with relative
/// lower paths, in a thread with its own working directory.
fn relative(m: &Mount, target: &Path, lowers: &[String]) -> Result<(), MountError> {
    let abs: Vec<PathBuf> = lowers.iter().map(PathBuf::from).collect();
    let common = common_parent(&abs);
    let rel: Vec<String> = abs
        .iter()
        .map(|p| {
            p.strip_prefix(&common)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_else(|_| p.to_string_lossy().into_owned())
        })
        .collect();
    let data = overlay_data(m, &rel);
    if data.len() >= MOUNT_DATA_LIMIT {
        return Err(MountError::TooLong {
            target: target.to_owned(),
            layers: lowers.len(),
            len: data.len() + 1,
            common,
            limit: MOUNT_DATA_LIMIT,
        });
    }
    let target_abs = if target.is_absolute() {
        target.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| mount_err(m, target, e))?
            .join(target)
    };
    let m2 = m.clone();
    let handle = std::thread::spawn(move || -> Result<(), MountError> {
        // SAFETY: CLONE_FS gives only this thread its own working directory, root and umask;
        // the file descriptor table stays shared, so no other thread's descriptors change.
        // The thread ends right after the mount, taking its working directory with it.
        #[expect(unsafe_code, reason = "unshare(CLONE_FS) for a thread-private cwd")]
        let unshared = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) };
        unshared.map_err(|e| mount_err(&m2, &target_abs, e.into()))?;
        rustix::process::chdir(&common).map_err(|e| mount_err(&m2, &target_abs, e.into()))?;
        plain(&m2, &target_abs, &data)
    });
    match handle.join() {
        Ok(r) => r,
        Err(_) => Err(mount_err(
            m,
            target,
            io::Error::other("the mounting thread panicked"),
        )),
    }
}

/// Check that overlayfs with several lower layers and an upper works in `dir` (a directory on
/// the filesystem the snapshots will live on), by mounting one in a scratch directory under
/// it (containerd's `overlayutils.Supported` and `supportsMultipleLowerDir`).
pub fn check_overlay(dir: &Path) -> Result<(), MountError> {
    let unavailable = |reason: String| MountError::OverlayUnavailable {
        dir: dir.to_owned(),
        reason,
    };
    static CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = dir.join(format!(".overlay-check-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        for d in ["lower1", "lower2", "upper", "work", "merged"] {
            std::fs::create_dir_all(scratch.join(d))
                .map_err(|e| unavailable(format!("cannot create {d}: {e}")))?;
        }
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!(
                    "lowerdir={}:{}",
                    scratch.join("lower2").display(),
                    scratch.join("lower1").display()
                ),
                format!("upperdir={}", scratch.join("upper").display()),
                format!("workdir={}", scratch.join("work").display()),
            ],
        };
        let merged = scratch.join("merged");
        mount_all(&[m], &merged).map_err(|e| {
            let cause = match &e {
                MountError::Mount { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            unavailable(format!("a test mount failed: {cause}"))
        })?;
        unmount(&merged)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
