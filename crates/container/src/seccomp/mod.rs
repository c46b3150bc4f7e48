//! seccomp: OCI `linux.seccomp` compiled to a classic BPF filter and loaded (being written).
