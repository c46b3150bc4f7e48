//! Drop-in tests for OCI runtimes: the same tests, through runc's command line, against
//! every runtime in [`runtime_test!`]'s list (runc and crun now; berth-runtime joins by one
//! line). A static probe (tests/probe) inside a busybox-static root filesystem reports what
//! the container sees; tests assert from the inside, and from the host where only the host
//! can tell (uids, cgroups).
//!
//! Every container is owned by a `ContainerGuard` (kill, `delete --force`, and a check that
//! its cgroups are gone), every wait is a poll with a deadline. Tests need root: they skip
//! loudly without it, and fail under `BERTH_TEST_REQUIRE_TOOLS=1`, as they do when a
//! runtime or busybox-static is missing.

mod cgroups;
mod cgroups_ops;
mod delegated;
mod events;
mod foreground;
mod harness;
mod hooks;
mod isolation;
mod large;
mod lifecycle;
mod limits;
mod namespaces;
mod neighbour;
mod rootfs;
mod rootless;
mod security;
mod spec;
mod terminal;
mod update;

use berth_test_support::{
    Bundle, Runtime, busybox_static_available, hybrid_cgroup2_controllers, requires_root,
    skip_or_fail,
};
use serde_json::Value;

/// Run `body` against the runtime called `name`, or skip (fail under
/// `BERTH_TEST_REQUIRE_TOOLS=1`) when it, root or busybox-static is missing.
pub fn with_runtime(name: &str, body: fn(&Runtime)) {
    requires_root!();
    // scripts/vm-test runs these in a pure cgroup v2 VM and says so: a mis-detection fails
    let mode = berth_cgroups::detect_mode().expect("detect the host's cgroup mode");
    berth_test_support::check_cgroup_mode(match mode {
        berth_cgroups::CgroupMode::Legacy => "v1",
        berth_cgroups::CgroupMode::Hybrid => "hybrid",
        berth_cgroups::CgroupMode::Unified => "v2",
    });
    if !busybox_static_available()
        && skip_or_fail("a static busybox at /bin/busybox (apt-get install busybox-static)")
    {
        return;
    }
    if name == "crun" {
        let v2 = hybrid_cgroup2_controllers();
        if !v2.is_empty()
            && skip_or_fail(&format!(
                "crun refuses hybrid cgroup hosts whose cgroup2 still has controllers ({v2:?}); \
                 bind them to v1 first (see berth_test_support::hybrid_cgroup2_controllers)"
            ))
        {
            return;
        }
    }
    let Some(rt) = Runtime::find(name) else {
        skip_or_fail(&format!("the runtime `{name}` is not available"));
        return;
    };
    body(&rt);
}

/// One test per runtime: `runtime_test! { fn name(rt) { … } }` makes a module `name` with
/// a `#[test]` for each runtime (`name::runc`, `name::crun`), each running the body with
/// that runtime.
///
/// and `name::berth_runtime` (found through `$BERTH_RUNTIME_BIN` or
/// `target/<profile>/berth-runtime`): the references and the runtime under test, side by side.
macro_rules! runtime_test {
    ($(#[$meta:meta])* fn $name:ident($rt:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports, reason = "each test body uses some of its module's imports")]
            use super::*;

            fn body($rt: &berth_test_support::Runtime) $body

            #[test]
            fn runc() {
                $crate::runtime::with_runtime("runc", body);
            }

            #[test]
            fn crun() {
                $crate::runtime::with_runtime("crun", body);
            }

            #[test]
            fn berth_runtime() {
                $crate::runtime::with_runtime("berth-runtime", body);
            }
        }
    };
}
pub(crate) use runtime_test;

/// `run` the bundle in the foreground and return the probe's JSON; panics unless the
/// runtime and the probe both succeed.
#[track_caller]
pub fn probe(rt: &Runtime, bundle: &Bundle) -> Value {
    let out = rt.run(bundle);
    assert!(out.success(), "{} failed:\n{out}", rt.name());
    out.json()
}

/// Run the probe directly on the host (as the test's user) for a baseline: what the
/// kernel does without any container.
#[track_caller]
pub fn host_probe(steps: &[&str]) -> Value {
    let mut cmd = std::process::Command::new(berth_test_support::probe_bin());
    cmd.args(steps);
    let out = berth_test_support::run_with_timeout(&mut cmd, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "the probe on the host failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the probe prints JSON")
}

/// The error name an attempt step reported (`"EPERM"`), or `"ok"` when it succeeded.
#[track_caller]
pub fn outcome(report: &Value, step: &str) -> String {
    let v = &report[step];
    assert!(v.is_object(), "no result for step {step:?} in {report}");
    if v["ok"] == true {
        "ok".to_owned()
    } else {
        v["errno_name"]
            .as_str()
            .unwrap_or_else(|| panic!("{step}: no errno in {v}"))
            .to_owned()
    }
}

/// A JSON array of strings as a `Vec<String>`.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
