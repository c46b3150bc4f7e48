//! Integration tests of berth-admission against a real berth registry on 127.0.0.1: images
//! pushed and signed with a test PKI, reviews built as the API server sends them. (The
//! API-server-faithful end-to-end tests, over TLS with the generated `caBundle`, are in
//! tests/e2e.)

#![allow(
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: failing loudly is the point"
)]

mod kube;
mod pull_secrets;
mod reviews;
mod serve;
mod support;
