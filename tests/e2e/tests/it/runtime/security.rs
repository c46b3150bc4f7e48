//! Lock-down seen from the inside: what a default container cannot do, capability sets,
//! no_new_privs, seccomp, read-only and masked paths, and user-namespaced root seen from
//! the host.

use std::time::Duration;

use berth_test_support::{Bundle, ContainerGuard, DEFAULT_CAPS, wait_until};
use serde_json::{Value, json};

use super::{host_probe, outcome, probe, runtime_test, strings};

/// x86_64 system call numbers the seccomp test uses.
const SYS_MKDIR: i64 = 83;
const SYS_MKDIRAT: i64 = 258;

runtime_test! {
    /// Without CAP_SYS_ADMIN (runc's default set) mount(2) and umount(2) are refused.
    fn default_container_cannot_mount_or_unmount(rt) {
        let mut b = Bundle::new();
        b.probe(&["mount-tmpfs:/mnt", "umount:/proc"]);
        let v = probe(rt, &b);
        assert_eq!(outcome(&v, "mount-tmpfs:/mnt"), "EPERM", "{v}");
        assert_eq!(outcome(&v, "umount:/proc"), "EPERM", "{v}");
    }
}

runtime_test! {
    /// Without CAP_SYS_MODULE neither init_module(2) nor finit_module(2) gets past the
    /// capability check (EPERM). On a kernel built without module support (ENOSYS on the
    /// host too, as on this project's CI VM) the calls cannot succeed anywhere; the test
    /// then checks the container has no CAP_SYS_MODULE in any set, and says so.
    fn default_container_cannot_load_kernel_modules(rt) {
        let mut b = Bundle::new();
        b.probe(&["init-module", "finit-module", "caps"]);
        let v = probe(rt, &b);
        let host = host_probe(&["init-module", "finit-module"]);
        for step in ["init-module", "finit-module"] {
            if outcome(&host, step) == "ENOSYS" {
                eprintln!(
                    "NOTE {}: this kernel has no module support ({step} is ENOSYS on the \
                     host); checking the capability instead",
                    rt.name()
                );
                assert_eq!(outcome(&v, step), "ENOSYS", "{v}");
            } else {
                assert_eq!(outcome(&v, step), "EPERM", "{v}");
            }
        }
        for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
            assert!(!strings(&v["caps"][set]).contains(&"CAP_SYS_MODULE".to_owned()), "{v}");
        }
    }
}

runtime_test! {
    /// /proc/sysrq-trigger is a read-only path: it cannot even be opened for writing (the
    /// probe never writes to it). On a kernel without CONFIG_MAGIC_SYSRQ the file does not
    /// exist on the host either (ENOENT inside, said so); the read-only mechanism is then
    /// shown on /proc/sys, which every kernel has.
    fn default_container_cannot_open_sysrq_trigger_for_writing(rt) {
        let mut b = Bundle::new();
        b.probe(&["open-write:/proc/sysrq-trigger", "open-write:/proc/sys/kernel/hostname"]);
        let v = probe(rt, &b);
        if std::path::Path::new("/proc/sysrq-trigger").exists() {
            assert_eq!(outcome(&v, "open-write:/proc/sysrq-trigger"), "EROFS", "{v}");
        } else {
            eprintln!(
                "NOTE {}: this kernel has no /proc/sysrq-trigger (no CONFIG_MAGIC_SYSRQ)",
                rt.name()
            );
            assert_eq!(outcome(&v, "open-write:/proc/sysrq-trigger"), "ENOENT", "{v}");
        }
        assert_eq!(outcome(&v, "open-write:/proc/sys/kernel/hostname"), "EROFS", "{v}");
    }
}

runtime_test! {
    /// Without CAP_MKNOD, CAP_SYS_ADMIN and CAP_SYS_CHROOT: no device nodes, no
    /// sethostname, no chroot; and the container's own binary cannot be opened for
    /// writing through /proc/self/exe (the CVE-2019-5736 class).
    fn default_container_cannot_mknod_sethostname_chroot_or_write_its_exe(rt) {
        let mut b = Bundle::new();
        b.probe(&["mknod:/dev/probe-null", "sethostname", "chroot-escape", "exe-write"]);
        let v = probe(rt, &b);
        assert_eq!(outcome(&v, "mknod:/dev/probe-null"), "EPERM", "{v}");
        assert_eq!(outcome(&v, "sethostname"), "EPERM", "{v}");
        assert_eq!(outcome(&v, "chroot-escape"), "EPERM", "{v}");
        assert_eq!(v["chroot-escape"]["escaped"], false, "{v}");
        assert_eq!(outcome(&v, "exe-write"), "ETXTBSY", "{v}");
    }
}

