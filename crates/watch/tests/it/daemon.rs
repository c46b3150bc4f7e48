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

use crate::support::{put, require_root, require_tool};

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

#[test]
fn daemon_kills_drift_in_enforce_mode_and_stops_on_its_handle() {
    require_root("the eBPF probes and containers");
    require_tool("runc", "apt-get install -y runc");
    let rt = Runtime::find("runc").unwrap();
    let mut bundle = Bundle::new();
    bundle.args(&["/bin/sleep", "600"]);
    let guard = ContainerGuard::create(&rt, &bundle);
    guard.start();

    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let sources = Sources {
        state_dirs: vec![StateDir {
            runtime: RuntimeKind::Runc,
            path: rt.root().to_owned(),
            namespaced: false,
        }],
        proc: PathBuf::from("/proc"),
        cgroup2: cgroup2_mount(&mountinfo).unwrap(),
    };
    let mut config = WatchConfig::new(sources);
    config.enforce_all = true;
    config.only = vec![bundle.id().to_owned()];
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
    assert!(
        wait_until(Duration::from_secs(30), || metrics
            .render()
            .contains("berth_watch_containers 1\n")),
        "the container was not watched:\n{}",
        metrics.render()
    );

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

    let stopping = Instant::now();
    stop.stop();
    let summary = run.join().unwrap().unwrap();
    eprintln!(
        "daemon: exec to kill {}us; stopped in {:?}",
        r["details"]["kill_us"],
        stopping.elapsed()
    );
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert_eq!(summary.counters.kills, 1);
    assert_eq!(summary.probes.dropped, 0);
}
