//! The eBPF probes for real (root, a kernel with BTF): processes placed in cgroups the tests
//! create under the cgroup2 root, an overlay mount, TCP listeners on 127.0.0.1. Without root
//! or BTF these tests fail, saying what is missing: they never skip.
//!
//! Every event of a process is in the ring buffer (or counted as dropped) before the process
//! exits, so once a test has waited for its children, one drain of the buffer holds all their
//! events: the tests assert exact counts with no timing.

use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_watch::event::{Bind, Connect, Event, Exec, FileOrigin, OpenWrite};
use berth_watch::probe::{AllowedDestination, ProbeError, ProbeOptions, Probes, cgroup_id};

fn load(options: ProbeOptions) -> Probes {
    match Probes::load(options) {
        Ok(p) => p,
        Err(e) => panic!(
            "failed to load the eBPF probes: {}\nthese tests need root and a kernel with BTF \
             (/sys/kernel/btf/vmlinux); scripts/test runs them as root",
            berth_errdefs::error_chain(&e)
        ),
    }
}

/// A cgroup2 directory of its own, removed on drop (after killing, by pid, what is left in it).
struct TestCgroup {
    dir: PathBuf,
    id: u64,
}

impl TestCgroup {
    fn new(probes: &Probes, name: &str) -> TestCgroup {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = probes.cgroup2_root().join(format!(
            "berth-watch-it-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TestCgroup::at(dir)
    }

    fn at(dir: PathBuf) -> TestCgroup {
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let id = cgroup_id(&dir).unwrap();
        TestCgroup { dir, id }
    }

    /// A cgroup below this one (dropped first when declared after it).
    fn child(&self, name: &str) -> TestCgroup {
        TestCgroup::at(self.dir.join(name))
    }

    /// `shell -c SCRIPT` with the shell moved into this cgroup first (its own start is not
    /// in it; everything the script does is).
    fn command(&self, shell: &str, script: &str) -> Command {
        let mut c = Command::new(shell);
        c.arg("-c").arg(format!(
            "echo $$ > '{}' && {script}",
            self.dir.join("cgroup.procs").display()
        ));
        c
    }

    fn run(&self, script: &str) -> Output {
        self.run_with("sh", script)
    }

    fn run_with(&self, shell: &str, script: &str) -> Output {
        self.command(shell, script).output().unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let procs = self.dir.join("cgroup.procs");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for pid in fs::read_to_string(&procs).unwrap_or_default().lines() {
                if let Some(pid) = pid
                    .trim()
                    .parse()
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            match fs::remove_dir(&self.dir) {
                Err(e) if e.kind() == ErrorKind::ResourceBusy && Instant::now() < deadline => {
                    std::thread::yield_now()
                }
                _ => break,
            }
        }
    }
}

/// Everything in the ring buffer now (and the drops counted so far).
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

fn execs(events: &[Event]) -> Vec<&Exec> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Exec(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn opens(events: &[Event]) -> Vec<&OpenWrite> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OpenWrite(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn connects(events: &[Event]) -> Vec<&Connect> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Connect(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn binds(events: &[Event]) -> Vec<&Bind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Bind(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exec_in_a_watched_cgroup_is_one_event_with_argv_uid_inode_and_parent() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "exec");
    p.watch_cgroup(cg.id).unwrap();
    let child = cg.command("sh", "exec /bin/true a b").spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "sh -c 'exec /bin/true a b'");

    let events = drain(&mut p);
    let execs = execs(&events);
    assert_eq!(execs.len(), 1, "{events:#?}");
    let e = execs[0];
    assert_eq!(e.cgroup_id, cg.id);
    assert_eq!(e.argv, ["/bin/true", "a", "b"]);
    assert!(!e.argv_truncated);
    assert!(!e.interpreted);
    assert_eq!(e.filename, "/bin/true");
    assert_eq!(e.uid, 0);
    assert_eq!(e.pid, pid, "exec keeps the shell's pid");
    assert_eq!(e.ppid, std::process::id(), "the shell's parent is the test");
    assert_eq!(e.origin, FileOrigin::NotOverlay);
    let st = fs::metadata("/bin/true").unwrap();
    assert_eq!(
        (e.ino, e.dev),
        (st.ino(), st.dev()),
        "inode and st_dev of /bin/true"
    );
    assert!(e.boot_ns > 0);
    assert_eq!(
        e.mnt_ns,
        fs::metadata("/proc/self/ns/mnt").unwrap().ino(),
        "the mount namespace the program ran in"
    );
    let nspid = fs::read_to_string("/proc/self/status").unwrap();
    let level = nspid
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|p| p.split_whitespace().count() - 1)
        .unwrap();
    assert_eq!(e.pid_ns_level as usize, level, "the test's pid namespace");
    assert_eq!(p.counters().dropped, 0);
}

/// The namespaces an exec ran in, as the kernel side reads them: a new pid namespace is one
/// level deeper, a new mount namespace has its own inode number (what tells a runtime's execs
/// in a container's cgroup from the container's own).
#[test]
fn exec_reports_its_mount_namespace_and_pid_namespace_level() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "ns");
    p.watch_cgroup(cg.id).unwrap();
    assert_success(
        &cg.run("/bin/true here; unshare --pid --fork --mount /bin/true nested"),
        "unshare",
    );
    let events = drain(&mut p);
    let execs = execs(&events);
    let of = |arg: &str| {
        *execs
            .iter()
            .find(|e| e.filename == "/bin/true" && e.argv.last().map(String::as_str) == Some(arg))
            .unwrap_or_else(|| panic!("no exec of /bin/true {arg}: {events:#?}"))
    };
    let (here, nested) = (of("here"), of("nested"));
    assert_eq!(
        here.mnt_ns,
        fs::metadata("/proc/self/ns/mnt").unwrap().ino()
    );
    assert_eq!(nested.pid_ns_level, here.pid_ns_level + 1);
    assert_ne!(nested.mnt_ns, here.mnt_ns);
    assert_ne!(nested.mnt_ns, 0);
}

