//! berth's side of the security-defaults table (docs/security.md, made by
//! scripts/security-defaults.sh), checked from inside a container of `build_spec`'s default
//! config run by berth-runtime, runc and crun: so that no default is loosened silently.
//! Each expected value is a cell of the table; a loosened default (a capability more, a
//! masked path less, `/proc` without `noexec`, io_uring allowed, no pids limit…) fails it.

use std::path::PathBuf;

use berth_image::spec::{IdRange, ImageConfig, RunOptions, build_spec};
use berth_test_support::{Bundle, Runtime};
use serde_json::{Value, json};

/// The user namespace the engine gives the first container (container 0 = host 100000).
pub const RANGE: IdRange = IdRange {
    host_start: 100000,
    size: 65536,
};

/// A bundle (busybox + probe) whose config is `build_spec`'s for an image running
/// `/probe STEPS` with the options `o` (the cgroups path made unique per test).
pub fn spec_bundle(steps: &[&str], o: &RunOptions) -> Bundle {
    let mut cmd = vec!["/probe"];
    cmd.extend_from_slice(steps);
    let img = ImageConfig::parse(
        json!({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": cmd}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let mut bundle = Bundle::new();
    let (mut spec, _) = build_spec(&img, &bundle.rootfs(), o).unwrap();
    if let Some(linux) = spec.linux.as_mut() {
        linux.cgroups_path = bundle.cgroups_path().map(PathBuf::from);
    }
    *bundle.config_mut() = serde_json::to_value(&spec).unwrap();
    bundle
}

pub fn defaults() -> RunOptions {
    RunOptions {
        image: "secdef".into(),
        id_range: Some(RANGE),
        ..RunOptions::default()
    }
}

pub fn runtime(name: &str) -> Runtime {
    Runtime::find(name)
        .unwrap_or_else(|| panic!("{name} not found (build -p berth-runtime-cli first)"))
}

/// The probe steps of scripts/security-defaults.sh (unshare(CLONE_NEWUSER) last: allowed,
/// it would move the probe into a new user namespace).
const STEPS: &[&str] = &[
    "identity",
    "caps",
    "nnp",
    "seccomp",
    "mounts",
    "rlimits",
    "list:/dev",
    "read:/sys/fs/cgroup/pids/pids.max",
    "read:/sys/fs/cgroup/pids.max",
    "mount-tmpfs:/mnt",
    "syscall:272:131072",
    "syscall:308:-1:0",
    "syscall:250:0:-3:0",
    "syscall:101:12:2147483647",
    "syscall:321:0:0:0",
    "syscall:298:0:0:0:-1:0",
    "syscall:425:0:0",
    "syscall:435:0:0",
    "syscall:272:268435456",
];

/// Each syscall attempt and its fate in berth's column.
const SYSCALLS: &[(&str, &str, &str)] = &[
    ("mount-tmpfs:/mnt", "mount", "EPERM"),
    ("syscall:272:268435456", "unshare(CLONE_NEWUSER)", "EPERM"),
    ("syscall:272:131072", "unshare(CLONE_NEWNS)", "EPERM"),
    ("syscall:308:-1:0", "setns", "EPERM"),
    ("syscall:250:0:-3:0", "keyctl", "EPERM"),
    // allowed by Docker's profile on kernels >= 4.8 (as in docker and podman): the kernel
    // answers for the pid that does not exist
    ("syscall:101:12:2147483647", "ptrace", "ESRCH"),
    ("syscall:321:0:0:0", "bpf", "EPERM"),
    ("syscall:298:0:0:0:-1:0", "perf_event_open", "EPERM"),
    ("syscall:425:0:0", "io_uring_setup", "EPERM"),
    // clone3's flags are in memory a filter cannot read: ENOSYS, so libc falls back to clone
    ("syscall:435:0:0", "clone3", "ENOSYS"),
];

/// Masked on every host this runs on (the others of `defaults::MASKED_PATHS` and
/// `EXTRA_MASKED_PATHS` are masked where the kernel has them).
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/keys",
    "/proc/timer_list",
    "/sys/dev/block",
    "/sys/firmware",
];
const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"];
const DEV: &[&str] = &[
    "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
    "tty", "urandom", "zero",
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn outcome(v: &Value) -> String {
    if v["ok"] == true {
        "ok".into()
    } else {
        v["errno_name"].as_str().unwrap_or("?").to_owned()
    }
}

/// The last mount at `point`.
fn mount<'a>(mounts: &'a [Value], point: &str) -> &'a Value {
    mounts
        .iter()
        .rev()
        .find(|m| m["mount_point"] == point)
        .unwrap_or_else(|| panic!("no mount at {point}"))
}

fn options(m: &Value) -> Vec<String> {
    strings(&m["options"])
}

/// Check a probe report of the default container against berth's column; return every
/// difference (empty: all cells hold). The spec's `/sys/fs/cgroup` mount is `ro`:
/// berth-runtime makes the tmpfs of a cgroup v1 host read-only too, runc and crun only the
/// hierarchies under it (`runtime`: the runtime's name).
fn check(v: &Value, runtime: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    let two = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    for set in ["effective", "bounding", "permitted"] {
        let mut got = strings(&v["caps"][set]);
        got.sort();
        expect(got == two, format!("caps {set}: {got:?}, want {two:?}"));
    }
    for set in ["ambient", "inheritable"] {
        let got = strings(&v["caps"][set]);
        expect(got.is_empty(), format!("caps {set}: {got:?}, want none"));
    }
    expect(v["nnp"] == true, format!("no_new_privs: {}", v["nnp"]));
    expect(
        v["seccomp"]["mode"] == 2,
        format!("seccomp: {}", v["seccomp"]),
    );
    for (step, name, want) in SYSCALLS {
        let got = outcome(&v[*step]);
        expect(got == *want, format!("{name}: {got}, want {want}"));
    }
    let id = &v["identity"];
    expect(
        id["uid"] == 0 && id["gid"] == 0,
        format!("uid/gid inside: {}/{}", id["uid"], id["gid"]),
    );
    let host = json!([[0, RANGE.host_start, RANGE.size]]);
    expect(
        id["uid_map"] == host && id["gid_map"] == host,
        format!(
            "id maps {} {}, want {host} (root is host {})",
            id["uid_map"], id["gid_map"], RANGE.host_start
        ),
    );
    let mounts = v["mounts"].as_array().cloned().unwrap_or_default();
    for p in MASKED {
        let masked = mounts
            .iter()
            .any(|m| m["mount_point"] == *p && m["fs_type"] != "proc" && m["fs_type"] != "sysfs");
        expect(masked, format!("{p} is not masked"));
    }
    for p in READONLY {
        let ro = mounts.iter().any(|m| {
            m["mount_point"] == *p && m["fs_type"] == "proc" && options(m).contains(&"ro".into())
        });
        expect(ro, format!("{p} is not a read-only proc mount"));
    }
    for (point, want) in [
        ("/proc", &["nosuid", "nodev", "noexec"][..]),
        ("/sys", &["ro", "nosuid", "nodev", "noexec"][..]),
        (
            "/sys/fs/cgroup",
            if runtime == "berth-runtime" {
                &["ro", "nosuid", "nodev", "noexec"][..]
            } else {
                &["nosuid", "nodev", "noexec"][..]
            },
        ),
        (
            "/sys/fs/cgroup/pids",
            &["ro", "nosuid", "nodev", "noexec"][..],
        ),
    ] {
        let got = options(mount(&mounts, point));
        expect(
            want.iter().all(|f| got.iter().any(|g| g == f)),
            format!("{point} mounted {got:?}, want {want:?}"),
        );
    }
    let mut dev = strings(&v["list:/dev"]["entries"]);
    // crun adds the /dev/core symlink (to /proc/kcore, masked or absent), as under podman
    dev.retain(|d| !(runtime == "crun" && d == "core"));
    dev.sort();
    expect(dev == DEV, format!("/dev holds {dev:?}, want {DEV:?}"));
    // cgroup v1's pids hierarchy, or v2's unified one
    let pids = [
        "read:/sys/fs/cgroup/pids/pids.max",
        "read:/sys/fs/cgroup/pids.max",
    ]
    .iter()
    .find_map(|k| v[*k]["head"].as_str())
    .unwrap_or_default()
    .trim()
    .to_owned();
    expect(pids == "2048", format!("pids.max {pids:?}, want 2048"));
    let nofile = &v["rlimits"]["RLIMIT_NOFILE"];
    expect(
        nofile["soft"] == 1024 && nofile["hard"] == 1024,
        format!("RLIMIT_NOFILE {nofile}, want 1024/1024"),
    );
    bad
}

#[test]
fn default_container_holds_berths_column_of_the_security_defaults_table() {
    berth_test_support::requires_root!();
    berth_test_support::requires_tool!("runc");
    berth_test_support::requires_tool!("crun");
    for name in ["berth-runtime", "runc", "crun"] {
        let rt = runtime(name);
        let bundle = spec_bundle(STEPS, &defaults());
        let out = rt.run(&bundle);
        assert!(
            out.success(),
            "{name}: {}\n{}",
            out.stdout_str(),
            out.stderr_str()
        );
        let v = out.json();
        let bad = check(&v, name);
        assert!(
            bad.is_empty(),
            "{name}: the default container is looser than docs/security.md says:\n  {}\n{v}",
            bad.join("\n  ")
        );
    }
}

type Flip = fn(&mut Value);

/// One default loosened at a time in the built config, and the cell of the check that must
/// catch it.
const FLIPS: &[(&str, Flip, &str)] = &[
    (
        "CAP_SYS_ADMIN added",
        |c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYS_ADMIN"));
            }
        },
        "caps effective",
    ),
    (
        "noNewPrivileges off",
        |c| c["process"]["noNewPrivileges"] = json!(false),
        "no_new_privs",
    ),
    (
        "no seccomp",
        |c| {
            c["linux"].as_object_mut().unwrap().remove("seccomp");
        },
        "seccomp",
    ),
    (
        "Docker's profile as is (io_uring allowed)",
        |c| {
            c["linux"]["seccomp"] =
                serde_json::to_value(berth_runtime_spec::defaults::seccomp::profile()).unwrap();
        },
        "io_uring_setup",
    ),
    (
        "no user namespace",
        |c| {
            let l = c["linux"].as_object_mut().unwrap();
            l.remove("uidMappings");
            l.remove("gidMappings");
            l["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "user");
        },
        "id maps",
    ),
    (
        "/proc/keys not masked",
        |c| {
            c["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p != "/proc/keys");
        },
        "/proc/keys is not masked",
    ),
    (
        "/sys/dev/block not masked",
        |c| {
            c["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p != "/sys/dev/block");
        },
        "/sys/dev/block is not masked",
    ),
    (
        "/proc/sys writable",
        |c| {
            c["linux"]["readonlyPaths"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p != "/proc/sys");
        },
        "/proc/sys is not a read-only proc mount",
    ),
    (
        "/proc without noexec",
        |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/proc" {
                    m.as_object_mut().unwrap().remove("options");
                }
            }
        },
        "/proc mounted",
    ),
    (
        "no pids limit",
        |c| {
            c["linux"]["resources"]
                .as_object_mut()
                .unwrap()
                .remove("pids");
        },
        "pids.max",
    ),
    (
        "no RLIMIT_NOFILE",
        |c| {
            c["process"].as_object_mut().unwrap().remove("rlimits");
        },
        "RLIMIT_NOFILE",
    ),
    (
        "a host device added",
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/loop-control", "type": "c",
                "major": 10, "minor": 237, "fileMode": 432, "uid": 0, "gid": 0}]);
        },
        "/dev holds",
    ),
];

#[test]
fn the_check_catches_each_default_loosened() {
    // each cell can fail: the check, over a real container whose config has one default
    // loosened, names that default
    berth_test_support::requires_root!();
    let rt = runtime("berth-runtime");
    for (what, flip, cell) in FLIPS {
        let mut bundle = spec_bundle(STEPS, &defaults());
        flip(bundle.config_mut());
        let out = rt.run(&bundle);
        assert!(
            out.success(),
            "{what}: {}\n{}",
            out.stdout_str(),
            out.stderr_str()
        );
        let bad = check(&out.json(), "berth-runtime");
        assert!(
            bad.iter().any(|b| b.starts_with(cell)),
            "{what}: the check missed it (want {cell:?}): {bad:?}"
        );
    }
}
