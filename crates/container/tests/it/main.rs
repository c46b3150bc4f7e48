//! Integration tests of berth-container through its public API, as root. The calls that
//! fork run in the single-threaded `forking` binary (tests/forking); the real seccomp
//! filters are tested inside the crate (src/seccomp/tests/kernel.rs), cgroups in
//! berth-cgroups.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod sealed;
