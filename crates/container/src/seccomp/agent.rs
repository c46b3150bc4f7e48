//! The seccomp agent's side of a `SCMP_ACT_NOTIFY` listener (receive a notification, answer
//! it): a real agent is another program, so only the tests that load filters for real use it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::SeccompError;

/// One seccomp notification (`struct seccomp_notif`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Notification {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// The answer to a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotifyResponse {
    /// Fail the syscall with this errno.
    Error(i32),
    /// Pretend the syscall returned this value.
    #[expect(
        dead_code,
        reason = "the agent's whole answer set; the tests send the other two"
    )]
    Value(i64),
    /// Let the kernel run the syscall (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
}

/// `_IOC(dir, '!', nr, size)` of `<linux/seccomp.h>`.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((b'!' as u32) << 8) | nr
}
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;
const NOTIF_RECV: u32 = ioc(IOC_READ | IOC_WRITE, 0, size_of::<libc::seccomp_notif>());
const NOTIF_SEND: u32 = ioc(
    IOC_READ | IOC_WRITE,
    1,
    size_of::<libc::seccomp_notif_resp>(),
);
const NOTIF_ID_VALID: u32 = ioc(IOC_WRITE, 2, size_of::<u64>());

/// `ioctl(fd, request, arg)`, retried on EINTR.
///
/// # Safety
/// `arg` must point to the type `request` reads and writes.
#[expect(unsafe_code, reason = "seccomp listener ioctls have no safe wrapper")]
unsafe fn ioctl(fd: BorrowedFd<'_>, request: u32, arg: *mut libc::c_void) -> io::Result<()> {
    loop {
        // SAFETY: the caller guarantees `arg`; `fd` is open for the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Wait for the next notification on `listener` (`SECCOMP_IOCTL_NOTIF_RECV`).
pub(crate) fn receive_notification(listener: BorrowedFd<'_>) -> Result<Notification, SeccompError> {
    // The kernel insists on a zeroed structure.
    let mut notif = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    let arg = std::ptr::from_mut(&mut notif).cast::<libc::c_void>();
    // SAFETY: NOTIF_RECV writes one seccomp_notif, which `arg` points to.
    #[expect(unsafe_code, reason = "SECCOMP_IOCTL_NOTIF_RECV")]
    unsafe { ioctl(listener, NOTIF_RECV, arg) }.map_err(|source| SeccompError::Notify {
        what: "receive a notification",
        source,
    })?;
    Ok(Notification {
        id: notif.id,
        pid: notif.pid,
        flags: notif.flags,
        nr: notif.data.nr,
        arch: notif.data.arch,
        instruction_pointer: notif.data.instruction_pointer,
        args: notif.data.args,
    })
}

/// Answer notification `id` (`SECCOMP_IOCTL_NOTIF_SEND`).
pub(crate) fn respond(
    listener: BorrowedFd<'_>,
    id: u64,
    response: NotifyResponse,
) -> Result<(), SeccompError> {
    let (val, error, flags) = match response {
        // The kernel wants the negated errno.
        NotifyResponse::Error(errno) => (0, -errno, 0),
        NotifyResponse::Value(v) => (v, 0, 0),
        NotifyResponse::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
    };
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    let arg = std::ptr::from_mut(&mut resp).cast::<libc::c_void>();
    // SAFETY: NOTIF_SEND reads one seccomp_notif_resp, which `arg` points to.
    #[expect(unsafe_code, reason = "SECCOMP_IOCTL_NOTIF_SEND")]
    unsafe { ioctl(listener, NOTIF_SEND, arg) }.map_err(|source| SeccompError::Notify {
        what: "answer a notification",
        source,
    })
}

/// Whether notification `id` is still pending (its process has not died or been interrupted):
/// check it after reading the target's memory and before acting on what was read.
pub(crate) fn notification_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    let arg = std::ptr::from_mut(&mut id).cast::<libc::c_void>();
    // SAFETY: NOTIF_ID_VALID reads one u64, which `arg` points to.
    #[expect(unsafe_code, reason = "SECCOMP_IOCTL_NOTIF_ID_VALID")]
    let r = unsafe { ioctl(listener, NOTIF_ID_VALID, arg) };
    r.is_ok()
}
