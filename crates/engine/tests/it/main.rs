//! berth-engine's tests: the lifecycle (`lifecycle`) and terminals, stdin and attaching
//! (`attach`), against real containers (busybox bundles) with berth-runtime, runc and crun,
//! as root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod attach;
mod lifecycle;
mod netns;

use std::path::PathBuf;

use berth_engine::{Engine, MonitorCommand};
use berth_test_support::{Runtime, is_root, skip_or_fail, tool_available};

pub const RUNTIMES: [&str; 3] = ["berth-runtime", "runc", "crun"];

#[derive(Debug)]
pub struct Env {
    pub _state: tempfile::TempDir,
    pub engine: Engine,
}

/// The monitor binary; `BERTH_MONITOR_BIN` measures another build (release) of it.
pub fn monitor() -> MonitorCommand {
    MonitorCommand {
        #[allow(clippy::disallowed_methods, reason = "a test knob")]
        program: std::env::var_os("BERTH_MONITOR_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_berth-engine-monitor")),
            PathBuf::from,
        ),
        args: vec![],
    }
}

/// PATH, and the sbin directories root's PATH has (runc is /usr/sbin/runc on Debian).
pub fn search_path() -> Vec<PathBuf> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test plays the CLI, which passes PATH"
    )]
    let mut dirs: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs
}

/// An engine over a fresh state root (root only).
pub fn env() -> Option<Env> {
    if !is_root() {
        skip_or_fail("engine tests need root");
        return None;
    }
    let state = tempfile::Builder::new()
        .prefix("berth-engine-")
        .tempdir()
        .unwrap();
    let engine = Engine::new(state.path(), monitor())
        .unwrap()
        .with_search_path(search_path());
    Some(Env {
        _state: state,
        engine,
    })
}

/// A runtime as `--runtime` gives it: berth-runtime by path, runc and crun by name.
pub fn runtime_bin(name: &str) -> Option<PathBuf> {
    if name != "berth-runtime" && !tool_available(name) {
        skip_or_fail(&format!("{name} is not installed"));
        return None;
    }
    if name == "berth-runtime" {
        return Runtime::find(name).map(|r| r.bin().to_path_buf());
    }
    Some(PathBuf::from(name))
}
