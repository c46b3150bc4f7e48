//! Pinned network namespaces, as CRI and podman make them: a new network namespace kept alive
//! by a bind mount of its `nsfs` file on a path, so that networking (CNI) can be set up in it
//! before the container exists and torn down after it is gone, and the runtime joins it by
//! path (`linux.namespaces[{type: network, path}]`).
//!
//! The namespace is made by a short-lived thread that `unshare(CLONE_NEWNET)`s itself (only
//! that thread moves; network namespaces are per task) and bind-mounts
//! `/proc/thread-self/ns/net` onto the path, as the CNI plugins' `ns` package does. Removing
//! unmounts (detached: a process still inside keeps it until it leaves) and deletes the file;
//! both are idempotent.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// Make a new network namespace pinned at `path` (its parent directory is created; the file
/// must not exist). On failure nothing is left at `path`.
pub fn create(path: &Path) -> Result<PathBuf> {
    let fail = |what: &'static str, e: std::io::Error| EngineError::io(what, path, e);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| fail("failed to create the directory of", e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| fail("failed to create the network namespace file", e))?;
    let target = path.to_owned();
    let pinned = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: only CLONE_NEWNET, on this thread alone: no file table is unshared.
        #[expect(unsafe_code, reason = "unshare of this thread's network namespace")]
        unsafe {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET)?;
        }
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")));
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(path);
        return Err(fail("failed to make a network namespace at", e));
    }
    if let Err(e) = bring_up_loopback(path) {
        let _ = remove(path);
        return Err(e);
    }
    Ok(path.to_owned())
}

/// A new user namespace mapping ids `0..size` to host ids `host_start..`, and a network
/// namespace it owns, pinned at `userns_path` and `netns_path` (CRI-O's `pinns` for user
/// namespaced pods): the container joins both by path, so its root has the network
/// namespace's capabilities (sysfs, `exec` joining it), while CNI, run as host root, sets it
/// up before the container exists. Made by a short-lived `cat` that unshares both before its
/// exec; on failure nothing is left.
pub fn create_with_userns(
    netns_path: &Path,
    userns_path: &Path,
    host_start: u32,
    size: u32,
) -> Result<()> {
    use std::io::Write;
    for p in [netns_path, userns_path] {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EngineError::io("failed to create the directory of", p, e))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map_err(|e| EngineError::io("failed to create the namespace file", p, e))?;
    }
    let cat = ["/usr/bin/cat", "/bin/cat"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/cat");
    let mut cmd = std::process::Command::new(cat);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and makes one raw system
    // call (unshare), which is async-signal-safe; it allocates and locks nothing.
    #[expect(unsafe_code, reason = "pre_exec: unshare(CLONE_NEWUSER|CLONE_NEWNET)")]
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            rustix::thread::unshare_unsafe(
                rustix::thread::UnshareFlags::NEWUSER | rustix::thread::UnshareFlags::NEWNET,
            )
            .map_err(std::io::Error::from)
        });
    }
    let undo = || {
        let _ = remove(netns_path);
        let _ = remove(userns_path);
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            undo();
            return Err(EngineError::io(
                "failed to start a helper in new user and network namespaces for",
                netns_path,
                e,
            ));
        }
    };
    let pid = child.id();
    let result = (|| -> std::io::Result<()> {
        let map = format!("0 {host_start} {size}\n");
        for file in ["uid_map", "gid_map"] {
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/{file}"))?
                .write_all(map.as_bytes())?;
        }
        rustix::mount::mount_bind(format!("/proc/{pid}/ns/user"), userns_path)?;
        rustix::mount::mount_bind(format!("/proc/{pid}/ns/net"), netns_path)?;
        Ok(())
    })();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        undo();
        return Err(EngineError::io(
            "failed to pin a user-namespaced network namespace at",
            netns_path,
            e,
        ));
    }
    if let Err(e) = bring_up_loopback(netns_path) {
        undo();
        return Err(e);
    }
    Ok(())
}

/// `ip link set lo up` inside the namespace at `path`, as runtimes do for a namespace they
/// create (a network namespace given by path gets no loopback from runc or crun): a
/// short-lived thread joins the namespace (network namespaces are per task) and sends the
/// kernel one rtnetlink request, instead of starting `nsenter` and `ip` (two execs, some
/// milliseconds of every container's start).
fn bring_up_loopback(path: &Path) -> Result<()> {
    let target = path.to_owned();
    std::thread::spawn(move || -> std::io::Result<()> {
        let ns = std::fs::File::open(&target)?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        loopback_up()
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the loopback thread panicked")))
    .map_err(|e| {
        EngineError::io(
            "failed to bring up the loopback device of the network namespace",
            path,
            e,
        )
    })
}

/// Set `IFF_UP` on the loopback device (ifindex 1 in every network namespace) of this
/// thread's network namespace: an `RTM_NEWLINK` request on a `NETLINK_ROUTE` socket, and
/// the kernel's acknowledgement read back (rtnetlink(7)).
fn loopback_up() -> std::io::Result<()> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST_ACK: u16 = 0x1 | 0x4;
    const NLMSG_ERROR: u16 = 2;
    const IFF_UP: u32 = 1;
    const LOOPBACK_IFINDEX: i32 = 1;
    const SEQ: u32 = 1;
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE
    )?;
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes), native endian
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes()); // nlmsg_type
    msg.extend_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes()); // nlmsg_flags
    msg.extend_from_slice(&SEQ.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    msg.extend_from_slice(&[0, 0]); // ifi_family AF_UNSPEC, padding
    msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    msg.extend_from_slice(&LOOPBACK_IFINDEX.to_ne_bytes()); // ifi_index
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    // (an unconnected netlink socket sends to the kernel)
    rustix::net::send(&fd, &msg, SendFlags::empty())?;
    let mut buf = [0u8; 1024];
    let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
    let got = buf.get(..n).unwrap_or_default();
    let field = |at: usize, len: usize| got.get(at..at + len);
    let kind = field(4, 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes);
    let seq = field(8, 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes);
    // struct nlmsgerr: the error (0 or -errno) right after the header
    let error = field(16, 4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes);
    match (kind, seq, error) {
        (Some(NLMSG_ERROR), Some(SEQ), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(SEQ), Some(e)) => Err(std::io::Error::from_raw_os_error(-e)),
        _ => Err(std::io::Error::other(format!(
            "unexpected rtnetlink answer of {} bytes",
            got.len()
        ))),
    }
}

/// Unpin and delete the namespace at `path`; a path already gone is fine.
pub fn remove(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(EngineError::io(
                "failed to unmount the network namespace",
                path,
                e.into(),
            ));
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(
            "failed to remove the network namespace file",
            path,
            e,
        )),
    }
}
