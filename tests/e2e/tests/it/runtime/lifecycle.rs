//! The runtime-spec lifecycle through runc's command line: create → created → start →
//! running → kill → stopped → delete, with `state`, `exec`, `ps` and `list` on the way.

use std::time::Duration;

use berth_test_support::{Bundle, ContainerGuard};
use serde_json::Value;

use super::runtime_test;

const WAIT: Duration = Duration::from_secs(30);

/// The fields runtime-spec's state must have ("Query State"), plus those runc's `state`
/// adds and containerd reads (`rootfs`, `created`, `owner`).
///
/// Tolerated differences (runc 1.1.5 / crun 1.8.1): `rootfs` is absolute in runc and as
/// written in config.json in crun ("rootfs"); `owner` is "" in runc and "root" in crun;
/// crun adds `systemd-scope`; `ociVersion` is each runtime's own spec version.
const STATE_FIELDS: [&str; 8] = [
    "ociVersion",
    "id",
    "status",
    "pid",
    "bundle",
    "rootfs",
    "created",
    "owner",
];

#[track_caller]
fn assert_state_fields(state: &Value, id: &str, bundle: &Bundle) {
    for f in STATE_FIELDS {
        assert!(state.get(f).is_some(), "state lacks {f:?}: {state}");
    }
    assert_eq!(state["id"], id);
    let b = std::path::Path::new(state["bundle"].as_str().unwrap_or_default());
    assert_eq!(
        b.canonicalize().ok(),
        bundle.path().canonicalize().ok(),
        "bundle in {state}"
    );
    assert!(
        state["rootfs"]
            .as_str()
            .is_some_and(|r| r.ends_with("rootfs")),
        "rootfs in {state}"
    );
    assert!(
        state["created"].as_str().is_some_and(|c| c.contains('T')),
        "created is an RFC 3339 time: {state}"
    );
}

runtime_test! {
    /// create leaves the process waiting ("created", with a pid), start runs it
    /// ("running"), kill TERM ends it ("stopped"), delete removes the container, and
    /// `state` reports the same fields at every step.
    fn create_start_kill_delete_walks_created_running_stopped(rt) {
        let mut b = Bundle::new();
        b.probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);

        let s = c.state();
        assert_eq!(s["status"], "created", "{s}");
        assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "created has a pid: {s}");
        assert_state_fields(&s, c.id(), &b);
        let created_pid = s["pid"].clone();

        c.start();
        assert!(c.wait_for_status("running", WAIT), "not running: {}", c.state());
        let s = c.state();
        assert_state_fields(&s, c.id(), &b);
        assert_eq!(s["pid"], created_pid, "start runs the process create made");

        c.kill_when_waiting("TERM", WAIT).assert_success();
        assert!(c.wait_for_status("stopped", WAIT), "not stopped: {}", c.state());
        let s = c.state();
        assert_state_fields(&s, c.id(), &b);
        assert_eq!(s["pid"], 0, "a stopped container reports pid 0, as runc and crun do: {s}");
        let out = c.wait_stdout_json(WAIT);
        assert_eq!(out["wait-signal"]["signal"], 15, "the probe saw SIGTERM: {out}");

        // A signal to a stopped container fails in words containerd's runc shim reads as
        // "already gone" (checkKillError: runc's "container not running", crun's "No such
        // process"); any other text turns a CRI StopContainer into retries until its deadline.
        let again = c.kill("KILL");
        assert!(!again.success(), "kill of a stopped container: {again}");
        let said = again.stderr_str().to_lowercase();
        assert!(
            ["container not running", "no such process", "os: process already finished"]
                .iter()
                .any(|w| said.contains(w)),
            "{} must fail as containerd's shim understands: {again}",
            rt.name()
        );

        c.delete().assert_success();
        let after = rt.state(c.id());
        assert!(!after.success(), "state after delete must fail: {after}");
        let list = rt.list().assert_success().stdout_str();
        assert!(!list.contains(c.id()), "list after delete: {list}");
    }
}

runtime_test! {
    /// `list --format json` shows a created container with its status.
    fn list_shows_created_containers(rt) {
        let mut b = Bundle::new();
        b.probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        let list = rt.list().assert_success().json();
        let entry = list
            .as_array()
            .and_then(|a| a.iter().find(|e| e["id"] == c.id()))
            .unwrap_or_else(|| panic!("{} not in {list}", c.id()));
        assert_eq!(entry["status"], "created", "{entry}");
        assert_eq!(entry["pid"], c.state()["pid"]);
    }
}

runtime_test! {
    /// A running container cannot be deleted without --force; with it, it is killed and
    /// removed (the guard then checks its cgroups are gone).
    fn delete_of_a_running_container_needs_force(rt) {
        let mut b = Bundle::new();
        b.probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        c.start();
        assert!(c.wait_for_status("running", WAIT));
        let refused = c.delete();
        assert!(!refused.success(), "delete of a running container: {refused}");
        assert_eq!(c.status(), "running", "a refused delete leaves it running");
        rt.delete_force(c.id()).assert_success();
        assert!(!rt.state(c.id()).success());
    }
}

runtime_test! {
    /// exec runs a second process in the container's namespaces: it sees the init as pid 1
    /// and itself beside it; ps lists both on the host.
    fn exec_joins_the_container_and_ps_lists_its_processes(rt) {
        let mut b = Bundle::new();
        b.probe(&["wait-signal"]);
        let c = ContainerGuard::create(rt, &b);
        c.start();
        assert!(c.wait_for_status("running", WAIT));
        let init = c.pid();

        let ps = rt.ps(c.id()).assert_success().json();
        let pids: Vec<i64> = ps
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        assert_eq!(pids, [i64::from(init)], "ps of a one-process container: {ps}");

        let out = c.exec(&["/probe", "pids", "self", "identity"]);
        assert!(out.success(), "{out}");
        let v = out.json();
        let me = v["self"]["pid"].as_i64().unwrap();
        assert_ne!(me, 1, "exec'd process is not init: {v}");
        assert_eq!(v["pids"], serde_json::json!([1, me]), "{v}");
        assert_eq!(v["identity"]["hostname"], berth_test_support::DEFAULT_HOSTNAME);
    }
}

runtime_test! {
    /// The exit code of the container's process is `run`'s exit code.
    fn run_exits_with_the_process_exit_code(rt) {
        let mut b = Bundle::new();
        b.probe(&["self", "exit:7"]);
        let out = rt.run(&b);
        assert_eq!(out.code(), Some(7), "{out}");
        assert_eq!(out.json()["self"]["pid"], 1);
    }
}
