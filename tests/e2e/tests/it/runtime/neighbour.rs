//! The runtime's own processes seen by a hostile neighbour (the CVE-2016-9962 class). Once
//! a runtime helper has joined a container and dropped to the container's credentials, a
//! process of that container — or of a sibling container sharing the pid namespace, as the
//! containers of a Kubernetes pod do — sees it. If it were dumpable, that process could open
//! its `/proc/<pid>/mem` read-write (code injected before the seccomp filter is loaded), its
//! descriptors (the host's exec fifo: starting a container that was only created), or ptrace
//! it. The runtimes make their helpers non-dumpable until they execute the container's
//! program.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_test_support::{Bundle, COMMAND_TIMEOUT, ContainerGuard, wait_until};
use serde_json::Value;

use super::runtime_test;

#[track_caller]
fn refused(v: &Value, what: &str) {
    assert!(v.is_object(), "no {what} result");
    assert_ne!(
        v["ok"], true,
        "{what} succeeded: the runtime's helper is reachable"
    );
}

runtime_test! {
    /// A sibling container in the same pid namespace attacks a created (not started)
    /// container's init, which waits on the exec fifo: `/proc/<pid>/mem` read-write,
    /// `/proc/<pid>/fd` and each descriptor in it (opening the fifo for reading would let
    /// the init go on), and ptrace are all refused, and the created container does not start.
    fn a_sibling_sharing_the_pid_namespace_cannot_reach_a_created_init(rt) {
        let mut hostile = Bundle::new();
        // the scan, then time for a container the attack started to print
        hostile.probe(&["neighbour-scan", "sleep:1000"]);
        let h = ContainerGuard::create(rt, &hostile);
        let mut victim = Bundle::new();
        victim
            .namespace_path("pid", &PathBuf::from(format!("/proc/{}/ns/pid", h.pid())))
            .probe(&["identity"]);
        let v = ContainerGuard::create(rt, &victim);
        let victim_pid = v.pid();
        assert_eq!(v.status(), "created");
        h.start();
        let report = h.wait_stdout_json(COMMAND_TIMEOUT);
        let pids = report["neighbour-scan"]["pids"]
            .as_object()
            .unwrap_or_else(|| panic!("no scan result: {report}"));
        // the victim's init is the only other process of the namespace
        assert_eq!(pids.len(), 1, "{report}");
        let (inner, seen) = pids.iter().next().unwrap();
        eprintln!("{}: the victim's init {victim_pid} is pid {inner} inside: {seen}", rt.name());
        refused(&seen["mem"], "opening /proc/<pid>/mem read-write");
        refused(&seen["ptrace"], "PTRACE_SEIZE");
        if seen["fd"]["ok"] == true {
            for (n, fd) in seen["fd"]["fds"].as_object().unwrap() {
                refused(&fd["open"], &format!("opening /proc/<pid>/fd/{n}"));
            }
        }
        assert!(
            v.stdout().is_empty(),
            "the created container ran its process: {}",
            String::from_utf8_lossy(&v.stdout())
        );
        drop(v);
        drop(h);
    }
}

runtime_test! {
    /// While `exec` runs, a process of the container watches for the helper that joins it
    /// and spins on its `/proc/<pid>/mem` (read-write), `/proc/<pid>/fd/*` and ptrace: none
    /// succeeds before the helper executes the exec'd program (busybox), which the
    /// container may then open like any of its processes.
    fn the_container_cannot_open_an_exec_helper_before_it_executes(rt) {
        const EXECS: usize = 20;
        let mut b = Bundle::new();
        b.probe(&["neighbour-watch:15000:busybox"]);
        let c = ContainerGuard::create(rt, &b);
        c.start();
        assert!(c.wait_for_status("running", COMMAND_TIMEOUT));
        // the watcher takes its first look at /proc before the first exec
        assert!(wait_until(Duration::from_secs(5), || std::fs::read_dir(format!(
            "/proc/{}/task",
            c.pid()
        ))
        .is_ok()));
        let started = Instant::now();
        for _ in 0..EXECS {
            let out = c.exec(&["/bin/busybox", "true"]);
            assert!(out.success(), "{out}");
            if started.elapsed() > Duration::from_secs(12) {
                break;
            }
        }
        let report = c.wait_stdout_json(Duration::from_secs(40));
        let w = &report["neighbour-watch:15000:busybox"];
        eprintln!("{}: {w}", rt.name());
        assert!(w["candidates"].as_u64().unwrap_or(0) >= 1, "the watcher saw no exec: {w}");
        assert_eq!(w["won"], serde_json::json!([]), "the exec helper was opened: {w}");
    }
}
