//! Loading a filter with `seccomp(2)`, and what the kernel and berth support.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use berth_runtime_spec::{Arch, LinuxSeccompFilterFlag};
use serde::Serialize;

use super::compile::{self, FLAG_NEW_LISTENER, FLAGS};
use super::{Filter, Instruction, SeccompError, arch};

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
#[cfg(test)]
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;

/// `seccomp(op, flags, arg)`; the result (an fd with `NEW_LISTENER`) or the errno.
///
/// # Safety
/// `arg` must be what `op` expects: a valid `sock_fprog` for `SECCOMP_SET_MODE_FILTER`, a
/// valid `u32` for `SECCOMP_GET_ACTION_AVAIL`, or null (the kernel then fails with EFAULT).
#[expect(
    unsafe_code,
    reason = "the seccomp(2) syscall has no safe wrapper in rustix"
)]
unsafe fn seccomp(
    op: libc::c_uint,
    flags: u32,
    arg: *const libc::c_void,
) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees `arg`; the kernel copies what it needs before returning.
    let ret = unsafe { libc::syscall(libc::SYS_seccomp, op, libc::c_uint::from(flags), arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Install `program` on the calling thread with `flags`; the listener fd with `NEW_LISTENER`.
#[expect(
    unsafe_code,
    reason = "passes a sock_fprog to seccomp(2) and takes ownership of the listener fd it returns"
)]
fn install(program: &[Instruction], flags: u32) -> io::Result<Option<OwnedFd>> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // `Instruction` is `#[repr(C)]` with the fields of `struct sock_filter`.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    let arg = std::ptr::from_ref(&prog).cast::<libc::c_void>();
    // SAFETY: `prog` points to `len` instructions that outlive the call; the kernel only reads.
    let ret = match unsafe { seccomp(SECCOMP_SET_MODE_FILTER, flags, arg) } {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) && flags == 0 => {
            // Kernels before 3.17 have no seccomp(2); prctl does the same without flags.
            // SAFETY: as above, `prog` is a valid sock_fprog for the duration of the call.
            let r = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    arg,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            0
        }
        other => other?,
    };
    if flags & FLAG_NEW_LISTENER == 0 {
        // With TSYNC (and no TSYNC_ESRCH), a positive result is the id of a thread that could
        // not be synchronized: nothing was loaded.
        if ret > 0 {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        return Ok(None);
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER, a successful seccomp(2) returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

impl Filter {
    /// Install the filter on the calling thread (all threads with `SECCOMP_FILTER_FLAG_TSYNC`).
    ///
    /// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN` (the kernel's rule;
    /// runc likewise leaves no_new_privs to the caller). Returns the notification listener
    /// when the profile uses `SCMP_ACT_NOTIFY`. Flags berth added by default (see
    /// [`Filter::optional_flags`]) are dropped if the kernel refuses them.
    pub(crate) fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let mut flags = self.flags | self.optional_flags;
        let result = match install(&self.program, flags) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.optional_flags != 0 => {
                flags = self.flags;
                install(&self.program, flags)
            }
            other => other,
        };
        result.map_err(|source| SeccompError::Load {
            len: self.program.len(),
            flags,
            source,
        })
    }
}

/// Whether the running kernel knows filter `flags` (probed as libseccomp does: with a null
/// program, a known flag fails with EFAULT, an unknown one with EINVAL; nothing is loaded).
pub(crate) fn kernel_accepts_flags(flags: u32) -> bool {
    // SAFETY: a null program makes the kernel fail with EFAULT after checking the flags.
    #[expect(unsafe_code, reason = "probe seccomp(2) with a null program")]
    let result = unsafe { seccomp(SECCOMP_SET_MODE_FILTER, flags, std::ptr::null()) };
    matches!(result, Err(e) if e.raw_os_error() == Some(libc::EFAULT))
}

/// Whether the running kernel implements a `SECCOMP_RET_*` action (`SECCOMP_GET_ACTION_AVAIL`).
#[cfg(test)]
pub(crate) fn action_available(action: u32) -> bool {
    let arg = std::ptr::from_ref(&action).cast::<libc::c_void>();
    // SAFETY: `arg` points to a u32 that outlives the call.
    #[expect(unsafe_code, reason = "SECCOMP_GET_ACTION_AVAIL reads one u32")]
    let result = unsafe { seccomp(SECCOMP_GET_ACTION_AVAIL, 0, arg) };
    result.is_ok()
}

/// runtime-spec `features.json` → `linux.seccomp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SeccompFeatures {
    pub enabled: bool,
    pub actions: Vec<String>,
    pub operators: Vec<String>,
    pub archs: Vec<String>,
    pub known_flags: Vec<String>,
    /// Known flags the running kernel accepts.
    pub supported_flags: Vec<String>,
}

/// What berth's seccomp supports, and which of the flags the running kernel accepts.
pub(crate) fn features() -> SeccompFeatures {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // A flag is known if the config types can carry it (berth_runtime_spec parses it) and we
    // map it.
    let known: Vec<(&str, u32)> = FLAGS
        .iter()
        .copied()
        .filter(|(name, _)| {
            serde_json::from_value::<LinuxSeccompFilterFlag>(serde_json::Value::String(
                (*name).to_owned(),
            ))
            .is_ok()
        })
        .collect();
    let supported = known
        .iter()
        .filter(|(_, bit)| {
            // WAIT_KILLABLE_RECV is only valid with a listener.
            let probe = if *bit == compile::FLAG_WAIT_KILLABLE_RECV {
                bit | FLAG_NEW_LISTENER
            } else {
                *bit
            };
            kernel_accepts_flags(probe)
        })
        .map(|(name, _)| (*name).to_owned())
        .collect();
    SeccompFeatures {
        enabled: true,
        actions: strings(&[
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP",
        ]),
        operators: strings(&[
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE",
        ]),
        // Those the config types can carry (berth_runtime_spec parses them) and berth has a
        // table for.
        archs: arch::supported_names()
            .into_iter()
            .filter(|name| {
                serde_json::from_value::<Arch>(serde_json::Value::String((*name).to_owned()))
                    .is_ok()
            })
            .map(str::to_owned)
            .collect(),
        known_flags: known.iter().map(|(name, _)| (*name).to_owned()).collect(),
        supported_flags: supported,
    }
}
