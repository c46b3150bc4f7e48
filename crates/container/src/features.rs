//! `features`: the runtime-spec "features" document — only what this runtime really does.

use serde_json::json;

/// Mount options the runtime understands (rootfs::options).
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// The features document.
pub fn features() -> serde_json::Value {
    let caps: Vec<String> = crate::caps::NAMES
        .iter()
        .map(|n| format!("CAP_{n}"))
        .collect();
    let seccomp = serde_json::to_value(crate::seccomp::features()).unwrap_or_default();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false,
            },
            "seccomp": seccomp,
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.berth.runtime.sealed-exe": "memfd",
        },
    })
}
