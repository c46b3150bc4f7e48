//! Architectures and their syscall number tables.
//!
//! The tables come from the `syscall-numbers` crate (MIT, no dependencies, kept in step with
//! the kernel's `syscall.tbl` files). It was chosen over `syscalls` because it has the x32 and
//! MIPS n32 tables that seccomp needs (and `syscalls` has not), and over generating our own
//! tables because the kernel sources are not at hand where berth builds. It has no 31-bit s390
//! table: `SCMP_ARCH_S390` is therefore not supported (see [`lookup`]). Its names are musl's;
//! the kernel names it lacks are added by `kernel_names`.
//!
//! Numbers are the ones the kernel shows to a seccomp filter in `seccomp_data.nr`: with the
//! MIPS ABI bases (4000, 5000, 6000) and the x32 bit (`0x4000_0000`) included.

use std::collections::HashMap;
use std::ffi::c_long;

use syscall_numbers as sn;

/// `__AUDIT_ARCH_64BIT`
const AUDIT_64BIT: u32 = 0x8000_0000;
/// `__AUDIT_ARCH_LE`
const AUDIT_LE: u32 = 0x4000_0000;

/// `__X32_SYSCALL_BIT`
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One syscall number table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    X86,
    X86_64,
    X32,
    Arm,
    Aarch64,
    Mips,
    Mips64,
    MipsN32,
    Ppc,
    Ppc64,
    S390x,
    Riscv64,
    Loongarch64,
}

/// Every table, to tell a name unknown to the filter's architectures from a name unknown to all.
pub(crate) const ALL_TABLES: [Table; 13] = [
    Table::X86,
    Table::X86_64,
    Table::X32,
    Table::Arm,
    Table::Aarch64,
    Table::Mips,
    Table::Mips64,
    Table::MipsN32,
    Table::Ppc,
    Table::Ppc64,
    Table::S390x,
    Table::Riscv64,
    Table::Loongarch64,
];

/// How the x86_64 audit architecture is split between its two ABIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abi {
    /// One ABI per audit architecture.
    Plain,
    /// x86_64: numbers without the x32 bit.
    X86_64,
    /// x32: numbers with the x32 bit, same audit architecture as x86_64.
    X32,
}

/// One seccomp architecture (libseccomp's `SCMP_ARCH_*`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ArchDef {
    /// The runtime-spec (libseccomp) name.
    pub name: &'static str,
    /// `AUDIT_ARCH_*`, compared with `seccomp_data.arch`.
    pub audit: u32,
    pub table: Table,
    pub abi: Abi,
    /// Arguments are compared on their low 32 bits only, as libseccomp does for its 32-bit
    /// architectures (x32 and MIPS n32 included).
    pub word32: bool,
}

impl ArchDef {
    /// Byte offset of the low 32-bit word of argument `index` in `seccomp_data`.
    pub(crate) fn arg_lo(&self, index: u8) -> u32 {
        let base = 16 + 8 * u32::from(index);
        if self.big_endian() { base + 4 } else { base }
    }

    /// Byte offset of the high 32-bit word of argument `index` in `seccomp_data`.
    pub(crate) fn arg_hi(&self, index: u8) -> u32 {
        let base = 16 + 8 * u32::from(index);
        if self.big_endian() { base } else { base + 4 }
    }

    fn big_endian(&self) -> bool {
        self.audit & AUDIT_LE == 0
    }
}

const fn def(name: &'static str, audit: u32, table: Table, abi: Abi, word32: bool) -> ArchDef {
    ArchDef {
        name,
        audit,
        table,
        abi,
        word32,
    }
}

const EM_386: u32 = 3;
const EM_MIPS: u32 = 8;
const EM_PPC: u32 = 20;
const EM_PPC64: u32 = 21;
const EM_S390: u32 = 22;
const EM_ARM: u32 = 40;
const EM_X86_64: u32 = 62;
const EM_AARCH64: u32 = 183;
const EM_RISCV: u32 = 243;
const EM_LOONGARCH: u32 = 258;
/// `__AUDIT_ARCH_CONVENTION_MIPS64_N32`
const MIPS64_N32: u32 = 0x2000_0000;

