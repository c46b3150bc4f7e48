//! The container's root filesystem, set up by its init inside the new mount namespace.
//! Without a mount namespace of its own (none in the config: the runtime's is inherited)
//! the same mounts are made in the runtime's namespace, under a private bind of the rootfs,
//! without touching the propagation of `/`, and entered with chroot (see
//! [`crate::hostmounts`] for their removal).
//!
//! Order (runc's): make `/` rslave (or `rootfsPropagation`), bind the rootfs onto itself,
//! every `mounts[]` entry in order, default devices and /dev symlinks; then (after the
//! createRuntime/createContainer hooks) `pivot_root(".", ".")` + detach of the old root (or
//! MS_MOVE + chroot with `--no-pivot`), the read-only root and shared propagation, after
//! sysctls the read-only and masked paths, and last an unbindable root.
//!
//! Every destination is resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)` and
//! mounted on through `/proc/self/fd/N`, so a symlink planted in the image (or swapped in
//! while we work, CVE-2021-30465) cannot redirect a mount outside the rootfs.

mod devices;
pub(crate) mod options;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use berth_runtime_spec::{Mount, Spec};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use crate::cgroups::CgroupMounts;
use crate::ipc::{Context, Failure};
use options::MountOptions;

pub(crate) use devices::{create_devices, dev_symlinks};

/// What the init needs to build the root filesystem.
#[derive(Debug)]
pub(crate) struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// Absolute bundle directory (relative bind sources are relative to it).
    pub bundle: &'a Path,
    pub no_pivot: bool,
    /// The container has a mount namespace of its own (new or joined). Without one the
    /// rootfs is set up in the runtime's own mount namespace (see `prepare_root`, `enter`).
    pub own_mntns: bool,
    /// The container has a user namespace (new or joined): devices are bind-mounted and
    /// locked mount flags are kept on remounts.
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// The runtime runs rootless: the container may have no cgroup of its own.
    pub rootless: bool,
    pub cgroup_mounts: Option<&'a CgroupMounts>,
}

/// mount(2) with raw MS_* flags.
pub(crate) fn mount_raw(
    source: &str,
    target: &str,
    fstype: &str,
    flags: u64,
    data: &str,
) -> std::io::Result<()> {
    let data_c = CString::new(data).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let data_opt = if data.is_empty() {
        None
    } else {
        Some(data_c.as_c_str())
    };
    rustix::mount::mount(
        source,
        target,
        fstype,
        MountFlags::from_bits_retain(flags as u32),
        data_opt,
    )
    .map_err(Into::into)
}

