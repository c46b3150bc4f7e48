//! Hooks whose failures are warnings (runtime-spec: poststart and poststop): one failing
//! does not keep the others from running.

use std::path::Path;

use berth_test_support::{Bundle, RtOutput, Runtime};
use serde_json::json;

use super::runtime_test;

/// A hook that says so on stderr and exits 7.
fn failing_hook() -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", "echo first-hook-failed >&2; exit 7"]})
}

/// A hook that writes `marker` on the host.
fn marker_hook(marker: &Path) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo ran > '{}'", marker.display())]})
}

/// `run` a container whose `kind` hooks are a failing one, then one writing a marker;
/// returns the run's output and whether the second hook ran.
fn run_with_failing_first_hook(rt: &Runtime, kind: &str) -> (RtOutput, bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("second-hook-ran");
    let mut b = Bundle::new();
    b.hook(kind, failing_hook())
        .hook(kind, marker_hook(&marker))
        .probe(&["self"]);
    let out = rt.run(&b);
    // `run` waited for the container and deleted it: every hook is done
    (out, marker.exists())
}

runtime_test! {
    /// Two poststart hooks, the first failing: berth-runtime warns (naming the hook and
    /// its output), runs the second and runs the container to its end. The peers differ
    /// and are pinned: runc 1.1 stops at the failed hook (its RunHooks returns the first
    /// error), kills the container and fails; crun 1.8 runs the second and succeeds, as
    /// berth-runtime, but says nothing of the failure.
    fn poststart_hooks_all_run_when_one_fails(rt) {
        let (out, second_ran) = run_with_failing_first_hook(rt, "poststart");
        let warned = out.stderr_str().contains("first-hook-failed");
        let want = match rt.name() {
            "runc" => (false, false, true),
            "crun" => (true, true, false),
            _ => (true, true, true),
        };
        assert_eq!(
            (out.success(), second_ran, warned),
            want,
            "{}: (run succeeded, second hook ran, warned) {out}",
            rt.name()
        );
        if out.success() {
            assert_eq!(out.json()["self"]["pid"], 1, "{out}");
        }
    }
}

runtime_test! {
    /// Two poststop hooks, the first failing: berth-runtime (as crun) runs the second and
    /// the run succeeds, with a warning naming the failed hook. Pinned: runc 1.1 logs the
    /// error and skips the rest (its RunHooks stops at the first error), though the run
    /// succeeds.
    fn poststop_hooks_all_run_when_one_fails(rt) {
        let (out, second_ran) = run_with_failing_first_hook(rt, "poststop");
        let want = match rt.name() {
            "runc" => (true, false),
            _ => (true, true),
        };
        assert_eq!(
            (out.success(), second_ran),
            want,
            "{}: (run succeeded, second hook ran) {out}",
            rt.name()
        );
        if rt.name() == "berth-runtime" {
            assert!(out.stderr_str().contains("first-hook-failed"), "no warning: {out}");
        }
    }
}
