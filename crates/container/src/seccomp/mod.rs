//! seccomp: the OCI `linux.seccomp` profile compiled to a classic BPF filter, in Rust, and
//! loaded; the `SCMP_ACT_NOTIFY` listener handed to the seccomp agent.
//!
//! No libseccomp: [`compile`] turns the profile into a program itself, with runc's and
//! libseccomp's semantics (listed in `compile.rs`), and [`Filter::load`] installs it with
//! `seccomp(2)`. The program dispatches on the architecture, then searches the syscall number
//! in a binary tree of number intervals (a Docker-sized profile is a few hundred instructions,
//! any syscall decided in about ten), then checks arguments as 64-bit values on 32-bit words.
//!
//! Design decision: the filter is data ([`Filter::instructions`]) that can be run without the
//! kernel ([`Filter::evaluate`]), so that every decision is unit-tested on synthetic
//! `seccomp_data`, and loaded for real only in the tests that fork.

#[cfg(test)]
mod agent;
mod arch;
pub(crate) mod bpf;
mod compile;
mod load;
mod notify;

use std::path::PathBuf;

use berth_runtime_spec::LinuxSeccomp;

pub(crate) use bpf::Instruction;
pub(crate) use load::features;
pub(crate) use notify::send_listener;
#[cfg(test)]
use {
    agent::{NotifyResponse, notification_id_valid, receive_notification, respond},
    load::action_available,
};

/// What failed while compiling, loading or handing over a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp architecture {arch} is not supported")]
    UnsupportedArch { arch: String },
    #[error("seccomp is not supported on this machine's architecture")]
    NativeArchUnsupported,
    #[error("seccomp flag {flag} is not supported")]
    UnknownFlag { flag: String },
    #[error("errnoRet {errno} is not supported with seccomp action {action}")]
    ErrnoNotSupported { action: String, errno: u32 },
    #[error("errnoRet {errno} of seccomp action {action} does not fit in 16 bits")]
    ErrnoOutOfRange { action: String, errno: u32 },
    #[error("SCMP_ACT_NOTIFY cannot be the default seccomp action")]
    NotifyDefaultAction,
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyOnWrite,
    #[error("seccomp profile uses SCMP_ACT_NOTIFY but sets no listenerPath")]
    NotifyWithoutListenerPath,
    #[error("seccomp listenerMetadata is set without a listenerPath")]
    MetadataWithoutListenerPath,
    #[error("empty syscall name in seccomp profile")]
    EmptySyscallName,
    #[error(
        "seccomp rule for syscall {syscall} compares argument {index}; syscalls have 6 (0 to 5)"
    )]
    ArgIndex { syscall: String, index: usize },
    #[error(
        "seccomp profile compiles to {len} BPF instructions, more than the kernel's limit of {max}"
    )]
    ProgramTooLarge { len: usize, max: usize },
    #[error("seccomp compiler produced an invalid program ({reason}); this is a bug in berth")]
    Internal { reason: String },
    #[error("failed to load seccomp filter of {len} instructions with flags {flags:#x}")]
    Load {
        len: usize,
        flags: u32,
        source: std::io::Error,
    },
    #[error("failed to connect to seccomp agent socket {path}")]
    ListenerConnect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to send seccomp listener to {path}")]
    ListenerSend {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to {what} on seccomp listener")]
    Notify {
        what: &'static str,
        source: std::io::Error,
    },
}

/// A compiled seccomp filter, ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Filter {
    program: Vec<Instruction>,
    flags: u32,
    optional_flags: u32,
    uses_notify: bool,
    unknown: Vec<String>,
}

/// Compile a runtime-spec `linux.seccomp` profile.
///
/// Fails on what the runtime-spec or runc reject (an `errnoRet` on an action without one,
/// NOTIFY as default or on `write`, NOTIFY without `listenerPath`, an argument index above
/// 5, an architecture without a syscall table here) and on a program over 4096 instructions.
pub(crate) fn compile(config: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let plan = compile::plan(config)?;
    let program = bpf::generate(&plan)?;
    Ok(Filter {
        program,
        flags: plan.flags,
        optional_flags: plan.optional_flags,
        uses_notify: plan.uses_notify,
        unknown: plan.unknown,
    })
}

impl Filter {
    /// Number of BPF instructions.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether a rule uses `SCMP_ACT_NOTIFY` (then [`Filter::load`] returns a listener).
    #[cfg(test)]
    pub(crate) fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// The program.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn instructions(&self) -> &[Instruction] {
        &self.program
    }

    /// `SECCOMP_FILTER_FLAG_*` bits passed to `seccomp(2)` (`NEW_LISTENER` included with NOTIFY).
    #[cfg(test)]
    pub(crate) fn flags(&self) -> u32 {
        self.flags
    }

    /// Flags berth adds by default and drops if the kernel refuses them: `SPEC_ALLOW` when the
    /// profile has no `flags` at all (runc does the same).
    #[cfg(test)]
    pub(crate) fn optional_flags(&self) -> u32 {
        self.optional_flags
    }

    /// Syscall names of the profile unknown on every architecture: skipped, as runc does.
    #[cfg(test)]
    pub(crate) fn unknown_syscalls(&self) -> &[String] {
        &self.unknown
    }

    /// Run the filter without the kernel: the `SECCOMP_RET_*` value for a syscall `nr` of
    /// audit architecture `arch` (`AUDIT_ARCH_*`) with `args`. `seccomp_data` is laid out in
    /// the byte order of `arch` (big-endian unless its `__AUDIT_ARCH_LE` bit is set), as the
    /// kernel of that architecture lays it out.
    #[cfg(test)]
    pub(crate) fn evaluate(&self, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let big_endian = arch & 0x4000_0000 == 0;
        // The program was verified at compile time; an error here would be a berth bug, and
        // the kernel would kill the thread on it.
        bpf::run(&self.program, big_endian, nr, arch, args).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