#[test]
fn a_process_in_an_unwatched_cgroup_is_not_reported() {
    let mut p = load(ProbeOptions::default());
    let quiet = TestCgroup::new(&p, "unwatched");
    let loud = TestCgroup::new(&p, "watched");
    p.watch_cgroup(loud.id).unwrap();
    assert_success(
        &quiet.run("/bin/true quiet; echo x > /dev/null"),
        "unwatched",
    );
    assert_success(&loud.run("/bin/true loud"), "watched");
    let events = drain(&mut p);
    assert!(
        events.iter().all(|e| e.cgroup_id() == Some(loud.id)),
        "only the watched cgroup's events: {events:#?}"
    );
    assert_eq!(execs(&events).len(), 1, "{events:#?}");
    assert_eq!(execs(&events)[0].argv, ["/bin/true", "loud"]);

    // unwatching stops the events
    p.unwatch_cgroup(loud.id).unwrap();
    p.unwatch_cgroup(loud.id).unwrap();
    assert_success(&loud.run("/bin/true again"), "unwatched again");
    assert_eq!(drain(&mut p), []);
}

/// A container that makes cgroups of its own below the one it was given (systemd in it, or any
/// process with write access to its cgroupfs) is still watched there: its execs are reported
/// under the watched cgroup, the nearest one when watched cgroups are nested, and its connects
/// are checked against that cgroup's policy.
#[test]
fn processes_in_cgroups_below_a_watched_one_are_its_own() {
    let mut p = load(ProbeOptions::default());
    let outer = TestCgroup::new(&p, "outer");
    let inner = outer.child("inner");
    let deeper = inner.child("deeper");
    let sibling = TestCgroup::new(&p, "sibling");
    p.watch_cgroup(outer.id).unwrap();
    assert_success(&inner.run("/bin/true inner"), "inner");
    assert_success(&deeper.run("/bin/true deeper"), "deeper");
    assert_success(&sibling.run("/bin/true sibling"), "sibling");
    let events = drain(&mut p);
    let e = execs(&events);
    assert_eq!(e.len(), 2, "{events:#?}");
    assert_eq!(e[0].argv, ["/bin/true", "inner"]);
    assert_eq!(e[1].argv, ["/bin/true", "deeper"]);
    assert!(
        events.iter().all(|e| e.cgroup_id() == Some(outer.id)),
        "reported under the watched cgroup: {events:#?}"
    );

    // the nearest watched cgroup is the one reported
    p.watch_cgroup(inner.id).unwrap();
    assert_success(&deeper.run("/bin/true nested"), "nested");
    let events = drain(&mut p);
    assert_eq!(execs(&events).len(), 1, "{events:#?}");
    assert_eq!(execs(&events)[0].cgroup_id, inner.id);
    p.unwatch_cgroup(inner.id).unwrap();

    // the outer cgroup's policy holds below it
    let (listener, addr) = nonblocking_listener();
    p.set_connect_policy(outer.id, true, &[]).unwrap();
    let out = deeper.run_with("bash", &connect_script(addr));
    assert!(
        !out.status.success(),
        "a connect from below escaped the policy"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Operation not permitted"),
        "EPERM expected: {stderr}"
    );
    assert_eq!(
        listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "nothing reached the listener"
    );
    let events = drain(&mut p);
    let c = connects(&events);
    assert_eq!(c.len(), 1, "{events:#?}");
    assert_eq!((c[0].cgroup_id, c[0].blocked), (outer.id, true));
    // the sibling has no policy
    assert_success(&sibling.run_with("bash", &connect_script(addr)), "sibling");
    assert!(listener.accept().is_ok());
}

