//! berth-cni against the real plugins of Debian's `containernetworking-plugins`
//! (/usr/lib/cni), each test in two network namespaces of its own: one stands in for the
//! host (the plugins run there, so the bridge, the host end of the veth, the iptables rules
//! and the qdiscs live and die with it) and one for the container. Nothing touches the
//! machine's own network; every namespace is removed on drop.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking, helpers included"
)]

mod args;
mod attach;
mod config;
mod errors;
mod readd;
mod support;
mod version;
