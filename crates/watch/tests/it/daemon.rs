//! The daemon loop ([`berth_watch::daemon::Watch`]) as a library, for real (root, BTF): a runc
//! container whose root is a plain directory, found in runc's state directory and profiled
//! from that directory; in enforce mode a binary written there after the profile was made is
//! killed when run, the record says so, the metrics count it, and the stop handle ends the
//! loop.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_test_support::{Bundle, ContainerGuard, Runtime, wait_until};
use berth_watch::containers::{RuntimeKind, Sources, StateDir, cgroup2_mount};
use berth_watch::daemon::{Watch, WatchConfig};
use serde_json::Value;

use crate::support::{put, require_root, require_tool, sha256};

/// A writer the loop's thread writes to and the test reads.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn records(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// `berth watch` as a library on runc's containers: enforcing, watching only `only`; the loop
/// runs on a thread of its own, writing to the returned [`Shared`].
struct Running {
    stop: berth_watch::daemon::StopHandle,
    metrics: berth_watch::daemon::Metrics,
    out: Shared,
    run: std::thread::JoinHandle<
        Result<berth_watch::daemon::Summary, berth_watch::daemon::WatchError>,
    >,
}

impl Running {
    fn start(rt: &Runtime, only: &[&str]) -> Running {
        Running::start_with(rt, only, Vec::new())
    }

    /// As [`Running::start`], reading `more` state directories too.
    fn start_with(rt: &Runtime, only: &[&str], more: Vec<StateDir>) -> Running {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut state_dirs = vec![StateDir {
            runtime: RuntimeKind::Runc,
            path: rt.root().to_owned(),
            namespaced: false,
        }];
        state_dirs.extend(more);
        let mut config = WatchConfig::new(Sources {
            state_dirs,
            proc: PathBuf::from("/proc"),
            cgroup2: cgroup2_mount(&mountinfo).unwrap(),
        });
        config.enforce_all = true;
        config.only = only.iter().map(|s| s.to_string()).collect();
        let watch = Watch::start(config).unwrap_or_else(|e| {
            panic!(
                "berth watch could not start: {}",
                berth_errdefs::error_chain(&e)
            )
        });
        let (stop, metrics) = (watch.stop_handle(), watch.metrics());
        let out = Shared::default();
        let mut writer = out.clone();
        let run = std::thread::spawn(move || watch.run(&mut writer));
        Running {
            stop,
            metrics,
            out,
            run,
        }
    }

    /// Wait until `n` containers are watched (their profiles maybe still being built).
    #[track_caller]
    fn wait_watching(&self, n: usize) {
        let want = format!("berth_watch_containers {n}\n");
        assert!(
            wait_until(Duration::from_secs(30), || self
                .metrics
                .render()
                .contains(&want)),
            "{n} container(s) not watched:\n{}",
            self.metrics.render()
        );
    }

    /// Wait until `n` containers are watched with their profiles built: a bundle's root
    /// directory is profiled as it is then, so what a test writes there after is not in it.
    #[track_caller]
    fn wait_profiled(&self, n: usize) {
        self.wait_watching(n);
        assert!(
            wait_until(Duration::from_secs(60), || self
                .metrics
                .render()
                .contains("berth_watch_profiles_building 0\n")),
            "profiles still being built:\n{}",
            self.metrics.render()
        );
    }
}

#[test]
fn daemon_kills_drift_in_enforce_mode_and_stops_on_its_handle() {
    require_root("the eBPF probes and containers");
    require_tool("runc", "apt-get install -y runc");
    let rt = Runtime::find("runc").unwrap();
    let mut bundle = Bundle::new();
    bundle.args(&["/bin/sleep", "600"]);
    let guard = ContainerGuard::create(&rt, &bundle);
    guard.start();
    let watching = Running::start(&rt, &[bundle.id()]);
    watching.wait_profiled(1);
    let Running {
        stop,
        metrics,
        out,
        run,
    } = watching;

    // written after the profile was made: not in it
    let mut changed = std::fs::read(bundle.rootfs().join("bin/busybox")).unwrap();
    changed.push(0);
    put(&bundle.rootfs().join("tmp/new/sleep"), &changed, 0o755);
    let started = Instant::now();
    let ran = guard.exec(&["/tmp/new/sleep", "60"]);
    assert!(
        !ran.success() && started.elapsed() < Duration::from_secs(30),
        "the drift ran to its end: {ran:?}"
    );
    let mut record = None;
    wait_until(Duration::from_secs(30), || {
        record = out
            .records()
            .into_iter()
            .find(|r| r["process"]["exe"] == "/tmp/new/sleep");
        record.is_some()
    });
    let r = record.unwrap_or_else(|| panic!("no record of the drift: {:?}", out.records()));
    assert_eq!(r["verdict"], "drift", "{r}");
    assert_eq!(r["container"]["id"], bundle.id(), "{r}");
    assert_eq!(r["details"]["origin"], "not_overlay", "{r}");
    assert_eq!(r["details"]["kill"], "killed", "{r}");
    assert!(metrics.render().contains("berth_watch_kills_total 1\n"));
    // the image's own binary, run in the same container (left running, so that it is read
    // through its root): expected
    rt.cmd(
        &[
            "exec",
            "--detach",
            bundle.id(),
            "/bin/busybox",
            "sleep",
            "60",
        ],
        Duration::from_secs(60),
    )
    .assert_success();
    assert!(
        wait_until(Duration::from_secs(30), || out.records().iter().any(|r| {
            r["process"]["exe"] == "/bin/busybox" && r["verdict"] == "expected"
        })),
        "{:?}",
        out.records()
    );

    // an exec just before the stop is reported: the loop reads what the ring buffer still
    // holds before it returns
    rt.cmd(
        &["exec", bundle.id(), "/bin/busybox", "echo", "last"],
        Duration::from_secs(60),
    )
    .assert_success();
    let stopping = Instant::now();
    stop.stop();
    let summary = run.join().unwrap().unwrap();
    let last = out
        .records()
        .into_iter()
        .find(|r| r["process"]["argv"] == serde_json::json!(["/bin/busybox", "echo", "last"]))
        .unwrap_or_else(|| panic!("the last exec is not reported: {:?}", out.records()));
    // it may have exited before it was judged (CI): its file is then read through the
    // container init's root (a plain-directory root has no upper directory)
    assert_eq!(last["verdict"], "expected", "{last}");
    eprintln!(
        "daemon: exec to kill {}us; stopped in {:?}",
        r["details"]["kill_us"],
        stopping.elapsed()
    );
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert_eq!(summary.counters.kills, 1, "{:?}", out.records());
    assert_eq!(summary.probes.dropped, 0);
}

