//! The `config.json` that `berth-runtime spec` writes, and its rootless variant, in two
//! flavours, as real [`Spec`] values (and the pieces an image tool builds its own config
//! from: [`CAPABILITIES`], [`MASKED_PATHS`], [`READONLY_PATHS`], [`mounts`],
//! [`device_rules`], [`seccomp::profile`]):
//!
//! - [`Flavor::Locked`] (the default): runc's example locked down as berth runs containers
//!   by default: Docker's default seccomp profile ([`seccomp`]), `noNewPrivileges`, runc's
//!   three capabilities (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE; bounding,
//!   effective and permitted, none inheritable or ambient), Docker's masked and read-only
//!   paths, a read-only root, all devices denied, and the pid, network, ipc, uts and mount
//!   namespaces (and cgroup on cgroup v2 hosts).
//! - [`Flavor::RuncCompat`] (`--runc-compat`): what the runc this was tested beside
//!   (1.1.5) writes, byte for byte: its spec version, the caps listed as ambient too, no
//!   seccomp.
//!
//! [`to_json`] writes a config as runc does: fields in runc's order, indented with tabs.

pub mod seccomp;

use std::path::PathBuf;

use crate::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxIdMapping,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, PosixRlimit, PosixRlimitType,
    Process, Root, Spec, User,
};

/// Which default `spec` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// berth's locked-down default.
    #[default]
    Locked,
    /// runc 1.1's output, byte for byte (`spec --runc-compat`).
    RuncCompat,
}

/// The `ociVersion` of the locked-down default: the newest crun 1.8 (Debian 12) accepts
/// ("unknown version specified" for 1.2.x); the config uses nothing newer.
pub const LOCKED_SPEC_VERSION: &str = "1.1.0";

/// The `ociVersion` runc 1.1 writes (and `--runc-compat` with it).
pub const RUNC_SPEC_VERSION: &str = "1.0.2-dev";

/// runc's three capabilities, the default's bounding, effective and permitted sets (none of
/// those Docker's seccomp profile conditions on).
pub const CAPABILITIES: [Capability; 3] = [
    Capability::AuditWrite,
    Capability::Kill,
    Capability::NetBindService,
];

