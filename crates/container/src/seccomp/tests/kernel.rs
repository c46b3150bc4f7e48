//! seccomp filters loaded for real: each test forks a child that sets no_new_privs, loads a
//! compiled filter, calls syscalls and reports through its exit status; the parent reaps it
//! with a deadline (pidfd + poll) and kills it on any failure.
#![allow(
    unsafe_code,
    reason = "fork, raw syscalls, signal handlers and _exit in test children"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::seccomp::{self, Filter, NotifyResponse};
use berth_runtime_spec::LinuxSeccomp;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(20);
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
}

/// A forked child, killed and reaped on drop unless waited for.
struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Child {
    /// Fork; the child runs `body` and exits with its result (101 if it panics).
    fn spawn(body: impl FnOnce() -> i32) -> Child {
        // SAFETY: the child only runs `body` (syscalls, and allocation which glibc makes
        // fork-safe) and then _exit()s without returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        let pidfd = match Pid::from_raw(pid).map(|p| pidfd_open(p, PidfdFlags::empty())) {
            Some(Ok(fd)) => fd,
            other => {
                // SAFETY: `pid` is our child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                panic!("pidfd_open({pid}): {other:?}");
            }
        };
        Child {
            pid,
            pidfd,
            reaped: false,
        }
    }

    /// Wait for the child to end within [`TIMEOUT`].
    fn wait(mut self) -> Exit {
        assert!(
            readable(self.pidfd.as_fd(), TIMEOUT),
            "child {} still running after {TIMEOUT:?}",
            self.pid
        );
        let mut status = 0;
        // SAFETY: `pid` is our child and has exited (its pidfd is readable).
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid, "waitpid: {}", std::io::Error::last_os_error());
        self.reaped = true;
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: `pid` is our child, not yet reaped, so the pid is still ours.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Whether `fd` becomes readable within `timeout`.
fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

fn compile(v: serde_json::Value) -> Filter {
    let config: LinuxSeccomp = serde_json::from_value(v).expect("valid profile");
    seccomp::compile(&config).expect("profile compiles")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// In a child: no core dumps, no_new_privs, load `filter`. Exits 90/91 on failure.
fn load(filter: &Filter) -> Option<OwnedFd> {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on the child's own state.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            libc::_exit(90);
        }
    }
    match filter.load() {
        Ok(fd) => fd,
        // SAFETY: ends the child.
        Err(_) => unsafe { libc::_exit(91) },
    }
}

fn uname() -> (libc::c_int, i32) {
    let mut buf = MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uname writes one utsname.
    let r = unsafe { libc::uname(buf.as_mut_ptr()) };
    (r, errno())
}

/// Run `body` in a child after loading `filter`; its exit.
fn in_child(filter: &Filter, body: impl FnOnce() -> i32) -> Exit {
    Child::spawn(|| {
        load(filter);
        body()
    })
    .wait()
}

#[test]
fn errno_action_returns_the_custom_errno() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}],
    }));
    let exit = in_child(&filter, || {
        let (r, e) = uname();
        if r != -1 {
            return 1;
        }
        if e != libc::EXDEV {
            return 2;
        }
        // The filter is installed and others syscalls still work.
        // SAFETY: plain syscalls.
        if unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } != 2
            || unsafe { libc::getpid() } <= 0
        {
            return 3;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn allow_default_with_one_syscall_denied() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES}],
    }));
    let exit = in_child(&filter, || {
        let path = c"/nonexistent-berth-seccomp/x";
        // SAFETY: a valid C string.
        let r = unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755) };
        if r != -1 || errno() != libc::EACCES {
            return 1;
        }
        // Not denied: ENOENT from the kernel, not EACCES from the filter.
        // SAFETY: a valid C string.
        let r = unsafe { libc::rmdir(path.as_ptr()) };
        if r != -1 || errno() != libc::ENOENT {
            return 2;
        }
        if uname().0 != 0 {
            return 3;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn kill_process_kills_with_sigsys() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}],
    }));
    let exit = in_child(&filter, || {
        uname();
        7
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // SYS_SECCOMP = 1: the signal came from a seccomp TRAP.
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(if code == 1 { 42 } else { 43 }) }
}

#[test]
fn trap_raises_sigsys_from_seccomp() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_TRAP"}],
    }));
    let exit = in_child(&filter, || {
        // SAFETY: installs a handler that only calls _exit.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
        }
        uname();
        7
    });
    assert_eq!(exit, Exit::Code(42));
}

