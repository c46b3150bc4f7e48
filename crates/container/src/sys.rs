//! The few system calls rustix does not wrap safely, each behind an audited `unsafe` block.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::threads::SingleThreaded;

/// Result of [`fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fork {
    Child,
    Parent(i32),
}

/// `fork(2)`. The caller proves it is single-threaded ([`SingleThreaded`]), so the child
/// may run ordinary code; it must end with [`std::process::exit`] and never return into
/// the parent's stack frames (their destructors would close the parent's descriptors).
#[expect(unsafe_code, reason = "fork has no safe wrapper")]
pub(crate) fn fork(_proof: SingleThreaded) -> io::Result<Fork> {
    // SAFETY: the process is single-threaded (the proof, taken on this thread, which cannot
    // have started threads since: see `container::spawn_stage1`), so no lock can be held by
    // another thread in the child; the child does not unwind into the caller (see above).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// `unshare(2)` of namespace flags only (never CLONE_FILES/CLONE_FS/CLONE_SYSVSEM).
#[expect(
    unsafe_code,
    reason = "rustix marks unshare unsafe because of CLONE_FILES"
)]
pub(crate) fn unshare_namespaces(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    use rustix::thread::UnshareFlags as F;
    let ns_only = F::NEWNS
        | F::NEWCGROUP
        | F::NEWUTS
        | F::NEWIPC
        | F::NEWUSER
        | F::NEWPID
        | F::NEWNET
        | F::NEWTIME;
    if !ns_only.contains(flags) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: only namespace flags, which do not unshare the descriptor table or fs info
    // that Rust code relies on.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

fn prctl5(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> io::Result<()> {
    #[expect(unsafe_code, reason = "variadic prctl with integer arguments only")]
    // SAFETY: the options used take integer arguments, no pointers.
    let r = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// PR_SET_DUMPABLE. A non-dumpable process's `/proc/<pid>/mem`, `/proc/<pid>/fd/*`,
/// `environ`, `exe` and `root` and ptrace need CAP_SYS_PTRACE in the initial user namespace
/// (its mm's), which no container process has; `execve` sets dumpability anew for the
/// program it runs.
pub(crate) fn set_dumpable(on: bool) -> io::Result<()> {
    prctl5(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0)
}

/// PR_CAPBSET_DROP.
pub(crate) fn capbset_drop(cap: u32) -> io::Result<()> {
    prctl5(libc::PR_CAPBSET_DROP, cap.into(), 0)
}

/// PR_CAPBSET_READ: whether `cap` is in the bounding set (`None` if the kernel does not know it).
pub(crate) fn capbset_read(cap: u32) -> Option<bool> {
    #[expect(unsafe_code, reason = "variadic prctl with integer arguments only")]
    // SAFETY: integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
    if r < 0 { None } else { Some(r == 1) }
}

/// PR_CAP_AMBIENT_RAISE.
pub(crate) fn ambient_raise(cap: u32) -> io::Result<()> {
    #[expect(unsafe_code, reason = "variadic prctl with integer arguments only")]
    // SAFETY: integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Join a new session keyring named `name` (KEYCTL_JOIN_SESSION_KEYRING).
pub(crate) fn join_session_keyring(name: &str) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    #[expect(unsafe_code, reason = "keyctl has no wrapper")]
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Mark every descriptor from `first` up as close-on-exec: close_range(CLOSE_RANGE_CLOEXEC)
/// (Linux 5.11), or, where that is refused (an older kernel, or an outer seccomp profile
/// without close_range), `F_SETFD` on each descriptor listed in /proc/self/fd, as runc's
/// fallback. Descriptors stay valid until exec, so no owned descriptor is invalidated.
pub(crate) fn cloexec_from(first: u32) -> io::Result<()> {
    match cloexec_range(first) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::ENOSYS | libc::EINVAL)
            ) =>
        {
            cloexec_walk(first)
        }
        r => r,
    }
}

/// The fallback of [`cloexec_from`]: every open descriptor >= `first`, one by one.
fn cloexec_walk(first: u32) -> io::Result<()> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| u32::try_from(fd).is_ok_and(|fd| fd >= first))
        .collect();
    for fd in fds {
        #[expect(unsafe_code, reason = "fcntl on a raw descriptor number")]
        // SAFETY: F_GETFD/F_SETFD only change the close-on-exec flag; a number that is no
        // longer open (the directory listing's own descriptor) fails with EBADF.
        let r = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 {
                continue;
            }
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC)
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBADF) {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn cloexec_range(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    #[expect(unsafe_code, reason = "close_range has no safe wrapper")]
    // SAFETY: with CLOSE_RANGE_CLOEXEC no descriptor is closed now.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Close every descriptor >= 3 except those in `keep`. Only for a freshly forked child that
/// owns none of the descriptors it closes (it never drops the parent's objects).
pub(crate) fn close_fds_except(keep: &[i32]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= 3)
        .map(|&f| f as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for k in keep.iter().copied().chain(std::iter::once(u32::MAX)) {
        if k > first {
            let last = if k == u32::MAX { u32::MAX } else { k - 1 };
            #[expect(unsafe_code, reason = "close_range has no safe wrapper")]
            // SAFETY: see the function's contract: the caller owns no descriptor in range.
            let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        first = k.saturating_add(1);
    }
    Ok(())
}

/// Take ownership of a raw descriptor number the process inherited (`--preserve-fds`, LISTEN_FDS).
/// Returns `None` when it is not open.
pub(crate) fn inherited_fd(fd: i32) -> Option<OwnedFd> {
    // fcntl(F_GETFD) succeeds iff the descriptor is open.
    #[expect(unsafe_code, reason = "probing a raw descriptor number")]
    // SAFETY: F_GETFD only queries the descriptor.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if r < 0 {
        return None;
    }
    #[expect(unsafe_code, reason = "adopting an inherited descriptor")]
    // SAFETY: the descriptor is open and nothing else in the process owns it: it was
    // inherited from the caller and the runtime never opened it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Unblock all signals and reset every handled/ignored signal to its default.
pub(crate) fn reset_signals() {
    #[expect(unsafe_code, reason = "sigprocmask and signal have no safe wrappers")]
    // SAFETY: an empty set is a valid argument; resetting dispositions to SIG_DFL is valid
    // for every catchable signal.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// Block every signal but SIGKILL/SIGSTOP and return a signalfd receiving them.
pub(crate) fn block_signals_to_fd() -> io::Result<OwnedFd> {
    #[expect(unsafe_code, reason = "sigprocmask and signalfd have no safe wrappers")]
    // SAFETY: the set is initialised by sigfillset; signalfd(-1, ..) returns a new fd we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// kill(2) with any signal number, realtime ones included (rustix's `Signal` names only
/// the standard ones).
pub(crate) fn kill_raw(pid: i32, sig: i32) -> io::Result<()> {
    #[expect(unsafe_code, reason = "kill(2) with a raw signal number")]
    // SAFETY: kill(2) takes two integers and has no memory-safety preconditions.
    let r = unsafe { libc::kill(pid, sig) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Read one signal number from a signalfd.
pub(crate) fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut buf = [0u8; 128];
    let n = rustix::io::read(fd, &mut buf)?;
    if n < 4 {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as i32)
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`; returns only on failure.
pub(crate) fn fexecve(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    let empty: &CStr = c"";
    #[expect(unsafe_code, reason = "execveat has no safe wrapper")]
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    io::Error::last_os_error()
}

/// `execve(path, argv, envp)`; returns only on failure.
pub(crate) fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    #[expect(unsafe_code, reason = "execve has no safe wrapper")]
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call.
    unsafe {
        libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr());
    }
    io::Error::last_os_error()
}

/// An nsfs ioctl that takes no argument (`_IO(0xb7, nr)` from <linux/nsfs.h>): its
/// non-negative result.
fn nsfs_ioctl(fd: BorrowedFd<'_>, nr: u32) -> io::Result<i32> {
    #[expect(unsafe_code, reason = "ioctl with no argument through libc")]
    // SAFETY: the nsfs requests used here take no argument and only read the descriptor,
    // which is borrowed (open) for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), (0xb700 | nr) as _) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `ioctl(fd, NS_GET_NSTYPE)` (Linux 4.11): the `CLONE_NEW*` flag of the namespace an nsfs
/// descriptor refers to — also when it was opened through a bind mount (`/run/netns/<name>`),
/// whose `/proc/self/fd` link is the mount's path, not `net:[…]`.
pub(crate) fn namespace_type(fd: BorrowedFd<'_>) -> io::Result<i32> {
    nsfs_ioctl(fd, 0x3)
}

/// The user namespace owning the namespace `fd` refers to (`NS_GET_USERNS`), as a new
/// descriptor.
pub(crate) fn namespace_owner(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let r = nsfs_ioctl(fd, 0x1)?;
    // SAFETY: a descriptor the kernel just returned to this process alone.
    #[expect(unsafe_code, reason = "adopting the descriptor the ioctl returned")]
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_fallback_marks_descriptors_close_on_exec_one_by_one() {
        // opened without O_CLOEXEC, as a descriptor inherited from the runtime's caller
        let fd = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let flags = || rustix::io::fcntl_getfd(fd.as_fd()).unwrap();
        assert!(!flags().contains(rustix::io::FdFlags::CLOEXEC));
        cloexec_walk(fd.as_raw_fd() as u32).unwrap();
        assert!(flags().contains(rustix::io::FdFlags::CLOEXEC));
    }
}
