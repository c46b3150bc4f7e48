//! Integration tests of the registry client against real registries on 127.0.0.1: the
//! built `berth registry serve` (anonymous, htpasswd + bearer tokens, TLS with a test CA),
//! Debian's `docker-registry` (CNCF distribution 2.8: no referrers API, Basic auth), and a
//! tiny scripted HTTP server for the faults a real registry does not produce on demand.
//!
//! The berth binary must be built first: `cargo build -p berth-cli`.
#![allow(
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: failing loudly is the point, helpers included"
)]

mod berth;
mod common;
mod docker_registry;
mod fake_server;
mod faults;
