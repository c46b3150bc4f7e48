//! berth-container: the OCI runtime as a library, for `berth-runtime`.
//!
//! Owns everything between a bundle (`config.json` + root filesystem) and a running,
//! isolated process: namespaces, seccomp, capabilities, mounts and `pivot_root`, the
//! terminal, hooks and the on-disk state; cgroups through `berth-cgroups`. It does not own
//! images, registries or networking (those are the engine's, which runs the `berth-runtime`
//! binary and never links this library).
//!
//! Design decision: synchronous and small, and no re-exec. The runtime forks its
//! container processes (`init.rs`) so they share the already-parsed config; they talk to
//! the runtime over a socketpair carrying JSON messages, and their errors cross it as
//! structured values. Forking and then running Rust in the child is sound only in a
//! single-threaded process: every call that forks takes a [`SingleThreaded`] proof, checked
//! at run time. The binary is protected from the container (CVE-2019-5736) by running from
//! a sealed copy ([`sealed`]). Kernel-facing code is reached through narrow seams so it can
//! be unit-tested without root, and is tested for real as root.

#![warn(unreachable_pub)]

// The public surface is what `berth-runtime` needs: the `Container` and its options, the
// fork-safety proof, the errors, and the few helpers below. Everything else is private.
pub mod caps;
mod container;
pub mod features;
/// The fuzz targets' bodies (feature `fuzzing`, for `fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod hooks;
mod hostmounts;
mod id;
mod init;
mod ipc;
mod namespaces;
pub mod paths;
mod process;
mod rootfs;
pub mod rootless;
#[cfg(test)]
mod runtime_spec_tests;
pub mod sealed;
mod seccomp;
pub mod signal;
mod spec;
mod state;
mod sys;
mod threads;
mod tty;

// cgroups are their own crate; the runtime's code reaches them as `crate::cgroups`
use berth_cgroups as cgroups;
use berth_cgroups::mountinfo;

pub use container::{
    Container, ContainerError, CreateOptions, ErrorKind, ExecOptions, ExecProcess,
    ForegroundOptions, ListEntry, catch_signals, host_console, list, remove_leftover,
    remove_unreadable, wait_foreground,
};
pub use hooks::HookError;
pub use hostmounts::HostMountError;
pub use ipc::IpcError;
pub use seccomp::SeccompError;
pub use spec::SpecError;
pub use state::{State, StateError, Status};
pub use threads::{SingleThreaded, ThreadsError};

/// The runtime-spec version this runtime implements.
pub const SPEC_VERSION: &str = "1.2.1";
