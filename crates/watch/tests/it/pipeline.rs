//! The parts together, for real (root, BTF): the eBPF probes watch a runc container on an
//! overlay, found by attribution; its execs are decided against the profile of its lower
//! layer and written as records and Falco alerts. The image's own binary: expected; a copy
//! of it under another name: expected; a binary written in the container: drift (short-lived,
//! so hashed from the upper layer after it exited); the same one left running, in enforce
//! mode: killed.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use berth_test_support::{Bundle, ContainerGuard, Runtime, wait_until};
use berth_watch::containers::{Containers, RuntimeKind, Sources, StateDir};
use berth_watch::detect::{Action, Decision, Detector, Policy, ProcFiles, Reason, Rule, Verdict};
use berth_watch::event::{Event, Exec, FileOrigin};
use berth_watch::output::{Clock, Counters, FalcoAlert, Record, boot_ns_now};
use berth_watch::probe::{ProbeOptions, Probes};
use berth_watch::profile::{ImageFacts, Profile};

use crate::support::{put, require_root, require_tool, sha256};

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn drain(probes: &mut Probes) -> Vec<Event> {
    let mut all = Vec::new();
    loop {
        let events = probes.next_events(Some(Duration::ZERO)).unwrap();
        if events.is_empty() {
            return all;
        }
        all.extend(events);
    }
}

/// The exec events of `filename`.
fn execs_of<'a>(events: &'a [Event], filename: &str) -> Vec<&'a Exec> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Exec(x) if x.filename == filename => Some(x),
            _ => None,
        })
        .collect()
}

