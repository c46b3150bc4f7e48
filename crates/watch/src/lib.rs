//! Runtime detection with eBPF (issue 22): what containers do — process execs, opens for
//! write, outbound connects — attributed to containers by cgroup, checked against a
//! behaviour profile derived from the image itself (the executables its layers hold, its
//! entrypoint and cmd, its declared ports), so that drift (an exec of a file the image did not
//! ship, or modified after start) is found with no rule-writing, and can be blocked.
//!
//! - [`event`]: what the kernel side reports, decoded (the contract between the probes and
//!   everything above them).
//! - [`probe`]: the eBPF programs (C, CO-RE, compiled by `scripts/build-bpf` and embedded) and
//!   their loader: exec, open-for-write and connect events of the watched cgroups through one
//!   ring buffer, drops counted, connects enforced per cgroup.

pub mod event;
pub mod probe;
