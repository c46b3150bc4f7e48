//! The cgroup v2 device filter: an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program built from the
//! emulated device rules (as runc's `devicefilter.go`, after crun's `ebpf.c`), loaded and
//! attached with the bpf(2) system call.
//!
//! The program reads `struct bpf_cgroup_dev_ctx` (access type and device type packed in the
//! first word, then major, minor), tries each exception in turn and returns the exception's
//! verdict on the first match, else the default. Attaching uses `BPF_F_ALLOW_MULTI` as runc
//! does: with exactly one program already attached it is swapped atomically with
//! `BPF_F_REPLACE`; otherwise the new one is attached and every old one detached.

use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::Path;

use crate::devices::{Access, DevType, Emulator, WILDCARD};
use crate::error::CgroupError;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn to_bytes(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            (self.src << 4) | (self.dst & 0x0f)
        } else {
            (self.dst << 4) | (self.src & 0x0f)
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }
}

// Opcodes used (class | op | source).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// include/uapi/linux/bpf.h
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// A device filter program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Program {
    pub insns: Vec<Insn>,
}

fn bpf_access(access: Access) -> i32 {
    let mut bits = 0;
    if access.contains(Access::READ) {
        bits |= BPF_DEVCG_ACC_READ;
    }
    if access.contains(Access::WRITE) {
        bits |= BPF_DEVCG_ACC_WRITE;
    }
    if access.contains(Access::MKNOD) {
        bits |= BPF_DEVCG_ACC_MKNOD;
    }
    bits
}

/// Compile the emulated rules into a program.
pub(crate) fn device_program(emulator: &Emulator) -> Result<Program, CgroupError> {
    // R2 = device type, R3 = requested access, R4 = major, R5 = minor
    let mut insns = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in emulator.exceptions() {
        let typ = match rule.typ {
            DevType::Char => BPF_DEVCG_DEV_CHAR,
            DevType::Block => BPF_DEVCG_DEV_BLOCK,
            DevType::All => {
                return Err(CgroupError::DeviceRule {
                    rule: rule.cgroup_string(),
                    reason: "a wildcard type cannot be an exception".to_owned(),
                });
            }
        };
        let number = |n: i64, what: &str| {
            i32::try_from(n).map_err(|_| CgroupError::DeviceRule {
                rule: rule.cgroup_string(),
                reason: format!("{what} {n} is out of range for the device filter"),
            })
        };
        // Each check jumps past the end of this block when it does not match.
        let mut block: Vec<Insn> = vec![insn(JMP_JNE_K, 2, 0, 0, typ)];
        if rule.access != Access::ALL {
            // if (R3 & access) != R3: the request wants more than this rule covers
            block.push(insn(ALU_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU_AND_K, 1, 0, 0, bpf_access(rule.access)));
            block.push(insn(JMP_JNE_X, 1, 3, 0, 0));
        }
        if rule.major != WILDCARD {
            block.push(insn(JMP_JNE_K, 4, 0, 0, number(rule.major, "major")?));
        }
        if rule.minor != WILDCARD {
            block.push(insn(JMP_JNE_K, 5, 0, 0, number(rule.minor, "minor")?));
        }
        block.push(insn(ALU_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                // the block is a handful of instructions: the offset always fits
                ins.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            }
        }
        insns.extend(block);
    }
    insns.push(insn(ALU_MOV_K, 0, 0, 0, i32::from(emulator.default_allow)));
    insns.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(Program { insns })
}

mod sys {
    //! bpf(2): `union bpf_attr` members as repr(C) structs.

    pub(super) const BPF_PROG_LOAD: libc::c_int = 5;
    pub(super) const BPF_PROG_ATTACH: libc::c_int = 8;
    pub(super) const BPF_PROG_DETACH: libc::c_int = 9;
    pub(super) const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
    pub(super) const BPF_PROG_QUERY: libc::c_int = 16;
    pub(super) const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    pub(super) const BPF_CGROUP_DEVICE: u32 = 6;
    pub(super) const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
    pub(super) const BPF_F_REPLACE: u32 = 1 << 2;

