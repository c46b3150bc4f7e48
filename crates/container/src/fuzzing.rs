//! The fuzz targets' bodies (`fuzz/`, a workspace of its own), behind the `fuzzing` feature
//! so that they can reach the pure parsing and planning code that is otherwise private.
//! Each takes arbitrary bytes and panics only on a defect: that is what they check.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a fuzz target reports a defect by panicking"
)]

use std::path::Path;

use berth_runtime_spec::LinuxSeccomp;

use crate::namespaces::Plan;
use crate::rootfs::options;
use crate::seccomp::bpf;
use crate::{caps, seccomp, spec};

/// `spec::parse_config` on arbitrary bytes as `config.json`: never panics. A config it
/// accepts goes through the pure planning `create` does with it — namespaces to create or
/// join, capability sets, every mount's options, the seccomp profile — without panics, and
/// parsing it again (from its own serialisation) is accepted the same.
pub fn config(data: &[u8]) {
    let path = Path::new("/fuzz/config.json");
    let Ok(config) = spec::parse_config(data, path) else {
        return;
    };
    let types = spec::namespace_types(&config);
    if let Some(linux) = &config.linux {
        let plan = Plan::of(linux);
        for t in &types {
            // each type is created or joined (validation refused duplicates)
            let joined = plan.join.iter().filter(|(j, _)| j == t).count();
            assert_eq!(usize::from(plan.creates(*t)) + joined, 1, "{t:?}");
        }
        if let Some(profile) = &linux.seccomp {
            let _ = seccomp::compile(profile);
        }
    }
    if let Some(c) = config
        .process
        .as_ref()
        .and_then(|p| p.capabilities.as_ref())
    {
        for set in [
            &c.bounding,
            &c.effective,
            &c.permitted,
            &c.inheritable,
            &c.ambient,
        ] {
            let _ = caps::set_of(set.as_ref());
        }
    }
    for m in config.mounts.as_deref().unwrap_or_default() {
        let _ = options::parse(m.options.as_deref().unwrap_or_default());
    }
    let again = serde_json::to_vec(&config).unwrap();
    assert!(
        spec::parse_config(&again, path).is_ok(),
        "re-parsing an accepted config failed"
    );
}

/// `AUDIT_ARCH_*` of the supported architectures, and one unknown.
const ARCHS: [u32; 17] = [
    0xc000_003e,
    0x4000_0003,
    0x4000_0028,
    0xc000_00b7,
    0x0000_0008,
    0x4000_0008,
    0x8000_0008,
    0xc000_0008,
    0xa000_0008,
    0xe000_0008,
    0x0000_0014,
    0x8000_0015,
    0xc000_0015,
    0x8000_0016,
    0xc000_00f3,
    0xc000_0102,
    0x1234_5678,
];
const NRS: [u32; 10] = [
    0,
    1,
    59,
    102,
    117,
    4102,
    0x4000_0000,
    0x4000_0027,
    0x0f_0005,
    u32::MAX,
];
const ARGS: [[u64; 6]; 3] = [
    [0; 6],
    [u64::MAX; 6],
    [0xffff_ffff, 1 << 32, 40, 2, 8, 0x7e02_0000],
];

/// `seccomp::compile` on arbitrary `linux.seccomp` JSON: never panics; a profile it accepts
/// becomes a program the kernel would accept (verified, at most 4096 instructions) that
/// returns a real action for syscalls of every architecture, and compiling is deterministic.
pub fn seccomp(data: &[u8]) {
    let Ok(config) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    let Ok(filter) = seccomp::compile(&config) else {
        return;
    };
    let program = filter.instructions();
    bpf::verify(program).unwrap();
    assert!(filter.len() <= bpf::MAX_INSNS);
    for arch in ARCHS {
        let big_endian = arch & 0x4000_0000 == 0;
        for nr in NRS {
            for args in ARGS {
                let action = bpf::run(program, big_endian, nr, arch, args).unwrap();
                assert!(
                    matches!(
                        action & 0xffff_0000,
                        0 | 0x8000_0000
                            | 0x0003_0000
                            | 0x0005_0000
                            | 0x7fc0_0000
                            | 0x7ff0_0000
                            | 0x7ffc_0000
                            | 0x7fff_0000
                    ),
                    "action {action:#x}"
                );
            }
        }
    }
    assert_eq!(seccomp::compile(&config).unwrap(), filter);
}

#[cfg(test)]
mod tests {
    /// The bodies run (and accept) a config with namespaces, capabilities, mounts and a
    /// seccomp profile, and refuse garbage without panicking.
    #[test]
    fn the_fuzz_bodies_accept_a_valid_config_and_profile_and_survive_garbage() {
        let profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
        });
        let config = serde_json::json!({
            "ociVersion": "1.2.1",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}},
            "mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "mode=1777"]}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "seccomp": profile}
        });
        let path = std::path::Path::new("/fuzz/config.json");
        let text = config.to_string();
        assert!(crate::spec::parse_config(text.as_bytes(), path).is_ok());
        super::config(text.as_bytes());
        super::seccomp(profile.to_string().as_bytes());
        super::config(b"not json");
        super::seccomp(b"{\"defaultAction\": 3}");
    }
}
