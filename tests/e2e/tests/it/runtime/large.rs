//! Large configs: Kubernetes lets a pod carry 256 KiB of annotations, and they reach the
//! runtime in config.json. The runtime must run such a container through the whole
//! lifecycle (create/start/state/exec/kill/delete, and `run`), report the annotations
//! in `state`, and hand them to hooks on stdin.
//!
//! berth-runtime used to fail `create` with "Message too long" (EMSGSIZE): its sync
//! socket carried the state, annotations included, in one SOCK_SEQPACKET packet, which
//! the kernel bounds by the socket's send buffer (~208 KiB). runc and crun run them.

use std::time::Duration;

use berth_test_support::{Bundle, ContainerGuard};
use serde_json::{Map, Value, json};

use super::runtime_test;

const WAIT: Duration = Duration::from_secs(30);

/// About `bytes` of annotations (keys and values), 1000-byte values.
fn annotations(bytes: usize) -> Map<String, Value> {
    let mut m = Map::new();
    let mut n = 0;
    let mut i = 0;
    while n < bytes {
        let key = format!("example.com/annotation-{i:06}");
        let value = format!("{i:06}-{}", "x".repeat(993));
        n += key.len() + value.len();
        m.insert(key, Value::String(value));
        i += 1;
    }
    m
}

/// A bundle with `bytes` of annotations and a createRuntime hook that stores the state
/// it gets on stdin in `<bundle>/hook-state.json`.
fn bundle(bytes: usize, steps: &[&str]) -> (Bundle, Map<String, Value>) {
    let mut b = Bundle::new();
    b.probe(steps);
    let ann = annotations(bytes);
    b.config_mut()["annotations"] = Value::Object(ann.clone());
    let out = b.path().join("hook-state.json");
    b.hook(
        "createRuntime",
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}", out.display())],
        }),
    );
    (b, ann)
}

#[track_caller]
fn assert_annotations(what: &str, got: &Value, want: &Map<String, Value>) {
    let Some(got) = got["annotations"].as_object() else {
        panic!("{what} has no annotations");
    };
    assert_eq!(got.len(), want.len(), "{what}: number of annotations");
    assert!(
        got == want,
        "{what}: the annotations differ from config.json's"
    );
}

#[track_caller]
fn hook_state(b: &Bundle) -> Value {
    let path = b.path().join("hook-state.json");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&data).expect("the hook got the state as JSON")
}

/// create → state → start → exec → kill → delete, with `bytes` of annotations.
fn lifecycle(rt: &berth_test_support::Runtime, bytes: usize) {
    let (b, ann) = bundle(bytes, &["wait-signal"]);
    let c = ContainerGuard::create(rt, &b);
    let s = c.state();
    assert_eq!(s["status"], "created", "{}", rt.name());
    assert_annotations("state", &s, &ann);
    let h = hook_state(&b);
    assert_eq!(h["id"], c.id(), "the hook's state is this container's");
    assert_annotations("the createRuntime hook's state", &h, &ann);
    c.start();
    assert!(
        c.wait_for_status("running", WAIT),
        "not running: {}",
        c.status()
    );
    assert_annotations("state when running", &c.state(), &ann);
    let e = c.exec(&["/bin/echo", "exec-ok"]);
    assert!(
        e.success(),
        "exec in a container with large annotations: {e}"
    );
    assert_eq!(e.stdout_str().trim(), "exec-ok");
    c.kill_when_waiting("TERM", WAIT).assert_success();
    assert!(
        c.wait_for_status("stopped", WAIT),
        "not stopped: {}",
        c.status()
    );
    c.delete().assert_success();
    assert!(!rt.state(c.id()).success(), "state after delete must fail");
}

/// `run` in the foreground: the probe's output and exit status come back.
fn run(rt: &berth_test_support::Runtime, bytes: usize) {
    let (b, ann) = bundle(bytes, &["identity"]);
    let out = rt.run(&b);
    assert!(
        out.success(),
        "run with {bytes} bytes of annotations:\n{out}"
    );
    assert!(out.json()["identity"].is_object(), "the probe ran: {out}");
    assert_annotations("the createRuntime hook's state", &hook_state(&b), &ann);
}

runtime_test! {
    /// Kubernetes' limit, 256 KiB of annotations: the whole lifecycle, `state` and the
    /// hook see all of them. runc, crun and berth-runtime: all pass.
    fn annotations_of_256_kib_go_through_the_lifecycle(rt) {
        lifecycle(rt, 256 * 1024);
    }
}

runtime_test! {
    /// 1 MiB of annotations, beyond Kubernetes' limit (a runtime should not care): all
    /// three pass.
    fn annotations_of_1_mib_go_through_the_lifecycle(rt) {
        lifecycle(rt, 1024 * 1024);
    }
}

runtime_test! {
    /// `run` of a container with 256 KiB and with 1 MiB of annotations.
    fn run_with_large_annotations(rt) {
        run(rt, 256 * 1024);
        run(rt, 1024 * 1024);
    }
}
