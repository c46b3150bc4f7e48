//! Namespaces seen from the inside: pids, hostname, mounts, and the process the config
//! describes (env, cwd, user, rlimits).

use berth_test_support::{Bundle, ContainerGuard, DEFAULT_CAPS};
use serde_json::{Value, json};

use super::{probe, runtime_test};

runtime_test! {
    /// In its own pid namespace the probe is pid 1 and sees no other process.
    fn probe_is_pid_1_and_sees_only_its_own_pids(rt) {
        let mut b = Bundle::new();
        b.probe(&["pids", "self"]);
        let v = probe(rt, &b);
        assert_eq!(v["self"]["pid"], 1, "{v}");
        assert_eq!(v["pids"], json!([1]), "{v}");
    }
}

runtime_test! {
    /// The UTS namespace carries the config's hostname, not the host's.
    fn container_has_the_configured_hostname(rt) {
        let mut b = Bundle::new();
        b.hostname("berth-uts-test").probe(&["identity"]);
        let v = probe(rt, &b);
        assert_eq!(v["identity"]["hostname"], "berth-uts-test", "{v}");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_ne!(host.trim(), "berth-uts-test");
    }
}

/// The destinations of the config's `mounts`.
fn config_destinations(b: &Bundle) -> Vec<String> {
    b.config()["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_owned())
        .collect()
}

/// Every mount point the probe listed is `/` or at or below one of `dests`.
fn assert_only_config_mounts(mounts: &[Value], dests: &[String]) {
    for m in mounts {
        let mp = m["mount_point"].as_str().unwrap();
        assert!(
            mp == "/" || dests.iter().any(|d| under(mp, d)),
            "{mp} is not from the config (a host mount leaked?): {m}"
        );
    }
}

/// Whether `mount_point` is `dest` or below it.
fn under(mount_point: &str, dest: &str) -> bool {
    mount_point == dest
        || mount_point
            .strip_prefix(dest)
            .is_some_and(|rest| rest.starts_with('/') || dest == "/")
}

runtime_test! {
    /// `create --no-pivot` (MS_MOVE + chroot instead of pivot_root, for root filesystems on
    /// ramfs) isolates as pivot_root does: pid 1 of its own namespace, only the rootfs and
    /// the config's mounts in its table, and with CAP_SYS_CHROOT the chroot-and-walk-up
    /// escape still ends at its own root. (berth also detaches the host's procfs and sysfs
    /// left behind the chroot, as runc does; a unit test in rootfs checks which.)
    fn no_pivot_container_is_isolated_as_with_pivot_root(rt) {
        let mut b = Bundle::new();
        let mut caps = DEFAULT_CAPS.to_vec();
        caps.push("CAP_SYS_CHROOT");
        b.capabilities(&caps).probe(&["pids", "mounts", "chroot-escape"]);
        let dests = config_destinations(&b);
        let (c, out) = ContainerGuard::try_create_with(rt, &b, &["--no-pivot"]);
        assert!(out.success(), "{out}");
        c.start();
        let v = c.wait_stdout_json(std::time::Duration::from_secs(30));
        assert_eq!(v["pids"], json!([1]), "{v}");
        let mounts = v["mounts"].as_array().unwrap();
        assert!(!mounts.is_empty(), "{v}");
        assert_only_config_mounts(mounts, &dests);
        assert_eq!(v["chroot-escape"]["ok"], true, "{v}");
        assert_eq!(v["chroot-escape"]["escaped"], false, "{v}");
    }
}

runtime_test! {
    /// The container's mount table holds its rootfs, the config's mounts and what the
    /// runtime puts below them (masks, cgroup hierarchies, /dev nodes), nothing from the
    /// host: every mount point is `/` or at or below a configured destination.
    fn no_host_mounts_are_visible(rt) {
        let mut b = Bundle::new();
        b.probe(&["mounts"]);
        let dests = config_destinations(&b);
        let v = probe(rt, &b);
        let mounts = v["mounts"].as_array().unwrap();
        assert!(!mounts.is_empty(), "{v}");
        let root: Vec<&Value> = mounts.iter().filter(|m| m["mount_point"] == "/").collect();
        assert_eq!(root.len(), 1, "one root mount: {v}");
        assert!(
            root[0]["root"].as_str().unwrap().ends_with("/rootfs"),
            "the root is the bundle's rootfs: {}",
            root[0]
        );
        assert_only_config_mounts(mounts, &dests);
        // and the host's own mount points are absent (/work is this repository's host
        // mount on the CI machines; /boot and /home on most others)
        for host_only in ["/work", "/boot", "/home", "/etc/hostname", "/etc/resolv.conf"] {
            assert!(
                mounts.iter().all(|m| m["mount_point"] != host_only),
                "{host_only} is visible inside"
            );
        }
    }
}

runtime_test! {
    /// process.env, cwd, user (with additional gids) and rlimits reach the process.
    fn process_gets_the_configured_env_cwd_user_and_rlimits(rt) {
        let mut b = Bundle::new();
        b.env("BERTH_PROBE=1")
            .cwd("/tmp")
            .user(1000, 1001, &[1002, 1003])
            .probe(&["env", "cwd", "identity", "rlimits"]);
        let v = probe(rt, &b);
        assert_eq!(v["env"]["BERTH_PROBE"], "1", "{v}");
        assert_eq!(v["env"]["TERM"], "xterm", "{v}");
        assert_eq!(v["cwd"], "/tmp");
        let id = &v["identity"];
        assert_eq!((id["uid"].clone(), id["euid"].clone()), (json!(1000), json!(1000)), "{id}");
        assert_eq!((id["gid"].clone(), id["egid"].clone()), (json!(1001), json!(1001)), "{id}");
        let groups = id["groups"].as_array().unwrap();
        for g in [1002, 1003] {
            assert!(groups.contains(&json!(g)), "additional gid {g}: {id}");
        }
        assert_eq!(v["rlimits"]["RLIMIT_NOFILE"], json!({"soft": 1024, "hard": 1024}));
        assert!(
            v["env"]["PATH"].as_str().unwrap().split(':').any(|p| p == "/bin"),
            "{v}"
        );
    }
}

runtime_test! {
    /// sysctl, oomScoreAdj, user.umask and rlimits from the config are what the process
    /// sees.
    fn process_gets_the_configured_sysctls_oom_score_adj_umask_and_rlimits(rt) {
        let mut b = Bundle::new();
        b.config_mut()["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        b.config_mut()["process"]["oomScoreAdj"] = json!(123);
        b.config_mut()["process"]["user"]["umask"] = json!(0o027);
        b.config_mut()["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
        b.probe(&["sysctl:net.ipv4.ip_forward", "oom_score_adj", "umask", "rlimits"]);
        let v = probe(rt, &b);
        assert_eq!(v["sysctl:net.ipv4.ip_forward"]["value"], "1", "{v}");
        assert_eq!(v["oom_score_adj"], 123, "{v}");
        assert_eq!(v["umask"], 0o027, "{v}");
        assert_eq!(v["rlimits"]["RLIMIT_NOFILE"], json!({"soft": 512, "hard": 2048}));
        assert_eq!(v["rlimits"]["RLIMIT_CORE"], json!({"soft": 0, "hard": 0}));
    }
}

runtime_test! {
    /// The process sits in the cgroups the config's cgroupsPath names (no cgroup
    /// namespace in the default config, so the paths are the host's).
    fn process_is_in_the_configured_cgroups(rt) {
        let mut b = Bundle::new();
        b.probe(&["cgroup"]);
        let path = b.cgroups_path().unwrap();
        let v = probe(rt, &b);
        let entries = v["cgroup"].as_array().unwrap();
        for controller in ["pids", "memory", "cpu"] {
            let listed = |e: &&Value| {
                e["controllers"]
                    .as_array()
                    .is_some_and(|c| c.contains(&json!(controller)))
            };
            // on a pure v2 host there is one line, hierarchy 0, with no controllers
            let e = entries
                .iter()
                .find(listed)
                .or_else(|| entries.iter().find(|e| e["id"] == 0))
                .unwrap_or_else(|| panic!("{v}"));
            assert_eq!(e["path"], path.as_str(), "{controller}: {v}");
        }
    }
}
