//! Runtime detection with eBPF (issue 22): what containers do — process execs, opens for
//! write, outbound connects — attributed to containers by cgroup, checked against a
//! behaviour profile derived from the image itself (the executables its layers hold, its
//! entrypoint and cmd, its declared ports), so that drift (an exec of a file the image did not
//! ship, or modified after start) is found with no rule-writing, and can be blocked.
//!
//! - [`event`]: what the kernel side reports, decoded (the contract between the probes and
//!   everything above them).

pub mod containers;
pub mod event;
pub mod profile;
