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

/// Namespace types as runtime-spec names them, with their name under /proc/<pid>/ns.
const NAMESPACES: &[(&str, &str)] = &[
    ("cgroup", "cgroup"),
    ("ipc", "ipc"),
    ("mount", "mnt"),
    ("network", "net"),
    ("pid", "pid"),
    ("time", "time"),
    ("user", "user"),
    ("uts", "uts"),
];

/// The namespace types this kernel has: those with a /proc/self/ns entry (time came in
/// Linux 5.6, cgroup in 4.6). When /proc/self/ns cannot be read at all, every type but
/// time is assumed (they all predate any kernel the runtime runs on).
fn kernel_namespaces(has: &dyn Fn(&str) -> Option<bool>) -> Vec<&'static str> {
    NAMESPACES
        .iter()
        .filter(|(_, proc)| has(proc).unwrap_or(*proc != "time"))
        .map(|(name, _)| *name)
        .collect()
}

/// Whether /proc/self/ns/<name> exists; `None` when /proc/self/ns cannot be read.
fn proc_has_namespace(name: &str) -> Option<bool> {
    let dir = std::path::Path::new("/proc/self/ns");
    if !dir.is_dir() {
        return None;
    }
    Some(dir.join(name).exists())
}

/// The features document.
pub fn features() -> serde_json::Value {
    features_with(&proc_has_namespace)
}

fn features_with(has_namespace: &dyn Fn(&str) -> Option<bool>) -> serde_json::Value {
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
            "namespaces": kernel_namespaces(has_namespace),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(v: &serde_json::Value) -> Vec<String> {
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn time_is_listed_only_where_the_kernel_has_it() {
        let with = listed(&features_with(&|_| Some(true)));
        assert!(with.contains(&"time".to_owned()), "{with:?}");
        assert_eq!(with.len(), NAMESPACES.len());
        let without = listed(&features_with(&|n| Some(n != "time")));
        assert!(!without.contains(&"time".to_owned()), "{without:?}");
        assert!(without.contains(&"network".to_owned()), "{without:?}");
        // no /proc: the old types are assumed, time is not
        let blind = listed(&features_with(&|_| None));
        assert!(!blind.contains(&"time".to_owned()), "{blind:?}");
        assert_eq!(blind.len(), NAMESPACES.len() - 1);
    }

    #[test]
    fn this_kernel_is_reported_truthfully() {
        let has_time = std::path::Path::new("/proc/self/ns/time").exists();
        let v = listed(&features());
        assert_eq!(v.contains(&"time".to_owned()), has_time, "{v:?}");
    }
}