/// With `unwatched`, the execs and connects of a cgroup neither watched nor ignored are
/// reported (a container's first ones, before user space has found it), until the cgroup is
/// ignored; watching it reports them again.
#[test]
fn unwatched_execs_and_connects_are_reported_until_their_cgroup_is_ignored() {
    let mut p = load(ProbeOptions {
        unwatched: true,
        ..ProbeOptions::default()
    });
    let cg = TestCgroup::new(&p, "new");
    let (listener, addr) = nonblocking_listener();
    let script = format!("/bin/true first; {}", connect_script(addr));
    assert_success(&cg.run_with("bash", &script), "first");
    assert!(listener.accept().is_ok());
    // the rest of the machine execs too: this cgroup's events only
    let mine = |events: &[Event]| -> Vec<Event> {
        events
            .iter()
            .filter(|e| e.cgroup_id() == Some(cg.id))
            .cloned()
            .collect()
    };
    let events = mine(&drain(&mut p));
    assert_eq!(execs(&events).len(), 1, "{events:#?}");
    assert_eq!(execs(&events)[0].argv, ["/bin/true", "first"]);
    assert_eq!(connects(&events).len(), 1, "{events:#?}");
    assert_eq!(connects(&events)[0].destination, addr);
    assert!(!connects(&events)[0].blocked);

    p.ignore_cgroup(cg.id).unwrap();
    let script = format!("/bin/true ignored; {}", connect_script(addr));
    assert_success(&cg.run_with("bash", &script), "ignored");
    assert!(listener.accept().is_ok());
    assert_eq!(mine(&drain(&mut p)), []);

    p.watch_cgroup(cg.id).unwrap();
    assert_success(&cg.run("/bin/true watched"), "watched");
    let events = mine(&drain(&mut p));
    assert_eq!(execs(&events).len(), 1, "{events:#?}");
    assert_eq!(execs(&events)[0].argv, ["/bin/true", "watched"]);
}

/// An overlay mount (lower with an executable, empty upper), unmounted on drop.
struct Overlay {
    _dir: tempfile::TempDir,
    merged: PathBuf,
}

impl Overlay {
    fn new() -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper, work, merged) = (
            dir.path().join("lower"),
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("merged"),
        );
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir(d).unwrap();
        }
        fs::copy("/bin/true", lower.join("prog")).unwrap();
        let data = std::ffi::CString::new(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .unwrap();
        rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
        .unwrap_or_else(|e| panic!("mount overlay on {}: {e}", merged.display()));
        Overlay { _dir: dir, merged }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn exec_on_overlay_tells_the_lower_layers_from_the_upper_one() {
    let mut p = load(ProbeOptions::default());
    let ov = Overlay::new();
    let cg = TestCgroup::new(&p, "overlay");
    p.watch_cgroup(cg.id).unwrap();
    let prog = ov.merged.join("prog");
    let copy = ov.merged.join("copy");
    assert_success(
        &cg.run(&format!(
            "'{prog}' lower && cp '{prog}' '{copy}' && '{copy}' upper",
            prog = prog.display(),
            copy = copy.display()
        )),
        "exec on overlay",
    );
    let events = drain(&mut p);
    let execs = execs(&events);
    let lower = execs
        .iter()
        .find(|e| e.argv.get(1).map(String::as_str) == Some("lower"))
        .unwrap_or_else(|| panic!("no exec of the lower file: {events:#?}"));
    let upper = execs
        .iter()
        .find(|e| e.argv.get(1).map(String::as_str) == Some("upper"))
        .unwrap_or_else(|| panic!("no exec of the copy: {events:#?}"));
    assert_eq!(lower.origin, FileOrigin::Lower);
    assert_eq!(upper.origin, FileOrigin::Upper);
    assert_eq!(lower.filename, prog.display().to_string());
    // cp is on the host's root: not overlay
    let cp = execs
        .iter()
        .find(|e| e.argv.first().map(String::as_str) == Some("cp"))
        .unwrap_or_else(|| panic!("no exec of cp: {events:#?}"));
    assert_eq!(cp.origin, FileOrigin::NotOverlay);
    for (e, path) in [(lower, &prog), (upper, &copy)] {
        let st = fs::metadata(path).unwrap();
        assert_eq!(
            (e.ino, e.dev),
            (st.ino(), st.dev()),
            "inode and device of {} as stat(2) sees them through the mount",
            path.display()
        );
    }
}

#[test]
fn open_for_write_is_reported_and_reads_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = load(ProbeOptions {
        write_prefixes: vec![dir.path().to_owned()],
        ..ProbeOptions::default()
    });
    let cg = TestCgroup::new(&p, "open");
    p.watch_cgroup(cg.id).unwrap();
    let written = dir.path().join("written");
    let read = dir.path().join("read");
    fs::copy("/etc/passwd", &read).unwrap();
    assert_success(
        &cg.run(&format!(
            "echo hi > '{}' && read x < '{}' && echo outside > /dev/null",
            written.display(),
            read.display()
        )),
        "write, read",
    );
    let events = drain(&mut p);
    let opens = opens(&events);
    assert_eq!(
        opens.len(),
        1,
        "one open for write under the prefix: {events:#?}"
    );
    let o = opens[0];
    assert_eq!(o.path, written.display().to_string());
    assert_eq!(o.cgroup_id, cg.id);
    assert_eq!(o.uid, 0);
    let wanted = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u32;
    assert_eq!(o.flags & wanted, wanted, "flags {:#o}", o.flags);
    assert_eq!(p.counters().filtered, 1, "/dev/null is outside the prefix");
    assert!(
        !p.open_tracepoints().is_empty() && p.open_tracepoints().contains(&"sys_enter_openat"),
        "{:?}",
        p.open_tracepoints()
    );
}

