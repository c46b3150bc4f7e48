//! berth-watch's integration tests: one test binary, one module per part. They run as root
//! (the eBPF probes need it) and fail, never skip, without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking, helpers included"
)]

mod probe;