/// A container whose profile takes long to build (a 1 GiB executable to hash, sparse) does not
/// hold up the others: while it is built, drift in a container already watched is killed and
/// recorded at once, and the new container's first exec waits for its profile, then is
/// judged with it (the records come in that order; built on the loop, the other way round).
#[test]
fn a_profile_being_built_does_not_hold_up_the_other_containers() {
    require_root("the eBPF probes and containers");
    require_tool("runc", "apt-get install -y runc");
    let rt = Runtime::find("runc").unwrap();
    let mut quick = Bundle::new();
    quick.args(&["/bin/sleep", "600"]);
    let quick_guard = ContainerGuard::create(&rt, &quick);
    quick_guard.start();
    let mut slow = Bundle::new();
    slow.args(&["/bin/sleep", "600"]);
    let big = slow.rootfs().join("bin/big");
    put(&big, b"", 0o755);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .and_then(|f| f.set_len(1 << 30))
        .unwrap();

    let watching = Running::start(&rt, &[quick.id(), slow.id()]);
    watching.wait_profiled(1);

    let slow_guard = ContainerGuard::create(&rt, &slow);
    slow_guard.start();
    watching.wait_watching(2);
    let Running { stop, out, run, .. } = watching;
    // its profile is being built: drift in the first container meanwhile
    let mut changed = std::fs::read(quick.rootfs().join("bin/busybox")).unwrap();
    changed.push(0);
    put(&quick.rootfs().join("tmp/new/sleep"), &changed, 0o755);
    let ran = quick_guard.exec(&["/tmp/new/sleep", "60"]);
    assert!(!ran.success(), "the drift ran to its end: {ran:?}");

    let slow_entry = |r: &Value| r["container"]["id"] == slow.id() && r["kind"] == "exec";
    assert!(
        wait_until(Duration::from_secs(60), || out
            .records()
            .iter()
            .any(slow_entry)),
        "no record of the second container's entrypoint: {:?}",
        out.records()
    );
    let records = out.records();
    let drift = records
        .iter()
        .position(|r| r["process"]["exe"] == "/tmp/new/sleep")
        .unwrap_or_else(|| panic!("no record of the drift: {records:?}"));
    let entry = records.iter().position(slow_entry).unwrap();
    assert_eq!(
        records[drift]["details"]["kill"], "killed",
        "{}",
        records[drift]
    );
    assert!(
        drift < entry,
        "the drift was decided after the other container's profile was built: {records:?}"
    );
    assert_eq!(records[entry]["verdict"], "expected", "{}", records[entry]);
    stop.stop();
    let summary = run.join().unwrap().unwrap();
    assert_eq!(summary.counters.kills, 1);
    eprintln!(
        "daemon: drift killed {}us after its exec while another profile was built",
        records[drift]["details"]["kill_us"]
    );
}

