//! Integration tests of berth-container: real containers through the library API, as root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod runtime_core;
