//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`), resolved the way
//! dockerd resolves it for a container: its `includes`/`excludes` (capabilities,
//! architectures, minimum kernel) evaluated for the capability set [`default_spec`] grants
//! (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE: none of the capabilities the profile
//! conditions on) and for the architecture berth was built for, leaving a plain OCI
//! `linux.seccomp`:
//!
//! - default action ERRNO(EPERM); the native architecture and its compat ABIs;
//! - an allow-list of the ordinary syscalls; `ptrace`, `process_vm_readv`/`writev` (the
//!   profile allows them from Linux 4.8, whose seccomp cannot be bypassed through ptrace);
//! - `socket` but AF_VSOCK; `personality` with the five harmless personas only;
//! - `clone` only without namespace flags (`(flags & 0x7E020000) == 0`), `clone3` fails
//!   with ENOSYS (its flags live in memory, so the C libraries fall back to `clone`);
//! - and so denied: `mount`, `umount2`, `unshare`, `setns`, `pivot_root`, `chroot` (no
//!   CAP_SYS_CHROOT), `bpf`, `perf_event_open`, `keyctl`/`add_key`/`request_key`,
//!   `kexec_*`, module loading, `open_by_handle_at`, `userfaultfd`, clock setting, `acct`,
//!   `swapon`, `reboot`, `syslog`, … (what the kernel guards by capability the container
//!   lacks anyway; what it does not, such as `unshare(CLONE_NEWUSER)` and `keyctl`, is the
//!   profile's real work).
//!
//! [`default_spec`]: super::default_spec::default_spec

use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Seccomp {
    default_action: &'static str,
    default_errno_ret: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    architectures: Vec<&'static str>,
    syscalls: Vec<Syscall>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    names: Vec<&'static str>,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<Arg>,
}

#[derive(Serialize)]
struct Arg {
    index: u32,
    value: u64,
    op: &'static str,
}

/// The profile's unconditional allow-list, in its order.
const ALLOW: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// `personality(2)` values the profile allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff (query).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `clone(2)` flags that create namespaces (CLONE_NEWNS … CLONE_NEWNET, CLONE_NEWCGROUP,
/// CLONE_NEWTIME is 0x80 and is a clone3/unshare flag only): `clone` is allowed when none
/// is set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// AF_VSOCK: `socket` is allowed for every other family.
const AF_VSOCK: u64 = 40;

const ENOSYS: u32 = 38;

fn allow(names: &[&'static str]) -> Syscall {
    Syscall {
        names: names.to_vec(),
        action: "SCMP_ACT_ALLOW",
        errno_ret: None,
        args: Vec::new(),
    }
}

fn allow_if(name: &'static str, index: u32, value: u64, op: &'static str) -> Syscall {
    Syscall {
        args: vec![Arg { index, value, op }],
        ..allow(&[name])
    }
}

/// The architectures (native first, then its compat ABIs, as the profile's `archMap`)
/// and the architecture-specific allowed syscalls of the target berth was built for.
fn native() -> (Vec<&'static str>, Vec<&'static [&'static str]>) {
    if cfg!(target_arch = "x86_64") {
        (
            vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            vec![&["arch_prctl"], &["modify_ldt"]],
        )
    } else if cfg!(target_arch = "aarch64") {
        (
            vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            vec![&[
                "arm_fadvise64_64",
                "arm_sync_file_range",
                "sync_file_range2",
                "breakpoint",
                "cacheflush",
                "set_tls",
            ]],
        )
    } else if cfg!(target_arch = "s390x") {
        (
            vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
            vec![&[
                "s390_pci_mmio_read",
                "s390_pci_mmio_write",
                "s390_runtime_instr",
            ]],
        )
    } else if cfg!(target_arch = "riscv64") {
        (vec!["SCMP_ARCH_RISCV64"], vec![&["riscv_flush_icache"]])
    } else {
        // the filter's native architecture only
        (Vec::new(), Vec::new())
    }
}

/// The resolved profile.
pub(crate) fn profile() -> Seccomp {
    let (architectures, arch_specific) = native();
    let mut syscalls = vec![
        allow(ALLOW),
        allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
        allow_if("socket", 0, AF_VSOCK, "SCMP_CMP_NE"),
    ];
    for p in PERSONAS {
        syscalls.push(allow_if("personality", 0, p, "SCMP_CMP_EQ"));
    }
    syscalls.extend(arch_specific.into_iter().map(allow));
    // s390 passes clone's flags second
    let flags_arg = if cfg!(target_arch = "s390x") { 1 } else { 0 };
    syscalls.push(allow_if(
        "clone",
        flags_arg,
        CLONE_NAMESPACE_FLAGS,
        "SCMP_CMP_MASKED_EQ",
    ));
    syscalls.push(Syscall {
        names: vec!["clone3"],
        action: "SCMP_ACT_ERRNO",
        errno_ret: Some(ENOSYS),
        args: Vec::new(),
    });
    Seccomp {
        default_action: "SCMP_ACT_ERRNO",
        default_errno_ret: 1,
        architectures,
        syscalls,
    }
}
