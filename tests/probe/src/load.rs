//! Load and control steps: use up a resource until a limit stops it, or wait.
//!
//! Every step is bounded by its arguments (and the caps below): `fork` reaps what it
//! forked, `alloc` unmaps what it touched, `burn` joins its threads before it returns.

use std::io;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Action;
use crate::attempt::failed;
use crate::step::{Step, UsageError};

/// The load and control steps this module knows, for the usage text.
pub const LOADS: &[&str] = &[
    "fork:<n>",
    "alloc:<MiB>",
    "burn:<ms>[:<threads>]",
    "read-direct:<path>:<bytes>",
    "write-direct:<path>:<bytes>",
    "write-fsync:<path>:<bytes>",
    "sleep:<ms>",
    "wait-signal",
];

const MAX_FORKS: u64 = 100_000;
const MAX_ALLOC_MIB: u64 = 64 * 1024;
const MAX_MS: u64 = 3_600_000;
const MAX_THREADS: u64 = 64;
const MAX_READ: u64 = 1 << 40;

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Plan a load step (arguments checked, nothing done yet); `Ok(None)` when `step` is not
/// one.
pub fn plan(step: &Step) -> Result<Option<Action>, UsageError> {
    let a: Action = match step.name.as_str() {
        "fork" => {
            step.arity(1, 1)?;
            let n = step.u64_arg(0, 0, MAX_FORKS)?;
            Box::new(move || fork(n))
        }
        "alloc" => {
            step.arity(1, 1)?;
            let mib = step.u64_arg(0, 0, MAX_ALLOC_MIB)?;
            Box::new(move || alloc(mib))
        }
        "burn" => {
            step.arity(1, 2)?;
            let ms = step.u64_arg(0, 0, MAX_MS)?;
            let threads = step.u64_arg(1, 1, MAX_THREADS)?.max(1);
            Box::new(move || burn(Duration::from_millis(ms), threads))
        }
        "read-direct" => {
            step.arity(2, 2)?;
            let path = std::ffi::CString::new(step.str_arg(0, ""))
                .map_err(|_| step.usage("a path with a NUL byte"))?;
            let bytes = step.u64_arg(1, 0, MAX_READ)?;
            Box::new(move || read_direct(&path, bytes))
        }
        "write-direct" => {
            step.arity(2, 2)?;
            let path = std::ffi::CString::new(step.str_arg(0, ""))
                .map_err(|_| step.usage("a path with a NUL byte"))?;
            let bytes = step.u64_arg(1, 0, MAX_READ)?;
            Box::new(move || write_direct(&path, bytes))
        }
        "write-fsync" => {
            step.arity(2, 2)?;
            let path = std::ffi::CString::new(step.str_arg(0, ""))
                .map_err(|_| step.usage("a path with a NUL byte"))?;
            let bytes = step.u64_arg(1, 0, MAX_READ)?;
            Box::new(move || block_io(&path, Direction::Write, bytes, false))
        }
        "sleep" => {
            step.arity(1, 1)?;
            let d = Duration::from_millis(step.u64_arg(0, 0, MAX_MS)?);
            Box::new(move || sleep(d))
        }
        "wait-signal" => {
            step.arity(0, 0)?;
            Box::new(wait_signal)
        }
        _ => return Ok(None),
    };
    Ok(Some(a))
}

/// Fork up to `n` children that wait on a pipe; stop at the first failure (EAGAIN at a
/// pids limit). Then close the pipe so they exit, and reap them all.
#[expect(
    unsafe_code,
    reason = "pipe(2), fork(2), read(2), _exit(2) and waitpid(2)"
)]
fn fork(n: u64) -> Value {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return failed(last_errno());
    }
    let mut children = Vec::new();
    let mut errno = None;
    for _ in 0..n {
        // SAFETY: the probe is single-threaded here; the child only reads and _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            errno = Some(last_errno());
            break;
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls only: close, read into a local byte, _exit.
            unsafe {
                libc::close(fds[1]);
                let mut b = 0u8;
                while libc::read(fds[0], (&raw mut b).cast(), 1) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
                libc::_exit(0);
            }
        }
        children.push(pid);
    }
    // SAFETY: closing the write end wakes every child (EOF); then reap each one.
    let reaped = unsafe {
        libc::close(fds[1]);
        libc::close(fds[0]);
        children
            .iter()
            .filter(|pid| {
                let mut status = 0;
                libc::waitpid(**pid, &mut status, 0) == **pid
            })
            .count()
    };
    let mut v = json!({
        "ok": errno.is_none(),
        "requested": n,
        "forked": children.len(),
        "reaped": reaped,
    });
    if let Some(e) = errno {
        let f = failed(e);
        v["errno"] = f["errno"].clone();
        v["errno_name"] = f["errno_name"].clone();
    }
    v
}

/// Map `mib` MiB of anonymous memory and write to every page, so it is really charged.
#[expect(unsafe_code, reason = "mmap(2), munmap(2) and writes into the mapping")]
fn alloc(mib: u64) -> Value {
    let Ok(len) = usize::try_from(mib.saturating_mul(1 << 20)) else {
        return failed(libc::ENOMEM);
    };
    if len == 0 {
        return json!({"ok": true, "mib": 0});
    }
    // SAFETY: an anonymous private mapping with no address hint.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return failed(last_errno());
    }
    let start = Instant::now();
    let base = p.cast::<u8>();
    let mut off = 0;
    while off < len {
        // SAFETY: `off < len`, inside the mapping just made; volatile so it is not elided.
        unsafe { base.add(off).write_volatile(1) };
        off += 4096;
    }
    let elapsed = start.elapsed();
    // SAFETY: unmapping exactly the mapping made above.
    unsafe { libc::munmap(p, len) };
    json!({"ok": true, "mib": mib, "touch_ms": ms(elapsed)})
}