runtime_test! {
    /// Given CAP_SYS_CHROOT, the classic chroot-and-walk-up escape still ends at the
    /// container's root: the runtime used pivot_root and left no way up to the host's.
    fn chroot_escape_stays_inside_the_container_root(rt) {
        let mut b = Bundle::new();
        let mut caps = DEFAULT_CAPS.to_vec();
        caps.push("CAP_SYS_CHROOT");
        b.capabilities(&caps).probe(&["chroot-escape"]);
        let v = probe(rt, &b);
        assert_eq!(outcome(&v, "chroot-escape"), "ok", "{v}");
        assert_eq!(v["chroot-escape"]["escaped"], false, "{v}");
    }
}

/// `names` in the kernel's bit order (as the probe lists them).
fn in_bit_order(names: &[&str]) -> Vec<String> {
    berth_container::caps::NAMES
        .iter()
        .map(|c| format!("CAP_{c}"))
        .filter(|c| names.contains(&c.as_str()))
        .collect()
}

#[track_caller]
fn assert_caps(v: &Value, expected: &[(&str, &[&str])]) {
    for (set, caps) in expected {
        assert_eq!(
            strings(&v["caps"][set]),
            in_bit_order(caps),
            "{set}: {}",
            v["caps"]
        );
    }
}

runtime_test! {
    /// runc's default set: bounding = effective = permitted = {AUDIT_WRITE, KILL,
    /// NET_BIND_SERVICE}, nothing inheritable or ambient.
    fn default_capability_sets_equal_the_config(rt) {
        let mut b = Bundle::new();
        b.probe(&["caps"]);
        let v = probe(rt, &b);
        assert_caps(&v, &[
            ("bounding", &DEFAULT_CAPS),
            ("effective", &DEFAULT_CAPS),
            ("permitted", &DEFAULT_CAPS),
            ("inheritable", &[]),
            ("ambient", &[]),
        ]);
    }
}

runtime_test! {
    /// A custom set for root: exactly those capabilities, in bounding, effective and
    /// permitted.
    fn custom_capability_sets_equal_the_config(rt) {
        let caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_SETUID"];
        let mut b = Bundle::new();
        b.capabilities(&caps).probe(&["caps"]);
        let v = probe(rt, &b);
        assert_caps(&v, &[
            ("bounding", &caps),
            ("effective", &caps),
            ("permitted", &caps),
            ("inheritable", &[]),
            ("ambient", &[]),
        ]);
    }
}

runtime_test! {
    /// Ambient capabilities survive the exec of a non-root process: with every set
    /// {CHOWN, NET_BIND_SERVICE}, uid 1000 ends with that in all five.
    fn ambient_capabilities_reach_a_non_root_process(rt) {
        let caps = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"];
        let mut b = Bundle::new();
        b.user(1000, 1000, &[]);
        for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
            b.capability_set(set, &caps);
        }
        b.probe(&["caps", "identity"]);
        let v = probe(rt, &b);
        assert_eq!(v["identity"]["euid"], 1000);
        assert_caps(&v, &[
            ("bounding", &caps),
            ("effective", &caps),
            ("permitted", &caps),
            ("inheritable", &caps),
            ("ambient", &caps),
        ]);
    }
}

runtime_test! {
    /// Ambient capabilities that are not inheritable (runc 1.1's `spec` writes its defaults
    /// so) cannot be raised: every runtime runs the container anyway with an empty ambient
    /// set and the other sets as configured; berth-runtime says so in a warning per capability.
    fn ambient_capabilities_without_inheritable_are_skipped(rt) {
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let mut b = Bundle::new();
        for set in ["bounding", "effective", "permitted", "ambient"] {
            b.capability_set(set, &caps);
        }
        b.capability_set("inheritable", &[]);
        b.probe(&["caps"]);
        let out = rt.run(&b);
        assert!(out.success(), "{} failed:\n{out}", rt.name());
        assert_caps(&out.json(), &[
            ("bounding", &caps),
            ("effective", &caps),
            ("permitted", &caps),
            ("inheritable", &[]),
            ("ambient", &[]),
        ]);
        if rt.name() == "berth-runtime" {
            let err = out.stderr_str();
            for c in caps {
                assert!(
                    err.contains(&format!("ambient capability {c} is not both permitted and inheritable")),
                    "no warning for {c} in:\n{err}"
                );
            }
        }
    }
}

