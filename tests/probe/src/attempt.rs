//! Attempt steps: things a contained process should not be able to do. Each reports
//! `{"ok": true, …}` or `{"ok": false, "errno": n, "errno_name": "EPERM"}`; a refused
//! attempt is an observation, not a probe failure.
//!
//! Every attempt is harmless if it succeeds on a host by mistake: a tmpfs mounted is
//! unmounted again, a node or file created is removed, the hostname is set to its current
//! value, module loading gets an invalid image, /proc/sysrq-trigger is only opened (never
//! written), and the chroot escape runs in a child process.

use std::ffi::CString;
use std::io;

use serde_json::{Value, json};

use crate::Action;
use crate::names::errno_name;
use crate::step::{Step, UsageError};

/// The attempt steps this module knows, for the usage text.
pub const ATTEMPTS: &[&str] = &[
    "mount-tmpfs[:<dir>]",
    "umount:<dir>",
    "init-module",
    "finit-module",
    "open-write:<path>",
    "write:<path>:<text>",
    "create:<path>",
    "mkdir:<path>",
    "read:<path>",
    "list:<dir>",
    "mknod[:<path>]",
    "sethostname",
    "chroot-escape[:<dir>]",
    "exe-write",
    "syscall:<nr>[:<arg>…6]",
];

/// `{"ok": false, "errno": …}` from an errno value.
pub fn failed(errno: i32) -> Value {
    json!({"ok": false, "errno": errno, "errno_name": errno_name(errno)})
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `{"ok": true}` merged with `extra`'s fields.
fn succeeded(extra: Value) -> Value {
    let mut v = json!({"ok": true});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

fn outcome(ret: libc::c_long, extra: Value) -> Value {
    if ret < 0 {
        failed(last_errno())
    } else {
        succeeded(extra)
    }
}

fn cstring(step: &Step, s: &str) -> Result<CString, UsageError> {
    CString::new(s).map_err(|_| step.usage("a path with a NUL byte"))
}

/// Plan an attempt step (arguments checked, nothing done yet); `Ok(None)` when `step` is
/// not an attempt.
pub fn plan(step: &Step) -> Result<Option<Action>, UsageError> {
    let a: Action = match step.name.as_str() {
        "mount-tmpfs" => {
            step.arity(0, 1)?;
            let target = cstring(step, step.str_arg(0, "/mnt"))?;
            Box::new(move || mount_tmpfs(&target))
        }
        "umount" => {
            step.arity(1, 1)?;
            let target = cstring(step, step.str_arg(0, ""))?;
            Box::new(move || umount(&target))
        }
        "init-module" => {
            step.arity(0, 0)?;
            Box::new(init_module)
        }
        "finit-module" => {
            step.arity(0, 0)?;
            Box::new(finit_module)
        }
        "open-write" => {
            step.arity(1, 1)?;
            let path = cstring(step, step.str_arg(0, ""))?;
            Box::new(move || open_close(&path, libc::O_WRONLY))
        }
        "exe-write" => {
            step.arity(0, 0)?;
            // the CVE-2019-5736 class: the binary behind /proc/self/exe must not be writable
            Box::new(|| open_close(c"/proc/self/exe", libc::O_WRONLY))
        }
        "write" => {
            step.arity(2, 2)?;
            let path = cstring(step, step.str_arg(0, ""))?;
            let data = step.str_arg(1, "").as_bytes().to_vec();
            Box::new(move || write(&path, &data))
        }
        "create" => {
            step.arity(1, 1)?;
            let path = cstring(step, step.str_arg(0, ""))?;
            Box::new(move || create(&path))
        }
        "mkdir" => {
            step.arity(1, 1)?;
            let path = cstring(step, step.str_arg(0, ""))?;
            Box::new(move || mkdir(&path))
        }
        "read" => {
            step.arity(1, 1)?;
            let path = step.str_arg(0, "").to_owned();
            Box::new(move || read(&path))
        }
        "list" => {
            step.arity(1, 1)?;
            let path = step.str_arg(0, "").to_owned();
            Box::new(move || list(&path))
        }
        "mknod" => {
            step.arity(0, 1)?;
            let path = cstring(step, step.str_arg(0, "/tmp/probe-null"))?;
            Box::new(move || mknod(&path))
        }
        "sethostname" => {
            step.arity(0, 0)?;
            Box::new(sethostname)
        }
        "chroot-escape" => {
            step.arity(0, 1)?;
            let dir = cstring(step, step.str_arg(0, "/dev"))?;
            Box::new(move || chroot_escape(&dir))
        }
        "syscall" => {
            step.arity(1, 7)?;
            let nr = step.i64_arg(0)?;
            let mut args = [0i64; 6];
            for (i, a) in args.iter_mut().enumerate().take(step.args.len() - 1) {
                *a = step.i64_arg(i + 1)?;
            }
            Box::new(move || syscall(nr, args))
        }
        _ => return Ok(None),
    };
    Ok(Some(a))
}

#[expect(unsafe_code, reason = "mount(2) and umount2(2) through libc")]
fn mount_tmpfs(target: &CString) -> Value {
    // SAFETY: all pointers are NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            c"probe".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"size=64k".as_ptr().cast(),
        )
    };
    if r != 0 {
        return failed(last_errno());
    }
    // it worked: undo it, and say whether undoing worked
    // SAFETY: `target` is a NUL-terminated string.
    let undone = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0;
    succeeded(json!({"unmounted_again": undone}))
}