    #[repr(C)]
    #[derive(Default)]
    pub(super) struct ProgLoad {
        pub prog_type: u32,
        pub insn_cnt: u32,
        pub insns: u64,
        pub license: u64,
        pub log_level: u32,
        pub log_size: u32,
        pub log_buf: u64,
        pub kern_version: u32,
        pub prog_flags: u32,
        pub prog_name: [u8; 16],
        pub prog_ifindex: u32,
        pub expected_attach_type: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    pub(super) struct Attach {
        pub target_fd: u32,
        pub attach_bpf_fd: u32,
        pub attach_type: u32,
        pub attach_flags: u32,
        pub replace_bpf_fd: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    pub(super) struct Query {
        pub target_fd: u32,
        pub attach_type: u32,
        pub query_flags: u32,
        pub attach_flags: u32,
        pub prog_ids: u64,
        pub prog_cnt: u32,
        pub pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    pub(super) struct GetFdById {
        pub prog_id: u32,
        pub next_id: u32,
        pub open_flags: u32,
    }

    /// bpf(2) with one `union bpf_attr` member.
    #[expect(unsafe_code, reason = "bpf(2) has no wrapper in libc or rustix")]
    pub(super) fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
        // SAFETY: `attr` is a live, initialised repr(C) mirror of a `union bpf_attr` member of
        // exactly size_of::<T>() bytes; every pointer stored in it (instructions, license, log
        // buffer, id array) refers to memory the caller keeps alive across this call, and the
        // kernel writes at most size_of::<T>() bytes back into it.
        let ret =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<T>()) };
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    /// bpf(2) for a command returning a new file descriptor.
    #[expect(
        unsafe_code,
        reason = "taking ownership of the descriptor bpf(2) returned"
    )]
    pub(super) fn bpf_fd<T>(
        cmd: libc::c_int,
        attr: &mut T,
    ) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd as _;
        let fd = bpf(cmd, attr)?;
        let fd = std::os::fd::RawFd::try_from(fd).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bpf(2) returned no descriptor",
            )
        })?;
        // SAFETY: on success these commands return a new descriptor that nothing else owns.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// The programs attached to the cgroup for `BPF_CGROUP_DEVICE` (those we may open).