/// "/proc/self/fd/N": the magic link through which we mount on an fd-resolved target.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Components of an absolute container path, relative to its root.
fn rel(dest: &Path) -> PathBuf {
    dest.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Open `rel` inside the root directory `root` without escaping it.
pub(crate) fn open_in(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Create every missing directory of `rel` inside `root`; returns the last one (O_PATH).
pub(crate) fn mkdir_all_in(root: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd, Failure> {
    let mut cur = PathBuf::new();
    let mut fd = open_in(root, &cur, OFlags::PATH | OFlags::DIRECTORY)
        .ctx(|| "failed to open the rootfs".to_owned())?;
    for c in rel.components() {
        let Component::Normal(name) = c else { continue };
        cur.push(name);
        fd = match open_in(root, &cur, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => {
                        return Err(Failure::io(
                            format!("failed to create directory {} in the rootfs", cur.display()),
                            &e.into(),
                        ));
                    }
                }
                open_in(root, &cur, OFlags::PATH | OFlags::DIRECTORY)
                    .ctx(|| format!("failed to open {} in the rootfs", cur.display()))?
            }
            Err(e) => {
                return Err(Failure::io(
                    format!("failed to open {} in the rootfs", cur.display()),
                    &e.into(),
                ));
            }
        };
    }
    Ok(fd)
}

/// Create (if missing) the mount point `dest` inside `root`, a directory or, when
/// `file` is set, an empty file, and open it O_PATH.
pub(crate) fn mount_point(
    root: BorrowedFd<'_>,
    dest: &Path,
    file: bool,
) -> Result<OwnedFd, Failure> {
    let r = rel(dest);
    if !file {
        return mkdir_all_in(root, &r);
    }
    if let Ok(fd) = open_in(root, &r, OFlags::PATH) {
        return Ok(fd);
    }
    let parent = r.parent().unwrap_or(Path::new(""));
    let name = r.file_name().unwrap_or_default();
    let dir = mkdir_all_in(root, parent)?;
    match rustix::fs::openat(
        &dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => {
            return Err(Failure::io(
                format!(
                    "failed to create mount point {} in the rootfs",
                    dest.display()
                ),
                &e.into(),
            ));
        }
    }
    open_in(root, &r, OFlags::PATH)
        .ctx(|| format!("failed to open {} in the rootfs", dest.display()))
}

/// Mount flags that a mount in a user namespace cannot drop on remount (the kernel locks
/// them): keep whatever the existing mount at `target` has.
fn locked_flags(target: BorrowedFd<'_>) -> u64 {
    use rustix::fs::StatVfsMountFlags as F;
    let Ok(st) = rustix::fs::fstatvfs(target) else {
        return 0;
    };
    let mut out = 0;
    for (f, ms) in [
        (F::NOSUID, libc::MS_NOSUID),
        (F::NODEV, libc::MS_NODEV),
        (F::NOEXEC, libc::MS_NOEXEC),
        (F::NOATIME, libc::MS_NOATIME),
        (F::NODIRATIME, libc::MS_NODIRATIME),
        (F::RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag.contains(f) {
            out |= ms;
        }
    }
    out
}

/// Step 1: propagation of `/` and the rootfs bind mount.
pub(crate) fn prepare_root(plan: &RootfsPlan<'_>) -> Result<(), Failure> {
    if !plan.own_mntns {
        return prepare_root_in_host_namespace(plan);
    }
    let prop = plan
        .spec
        .linux
        .as_ref()
        .and_then(|l| l.rootfs_propagation.clone())
        .filter(|p| !p.is_empty());
    let flags = match prop.as_deref().and_then(options::propagation_flags) {
        Some(f) => f | libc::MS_REC,
        None => libc::MS_SLAVE | libc::MS_REC,
    };
    // shared and unbindable are set on the new root after pivot_root (see `finish`): the
    // host side stays slave, and an unbindable rootfs could not be bind-mounted onto itself
    let first = if flags & (libc::MS_SHARED | libc::MS_UNBINDABLE) != 0 {
        libc::MS_SLAVE | libc::MS_REC
    } else {
        flags
    };
    mount_raw("", "/", "", first, "").ctx(|| "failed to set the propagation of /".to_owned())?;
    let root = plan.rootfs.to_string_lossy();
    mount_raw(&root, &root, "", libc::MS_BIND | libc::MS_REC, "")
        .ctx(|| format!("failed to bind mount the rootfs {root} onto itself"))?;
    // pivot_root needs the new root's parent mount not to be shared
    if let Some(parent) = plan.rootfs.parent() {
        let _ = mount_raw("", &parent.to_string_lossy(), "", libc::MS_PRIVATE, "");
    }
    Ok(())
}

/// Step 1 without a mount namespace of its own: we are in the runtime's (the host's).
/// runc makes the host's `/` rslave (recursively: every shared mount of the host stops
/// propagating) and the rootfs's parent mount private; we change no mount that is not
/// ours. The rootfs is bound onto itself (the mount the container's `/` becomes, the one a
/// read-only root remounts, and the root of everything `delete` detaches) and that bind,
/// with the copies of the mounts under it, made private, so that nothing mounted under it
/// from here on propagates to the host's peers of the rootfs's parent.
fn prepare_root_in_host_namespace(plan: &RootfsPlan<'_>) -> Result<(), Failure> {
    let root = plan.rootfs.to_string_lossy();
    mount_raw(&root, &root, "", libc::MS_BIND | libc::MS_REC, "")
        .ctx(|| format!("failed to bind mount the rootfs {root} onto itself"))?;
    mount_raw("", &root, "", libc::MS_PRIVATE | libc::MS_REC, "")
        .ctx(|| format!("failed to make the rootfs bind mount {root} private"))
}

/// Open the (bind-mounted) rootfs.
pub(crate) fn open_root(plan: &RootfsPlan<'_>) -> Result<OwnedFd, Failure> {
    rustix::fs::open(
        plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("failed to open the rootfs {}", plan.rootfs.display()))
}

/// Step 2: every `mounts[]` entry, in order.
pub(crate) fn mount_all(plan: &RootfsPlan<'_>, root: BorrowedFd<'_>) -> Result<(), Failure> {
    for m in plan.spec.mounts.as_deref().unwrap_or_default() {
        mount_one(plan, root, m)?;
    }
    Ok(())
}

fn source_of(plan: &RootfsPlan<'_>, m: &Mount) -> String {
    match &m.source {
        Some(s) if s.is_absolute() => s.to_string_lossy().into_owned(),
        Some(s) if !s.as_os_str().is_empty() => plan.bundle.join(s).to_string_lossy().into_owned(),
        _ => String::new(),
    }
}

fn mount_one(plan: &RootfsPlan<'_>, root: BorrowedFd<'_>, m: &Mount) -> Result<(), Failure> {
    let dest = &m.destination;
    let opts = options::parse(m.options.as_deref().unwrap_or_default()).map_err(|o| {
        Failure::new(format!(
            "mount option {o:?} of {} is not supported",
            dest.display()
        ))
    })?;
    let typ = m.typ.as_deref().unwrap_or("");
    let is_bind = opts.flags & libc::MS_BIND != 0 || typ == "bind";
    if is_bind {
        return bind_mount(plan, root, m, &opts);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(plan, root, m, &opts);
    }
    let target_fd = mount_point(root, dest, false)?;
    let target = fd_path(target_fd.as_fd());
    let source = m
        .source
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_owned());
    let flags = opts.flags & !libc::MS_REMOUNT;
    let res = mount_raw(&source, &target, typ, flags, &opts.data);
    match res {
        Ok(()) => {}
        // sysfs (and mqueue) cannot be mounted in a user namespace that does not own the
        // network (ipc) namespace: bind the host's, as runc does
        Err(e)
            if plan.userns
                && e.raw_os_error() == Some(libc::EPERM)
                && (typ == "sysfs" || typ == "mqueue") =>
        {
            let host = if typ == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            mount_raw(host, &target, "", libc::MS_BIND | libc::MS_REC, "")
                .ctx(|| format!("failed to bind {host} onto {}", dest.display()))?;
            let fd = open_in(root, &rel(dest), OFlags::PATH)
                .ctx(|| format!("failed to reopen {}", dest.display()))?;
            let locked = locked_flags(fd.as_fd());
            mount_raw(
                "",
                &fd_path(fd.as_fd()),
                "",
                libc::MS_BIND | libc::MS_REMOUNT | flags | locked,
                "",
            )
            .ctx(|| format!("failed to remount {} with its options", dest.display()))?;
        }
        Err(e) => {
            return Err(Failure::io(
                format!("failed to mount {typ} on {}", dest.display()),
                &e,
            ));
        }
    }
    apply_propagation(root, dest, &opts)
}

fn apply_propagation(
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), Failure> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let fd = open_in(root, &rel(dest), OFlags::PATH)
        .ctx(|| format!("failed to reopen {}", dest.display()))?;
    for p in &opts.propagation {
        mount_raw("", &fd_path(fd.as_fd()), "", *p, "")
            .ctx(|| format!("failed to change the propagation of {}", dest.display()))?;
    }
    Ok(())
}

