//! Unit tests: compiled programs run in the BPF interpreter on synthetic `seccomp_data`.

use std::collections::HashMap;

use berth_oci::oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

use super::arch::{Names, Table};
use super::bpf::{self, Instruction};
use super::compile::*;
use super::{Filter, SeccompError, compile};

const AUDIT_X86_64: u32 = 0xc000_003e;
const AUDIT_I386: u32 = 0x4000_0003;
const AUDIT_AARCH64: u32 = 0xc000_00b7;
const AUDIT_PPC64: u32 = 0x8000_0015;
const AUDIT_S390X: u32 = 0x8000_0016;
const AUDIT_ARM: u32 = 0x4000_0028;
const X32: u32 = 0x4000_0000;

const ALLOW: u32 = RET_ALLOW;
const EPERM: u32 = RET_ERRNO | 1;
const ENOSYS: u32 = RET_ERRNO | 38;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid LinuxSeccomp")
}

fn build(v: serde_json::Value) -> Filter {
    let f = compile(&profile(v)).expect("profile compiles");
    bpf::verify(f.instructions()).expect("program verifies");
    f
}

fn nr(table: Table, name: &str) -> u32 {
    Names::build(table)
        .get(name)
        .unwrap_or_else(|| panic!("{name} not in {table:?}"))
}

fn x64(name: &str) -> u32 {
    nr(Table::X86_64, name)
}

fn run(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    f.evaluate(arch, nr, args)
}

fn run0(f: &Filter, arch: u32, nr: u32) -> u32 {
    run(f, arch, nr, [0; 6])
}