runtime_test! {
    /// noNewPrivileges: true sets no_new_privs; false leaves it clear (so the probe reads
    /// the flag, not a constant).
    fn no_new_privs_follows_the_config(rt) {
        let mut b = Bundle::new();
        b.no_new_privileges(true).probe(&["nnp"]);
        assert_eq!(probe(rt, &b)["nnp"], true);
        let mut b = Bundle::new();
        b.no_new_privileges(false).probe(&["nnp"]);
        assert_eq!(probe(rt, &b)["nnp"], false);
    }
}

runtime_test! {
    /// A seccomp profile denying mkdirat with errnoRet 38 makes mkdirat fail with ENOSYS
    /// (by name through libc and by number), while mkdir, allowed, reaches the kernel
    /// (EFAULT for a null path); the probe runs in seccomp filter mode.
    fn seccomp_denies_a_syscall_with_the_configured_errno(rt) {
        let mut b = Bundle::new();
        b.seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }));
        let mkdirat = format!("syscall:{SYS_MKDIRAT}:-100:0:0");
        let mkdir = format!("syscall:{SYS_MKDIR}:0:0");
        b.probe(&["seccomp", "mkdir:/tmp/probe-dir", &mkdirat, &mkdir]);
        let v = probe(rt, &b);
        assert_eq!(v["seccomp"]["mode_name"], "filter", "{v}");
        assert_eq!(outcome(&v, "mkdir:/tmp/probe-dir"), "ENOSYS", "{v}");
        assert_eq!(outcome(&v, &mkdirat), "ENOSYS", "{v}");
        assert_eq!(outcome(&v, &mkdir), "EFAULT", "{v}");

        // without the profile the same calls reach the kernel
        let mut b = Bundle::new();
        b.probe(&["seccomp", "mkdir:/tmp/probe-dir", &mkdirat]);
        let v = probe(rt, &b);
        assert_eq!(v["seccomp"]["mode_name"], "disabled", "{v}");
        assert_eq!(outcome(&v, "mkdir:/tmp/probe-dir"), "ok", "{v}");
        assert_eq!(outcome(&v, &mkdirat), "EFAULT", "{v}");
    }
}

runtime_test! {
    /// root.readonly: the rootfs refuses new files (EROFS) while a tmpfs mounted on it
    /// (/dev/shm) still takes them; a writable rootfs takes them too.
    fn readonly_rootfs_refuses_writes(rt) {
        let mut b = Bundle::new();
        b.readonly_rootfs(true)
            .probe(&["create:/probe-file", "create:/tmp/probe-file", "create:/dev/shm/probe-file"]);
        let v = probe(rt, &b);
        assert_eq!(outcome(&v, "create:/probe-file"), "EROFS", "{v}");
        assert_eq!(outcome(&v, "create:/tmp/probe-file"), "EROFS", "{v}");
        assert_eq!(outcome(&v, "create:/dev/shm/probe-file"), "ok", "{v}");
        let mut b = Bundle::new();
        b.readonly_rootfs(false).probe(&["create:/probe-file"]);
        assert_eq!(outcome(&probe(rt, &b), "create:/probe-file"), "ok");
    }
}

runtime_test! {
    /// maskedPaths: a masked file reads empty and a masked directory lists empty, where the
    /// same container without masks sees the host's content; readonlyPaths refuse writes.
    fn masked_paths_read_empty_and_readonly_paths_refuse_writes(rt) {
        let steps = [
            "read:/proc/timer_list",
            "list:/sys/firmware",
            "open-write:/proc/sys/kernel/domainname",
        ];
        let mut b = Bundle::new();
        b.probe(&steps);
        let v = probe(rt, &b);
        assert_eq!(v["read:/proc/timer_list"]["bytes"], 0, "{v}");
        assert_eq!(v["list:/sys/firmware"]["entries"], json!([]), "{v}");
        assert_eq!(outcome(&v, "open-write:/proc/sys/kernel/domainname"), "EROFS", "{v}");

        let mut b = Bundle::new();
        b.masked_paths(&[]).readonly_paths(&[]).probe(&steps);
        let v = probe(rt, &b);
        assert!(v["read:/proc/timer_list"]["bytes"].as_u64().unwrap() > 0, "{v}");
        assert!(!strings(&v["list:/sys/firmware"]["entries"]).is_empty(), "{v}");
    }
}

