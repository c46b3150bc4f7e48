//! berth-container: the OCI runtime as a library.
//!
//! Owns everything between a bundle (`config.json` + root filesystem) and a running,
//! isolated process: namespaces, cgroups (v1 and v2 behind one trait), seccomp,
//! capabilities, mounts and `pivot_root`, the terminal, hooks and the on-disk state.
//! It does not own images, registries or networking (those are the engine's).
//!
//! Design decision: synchronous and small, and no re-exec. The runtime forks its
//! container processes ([`init`]) so they share the already-parsed config; they talk to
//! the runtime over a socketpair carrying JSON messages, and their errors cross it as
//! structured values. The binary is protected from the container (CVE-2019-5736) by
//! running from a sealed memfd copy ([`sealed`]). Kernel-facing code is reached through
//! narrow seams so it can be unit-tested without root, and is tested for real as root.

pub mod caps;
pub mod cgroups;
mod container;
pub mod default_seccomp;
pub mod default_spec;
pub mod features;
pub mod hooks;
pub mod hostmounts;
pub mod id;
mod init;
pub mod ipc;
pub mod mountinfo;
pub mod namespaces;
pub mod paths;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod sealed;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
mod sys;
pub mod threads;
pub mod tty;

pub use container::{
    Container, ContainerError, CreateOptions, ErrorKind, ExecOptions, ExecProcess,
    ForegroundOptions, catch_signals, host_console, list, remove_leftover, remove_unreadable,
    wait_foreground,
};
pub use state::{State, StateError, Status};
pub use threads::{SingleThreaded, ThreadsError};

/// The runtime-spec version this runtime implements.
pub const SPEC_VERSION: &str = "1.2.1";
