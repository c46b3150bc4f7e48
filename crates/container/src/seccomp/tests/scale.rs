//! The ENOSYS stub, large profiles and long jumps, random profiles against a model.

use super::*;
#[test]
fn enosys_stub_above_the_highest_named_syscall_as_runc() {
    let rules = json!([{"names": ["read", "write", "personality"], "action": "SCMP_ACT_ALLOW"}]);
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
            rules.push(
                json!({"names": [name], "action": "SCMP_ACT_TRACE", "errnoRet": i,
                "args": [{"index": i % 6, "value": (i as u64) << 32 | 7, "op": "SCMP_CMP_GT"}]}),
            );
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
fn every_arch_name_maps_to_a_table_or_is_refused_clearly() {
    for name in super::super::arch::supported_names() {
        // every architecture berth has a table for is one the config types can carry
        let parsed: Result<berth_runtime_spec::Arch, _> = serde_json::from_value(json!(name));
        assert!(parsed.is_ok(), "{name}");
        build(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [name], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}),
        );
    }
    build(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NATIVE"]}));
    // the spec's architectures without a table (S390, M68K, SH, PARISC, …) are refused
    let supported = super::super::arch::supported_names();
    let missing: Vec<_> = berth_runtime_spec::Arch::NAMES
        .iter()
        .filter(|n| **n != "SCMP_ARCH_NATIVE" && !supported.contains(n))
        .collect();
    assert!(missing.contains(&&"SCMP_ARCH_S390"), "{missing:?}");
    for name in missing {
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [name]}),
        ))
        .unwrap_err();
        assert!(
            matches!(&err, SeccompError::UnsupportedArch { arch } if arch == name),
            "{err}"
        );
    }
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
    eprintln!("docker-scale profile: {len} instructions, {per:?} per compile");
    assert!(len < 1000);
}
