//! cgroup operations on a running container through runc's command line: `update`
//! (`--resources FILE|-` and the per-field flags), `events` (`--stats`, `--interval`, OOM),
//! `pause`/`resume`, `kill --all`, `ps`, and the pids limit's 0 and negative values.
//!
//! Limits are checked twice: in the container's cgroup files on the host, and by their
//! effect inside (a lowered pids limit stops a fork bomb, a frozen container's counter
//! stops). Long-running containers are busybox `sh` loops; the probe reports signals and
//! forks.
//!
//! Peer differences (runc 1.1.5, crun 1.8.1), asserted as such so that a change shows:
//! - crun has no `events` command and no `--l3-cache-schema`/`--mem-bw-schema` flags; its
//!   size flags take bytes only (`--memory 96m` fails), it writes a negative pids limit as
//!   is (EINVAL, and a refused create leaves its cgroups behind), writes `blkio.weight` but
//!   not BFQ's `blkio.bfq.weight`, accepts a pids limit of the wrong JSON type, accepts
//!   `pause` of a paused and `resume` of a running container, leaves a paused container
//!   frozen on `kill KILL` (it dies on resume), and its `ps` table is a PID column without
//!   ps(1) options;
//! - runc 1.1.5 passes a `--` after the id on to ps(1) (which refuses it); berth drops it;
//! - `pids.limit` 0: the runtime-spec (since "linux: clarify pids cgroup settings") says 0
//!   is a real limit; berth writes `pids.max` 0, runc 1.1.5 and crun 1.8.1 leave the limit
//!   unset ("max"), newer runc writes 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_test_support::{
    Bundle, ChildGuard, ContainerGuard, RtOutput, Runtime, skip_or_fail, wait_until,
};
use serde_json::{Value, json};

use super::runtime_test;

pub(super) const WAIT: Duration = Duration::from_secs(30);
pub(super) const MIB: u64 = 1 << 20;

/// A shell loop that bumps a counter in `/tmp/counter` every 20 ms (observable from the
/// host in the bundle's rootfs).
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.02; done";

/// A bundle whose process is `sh -c script`.
pub(super) fn sh_bundle(script: &str) -> Bundle {
    let mut b = Bundle::new();
    b.args(&["sh", "-c", script]);
    b
}

/// Create and start the container; wait until it runs.
#[track_caller]
pub(super) fn started<'r>(rt: &'r Runtime, b: &Bundle) -> ContainerGuard<'r> {
    let c = ContainerGuard::create(rt, b);
    c.start();
    assert!(
        c.wait_for_status("running", WAIT),
        "not running: {}",
        c.state()
    );
    c
}

/// The first line of `file` in whichever of the container's cgroup directories has it.
fn cg_read(c: &ContainerGuard<'_>, file: &str) -> Option<String> {
    c.cgroup_dirs().iter().find_map(|d| {
        std::fs::read_to_string(d.join(file))
            .ok()
            .map(|t| t.lines().next().unwrap_or_default().trim().to_owned())
    })
}

#[track_caller]
pub(super) fn cg_value(c: &ContainerGuard<'_>, file: &str) -> String {
    cg_read(c, file).unwrap_or_else(|| panic!("no {file} in {:?}", c.cgroup_dirs()))
}

/// The container's cgroup directory holding `file` (which controller's hierarchy).
pub(super) fn cg_dir_with(c: &ContainerGuard<'_>, file: &str) -> Option<PathBuf> {
    c.cgroup_dirs().into_iter().find(|d| d.join(file).exists())
}