fn bind_mount(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Result<(), Failure> {
    let dest = &m.destination;
    let source = source_of(plan, m);
    let meta =
        std::fs::metadata(&source).ctx(|| format!("failed to stat bind mount source {source}"))?;
    let target_fd = mount_point(root, dest, !meta.is_dir())?;
    let flags = libc::MS_BIND | (opts.flags & libc::MS_REC);
    mount_raw(&source, &fd_path(target_fd.as_fd()), "", flags, "")
        .ctx(|| format!("failed to bind mount {source} on {}", dest.display()))?;
    // the flags other than bind/rec need a remount of the new mount
    let rest = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if rest != 0 {
        let fd = open_in(root, &rel(dest), OFlags::PATH)
            .ctx(|| format!("failed to reopen {}", dest.display()))?;
        let locked = if plan.userns {
            let atime =
                libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;
            let have = locked_flags(fd.as_fd());
            let mut keep = have & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
            if rest & atime == 0 {
                keep |= have & atime;
            }
            keep
        } else {
            0
        };
        mount_raw(
            "",
            &fd_path(fd.as_fd()),
            "",
            libc::MS_BIND | libc::MS_REMOUNT | rest | locked,
            "",
        )
        .ctx(|| format!("failed to remount {} with its options", dest.display()))?;
    }
    apply_propagation(root, dest, opts)
}

/// Bind the container's cgroup2 directory `host` on `dest` (`target` its fd path) with the
/// mount's flags. A rootless container that got no cgroup of its own (`host` missing)
/// gets an empty read-only tmpfs there instead, as runc masks it: never the host's tree.
fn bind_cgroup2(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    dest: &Path,
    target: &str,
    host: &Path,
    opts: &MountOptions,
) -> Result<(), Failure> {
    let host = host.to_string_lossy();
    match mount_raw(&host, target, "", libc::MS_BIND | libc::MS_REC, "") {
        Ok(()) => {}
        Err(e) if plan.rootless && e.raw_os_error() == Some(libc::ENOENT) => {
            return mount_raw("tmpfs", target, "tmpfs", libc::MS_RDONLY, "")
                .ctx(|| format!("failed to mask {}", dest.display()));
        }
        Err(e) => return Err(e).ctx(|| format!("failed to bind {host} on {}", dest.display())),
    }
    let fd = open_in(root, &rel(dest), OFlags::PATH)
        .ctx(|| format!("failed to reopen {}", dest.display()))?;
    mount_raw(
        "",
        &fd_path(fd.as_fd()),
        "",
        libc::MS_BIND
            | libc::MS_REMOUNT
            | (opts.flags & !libc::MS_REMOUNT)
            | locked_flags(fd.as_fd()),
        "",
    )
    .ctx(|| format!("failed to remount {}", dest.display()))
}

fn mount_cgroup(
    plan: &RootfsPlan<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    opts: &MountOptions,
) -> Result<(), Failure> {
    let dest = &m.destination;
    let ro = opts.flags & libc::MS_RDONLY != 0;
    let base =
        opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME);
    let target_fd = mount_point(root, dest, false)?;
    let target = fd_path(target_fd.as_fd());
    match plan.cgroup_mounts {
        Some(CgroupMounts::V2(host)) => {
            // a fresh cgroup2 shows the container's cgroup namespace as its root
            let fresh = plan.cgroupns.then(|| {
                mount_raw(
                    "cgroup2",
                    &target,
                    "cgroup2",
                    opts.flags & !libc::MS_REMOUNT,
                    "",
                )
            });
            match fresh {
                Some(Ok(())) => {}
                // as runc: without a cgroup namespace, and where the kernel refuses a
                // fresh cgroup2 (EPERM: a user namespace that does not own the cgroup
                // namespace; EBUSY: over the host's cgroup2 reached through an rbind of
                // /sys, as under `spec --rootless`), bind the container's own cgroup
                None => bind_cgroup2(plan, root, dest, &target, host, opts)?,
                Some(Err(e)) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) => {
                    bind_cgroup2(plan, root, dest, &target, host, opts)?;
                }
                Some(Err(e)) => {
                    return Err(e).ctx(|| format!("failed to mount cgroup2 on {}", dest.display()));
                }
            }
        }
        Some(CgroupMounts::V1 { hierarchies, .. }) => {
            mount_raw("tmpfs", &target, "tmpfs", base, "mode=755")
                .ctx(|| format!("failed to mount tmpfs on {}", dest.display()))?;
            let dir = open_in(root, &rel(dest), OFlags::PATH | OFlags::DIRECTORY)
                .ctx(|| format!("failed to reopen {}", dest.display()))?;
            for (name, host) in hierarchies {
                let sub = dest.join(name);
                let sub_fd = mount_point(root, &sub, false)?;
                let host_s = host.to_string_lossy();
                if std::fs::metadata(host).is_err() {
                    // a hierarchy the container was not placed in: leave the directory empty
                    continue;
                }
                mount_raw(
                    &host_s,
                    &fd_path(sub_fd.as_fd()),
                    "",
                    libc::MS_BIND | libc::MS_REC,
                    "",
                )
                .ctx(|| format!("failed to bind {host_s} on {}", sub.display()))?;
                let fd = open_in(root, &rel(&sub), OFlags::PATH)
                    .ctx(|| format!("failed to reopen {}", sub.display()))?;
                let flags = libc::MS_BIND
                    | libc::MS_REMOUNT
                    | base
                    | if ro { libc::MS_RDONLY } else { 0 }
                    | locked_flags(fd.as_fd());
                mount_raw("", &fd_path(fd.as_fd()), "", flags, "")
                    .ctx(|| format!("failed to remount {}", sub.display()))?;
                // co-mounted controllers: cpu -> cpu,cpuacct
                if name.contains(',') {
                    for part in name.split(',') {
                        let _ = rustix::fs::symlinkat(name.as_str(), &dir, part);
                    }
                }
            }
            if ro {
                mount_raw(
                    "",
                    &fd_path(dir.as_fd()),
                    "",
                    libc::MS_REMOUNT | libc::MS_RDONLY | base,
                    "",
                )
                .ctx(|| format!("failed to remount {} read-only", dest.display()))?;
            }
        }
        None => {
            return Err(Failure::new(format!(
                "cannot mount cgroup on {}: the container has no cgroup",
                dest.display()
            )));
        }
    }
    apply_propagation(root, dest, opts)
}