/// Docker's masked paths (moby `oci/defaults.go`, 28.x): runc's plus /proc/interrupts and
/// /sys/devices/virtual/powercap (RAPL energy counters, a side channel: CVE-2020-8694).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// runc 1.1's masked paths, in its order (`--runc-compat`).
pub const RUNC_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// The read-only paths (runc's and Docker's).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: PathBuf::from(destination),
        typ: Some(typ.to_owned()),
        source: Some(PathBuf::from(source)),
        options: (!options.is_empty()).then(|| strings(options)),
        ..Mount::default()
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The default mounts (runc's): /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue, a
/// read-only /sys and a read-only /sys/fs/cgroup.
pub fn mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// The default device cgroup rules: every device denied (the runtime allows its default
/// devices, /dev/null, /dev/zero, …, on top, as runc does).
pub fn device_rules() -> Vec<LinuxDeviceCgroup> {
    vec![LinuxDeviceCgroup {
        allow: false,
        access: Some("rwm".to_owned()),
        ..LinuxDeviceCgroup::default()
    }]
}

/// The default config (locked down); `rootless` maps the caller's `uid`/`gid` to root.
pub fn default_spec(rootless: Option<(u32, u32)>, cgroup_v2: bool) -> Spec {
    spec(Flavor::Locked, rootless, cgroup_v2)
}

/// The config `spec` writes in `flavor`; `rootless` maps the caller's `uid`/`gid` to root
/// (runc's `specconv.ToRootless`).
pub fn spec(flavor: Flavor, rootless: Option<(u32, u32)>, cgroup_v2: bool) -> Spec {
    use LinuxNamespaceType as Ns;
    let runc = flavor == Flavor::RuncCompat;
    let caps: Capabilities = CAPABILITIES.into_iter().collect();
    let mut namespaces = vec![Ns::Pid, Ns::Network, Ns::Ipc, Ns::Uts, Ns::Mount];
    if cgroup_v2 {
        namespaces.push(Ns::Cgroup);
    }
    let mut mounts = mounts();
    let mut linux = Linux {
        resources: Some(LinuxResources {
            devices: Some(device_rules()),
            ..LinuxResources::default()
        }),
        masked_paths: Some(strings(if runc {
            RUNC_MASKED_PATHS
        } else {
            MASKED_PATHS
        })),
        readonly_paths: Some(strings(READONLY_PATHS)),
        seccomp: (!runc).then(seccomp::profile),
        ..Linux::default()
    };
    if let Some((uid, gid)) = rootless {
        namespaces.retain(|n| *n != Ns::Network && *n != Ns::User);
        namespaces.push(Ns::User);
        let map = |host_id| {
            Some(vec![LinuxIdMapping {
                container_id: 0,
                host_id,
                size: 1,
            }])
        };
        linux.uid_mappings = map(uid);
        linux.gid_mappings = map(gid);
        for m in &mut mounts {
            if m.destination.as_os_str() == "/sys" {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
            } else if let Some(options) = &mut m.options {
                options.retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
            }
        }
        linux.resources = None;
    }
    linux.namespaces = Some(
        namespaces
            .into_iter()
            .map(|typ| LinuxNamespace { typ, path: None })
            .collect(),
    );
    Spec {
        version: if runc {
            RUNC_SPEC_VERSION
        } else {
            LOCKED_SPEC_VERSION
        }
        .to_owned(),
        process: Some(Process {
            terminal: Some(true),
            user: User::default(),
            args: Some(strings(&["sh"])),
            env: Some(strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ])),
            cwd: PathBuf::from("/"),
            capabilities: Some(LinuxCapabilities {
                bounding: Some(caps.clone()),
                effective: Some(caps.clone()),
                permitted: Some(caps.clone()),
                // runc 1.1 lists them as ambient too (which the kernel refuses to raise
                // without them inheritable; runc 1.2 dropped them)
                ambient: runc.then_some(caps),
                inheritable: None,
            }),
            rlimits: Some(vec![PosixRlimit {
                typ: PosixRlimitType::RlimitNofile,
                hard: 1024,
                soft: 1024,
            }]),
            no_new_privileges: Some(true),
            ..Process::default()
        }),
        root: Some(Root {
            path: PathBuf::from("rootfs"),
            readonly: Some(true),
        }),
        hostname: Some(if runc { "runc" } else { "berth" }.to_owned()),
        mounts: Some(mounts),
        linux: Some(linux),
        ..Spec::default()
    }
}

/// `spec` as runc writes a config: fields in runc's order, indented with tabs, no final
/// newline.
///
/// Written compactly, then indented by [`indent_with_tabs`]: serde_json's pretty writer would
/// compile a second copy of every spec type's `Serialize` into `berth-runtime` (about 30 KiB
/// of code), which already has the compact one for its state and hooks.
pub fn to_json(spec: &Spec) -> Result<String, serde_json::Error> {
    let compact = serde_json::to_vec(spec)?;
    Ok(indent_with_tabs(&compact))
}

