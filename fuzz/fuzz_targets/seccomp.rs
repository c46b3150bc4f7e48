//! `seccomp::compile` on arbitrary `linux.seccomp` JSON: never panics; a profile it accepts
//! becomes a program the kernel would accept (verified, at most 4096 instructions) that
//! returns a real action for syscalls of every architecture, and compiling is deterministic.
//! The body lives in berth-container (`fuzzing::seccomp`, feature `fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_container::fuzzing::seccomp(data));
