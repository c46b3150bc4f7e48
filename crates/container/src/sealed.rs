//! CVE-2019-5736: the container must never get a writable handle on the runtime binary
//! (a process in the container can open /proc/<runtime pid>/exe while the runtime joins
//! it). Like runc ≥ 1.1.12 and crun, commands that enter a container re-execute the
//! runtime from a sealed memfd copy of itself: /proc/<pid>/exe is then a memfd that cannot
//! be written, grown or shrunk, and the binary on disk is never reachable.

use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

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

/// Whether this process already runs from a sealed memfd.
pub fn is_sealed() -> bool {
    match rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => rustix::fs::fcntl_get_seals(&fd).is_ok_and(|s| s.contains(SEALS)),
        Err(_) => false,
    }
}

/// Re-execute from a sealed copy unless already sealed. Returns `Ok(())` only when the
/// process already runs sealed; otherwise it does not return (or returns the error).
pub fn ensure_sealed(argv: Vec<OsString>, envp: Vec<OsString>) -> Result<(), SealError> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io("open /proc/self/exe"))?;
    if rustix::fs::fcntl_get_seals(&exe).is_ok_and(|s| s.contains(SEALS)) {
        return Ok(());
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
    let to_c = |v: Vec<OsString>| -> Vec<CString> {
        v.into_iter()
            .filter_map(|s| CString::new(s.into_vec()).ok())
            .collect()
    };
    let err = crate::sys::fexecve(mem.as_fd(), &to_c(argv), &to_c(envp));
    Err(SealError::Io {
        what: "execute the sealed copy",
        source: err,
    })
}
