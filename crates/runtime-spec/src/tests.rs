use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/fixtures/runtime-spec/", $name)),
        )
    };
}

/// runtime-spec's own examples and the configs `runc spec` and `crun spec` write.
const GOOD: &[(&str, &str)] = &[
    fixture!("good/spec-example.json"),
    fixture!("good/linux-netdevice.json"),
    fixture!("good/linux-rdma.json"),
    fixture!("good/minimal.json"),
    fixture!("good/minimal-for-start.json"),
    fixture!("runc.json"),
    fixture!("runc-rootless.json"),
    fixture!("crun.json"),
    fixture!("crun-rootless.json"),
];

/// What a parse cannot keep: capability sets are sets (their order is lost), and the
/// spec's example has a stray `linux.resources.oomScoreAdj` (the field is
/// `process.oomScoreAdj`), an unknown field and so dropped.
fn normalized(mut v: Value) -> Value {
    if let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by_key(|c| c.as_str().map(str::to_owned));
            }
        }
    }
    if let Some(r) = v
        .pointer_mut("/linux/resources")
        .and_then(Value::as_object_mut)
    {
        r.remove("oomScoreAdj");
    }
    v
}

#[test]
fn every_good_config_parses_and_serializes_back_to_the_same_json() {
    for (name, text) in GOOD {
        let spec: Spec = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let original: Value = serde_json::from_str(text).unwrap();
        // equal JSON values: no field lost (every field is known), none renamed or added
        assert_eq!(
            normalized(serde_json::to_value(&spec).unwrap()),
            normalized(original),
            "{name}"
        );
        let again: Spec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(again, spec, "{name}");
    }
}

#[test]
fn the_spec_example_reads_into_the_right_fields() {
    let (_, text) = fixture!("good/spec-example.json");
    let spec: Spec = serde_json::from_str(text).unwrap();
    let process = spec.process.as_ref().unwrap();
    assert_eq!(process.user.additional_gids, Some(vec![5, 6]));
    assert_eq!(process.oom_score_adj, None); // the example has it in linux.resources
    let caps = process.capabilities.as_ref().unwrap();
    assert!(
        caps.bounding
            .as_ref()
            .unwrap()
            .contains(&Capability::AuditWrite)
    );
    let rl = &process.rlimits.as_ref().unwrap()[0];
    assert_eq!(
        (rl.typ, rl.hard, rl.soft),
        (PosixRlimitType::RlimitCore, 1024, 1024)
    );
    let linux = spec.linux.as_ref().unwrap();
    let ns: Vec<_> = linux.namespaces.iter().flatten().map(|n| n.typ).collect();
    assert!(ns.contains(&LinuxNamespaceType::Mount) && ns.contains(&LinuxNamespaceType::Network));
    let map = linux.uid_mappings.as_ref().unwrap()[0];
    assert_eq!((map.container_id, map.host_id, map.size), (0, 1000, 32000));
    let r = linux.resources.as_ref().unwrap();
    assert_eq!(r.pids, Some(LinuxPids { limit: 32771 }));
    let memory = r.memory.as_ref().unwrap();
    assert_eq!(memory.limit, Some(536_870_912));
    assert_eq!(memory.swappiness, Some(0));
    assert_eq!(memory.disable_oom_killer, Some(false));
    let cpu = r.cpu.as_ref().unwrap();
    assert_eq!(
        (cpu.shares, cpu.quota, cpu.period),
        (Some(1024), Some(1_000_000), Some(500_000))
    );
    let block_io = r.block_io.as_ref().unwrap();
    assert_eq!(block_io.weight, Some(10));
    assert_eq!(
        block_io.throttle_read_bps_device.as_ref().unwrap()[0].rate,
        600
    );
    let devices = r.devices.as_ref().unwrap();
    assert!(devices[0].typ.is_none() && !devices[0].allow);
    assert_eq!(devices[0].to_string(), "a *:* rwm");
    let seccomp = linux.seccomp.as_ref().unwrap();
    assert_eq!(seccomp.default_action, LinuxSeccompAction::ScmpActAllow);
    assert_eq!(
        seccomp.architectures,
        Some(vec![Arch::ScmpArchX86, Arch::ScmpArchX32])
    );
    assert_eq!(linux.devices.as_ref().unwrap()[0].typ, LinuxDeviceType::C);
    let hooks = spec.hooks.as_ref().unwrap();
    assert_eq!(
        hooks.poststart.as_ref().unwrap()[0].path,
        PathBuf::from("/usr/bin/notify-start")
    );
    assert_eq!(hooks.prestart.as_ref().unwrap()[1].timeout, None);
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.2.0",
        "someFutureField": {"a": 1},
        "process": {"cwd": "/", "user": {"uid": 1, "gid": 2, "extra": true}, "new": 1},
        "linux": {
            "namespaces": [{"type": "pid", "flags": 3}],
            "resources": {"pids": {"limit": 5, "x": 1}, "future": []},
            "futureLinux": "x"
        }
    }))
    .unwrap();
    assert_eq!(spec.version, "1.2.0");
    assert_eq!(spec.process.as_ref().unwrap().user.gid, 2);
    let linux = spec.linux.unwrap();
    assert_eq!(linux.resources.unwrap().pids, Some(LinuxPids { limit: 5 }));
    assert_eq!(linux.namespaces.unwrap()[0].typ, LinuxNamespaceType::Pid);
}

