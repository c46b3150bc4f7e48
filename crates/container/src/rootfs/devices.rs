//! /dev: the default devices (null, zero, full, random, urandom, tty), `linux.devices`,
//! /dev/ptmx → pts/ptmx and the /dev/fd, stdin, stdout, stderr, core symlinks.
//!
//! Outside a user namespace devices are created with mknod; inside one (where mknod is
//! refused) the host's device is bind-mounted onto an empty file, as runc does.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use berth_runtime_spec::{LinuxDevice, LinuxDeviceType, Spec};
use rustix::fs::{FileType, Mode, OFlags};

use super::{fd_path, mkdir_all_in, mount_raw, open_in, rel};
use crate::ipc::{Context, Failure};

struct Dev {
    path: PathBuf,
    kind: FileType,
    major: u32,
    minor: u32,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn defaults() -> Vec<Dev> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, major, minor)| Dev {
        path: PathBuf::from(format!("/dev/{n}")),
        kind: FileType::CharacterDevice,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn from_spec(d: &LinuxDevice) -> Result<Dev, Failure> {
    let kind = match d.typ {
        LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
        LinuxDeviceType::B => FileType::BlockDevice,
        LinuxDeviceType::P => FileType::Fifo,
        LinuxDeviceType::A => {
            return Err(Failure::new(format!(
                "device {} has type \"a\", which cannot be created",
                d.path.display()
            )));
        }
    };
    Ok(Dev {
        path: d.path.clone(),
        kind,
        major: d.major as u32,
        minor: d.minor as u32,
        mode: d.file_mode.unwrap_or(0o666) & 0o7777,
        uid: d.uid.unwrap_or(0),
        gid: d.gid.unwrap_or(0),
    })
}

/// Create the default devices and `linux.devices` inside the rootfs.
pub(crate) fn create_devices(
    spec: &Spec,
    root: BorrowedFd<'_>,
    userns: bool,
) -> Result<(), Failure> {
    let mut devs = if super::binds_dev(spec) {
        Vec::new()
    } else {
        defaults()
    };
    for d in spec
        .linux
        .as_ref()
        .and_then(|l| l.devices.as_ref())
        .into_iter()
        .flatten()
    {
        let dev = from_spec(d)?;
        devs.retain(|x| x.path != dev.path);
        devs.push(dev);
    }
    for d in &devs {
        create_one(root, d, userns)?;
    }
    Ok(())
}

fn create_one(root: BorrowedFd<'_>, d: &Dev, userns: bool) -> Result<(), Failure> {
    let r = rel(&d.path);
    let parent = r.parent().unwrap_or(Path::new(""));
    let name = r
        .file_name()
        .ok_or_else(|| Failure::new(format!("invalid device path {}", d.path.display())))?;
    let dir = mkdir_all_in(root, parent)?;
    if userns {
        return bind_one(root, d);
    }
    // replace whatever the image has there
    match rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(Failure::io(
                format!("failed to remove {} in the rootfs", d.path.display()),
                &e.into(),
            ));
        }
    }
    let dev = rustix::fs::makedev(d.major, d.minor);
    match rustix::fs::mknodat(&dir, name, d.kind, Mode::from_raw_mode(d.mode), dev) {
        Ok(()) => {}
        // root in a user namespace (rootless without a new one): bind mount, as runc does
        Err(rustix::io::Errno::PERM) => return bind_one(root, d),
        Err(e) => {
            return Err(Failure::io(
                format!("failed to create device {}", d.path.display()),
                &e.into(),
            ));
        }
    }
    let f = rustix::fs::openat(
        &dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("failed to open device {}", d.path.display()))?;
    // mknod is subject to the umask; set the exact mode and owner through the fd path
    let p = fd_path(f.as_fd());
    rustix::fs::chmod(p.as_str(), Mode::from_raw_mode(d.mode))
        .ctx(|| format!("failed to chmod device {}", d.path.display()))?;
    rustix::fs::chown(
        p.as_str(),
        Some(rustix::fs::Uid::from_raw(d.uid)),
        Some(rustix::fs::Gid::from_raw(d.gid)),
    )
    .ctx(|| format!("failed to chown device {}", d.path.display()))?;
    Ok(())
}

/// The host's device bind-mounted onto an empty file at its path in the rootfs: how a user
/// namespace gets its devices.
fn bind_one(root: BorrowedFd<'_>, d: &Dev) -> Result<(), Failure> {
    let target = super::mount_point(root, &d.path, true)?;
    let host = d.path.to_string_lossy();
    mount_raw(&host, &fd_path(target.as_fd()), "", libc::MS_BIND, "")
        .ctx(|| format!("failed to bind mount device {host}"))?;
    Ok(())
}

/// /dev/ptmx → pts/ptmx and the standard symlinks, when /dev is ours.
pub(crate) fn dev_symlinks(spec: &Spec, root: BorrowedFd<'_>) -> Result<(), Failure> {
    if super::binds_dev(spec) {
        return Ok(());
    }
    let dev = mkdir_all_in(root, Path::new("dev"))?;
    let dev = open_in(root, Path::new("dev"), OFlags::DIRECTORY | OFlags::RDONLY)
        .ctx(|| "failed to open /dev in the rootfs".to_owned())
        .or_else(|_| Ok::<_, Failure>(dev))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    // ptmx: always the devpts instance of the container
    match rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(Failure::io(
                "failed to remove /dev/ptmx in the rootfs",
                &e.into(),
            ));
        }
    }
    links.push(("pts/ptmx", "ptmx"));
    for (target, name) in links {
        match rustix::fs::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(Failure::io(
                    format!("failed to create symlink /dev/{name}"),
                    &e.into(),
                ));
            }
        }
    }
    Ok(())
}
