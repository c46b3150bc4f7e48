//! Start the kernel's wait for a cgroup migration early, beside the engine's own work.
//!
//! Every write of a pid to a `cgroup.procs` file takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When no migration happened in the last grace
//! period or so, taking it first waits for an RCU grace period (`rcu_sync_enter`): measured
//! here at 5–8 ms idle and up to 17 ms under load, while a write within ~20 ms of another one
//! takes 0.1 ms (docs/performance.md, "Warm start"). The runtime's first write of the
//! container's pid (`RUNTIME run` joining the container's cgroups) pays that wait on the
//! critical path of every `berth run` that is not right after another container operation.
//!
//! So `berth run` calls [`crate::warm_up_cgroup_lock`] first thing: a thread writes this
//! process's pid to the cgroup it is already in (a migration to where it is: nothing moves;
//! the kernel still takes the lock, and so waits the grace period out) while the engine
//! opens its store and prepares the snapshot, the network and the config, and writes it again
//! every [`KEEP_ALIVE`] (0.1 ms each once set up) until the container has started (the
//! [`WarmUp`] guard dropped) or [`MAX_LIFE`] has passed, so that a long set-up (a CNI ADD) does
//! not outlast it. The runtime's own writes then find the lock's fast path set up.
//!
//! A host can have this without berth: cgroup v2's `favordynmods` mount option (Linux 6.0), or
//! `cgroup_favordynmods=true` on the kernel command line for v1 and v2 (Linux 6.7), takes
//! migrations off the grace period at the cost of slower forks and exits (cgroup-v2.rst). On
//! pure v2 a runtime can also avoid the write lock altogether by starting the container's
//! process in its cgroup (`clone3` with `CLONE_INTO_CGROUP`); berth-runtime does not yet.
//! Nothing depends on the warm-up: when the file cannot be found or written (rootless, no
//! cgroup mount), the thread ends at once.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often the warm-up writes again. The fast path lasts one grace period after the last
/// write (measured idle: still set up 15 ms after one; under load once gone 10 ms after
/// one), and a write that finds it gone waits a whole grace period holding `cgroup_mutex`,
/// which the runtime's `mkdir` of the container's cgroup then waits for: so well inside the
/// shortest grace period seen.
pub const KEEP_ALIVE: Duration = Duration::from_millis(2);

/// The longest the warm-up goes on when its guard is not dropped (a `run` that pulls a large
/// image first: its runtime then pays the wait itself).
pub const MAX_LIFE: Duration = Duration::from_secs(2);

/// The warm-up thread ([`crate::warm_up_cgroup_lock`]); dropping it stops the thread (not
/// waited for: it is at most in one write).
#[derive(Debug)]
pub struct WarmUp {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU32>,
    thread: Option<std::thread::Thread>,
}

impl WarmUp {
    pub(crate) fn start() -> WarmUp {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU32::new(0));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&writes));
        let thread = std::thread::Builder::new()
            .name("cgroup-warm-up".to_owned())
            .spawn(move || keep_warm(&flag, &count))
            .ok()
            .map(|h| h.thread().clone());
        WarmUp {
            stop,
            writes,
            thread,
        }
    }

    /// How many writes the thread made so far.
    pub fn writes(&self) -> u32 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl Drop for WarmUp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

fn keep_warm(stop: &AtomicBool, writes: &AtomicU32) {
    let begun = Instant::now();
    let Ok((_, mut file)) = warm_up() else {
        return;
    };
    writes.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id().to_string();
    loop {
        std::thread::park_timeout(KEEP_ALIVE);
        if stop.load(Ordering::Relaxed) || begun.elapsed() > MAX_LIFE {
            return;
        }
        if file.write_all(pid.as_bytes()).is_err() {
            return;
        }
        writes.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `cgroup.procs` of the cgroup this process is in, in the first hierarchy of
/// `mountinfo` (`/proc/self/mountinfo`) that `cgroup` (`/proc/self/cgroup`) places it in: a
/// cgroup v2 mount for the `0::PATH` line, or a v1 mount whose options name every controller
/// (or the `name=`) of a `ID:CONTROLLERS:PATH` line. Only mounts of the hierarchy's root
/// (`/`) and without escaped characters in their path are considered.
pub(crate) fn own_procs_file(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    let lines: Vec<(&str, &str)> = cgroup
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(':')?;
            rest.split_once(':')
        })
        .collect();
    for m in mountinfo.lines() {
        let fields: Vec<&str> = m.split(' ').collect();
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        if *root != "/" || point.contains('\\') {
            continue;
        }
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(fstype), Some(options)) = (fields.get(dash + 1), fields.get(dash + 3)) else {
            continue;
        };
        let options: Vec<&str> = options.split(',').collect();
        let path = lines.iter().find_map(|(controllers, path)| {
            let matches = match *fstype {
                "cgroup2" => controllers.is_empty(),
                "cgroup" => {
                    !controllers.is_empty() && controllers.split(',').all(|c| options.contains(&c))
                }
                _ => false,
            };
            matches.then_some(*path)
        });
        let Some(path) = path else {
            continue;
        };
        if !path.starts_with('/') || path.contains(" (deleted)") {
            continue;
        }
        let mut file = PathBuf::from(point);
        file.extend(path.split('/').filter(|c| !c.is_empty()));
        file.push("cgroup.procs");
        return Some(file);
    }
    None
}

