//! Unit tests: compiled programs run in the BPF interpreter on synthetic `seccomp_data`.

mod kernel;
#[cfg(target_arch = "x86_64")]
mod rules;
#[cfg(target_arch = "x86_64")]
mod scale;

use std::collections::HashMap;

use berth_runtime_spec::LinuxSeccomp;
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