#[expect(unsafe_code, reason = "umount2(2) through libc")]
fn umount(target: &CString) -> Value {
    // SAFETY: `target` is a NUL-terminated string.
    let r = unsafe { libc::umount2(target.as_ptr(), 0) };
    outcome(r.into(), json!({}))
}

#[expect(unsafe_code, reason = "init_module(2) through libc::syscall")]
fn init_module() -> Value {
    // An empty image: refused with EPERM without CAP_SYS_MODULE, and not a module with it.
    // SAFETY: a zero-length image at a null pointer is never read; params is a valid string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            std::ptr::null::<u8>(),
            0usize,
            c"".as_ptr(),
        )
    };
    outcome(r, json!({}))
}

#[expect(unsafe_code, reason = "finit_module(2) through libc::syscall")]
fn finit_module() -> Value {
    // fd -1: refused with EPERM without CAP_SYS_MODULE, EBADF with it.
    // SAFETY: params is a valid NUL-terminated string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, -1i32, c"".as_ptr(), 0i32) };
    outcome(r, json!({}))
}

#[expect(unsafe_code, reason = "open(2) and close(2) through libc")]
fn open_close(path: &std::ffi::CStr, flags: libc::c_int) -> Value {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return failed(last_errno());
    }
    // SAFETY: `fd` was just opened by this function.
    unsafe { libc::close(fd) };
    succeeded(json!({}))
}

#[expect(unsafe_code, reason = "open(2), write(2) and close(2) through libc")]
fn write(path: &CString, data: &[u8]) -> Value {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return failed(last_errno());
    }
    // SAFETY: `data` is valid for `data.len()` bytes.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let errno = last_errno();
    // SAFETY: `fd` was just opened by this function.
    unsafe { libc::close(fd) };
    if n < 0 {
        return failed(errno);
    }
    succeeded(json!({"written": n}))
}

#[expect(unsafe_code, reason = "open(2), close(2) and unlink(2) through libc")]
fn create(path: &CString) -> Value {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated; the mode is passed as the variadic argument.
    let fd = unsafe { libc::open(path.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return failed(last_errno());
    }
    // SAFETY: `fd` was just opened by this function; `path` is NUL-terminated.
    let removed = unsafe {
        libc::close(fd);
        libc::unlink(path.as_ptr()) == 0
    };
    succeeded(json!({"removed_again": removed}))
}

#[expect(unsafe_code, reason = "mkdirat(2) and rmdir(2) through libc")]
fn mkdir(path: &CString) -> Value {
    // SAFETY: `path` is NUL-terminated.
    let r = unsafe { libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), 0o755) };
    if r != 0 {
        return failed(last_errno());
    }
    // SAFETY: `path` is NUL-terminated.
    let removed = unsafe { libc::rmdir(path.as_ptr()) } == 0;
    succeeded(json!({"removed_again": removed}))
}

fn read(path: &str) -> Value {
    use std::io::Read;
    const MAX: u64 = 1 << 20;
    let mut buf = Vec::new();
    match std::fs::File::open(path).and_then(|f| f.take(MAX).read_to_end(&mut buf)) {
        Ok(n) => {
            let head = String::from_utf8_lossy(&buf[..buf.len().min(256)]).into_owned();
            succeeded(json!({"bytes": n, "head": head}))
        }
        Err(e) => failed(e.raw_os_error().unwrap_or(0)),
    }
}

fn list(path: &str) -> Value {
    match std::fs::read_dir(path) {
        Ok(dir) => {
            let mut names: Vec<String> = dir
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            names.sort();
            succeeded(json!({"entries": names}))
        }
        Err(e) => failed(e.raw_os_error().unwrap_or(0)),
    }
}