/// Without `opens`, no syscall tracepoint is attached (what a watcher with no write-watched
/// path asks for: opens then cost nothing) and no open is reported; execs still are.
#[test]
fn without_opens_no_syscall_tracepoint_is_attached_and_no_open_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = load(ProbeOptions {
        write_prefixes: vec![dir.path().to_owned()],
        opens: false,
        ..ProbeOptions::default()
    });
    assert!(
        p.open_tracepoints().is_empty(),
        "{:?}",
        p.open_tracepoints()
    );
    let cg = TestCgroup::new(&p, "noopen");
    p.watch_cgroup(cg.id).unwrap();
    let written = dir.path().join("written");
    assert_success(
        &cg.run(&format!("echo hi > '{}' && /bin/true", written.display())),
        "write",
    );
    let events = drain(&mut p);
    assert!(opens(&events).is_empty(), "{events:#?}");
    assert!(
        execs(&events).iter().any(|e| e.filename == "/bin/true"),
        "the exec is still reported: {events:#?}"
    );
}

fn nonblocking_listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// bash's `/dev/tcp` connect from inside the cgroup.
fn connect_script(to: SocketAddr) -> String {
    format!("exec 3<>/dev/tcp/{}/{}", to.ip(), to.port())
}

#[test]
fn connect_is_reported_and_enforcement_blocks_what_the_policy_does_not_allow() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "connect");
    p.watch_cgroup(cg.id).unwrap();
    let (denied, denied_addr) = nonblocking_listener();
    let (allowed, allowed_addr) = nonblocking_listener();

    // not enforced: reported, connected
    assert_success(
        &cg.run_with("bash", &connect_script(denied_addr)),
        "connect",
    );
    assert!(denied.accept().is_ok(), "the connect reached the listener");
    let events = drain(&mut p);
    let c = connects(&events);
    assert_eq!(c.len(), 1, "{events:#?}");
    assert_eq!(c[0].destination, denied_addr);
    assert!(c[0].stream);
    assert!(!c[0].blocked);
    assert_eq!(c[0].cgroup_id, cg.id);

    // enforced, only the other port allowed
    p.set_connect_policy(cg.id, true, &[AllowedDestination::exact(allowed_addr)])
        .unwrap();
    let out = cg.run_with("bash", &connect_script(denied_addr));
    assert!(
        !out.status.success(),
        "the connect outside the policy succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Operation not permitted"),
        "EPERM expected: {stderr}"
    );
    assert_eq!(
        denied.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "nothing reached the denied listener"
    );
    assert_success(
        &cg.run_with("bash", &connect_script(allowed_addr)),
        "allowed connect",
    );
    assert!(allowed.accept().is_ok());
    let events = drain(&mut p);
    let c = connects(&events);
    assert_eq!(c.len(), 2, "{events:#?}");
    assert_eq!((c[0].destination, c[0].blocked), (denied_addr, true));
    assert_eq!((c[1].destination, c[1].blocked), (allowed_addr, false));

    // a prefix and any port: 127.0.0.0/8 allows both
    p.set_connect_policy(
        cg.id,
        true,
        &[AllowedDestination {
            addr: "127.0.0.0".parse().unwrap(),
            prefix_len: 8,
            port: None,
        }],
    )
    .unwrap();
    assert_success(&cg.run_with("bash", &connect_script(denied_addr)), "prefix");
    assert!(denied.accept().is_ok());

    // an empty allow-list blocks everything; with the policy cleared nothing is checked
    p.set_connect_policy(cg.id, true, &[]).unwrap();
    assert!(
        !cg.run_with("bash", &connect_script(denied_addr))
            .status
            .success()
    );
    p.clear_connect_policy(cg.id).unwrap();
    assert_success(
        &cg.run_with("bash", &connect_script(denied_addr)),
        "cleared",
    );
    assert!(denied.accept().is_ok());
}

