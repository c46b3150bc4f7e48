//! Integration tests of berth-container: one test binary, one module per area.

mod cgroups;
mod seccomp;
