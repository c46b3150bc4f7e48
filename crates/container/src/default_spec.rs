//! The `config.json` that `spec` writes, and its rootless variant, in two flavours:
//!
//! - [`Flavor::Locked`] (the default): runc's example locked down as berth runs containers
//!   by default: Docker's default seccomp profile ([`crate::default_seccomp`]),
//!   `noNewPrivileges`, runc's three capabilities (CAP_AUDIT_WRITE, CAP_KILL,
//!   CAP_NET_BIND_SERVICE; bounding, effective and permitted, none inheritable or
//!   ambient), Docker's masked and read-only paths, a read-only root, all devices denied,
//!   and the pid, network, ipc, uts and mount namespaces (and cgroup on cgroup v2 hosts).
//! - [`Flavor::RuncCompat`] (`--runc-compat`): what the runc this was tested beside
//!   (1.1.5) writes, byte for byte: its spec version, the caps listed as ambient too, no
//!   seccomp.
//!
//! Fields are emitted in runc's order, indented with tabs as runc does.

use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    oci_version: &'static str,
    process: Process,
    root: Root,
    hostname: &'static str,
    mounts: Vec<Mount>,
    linux: Linux,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    terminal: bool,
    user: User,
    args: Vec<&'static str>,
    env: Vec<&'static str>,
    cwd: &'static str,
    capabilities: Caps,
    rlimits: Vec<Rlimit>,
    no_new_privileges: bool,
}

#[derive(Serialize)]
struct User {
    uid: u32,
    gid: u32,
}

#[derive(Serialize)]
struct Caps {
    bounding: Vec<&'static str>,
    effective: Vec<&'static str>,
    permitted: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ambient: Vec<&'static str>,
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    typ: &'static str,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: &'static str,
    readonly: bool,
}

#[derive(Serialize)]
struct Mount {
    destination: &'static str,
    #[serde(rename = "type")]
    typ: &'static str,
    source: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(rename = "uidMappings", skip_serializing_if = "Vec::is_empty")]
    uid_mappings: Vec<IdMap>,
    #[serde(rename = "gidMappings", skip_serializing_if = "Vec::is_empty")]
    gid_mappings: Vec<IdMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    namespaces: Vec<Ns>,
    masked_paths: Vec<&'static str>,
    readonly_paths: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seccomp: Option<crate::default_seccomp::Seccomp>,
}

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