/// The counter the [`COUNTER`] loop writes, if it has written one.
fn counter(b: &Bundle) -> Option<u64> {
    std::fs::read_to_string(b.rootfs().join("tmp/counter"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Whether the counter moves past its current value within `within`.
fn counter_advances(b: &Bundle, within: Duration) -> bool {
    let start = counter(b);
    wait_until(within, || counter(b).is_some_and(|n| Some(n) > start))
}

/// `<rt> args…` with `input` on its stdin.
fn with_stdin(rt: &Runtime, args: &[&str], input: &[u8]) -> RtOutput {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut cmd = rt.command();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut guard = ChildGuard::spawn(&mut cmd);
    let child = guard.child().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let mut status = None;
    assert!(
        wait_until(WAIT, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        }),
        "{args:?} did not finish"
    );
    RtOutput {
        cmd: format!("{} {} < stdin", rt.name(), args.join(" ")),
        status: status.unwrap(),
        stdout: read_file(&out),
        stderr: read_file(&err),
    }
}

fn read_file(f: &std::fs::File) -> Vec<u8> {
    berth_test_support::read_output_file(f)
}

/// A runtime command left running in the background (`events`), its stdout in a file,
/// killed and reaped on drop.
pub(super) struct Background {
    _child: ChildGuard,
    out: std::fs::File,
    err: std::fs::File,
}

impl Background {
    pub(super) fn spawn(rt: &Runtime, args: &[&str]) -> Background {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut cmd = rt.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap());
        Background {
            _child: ChildGuard::spawn(&mut cmd),
            out,
            err,
        }
    }

    /// Every complete line printed so far that is a JSON value. Others are reported on
    /// stderr, not fatal: the callers look for the events they need and show the whole
    /// output when one is missing. (A line that did not parse, once in 400 runs of runc,
    /// and an `oom` line lost, once with berth-runtime, were this harness's own doing: it
    /// read the output by seeking the offset it shares with the child, so the child's next
    /// line overwrote the start of the file; it reads with `pread` now.)
    pub(super) fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8_lossy(&read_file(&self.out)).into_owned();
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!("events: a line that is not JSON ({e}): {l:?}");
                    None
                }
            })
            .collect()
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&read_file(&self.out)),
            String::from_utf8_lossy(&read_file(&self.err))
        )
    }
}

/// crun 1.8.1 has no `events` command: check that it still refuses it (so the day it
/// gains one, this test says so), then skip the rest of the body for crun.
pub(super) fn lacks_events(rt: &Runtime) -> bool {
    if rt.name() != "crun" {
        return false;
    }
    let out = rt.cmd(&["events", "--stats", "no-such-container"], WAIT);
    assert!(
        !out.success() && out.stderr_str().contains("unknown command"),
        "crun now has `events`: {out}"
    );
    eprintln!("crun: no `events` command: {}", out.stderr_str().trim());
    true
}

