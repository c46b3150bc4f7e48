//! berth-watch's integration tests: one test binary, one module per part (the probes, the
//! image profile, attribution of cgroups to containers, the decision on events, the output
//! formats), and `pipeline`, all of them together on a runc container. They run as root (the
//! eBPF probes, overlay mounts and real runc, crun and berth-runtime containers need it) and
//! fail, never skip, without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "tests fail by panicking, helpers included, and report measurements"
)]

mod containers;
mod daemon;
mod detect;
mod output;
mod pipeline;
mod probe;
mod profile;
mod support;