#[test]
fn enforcement_covers_ipv6_and_ipv4_mapped_destinations() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "connect6");
    p.watch_cgroup(cg.id).unwrap();
    let l6 = TcpListener::bind("[::1]:0").unwrap();
    let addr6 = l6.local_addr().unwrap();
    let l4 = TcpListener::bind("[::]:0").unwrap();
    let port4 = l4.local_addr().unwrap().port();
    // allow only 127.0.0.1 (IPv4) on port4; ::1 denied
    p.set_connect_policy(
        cg.id,
        true,
        &[AllowedDestination::exact(SocketAddr::from((
            [127, 0, 0, 1],
            port4,
        )))],
    )
    .unwrap();
    let out = cg.run_with("bash", &connect_script(addr6));
    assert!(!out.status.success(), "connect to {addr6} was not blocked");
    // python-free IPv4-mapped connect: bash resolves ::ffff:127.0.0.1 to an AF_INET6 socket
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{port4}").parse().unwrap();
    assert_success(
        &cg.run_with("bash", &connect_script(mapped)),
        "mapped connect",
    );
    let events = drain(&mut p);
    let c = connects(&events);
    assert_eq!(c.len(), 2, "{events:#?}");
    assert_eq!((c[0].destination, c[0].blocked), (addr6, true));
    assert_eq!((c[1].destination, c[1].blocked), (mapped, false));
}

#[test]
fn an_exec_storm_into_a_tiny_ring_buffer_counts_every_lost_event() {
    let page = u32::try_from(rustix::param::page_size()).unwrap();
    let mut p = load(ProbeOptions {
        ring_buffer_bytes: page,
        ..ProbeOptions::default()
    });
    let cg = TestCgroup::new(&p, "storm");
    p.watch_cgroup(cg.id).unwrap();
    const EXECS: usize = 300;
    assert_success(
        &cg.run(&format!(
            "i=0; while [ $i -lt {EXECS} ]; do /bin/true; i=$((i+1)); done"
        )),
        "exec storm",
    );
    let events = drain(&mut p);
    let received = execs(&events).len();
    let dropped: u64 = events
        .iter()
        .map(|e| match e {
            Event::Dropped { count } => *count,
            _ => 0,
        })
        .sum();
    eprintln!("exec storm: {EXECS} execs, {received} received, {dropped} dropped");
    assert!(
        dropped > 0,
        "a {page}-byte ring buffer held {EXECS} exec events"
    );
    assert_eq!(
        received as u64 + dropped,
        EXECS as u64,
        "received {received} + dropped {dropped}"
    );
    assert_eq!(p.counters().dropped, dropped);
    assert!(
        events
            .iter()
            .all(|e| e.cgroup_id().is_none_or(|id| id == cg.id))
    );
}

#[test]
fn next_events_waits_until_an_event_arrives() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "wait");
    p.watch_cgroup(cg.id).unwrap();
    assert_eq!(p.next_events(Some(Duration::from_millis(20))).unwrap(), []);
    let mut child = cg
        .command("sh", "read x; exec /bin/true waited")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    drop(stdin); // read returns at EOF, then the exec
    let events = p.next_events(Some(Duration::from_secs(10))).unwrap();
    assert_success(&child.wait_with_output().unwrap(), "waited");
    assert_eq!(execs(&events).len(), 1, "{events:#?}");
    assert_eq!(execs(&events)[0].argv, ["/bin/true", "waited"]);
}

#[test]
fn loading_says_what_is_missing() {
    let no_btf = Probes::load(ProbeOptions {
        btf: PathBuf::from("/nonexistent/vmlinux"),
        ..ProbeOptions::default()
    })
    .unwrap_err();
    assert!(matches!(no_btf, ProbeError::NoBtf { .. }), "{no_btf:?}");
    assert!(
        no_btf.to_string().contains("CONFIG_DEBUG_INFO_BTF"),
        "{no_btf}"
    );
    let ring = Probes::load(ProbeOptions {
        ring_buffer_bytes: 5000,
        ..ProbeOptions::default()
    })
    .unwrap_err();
    assert!(
        matches!(ring, ProbeError::RingBufferSize { bytes: 5000, .. }),
        "{ring:?}"
    );
    let cgroup = Probes::load(ProbeOptions {
        cgroup2_root: Some(PathBuf::from("/nonexistent/cgroup")),
        ..ProbeOptions::default()
    })
    .unwrap_err();
    assert!(
        matches!(cgroup, ProbeError::Cgroup2Root { .. }),
        "{cgroup:?}"
    );
}