runtime_test! {
    /// `update --resources FILE` and `--resources -` write the runtime-spec LinuxResources
    /// to the cgroup, keep what they do not mention, and a lowered pids limit stops a fork
    /// bomb started after the update.
    fn update_resources_from_a_file_and_stdin(rt) {
        let mut b = Bundle::new();
        b.resources(json!({"pids": {"limit": 1000}, "memory": {"limit": 512 * MIB}}))
            .probe(&["wait-signal", "fork:1000"]);
        let c = started(rt, &b);
        assert_eq!(cg_value(&c, "pids.max"), "1000");

        let file = b.path().join("resources.json");
        berth_test_support::write_file(
            &file,
            json!({"pids": {"limit": 100}, "memory": {"limit": 256 * MIB}}).to_string().as_bytes(),
        );
        rt.cmd(&["update", "--resources", file.to_str().unwrap(), c.id()], WAIT)
            .assert_success();
        assert_eq!(cg_value(&c, "pids.max"), "100");
        let mem = cg_read(&c, "memory.limit_in_bytes").or_else(|| cg_read(&c, "memory.max"));
        assert_eq!(mem, Some((256 * MIB).to_string()));

        let out = with_stdin(rt, &["update", "-r", "-", c.id()], br#"{"pids": {"limit": 8}}"#);
        out.assert_success();
        assert_eq!(cg_value(&c, "pids.max"), "8");
        let mem = cg_read(&c, "memory.limit_in_bytes").or_else(|| cg_read(&c, "memory.max"));
        assert_eq!(mem, Some((256 * MIB).to_string()), "a field not in the update is kept");

        // the effect: the probe's fork bomb now stops below 8
        c.kill_when_waiting("USR1", WAIT).assert_success();
        let v = c.wait_stdout_json(WAIT);
        let f = &v["fork:1000"];
        assert_eq!(f["errno_name"], "EAGAIN", "{v}");
        let forked = f["forked"].as_u64().unwrap();
        assert!((1..8).contains(&forked), "forked {forked} under pids.max 8: {f}");
        assert_eq!(f["reaped"], f["forked"], "{f}");
    }
}

runtime_test! {
    /// runc 1.1.5's per-field flags, by runc's names, land in the cgroup files (v1 names
    /// here, v2 where the host is v2); `--pids-limit -1` is "max".
    fn update_per_field_flags_by_runc_names(rt) {
        let mut b = sh_bundle("sleep 1000");
        b.resources(json!({"pids": {"limit": 50}, "memory": {"limit": 512 * MIB, "swap": 1024 * MIB}}));
        let c = started(rt, &b);
        let v2 = cg_read(&c, "cpu.max").is_some();
        let out = rt.cmd(
            &[
                "update",
                "--cpu-period", "200000",
                "--cpu-quota", "50000",
                "--cpu-share", "512",
                "--cpuset-cpus", "0",
                "--cpuset-mems", "0",
                "--memory", &(128 * MIB).to_string(),
                "--memory-reservation", &(64 * MIB).to_string(),
                "--memory-swap", &(256 * MIB).to_string(),
                "--pids-limit", "42",
                c.id(),
            ],
            WAIT,
        );
        out.assert_success();
        if v2 {
            assert_eq!(cg_value(&c, "cpu.max"), "50000 200000");
            assert_eq!(cg_value(&c, "memory.max"), (128 * MIB).to_string());
            assert_eq!(cg_value(&c, "memory.low"), (64 * MIB).to_string());
            assert_eq!(cg_value(&c, "memory.swap.max"), (128 * MIB).to_string());
        } else {
            assert_eq!(cg_value(&c, "cpu.cfs_period_us"), "200000");
            assert_eq!(cg_value(&c, "cpu.cfs_quota_us"), "50000");
            assert_eq!(cg_value(&c, "cpu.shares"), "512");
            assert_eq!(cg_value(&c, "memory.limit_in_bytes"), (128 * MIB).to_string());
            assert_eq!(cg_value(&c, "memory.soft_limit_in_bytes"), (64 * MIB).to_string());
            if let Some(memsw) = cg_read(&c, "memory.memsw.limit_in_bytes") {
                assert_eq!(memsw, (256 * MIB).to_string());
            }
        }
        assert_eq!(cg_value(&c, "cpuset.cpus"), "0");
        assert_eq!(cg_value(&c, "cpuset.mems"), "0");
        assert_eq!(cg_value(&c, "pids.max"), "42");

        // realtime period and runtime (v1 cpu controller with RT group scheduling)
        if cg_read(&c, "cpu.rt_period_us").is_some() {
            rt.cmd(&["update", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "10000", c.id()], WAIT)
                .assert_success();
            assert_eq!(cg_value(&c, "cpu.rt_period_us"), "1000000");
            assert_eq!(cg_value(&c, "cpu.rt_runtime_us"), "10000");
        }

        let out = rt.cmd(&["update", "--pids-limit", "-1", c.id()], WAIT);
        if rt.name() == "crun" {
            // crun 1.8.1 writes "-1" to pids.max: EINVAL
            assert!(!out.success(), "crun now takes -1: {out}");
            assert_eq!(cg_value(&c, "pids.max"), "42");
        } else {
            out.assert_success();
            assert_eq!(cg_value(&c, "pids.max"), "max");
        }

        // sizes with docker's units, as runc reads them; crun 1.8.1 pastes the value into
        // JSON as is and fails ("cannot parse the data")
        let out = rt.cmd(&["update", "--memory", "96m", "--memory-swap", "192m", c.id()], WAIT);
        let mem_file = if v2 { "memory.max" } else { "memory.limit_in_bytes" };
        if rt.name() == "crun" {
            assert!(!out.success(), "crun now reads units: {out}");
            assert_eq!(cg_value(&c, mem_file), (128 * MIB).to_string());
        } else {
            out.assert_success();
            assert_eq!(cg_value(&c, mem_file), (96 * MIB).to_string());
        }

        // the block IO weight where the host has a weight file, a clear error where not
        let weight_file = ["blkio.weight", "blkio.bfq.weight", "io.bfq.weight", "io.weight"]
            .into_iter()
            .find(|f| cg_read(&c, f).is_some());
        let out = rt.cmd(&["update", "--blkio-weight", "300", c.id()], WAIT);
        match weight_file {
            // crun 1.8.1 writes blkio.weight only, not BFQ's blkio.bfq.weight
            Some(f) if rt.name() == "crun" && f == "blkio.bfq.weight" => {
                assert!(!out.success(), "crun now writes {f}: {out}");
            }
            // cgroup v2: runc's conversion of the blkio weight, 1 + (300 - 10) * 9999 / 990
            Some(f) if f == "io.weight" => {
                out.assert_success();
                assert_eq!(cg_value(&c, f), "default 2930", "{f}");
            }
            Some(f) => {
                out.assert_success();
                assert!(cg_value(&c, f).contains("300"), "{f}: {}", cg_value(&c, f));
            }
            None => {
                eprintln!("{}: --blkio-weight without a weight file: {out}", rt.name());
                assert!(!out.success(), "no blkio weight file on this host, yet: {out}");
                assert!(!out.stderr.is_empty(), "{out}");
            }
        }
    }
}

runtime_test! {
    /// Unknown flags, bad values, malformed or missing resource files and Intel RDT schemas
    /// on a host without RDT each fail with a message on stderr and change nothing.
    fn update_refuses_bad_input_and_changes_nothing(rt) {
        let mut b = sh_bundle("sleep 1000");
        b.resources(json!({"pids": {"limit": 50}}));
        let c = started(rt, &b);
        let bad_json = b.path().join("bad.json");
        berth_test_support::write_file(&bad_json, b"{\"pids\": {\"limit\": ");
        let wrong_type = b.path().join("wrong-type.json");
        berth_test_support::write_file(&wrong_type, br#"{"pids": {"limit": "ten"}}"#);
        let missing = b.path().join("missing.json");
        let mut cases: Vec<Vec<&str>> = vec![
            vec!["--bogus-flag", "1"],
            vec!["--pids-limit", "abc"],
            vec!["--memory", "12x"],
            vec!["--cpu-quota", "lots"],
            vec!["-r", bad_json.to_str().unwrap()],
            vec!["-r", missing.to_str().unwrap()],
        ];
        if rt.name() == "crun" {
            // crun 1.8.1 ignores a limit of the wrong type (exit 0, nothing changed) and has
            // no Intel RDT flags (refused as unknown above)
            let out = rt.cmd(&["update", "-r", wrong_type.to_str().unwrap(), c.id()], WAIT);
            eprintln!("crun, a pids limit of type string: {out}");
        } else {
            cases.push(vec!["-r", wrong_type.to_str().unwrap()]);
            cases.push(vec!["--l3-cache-schema", "L3:0=f", "--pids-limit", "7"]);
            cases.push(vec!["--mem-bw-schema", "MB:0=50", "--pids-limit", "7"]);
        }
        for args in cases {
            let mut a = vec!["update"];
            a.extend_from_slice(&args);
            a.push(c.id());
            let out = rt.cmd(&a, WAIT);
            assert!(!out.success(), "{args:?} was accepted: {out}");
            assert!(!out.stderr_str().trim().is_empty(), "{args:?}: no message: {out}");
            eprintln!("{} {args:?}: {}", rt.name(), out.stderr_str().lines().next().unwrap_or_default());
            assert_eq!(cg_value(&c, "pids.max"), "50", "{args:?} changed the limit");
        }
        let out = with_stdin(rt, &["update", "-r", "-", c.id()], b"not json");
        assert!(!out.success(), "{out}");
        assert_eq!(cg_value(&c, "pids.max"), "50");
        assert_eq!(c.status(), "running");
    }
}

/// The key paths of a JSON object ("data/cpu/usage/total"), arrays as leaves.
fn key_paths(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            let p = format!("{prefix}/{k}");
            out.insert(p.clone());
            key_paths(x, &p, out);
        }
    }
}

