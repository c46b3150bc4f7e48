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