/// Whether the config bind-mounts the host's /dev (then no devices are created).
pub(crate) fn binds_dev(spec: &Spec) -> bool {
    spec.mounts.as_deref().unwrap_or_default().iter().any(|m| {
        m.destination == Path::new("/dev")
            && (m.typ.as_deref() == Some("bind")
                || m.options
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

/// Step 3: make the rootfs `/` — pivot_root(".", ".") and detach the old root, or
/// MS_MOVE + chroot with `--no-pivot`.
pub(crate) fn enter(plan: &RootfsPlan<'_>) -> Result<(), Failure> {
    let newroot = rustix::fs::open(
        plan.rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("failed to open the rootfs {}", plan.rootfs.display()))?;
    rustix::process::fchdir(&newroot)
        .ctx(|| "failed to change directory to the rootfs".to_owned())?;
    if !plan.own_mntns {
        // the runtime's mount namespace: neither pivot_root nor MS_MOVE may replace the
        // host's root (nor, for --no-pivot, may its /proc and /sys be detached); chroot,
        // as runc does without a mount namespace
        rustix::process::chroot(".").ctx(|| "failed to chroot into the rootfs".to_owned())?;
    } else if plan.no_pivot {
        detach_host_proc_and_sys(plan.rootfs)?;
        mount_raw(".", "/", "", libc::MS_MOVE, "")
            .ctx(|| "failed to move the rootfs onto /".to_owned())?;
        rustix::process::chroot(".").ctx(|| "failed to chroot into the rootfs".to_owned())?;
    } else {
        let oldroot = rustix::fs::open(
            "/",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "failed to open the old root".to_owned())?;
        rustix::process::pivot_root(".", ".")
            .ctx(|| "failed to pivot_root into the rootfs".to_owned())?;
        // the old root is now stacked on "."; detach it without propagating to the host
        rustix::process::fchdir(&oldroot)
            .ctx(|| "failed to change directory to the old root".to_owned())?;
        mount_raw("", ".", "", libc::MS_SLAVE | libc::MS_REC, "")
            .ctx(|| "failed to make the old root rslave".to_owned())?;
        rustix::mount::unmount(".", UnmountFlags::DETACH)
            .ctx(|| "failed to detach the old root".to_owned())?;
    }
    rustix::process::chdir("/").ctx(|| "failed to change directory to /".to_owned())?;
    Ok(())
}

/// The host's full procfs and sysfs mounts outside `rootfs`, in mount order.
fn host_proc_and_sys(mounts: &[crate::mountinfo::MountInfo], rootfs: &Path) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.root == "/" && (m.fs_type == "proc" || m.fs_type == "sysfs"))
        .filter(|m| !m.mount_point.starts_with(rootfs))
        .map(|m| m.mount_point.clone())
        .collect()
}

/// `--no-pivot` leaves the host's mounts in the container's mount namespace, only out of
/// the chroot's reach. A full procfs or sysfs of the host among them lets the kernel allow
/// the container to mount a fresh, unmasked procfs (its "fully visible" check counts every
/// mount in the namespace; CVE-2023-27561), and is one chroot escape away. Detach each one
/// outside the rootfs first (as runc does), without propagating to the host; cover it with an
/// empty tmpfs where the kernel refuses the unmount.
fn detach_host_proc_and_sys(rootfs: &Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .ctx(|| "failed to read /proc/self/mountinfo".to_owned())?;
    let mounts = crate::mountinfo::parse(&text)
        .map_err(|e| Failure::new(format!("failed to parse /proc/self/mountinfo: {e}")))?;
    for path in host_proc_and_sys(&mounts, rootfs) {
        let shown = path.display().to_string();
        let Some(target) = path.to_str() else {
            return Err(Failure::new(format!(
                "host mount point {shown} is not UTF-8; cannot detach it for --no-pivot"
            )));
        };
        match mount_raw("", target, "", libc::MS_SLAVE | libc::MS_REC, "") {
            // a parent of it was detached already
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            r => r.ctx(|| format!("failed to make the host mount {shown} rslave"))?,
        }
        match rustix::mount::unmount(target, UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::PERM) => {
                mount_raw("tmpfs", target, "tmpfs", libc::MS_RDONLY, "")
                    .ctx(|| format!("failed to cover the host mount {shown} with a tmpfs"))?;
            }
            Err(e) => {
                return Err(e).ctx(|| format!("failed to detach the host mount {shown}"));
            }
        }
    }
    Ok(())
}

/// Step 4 (after pivot): read-only root and shared propagation.
pub(crate) fn finish(plan: &RootfsPlan<'_>) -> Result<(), Failure> {
    if plan
        .spec
        .root
        .as_ref()
        .and_then(|r| r.readonly)
        .unwrap_or(false)
    {
        let fd = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "failed to open /".to_owned())?;
        let locked = locked_flags(fd.as_fd());
        mount_raw(
            "",
            "/",
            "",
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
            "",
        )
        .ctx(|| "failed to remount the root filesystem read-only".to_owned())?;
    }
    let prop = plan
        .spec
        .linux
        .as_ref()
        .and_then(|l| l.rootfs_propagation.clone());
    // unbindable: see `unbindable_root`, once nothing is bind-mounted from the root
    if let Some(p) = prop.as_deref()
        && (p == "shared" || p == "rshared")
    {
        mount_raw("", "/", "", libc::MS_SHARED | libc::MS_REC, "")
            .ctx(|| "failed to make / shared".to_owned())?;
    }
    Ok(())
}