/// `events --stats <id>` of a fresh container of `rt` with the given limits.
fn stats_of(rt: &Runtime) -> Value {
    let mut b = sh_bundle("sleep 1000");
    b.resources(json!({"pids": {"limit": 50}, "memory": {"limit": 256 * MIB}}));
    let c = started(rt, &b);
    let out = rt.cmd(&["events", "--stats", c.id()], WAIT);
    out.assert_success();
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {out}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], c.id(), "{v}");
    v
}

runtime_test! {
    /// `events --stats` prints one `{"type":"stats","id","data"}` object whose keys include
    /// every key runc's has on this host (cpu usage, memory usage and limit, pids current and
    /// limit, blkio, hugetlb…), with the values the limits set.
    fn events_stats_has_every_key_runc_reports(rt) {
        if lacks_events(rt) {
            return;
        }
        let v = stats_of(rt);
        let d = &v["data"];
        assert!(d["cpu"]["usage"]["total"].as_u64().is_some_and(|n| n > 0), "{d}");
        assert_eq!(d["memory"]["usage"]["limit"], 256 * MIB, "{d}");
        assert!(d["memory"]["usage"]["usage"].as_u64().is_some_and(|n| n > 0), "{d}");
        assert_eq!(d["pids"]["limit"], 50, "{d}");
        assert!(d["pids"]["current"].as_u64().is_some_and(|n| n >= 1), "{d}");
        assert!(d["blkio"].is_object(), "{d}");

        let Some(runc) = Runtime::find("runc") else {
            skip_or_fail("runc, to compare `events --stats` with");
            return;
        };
        let reference = stats_of(&runc);
        let (mut mine, mut theirs) = (Default::default(), Default::default());
        key_paths(&v, "", &mut mine);
        key_paths(&reference, "", &mut theirs);
        let missing: Vec<&String> = theirs.difference(&mine).collect();
        assert!(missing.is_empty(), "{} lacks runc's keys {missing:?}\n{v}\nrunc: {reference}", rt.name());
    }
}

