//! End-to-end tests: the built `berth` binary against real peers and hostile clients.
//!
//! Every server runs as a real process owned by a `berth_test_support::Registry` guard;
//! tests needing a tool declare it with `requires_tool!` (skipped on a laptop, a failure
//! under `BERTH_TEST_REQUIRE_TOOLS=1`). One module per resource or concern.
//!
//! The tests run the binary at `target/<profile>/berth`: build it first
//! (`cargo build -p berth-cli`, or `scripts/test`, which builds the workspace).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests fail by panicking, helpers included, and report what they measured on stderr"
)]

mod admission;
mod admission_image;
mod archive;
mod auth;
mod cli;
mod client;
mod common;
mod containers;
mod crash;
mod cri;
mod engines;
mod gc;
mod kube;
mod manifests;
mod names;
mod neighbours;
mod network;
mod registry_s3;
mod registry_s3_gc;
mod rootless_run;
mod run_more;
mod runtime;
mod s3;
mod s3_driver;
mod sbom;
mod server;
mod shutdown;
mod skopeo;
mod trust;
mod trust_attest;
mod trust_gate;
mod trust_keys;
mod trust_policy;
mod trust_revocation;
mod trust_tsa;
mod uploads;
mod watch;
