//! `spec::parse_config` on arbitrary bytes as `config.json`: never panics. A config it
//! accepts goes through the pure planning `create` does with it — namespaces to create or
//! join, capability sets, every mount's options, the seccomp profile — without panics, and
//! parsing it again (from its own serialisation) is accepted the same. The body lives in
//! berth-container (`fuzzing::config`, feature `fuzzing`), where that code is reachable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_container::fuzzing::config(data));