/// The architectures berth compiles filters for (all of runc's except 31-bit s390).
pub(crate) const ARCHS: [ArchDef; 17] = [
    def(
        "SCMP_ARCH_X86",
        EM_386 | AUDIT_LE,
        Table::X86,
        Abi::Plain,
        true,
    ),
    def(
        "SCMP_ARCH_X86_64",
        EM_X86_64 | AUDIT_64BIT | AUDIT_LE,
        Table::X86_64,
        Abi::X86_64,
        false,
    ),
    def(
        "SCMP_ARCH_X32",
        EM_X86_64 | AUDIT_64BIT | AUDIT_LE,
        Table::X32,
        Abi::X32,
        true,
    ),
    def(
        "SCMP_ARCH_ARM",
        EM_ARM | AUDIT_LE,
        Table::Arm,
        Abi::Plain,
        true,
    ),
    def(
        "SCMP_ARCH_AARCH64",
        EM_AARCH64 | AUDIT_64BIT | AUDIT_LE,
        Table::Aarch64,
        Abi::Plain,
        false,
    ),
    def("SCMP_ARCH_MIPS", EM_MIPS, Table::Mips, Abi::Plain, true),
    def(
        "SCMP_ARCH_MIPSEL",
        EM_MIPS | AUDIT_LE,
        Table::Mips,
        Abi::Plain,
        true,
    ),
    def(
        "SCMP_ARCH_MIPS64",
        EM_MIPS | AUDIT_64BIT,
        Table::Mips64,
        Abi::Plain,
        false,
    ),
    def(
        "SCMP_ARCH_MIPSEL64",
        EM_MIPS | AUDIT_64BIT | AUDIT_LE,
        Table::Mips64,
        Abi::Plain,
        false,
    ),
    def(
        "SCMP_ARCH_MIPS64N32",
        EM_MIPS | AUDIT_64BIT | MIPS64_N32,
        Table::MipsN32,
        Abi::Plain,
        true,
    ),
    def(
        "SCMP_ARCH_MIPSEL64N32",
        EM_MIPS | AUDIT_64BIT | AUDIT_LE | MIPS64_N32,
        Table::MipsN32,
        Abi::Plain,
        true,
    ),
    def("SCMP_ARCH_PPC", EM_PPC, Table::Ppc, Abi::Plain, true),
    def(
        "SCMP_ARCH_PPC64",
        EM_PPC64 | AUDIT_64BIT,
        Table::Ppc64,
        Abi::Plain,
        false,
    ),
    def(
        "SCMP_ARCH_PPC64LE",
        EM_PPC64 | AUDIT_64BIT | AUDIT_LE,
        Table::Ppc64,
        Abi::Plain,
        false,
    ),
    def(
        "SCMP_ARCH_S390X",
        EM_S390 | AUDIT_64BIT,
        Table::S390x,
        Abi::Plain,
        false,
    ),
    def(
        "SCMP_ARCH_RISCV64",
        EM_RISCV | AUDIT_64BIT | AUDIT_LE,
        Table::Riscv64,
        Abi::Plain,
        false,
    ),
    def(
        "SCMP_ARCH_LOONGARCH64",
        EM_LOONGARCH | AUDIT_64BIT | AUDIT_LE,
        Table::Loongarch64,
        Abi::Plain,
        false,
    ),
];

/// The architecture this binary runs as, or `None` on one berth has no table for.
pub(crate) fn native() -> Option<&'static ArchDef> {
    let name = if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
        "SCMP_ARCH_X32"
    } else if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "x86") {
        "SCMP_ARCH_X86"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else if cfg!(target_arch = "arm") {
        "SCMP_ARCH_ARM"
    } else if cfg!(target_arch = "riscv64") {
        "SCMP_ARCH_RISCV64"
    } else if cfg!(target_arch = "loongarch64") {
        "SCMP_ARCH_LOONGARCH64"
    } else if cfg!(target_arch = "s390x") {
        "SCMP_ARCH_S390X"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "SCMP_ARCH_PPC64LE"
    } else if cfg!(target_arch = "powerpc64") {
        "SCMP_ARCH_PPC64"
    } else if cfg!(target_arch = "powerpc") {
        "SCMP_ARCH_PPC"
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        "SCMP_ARCH_MIPSEL64"
    } else if cfg!(target_arch = "mips64") {
        "SCMP_ARCH_MIPS64"
    } else if cfg!(all(target_arch = "mips", target_endian = "little")) {
        "SCMP_ARCH_MIPSEL"
    } else if cfg!(target_arch = "mips") {
        "SCMP_ARCH_MIPS"
    } else {
        return None;
    };
    lookup(name)
}

/// The architecture named `name` (`SCMP_ARCH_*`); `SCMP_ARCH_NATIVE` is the native one.
/// `None` for names berth has no table for: `SCMP_ARCH_S390` (31-bit), PA-RISC, m68k, SuperH.
pub(crate) fn lookup(name: &str) -> Option<&'static ArchDef> {
    if name == "SCMP_ARCH_NATIVE" {
        return native();
    }
    ARCHS.iter().find(|a| a.name == name)
}

