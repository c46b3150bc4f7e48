//! berth-image integration tests (root: real overlay mounts in temporary directories).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests fail loudly"
)]

mod snapshot;