/// The embedded object is what `scripts/build-bpf` builds from `bpf/watch.bpf.c` with this
/// machine's clang: a change to the C source must come with the rebuilt object.
#[test]
fn committed_bpf_object_matches_its_source() {
    for tool in ["clang", "llvm-strip"] {
        let found = Command::new(tool).arg("--version").output().is_ok();
        assert!(
            found,
            "{tool} is not installed: it rebuilds crates/watch/bpf/watch.bpf.o\nhint: apt-get install -y clang llvm"
        );
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-bpf");
    let out = Command::new(&script).arg("--check").output().unwrap();
    assert_success(&out, "scripts/build-bpf --check");
}

#[test]
fn argv_past_the_bound_is_cut_and_flagged() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "argv");
    p.watch_cgroup(cg.id).unwrap();
    // 20 short arguments: more than ARGV_MAX
    let many: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    // one argument of 2000 bytes: past the 1 KiB the probe copies
    let long = "x".repeat(2000);
    assert_success(
        &cg.run(&format!("/bin/true {} && /bin/true {long}", many.join(" "))),
        "long argv",
    );
    let events = drain(&mut p);
    let execs = execs(&events);
    assert_eq!(execs.len(), 2, "{events:#?}");
    assert_eq!(execs[0].argv.len(), berth_watch::probe::ARGV_MAX);
    assert_eq!(execs[0].argv[1], "a0");
    assert!(execs[0].argv_truncated);
    assert_eq!(execs[1].argv.len(), 2);
    assert_eq!(execs[1].argv[1].len(), 1024 - "/bin/true\0".len());
    assert!(execs[1].argv[1].chars().all(|c| c == 'x'));
    assert!(execs[1].argv_truncated);
}

/// Set in the environment of this test's own re-run without privileges (below).
const UNPRIVILEGED_CHILD: &str = "BERTH_WATCH_IT_UNPRIVILEGED_CHILD";

/// Without root (nobody, no capabilities: setpriv), loading says what is missing.
#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "the test tells its unprivileged re-run from itself by an environment variable"
)]
fn loading_without_privileges_says_what_is_missing() {
    if std::env::var_os(UNPRIVILEGED_CHILD).is_some() {
        let e = Probes::load(ProbeOptions::default()).unwrap_err();
        assert!(matches!(e, ProbeError::NotPrivileged { .. }), "{e:?}");
        assert_eq!(e.kind(), berth_errdefs::ErrorKind::Denied);
        let text = e.to_string();
        assert!(text.contains("needs root"), "{text}");
        assert!(
            text.contains("CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN"),
            "{text}"
        );
        return;
    }
    let found = Command::new("setpriv").arg("--version").output().is_ok();
    assert!(
        found,
        "setpriv is not installed\nhint: apt-get install -y util-linux"
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "probe::loading_without_privileges_says_what_is_missing",
            "--exact",
            "--nocapture",
        ])
        .env(UNPRIVILEGED_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out, "the test re-run as nobody");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// `berth watch`'s shape: a thread blocked reading events while another adds a container's
/// cgroup as it starts.
#[test]
fn a_reader_thread_sees_a_cgroup_watched_while_it_waits() {
    let p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "split");
    let (mut control, mut reader) = p.split();
    let id = cg.id;
    let reading = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            seen.extend(reader.next_events(Some(Duration::from_secs(1))).unwrap());
            if seen
                .iter()
                .any(|e| matches!(e, Event::Exec(x) if x.cgroup_id == id))
            {
                break;
            }
        }
        seen
    });
    control.watch_cgroup(cg.id).unwrap();
    assert_success(&cg.run("/bin/true split"), "exec");
    let seen = reading.join().unwrap();
    let execs = execs(&seen);
    assert_eq!(execs.len(), 1, "{seen:#?}");
    assert_eq!(execs[0].argv, ["/bin/true", "split"]);
}

#[test]
fn a_udp_connect_is_reported_as_not_stream() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "udp");
    p.watch_cgroup(cg.id).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = socket.local_addr().unwrap();
    assert_success(
        &cg.run_with(
            "bash",
            &format!("exec 3<>/dev/udp/{}/{}", to.ip(), to.port()),
        ),
        "udp connect",
    );
    let events = drain(&mut p);
    let c = connects(&events);
    assert_eq!(c.len(), 1, "{events:#?}");
    assert_eq!(c[0].destination, to);
    assert!(!c[0].stream);
    assert!(!c[0].blocked);
}