fn a0(v: u64) -> [u64; 6] {
    [v, 0, 0, 0, 0, 0]
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use super::*;

    #[test]
    fn every_action_returns_its_seccomp_ret_value() {
        let cases: &[(&str, Option<u32>, u32)] = &[
            ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
            ("SCMP_ACT_KILL_THREAD", None, RET_KILL_THREAD),
            ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
            ("SCMP_ACT_TRAP", None, RET_TRAP),
            ("SCMP_ACT_ERRNO", None, RET_ERRNO | 1),
            ("SCMP_ACT_ERRNO", Some(22), RET_ERRNO | 22),
            ("SCMP_ACT_ERRNO", Some(0), RET_ERRNO),
            ("SCMP_ACT_TRACE", None, RET_TRACE | 1),
            ("SCMP_ACT_TRACE", Some(7), RET_TRACE | 7),
            ("SCMP_ACT_LOG", None, RET_LOG),
            ("SCMP_ACT_NOTIFY", None, RET_USER_NOTIF),
        ];
        for (action, errno, want) in cases {
            let mut rule = json!({"names": ["getcwd"], "action": action});
            if let Some(e) = errno {
                rule["errnoRet"] = json!(e);
            }
            let f = build(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/agent.sock",
                "syscalls": [rule],
            }));
            assert_eq!(
                run0(&f, AUDIT_X86_64, x64("getcwd")),
                *want,
                "{action} {errno:?}"
            );
            assert_eq!(run0(&f, AUDIT_X86_64, x64("getpid")), ALLOW, "{action}");
            assert_eq!(f.uses_notify(), *action == "SCMP_ACT_NOTIFY");
            if f.uses_notify() {
                assert_ne!(f.flags() & FLAG_NEW_LISTENER, 0);
            }
        }
        // ALLOW as a rule under a denying default.
        let f = build(json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW"}],
        }));
        assert_eq!(run0(&f, AUDIT_X86_64, x64("getcwd")), ALLOW);
        assert_eq!(run0(&f, AUDIT_X86_64, x64("read")), RET_KILL_PROCESS);
    }

    #[test]
    fn default_action_uses_default_errno_ret() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }));
        assert_eq!(run0(&f, AUDIT_X86_64, x64("read")), ALLOW);
        assert_eq!(run0(&f, AUDIT_X86_64, x64("write")), ENOSYS);
        assert_eq!(run0(&f, AUDIT_X86_64, 100_000), ENOSYS);

        // The rule's own errnoRet, not the default's.
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 13,
            "syscalls": [{"names": ["close"], "action": "SCMP_ACT_ERRNO"}],
        }));
        assert_eq!(run0(&f, AUDIT_X86_64, x64("close")), EPERM);
        assert_eq!(run0(&f, AUDIT_X86_64, x64("read")), RET_ERRNO | 13);
    }

    #[test]
    fn errno_ret_on_an_action_without_errno_is_an_error() {
        for action in [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_KILL",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_LOG",
            "SCMP_ACT_KILL_PROCESS",
        ] {
            let err = compile(&profile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": action, "errnoRet": 5}],
            })))
            .unwrap_err();
            assert!(
                matches!(err, SeccompError::ErrnoNotSupported { errno: 5, .. }),
                "{action}: {err}"
            );
        }
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
        ))
        .unwrap_err();
        assert!(
            matches!(err, SeccompError::ErrnoNotSupported { .. }),
            "{err}"
        );
        let err = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}],
        })))
        .unwrap_err();
        assert!(
            matches!(err, SeccompError::ErrnoOutOfRange { errno: 70000, .. }),
            "{err}"
        );
    }

    #[test]
    fn notify_rules_of_runc_and_the_spec() {
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}),
        ))
        .unwrap_err();
        assert!(matches!(err, SeccompError::NotifyDefaultAction), "{err}");
        let err = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}],
        })))
        .unwrap_err();
        assert!(matches!(err, SeccompError::NotifyOnWrite), "{err}");
        let err = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}],
        })))
        .unwrap_err();
        assert!(
            matches!(err, SeccompError::NotifyWithoutListenerPath),
            "{err}"
        );
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
        ))
        .unwrap_err();
        assert!(
            matches!(err, SeccompError::MetadataWithoutListenerPath),
            "{err}"
        );
        // A listenerPath without NOTIFY is ignored: no listener requested.
        let f = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a"}));
        assert!(!f.uses_notify());
        assert_eq!(f.flags() & FLAG_NEW_LISTENER, 0);
    }

    #[test]
    fn flags_map_to_kernel_bits_and_absent_flags_imply_spec_allow() {
        let f = build(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert_eq!((f.flags(), f.optional_flags()), (0, FLAG_SPEC_ALLOW));
        let f = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}));
        assert_eq!((f.flags(), f.optional_flags()), (0, 0));
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        }));
        assert_eq!(f.flags(), FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW);
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}],
        }));
        // TSYNC with a listener needs TSYNC_ESRCH (the kernel refuses the pair otherwise).
        assert_eq!(f.flags(), FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH);
    }

    #[test]
    fn argument_index_above_five_is_an_error() {
        let err = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}],
        })))
        .unwrap_err();
        assert!(
            matches!(err, SeccompError::ArgIndex { index: 6, .. }),
            "{err}"
        );
        let err = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}],
        })))
        .unwrap_err();
        assert!(matches!(err, SeccompError::EmptySyscallName), "{err}");
    }

    #[test]
    fn several_args_of_one_rule_are_anded() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 5, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GE"},
            ]}],
        }));
        let mmap = x64("mmap");
        assert_eq!(
            run(&f, AUDIT_X86_64, mmap, [1, 0, 0, 0, 0, 0x1_0000_0000]),
            EPERM
        );
        assert_eq!(
            run(&f, AUDIT_X86_64, mmap, [1, 0, 0, 0, 0, u64::MAX]),
            EPERM
        );
        assert_eq!(
            run(&f, AUDIT_X86_64, mmap, [1, 0, 0, 0, 0, 0xffff_ffff]),
            ALLOW
        );
        assert_eq!(
            run(&f, AUDIT_X86_64, mmap, [2, 0, 0, 0, 0, 0x1_0000_0000]),
            ALLOW
        );
    }

    #[test]
    fn a_repeated_arg_index_splits_the_rule_into_ored_rules_as_runc() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 0x20008, "op": "SCMP_CMP_EQ"},
            ]}],
        }));
        let p = x64("personality");
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(8)), EPERM);
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(0x20008)), EPERM);
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(0)), ALLOW);
    }

    #[test]
    fn rules_of_one_syscall_first_match_wins_and_unconditional_dominates() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GE"}]},
            ],
        }));
        let p = x64("personality");
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(1)), RET_ERRNO | 1);
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(2)), RET_ERRNO | 2);
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(3)), RET_ERRNO | 3);
        assert_eq!(run(&f, AUDIT_X86_64, p, a0(0)), ALLOW);

        for order in [true, false] {
            let cond = json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]});
            let uncond =
                json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6});
            let rules = if order {
                json!([cond, uncond])
            } else {
                json!([uncond, cond])
            };
            let f = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
            assert_eq!(run(&f, AUDIT_X86_64, p, a0(1)), RET_ERRNO | 6);
            assert_eq!(run(&f, AUDIT_X86_64, p, a0(0)), RET_ERRNO | 6);
        }
        // The first unconditional rule wins (libseccomp keeps the first).
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7},
                {"names": ["personality"], "action": "SCMP_ACT_KILL"},
            ],
        }));
        assert_eq!(run0(&f, AUDIT_X86_64, p), RET_ERRNO | 7);
    }

    #[test]
    fn a_rule_with_the_default_action_is_dropped_as_runc() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO"},
            ],
        }));
        assert_eq!(run(&f, AUDIT_X86_64, x64("personality"), a0(0)), EPERM);
    }

    /// 64-bit values around the word boundaries.
    const EDGES: [u64; 14] = [
        0,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0xffff_ffff_0000_0000,
        0x8000_0000_0000_0000,
        0xffff_ffff_ffff_fffe,
        u64::MAX,
    ];

    fn op_json(op: Op) -> &'static str {
        match op {
            Op::Eq => "SCMP_CMP_EQ",
            Op::Ne => "SCMP_CMP_NE",
            Op::Lt => "SCMP_CMP_LT",
            Op::Le => "SCMP_CMP_LE",
            Op::Ge => "SCMP_CMP_GE",
            Op::Gt => "SCMP_CMP_GT",
            Op::MaskedEq(_) => "SCMP_CMP_MASKED_EQ",
        }
    }

    fn reference(op: Op, a: u64, v: u64, v2: u64) -> bool {
        match op {
            Op::Eq => a == v,
            Op::Ne => a != v,
            Op::Lt => a < v,
            Op::Le => a <= v,
            Op::Ge => a >= v,
            Op::Gt => a > v,
            Op::MaskedEq(_) => a & v == v2 & v,
        }
    }

    /// Every operator against every edge value, on a 64-bit ABI (full comparison) and on the
    /// 32-bit x86 ABI (low words, as libseccomp).
    #[test]
    fn every_operator_on_64_bit_edge_values() {
        let ops = [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Ge,
            Op::Gt,
            Op::MaskedEq(0),
        ];
        let i386_personality = nr(Table::X86, "personality");
        let mut checked = 0;
        for op in ops {
            for v in EDGES {
                let twos: &[u64] = if matches!(op, Op::MaskedEq(_)) {
                    &EDGES
                } else {
                    &[0]
                };
                for &v2 in twos {
                    let f = build(json!({
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                            "args": [{"index": 2, "value": v, "valueTwo": v2, "op": op_json(op)}]}],
                    }));
                    for a in EDGES {
                        let want = if reference(op, a, v, v2) {
                            EPERM
                        } else {
                            ALLOW
                        };
                        let got = run(&f, AUDIT_X86_64, x64("personality"), [0, 0, a, 0, 0, 0]);
                        assert_eq!(got, want, "x86_64 {op:?} a={a:#x} v={v:#x} v2={v2:#x}");
                        let (a32, v32, v232) = (a & 0xffff_ffff, v & 0xffff_ffff, v2 & 0xffff_ffff);
                        let want32 = if reference(op, a32, v32, v232) {
                            EPERM
                        } else {
                            ALLOW
                        };
                        let got = run(&f, AUDIT_I386, i386_personality, [0, 0, a32, 0, 0, 0]);
                        assert_eq!(
                            got, want32,
                            "i386 {op:?} a={a32:#x} v={v32:#x} v2={v232:#x}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 6 * 14 * 14 + 14 * 14 * 14);
    }

    #[test]
    fn only_the_native_arch_is_bad_arch_killed_otherwise() {
        let f = build(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        assert_eq!(run0(&f, AUDIT_X86_64, x64("personality")), EPERM);
        assert_eq!(run0(&f, AUDIT_X86_64, x64("read")), ALLOW);
        // i386 (int 0x80), an unknown arch: libseccomp's bad-arch action, KILL_THREAD.
        assert_eq!(
            run0(&f, AUDIT_I386, nr(Table::X86, "personality")),
            RET_KILL_THREAD
        );
        assert_eq!(run0(&f, AUDIT_I386, 0), RET_KILL_THREAD);
        assert_eq!(run0(&f, 0x1234_5678, 0), RET_KILL_THREAD);
        assert_eq!(run0(&f, AUDIT_AARCH64, 92), RET_KILL_THREAD);
        // x32 numbers on the x86_64 audit arch are not a bypass.
        assert_eq!(
            run0(&f, AUDIT_X86_64, X32 | x64("personality")),
            RET_KILL_THREAD
        );
        assert_eq!(run0(&f, AUDIT_X86_64, X32 | x64("read")), RET_KILL_THREAD);
        assert_eq!(run0(&f, AUDIT_X86_64, 0x8000_0000), RET_KILL_THREAD);
        // -1 (a tracer skipping the syscall) goes to the rules.
        assert_eq!(run0(&f, AUDIT_X86_64, u32::MAX), ALLOW);
    }

    #[test]
    fn multi_arch_profile_resolves_names_per_arch_and_x32_by_its_own_numbers() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_PPC64", "SCMP_ARCH_S390X"],
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["set_tls", "open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9},
                {"names": ["mmap"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 0xdead_0000_0000u64, "op": "SCMP_CMP_EQ"}]},
            ],
        }));
        let p = "personality";
        assert_eq!(run0(&f, AUDIT_X86_64, x64(p)), EPERM);
        assert_eq!(run0(&f, AUDIT_I386, nr(Table::X86, p)), EPERM);
        assert_eq!(run0(&f, AUDIT_X86_64, nr(Table::X32, p)), EPERM);
        assert_eq!(run0(&f, AUDIT_AARCH64, nr(Table::Aarch64, p)), EPERM);
        assert_eq!(run0(&f, AUDIT_ARM, nr(Table::Arm, p)), EPERM);
        assert_eq!(run0(&f, AUDIT_PPC64, nr(Table::Ppc64, p)), EPERM);
        assert_eq!(run0(&f, AUDIT_S390X, nr(Table::S390x, p)), EPERM);
        // Same numbers on other arches are other syscalls.
        assert_eq!(run0(&f, AUDIT_I386, x64(p)), ALLOW);
        // With x32 listed, x32 numbers are x32 syscalls, not bad-arch.
        assert_eq!(run0(&f, AUDIT_X86_64, nr(Table::X32, "read")), ALLOW);
        // ARM private set_tls; open is unknown on aarch64 but known on x86_64.
        assert_eq!(run0(&f, AUDIT_ARM, 0x0f_0005), RET_ERRNO | 9);
        assert_eq!(run0(&f, AUDIT_X86_64, x64("open")), RET_ERRNO | 9);
        // A 64-bit argument on a big-endian arch (ppc64): the words are swapped in memory.
        let mmap = nr(Table::Ppc64, "mmap");
        assert_eq!(run(&f, AUDIT_PPC64, mmap, a0(0xdead_0000_0000)), RET_TRAP);
        assert_eq!(run(&f, AUDIT_PPC64, mmap, a0(0xdead)), ALLOW);
        assert_eq!(
            run(
                &f,
                AUDIT_S390X,
                nr(Table::S390x, "mmap"),
                a0(0xdead_0000_0000)
            ),
            RET_TRAP
        );
        // On 32-bit ARM only the low word is compared: value truncated to 0.
        assert_eq!(run(&f, AUDIT_ARM, nr(Table::Arm, "mmap2"), a0(0)), ALLOW);
        assert!(
            f.unknown_syscalls().is_empty(),
            "{:?}",
            f.unknown_syscalls()
        );
    }

    #[test]
    fn names_unknown_everywhere_are_skipped_and_reported() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "no_such_syscall", "socketcall", "set_tls", "send"], "action": "SCMP_ACT_ALLOW"}],
        }));
        assert_eq!(f.unknown_syscalls(), ["no_such_syscall".to_owned()]);
        assert_eq!(run0(&f, AUDIT_X86_64, x64("read")), ALLOW);
    }

    #[test]
    fn socketcall_and_ipc_multiplexers_are_covered_on_i386() {
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["socket", "shmat"], "action": "SCMP_ACT_ERRNO"}],
        }));
        let socketcall = nr(Table::X86, "socketcall");
        let ipc = nr(Table::X86, "ipc");
        assert_eq!(run0(&f, AUDIT_I386, nr(Table::X86, "socket")), EPERM);
        assert_eq!(run(&f, AUDIT_I386, socketcall, a0(1)), EPERM);
        assert_eq!(run(&f, AUDIT_I386, socketcall, a0(2)), ALLOW);
        assert_eq!(run(&f, AUDIT_I386, ipc, a0(21)), EPERM);
        // ipc(2) ignores the version in the upper 16 bits.
        assert_eq!(run(&f, AUDIT_I386, ipc, a0(0x1_0015)), EPERM);
        assert_eq!(run(&f, AUDIT_I386, ipc, a0(22)), ALLOW);

        // A conditional rule more permissive than the default does not open the multiplexer.
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}],
        }));
        let socket = nr(Table::X86, "socket");
        assert_eq!(run(&f, AUDIT_I386, socket, a0(2)), ALLOW);
        assert_eq!(run(&f, AUDIT_I386, socket, a0(40)), EPERM);
        assert_eq!(run(&f, AUDIT_I386, socketcall, a0(1)), EPERM);
        // A stricter one closes it whatever the (unreadable) arguments.
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}],
        }));
        assert_eq!(run(&f, AUDIT_I386, socket, a0(2)), ALLOW);
        assert_eq!(run(&f, AUDIT_I386, socket, a0(40)), EPERM);
        assert_eq!(run(&f, AUDIT_I386, socketcall, a0(1)), EPERM);
        assert_eq!(run(&f, AUDIT_I386, socketcall, a0(3)), ALLOW);
    }

    #[test]
    fn enosys_stub_above_the_highest_named_syscall_as_runc() {
        let rules =
            json!([{"names": ["read", "write", "personality"], "action": "SCMP_ACT_ALLOW"}]);
        let f = build(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}));
        let max = x64("personality");
        assert_eq!(run0(&f, AUDIT_X86_64, x64("read")), ALLOW);
        assert_eq!(run0(&f, AUDIT_X86_64, max - 1), EPERM);
        assert_eq!(run0(&f, AUDIT_X86_64, max + 1), ENOSYS);
        assert_eq!(run0(&f, AUDIT_X86_64, 1000), ENOSYS);
        // x32 stays bad-arch, -1 goes to the rules.
        assert_eq!(run0(&f, AUDIT_X86_64, X32 | 1), RET_KILL_THREAD);
        assert_eq!(run0(&f, AUDIT_X86_64, u32::MAX), EPERM);
        // Also with KILL as default; not with a permissive default.
        let f = build(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": rules}));
        assert_eq!(run0(&f, AUDIT_X86_64, max + 1), ENOSYS);
        assert_eq!(run0(&f, AUDIT_X86_64, max - 1), RET_KILL_PROCESS);
        for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
            let f = build(
                json!({"defaultAction": default, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL"}]}),
            );
            assert_ne!(run0(&f, AUDIT_X86_64, 1000), ENOSYS, "{default}");
        }
        // With x86_64 and x32 the limit is per ABI; the names of a rule with the default
        // action still count for the limit.
        let f = build(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO"},
            ],
        }));
        let x32_max = nr(Table::X32, "personality");
        assert_eq!(run0(&f, AUDIT_X86_64, max + 1), ENOSYS);
        assert_eq!(run0(&f, AUDIT_X86_64, max), EPERM);
        assert_eq!(run0(&f, AUDIT_X86_64, x32_max + 1), ENOSYS);
        assert_eq!(run0(&f, AUDIT_X86_64, x32_max - 1), EPERM);
        assert_eq!(run0(&f, AUDIT_X86_64, nr(Table::X32, "read")), ALLOW);
        // s390x: syscall 0 (the multiplexer of unknown numbers) gets ENOSYS.
        let f = build(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_S390X"], "syscalls": rules}),
        );
        assert_eq!(run0(&f, AUDIT_S390X, 0), ENOSYS);
        assert_eq!(run0(&f, AUDIT_S390X, nr(Table::S390x, "read")), ALLOW);
    }

    /// Denied syscalls of the generated large profiles.
    const DENIED: [&str; 12] = [
        "mount",
        "umount2",
        "reboot",
        "ptrace",
        "kexec_load",
        "init_module",
        "delete_module",
        "swapon",
        "pivot_root",
        "bpf",
        "perf_event_open",
        "acct",
    ];

    /// An allow-list of every x86_64 syscall but [`DENIED`], at Docker's default profile's scale.
    fn allow_all_but_denied() -> serde_json::Value {
        let names: Vec<&str> = Names::build(Table::X86_64)
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !DENIED.contains(n))
            .collect();
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        })
    }

    #[test]
    fn large_allow_list_every_number_has_its_verdict() {
        let f = build(allow_all_but_denied());
        let by_nr: HashMap<u32, &str> = Names::build(Table::X86_64)
            .iter()
            .map(|(n, v)| (v, n))
            .collect();
        let max = *by_nr.keys().max().unwrap();
        for n in 0..=max + 64 {
            let want = match by_nr.get(&n) {
                Some(name) if DENIED.contains(name) => EPERM,
                Some(_) => ALLOW,
                None if n <= max => EPERM,
                None => ENOSYS,
            };
            assert_eq!(run0(&f, AUDIT_X86_64, n), want, "x86_64 nr {n}");
        }
        for (table, audit, base) in [(Table::X86, AUDIT_I386, 0), (Table::X32, AUDIT_X86_64, X32)] {
            let names = Names::build(table);
            let x64_names: Vec<&str> = Names::build(Table::X86_64).iter().map(|(n, _)| n).collect();
            let allowed = |name: &str| x64_names.contains(&name) && !DENIED.contains(&name);
            let listed_max = names
                .iter()
                .filter(|(n, _)| x64_names.contains(n))
                .map(|(_, v)| v)
                .max()
                .unwrap();
            for n in base..=listed_max + 64 {
                // A number may have two names here (musl's and the kernel's).
                let want = if names.iter().any(|(name, v)| v == n && allowed(name)) {
                    ALLOW
                } else if n <= listed_max {
                    EPERM
                } else {
                    ENOSYS
                };
                assert_eq!(run0(&f, audit, n), want, "{table:?} nr {n:#x}");
            }
        }
        assert!(f.len() < 1000, "{} instructions", f.len());
    }

    /// Many distinct actions and argument checks force jumps beyond 255 instructions.
    #[test]
    fn long_jumps_are_correct_in_a_profile_with_many_distinct_outcomes() {
        let names: Vec<(&str, u32)> = {
            let mut v: Vec<_> = Names::build(Table::X86_64).iter().collect();
            v.sort_by_key(|(_, n)| *n);
            v
        };
        let mut rules = Vec::new();
        for (i, (name, _)) in names.iter().enumerate() {
            if i % 3 == 0 {
                rules.push(
                    json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 + i % 200}),
                );
            } else if i % 3 == 1 {
                rules.push(json!({"names": [name], "action": "SCMP_ACT_TRACE", "errnoRet": i,
                    "args": [{"index": i % 6, "value": (i as u64) << 32 | 7, "op": "SCMP_CMP_GT"}]}));
            }
        }
        let f = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        let prog = f.instructions();
        assert!(prog.len() > 600, "{}", prog.len());
        assert!(
            prog.iter().any(|i| i.code == 0x05),
            "expected ja trampolines"
        );
        for (i, (_, n)) in names.iter().enumerate() {
            let k = (i as u64) << 32 | 7;
            let mut above = [0u64; 6];
            above[i % 6] = k + 1;
            let mut equal = [0u64; 6];
            equal[i % 6] = k;
            let (want_above, want_equal) = match i % 3 {
                0 => (
                    RET_ERRNO | (1 + i as u32 % 200),
                    RET_ERRNO | (1 + i as u32 % 200),
                ),
                1 => (RET_TRACE | i as u32, ALLOW),
                _ => (ALLOW, ALLOW),
            };
            assert_eq!(run(&f, AUDIT_X86_64, *n, above), want_above, "nr {n}");
            assert_eq!(run(&f, AUDIT_X86_64, *n, equal), want_equal, "nr {n}");
        }
    }

    #[test]
    fn a_profile_over_the_kernel_limit_is_a_clear_error() {
        let names: Vec<&str> = Names::build(Table::X86_64).iter().map(|(n, _)| n).collect();
        let args: Vec<_> = (0..6)
            .map(|i| json!({"index": i, "value": 0x1_0000_0000u64 + i, "op": "SCMP_CMP_LE"}))
            .collect();
        let err = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "args": args}],
        })))
        .unwrap_err();
        match err {
            SeccompError::ProgramTooLarge { len, max: 4096 } => assert!(len > 4096),
            other => panic!("unexpected {other}"),
        }
    }

    /// A small deterministic generator (no dependency for randomness).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The semantics of `compile.rs`, written independently, for x86_64 alone.
    fn model(p: &serde_json::Value, nr: u32, args: [u64; 6]) -> u32 {
        let value = |action: &str, errno: Option<u64>| -> u32 {
            let e = errno.unwrap_or(1) as u32;
            match action {
                "SCMP_ACT_ALLOW" => RET_ALLOW,
                "SCMP_ACT_ERRNO" => RET_ERRNO | e,
                "SCMP_ACT_TRACE" => RET_TRACE | e,
                "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
                "SCMP_ACT_TRAP" => RET_TRAP,
                "SCMP_ACT_LOG" => RET_LOG,
                _ => RET_KILL_THREAD,
            }
        };
        let default = value(
            p["defaultAction"].as_str().unwrap(),
            p["defaultErrnoRet"].as_u64(),
        );
        let names = Names::build(Table::X86_64);
        let rules = p["syscalls"].as_array().unwrap();
        if default & 0xffff_0000 != RET_ALLOW
            && default & 0xffff_0000 != RET_LOG
            && default & 0xffff_0000 != RET_TRACE
        {
            let max = rules
                .iter()
                .flat_map(|r| r["names"].as_array().unwrap())
                .filter_map(|n| names.get(n.as_str().unwrap()))
                .max();
            if max.is_some_and(|m| nr > m) && default != ENOSYS {
                return ENOSYS;
            }
        }
        let mut first_cond = None;
        for r in rules {
            let action = value(r["action"].as_str().unwrap(), r["errnoRet"].as_u64());
            if action == default
                || !r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| names.get(n.as_str().unwrap()) == Some(nr))
            {
                continue;
            }
            let conds = r["args"].as_array().cloned().unwrap_or_default();
            if conds.is_empty() {
                return action;
            }
            let holds = conds.iter().all(|c| {
                let a = args[c["index"].as_u64().unwrap() as usize];
                let v = c["value"].as_u64().unwrap();
                let v2 = c["valueTwo"].as_u64().unwrap_or(0);
                match c["op"].as_str().unwrap() {
                    "SCMP_CMP_EQ" => a == v,
                    "SCMP_CMP_NE" => a != v,
                    "SCMP_CMP_LT" => a < v,
                    "SCMP_CMP_LE" => a <= v,
                    "SCMP_CMP_GE" => a >= v,
                    "SCMP_CMP_GT" => a > v,
                    _ => a & v == v2 & v,
                }
            });
            if holds && first_cond.is_none() {
                first_cond = Some(action);
            }
        }
        first_cond.unwrap_or(default)
    }

    /// Random profiles (indices never repeated within a rule) against the model.
    #[test]
    fn random_profiles_agree_with_an_independent_model() {
        let mut rng = Lcg(0x5eed);
        let table: Vec<&str> = {
            let mut v: Vec<_> = Names::build(Table::X86_64).iter().collect();
            v.sort_by_key(|(_, n)| *n);
            v.into_iter().map(|(n, _)| n).take(40).collect()
        };
        let actions = [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_LOG",
            "SCMP_ACT_KILL",
        ];
        let ops = [
            "SCMP_CMP_EQ",
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ];
        let values = [
            0u64,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
            0x8000_0000_0000_0000,
            42,
        ];
        let mut evaluated = 0;
        for _ in 0..150 {
            let mut rules = Vec::new();
            for _ in 0..rng.below(12) + 1 {
                let names: Vec<&str> = (0..rng.below(3) + 1)
                    .map(|_| table[rng.below(table.len() as u64) as usize])
                    .collect();
                let action = actions[rng.below(actions.len() as u64) as usize];
                let mut rule = json!({"names": names, "action": action});
                if matches!(action, "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE") && rng.below(2) == 0 {
                    rule["errnoRet"] = json!(rng.below(100));
                }
                let mut indices: Vec<u64> = (0..6).collect();
                let nargs = rng.below(3);
                let mut args = Vec::new();
                for _ in 0..nargs {
                    let index = indices.remove(rng.below(indices.len() as u64) as usize);
                    args.push(json!({
                        "index": index,
                        "value": values[rng.below(values.len() as u64) as usize],
                        "valueTwo": values[rng.below(values.len() as u64) as usize],
                        "op": ops[rng.below(ops.len() as u64) as usize],
                    }));
                }
                if !args.is_empty() {
                    rule["args"] = json!(args);
                }
                rules.push(rule);
            }
            let default = actions[rng.below(actions.len() as u64) as usize];
            let p = json!({"defaultAction": default, "syscalls": rules});
            let f = build(p.clone());
            for _ in 0..200 {
                let n = rng.below(60) as u32;
                let mut args = [0u64; 6];
                for a in &mut args {
                    let v = values[rng.below(values.len() as u64) as usize];
                    *a = match rng.below(3) {
                        0 => v,
                        1 => v.wrapping_add(1),
                        _ => v.wrapping_sub(1),
                    };
                }
                assert_eq!(
                    run(&f, AUDIT_X86_64, n, args),
                    model(&p, n, args),
                    "profile {p} nr {n} args {args:x?}"
                );
                evaluated += 1;
            }
        }
        assert_eq!(evaluated, 30_000);
    }

    #[test]
    fn every_oci_spec_arch_name_maps_to_a_table_or_is_refused_clearly() {
        for name in super::super::arch::supported_names() {
            let ok: Result<berth_oci::oci_spec::runtime::Arch, _> =
                serde_json::from_value(json!(name));
            if ok.is_err() {
                // The config types of this oci-spec cannot carry it (LoongArch in 0.8).
                assert_eq!(name, "SCMP_ARCH_LOONGARCH64");
                continue;
            }
            build(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [name], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}),
            );
        }
        build(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NATIVE"]}));
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390"]}),
        ))
        .unwrap_err();
        assert!(
            matches!(&err, SeccompError::UnsupportedArch { arch } if arch == "SCMP_ARCH_S390"),
            "{err}"
        );
    }

    /// Compile time and size for the Docker-scale profile (numbers printed for the record).
    #[test]
    fn docker_scale_profile_compiles_fast_and_small() {
        let p = profile(allow_all_but_denied());
        let start = std::time::Instant::now();
        let rounds = 20;
        let mut len = 0;
        for _ in 0..rounds {
            len = compile(&p).unwrap().len();
        }
        let per = start.elapsed() / rounds;
        eprintln!("docker-scale profile: {len} instructions, {per:?} per compile (debug build)");
        assert!(len < 1000);
    }
}

