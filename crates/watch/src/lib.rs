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
//! - [`profile`]: the expected behaviour of an image: every executable its layers ship (by
//!   path and by SHA-256 of its content), its entrypoint, cmd, ports, user and working
//!   directory; from its layers, or from a container's overlay lower directories.
//! - [`containers`]: attribution, cgroup id → container, from the state directories of
//!   berth, berth-runtime, runc (also under containerd) and crun, and `/proc`.
//! - [`detect`]: the decision on each event (expected, drift, alert) under a `[watch]`
//!   policy, and the action in enforce mode.
//! - [`output`]: JSON lines (`berth.watch/v1`), Falco-compatible alerts, Prometheus counters.
//! - [`daemon`]: the loop that joins them, what `berth watch` runs: containers discovered and
//!   followed, their profiles, events decided and written, drift killed in enforce mode.
//!
//! The one design decision: drift is decided by **content**, not by path. An exec of a file
//! from the image's lower layers is expected; any other executed file is hashed and looked
//! up among the image's executables' hashes, so a copy of an image binary under another name
//! is not drift, and a binary written in the container (or modified after start) is.

pub mod containers;
pub mod daemon;
pub mod detect;
pub mod event;
pub mod output;
pub mod probe;
pub mod profile;