#[test]
fn log_action_and_log_flag_let_the_syscall_run() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_LOG"}],
    }));
    let exit = in_child(&filter, || {
        // SAFETY: plain syscall.
        if unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } != 2 {
            return 1;
        }
        if uname().0 != 0 { 2 } else { 0 }
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn tsync_applies_the_filter_to_every_thread() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}],
    }));
    let exit = Child::spawn(|| {
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let (done, result) = std::sync::mpsc::channel();
        // A thread started before the filter is loaded.
        let thread = std::thread::spawn(move || {
            if wait_go.recv().is_ok() {
                let _ = done.send(uname());
            }
        });
        load(&filter);
        if go.send(()).is_err() {
            return 1;
        }
        let Ok((r, e)) = result.recv_timeout(TIMEOUT) else {
            return 2;
        };
        let _ = thread.join();
        if r == -1 && e == libc::EXDEV { 0 } else { 3 }
    })
    .wait();
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn argument_filter_denies_one_value_only() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EOPNOTSUPP,
            "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}],
    }));
    let exit = in_child(&filter, || {
        // SAFETY: personality(0xffffffff) only queries.
        let r = unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) };
        if r != -1 || errno() != libc::EOPNOTSUPP {
            return 1;
        }
        // SAFETY: PER_LINUX is what the child runs with already.
        let r = unsafe { libc::syscall(libc::SYS_personality, 0u64) };
        if r < 0 { 2 } else { 0 }
    });
    assert_eq!(exit, Exit::Code(0));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscall_numbers_are_killed_when_only_x86_64_is_allowed() {
    let filter = compile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let exit = in_child(&filter, || {
        // SAFETY: getpid through the x32 ABI; the filter kills it before the kernel looks.
        unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) };
        7
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[cfg(target_arch = "x86_64")]
fn int80_getpid() -> i64 {
    let mut ret: i64 = 20; // __NR_getpid on i386
    // SAFETY: the i386 syscall gate; getpid takes no arguments and touches no memory.
    unsafe { std::arch::asm!("int 0x80", inout("rax") ret, options(nostack)) };
    ret
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscalls_of_an_unlisted_arch_get_the_bad_arch_kill() {
    // Without a filter the i386 gate works here (the kernel has IA32 emulation)...
    let exit = Child::spawn(|| {
        // SAFETY: plain syscall.
        if int80_getpid() == i64::from(unsafe { libc::getpid() }) {
            0
        } else {
            1
        }
    })
    .wait();
    assert_eq!(
        exit,
        Exit::Code(0),
        "this kernel runs no i386 syscalls: the test cannot check the arch dispatch"
    );
    // ...and with an x86_64-only filter it is killed (libseccomp's bad-arch action).
    let filter = compile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let exit = in_child(&filter, || {
        int80_getpid();
        7
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
    // Listed, the same call is allowed.
    let filter =
        compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}));
    let exit = in_child(&filter, || {
        // SAFETY: plain syscall.
        if int80_getpid() == i64::from(unsafe { libc::getpid() }) {
            0
        } else {
            1
        }
    });
    assert_eq!(exit, Exit::Code(0));
}

/// Receive the agent's payload and fd from one connection.
fn receive_state(listener: &UnixListener) -> (serde_json::Value, OwnedFd) {
    assert!(
        readable(listener.as_fd(), TIMEOUT),
        "no connection from the child within {TIMEOUT:?}"
    );
    let (conn, _) = listener.accept().expect("accept");
    let mut payload = Vec::new();
    let mut fd = None;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    for _ in 0..1000 {
        assert!(
            readable(conn.as_fd(), TIMEOUT),
            "payload incomplete after {TIMEOUT:?}"
        );
        let mut buf = [0u8; 4096];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let msg = recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    assert!(fd.replace(f).is_none(), "more than one fd sent");
                }
            }
        }
        if msg.bytes == 0 {
            break;
        }
        payload.extend_from_slice(&buf[..msg.bytes]);
    }
    let state = serde_json::from_slice(&payload).expect("payload is JSON");
    (state, fd.expect("listener fd sent with SCM_RIGHTS"))
}

#[test]
fn notify_hands_the_listener_to_the_agent_which_answers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "berth-test",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}],
    }));
    assert!(filter.uses_notify());
    let child = Child::spawn(|| {
        let Some(fd) = load(&filter) else { return 10 };
        // SAFETY: plain syscall.
        let pid = unsafe { libc::getpid() };
        let state = json!({
            "ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": pid, "metadata": "berth-test",
            "state": {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": pid, "bundle": "/b"},
        });
        if seccomp::send_listener(&socket, fd.as_fd(), state.to_string().as_bytes()).is_err() {
            return 11;
        }
        drop(fd);
        // First answered with an error, then let through.
        let (r, e) = uname();
        if r != -1 || e != libc::EXDEV {
            return 12;
        }
        if uname().0 != 0 {
            return 13;
        }
        0
    });
    let (state, notify_fd) = receive_state(&listener);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "berth-test");
    assert_eq!(state["pid"], json!(child.pid));
    for response in [NotifyResponse::Error(libc::EXDEV), NotifyResponse::Continue] {
        assert!(
            readable(notify_fd.as_fd(), TIMEOUT),
            "no notification within {TIMEOUT:?}"
        );
        let n = seccomp::receive_notification(notify_fd.as_fd()).expect("notification");
        assert_eq!(n.nr, libc::SYS_uname as i32);
        assert_eq!(n.pid, child.pid as u32);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(n.arch, AUDIT_ARCH_X86_64);
        assert!(seccomp::notification_id_valid(notify_fd.as_fd(), n.id));
        seccomp::respond(notify_fd.as_fd(), n.id, response).expect("respond");
    }
    assert_eq!(child.wait(), Exit::Code(0));
}