runtime_test! {
    /// `events --interval 1s` streams one stats line per interval until killed.
    fn events_interval_streams_stats(rt) {
        let b = sh_bundle("sleep 1000");
        let c = started(rt, &b);
        if lacks_events(rt) {
            return;
        }
        let ev = Background::spawn(rt, &["events", "--interval", "1s", c.id()]);
        assert!(
            wait_until(WAIT, || ev.lines().len() >= 2),
            "fewer than 2 lines: {}",
            ev.describe()
        );
        for l in ev.lines() {
            assert_eq!(l["type"], "stats", "{l}");
            assert_eq!(l["id"], c.id(), "{l}");
            assert!(l["data"]["cpu"].is_object(), "{l}");
        }
    }
}

runtime_test! {
    /// A process in the container that hits the memory limit is OOM-killed and `events`
    /// reports `{"type":"oom","id":…}` while the container keeps running.
    fn events_reports_an_oom_kill(rt) {
        let limit = 32 * MIB;
        let mut b = sh_bundle(
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; /probe alloc:256; sleep 1000",
        );
        b.resources(json!({"memory": {"limit": limit, "swap": limit}}));
        let c = started(rt, &b);
        if lacks_events(rt) {
            return;
        }
        let ev = Background::spawn(rt, &["events", "--interval", "1s", c.id()]);
        // events is watching once it has printed its first stats
        assert!(wait_until(WAIT, || !ev.lines().is_empty()), "{}", ev.describe());
        berth_test_support::write_file(b.rootfs().join("tmp/go"), b"");
        assert!(
            wait_until(WAIT, || ev.lines().iter().any(|l| l["type"] == "oom")),
            "no oom event: {}",
            ev.describe()
        );
        let oom = ev.lines().into_iter().find(|l| l["type"] == "oom").unwrap();
        assert_eq!(oom["id"], c.id(), "{oom}");
        assert_eq!(c.status(), "running", "only the allocating process was killed");
    }
}

runtime_test! {
    /// pause freezes every process (the counter stops, the cgroup freezer says FROZEN,
    /// state says paused), resume thaws them (the counter moves again, state running).
    fn pause_freezes_and_resume_continues(rt) {
        let b = sh_bundle(COUNTER);
        let c = started(rt, &b);
        assert!(counter_advances(&b, WAIT), "the counter never moved");

        rt.cmd(&["pause", c.id()], WAIT).assert_success();
        assert_eq!(c.status(), "paused");
        if let Some(s) = cg_read(&c, "freezer.state") {
            assert_eq!(s, "FROZEN");
        } else {
            assert_eq!(cg_value(&c, "cgroup.freeze"), "1");
        }
        // let a write that was under way finish, then the counter must stand still
        let _ = counter_advances(&b, Duration::from_millis(200));
        assert!(!counter_advances(&b, Duration::from_secs(1)), "the counter moved while paused");
        // runc and berth refuse to pause a paused container; crun 1.8.1 accepts it
        let again = rt.cmd(&["pause", c.id()], WAIT);
        assert_eq!(again.success(), rt.name() == "crun", "pause of a paused container: {again}");

        rt.cmd(&["resume", c.id()], WAIT).assert_success();
        assert_eq!(c.status(), "running");
        assert!(counter_advances(&b, WAIT), "the counter did not move after resume");
        let again = rt.cmd(&["resume", c.id()], WAIT);
        assert_eq!(again.success(), rt.name() == "crun", "resume of a running container: {again}");
    }
}

