//! The `config.json` that `spec` writes: runc's example (runc 1.2+: no ambient caps; a
//! cgroup namespace on cgroup v2 hosts), and its rootless variant. Fields are emitted in
//! runc's order, indented with tabs as runc does.

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
}

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

/// The default config; `rootless` maps the caller's `uid`/`gid` to root.
pub fn default_spec(rootless: Option<(u32, u32)>, cgroup_v2: bool) -> String {
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
    };
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
        oci_version: crate::SPEC_VERSION,
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
                permitted: caps,
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
        hostname: "runc",
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

    #[test]
    fn parses_as_a_valid_config() {
        for rootless in [None, Some((1000, 1000))] {
            let text = default_spec(rootless, false);
            let spec: berth_oci::runtime::Spec = serde_json::from_str(&text).unwrap();
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
        use serde_json::{Value, json};
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