#[test]
fn probes_attribution_profile_decision_and_output_on_a_runc_container() {
    require_root("the eBPF probes and containers");
    require_tool("runc", "apt-get install -y runc");
    let mut probes = Probes::load(ProbeOptions::default()).unwrap_or_else(|e| {
        panic!(
            "failed to load the eBPF probes: {}\nhint: root and a kernel with BTF",
            berth_errdefs::error_chain(&e)
        )
    });
    let rt = Runtime::find("runc").unwrap();
    let t = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::new();
    let (upper, work, merged) = (
        t.path().join("upper"),
        t.path().join("work"),
        t.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        bundle.rootfs().display(),
        upper.display(),
        work.display()
    );
    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        CString::new(data).unwrap().as_c_str(),
    )
    .unwrap();
    let _m = Mounted(merged.clone());
    bundle.config_mut()["root"]["path"] = serde_json::json!(merged);
    bundle.args(&["/bin/sleep", "600"]);
    let guard = ContainerGuard::create(&rt, &bundle);
    guard.start();

    // attribution: the container, its cgroup id and its overlay
    let sources = Sources {
        state_dirs: vec![StateDir {
            runtime: RuntimeKind::Runc,
            path: rt.root().to_owned(),
            namespaced: false,
        }],
        proc: PathBuf::from("/proc"),
        cgroup2: probes.cgroup2_root().to_owned(),
    };
    let (containers, problems) = Containers::scan(&sources);
    assert!(problems.is_empty(), "{problems:?}");
    let c = containers.by_id(bundle.id(), None).unwrap().clone();
    let overlay = c.overlay.clone().expect("an overlay root");
    // the profile of a container whose image berth does not know: its lower directories
    let profile = Profile::from_dirs(&overlay.lower, ImageFacts::default()).unwrap();
    probes.watch_cgroup(c.cgroup_id).unwrap();

    let busybox = fs::read(bundle.rootfs().join("bin/busybox")).unwrap();
    let mut changed = busybox.clone();
    changed.push(0);
    put(&merged.join("tmp/new/busybox"), &changed, 0o755);
    put(&merged.join("tmp/copy/busybox"), &busybox, 0o755);
    guard.exec(&["/bin/busybox", "true"]).assert_success();
    guard.exec(&["/tmp/copy/busybox", "true"]).assert_success();
    guard.exec(&["/tmp/new/busybox", "true"]).assert_success();
    let events = drain(&mut probes);

    let enforce = Detector::new(
        Policy::from_toml("[watch]\nenforce = [{ container = \"berth-probe-*\" }]\n").unwrap(),
    );
    let files = ProcFiles::new(Path::new("/proc"));
    let clock = Clock::now();
    let mut counters = Counters::default();
    let mut decide = |e: &Exec| -> Decision {
        assert_eq!(e.cgroup_id, c.cgroup_id, "attributed by cgroup id");
        let found = containers
            .by_cgroup(e.cgroup_id)
            .expect("the cgroup id is the container's");
        let event = Event::Exec(e.clone());
        let d = enforce.decide(&event, Some(found), Some(&profile), &files);
        counters.record(&event, &d);
        let rec: serde_json::Value = serde_json::from_str(
            &Record::new(&event, Some(found), &d, &clock, SystemTime::now()).to_line(),
        )
        .unwrap();
        assert_eq!(rec["container"]["id"], bundle.id());
        assert_eq!(rec["container"]["runtime"], "runc");
        assert_eq!(rec["process"]["pid"], e.pid);
        assert!(
            rec["details"]["age_us"].as_u64().unwrap() < 60_000_000,
            "{rec}"
        );
        d
    };

    let image = execs_of(&events, "/bin/busybox");
    assert_eq!(image.len(), 1, "{events:?}");
    assert_eq!(image[0].origin, FileOrigin::Lower);
    let d = decide(image[0]);
    assert_eq!(
        (d.verdict, &d.reason),
        (Verdict::Expected, &Reason::LowerLayer)
    );

    let copy = execs_of(&events, "/tmp/copy/busybox");
    assert_eq!(copy.len(), 1, "{events:?}");
    assert_eq!(copy[0].origin, FileOrigin::Upper);
    let d = decide(copy[0]);
    assert_eq!(
        d.reason,
        Reason::CopyOfImageFile {
            path: "/bin/busybox".into()
        },
        "{d:?}"
    );

    let new = execs_of(&events, "/tmp/new/busybox");
    assert_eq!(new.len(), 1, "{events:?}");
    assert_eq!(new[0].origin, FileOrigin::Upper);
    let d = decide(new[0]);
    assert_eq!(
        (d.verdict, d.rule, &d.reason),
        (Verdict::Drift, Some(Rule::ExecDrift), &Reason::NotInImage),
        "{d:?}"
    );
    assert_eq!(d.sha256, Some(sha256(&changed)));
    assert_eq!(
        d.hashed_via,
        Some("upperdir"),
        "the process had exited: read from the upper layer"
    );
    let found = containers.by_cgroup(c.cgroup_id).unwrap();
    let alert = FalcoAlert::new(
        &Event::Exec(new[0].clone()),
        Some(found),
        &d,
        &clock,
        SystemTime::now(),
        "node-1",
    )
    .unwrap();
    assert_eq!(alert.output_fields["proc.exepath"], "/tmp/new/busybox");
    assert_eq!(alert.output_fields["proc.is_exe_upper_layer"], true);

    // left running: killed in enforce mode
    rt.cmd(
        &[
            "exec",
            "--detach",
            bundle.id(),
            "/tmp/new/busybox",
            "sleep",
            "600",
        ],
        Duration::from_secs(60),
    )
    .assert_success();
    // read as the events arrive (the reader wakes on the ring buffer), as `berth watch` does
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut running = Vec::new();
    while execs_of(&running, "/tmp/new/busybox").is_empty() && Instant::now() < deadline {
        running.extend(probes.next_events(Some(Duration::from_secs(1))).unwrap());
    }
    let e = execs_of(&running, "/tmp/new/busybox")
        .first()
        .map(|e| (*e).clone())
        .unwrap_or_else(|| panic!("no exec event of the detached process: {running:?}"));
    let d = decide(&e);
    assert_eq!(d.action, Action::Kill { pid: e.pid }, "{d:?}");
    assert_eq!(
        d.hashed_via,
        Some("root"),
        "the process runs: read through its root"
    );
    let decided = boot_ns_now().saturating_sub(e.boot_ns);
    let started = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(e.pid).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    counters.killed();
    assert!(
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(format!("/proc/{}/stat", e.pid)).map_or(true, |s| s.contains(") Z "))
        }),
        "the drifting process was not killed"
    );
    eprintln!(
        "pipeline: exec to decision {:?} (the event read as it arrived, the 2 MB binary hashed), of which deciding {:?}; kill {:?}",
        Duration::from_nanos(decided),
        d.latency,
        started.elapsed()
    );
    let prom = counters.render();
    assert!(
        prom.contains("berth_watch_alerts_total{rule=\"exec_drift\"} 2"),
        "{prom}"
    );
    assert!(prom.contains("berth_watch_kills_total 1"), "{prom}");
    assert_eq!(probes.counters().dropped, 0);
}