/// A bind to a port is reported with its address and protocol (TCP over IPv4, UDP over IPv6:
/// `cgroup/bind4` and `bind6`); a bind to port 0 (an ephemeral port, as a client asks for) is
/// not, nor a bind in a cgroup not watched.
#[test]
fn a_bind_to_a_port_is_reported_and_port_zero_is_not() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "bind");
    let other = TestCgroup::new(&p, "bind-other");
    p.watch_cgroup(cg.id).unwrap();
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (tcp, udp, unwatched) = (free(), free(), free());
    let script = |tcp: u16, udp: u16| {
        format!(
            "import socket\n\
             t = socket.socket(); t.bind(('0.0.0.0', {tcp})); t.listen()\n\
             u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::1', {udp}))\n\
             e = socket.socket(); e.bind(('127.0.0.1', 0))\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (watched, not) = (dir.path().join("bind.py"), dir.path().join("other.py"));
    crate::support::put(&watched, script(tcp, udp).as_bytes(), 0o644);
    crate::support::put(&not, script(unwatched, free()).as_bytes(), 0o644);
    assert_success(
        &cg.run(&format!("python3 '{}'", watched.display())),
        "binds",
    );
    assert_success(
        &other.run(&format!("python3 '{}'", not.display())),
        "binds in a cgroup not watched",
    );
    let events = drain(&mut p);
    let b = binds(&events);
    assert_eq!(b.len(), 2, "{events:#?}");
    assert_eq!(
        (b[0].address, b[0].stream, b[0].cgroup_id),
        (SocketAddr::from(([0, 0, 0, 0], tcp)), true, cg.id)
    );
    assert_eq!(
        (b[1].address, b[1].stream),
        (
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, udp)),
            false
        )
    );
}

/// A script's exec reports its interpreter's file (the kernel has closed the script's by the
/// tracepoint) and says so: the layer above must look the script up by its path.
#[test]
fn a_script_is_reported_as_interpreted_with_the_interpreter_file() {
    let mut p = load(ProbeOptions::default());
    let ov = Overlay::new();
    let cg = TestCgroup::new(&p, "script");
    p.watch_cgroup(cg.id).unwrap();
    let script = ov.merged.join("new.sh");
    assert_success(
        &cg.run(&format!(
            "printf '#!/bin/sh\\nexit 0\\n' > '{0}' && chmod +x '{0}' && '{0}' x",
            script.display()
        )),
        "script in the upper layer",
    );
    let events = drain(&mut p);
    let execs = execs(&events);
    let e = execs
        .iter()
        .find(|e| e.filename == script.display().to_string())
        .unwrap_or_else(|| panic!("no exec of the script: {events:#?}"));
    assert!(e.interpreted);
    assert_eq!(e.argv, ["/bin/sh", &script.display().to_string(), "x"]);
    let sh = fs::metadata("/bin/sh").unwrap();
    assert_eq!(
        (e.ino, e.dev),
        (sh.ino(), sh.dev()),
        "the interpreter's inode"
    );
    assert_eq!(e.origin, FileOrigin::NotOverlay, "the interpreter's origin");
    let chmod = execs
        .iter()
        .find(|e| e.argv.first().map(String::as_str) == Some("chmod"))
        .unwrap_or_else(|| panic!("no exec of chmod: {events:#?}"));
    assert!(!chmod.interpreted);
}

/// An unconnected UDP socket's sendto is held to the policy too (cgroup/sendmsg4): only the
/// refused one is reported.
#[test]
fn enforcement_refuses_an_unconnected_udp_sendto() {
    let found = Command::new("python3").arg("--version").output().is_ok();
    assert!(
        found,
        "python3 is not installed\nhint: apt-get install -y python3"
    );
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "sendto");
    p.watch_cgroup(cg.id).unwrap();
    let denied = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let allowed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (denied_addr, allowed_addr) = (denied.local_addr().unwrap(), allowed.local_addr().unwrap());
    p.set_connect_policy(cg.id, true, &[AllowedDestination::exact(allowed_addr)])
        .unwrap();
    let sendto = |to: SocketAddr| {
        format!(
            "exec python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('{}', {}))\"",
            to.ip(),
            to.port()
        )
    };
    let out = cg.run(&sendto(denied_addr));
    assert!(
        !out.status.success(),
        "sendto {denied_addr} was not refused"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PermissionError"),
        "EPERM expected: {stderr}"
    );
    assert_success(&cg.run(&sendto(allowed_addr)), "allowed sendto");
    allowed.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        allowed.recv(&mut buf).unwrap(),
        1,
        "the allowed datagram arrived"
    );
    let events = drain(&mut p);
    let c = connects(&events);
    assert_eq!(c.len(), 1, "only the refused send is an event: {events:#?}");
    assert_eq!(
        (c[0].destination, c[0].blocked, c[0].stream),
        (denied_addr, true, false)
    );
}

