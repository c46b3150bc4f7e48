//! Integration tests of berth-cgroups: one test binary; real cgroups (v1, hybrid and v2
//! hierarchies of this host) as root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod cgroups;