/// Step 5 (after the read-only and masked paths, which bind mounts of the root's own
/// mounts make): `rootfsPropagation` `unbindable` (/ only) or `runbindable` (every mount
/// of the container).
pub(crate) fn unbindable_root(spec: &Spec) -> Result<(), Failure> {
    let prop = spec
        .linux
        .as_ref()
        .and_then(|l| l.rootfs_propagation.as_deref());
    if let Some(p @ ("unbindable" | "runbindable")) = prop {
        let flags = options::propagation_flags(p).unwrap_or(libc::MS_UNBINDABLE);
        mount_raw("", "/", "", flags, "")
            .ctx(|| format!("failed to make / {p} (linux.rootfsPropagation)"))?;
    }
    Ok(())
}

/// `linux.sysctl` → /proc/sys (validated when the config was loaded).
pub(crate) fn write_sysctls(spec: &Spec) -> Result<(), Failure> {
    use std::io::Write;
    for (k, v) in spec
        .linux
        .as_ref()
        .and_then(|l| l.sysctl.as_ref())
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .ctx(|| format!("failed to open {path}"))?;
        f.write_all(v.as_bytes())
            .ctx(|| format!("failed to write {v} to {path}"))?;
    }
    Ok(())
}

/// An `O_PATH` descriptor of `p` (not following a final symlink); `None` when it does not
/// exist, which readonly and masked paths skip, as runc does. `kind` names the list in errors.
fn open_path(p: &str, kind: &str) -> Result<Option<OwnedFd>, Failure> {
    match rustix::fs::open(
        p,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(Failure::io(
            format!("failed to open {kind} path {p}"),
            &e.into(),
        )),
    }
}