/// Docker's default profile's shape and scale: default ERRNO(EPERM), the three x86 ABIs, an
/// allow-list of every syscall but the privileged ones, and argument rules as Docker's
/// (personality values, clone without namespace flags, socket but AF_VSOCK, clone3 ENOSYS).
fn docker_scale_profile() -> serde_json::Value {
    const DENIED: [&str; 26] = [
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "clone",
        "clone3",
        "create_module",
        "delete_module",
        "finit_module",
        "get_kernel_syms",
        "init_module",
        "ioperm",
        "iopl",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mount",
        "move_mount",
        "nfsservctl",
        "open_by_handle_at",
        "personality",
        "pivot_root",
        "ptrace",
        "socket",
    ];
    let mut names = Vec::new();
    let mut nr = 0;
    while syscall_numbers::x86_64::is_valid_sys_call_number(nr) {
        if let Some(name) = syscall_numbers::x86_64::sys_call_name(nr)
            && !DENIED.contains(&name)
            && ![
                "reboot", "swapon", "swapoff", "umount2", "unshare", "setns", "syslog", "vhangup",
            ]
            .contains(&name)
        {
            names.push(name);
        }
        nr += 1;
    }
    names.extend([
        "socketcall",
        "arm_fadvise64_64",
        "set_tls",
        "breakpoint",
        "cacheflush",
        "s390_pci_mmio_read",
    ]);
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131_072, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131_080, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4_294_967_295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2_114_060_288u64, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
        ],
    })
}

#[test]
fn docker_scale_profile_loads_and_a_child_runs_true() {
    let start = Instant::now();
    let filter = compile(docker_scale_profile());
    let took = start.elapsed();
    eprintln!(
        "docker-scale profile: {} instructions, compiled in {took:?}",
        filter.len()
    );
    assert!(filter.len() < 1000, "{} instructions", filter.len());
    assert!(
        filter.unknown_syscalls().is_empty(),
        "{:?}",
        filter.unknown_syscalls()
    );
    let exit = in_child(&filter, || {
        // Denied: EPERM from the filter (allowed, a missing pid would give ESRCH).
        // SAFETY: plain syscall on a pid that does not exist.
        let r =
            unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_PEEKUSER, 0x7fff_fff0, 0, 0) };
        if r != -1 || errno() != libc::EPERM {
            return 1;
        }
        // clone3 gets ENOSYS so that libc falls back to clone (Docker's rule).
        // SAFETY: clone3 with a null argument; the filter answers before the kernel reads it.
        let r = unsafe { libc::syscall(libc::SYS_clone3, 0, 0) };
        if r != -1 || errno() != libc::ENOSYS {
            return 2;
        }
        // Argument rules: AF_VSOCK sockets denied, AF_UNIX allowed.
        // SAFETY: plain syscall.
        let vsock = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
        if vsock != -1 || errno() != libc::EPERM {
            return 3;
        }
        // SAFETY: plain syscall.
        if unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) } < 0 {
            return 4;
        }
        // A real program runs under the filter (exec, dynamic loader, libc start-up, fork
        // through clone without namespace flags is not needed by true).
        let prog = c"/bin/true";
        let argv = [prog.as_ptr(), std::ptr::null()];
        // SAFETY: valid C strings, null-terminated argv; on success it does not return.
        unsafe { libc::execv(prog.as_ptr(), argv.as_ptr()) };
        5
    });
    assert_eq!(exit, Exit::Code(0));

    // And a shell that forks (clone without namespace flags) and execs under it.
    let exit = in_child(&filter, || {
        let sh = c"/bin/sh";
        let arg = c"-c";
        let script = c"/bin/true && echo ok > /dev/null && exit 3";
        let argv = [sh.as_ptr(), arg.as_ptr(), script.as_ptr(), std::ptr::null()];
        // SAFETY: as above.
        unsafe { libc::execv(sh.as_ptr(), argv.as_ptr()) };
        5
    });
    assert_eq!(exit, Exit::Code(3));
}
