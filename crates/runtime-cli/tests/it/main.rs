//! Integration tests of the `berth-runtime` binary: real containers from a busybox-static
//! rootfs, as root. Every container a test makes is force-deleted by a guard on drop.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod cli;
mod harness;
mod lifecycle;
mod security;
