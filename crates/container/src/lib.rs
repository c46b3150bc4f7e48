//! berth-container: the OCI runtime as a library.
//!
//! Owns everything between a bundle (`config.json` + root filesystem) and a running,
//! isolated process: namespaces, cgroups (v1 and v2 behind one trait), seccomp,
//! capabilities, mounts and `pivot_root`, the terminal, hooks and the on-disk state.
//! It does not own images, registries or networking (those are the engine's).
//!
//! Design decision: synchronous and small. No tokio, no TLS; it depends only on
//! `berth-oci` and `berth-fsutil`, so that the `berth-runtime` binary starts fast.
//! Kernel-facing code is reached through narrow seams so it can be unit-tested
//! without root, and is tested for real as root.

pub mod cgroups;
pub mod seccomp;