/// Write this process's pid to the `cgroup.procs` of the cgroup it is in ([`own_procs_file`]);
/// the file written and its open descriptor, or why not. The process stays where it is.
pub(crate) fn warm_up() -> Result<(PathBuf, File), String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let path = own_procs_file(&cgroup, &mountinfo)
        .ok_or_else(|| "no cgroup mount holds this process".to_owned())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    file.write_all(std::process::id().to_string().as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids";

    #[test]
    fn finds_the_first_hierarchy_that_holds_the_process() {
        let cgroup = "4:pids:/user.slice\n3:cpu,cpuacct:/a/b\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(
            own_procs_file(cgroup, HYBRID_MOUNTINFO),
            Some(PathBuf::from("/sys/fs/cgroup/unified/u/cgroup.procs"))
        );
        // without the v2 line: the v1 name= hierarchy, then the combined cpu,cpuacct one
        let cgroup = "4:pids:/user.slice\n3:cpu,cpuacct:/a/b\n1:name=systemd:/s\n";
        assert_eq!(
            own_procs_file(cgroup, HYBRID_MOUNTINFO),
            Some(PathBuf::from("/sys/fs/cgroup/systemd/s/cgroup.procs"))
        );
        let cgroup = "3:cpu,cpuacct:/a/b\n";
        assert_eq!(
            own_procs_file(cgroup, HYBRID_MOUNTINFO),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b/cgroup.procs"))
        );
    }

    #[test]
    fn pure_v2_and_the_root_cgroup() {
        let mountinfo = "25 22 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            own_procs_file("0::/\n", mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/cgroup.procs"))
        );
    }

    #[test]
    fn nothing_when_no_mount_fits() {
        // a bind of a sub-cgroup (root not /), an escaped path, a deleted cgroup, a v1
        // controller not mounted, nothing mounted at all
        let mountinfo = "\
25 22 0:24 /sub /sys/fs/cgroup rw - cgroup2 cgroup2 rw
26 22 0:25 / /mnt/with\\040space rw - cgroup cgroup rw,pids";
        assert_eq!(own_procs_file("0::/x\n4:pids:/y\n", mountinfo), None);
        assert_eq!(
            own_procs_file("0::/gone (deleted)\n", "25 22 0:24 / /c rw - cgroup2 c rw"),
            None
        );
        assert_eq!(own_procs_file("5:memory:/m\n", HYBRID_MOUNTINFO), None);
        assert_eq!(own_procs_file("0::/\n", ""), None);
        assert_eq!(own_procs_file("garbage", HYBRID_MOUNTINFO), None);
    }

    #[test]
    fn the_warm_up_leaves_the_process_where_it_was() {
        // as root (tests run as root here and in CI): the write succeeds and moves nothing
        let before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let (file, _) = warm_up().unwrap();
        assert!(file.ends_with("cgroup.procs"), "{}", file.display());
        let pids = std::fs::read_to_string(&file).unwrap();
        assert!(
            pids.lines().any(|p| p == std::process::id().to_string()),
            "{} does not list this process",
            file.display()
        );
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            before
        );
    }

    #[test]
    fn the_keep_alive_thread_stops_with_its_guard() {
        let before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let running = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .any(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "cgroup-warm-up")
                })
        };
        let guard = WarmUp::start();
        assert!(guard.thread.is_some(), "the warm-up thread did not start");
        // it writes again and again while its guard lives (as root every write succeeds)
        assert!(
            berth_test_support::wait_until(Duration::from_secs(2), || guard.writes() >= 4),
            "{} writes in 2 s",
            guard.writes()
        );
        assert!(running(), "the warm-up thread ended while its guard lives");
        drop(guard);
        assert!(
            berth_test_support::wait_until(Duration::from_secs(2), || !running()),
            "the warm-up thread outlived its guard"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            before
        );
    }
}