runtime_test! {
    /// `state` derives paused/running from the cgroup freezer, not only from the runtime's
    /// own record: a container frozen or thawed behind the runtime's back shows as such.
    fn status_follows_the_cgroup_freezer(rt) {
        let b = sh_bundle(COUNTER);
        let c = started(rt, &b);
        // the v1 freezer, or cgroup v2's cgroup.freeze
        let (file, frozen, thawed) = if let Some(dir) = cg_dir_with(&c, "freezer.state") {
            (dir.join("freezer.state"), "FROZEN", "THAWED")
        } else if let Some(dir) = cg_dir_with(&c, "cgroup.freeze") {
            (dir.join("cgroup.freeze"), "1", "0")
        } else {
            skip_or_fail("a cgroup freezer (v1 freezer.state or v2 cgroup.freeze)");
            return;
        };
        cg_write(&file, frozen);
        assert!(c.wait_for_status("paused", WAIT), "frozen on the host: {}", c.state());
        cg_write(&file, thawed);
        assert!(c.wait_for_status("running", WAIT), "thawed on the host: {}", c.state());

        rt.cmd(&["pause", c.id()], WAIT).assert_success();
        cg_write(&file, thawed);
        assert!(c.wait_for_status("running", WAIT), "paused, then thawed on the host: {}", c.state());
        assert!(counter_advances(&b, WAIT));
    }
}

runtime_test! {
    /// exec into a paused container fails with a message naming the pause; the container
    /// stays paused.
    fn exec_into_a_paused_container_fails_clearly(rt) {
        let b = sh_bundle("sleep 1000");
        let c = started(rt, &b);
        rt.cmd(&["pause", c.id()], WAIT).assert_success();
        let out = c.exec(&["/bin/true"]);
        assert!(!out.success(), "{out}");
        assert!(out.stderr_str().contains("paused"), "the error names the pause: {out}");
        assert_eq!(c.status(), "paused");
    }
}

runtime_test! {
    /// delete of a paused container is refused without --force (it stays paused); with it,
    /// every process is killed (thawed so that it can die) and the container is gone.
    fn delete_of_a_paused_container_needs_force(rt) {
        let b = sh_bundle("sleep 1000 & sleep 1001 & wait");
        let c = started(rt, &b);
        assert!(wait_until(WAIT, || pids_of(rt, c.id()).len() >= 3));
        let pids = pids_of(rt, c.id());
        rt.cmd(&["pause", c.id()], WAIT).assert_success();
        let out = c.delete();
        assert!(!out.success(), "{out}");
        assert!(!out.stderr.is_empty(), "{out}");
        assert_eq!(c.status(), "paused");
        rt.delete_force(c.id()).assert_success();
        assert!(!rt.state(c.id()).success(), "the container is deleted");
        assert!(wait_until(WAIT, || pids.iter().all(|p| dead(*p))), "{pids:?} survived");
    }
}

runtime_test! {
    /// kill KILL of a paused container stops it (the runtime thaws it so that the signal
    /// is delivered). crun 1.8.1 leaves it frozen: the KILL lands only on resume.
    fn kill_of_a_paused_container_stops_it(rt) {
        let b = sh_bundle("sleep 1000");
        let c = started(rt, &b);
        rt.cmd(&["pause", c.id()], WAIT).assert_success();
        c.kill("KILL").assert_success();
        if rt.name() == "crun" {
            assert!(!c.wait_for_status("stopped", Duration::from_secs(2)), "crun now thaws");
            assert_eq!(c.status(), "paused");
            rt.cmd(&["resume", c.id()], WAIT).assert_success();
        }
        assert!(c.wait_for_status("stopped", WAIT), "{}", c.state());
    }
}

