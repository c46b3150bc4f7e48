//! `spec`: berth-runtime writes a locked-down default (Docker's default seccomp profile,
//! `noNewPrivileges`, runc's three capabilities, Docker's masked and read-only paths), and
//! with `--runc-compat` runc's own config byte for byte.
//!
//! The default, changed only in `process.args`, runs under runc, crun and berth-runtime
//! (its `rootfs` is the bundle's), on a terminal as it asks; its seccomp profile denies
//! what the capabilities alone do not: `unshare(CLONE_NEWUSER)` and `keyctl` (which the
//! same probe does without the profile, under `--runc-compat`'s config), `clone3` gets
//! ENOSYS as Docker wants (so that libc falls back to `clone`).

use std::ffi::OsStr;

use berth_test_support::{Bundle, Runtime, skip_or_fail, tool_available};
use serde_json::Value;

use super::namespaces::{json_on_screen, on_a_pty};
use super::{outcome, runtime_test};

/// The probe's steps: the seccomp mode, then what the profile denies, `unshare` last (it
/// moves the probe into a new user namespace when allowed).
const STEPS: [&str; 6] = [
    "seccomp",
    "identity",
    "syscall:435",   // clone3(NULL, 0)
    "syscall:250:0", // keyctl(KEYCTL_GET_KEYRING_ID, 0)
    "mount-tmpfs:/mnt",
    "syscall:272:0x10000000", // unshare(CLONE_NEWUSER)
];

/// `<rt> spec [args…]` in a fresh directory; the bytes it wrote.
fn spec_of(rt: &Runtime, args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a: Vec<&OsStr> = vec![
        OsStr::new("spec"),
        OsStr::new("--bundle"),
        dir.path().as_os_str(),
    ];
    a.extend(args.iter().map(OsStr::new));
    let out = rt.cmd(&a, berth_test_support::COMMAND_TIMEOUT);
    assert!(out.success(), "{out}");
    std::fs::read(dir.path().join("config.json")).expect("spec wrote config.json")
}

fn berth() -> Option<Runtime> {
    let rt = Runtime::find("berth-runtime");
    if rt.is_none() {
        skip_or_fail("berth-runtime is not available");
    }
    rt
}

/// berth-runtime's `spec` (with `args`) for a bundle: the probe with [`STEPS`] as its
/// process, nothing else changed.
fn bundle_with_berth_spec(args: &[&str]) -> Option<Bundle> {
    let berth = berth()?;
    let mut config: Value =
        serde_json::from_slice(&spec_of(&berth, args)).expect("spec writes JSON");
    let mut argv = vec!["/probe"];
    argv.extend(STEPS);
    config["process"]["args"] = serde_json::json!(argv);
    let mut b = Bundle::new();
    assert_eq!(
        config["root"]["path"], "rootfs",
        "the bundle's root file system"
    );
    assert!(b.rootfs().ends_with("rootfs"));
    *b.config_mut() = config;
    Some(b)
}

/// Run `b` in the foreground on a pty (it asks for a terminal); the probe's report.
fn run_on_a_pty(rt: &Runtime, b: &Bundle) -> Value {
    let out = rt.run_wrapped(b, &[], on_a_pty);
    assert!(out.success(), "{}: {out}", rt.name());
    json_on_screen(&out.stdout)
}

#[test]
fn spec_runc_compat_is_runcs_byte_for_byte() {
    berth_test_support::requires_root!();
    let Some(runc) = Runtime::find("runc") else {
        skip_or_fail("runc is not available");
        return;
    };
    let Some(berth) = berth() else { return };
    for extra in [&[][..], &["--rootless"][..]] {
        let want = spec_of(&runc, extra);
        let mut args = vec!["--runc-compat"];
        args.extend_from_slice(extra);
        let got = spec_of(&berth, &args);
        assert!(
            got == want,
            "spec --runc-compat {extra:?} differs from runc's\n--- berth-runtime\n{}\n--- runc\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }
    // and the default is not runc's
    assert_ne!(spec_of(&berth, &[]), spec_of(&runc, &[]));
}

#[test]
fn default_spec_is_locked_down() {
    berth_test_support::requires_root!();
    let Some(berth) = berth() else { return };
    let v: Value = serde_json::from_slice(&spec_of(&berth, &[])).expect("JSON");
    assert_eq!(v["process"]["noNewPrivileges"], true, "{v:#}");
    assert_eq!(
        v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO",
        "{v:#}"
    );
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(v["process"]["capabilities"]["bounding"], caps);
    assert!(v["process"]["capabilities"].get("ambient").is_none());
    let masked = v["linux"]["maskedPaths"].as_array().expect("maskedPaths");
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        assert!(
            masked.iter().any(|m| m == p),
            "{p} is not masked: {masked:?}"
        );
    }
    let ro = v["linux"]["readonlyPaths"]
        .as_array()
        .expect("readonlyPaths");
    assert!(ro.iter().any(|m| m == "/proc/sys"), "{ro:?}");
    assert_eq!(v["root"]["readonly"], true);
}

fn need_script() -> bool {
    tool_available("script") || !skip_or_fail("script (apt-get install bsdutils)")
}

runtime_test! {
    /// berth-runtime's default `spec`, only its args changed, runs under each runtime;
    /// its seccomp profile is loaded and denies `unshare(CLONE_NEWUSER)` and `keyctl`
    /// (EPERM) and `clone3` (ENOSYS); `mount` is refused (EPERM: no CAP_SYS_ADMIN, and
    /// the profile). Under `--runc-compat`'s config (no profile) the same probe may
    /// `unshare` and gets EINVAL from `keyctl` and `clone3`: the profile is what denies.
    /// runc, crun and berth-runtime alike.
    fn default_spec_runs_and_its_seccomp_profile_denies(rt) {
        if !need_script() {
            return;
        }
        let Some(b) = bundle_with_berth_spec(&[]) else { return };
        let v = run_on_a_pty(rt, &b);
        assert_eq!(v["seccomp"]["mode_name"], "filter", "{v}");
        assert_eq!(v["identity"]["uid"], 0, "{v}");
        assert_eq!(outcome(&v, "syscall:272:0x10000000"), "EPERM", "unshare: {v}");
        assert_eq!(outcome(&v, "syscall:250:0"), "EPERM", "keyctl: {v}");
        assert_eq!(outcome(&v, "syscall:435"), "ENOSYS", "clone3: {v}");
        assert_eq!(outcome(&v, "mount-tmpfs:/mnt"), "EPERM", "mount: {v}");

        let Some(b) = bundle_with_berth_spec(&["--runc-compat"]) else { return };
        let v = run_on_a_pty(rt, &b);
        assert_eq!(v["seccomp"]["mode_name"], "disabled", "{v}");
        assert_eq!(outcome(&v, "syscall:272:0x10000000"), "ok", "unshare: {v}");
        assert_eq!(outcome(&v, "syscall:250:0"), "EINVAL", "keyctl: {v}");
        assert_eq!(outcome(&v, "syscall:435"), "EINVAL", "clone3: {v}");
    }
}