/// The names of every supported architecture (for `features`), sorted.
pub(crate) fn supported_names() -> Vec<&'static str> {
    let mut names: Vec<_> = ARCHS.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names
}

/// Kernel names missing from `syscall-numbers`, whose names are musl's: on 32-bit ABIs musl
/// renames the time32 syscalls (`clock_gettime` → `clock_gettime32`, …) and ARM's
/// `arm_fadvise64_64`/`arm_sync_file_range`, and it omits a few (ARM private syscalls at
/// `__ARM_NR_BASE` 0x0f0000, RISC-V's, some of LoongArch's, the newest). Profiles (Docker's
/// included) use the kernel's names, as libseccomp does; this list was made by diffing every
/// table against libseccomp's syscall table (no number differed, only names were missing).
#[rustfmt::skip]
fn kernel_names(table: Table) -> &'static [(&'static str, u32)] {
    match table {
        Table::X86 => &[("clock_getres", 266), ("clock_gettime", 265), ("clock_nanosleep", 267), ("clock_settime", 264), ("getrlimit", 76), ("gettimeofday", 78), ("mq_getsetattr", 282), ("mq_notify", 281), ("mq_timedreceive", 280), ("mq_timedsend", 279), ("mq_unlink", 278), ("rseq_slice_yield", 471), ("settimeofday", 79), ("timer_delete", 263), ("timerfd_gettime", 326), ("timerfd_settime", 325), ("timer_getoverrun", 262), ("timer_gettime", 261), ("timer_settime", 260)],
        Table::X86_64 => &[("rseq_slice_yield", 471)],
        Table::X32 => &[("rseq_slice_yield", 0x400001d7)],
        Table::Arm => &[("arm_fadvise64_64", 270), ("arm_sync_file_range", 341), ("breakpoint", 0xf0001), ("cacheflush", 0xf0002), ("clock_getres", 264), ("clock_gettime", 263), ("clock_nanosleep", 265), ("clock_settime", 262), ("gettimeofday", 78), ("get_tls", 0xf0006), ("rseq_slice_yield", 471), ("settimeofday", 79), ("set_tls", 0xf0005), ("timerfd_gettime", 354), ("timerfd_settime", 353), ("timer_gettime", 259), ("timer_settime", 258), ("usr26", 0xf0003), ("usr32", 0xf0004)],
        Table::Aarch64 => &[("rseq_slice_yield", 471)],
        Table::Mips => &[("clock_getres", 4264), ("clock_gettime", 4263), ("clock_nanosleep", 4265), ("clock_settime", 4262), ("gettimeofday", 4078), ("rseq_slice_yield", 4471), ("settimeofday", 4079), ("timerfd_gettime", 4322), ("timerfd_settime", 4323), ("timer_gettime", 4259), ("timer_settime", 4258)],
        Table::Mips64 => &[("rseq_slice_yield", 5471)],
        Table::MipsN32 => &[("clock_getres", 6227), ("clock_gettime", 6226), ("clock_nanosleep", 6228), ("clock_settime", 6225), ("gettimeofday", 6094), ("rseq_slice_yield", 6471), ("settimeofday", 6159), ("timerfd_gettime", 6285), ("timerfd_settime", 6286), ("timer_gettime", 6222), ("timer_settime", 6221)],
        Table::Ppc => &[("clock_getres", 247), ("clock_gettime", 246), ("clock_nanosleep", 248), ("clock_settime", 245), ("gettimeofday", 78), ("rseq_slice_yield", 471), ("settimeofday", 79), ("timerfd_gettime", 312), ("timerfd_settime", 311), ("timer_gettime", 242), ("timer_settime", 241)],
        Table::Ppc64 => &[("rseq_slice_yield", 471)],
        Table::S390x => &[("rseq_slice_yield", 471)],
        Table::Riscv64 => &[("riscv_flush_icache", 259), ("riscv_hwprobe", 258), ("rseq_slice_yield", 471)],
        Table::Loongarch64 => &[("fadvise64", 223), ("fcntl", 25), ("fstat", 80), ("fstatfs", 44), ("ftruncate", 46), ("lseek", 62), ("mmap", 222), ("newfstatat", 79), ("rseq_slice_yield", 471), ("sendfile", 71), ("statfs", 43), ("truncate", 45)],
    }
}

