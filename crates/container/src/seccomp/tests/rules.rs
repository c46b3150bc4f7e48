//! Rules, actions, operators and architectures (x86_64 host).

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
        let uncond = json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6});
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