#[test]
fn optional_fields_that_are_absent_are_not_written() {
    let spec = Spec {
        version: "1.2.1".to_owned(),
        process: Some(Process {
            cwd: "/".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"ociVersion": "1.2.1", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/"}})
    );
}

#[test]
fn the_spec_json_names_are_used() {
    let r = LinuxResources {
        block_io: Some(LinuxBlockIo {
            throttle_read_iops_device: Some(vec![LinuxThrottleDevice::default()]),
            ..Default::default()
        }),
        memory: Some(LinuxMemory {
            limit: Some(-1),
            kernel_tcp: Some(1),
            disable_oom_killer: Some(true),
            ..Default::default()
        }),
        network: Some(LinuxNetwork {
            class_id: Some(7),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({
            "memory": {"limit": -1, "kernelTCP": 1, "disableOOMKiller": true},
            "blockIO": {"throttleReadIOPSDevice": [{"major": 0, "minor": 0, "rate": 0}]},
            "network": {"classID": 7}
        })
    );
    let p = Process {
        exec_cpu_affinity: Some(ExecCpuAffinity {
            initial: Some("0".into()),
            cpu_affinity_final: Some("1-2".into()),
        }),
        io_priority: Some(LinuxIoPriority::default()),
        ..Default::default()
    };
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v["execCPUAffinity"],
        json!({"initial": "0", "final": "1-2"})
    );
    assert_eq!(
        v["ioPriority"],
        json!({"class": "IOPRIO_CLASS_BE", "priority": 0})
    );
    let rdt = LinuxIntelRdt {
        clos_id: Some("c".into()),
        enable_cmt: Some(true),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&rdt).unwrap(),
        json!({"closID": "c", "enableCMT": true})
    );
}

#[test]
fn negative_and_wide_numbers_keep_their_sign_and_width() {
    let r: LinuxResources = serde_json::from_value(json!({
        "memory": {"limit": -1, "swap": -1, "reservation": 9_007_199_254_740_993_i64,
                   "swappiness": 18_446_744_073_709_551_615_u64},
        "cpu": {"quota": -1, "shares": 18_446_744_073_709_551_615_u64, "realtimeRuntime": -5},
        "pids": {"limit": -1}
    }))
    .unwrap();
    let m = r.memory.unwrap();
    assert_eq!((m.limit, m.swap), (Some(-1), Some(-1)));
    assert_eq!(m.reservation, Some(9_007_199_254_740_993));
    assert_eq!(m.swappiness, Some(u64::MAX));
    let cpu = r.cpu.unwrap();
    assert_eq!(
        (cpu.quota, cpu.shares, cpu.realtime_runtime),
        (Some(-1), Some(u64::MAX), Some(-5))
    );
    assert_eq!(r.pids.unwrap().limit, -1);
    // unsigned fields refuse negatives
    assert!(serde_json::from_value::<LinuxCpu>(json!({"shares": -1})).is_err());
    assert!(serde_json::from_value::<LinuxIdMapping>(json!({"hostID": -1})).is_err());
}

#[test]
fn a_pids_without_a_limit_is_no_pids_limit_and_zero_is_a_limit() {
    // read from bytes, as the runtime reads config.json, and from a JSON value, as
    // `update` merges: the same answer both ways
    let cases = [
        (r#"{"pids": {"limit": 0}}"#, Some(0)),
        (r#"{"pids": {"limit": 7}}"#, Some(7)),
        (r#"{"pids": {"limit": -1}}"#, Some(-1)),
        (r#"{"pids": {}}"#, None),
        (r#"{"pids": {"limit": null}}"#, None),
        (r#"{"pids": {"future": 1}}"#, None),
        (r#"{"pids": null}"#, None),
        (r#"{}"#, None),
    ];
    for (text, want) in cases {
        let r: LinuxResources = serde_json::from_str(text).unwrap();
        assert_eq!(r.pids.map(|p| p.limit), want, "{text}");
        let v: Value = serde_json::from_str(text).unwrap();
        let r = LinuxResources::deserialize(&v).unwrap();
        assert_eq!(r.pids.map(|p| p.limit), want, "{text} as a value");
    }
    // a limit of the wrong type is still refused, not read as absent
    assert!(serde_json::from_str::<LinuxResources>(r#"{"pids": {"limit": "1"}}"#).is_err());
    assert!(serde_json::from_str::<LinuxResources>(r#"{"pids": 5}"#).is_err());
}

#[test]
fn wrong_types_are_refused_with_the_offending_value_and_position() {
    for (name, text, want) in [
        (
            "bad/linux-rdma.json",
            fixture!("bad/linux-rdma.json").1,
            "invalid type: string \"not a uint32\", expected u32",
        ),
        (
            "bad/linux-netdevice.json",
            fixture!("bad/linux-netdevice.json").1,
            "invalid type: integer `23`, expected a string",
        ),
    ] {
        let err = serde_json::from_str::<Spec>(text).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains(" at line "),
            "{name}: {err}"
        );
    }
    for (value, want) in [
        (json!({"process": {"cwd": "/"}}), "missing field `user`"),
        (json!({"process": {"user": {}}}), "missing field `cwd`"),
        (
            json!({"linux": {"namespaces": [{"type": "mnt"}]}}),
            "unknown variant `mnt`, expected one of `mount`",
        ),
        (
            json!({"linux": {"devices": [{"path": "/dev/x", "type": "x"}]}}),
            "unknown variant `x`, expected one of `a`, `b`, `c`, `u`, `p`",
        ),
        (
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOPE"}}}),
            "unknown variant `SCMP_ACT_NOPE`",
        ),
        (
            json!({"process": {"cwd": "/", "user": {}, "rlimits": [{"type": "RLIMIT_NOPE"}]}}),
            "unknown variant `RLIMIT_NOPE`",
        ),
        (
            json!({"process": {"cwd": "/", "user": {}, "capabilities": {"bounding": ["CAP_NOPE"]}}}),
            "unknown variant `CAP_NOPE`",
        ),
        (
            json!({"linux": {"resources": {"pids": {"limit": "1"}}}}),
            "expected i64",
        ),
    ] {
        let err = serde_json::from_value::<Spec>(value.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{value}: {err}");
    }
}

#[test]
fn exec_cpu_affinity_takes_cpu_lists_only() {
    for good in ["0", "7", "0-3", "0-3,7", "1,2,3", "10-20,30-40,5", "3-1"] {
        assert!(is_cpu_list(good), "{good}");
        let a: ExecCpuAffinity =
            serde_json::from_value(json!({"initial": good, "final": good})).unwrap();
        assert_eq!(a.initial.as_deref(), Some(good));
        assert_eq!(a.cpu_affinity_final.as_deref(), Some(good));
    }
    for bad in [
        "", ",", "0,", ",0", "0-", "-3", "0--3", "0-3-5", "a", "0 ,1", " 0", "1,,2", "+1", "0x1",
    ] {
        assert!(!is_cpu_list(bad), "{bad:?}");
        for field in ["initial", "final"] {
            let err = serde_json::from_value::<ExecCpuAffinity>(json!({ field: bad }))
                .unwrap_err()
                .to_string();
            assert!(err.contains("invalid execCPUAffinity"), "{bad:?}: {err}");
        }
    }
    // in a whole config, as exec's --process file
    let err = serde_json::from_value::<Process>(
        json!({"cwd": "/", "user": {}, "execCPUAffinity": {"initial": "0-a"}}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("invalid execCPUAffinity \"0-a\""), "{err}");
    let a: ExecCpuAffinity = serde_json::from_value(json!({"initial": null})).unwrap();
    assert_eq!(a, ExecCpuAffinity::default());
}

#[test]
fn capabilities_parse_leniently_and_are_written_with_the_prefix() {
    for name in [
        "CAP_SYS_ADMIN",
        "SYS_ADMIN",
        "sys_admin",
        "cap_sys_admin",
        "CAP_CAP_SYS_ADMIN",
    ] {
        let c: Capability = serde_json::from_value(json!(name)).unwrap();
        assert_eq!(c, Capability::SysAdmin, "{name}");
    }
    assert_eq!(Capability::parse("NOPE"), None);
    assert_eq!(Capability::parse("CAP_"), None);
    assert_eq!(
        serde_json::to_value(Capability::NetBindService).unwrap(),
        json!("CAP_NET_BIND_SERVICE")
    );
    assert_eq!(Capability::Syslog.to_string(), "CAP_SYSLOG");
    assert_eq!(Capability::ALL.len(), 41);
    for c in Capability::ALL {
        assert_eq!(Capability::parse(c.as_str()), Some(*c));
    }
}

#[test]
fn namespace_types_are_written_as_the_spec_and_shown_as_proc() {
    for t in LinuxNamespaceType::ALL {
        let v = serde_json::to_value(t).unwrap();
        assert_eq!(v, json!(t.as_str()));
        assert_eq!(serde_json::from_value::<LinuxNamespaceType>(v).unwrap(), *t);
        assert_eq!(LinuxNamespaceType::from_name(t.proc_name()), Some(*t));
    }
    assert_eq!(LinuxNamespaceType::Mount.to_string(), "mnt");
    assert_eq!(LinuxNamespaceType::Network.to_string(), "net");
    assert_eq!(LinuxNamespaceType::Mount.as_str(), "mount");
    assert_eq!(LinuxNamespaceType::User as i32, 0x1000_0000);
}

#[test]
fn spelled_enums_round_trip_every_variant() {
    fn check<T>(all: &[T])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + ToString,
    {
        for v in all {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, json!(v.to_string()));
            assert_eq!(&serde_json::from_value::<T>(json).unwrap(), v);
        }
    }
    check(PosixRlimitType::ALL);
    check(IoPriorityClass::ALL);
    check(LinuxSchedulerPolicy::ALL);
    check(LinuxSchedulerFlag::ALL);
    check(LinuxDeviceType::ALL);
    check(LinuxSeccompAction::ALL);
    check(Arch::ALL);
    check(LinuxSeccompFilterFlag::ALL);
    check(LinuxSeccompOperator::ALL);
    check(LinuxPersonalityDomain::ALL);
    check(MemoryPolicyMode::ALL);
    check(MemoryPolicyFlag::ALL);
    assert_eq!(Arch::ScmpArchX86_64.as_str(), "SCMP_ARCH_X86_64");
    assert_eq!(
        LinuxSchedulerFlag::SchedFlagResetOnFork.as_str(),
        "SCHED_FLAG_RESET_ON_FORK"
    );
}

#[test]
fn device_rules_display_as_cgroup_v1_lines() {
    let rule = LinuxDeviceCgroup {
        allow: true,
        typ: Some(LinuxDeviceType::C),
        major: Some(1),
        minor: None,
        access: Some("rwm".into()),
    };
    assert_eq!(rule.to_string(), "c 1:* rwm");
    assert_eq!(LinuxDeviceCgroup::default().to_string(), "a *:* ");
}

#[test]
fn required_fields_follow_what_runc_and_oci_spec_read() {
    // root.path absent: the bundle directory, as runc reads it
    let spec: Spec = serde_json::from_value(json!({"root": {}})).unwrap();
    assert_eq!(spec.root.unwrap().path, PathBuf::new());
    // a mount needs its destination, a namespace its type, seccomp its default action
    for (value, want) in [
        (
            json!({"mounts": [{"type": "tmpfs"}]}),
            "missing field `destination`",
        ),
        (
            json!({"linux": {"namespaces": [{"path": "/x"}]}}),
            "missing field `type`",
        ),
        (
            json!({"linux": {"seccomp": {}}}),
            "missing field `defaultAction`",
        ),
        (
            json!({"hooks": {"poststop": [{"args": []}]}}),
            "missing field `path`",
        ),
    ] {
        let err = serde_json::from_value::<Spec>(value.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{value}: {err}");
    }
}

/// A capability set is written sorted by name, whatever order the set iterates in (a
/// `HashSet`'s differs between instances), so that one config is always written the same.
#[test]
fn capability_sets_are_written_sorted() {
    let mut names: Vec<&str> = Capability::NAMES.to_vec();
    names.sort_unstable();
    for _ in 0..4 {
        let all: Capabilities = Capability::ALL.iter().copied().collect();
        let caps = LinuxCapabilities {
            bounding: Some(all.clone()),
            ambient: Some(all),
            ..LinuxCapabilities::default()
        };
        let v = serde_json::to_value(&caps).unwrap();
        assert_eq!(v["bounding"], json!(names));
        assert_eq!(v["ambient"], json!(names));
        assert!(v.get("effective").is_none());
    }
}