fn attached_programs(dir_fd: &OwnedFd, path: &Path) -> Result<Vec<OwnedFd>, CgroupError> {
    let mut size = 64usize;
    for _ in 0..10 {
        let mut ids = vec![0u32; size];
        let mut query = sys::Query {
            target_fd: fd_u32(dir_fd),
            attach_type: sys::BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        match sys::bpf(sys::BPF_PROG_QUERY, &mut query) {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => {
                size = usize::try_from(query.prog_cnt)
                    .unwrap_or(size)
                    .max(size * 2);
                continue;
            }
            Err(source) => {
                return Err(CgroupError::Bpf {
                    op: "query",
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let count = usize::try_from(query.prog_cnt).unwrap_or(0).min(ids.len());
        let mut programs = Vec::with_capacity(count);
        for &id in &ids[..count] {
            let mut attr = sys::GetFdById {
                prog_id: id,
                ..Default::default()
            };
            match sys::bpf_fd(sys::BPF_PROG_GET_FD_BY_ID, &mut attr) {
                Ok(fd) => programs.push(fd),
                // A program an LSM hides from us can only restrict further: leave it (as runc).
                Err(err) if matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {}
                Err(source) => {
                    return Err(CgroupError::Bpf {
                        op: "open attached",
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
        return Ok(programs);
    }
    Err(CgroupError::Bpf {
        op: "query",
        path: path.to_owned(),
        source: io::Error::other("the list of attached programs kept growing"),
    })
}

fn load(program: &Program, path: &Path) -> Result<OwnedFd, CgroupError> {
    let bytes: Vec<u8> = program.insns.iter().flat_map(|i| i.to_bytes()).collect();
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let attr = |log: &mut Vec<u8>| sys::ProgLoad {
        prog_type: sys::BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(program.insns.len()).unwrap_or(u32::MAX),
        insns: bytes.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).unwrap_or(0),
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        ..Default::default()
    };
    let mut no_log = Vec::new();
    let first = sys::bpf_fd(sys::BPF_PROG_LOAD, &mut attr(&mut no_log));
    let err = match first {
        Ok(fd) => return Ok(fd),
        Err(err) => err,
    };
    if err.raw_os_error() == Some(libc::EPERM) {
        // Kernels before 5.11 charge programs to RLIMIT_MEMLOCK (runc raises it too).
        let unlimited = rustix::process::Rlimit {
            current: None,
            maximum: None,
        };
        if rustix::process::setrlimit(rustix::process::Resource::Memlock, unlimited).is_ok()
            && let Ok(fd) = sys::bpf_fd(sys::BPF_PROG_LOAD, &mut attr(&mut no_log))
        {
            return Ok(fd);
        }
    }
    // Load again with the verifier log, to say why.
    let mut log = vec![0u8; 64 * 1024];
    let retry = sys::bpf_fd(sys::BPF_PROG_LOAD, &mut attr(&mut log));
    if let Ok(fd) = retry {
        return Ok(fd);
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).trim().to_owned();
    Err(CgroupError::BpfLoad {
        path: path.to_owned(),
        log: if text.is_empty() {
            "no verifier log".to_owned()
        } else {
            text
        },
        source: err,
    })
}

fn attach(
    dir_fd: &OwnedFd,
    prog: &OwnedFd,
    flags: u32,
    replace: Option<&OwnedFd>,
) -> io::Result<()> {
    let mut attr = sys::Attach {
        target_fd: fd_u32(dir_fd),
        attach_bpf_fd: fd_u32(prog),
        attach_type: sys::BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, fd_u32),
    };
    sys::bpf(sys::BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Load `program` and make it the only device filter of the cgroup directory `path`.
pub(crate) fn attach_device_filter(path: &Path, program: &Program) -> Result<(), CgroupError> {
    use rustix::fs::{Mode, OFlags};
    let dir_fd: OwnedFd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| CgroupError::Bpf {
        op: "open the cgroup for",
        path: path.to_owned(),
        source: errno.into(),
    })?;
    let old = attached_programs(&dir_fd, path)?;
    let new = load(program, path)?;
    if let [only] = old.as_slice() {
        match attach(
            &dir_fd,
            &new,
            sys::BPF_F_ALLOW_MULTI | sys::BPF_F_REPLACE,
            Some(only),
        ) {
            Ok(()) => return Ok(()),
            // No BPF_F_REPLACE (kernel < 5.6) or the old one was not attached with
            // BPF_F_ALLOW_MULTI: attach beside it and detach it.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {}
            Err(source) => {
                return Err(CgroupError::Bpf {
                    op: "attach",
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    attach(&dir_fd, &new, sys::BPF_F_ALLOW_MULTI, None).map_err(|source| CgroupError::Bpf {
        op: "attach",
        path: path.to_owned(),
        source,
    })?;
    for old in &old {
        let mut attr = sys::Attach {
            target_fd: fd_u32(&dir_fd),
            attach_bpf_fd: fd_u32(old),
            attach_type: sys::BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        sys::bpf(sys::BPF_PROG_DETACH, &mut attr).map_err(|source| CgroupError::Bpf {
            op: "detach the old",
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// The number of device programs attached to a cgroup directory (for tests and diagnostics).
pub fn attached_device_programs(path: &Path) -> Result<usize, CgroupError> {
    use rustix::fs::{Mode, OFlags};
    let dir_fd: OwnedFd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| CgroupError::Bpf {
        op: "open the cgroup for",
        path: path.to_owned(),
        source: errno.into(),
    })?;
    Ok(attached_programs(&dir_fd, path)?.len())
}

#[cfg(test)]
pub(crate) mod interpreter {
    //! A tiny interpreter for the instructions [`device_program`] emits, so the generated
    //! logic is tested without loading it into a kernel.
    use super::*;

    /// Run the program for a request; true means allowed.
    pub(crate) fn run(
        program: &Program,
        typ: DevType,
        access: Access,
        major: u32,
        minor: u32,
    ) -> bool {
        let dev = match typ {
            DevType::Block => BPF_DEVCG_DEV_BLOCK,
            DevType::Char => BPF_DEVCG_DEV_CHAR,
            DevType::All => panic!("requests are for a block or char device"),
        };
        let ctx: [u32; 3] = [
            ((bpf_access(access) as u32) << 16) | dev as u32,
            major,
            minor,
        ];
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = program.insns[pc];
            let (d, s) = (usize::from(i.dst), usize::from(i.src));
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1, "loads read the context");
                    regs[d] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]);
                }
                ALU_AND_K => regs[d] = u64::from((regs[d] as u32) & (i.imm as u32)),
                ALU_RSH_K => regs[d] = u64::from((regs[d] as u32) >> i.imm),
                ALU_MOV_K => regs[d] = u64::from(i.imm as u32),
                ALU_MOV_X => regs[d] = u64::from(regs[s] as u32),
                JMP_JNE_K => {
                    if regs[d] != i64::from(i.imm) as u64 {
                        pc += usize::try_from(i.off).unwrap();
                    }
                }
                JMP_JNE_X => {
                    if regs[d] != regs[s] {
                        pc += usize::try_from(i.off).unwrap();
                    }
                }
                JMP_EXIT => return regs[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not exit");
    }
}

#[cfg(test)]
mod tests {
    use super::interpreter::run;
    use super::*;
    use crate::devices::Rule;

    fn rule(typ: DevType, major: i64, minor: i64, access: &str, allow: bool) -> Rule {
        Rule {
            typ,
            major,
            minor,
            access: Access::parse(access).unwrap(),
            allow,
        }
    }

    #[test]
    fn allow_list_program_allows_only_the_exceptions() {
        let em = Emulator::build(&[
            rule(DevType::Char, 1, 3, "rwm", true),
            rule(DevType::Char, 136, WILDCARD, "rw", true),
            rule(DevType::Block, WILDCARD, WILDCARD, "m", true),
        ])
        .unwrap();
        let p = device_program(&em).unwrap();
        let rw = Access::parse("rw").unwrap();
        assert!(run(&p, DevType::Char, rw, 1, 3));
        assert!(!run(&p, DevType::Char, rw, 1, 5));
        assert!(!run(&p, DevType::Block, rw, 1, 3));
        assert!(run(&p, DevType::Char, Access::READ, 136, 42));
        assert!(!run(&p, DevType::Char, Access::MKNOD, 136, 42));
        assert!(run(&p, DevType::Block, Access::MKNOD, 8, 0));
        assert!(!run(&p, DevType::Block, Access::READ, 8, 0));
    }

    #[test]
    fn deny_list_program_denies_only_the_exceptions() {
        let em = Emulator::build(&[
            rule(DevType::All, WILDCARD, WILDCARD, "rwm", true),
            rule(DevType::Block, 8, 0, "w", false),
        ])
        .unwrap();
        let p = device_program(&em).unwrap();
        assert!(run(&p, DevType::Block, Access::READ, 8, 0));
        assert!(!run(&p, DevType::Block, Access::WRITE, 8, 0));
        assert!(run(&p, DevType::Char, Access::WRITE, 8, 0));
    }

    #[test]
    fn deny_all_program_is_two_instructions_after_the_loads() {
        let p = device_program(&Emulator::default()).unwrap();
        assert_eq!(p.insns.len(), 8);
        assert!(!run(&p, DevType::Char, Access::READ, 1, 3));
    }

    #[test]
    fn instruction_encoding_matches_the_kernel_layout() {
        let bytes = insn(LDX_MEM_W, 4, 1, 4, 0).to_bytes();
        assert_eq!(bytes, [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
        let bytes = insn(JMP_JNE_K, 2, 0, 3, 2).to_bytes();
        assert_eq!(bytes, [0x55, 0x02, 3, 0, 2, 0, 0, 0]);
    }
}
