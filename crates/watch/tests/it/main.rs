//! berth-watch integration tests, one module per part: the image profile, attribution of
//! cgroups to containers (real runc, crun and berth-runtime containers, as root), the
//! decision on events, and the output formats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "tests fail by panicking, helpers included, and report measurements"
)]

mod containers;
mod detect;
mod output;
mod profile;
mod support;