/// `linux.readonlyPaths`: bind each onto itself and remount read-only.
pub(crate) fn readonly_paths(spec: &Spec) -> Result<(), Failure> {
    for p in spec
        .linux
        .as_ref()
        .and_then(|l| l.readonly_paths.as_ref())
        .into_iter()
        .flatten()
    {
        let Some(fd) = open_path(p, "readonly")? else {
            continue;
        };
        let target = fd_path(fd.as_fd());
        mount_raw(&target, &target, "", libc::MS_BIND | libc::MS_REC, "")
            .ctx(|| format!("failed to bind readonly path {p}"))?;
        let fd = open_path(p, "readonly")?
            .ok_or_else(|| Failure::new(format!("readonly path {p} vanished after its bind")))?;
        let locked = locked_flags(fd.as_fd());
        mount_raw(
            "",
            &fd_path(fd.as_fd()),
            "",
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
            "",
        )
        .ctx(|| format!("failed to remount readonly path {p}"))?;
    }
    Ok(())
}

/// `linux.maskedPaths`: /dev/null over files, an empty read-only tmpfs over directories.
pub(crate) fn mask_paths(spec: &Spec) -> Result<(), Failure> {
    for p in spec
        .linux
        .as_ref()
        .and_then(|l| l.masked_paths.as_ref())
        .into_iter()
        .flatten()
    {
        let Some(fd) = open_path(p, "masked")? else {
            continue;
        };
        let st = rustix::fs::fstat(&fd).ctx(|| format!("failed to stat masked path {p}"))?;
        let target = fd_path(fd.as_fd());
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            mount_raw("tmpfs", &target, "tmpfs", libc::MS_RDONLY, "")
                .ctx(|| format!("failed to mask {p}"))?;
        } else {
            mount_raw("/dev/null", &target, "", libc::MS_BIND, "")
                .ctx(|| format!("failed to mask {p}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pivot_detaches_only_full_host_proc_and_sys_outside_the_rootfs() {
        let text = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:22 / /sys rw - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 23 0:24 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
27 22 0:21 /sys /srv/partial-proc rw - proc proc rw
28 22 0:25 / /run/b/rootfs/proc rw - proc proc rw
29 22 0:26 / /run/b/rootfs/sys ro - sysfs sysfs ro
30 22 0:27 / /run/b/rootfs-other/proc rw - proc proc rw
";
        let mounts = crate::mountinfo::parse(text).unwrap();
        assert_eq!(
            host_proc_and_sys(&mounts, Path::new("/run/b/rootfs")),
            [
                PathBuf::from("/proc"),
                PathBuf::from("/sys"),
                // a sibling whose name merely starts like the rootfs is outside it
                PathBuf::from("/run/b/rootfs-other/proc"),
            ]
        );
    }
}