type NameFn = fn(c_long) -> Option<&'static str>;
type ValidFn = fn(c_long) -> bool;

fn table_fns(table: Table) -> (c_long, NameFn, ValidFn) {
    match table {
        Table::X86 => (0, sn::x86::sys_call_name, sn::x86::is_valid_sys_call_number),
        Table::X86_64 => (
            0,
            sn::x86_64::sys_call_name,
            sn::x86_64::is_valid_sys_call_number,
        ),
        Table::X32 => (
            0x4000_0000,
            sn::x32::sys_call_name,
            sn::x32::is_valid_sys_call_number,
        ),
        Table::Arm => (0, sn::arm::sys_call_name, sn::arm::is_valid_sys_call_number),
        Table::Aarch64 => (
            0,
            sn::aarch64::sys_call_name,
            sn::aarch64::is_valid_sys_call_number,
        ),
        Table::Mips => (
            4000,
            sn::mips::sys_call_name,
            sn::mips::is_valid_sys_call_number,
        ),
        Table::Mips64 => (
            5000,
            sn::mips64::sys_call_name,
            sn::mips64::is_valid_sys_call_number,
        ),
        Table::MipsN32 => (
            6000,
            sn::mipsn32::sys_call_name,
            sn::mipsn32::is_valid_sys_call_number,
        ),
        Table::Ppc => (
            0,
            sn::powerpc::sys_call_name,
            sn::powerpc::is_valid_sys_call_number,
        ),
        Table::Ppc64 => (
            0,
            sn::powerpc64::sys_call_name,
            sn::powerpc64::is_valid_sys_call_number,
        ),
        // The s390x table starts at 1 (0 is the unused setup(2)).
        Table::S390x => (
            1,
            sn::s390x::sys_call_name,
            sn::s390x::is_valid_sys_call_number,
        ),
        Table::Riscv64 => (
            0,
            sn::riscv64::sys_call_name,
            sn::riscv64::is_valid_sys_call_number,
        ),
        Table::Loongarch64 => (
            0,
            sn::loongarch64::sys_call_name,
            sn::loongarch64::is_valid_sys_call_number,
        ),
    }
}

/// A name → number map of one table.
#[derive(Debug)]
pub(crate) struct Names(HashMap<&'static str, u32>);

impl Names {
    pub(super) fn build(table: Table) -> Names {
        let (base, name_of, valid) = table_fns(table);
        let mut map = HashMap::with_capacity(512);
        let mut nr = base;
        // The tables are dense from their base; the bound only guards against a broken table.
        while valid(nr) && nr < base + 4096 {
            if let Some(name) = name_of(nr)
                && let Ok(n) = u32::try_from(nr)
            {
                map.entry(name).or_insert(n);
            }
            nr += 1;
        }
        for &(name, n) in kernel_names(table) {
            map.entry(name).or_insert(n);
        }
        Names(map)
    }

    pub(super) fn get(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }

    /// The largest number in the table (for tests).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}

/// Whether `name` is a syscall of any table (a name unknown to all is reported, as runc logs it).
pub(crate) fn known_anywhere(name: &str) -> bool {
    if socketcall_number(name).is_some() || ipc_number(name).is_some() {
        return true;
    }
    ALL_TABLES.iter().any(|&table| {
        if kernel_names(table).iter().any(|(n, _)| *n == name) {
            return true;
        }
        let (base, name_of, valid) = table_fns(table);
        let mut nr = base;
        while valid(nr) && nr < base + 4096 {
            if name_of(nr) == Some(name) {
                return true;
            }
            nr += 1;
        }
        false
    })
}

/// The `socketcall(2)` sub-call number of a socket syscall (`SYS_SOCKET` …, linux/net.h).
pub(crate) fn socketcall_number(name: &str) -> Option<u32> {
    const CALLS: [&str; 20] = [
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
        "recvmmsg",
        "sendmmsg",
    ];
    CALLS
        .iter()
        .position(|c| *c == name)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// The `ipc(2)` sub-call number of a SysV IPC syscall (`SEMOP` …, linux/ipc.h).
pub(crate) fn ipc_number(name: &str) -> Option<u32> {
    Some(match name {
        "semop" => 1,
        "semget" => 2,
        "semctl" => 3,
        "semtimedop" => 4,
        "msgsnd" => 11,
        "msgrcv" => 12,
        "msgget" => 13,
        "msgctl" => 14,
        "shmat" => 21,
        "shmdt" => 22,
        "shmget" => 23,
        "shmctl" => 24,
        _ => return None,
    })
}
