//! Integration tests of berth-container: one test binary, one module per area; real
//! containers, cgroups and seccomp filters, as root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod cgroups;
mod sealed;
