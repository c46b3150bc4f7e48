//! `seccomp::compile` on arbitrary `linux.seccomp` JSON: never panics; a profile it accepts
//! becomes a program the kernel would accept (verified, at most 4096 instructions) that
//! returns a real action for syscalls of every architecture, and compiling is deterministic.
#![no_main]

use berth_container::seccomp::{self, bpf};
use berth_runtime_spec::LinuxSeccomp;
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
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
});