#[test]
fn kernel_names_resolve_where_musl_names_differ() {
    for (table, name, want) in [
        (Table::X86, "clock_gettime", 265),
        (Table::X86, "gettimeofday", 78),
        (Table::X86, "getrlimit", 76),
        (Table::Arm, "clock_gettime", 263),
        (Table::Arm, "arm_fadvise64_64", 270),
        (Table::Arm, "arm_sync_file_range", 341),
        (Table::Arm, "set_tls", 0x0f_0005),
        (Table::Mips, "clock_gettime", 4263),
        (Table::MipsN32, "clock_gettime", 6226),
        (Table::Ppc, "clock_gettime", 246),
        (Table::Riscv64, "riscv_flush_icache", 259),
        (Table::Loongarch64, "mmap", 222),
        (Table::X86_64, "clock_gettime", 228),
        (Table::X32, "clock_gettime", 0x4000_0000 | 228),
        (Table::Aarch64, "clock_gettime", 113),
    ] {
        assert_eq!(
            Names::build(table).get(name),
            Some(want),
            "{table:?} {name}"
        );
    }
}

#[test]
fn verifier_refuses_what_the_kernel_refuses() {
    let ret = Instruction {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: RET_ALLOW,
    };
    assert!(bpf::verify(&[ret]).is_ok());
    assert!(bpf::verify(&[]).is_err());
    let ld = |k| Instruction {
        code: 0x20,
        jt: 0,
        jf: 0,
        k,
    };
    assert!(bpf::verify(&[ld(0), ret]).is_ok());
    assert!(
        bpf::verify(&[ld(64), ret]).is_err(),
        "load past seccomp_data"
    );
    assert!(bpf::verify(&[ld(2), ret]).is_err(), "unaligned load");
    assert!(bpf::verify(&[ld(0)]).is_err(), "no final return");
    let jeq = |jt, jf| Instruction {
        code: 0x15,
        jt,
        jf,
        k: 0,
    };
    assert!(bpf::verify(&[jeq(0, 1), ret, ret]).is_ok());
    assert!(
        bpf::verify(&[jeq(0, 2), ret, ret]).is_err(),
        "jump past the end"
    );
    let ja = |k| Instruction {
        code: 0x05,
        jt: 0,
        jf: 0,
        k,
    };
    assert!(bpf::verify(&[ja(1), ret, ret]).is_ok());
    assert!(bpf::verify(&[ja(2), ret, ret]).is_err());
    assert!(
        bpf::verify(&[
            Instruction {
                code: 0x07,
                jt: 0,
                jf: 0,
                k: 0
            },
            ret
        ])
        .is_err(),
        "tax not emitted"
    );
    assert!(bpf::verify(&vec![ret; 4097]).is_err());
}

#[test]
fn features_are_shaped_like_runtime_spec_features_json() {
    let features = super::features();
    let v = serde_json::to_value(&features).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "enabled",
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(keys.contains(&key), "{key} missing in {v}");
    }
    assert_eq!(features.actions.len(), 9);
    assert_eq!(features.operators.len(), 7);
    assert!(features.archs.iter().any(|a| a == "SCMP_ARCH_X86_64"));
    assert!(features.archs.iter().any(|a| a == "SCMP_ARCH_AARCH64"));
    assert!(!features.archs.iter().any(|a| a == "SCMP_ARCH_S390"));
    for flag in &features.supported_flags {
        assert!(features.known_flags.contains(flag), "{flag}");
    }
    // Every known flag must be accepted by compile().
    for flag in &features.known_flags {
        build(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}));
    }
    // This machine's kernel (4.17+) has these three.
    for flag in [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ] {
        assert!(
            features.supported_flags.iter().any(|f| f == flag),
            "{flag} not supported: {v}"
        );
    }
    assert!(super::action_available(RET_KILL_PROCESS));
    assert!(super::action_available(RET_LOG));
    assert!(!super::action_available(0x1234_0000));
}