#[expect(unsafe_code, reason = "mknod(2) and unlink(2) through libc")]
fn mknod(path: &CString) -> Value {
    // a character device like /dev/null (1:3): needs CAP_MKNOD
    let dev = libc::makedev(1, 3);
    // SAFETY: `path` is NUL-terminated.
    let r = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, dev) };
    if r != 0 {
        return failed(last_errno());
    }
    // SAFETY: `path` is NUL-terminated.
    let removed = unsafe { libc::unlink(path.as_ptr()) } == 0;
    succeeded(json!({"removed_again": removed}))
}

#[expect(unsafe_code, reason = "gethostname(2) and sethostname(2) through libc")]
fn sethostname() -> Value {
    // set the name it already has, so that success changes nothing, even on a host
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its full length, which is passed.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return failed(last_errno());
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    // SAFETY: `buf` holds `len` valid bytes.
    let r = unsafe { libc::sethostname(buf.as_ptr().cast(), len) };
    outcome(r.into(), json!({}))
}

/// The classic escape: with the cwd at the container's root, chroot into a subdirectory
/// (the cwd is now outside the chroot), walk `..` upwards, and chroot(".") there. After a
/// proper `pivot_root` the walk stops at the container's root; after a bare chroot it
/// reaches the host's. Done in a child so the probe's own root never changes.
#[expect(
    unsafe_code,
    reason = "fork(2), chroot(2), stat(2), pipe(2) and waitpid(2) through libc"
)]
fn chroot_escape(dir: &CString) -> Value {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut before: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `before` is writable.
    if unsafe { libc::stat(c"/".as_ptr(), &mut before) } != 0 {
        return failed(last_errno());
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return failed(last_errno());
    }
    // SAFETY: the probe is single-threaded here (load threads are joined before a step
    // returns); the child only makes system calls and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = last_errno();
        // SAFETY: closing the pipe this function opened.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return failed(e);
    }
    if pid == 0 {
        // child: [stage, errno, escaped]
        // SAFETY: system calls on NUL-terminated strings and a zeroed stat buffer, then
        // write(2) of a local array and _exit(2): async-signal-safe only.
        unsafe {
            let mut after: libc::stat = std::mem::zeroed();
            let msg: [i32; 3] = if libc::chdir(c"/".as_ptr()) != 0 {
                [1, *libc::__errno_location(), 0]
            } else if libc::chroot(dir.as_ptr()) != 0 {
                [2, *libc::__errno_location(), 0]
            } else {
                let mut i = 0;
                while i < 64 && libc::chdir(c"..".as_ptr()) == 0 {
                    i += 1;
                }
                if libc::chroot(c".".as_ptr()) != 0 {
                    [3, *libc::__errno_location(), 0]
                } else if libc::stat(c"/".as_ptr(), &mut after) != 0 {
                    [4, *libc::__errno_location(), 0]
                } else {
                    let escaped = after.st_dev != before.st_dev || after.st_ino != before.st_ino;
                    [0, 0, i32::from(escaped)]
                }
            };
            libc::write(fds[1], msg.as_ptr().cast(), std::mem::size_of_val(&msg));
            libc::_exit(0);
        }
    }
    let mut msg = [0i32; 3];
    // SAFETY: closing our copy of the write end, reading into a local array of the given
    // size, and reaping the child this function forked.
    let (n, reaped) = unsafe {
        libc::close(fds[1]);
        let n = libc::read(fds[0], msg.as_mut_ptr().cast(), std::mem::size_of_val(&msg));
        libc::close(fds[0]);
        let mut status = 0;
        (n, libc::waitpid(pid, &mut status, 0) == pid)
    };
    if usize::try_from(n).ok() != Some(std::mem::size_of_val(&msg)) || !reaped {
        return json!({"ok": false, "errno": null, "error": "the escape child did not report"});
    }
    let stage = match msg[0] {
        0 => None,
        1 => Some("chdir /"),
        2 => Some("chroot into the directory"),
        3 => Some("chroot ."),
        _ => Some("stat /"),
    };
    match stage {
        None => succeeded(json!({"escaped": msg[2] == 1})),
        Some(stage) => {
            let mut v = failed(msg[1]);
            v["stage"] = json!(stage);
            v["escaped"] = json!(false);
            v
        }
    }
}

#[expect(
    unsafe_code,
    reason = "a raw system call by number, the point of this step"
)]
fn syscall(nr: i64, a: [i64; 6]) -> Value {
    // SAFETY: the caller (a test) chooses the call and its arguments; the kernel validates
    // pointers (EFAULT), and the probe is a disposable process inside a container.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        let mut v = failed(last_errno());
        v["nr"] = json!(nr);
        return v;
    }
    succeeded(json!({"nr": nr, "ret": r}))
}