/// `ps --format json`'s pids.
fn pids_of(rt: &Runtime, id: &str) -> Vec<i32> {
    let v = rt.ps(id).assert_success().json();
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|p| i32::try_from(p.as_i64().unwrap()).unwrap())
        .collect()
}

/// Whether `pid` is gone or a zombie.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// The session id of `pid` (field 6 of /proc/<pid>/stat).
fn session(pid: i32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Write `value` into the cgroup file `path` in place (cgroupfs has no temporary files).
fn cg_write(path: &Path, value: &str) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .unwrap_or_else(|e| panic!("failed to write {value} to {}: {e}", path.display()));
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

runtime_test! {
    /// kill --all TERM signals every process of the cgroup, including one that left the
    /// init's session and process group (setsid): each probe reports SIGTERM itself, and
    /// the container stops.
    fn kill_all_signals_every_process(rt) {
        let b = sh_bundle(
            "trap 'wait; exit 0' TERM; \
             setsid /probe wait-signal > /tmp/setsid.json & \
             /probe wait-signal > /tmp/child.json & \
             while :; do sleep 0.05; done",
        );
        let c = started(rt, &b);
        let init = c.pid();
        let init_session = session(init);
        // both probes up, one of them in a session of its own
        assert!(
            wait_until(WAIT, || {
                let probes: Vec<i32> = pids_of(rt, c.id())
                    .into_iter()
                    .filter(|p| comm(*p).as_deref() == Some("probe"))
                    .collect();
                probes.len() == 2 && probes.iter().any(|p| session(*p) != init_session)
            }),
            "the probes did not start: {:?}",
            pids_of(rt, c.id())
        );
        // each probe blocks its signals before it waits; a signal that comes earlier stays
        // pending, so it is not lost either way
        rt.cmd(&["kill", "--all", c.id(), "TERM"], WAIT).assert_success();
        assert!(c.wait_for_status("stopped", WAIT), "{}", c.state());
        for f in ["setsid.json", "child.json"] {
            let v = read_json(&b.rootfs().join("tmp").join(f));
            assert_eq!(
                v.as_ref().map(|v| v["wait-signal"]["signal"].clone()),
                Some(json!(15)),
                "{f}: {v:?}"
            );
        }
    }
}

/// The command name of `pid`.
fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A container whose config has pids.limit 0: berth writes pids.max 0 and a fork fails;
/// runc 1.1.5 and crun 1.8.1 leave the limit unset ("max") and the forks succeed.
fn pids_limit_zero(rt: &Runtime, b: &Bundle) {
    let c = started(rt, b);
    let want = if rt.name() == "berth-runtime" {
        "0"
    } else {
        "max"
    };
    assert_eq!(cg_value(&c, "pids.max"), want, "{}", rt.name());
    c.kill_when_waiting("USR1", WAIT).assert_success();
    let v = c.wait_stdout_json(WAIT);
    if want == "0" {
        assert_eq!(v["fork:10"]["errno_name"], "EAGAIN", "{v}");
        assert_eq!(v["fork:10"]["forked"], 0, "{v}");
    } else {
        assert_eq!(v["fork:10"]["forked"], 10, "{v}");
    }
}

runtime_test! {
    /// pids.limit: 0 is a limit (runtime-spec: "0 is a valid limit value … and SHOULD be
    /// treated as such"), -1 and other negatives are "max". runc 1.1.5 ignores 0 (the limit
    /// stays "max"), and so does crun 1.8.1, which also refuses negative limits (it writes
    /// "-1" to pids.max). A `pids` without a `limit` sets none.
    fn pids_limit_zero_is_a_limit_and_negative_is_max(rt) {
        let mut b = Bundle::new();
        b.resources(json!({"pids": {"limit": 0}})).probe(&["wait-signal", "fork:10"]);
        pids_limit_zero(rt, &b);

        // a pids object without a limit leaves the limit alone (all three: "max")
        let mut b = sh_bundle("sleep 1000");
        b.resources(json!({"pids": {}}));
        let c = started(rt, &b);
        assert_eq!(cg_value(&c, "pids.max"), "max", "pids without a limit");
        drop(c);

        for limit in [-1, -5] {
            if rt.name() == "crun" {
                // crun 1.8.1 writes the negative number itself: "writing file `pids.max`:
                // Invalid argument"
                let mut b = sh_bundle("sleep 1000");
                b.resources(json!({"pids": {"limit": limit}}));
                let (_c, out) = ContainerGuard::try_create(rt, &b);
                assert!(!out.success(), "crun now takes a pids limit of {limit}: {out}");
                // and leaves the cgroups of the failed create behind; removed here so that
                // the guard does not count it against the test
                let path = b.cgroups_path().unwrap();
                let left = berth_test_support::remove_leftover_cgroups(&path, Duration::from_secs(2));
                eprintln!("crun left {} cgroup directories after its failed create", left.len());
                continue;
            }

            let mut b = sh_bundle("sleep 1000");
            b.resources(json!({"pids": {"limit": limit}}));
            let c = started(rt, &b);
            assert_eq!(cg_value(&c, "pids.max"), "max", "limit {limit}");
            rt.cmd(&["update", "--pids-limit", "9", c.id()], WAIT).assert_success();
            assert_eq!(cg_value(&c, "pids.max"), "9");
            let out = with_stdin(rt, &["update", "-r", "-", c.id()], json!({"pids": {"limit": limit}}).to_string().as_bytes());
            out.assert_success();
            assert_eq!(cg_value(&c, "pids.max"), "max", "update to {limit}");
        }
    }
}

runtime_test! {
    /// ps --format json lists the host pids of the cgroup; the table is ps(1)'s `-ef` rows
    /// for exactly those pids; options after the id go to ps(1).
    fn ps_table_json_and_ps_options(rt) {
        let b = sh_bundle("sleep 1000 & sleep 1001 & wait");
        let c = started(rt, &b);
        assert!(wait_until(WAIT, || pids_of(rt, c.id()).len() == 3));
        let mut pids = pids_of(rt, c.id());
        pids.sort_unstable();
        let mut procs: Vec<i32> = c
            .cgroup_dirs()
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        procs.sort_unstable();
        assert_eq!(pids, procs, "ps --format json is the cgroup's pids");

        let table = rt.cmd(&["ps", c.id()], WAIT);
        table.assert_success();
        let text = table.stdout_str();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
        // crun 1.8.1's table is a PID column only; runc's is ps -ef's
        let first = if rt.name() == "crun" { "PID" } else { "UID" };
        assert_eq!(header.first(), Some(&first), "the table's header: {text}");
        let idx = header.iter().position(|h| *h == "PID").unwrap();
        let mut rows: Vec<i32> = lines
            .map(|l| l.split_whitespace().nth(idx).unwrap().parse().unwrap())
            .collect();
        rows.sort_unstable();
        assert_eq!(rows, pids, "{text}");
        if rt.name() != "crun" {
            assert!(text.contains("sleep 1001"), "{text}");
        }

        let out = rt.cmd(&["ps", c.id(), "-o", "pid,comm"], WAIT);
        if rt.name() == "crun" {
            assert!(!out.success(), "crun now takes ps options: {out}");
            return;
        }
        out.assert_success();
        let text = out.stdout_str();
        let mut lines = text.lines();
        assert_eq!(lines.next().map(|h| h.split_whitespace().collect::<Vec<_>>()), Some(vec!["PID", "COMMAND"]), "{text}");
        let mut rows: Vec<(i32, String)> = lines
            .map(|l| {
                let mut f = l.split_whitespace();
                (f.next().unwrap().parse().unwrap(), f.next().unwrap_or_default().to_owned())
            })
            .collect();
        rows.sort_unstable();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), pids, "{text}");
        assert_eq!(rows.iter().filter(|r| r.1 == "sleep").count(), 2, "{text}");

        // `--` before the ps options: berth drops it; runc 1.1.5 hands it to ps(1), which
        // refuses it
        let out = rt.cmd(&["ps", c.id(), "--", "-o", "pid"], WAIT);
        match rt.name() {
            "runc" => assert!(!out.success(), "runc now drops `--`: {out}"),
            _ => {
                out.assert_success();
                assert_eq!(out.stdout_str().lines().count(), 4, "{out}");
            }
        }

        let bad = rt.cmd(&["ps", "--format", "xml", c.id()], WAIT);
        assert!(!bad.success(), "{bad}");
    }
}