/// Docker's masked paths (moby `oci/defaults.go`, 28.x): runc's plus /proc/interrupts and
/// /sys/devices/virtual/powercap (RAPL energy counters, a side channel: CVE-2020-8694).
const LOCKED_MASKED_PATHS: &[&str] = &[
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

#[derive(Serialize)]
struct IdMap {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

#[derive(Serialize)]
struct Resources {
    devices: Vec<DeviceRule>,
}

#[derive(Serialize)]
struct DeviceRule {
    allow: bool,
    access: &'static str,
}

#[derive(Serialize)]
struct Ns {
    #[serde(rename = "type")]
    typ: &'static str,
}

fn mount(
    destination: &'static str,
    typ: &'static str,
    source: &'static str,
    options: &[&'static str],
) -> Mount {
    Mount {
        destination,
        typ,
        source,
        options: options.to_vec(),
    }
}

/// The default config (locked down); `rootless` maps the caller's `uid`/`gid` to root.
pub fn default_spec(rootless: Option<(u32, u32)>, cgroup_v2: bool) -> String {
    spec(Flavor::Locked, rootless, cgroup_v2)
}

/// The config `spec` writes in `flavor`; `rootless` maps the caller's `uid`/`gid` to root.
pub fn spec(flavor: Flavor, rootless: Option<(u32, u32)>, cgroup_v2: bool) -> String {
    let runc = flavor == Flavor::RuncCompat;
    let caps = vec!["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let mut namespaces: Vec<&'static str> = vec!["pid", "network", "ipc", "uts", "mount"];
    if cgroup_v2 {
        namespaces.push("cgroup");
    }
    let mut mounts = vec![
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
    ];
    let mut linux = Linux {
        uid_mappings: Vec::new(),
        gid_mappings: Vec::new(),
        resources: Some(Resources {
            devices: vec![DeviceRule {
                allow: false,
                access: "rwm",
            }],
        }),
        namespaces: Vec::new(),
        masked_paths: vec![
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
        ],
        readonly_paths: vec![
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ],
        seccomp: None,
    };
    if !runc {
        linux.masked_paths = LOCKED_MASKED_PATHS.to_vec();
        linux.seccomp = Some(crate::default_seccomp::profile());
    }
    if let Some((uid, gid)) = rootless {
        namespaces.retain(|n| *n != "network" && *n != "user");
        namespaces.push("user");
        linux.uid_mappings = vec![IdMap {
            container_id: 0,
            host_id: uid,
            size: 1,
        }];
        linux.gid_mappings = vec![IdMap {
            container_id: 0,
            host_id: gid,
            size: 1,
        }];
        for m in &mut mounts {
            if m.destination == "/sys" {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
            } else {
                m.options
                    .retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
            }
        }
        linux.resources = None;
    }
    linux.namespaces = namespaces.into_iter().map(|typ| Ns { typ }).collect();
    let spec = Spec {
        oci_version: if runc {
            RUNC_SPEC_VERSION
        } else {
            LOCKED_SPEC_VERSION
        },
        process: Process {
            terminal: true,
            user: User { uid: 0, gid: 0 },
            args: vec!["sh"],
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            cwd: "/",
            capabilities: Caps {
                bounding: caps.clone(),
                effective: caps.clone(),
                permitted: caps.clone(),
                // runc 1.1 lists them as ambient too (which the kernel refuses to raise
                // without them inheritable; runc 1.2 dropped them)
                ambient: if runc { caps } else { Vec::new() },
            },
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE",
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
        },
        root: Root {
            path: "rootfs",
            readonly: true,
        },
        hostname: if runc { "runc" } else { "berth" },
        mounts,
        linux,
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // serialising plain structs of strings and numbers cannot fail
    let _ = spec.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The locked-down default: Docker's seccomp profile (compiled by our own compiler,
    /// every name known), no new privileges, runc's three caps and none ambient,
    /// Docker's masked paths; `--runc-compat` has none of the additions.
    #[test]
    fn the_default_is_locked_down_and_runc_compat_is_not() {
        for rootless in [None, Some((1000, 1000))] {
            let text = default_spec(rootless, false);
            let spec: berth_runtime_spec::Spec = serde_json::from_str(&text).unwrap();
            let linux = spec.linux.as_ref().unwrap();
            let sc = linux.seccomp.as_ref().expect("a seccomp profile");
            let filter = crate::seccomp::compile(sc).unwrap();
            assert!(
                filter.unknown_syscalls().is_empty(),
                "names no table knows: {:?}",
                filter.unknown_syscalls()
            );
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
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

            let compat: serde_json::Value =
                serde_json::from_str(&spec_of(Flavor::RuncCompat, rootless)).unwrap();
            assert!(compat["linux"].get("seccomp").is_none());
            assert_eq!(compat["ociVersion"], RUNC_SPEC_VERSION);
            assert_eq!(compat["process"]["capabilities"]["ambient"], caps);
            assert_eq!(compat["hostname"], "runc");
        }
    }

    fn spec_of(flavor: Flavor, rootless: Option<(u32, u32)>) -> String {
        spec(flavor, rootless, false)
    }

    #[test]
    fn parses_as_a_valid_config() {
        for rootless in [None, Some((1000, 1000))] {
            let text = default_spec(rootless, false);
            let spec: berth_runtime_spec::Spec = serde_json::from_str(&text).unwrap();
            crate::spec::validate(&spec).unwrap();
            assert!(text.starts_with("{\n\t\"ociVersion\""));
        }
        let rl = default_spec(Some((1000, 1000)), true);
        assert!(rl.contains("\"user\"") && !rl.contains("\"network\"") && !rl.contains("gid=5"));
    }

    /// runc's `specconv.ToRootless`, field by field (the e2e test compares the whole file
    /// with `runc spec --rootless` run by the same user).
    #[test]
    fn rootless_spec_is_runcs() {
        use serde_json::Value;
        let root: Value = serde_json::from_str(&default_spec(None, false)).unwrap();
        for v2 in [false, true] {
            let rl: Value = serde_json::from_str(&default_spec(Some((1234, 5678)), v2)).unwrap();
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