/// `berth run`'s record of a runc container (`DIR/containers/ID/container.json`) keeping the
/// signed SBOM `sbom` (`sbom.json` beside it).
fn engine_record(dir: &std::path::Path, bundle: &Bundle, pid: u32, sbom: &[u8]) {
    let start: u64 = {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    let record = serde_json::json!({
        "id": bundle.id(), "name": format!("sbom-{}", &bundle.id()[..6]),
        "image": "registry.example/app:1", "created": "2026-12-05T00:00:00Z",
        "bundle": bundle.path(), "runtime": "/usr/sbin/runc", "runtime_root": "/run/runc",
        "status": "running", "log_path": "/dev/null", "auto_remove": false,
        "init_pid": pid, "init_start": start,
        "sbom": {
            "manifest": "sha256:5b0b", "artifact_type": "application/spdx+json",
            "signer": "CN=ci.example", "sha256": sha256(sbom).to_string(),
        },
    });
    let at = dir.join("containers").join(bundle.id());
    put(&at.join("sbom.json"), sbom, 0o600);
    put(
        &at.join("container.json"),
        &serde_json::to_vec(&record).unwrap(),
        0o600,
    );
}

/// A signed SBOM `berth run` kept for a container adds what it lists to the container's
/// profile: a binary in none of the image's layers whose content the SBOM lists is
/// expected (`sbom_file`), and left running in enforce mode. In a second container whose
/// kept SBOM was changed after the record was written (its SHA-256 no longer the
/// record's), the SBOM is not used: the same binary is drift, and killed.
#[test]
fn a_signed_sbom_kept_by_the_engine_adds_its_files_and_a_changed_one_is_not_used() {
    require_root("the eBPF probes and containers");
    require_tool("runc", "apt-get install -y runc");
    let rt = Runtime::find("runc").unwrap();
    let t = tempfile::tempdir().unwrap();
    let engine = t.path().join("engine");
    // a tool of the signer's in no layer: busybox with a byte more (it still runs)
    let mut tool = std::fs::read("/bin/busybox").unwrap();
    tool.push(0);
    let inventory = berth_sbom::package::Inventory {
        subject: berth_sbom::package::Subject {
            name: "registry.example/app:1".to_owned(),
            digest: None,
            layers: Vec::new(),
        },
        distro: None,
        packages: Vec::new(),
        unsupported: Vec::new(),
        files: vec![berth_sbom::package::FileDigest {
            path: "/usr/local/bin/tool".to_owned(),
            sha256: sha256(&tool),
            sha1: None,
            layer: None,
        }],
    };
    let sbom = berth_sbom::format::write(
        berth_sbom::format::Format::SpdxJson,
        &inventory,
        &berth_sbom::format::WriteOptions {
            created: std::time::SystemTime::now(),
        },
    )
    .unwrap();

    let mut guards = Vec::new();
    let mut bundles = Vec::new();
    for changed in [false, true] {
        let mut b = Bundle::new();
        b.args(&["/bin/sleep", "600"]);
        let g = ContainerGuard::create(&rt, &b);
        g.start();
        engine_record(&engine, &b, u32::try_from(g.pid()).unwrap(), &sbom);
        if changed {
            let kept = engine.join("containers").join(b.id()).join("sbom.json");
            let mut doc = std::fs::read(&kept).unwrap();
            doc.push(b' ');
            put(&kept, &doc, 0o600);
        }
        guards.push(g);
        bundles.push(b);
    }
    let (kept, changed) = (&bundles[0], &bundles[1]);
    let watching = Running::start_with(
        &rt,
        &[kept.id(), changed.id()],
        vec![StateDir {
            runtime: RuntimeKind::Berth,
            path: engine.clone(),
            namespaced: false,
        }],
    );
    watching.wait_profiled(2);
    let Running { stop, out, run, .. } = watching;

    for b in [kept, changed] {
        put(&b.rootfs().join("tmp/t/sleep"), &tool, 0o755);
        rt.cmd(
            &["exec", "--detach", b.id(), "/tmp/t/sleep", "60"],
            Duration::from_secs(60),
        )
        .assert_success();
    }
    let of = |b: &Bundle| {
        let id = b.id().to_owned();
        move |r: &Value| {
            r["container"]["id"] == id.as_str() && r["process"]["exe"] == "/tmp/t/sleep"
        }
    };
    let mut records = Vec::new();
    wait_until(Duration::from_secs(30), || {
        records = out.records();
        records.iter().any(of(kept)) && records.iter().any(of(changed))
    });
    let expected = records
        .iter()
        .find(|r| of(kept)(r))
        .unwrap_or_else(|| panic!("no record of the SBOM's tool: {records:?}"));
    assert_eq!(expected["verdict"], "expected", "{expected}");
    assert_eq!(expected["details"]["reason"], "sbom_file", "{expected}");
    assert_eq!(
        expected["details"]["path"], "/usr/local/bin/tool",
        "{expected}"
    );
    assert_eq!(
        expected["container"]["name"],
        format!("sbom-{}", &kept.id()[..6])
    );
    let drift = records
        .iter()
        .find(|r| of(changed)(r))
        .unwrap_or_else(|| panic!("no record of the tool in the other container: {records:?}"));
    assert_eq!(drift["verdict"], "drift", "{drift}");
    assert_eq!(drift["details"]["reason"], "not_in_image", "{drift}");
    assert_eq!(drift["details"]["kill"], "killed", "{drift}");
    stop.stop();
    let summary = run.join().unwrap().unwrap();
    assert_eq!(summary.counters.kills, 1, "{records:?}");
}