runtime_test! {
    /// With a user namespace mapping 0 → 100000, the container's root is uid 0 inside
    /// and uid 100000 in the host's /proc/<pid>/status.
    fn user_namespaced_root_is_uid_100000_on_the_host(rt) {
        let mut b = Bundle::new();
        b.user_namespace(100_000, 65_536)
            .probe(&["identity", "wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        c.start();
        let pid = c.pid();
        let status_path = format!("/proc/{pid}/status");
        // the uid is set before exec; wait until the process runs the probe
        let mut host_uids = String::new();
        let mut host_gids = String::new();
        let ran = wait_until(Duration::from_secs(30), || {
            let Ok(s) = std::fs::read_to_string(&status_path) else { return false };
            let field = |k: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            host_uids = field("Uid:");
            host_gids = field("Gid:");
            s.lines().any(|l| l.starts_with("Name:") && l.contains("probe"))
        });
        assert!(ran, "the container's process did not exec the probe: {status_path}");
        assert_eq!(host_uids, "100000 100000 100000 100000");
        assert_eq!(host_gids, "100000 100000 100000 100000");
        c.kill_when_waiting("TERM", Duration::from_secs(30)).assert_success();
        let v = c.wait_stdout_json(Duration::from_secs(30));
        assert_eq!(v["identity"]["uid"], 0, "{v}");
        assert_eq!(v["identity"]["uid_map"], json!([[0, 100_000, 65_536]]), "{v}");
        assert_eq!(v["identity"]["gid_map"], json!([[0, 100_000, 65_536]]), "{v}");
    }
}

runtime_test! {
    /// The process starts with stdin, stdout and stderr only: no descriptor of the runtime
    /// (state dir, cgroup dir, sync pipes) survives into the container (the
    /// CVE-2024-21626 class).
    fn no_runtime_file_descriptors_leak_into_the_container(rt) {
        let mut b = Bundle::new();
        b.probe(&["fds"]);
        let v = probe(rt, &b);
        let fds: Vec<u64> = v["fds"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["fd"].as_u64())
            .collect();
        assert_eq!(fds, [0, 1, 2], "{}", v["fds"]);
    }
}

/// An allow-list profile as older Docker-style profiles are: podman's default profile
/// (containers-common's `/usr/share/containers/seccomp.json`, the reference peer's own
/// data) reduced to its unconditional allow rule plus x86's `arch_prctl` and `modify_ldt`,
/// with `close_range` (Linux 5.9, missing from many real profiles) taken out; everything
/// else fails with EPERM, the errno the runtime must not take for a fatal error.
fn allow_list_without_close_range() -> Value {
    let path = "/usr/share/containers/seccomp.json";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (it comes with podman's containers-common package; scripts/test installs podman)")
    });
    let podman: Value = serde_json::from_str(&text).unwrap();
    let mut names: Vec<Value> = Vec::new();
    for rule in podman["syscalls"].as_array().unwrap() {
        let unconditional = rule["action"] == "SCMP_ACT_ALLOW"
            && rule
                .get("args")
                .is_none_or(|a| a.is_null() || a.as_array().is_some_and(Vec::is_empty))
            && rule.get("includes").is_none_or(|i| {
                i.as_object().is_none_or(|o| {
                    o.is_empty()
                        || o.get("arches")
                            .is_some_and(|a| a.as_array().unwrap().contains(&json!("amd64")))
                })
            })
            && rule
                .get("excludes")
                .is_none_or(|i| i.as_object().is_none_or(serde_json::Map::is_empty));
        if unconditional {
            names.extend(rule["names"].as_array().unwrap().iter().cloned());
        }
    }
    let before = names.len();
    names.retain(|n| n != "close_range");
    assert_eq!(
        names.len() + 1,
        before,
        "podman's profile allows close_range: the test takes it out"
    );
    assert!(names.contains(&json!("execve")) && names.contains(&json!("arch_prctl")));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

runtime_test! {
    /// A profile that does not allow `close_range` (EPERM for it) still runs the container,
    /// with and without no_new_privileges (the filter is loaded before the credentials
    /// change in one case, last in the other): nothing the runtime does after loading the
    /// filter may depend on a syscall the profile can deny. The process runs under the
    /// filter, and only stdio crosses into it.
    fn a_profile_without_close_range_still_runs_the_container(rt) {
        let profile = allow_list_without_close_range();
        for nnp in [false, true] {
            let mut b = Bundle::new();
            b.seccomp(profile.clone())
                .no_new_privileges(nnp)
                .probe(&["seccomp", "nnp", "fds", "syscall:436:3:100:0"]);
            let v = probe(rt, &b);
            assert_eq!(v["seccomp"]["mode_name"], "filter", "nnp={nnp}: {v}");
            assert_eq!(v["nnp"], nnp, "{v}");
            // close_range(3, 100, 0) is refused in the container, as the profile says
            assert_eq!(outcome(&v, "syscall:436:3:100:0"), "EPERM", "nnp={nnp}: {v}");
            let fds: Vec<u64> = v["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            assert_eq!(fds, [0, 1, 2], "nnp={nnp}: {v}");
        }
    }
}
