//! External tools and privileges a test may need, and what to do when they are missing.

use std::ffi::OsString;
use std::path::Path;

/// The environment variable that turns a missing tool (or root) into a test failure.
pub const REQUIRE_TOOLS_ENV: &str = "BERTH_TEST_REQUIRE_TOOLS";

#[expect(
    clippy::disallowed_methods,
    reason = "test support reads the test environment (PATH, BERTH_TEST_REQUIRE_TOOLS, CARGO_BIN_EXE_berth)"
)]
pub(crate) fn env_os(key: &str) -> Option<OsString> {
    std::env::var_os(key)
}

/// Whether an executable named `tool` is on `PATH`.
pub fn tool_available(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = env_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let p = dir.join(tool);
        Path::new(&p)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The uid and gid of `name` from /etc/passwd.
pub fn passwd_ids(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// Whether the test process runs with effective uid 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A requirement is not met: panic when `BERTH_TEST_REQUIRE_TOOLS=1`, else print a skip
/// note and return `true` (the caller returns from the test).
pub fn skip_or_fail(reason: &str) -> bool {
    let required = env_os(REQUIRE_TOOLS_ENV).is_some_and(|v| v == "1");
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    if required {
        panic!(
            "{test}: {reason}, and {REQUIRE_TOOLS_ENV}=1 makes that a failure\nhint: scripts/test installs the test dependencies"
        );
    }
    eprintln!("SKIPPED {test}: {reason} (set {REQUIRE_TOOLS_ENV}=1 to fail instead)");
    true
}

/// The environment variable naming the cgroup mode the host must have: `v1`, `hybrid` or
/// `v2`. `scripts/vm-test` sets `v2` inside its pure cgroup v2 VM, so that a host detected as
/// anything else fails the tests instead of running them against the wrong hierarchy, and so
/// that tests gated on v2 ([`cgroup_v2_or_skip`]) cannot skip there.
pub const EXPECT_CGROUP_ENV: &str = "BERTH_TEST_EXPECT_CGROUP";

/// The mode `BERTH_TEST_EXPECT_CGROUP` names, if set.
pub fn expected_cgroup_mode() -> Option<String> {
    env_os(EXPECT_CGROUP_ENV)
        .map(|v| v.to_string_lossy().trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Panics when `BERTH_TEST_EXPECT_CGROUP` is set and is not `detected` (`v1`, `hybrid` or
/// `v2`, as the caller's detection names the host).
#[track_caller]
pub fn check_cgroup_mode(detected: &str) {
    if let Some(expected) = expected_cgroup_mode() {
        assert!(
            matches!(expected.as_str(), "v1" | "hybrid" | "v2"),
            "{EXPECT_CGROUP_ENV}={expected:?}: expected v1, hybrid or v2"
        );
        assert_eq!(
            detected, expected,
            "this host's cgroups were detected as {detected}, but {EXPECT_CGROUP_ENV}={expected}"
        );
    }
}

/// For tests of the pure cgroup v2 kernel interface: `true` (run) when `detected` is `v2`;
/// otherwise a panic when `BERTH_TEST_EXPECT_CGROUP=v2` says it should have been, else a skip
/// note and `false`. These tests run for real in `scripts/vm-test`'s VM; on a v1 or hybrid
/// host (the CI machine itself) they skip, whatever `BERTH_TEST_REQUIRE_TOOLS` says.
#[track_caller]
pub fn cgroup_v2_or_skip(detected: &str) -> bool {
    check_cgroup_mode(detected);
    if detected == "v2" {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    eprintln!(
        "SKIPPED {test}: needs a pure cgroup v2 host, this one is {detected} (scripts/vm-test runs it in a v2 VM)"
    );
    false
}

/// The Debian root filesystem `scripts/make-debian-rootfs` builds with debootstrap (minbase),
/// for tests that need a real distribution tree: `$BERTH_TEST_DEBIAN_ROOTFS`, default
/// `/var/cache/berth-test/debian-bookworm-minbase`. `None` until the build finished (the
/// script's `<dir>.complete` marker).
pub fn debian_rootfs() -> Option<std::path::PathBuf> {
    let dir = env_os("BERTH_TEST_DEBIAN_ROOTFS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/cache/berth-test/debian-bookworm-minbase".into());
    let mut marker = dir.clone().into_os_string();
    marker.push(".complete");
    Path::new(&marker).exists().then_some(dir)
}