/// CPU time (user + system) of the whole process so far.
#[expect(unsafe_code, reason = "getrusage(2)")]
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain old data; all-zero is valid, and it is writable.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Spin `threads` threads for `wall` of wall-clock time; report the CPU time they got.
/// Under a quota of q CPUs, cpu_ms / wall_ms stays near q or below.
fn burn(wall: Duration, threads: u64) -> Value {
    let cpu0 = cpu_time();
    let start = Instant::now();
    let deadline = start + wall;
    let spin = move || {
        let mut x = 0u64;
        while Instant::now() < deadline {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        x
    };
    let handles: Vec<_> = (1..threads).map(|_| std::thread::spawn(spin)).collect();
    spin();
    let joined = handles.into_iter().filter_map(|h| h.join().ok()).count();
    let wall = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let ratio = cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    json!({
        "ok": true,
        "threads": threads,
        "joined": joined + 1,
        "wall_ms": ms(wall),
        "cpu_ms": ms(cpu),
        "cpu_per_wall": ratio,
    })
}

/// Read `bytes` from `path` with O_DIRECT (no page cache), 64 KiB at a time; report how
/// long it took. Under a read bps limit the time is at least bytes / limit.
fn read_direct(path: &std::ffi::CStr, bytes: u64) -> Value {
    block_io(path, Direction::Read, bytes, true)
}

/// Write `bytes` (rounded up to 64 KiB) of zeros to `path` with O_DIRECT (created 0644 if
/// missing, not truncated), 64 KiB at a time, then fsync; report how long it took. Under a
/// write bps limit the time is at least bytes / limit.
fn write_direct(path: &std::ffi::CStr, bytes: u64) -> Value {
    block_io(path, Direction::Write, bytes, true)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read,
    Write,
}

/// Read or write `bytes` of `path` in 64 KiB chunks, with O_DIRECT or through the page
/// cache (`direct` false: buffered writes, then the fsync below writes them back); a write
/// is fsync'd before the clock stops.
#[expect(
    unsafe_code,
    reason = "open(2) with O_DIRECT, read(2)/write(2) with an aligned mapping, fsync(2)"
)]
fn block_io(path: &std::ffi::CStr, dir: Direction, bytes: u64, direct: bool) -> Value {
    const CHUNK: usize = 64 * 1024;
    let flags = match dir {
        Direction::Read => libc::O_RDONLY,
        Direction::Write => libc::O_WRONLY | libc::O_CREAT,
    };
    // SAFETY: `path` is NUL-terminated; the mode is used only with O_CREAT.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            flags | if direct { libc::O_DIRECT } else { 0 } | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        return failed(last_errno());
    }
    // a page-aligned buffer, as O_DIRECT needs (an anonymous mapping is zero-filled)
    // SAFETY: an anonymous private mapping with no address hint.
    let buf = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            CHUNK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if buf == libc::MAP_FAILED {
        let e = last_errno();
        // SAFETY: closing the fd opened above.
        unsafe { libc::close(fd) };
        return failed(e);
    }
    let start = Instant::now();
    let mut done: u64 = 0;
    let mut errno = None;
    while done < bytes {
        // SAFETY: `buf` is a readable and writable mapping of CHUNK bytes.
        let n = unsafe {
            match dir {
                Direction::Read => libc::read(fd, buf, CHUNK),
                Direction::Write => libc::write(fd, buf, CHUNK),
            }
        };
        if n < 0 {
            let e = last_errno();
            if e == libc::EINTR {
                continue;
            }
            errno = Some(e);
            break;
        }
        if n == 0 {
            break;
        }
        done += u64::try_from(n).unwrap_or(0);
    }
    // SAFETY: fsync of the fd opened above.
    if dir == Direction::Write && errno.is_none() && unsafe { libc::fsync(fd) } != 0 {
        errno = Some(last_errno());
    }
    let elapsed = start.elapsed();
    // SAFETY: unmapping and closing what this function made.
    unsafe {
        libc::munmap(buf, CHUNK);
        libc::close(fd);
    }
    if let Some(e) = errno {
        let mut v = failed(e);
        v["bytes"] = json!(done);
        return v;
    }
    json!({"ok": true, "bytes": done, "elapsed_ms": ms(elapsed)})
}

fn sleep(d: Duration) -> Value {
    // the probe is not a test: a plain sleep is what this step is for
    #[expect(clippy::disallowed_methods, reason = "the probe's sleep step sleeps")]
    std::thread::sleep(d);
    json!({"ok": true, "ms": ms(d)})
}

/// Block SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGRTMIN+2 and wait for one of them. Blocked
/// signals reach a namespace's pid 1 too (an unhandled SIGTERM to pid 1 is dropped), so
/// `kill <id> TERM` ends a probe waiting here, with exit code 0.
#[expect(unsafe_code, reason = "sigprocmask(2) and sigwaitinfo(2)")]
fn wait_signal() -> Value {
    // SAFETY: sigset_t is plain old data, initialised by sigemptyset before use; the
    // calls get valid pointers to it and to a zeroed siginfo_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGRTMIN() + 2,
        ] {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return failed(last_errno());
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let sig = libc::sigwaitinfo(&set, &mut info);
            if sig > 0 {
                return json!({"ok": true, "signal": sig});
            }
            if last_errno() != libc::EINTR {
                return failed(last_errno());
            }
        }
    }
}