/// serde_json's compact output laid out as its `PrettyFormatter` with a tab indent does: one
/// member or element a line, `": "` after keys, `{}` and `[]` for empty containers.
fn indent_with_tabs(compact: &[u8]) -> String {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b'\t', depth));
    };
    let mut i = 0;
    while i < compact.len() {
        let c = compact[i];
        i += 1;
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                if matches!(compact.get(i), Some(b'}' | b']')) {
                    out.push(compact[i]);
                    i += 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(c),
        }
    }
    // serde_json writes UTF-8 only, and only ASCII was added
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::{Value, json};

    fn text(flavor: Flavor, rootless: Option<(u32, u32)>, cgroup_v2: bool) -> String {
        to_json(&spec(flavor, rootless, cgroup_v2)).unwrap()
    }

    fn value(rootless: Option<(u32, u32)>, cgroup_v2: bool) -> Value {
        serde_json::to_value(default_spec(rootless, cgroup_v2)).unwrap()
    }

    /// The locked-down default: Docker's seccomp profile, no new privileges, runc's three
    /// caps and none ambient, Docker's masked paths; `--runc-compat` has none of the
    /// additions. (That the profile compiles, every name known, is `berth-container`'s test.)
    #[test]
    fn the_default_is_locked_down_and_runc_compat_is_not() {
        for rootless in [None, Some((1000, 1000))] {
            let v = value(rootless, false);
            assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
            assert_eq!(v["linux"]["seccomp"]["defaultErrnoRet"], 1);
            let allowed: Vec<&str> = v["linux"]["seccomp"]["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
                .flat_map(|r| r["names"].as_array().unwrap().iter())
                .map(|n| n.as_str().unwrap())
                .collect();
            for denied in [
                "mount",
                "umount2",
                "unshare",
                "setns",
                "pivot_root",
                "chroot",
                "keyctl",
                "add_key",
                "bpf",
                "perf_event_open",
                "kexec_load",
                "init_module",
                "reboot",
                "open_by_handle_at",
                "userfaultfd",
                "clone",
                "clone3",
                "personality",
                "socket",
            ] {
                assert!(
                    !allowed.contains(&denied),
                    "{denied} is allowed unconditionally"
                );
            }
            for ok in [
                "read",
                "execve",
                "openat",
                "ptrace",
                "setuid",
                "io_uring_setup",
            ] {
                assert!(allowed.contains(&ok), "{ok} is not allowed");
            }
            assert_eq!(v["process"]["noNewPrivileges"], true);
            let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
            for set in ["bounding", "effective", "permitted"] {
                assert_eq!(v["process"]["capabilities"][set], caps, "{set}");
            }
            assert!(v["process"]["capabilities"].get("ambient").is_none());
            assert!(
                v["linux"]["maskedPaths"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("/sys/devices/virtual/powercap"))
            );
            assert_eq!(v["root"]["readonly"], true);

            let compat: Value =
                serde_json::from_str(&text(Flavor::RuncCompat, rootless, false)).unwrap();
            assert!(compat["linux"].get("seccomp").is_none());
            assert_eq!(compat["ociVersion"], RUNC_SPEC_VERSION);
            assert_eq!(compat["process"]["capabilities"]["ambient"], caps);
            assert_eq!(compat["hostname"], "runc");
        }
    }

    /// Written as runc writes: tabs, `ociVersion` first, and read back as the same config.
    /// The tab indent is serde_json's `PrettyFormatter` with a tab, byte for byte, also for
    /// strings holding brackets, commas, colons, quotes and backslashes.
    #[test]
    fn indented_as_serde_jsons_pretty_writer() {
        fn pretty(v: &impl Serialize) -> String {
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            v.serialize(&mut ser).unwrap();
            String::from_utf8(out).unwrap()
        }
        let tricky = json!({
            "a": [], "b": {}, "c": [{}, [], [[]]], "d": "x{[,:]}\"\\\"y\\", "e": [1, -2.5, true, null],
            "f": {"g": {"h": ["i", {"j": "k"}]}}, "{": "}", "u": "\u{1}é",
        });
        assert_eq!(
            indent_with_tabs(&serde_json::to_vec(&tricky).unwrap()),
            pretty(&tricky)
        );
        for flavor in [Flavor::Locked, Flavor::RuncCompat] {
            for rootless in [None, Some((1000, 1000))] {
                for v2 in [false, true] {
                    let spec = spec(flavor, rootless, v2);
                    assert_eq!(text(flavor, rootless, v2), pretty(&spec));
                }
            }
        }
    }

    #[test]
    fn written_as_runc_writes_and_reads_back() {
        for flavor in [Flavor::Locked, Flavor::RuncCompat] {
            for rootless in [None, Some((1000, 1000))] {
                for v2 in [false, true] {
                    let written = text(flavor, rootless, v2);
                    assert!(written.starts_with("{\n\t\"ociVersion\""), "{written}");
                    let back: Spec = serde_json::from_str(&written).unwrap();
                    assert_eq!(back, spec(flavor, rootless, v2));
                }
            }
        }
        let rl = text(Flavor::Locked, Some((1000, 1000)), true);
        assert!(rl.contains("\"user\"") && !rl.contains("\"network\"") && !rl.contains("gid=5"));
    }

    /// `--runc-compat` is runc 1.1's `spec` and `spec --rootless` (run as root on a cgroup v1
    /// host: `tests/fixtures/runtime-spec/make.sh`) byte for byte: the shared types write
    /// runc's field order and the capability sets in a fixed order.
    #[test]
    fn runc_compat_is_runcs_fixture_byte_for_byte() {
        let runc = include_str!("../../../tests/fixtures/runtime-spec/runc.json");
        assert_eq!(text(Flavor::RuncCompat, None, false), runc);
        let rootless = include_str!("../../../tests/fixtures/runtime-spec/runc-rootless.json");
        assert_eq!(text(Flavor::RuncCompat, Some((0, 0)), false), rootless);
    }

    /// runc's `specconv.ToRootless`, field by field (the e2e test compares the whole file
    /// with `runc spec --rootless` run by the same user).
    #[test]
    fn rootless_spec_is_runcs() {
        let root = value(None, false);
        for v2 in [false, true] {
            let rl = value(Some((1234, 5678)), v2);
            assert_eq!(
                rl["linux"]["uidMappings"],
                json!([{"containerID": 0, "hostID": 1234, "size": 1}])
            );
            assert_eq!(
                rl["linux"]["gidMappings"],
                json!([{"containerID": 0, "hostID": 5678, "size": 1}])
            );
            // network dropped, user appended last; the cgroup namespace only on v2 hosts
            let mut ns = vec!["pid", "ipc", "uts", "mount"];
            if v2 {
                ns.push("cgroup");
            }
            ns.push("user");
            let want: Vec<Value> = ns.iter().map(|t| json!({"type": t})).collect();
            assert_eq!(rl["linux"]["namespaces"], Value::Array(want));
            // no cgroup resources
            assert!(rl["linux"].get("resources").is_none());
            // mounts: /sys becomes a read-only rbind, uid=/gid= options go, the rest stays
            let mounts = rl["mounts"].as_array().unwrap();
            let root_mounts = root["mounts"].as_array().unwrap();
            assert_eq!(mounts.len(), root_mounts.len());
            for (m, r) in mounts.iter().zip(root_mounts) {
                if m["destination"] == "/sys" {
                    assert_eq!(
                        m,
                        &json!({"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
                    );
                    continue;
                }
                let kept: Vec<&Value> = r["options"]
                    .as_array()
                    .map(|o| {
                        o.iter()
                            .filter(|o| {
                                let o = o.as_str().unwrap();
                                !o.starts_with("uid=") && !o.starts_with("gid=")
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let got: Vec<&Value> = m["options"]
                    .as_array()
                    .map(|o| o.iter().collect())
                    .unwrap_or_default();
                assert_eq!(got, kept, "{}", m["destination"]);
                assert_eq!(m["type"], r["type"]);
                assert_eq!(m["source"], r["source"]);
            }
            // the process, root, hostname and paths are the root spec's
            for key in ["process", "root", "hostname"] {
                assert_eq!(rl[key], root[key], "{key}");
            }
            for key in ["maskedPaths", "readonlyPaths"] {
                assert_eq!(rl["linux"][key], root["linux"][key], "{key}");
            }
        }
    }
}