/// open(2), creat(2) and openat2(2) made directly (glibc's open() and creat() call openat):
/// each is a tracepoint of its own.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_open_syscall_for_write_is_reported() {
    let found = Command::new("python3").arg("--version").output().is_ok();
    assert!(
        found,
        "python3 is not installed\nhint: apt-get install -y python3"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut p = load(ProbeOptions {
        write_prefixes: vec![dir.path().to_owned()],
        ..ProbeOptions::default()
    });
    assert_eq!(
        p.open_tracepoints(),
        [
            "sys_enter_openat",
            "sys_enter_openat2",
            "sys_enter_open",
            "sys_enter_creat"
        ]
    );
    let cg = TestCgroup::new(&p, "syscalls");
    p.watch_cgroup(cg.id).unwrap();
    let script = format!(
        r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]
class How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
how = How(os.O_WRONLY | os.O_CREAT, 0o644, 0)
fds = [
    libc.syscall({open}, (d + "/open").encode(), os.O_WRONLY | os.O_CREAT, 0o644),
    libc.syscall({creat}, (d + "/creat").encode(), 0o644),
    libc.syscall({openat2}, -100, (d + "/openat2").encode(), ctypes.byref(how), ctypes.sizeof(how)),
    libc.syscall({open}, (d + "/read").encode(), os.O_RDONLY, 0),
]
sys.exit(0 if all(fd >= 0 for fd in fds) else 1)
"#,
        open = libc::SYS_open,
        creat = libc::SYS_creat,
        openat2 = libc::SYS_openat2,
    );
    fs::copy("/etc/passwd", dir.path().join("read")).unwrap();
    assert_success(
        &cg.run(&format!(
            "exec python3 -c '{script}' '{}'",
            dir.path().display()
        )),
        "python3 syscalls",
    );
    let events = drain(&mut p);
    let paths: Vec<String> = opens(&events).iter().map(|o| o.path.clone()).collect();
    let d = dir.path().display();
    assert_eq!(
        paths,
        [
            format!("{d}/open"),
            format!("{d}/creat"),
            format!("{d}/openat2")
        ],
        "{events:#?}"
    );
}

/// A path in a page the process has not touched yet cannot be read at the syscall's entry (a
/// tracepoint cannot fault it in): the open is reported at the exit, path included. The path
/// here is in a file mapping nothing has read (as a string in a new program's read-only data).
#[test]
fn an_open_whose_path_is_not_yet_paged_in_is_reported_with_its_path() {
    let found = Command::new("python3").arg("--version").output().is_ok();
    assert!(
        found,
        "python3 is not installed\nhint: apt-get install -y python3"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut p = load(ProbeOptions {
        write_prefixes: vec![dir.path().to_owned()],
        ..ProbeOptions::default()
    });
    let cg = TestCgroup::new(&p, "paging");
    p.watch_cgroup(cg.id).unwrap();
    let target = dir.path().join("deferred");
    let script = format!(
        r#"
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
holder = sys.argv[1] + "/path"
with open(holder, "wb") as f:
    f.write(sys.argv[2].encode() + b"\0")
fd = os.open(holder, os.O_RDONLY)
m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
r = libc.syscall({openat}, -100, ctypes.c_void_p(addr), os.O_WRONLY | os.O_CREAT, 0o644)
sys.exit(0 if r >= 0 else 1)
"#,
        openat = libc::SYS_openat,
    );
    assert_success(
        &cg.run(&format!(
            "exec python3 -c '{script}' '{}' '{}'",
            dir.path().display(),
            target.display()
        )),
        "openat with an unfaulted path",
    );
    assert!(target.exists());
    let events = drain(&mut p);
    let paths: Vec<&str> = opens(&events).iter().map(|o| o.path.as_str()).collect();
    let holder = dir.path().join("path");
    assert_eq!(
        paths,
        [holder.to_str().unwrap(), target.to_str().unwrap()],
        "{events:#?}"
    );
}

/// Enforcement does not depend on watching: an unwatched cgroup's refused connect fails
/// all the same, and reports nothing.
#[test]
fn enforcement_holds_in_an_unwatched_cgroup_without_events() {
    let mut p = load(ProbeOptions::default());
    let cg = TestCgroup::new(&p, "enforce-unwatched");
    let (denied, denied_addr) = nonblocking_listener();
    p.set_connect_policy(cg.id, true, &[]).unwrap();
    let out = cg.run_with("bash", &connect_script(denied_addr));
    assert!(!out.status.success(), "the connect was not refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    assert_eq!(
        denied.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock)
    );
    assert_eq!(drain(&mut p), []);
}
