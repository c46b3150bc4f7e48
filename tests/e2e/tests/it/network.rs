//! `berth run --network bridge` (CNI: the default network `berth0`, bridge + host-local +
//! portmap + firewall + bandwidth from Debian's plugins). Every test runs berth inside a
//! network namespace of its own (`ip netns add`, then `nsenter --net`), so the bridge, the
//! veths, the NAT rules and every packet stay there; the namespace is deleted at the end.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    berth_bin, requires_root, requires_tool, run_under_strace, run_with_timeout, wait_until,
    write_file,
};

use crate::common::assert_rate;

const IMAGE: &str = "localhost/busybox:net";

struct NetBerth {
    dir: tempfile::TempDir,
    netns: String,
}

impl NetBerth {
    fn new() -> NetBerth {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let netns = format!("berth-e2e-{}-{n}", std::process::id());
        for args in [
            vec!["netns", "add", &netns],
            vec!["-n", &netns, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let b = NetBerth { dir, netns };
        let root = b.dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in [
            "sh", "cat", "nc", "ip", "sleep", "echo", "tail", "cut", "true",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        write_file(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
        b.ok(&["import", root.to_str().unwrap(), IMAGE]);
        b
    }

    /// `COMMAND…` in the test's network namespace (and nothing else changed).
    fn in_ns(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        c
    }

    fn berth(&self, args: &[&str]) -> Command {
        let mut c = self.in_ns(berth_bin().to_str().unwrap());
        c.args(args)
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env(
                "CNI_PATH",
                format!("{}:/usr/lib/cni", self.dir.path().join("plugins").display()),
            )
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.berth(args), Duration::from_secs(120))
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data/berth")
    }

    /// `berth run --rm FLAGS… IMAGE true` for each case: refused (exit 125) with an error
    /// saying its text.
    #[track_caller]
    fn run_refused(&self, cases: &[(&[&str], &str)]) {
        for (flags, says) in cases {
            let mut args = vec!["run", "--rm"];
            args.extend(flags.iter().copied());
            args.extend([IMAGE, "true"]);
            let out = self.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
            assert!(err.contains(says), "{flags:?}: {err}");
        }
    }

    /// `berth network create FLAGS… refused` for each case: refused with an error saying its
    /// text, and no network written.
    #[track_caller]
    fn create_refused(&self, cases: &[(&[&str], &str)]) {
        for (flags, says) in cases {
            let mut args = vec!["network", "create"];
            args.extend(flags.iter().copied());
            args.push("refused");
            let out = self.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{flags:?} was taken");
            assert!(err.contains(says), "{flags:?}: {err}");
        }
        assert!(!self.ok(&["network", "ls", "-q"]).contains("refused"));
    }

    /// `busybox nc` from the test namespace: what the peer sends.
    fn connect(&self, addr: &str, port: u16) -> String {
        let out = run_with_timeout(
            self.in_ns("busybox")
                .args(["nc", "-w", "2", addr, &port.to_string()])
                .stdin(std::process::Stdio::null()),
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What of the network is left in the test namespace: veths, NAT chains of containers,
    /// pinned namespaces, host-local's address files.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let links = Command::new("ip")
            .args(["-n", &self.netns, "-o", "link", "show", "type", "veth"])
            .output()
            .unwrap();
        left.extend(
            String::from_utf8_lossy(&links.stdout)
                .lines()
                .map(|l| format!("veth: {l}")),
        );
        let nat = self
            .in_ns("iptables-save")
            .args(["-t", "nat"])
            .output()
            .unwrap();
        left.extend(
            String::from_utf8_lossy(&nat.stdout)
                .lines()
                .filter(|l| l.starts_with(":CNI-DN-"))
                .map(|l| format!("nat: {l}")),
        );
        for dir in ["netns", "cni/cache/results"] {
            if let Ok(rd) = std::fs::read_dir(self.data().join(dir)) {
                left.extend(rd.flatten().map(|e| format!("{dir}: {:?}", e.file_name())));
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.data().join("cni/networks/berth0")) {
            left.extend(
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .map(|n| format!("ip: {n}")),
            );
        }
        left
    }

    /// Nothing of the network is left ([`NetBerth::leftovers`]).
    #[track_caller]
    fn assert_no_leftovers(&self) {
        let left = self.leftovers();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// What of a container's set-up outside networking is left: mounts under the test's
    /// directory, mount points, volume and /etc directories, and containers' snapshots
    /// (keys that are container ids) in the snapshot roots' metadata.
    fn set_up_leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = mounts_under(self.dir.path())
            .into_iter()
            .map(|m| format!("mount: {m}"))
            .collect();
        for dir in ["rootfs", "volumes", "etc"] {
            if let Ok(rd) = std::fs::read_dir(self.data().join(dir)) {
                left.extend(rd.flatten().map(|e| format!("{dir}: {:?}", e.file_name())));
            }
        }
        // the snapshot root's metadata (crates/image/src/snapshot/layout.rs)
        let meta = std::fs::read(self.data().join("snapshots/metadata.json")).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
        left.extend(
            meta["snapshots"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|k| format!("snapshot: {k}")),
        );
        left
    }

    /// Nothing of containers' set-up is left ([`NetBerth::set_up_leftovers`]).
    #[track_caller]
    fn assert_no_set_up_leftovers(&self) {
        let left = self.set_up_leftovers();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// Mount points at or below `dir` in this process's mount namespace.
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(dir))
        .map(str::to_owned)
        .collect()
}

impl Drop for NetBerth {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // what a failed test's killed runs left: collected, and anything still mounted under
        // the directory (deepest first) unmounted before it is removed
        let _ = self.run(&["system", "prune"]);
        let mut left = mounts_under(self.dir.path());
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let _ = Command::new("umount").args(["-l", &m]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

/// A container that answers `hello from NAME` on port 80, forever.
fn serve(b: &NetBerth, rt: &str, name: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "-d",
        "--runtime",
        rt,
        "--name",
        name,
        "--network",
        "bridge",
    ];
    args.extend_from_slice(extra);
    let script = format!("while true; do echo hello from {name} | nc -l -p 80; done");
    args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
    b.ok(&args).trim().to_owned()
}

/// The container's address, from its own /etc/hosts (its last line).
fn address(b: &NetBerth, name: &str) -> String {
    b.ok(&["exec", name, "sh", "-c", "tail -1 /etc/hosts | cut -f1"])
        .trim()
        .to_owned()
}

#[test]
fn bridge_containers_get_addresses_publish_ports_talk_and_leave_nothing() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save", "runc", "crun");
    let b = NetBerth::new();
    let before = b.leftovers();
    assert!(before.is_empty(), "{before:?}");
    for (i, rt) in ["berth-runtime", "runc", "crun"].into_iter().enumerate() {
        let port = 18080 + u16::try_from(i).unwrap();
        let name = format!("web-{i}");
        serve(&b, rt, &name, &["-p", &format!("{port}:80")]);
        let ip = address(&b, &name);
        assert!(ip.starts_with("10.89."), "{rt}: {ip}");
        let v: serde_json::Value =
            serde_json::from_str(&b.ok(&["container", "inspect", &name])).unwrap();
        let net = &v[0]["NetworkSettings"];
        assert_eq!(net["Networks"]["berth0"]["IPAddress"], ip.as_str(), "{v}");
        assert_eq!(net["Ports"][0], format!("{port}->80/tcp"), "{v}");
        let want = format!("hello from {name}\n");
        // from the host (its side of the bridge), to the container and to the published port
        assert!(
            wait_until(Duration::from_secs(10), || b.connect(&ip, 80) == want),
            "{rt}: the container's port 80 at {ip}"
        );
        assert!(
            wait_until(Duration::from_secs(10), || b.connect("10.89.0.1", port)
                == want),
            "{rt}: the published port {port}"
        );
        // and from another container on the bridge
        let out = b.ok(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            "--network",
            "bridge",
            IMAGE,
            "sh",
            "-c",
            &format!("for i in 1 2 3 4 5; do nc -w 2 {ip} 80 </dev/null && break; sleep 0.2; done"),
        ]);
        assert_eq!(out, want, "{rt}: container to container");
    }
    for i in 0..3 {
        b.ok(&["rm", "-f", &format!("web-{i}")]);
    }
    b.assert_no_leftovers();
}

#[test]
fn bandwidth_is_shaped_by_the_bandwidth_plugin_and_bad_flags_are_refused() {
    requires_root!();
    requires_tool!("ip", "nsenter", "tc");
    let b = NetBerth::new();
    serve(
        &b,
        "berth-runtime",
        "capped",
        &["--network-bandwidth", "egress=10mbit,ingress=1mbit"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "capped"])).unwrap();
    let bw = &v[0]["NetworkSettings"]["Bandwidth"];
    assert_eq!(bw["egress_rate"], 10_000_000, "{v}");
    assert_eq!(bw["ingress_rate"], 1_000_000, "{v}");
    let qdiscs = b.in_ns("tc").args(["qdisc", "show"]).output().unwrap();
    let q = String::from_utf8_lossy(&qdiscs.stdout);
    assert!(
        q.contains("tbf") && q.contains("rate 1Mbit"),
        "ingress shaping: {q}"
    );
    assert!(q.contains("rate 10Mbit"), "egress shaping (ifb): {q}");
    b.ok(&["rm", "-f", "capped"]);
    let q = b.in_ns("tc").args(["qdisc", "show"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&q.stdout).contains("tbf"),
        "a qdisc left"
    );

    for (flags, says) in [
        (
            vec!["--network-bandwidth", "egress=fast"],
            "invalid --network-bandwidth",
        ),
        (vec!["-p", "80"], "a host port is required"),
        (vec!["--network", "none", "-p", "8080:80"], "need a network"),
        (vec!["--network", "nosuchnet"], "nosuchnet"),
    ] {
        let mut args = vec!["run", "--rm"];
        if !flags.contains(&"--network") {
            args.extend(["--network", "bridge"]);
        }
        args.extend(flags.iter().copied());
        args.extend([IMAGE, "true"]);
        let out = b.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
    b.assert_no_leftovers();
}

#[test]
fn user_defined_networks_resolve_names_and_are_managed_with_berth_network() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    assert_eq!(b.ok(&["network", "create", "appnet"]).trim(), "appnet");
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.91.0.0/24",
        "quiet",
    ]);
    let ls = b.ok(&["network", "ls"]);
    assert!(ls.contains("berth0") && ls.contains("10.89.0.0/16"), "{ls}");
    assert!(ls.contains("appnet") && ls.contains("10.90.0.0/24"), "{ls}");
    assert!(ls.contains("quiet") && ls.contains("10.91.0.0/24"), "{ls}");
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "appnet"])).unwrap();
    assert_eq!(inspect[0]["name"], "appnet");
    assert_eq!(inspect[0]["plugins"][0]["type"], "bridge");
    // a subnet overlapping another network's is refused
    let out = b.run(&["network", "create", "--subnet", "10.90.0.128/25", "clash"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlaps"));

    serve(&b, "berth-runtime", "api", &[]);
    b.ok(&["rm", "-f", "api"]);
    // by name on a user-defined network, both ways
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "appnet",
        IMAGE,
        "sh",
        "-c",
    ];
    args.push("while true; do echo hello from api | nc -l -p 80; done");
    b.ok(&args);
    let out = b.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "appnet",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert!(!out.trim().is_empty());
    let got = b.ok(&[
        "exec",
        "client",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do nc -w 2 api 80 </dev/null && break; sleep 0.2; done",
    ]);
    assert_eq!(got, "hello from api\n");
    let api_hosts = b.ok(&["exec", "api", "cat", "/etc/hosts"]);
    assert!(api_hosts.contains("\tclient\n"), "{api_hosts}");
    // an internal network has no route out
    let routes = b.ok(&["run", "--rm", "--network", "quiet", IMAGE, "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains("10.91.0.0/24"), "{routes}");

    let out = b.run(&["network", "rm", "appnet"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{out:?}"
    );
    let out = b.run(&["network", "rm", "berth0"]);
    assert!(!out.status.success());
    b.ok(&["rm", "-f", "api", "client"]);
    assert_eq!(b.ok(&["network", "rm", "appnet"]).trim(), "appnet");
    assert_eq!(b.ok(&["network", "prune"]).trim(), "quiet");
    // (the system's /etc/cni/net.d may list more, podman's for one)
    let names = b.ok(&["network", "ls", "-q"]);
    let names: Vec<&str> = names.lines().collect();
    assert!(names.contains(&"berth0"), "{names:?}");
    assert!(
        !names.contains(&"appnet") && !names.contains(&"quiet"),
        "{names:?}"
    );
    b.assert_no_leftovers();
}

#[test]
fn a_run_killed_in_the_middle_of_set_up_leaves_nothing_after_system_prune_or_the_next_run() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save");
    let b = NetBerth::new();
    // a network whose second plugin hangs on ADD: berth is killed while it runs, after the
    // bridge plugin made the veth and took an address, before any CNI cache entry exists
    let (marker, ipam) = slow_network(&b, "ADD", None);
    let addresses = |dir: &std::path::Path| -> usize {
        std::fs::read_dir(dir.join("slow"))
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("10.92."))
                    .count()
            })
            .unwrap_or(0)
    };
    let kill_a_run = || {
        let mut child = b
            .berth(&["run", "--rm", "--network", "slow", IMAGE, "true"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let hung = wait_until(Duration::from_secs(30), || {
            b.leftovers().iter().any(|l| l.starts_with("veth")) && running(&marker)
        });
        let _ = child.kill();
        let _ = child.wait();
        let _ = Command::new("pkill").args(["-f", &marker]).output();
        assert!(hung, "berth never reached the hanging plugin");
        let leaked = b.leftovers();
        assert!(
            leaked.iter().any(|l| l.starts_with("veth"))
                && leaked.iter().any(|l| l.starts_with("netns")),
            "the kill should have left a veth and a namespace: {leaked:?}"
        );
        assert_eq!(addresses(&ipam), 1, "the bridge plugin took an address");
        let set_up = b.set_up_leftovers();
        for what in ["mount: ", "rootfs: ", "snapshot: "] {
            assert!(
                set_up.iter().any(|l| l.starts_with(what)),
                "the kill should have left a {what}…: {set_up:?}"
            );
        }
    };
    // `berth system prune` finds the orphan (no record) and undoes it
    kill_a_run();
    let pruned = b.ok(&["system", "prune"]);
    assert!(
        pruned.contains("cleaned up after 1 container(s) whose run was killed"),
        "{pruned}"
    );
    b.assert_no_leftovers();
    assert_eq!(addresses(&ipam), 0, "the address was not given back");
    b.assert_no_set_up_leftovers();
    // and so does the next run on a network
    kill_a_run();
    b.ok(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    b.assert_no_leftovers();
    assert_eq!(addresses(&ipam), 0, "the address was not given back");
    b.assert_no_set_up_leftovers();
    // also a run with no network at all cleans up after killed ones
    kill_a_run();
    b.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    b.assert_no_set_up_leftovers();
    b.assert_no_leftovers();
}

/// A warm bridged `run --rm` under strace fsyncs what the network's undo needs after a crash
/// and nothing more: the attachment's intent durably once, before the first ADD, naming the
/// network (its content and the namespace directory), then again with the address without
/// waiting for the directory; the CNI cache entry's content, not its directory (libcni syncs
/// neither).
#[test]
fn a_bridged_run_makes_its_network_intent_durable_once() {
    requires_root!();
    requires_tool!("strace", "ip", "nsenter", "iptables-save");
    let b = NetBerth::new();
    // warm: berth0's list written, the plugins' versions cached, the cache directory made
    b.ok(&["run", "--rm", IMAGE, "true"]);
    let trace = b.dir.path().join("strace.txt");
    let cmd = b.berth(&["run", "--rm", IMAGE, "true"]);
    let text = run_under_strace(&cmd, &trace, "fsync,fdatasync", Duration::from_secs(120));
    let fsyncs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("sync(") && !l.contains("resumed>"))
        .collect();
    let count = |needle: String| fsyncs.iter().filter(|l| l.contains(&needle)).count();
    // temporary files start with a dot; a directory shows as `<DIR>`
    let netns = b.data().join("netns");
    assert_eq!(count(format!("<{}/.", netns.display())), 2, "{fsyncs:#?}");
    assert_eq!(count(format!("<{}>", netns.display())), 1, "{fsyncs:#?}");
    let results = b.data().join("cni/cache/results");
    assert_eq!(count(format!("<{}/.", results.display())), 1, "{fsyncs:#?}");
    assert_eq!(count(format!("<{}>", results.display())), 0, "{fsyncs:#?}");
    let left = b.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A network `slow` (a bridge `slow0` on 10.92.0.0/24, then a plugin `slowpoke`) whose
/// second plugin hangs on `command` (ADD or DEL) — each time, or only while the file
/// `until_gone` exists (removed as it starts hanging); else its ADD passes the bridge's
/// result on (jq). Returns the plugin's path (its
/// process's mark, for pgrep -f) and host-local's data directory.
fn slow_network(
    b: &NetBerth,
    command: &str,
    until_gone: Option<&std::path::Path>,
) -> (String, PathBuf) {
    let plugins = b.dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let hang = "i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
    let hang = match until_gone {
        Some(f) => format!("if [ -e {f} ]; then rm {f}; {hang}; fi", f = f.display()),
        None => hang.to_owned(),
    };
    write_file(
        plugins.join("slowpoke"),
        format!(
            "#!/bin/sh\ncase \"$CNI_COMMAND\" in\n\
             VERSION) echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}}' ;;\n\
             {command}) {hang} ;;\n\
             ADD) jq -c .prevResult ;;\n\
             *) exit 0 ;;\nesac\n"
        )
        .as_bytes(),
    );
    std::fs::set_permissions(
        plugins.join("slowpoke"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ipam = b.dir.path().join("ipam");
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "slow",
        "plugins": [
            {"type": "bridge", "bridge": "slow0", "isGateway": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.92.0.0/24"}]],
                      "dataDir": ipam}},
            {"type": "slowpoke"}
        ]
    });
    write_file(
        b.dir.path().join("config/berth/networks/slow.conflist"),
        serde_json::to_string(&conf).unwrap().as_bytes(),
    );
    (plugins.join("slowpoke").display().to_string(), ipam)
}

/// Whether a process whose command line contains `marker` runs.
fn running(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `berth rm -f` SIGKILLed while the network's teardown hangs (its record stays: the
/// teardown comes first), and a monitor SIGKILLed under a running container: the next
/// `rm -f` leaves no veth, address, NAT chain, namespace, mount or snapshot.
#[test]
fn killing_the_monitor_or_rm_midway_leaves_nothing_after_the_next_rm() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save", "pgrep", "jq");
    let b = NetBerth::new();
    let hang_once = b.dir.path().join("hang-del");
    let (marker, _ipam) = slow_network(&b, "DEL", Some(&hang_once));

    // the monitor killed: the container runs on; rm -f stops it and undoes its network
    let id = b
        .ok(&["run", "-d", "--network", "slow", IMAGE, "sleep", "1000"])
        .trim()
        .to_owned();
    let record = b.data().join("containers").join(&id).join("container.json");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let monitor = rec["monitor_pid"].as_i64().expect("a monitor pid") as i32;
    let _ = Command::new("kill")
        .args(["-KILL", &monitor.to_string()])
        .output();
    assert!(
        wait_until(Duration::from_secs(10), || {
            !std::path::Path::new(&format!("/proc/{monitor}")).exists()
        }),
        "the monitor did not die"
    );
    assert!(b.ok(&["ps", "-q", "--no-trunc"]).contains(&id));
    assert!(!b.leftovers().is_empty(), "the container has its network");
    b.ok(&["rm", "-f", &id]);
    b.assert_no_leftovers();
    b.assert_no_set_up_leftovers();

    // rm killed while CNI DEL hangs: the record stays, and the next rm -f finishes
    let id = b
        .ok(&["run", "-d", "--network", "slow", IMAGE, "sleep", "1000"])
        .trim()
        .to_owned();
    write_file(&hang_once, b"");
    let mut rm = b
        .berth(&["rm", "-f", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let hung = wait_until(Duration::from_secs(30), || running(&marker));
    let _ = rm.kill();
    let _ = rm.wait();
    let _ = Command::new("pkill").args(["-f", &marker]).output();
    assert!(hung, "rm never reached the hanging plugin");
    assert!(
        b.ok(&["ps", "-a", "-q", "--no-trunc"]).contains(&id),
        "the record of a half-removed container is kept"
    );
    assert!(!b.leftovers().is_empty(), "the kill left the network");
    b.ok(&["rm", "-f", &id]);
    b.assert_no_leftovers();
    b.assert_no_set_up_leftovers();
}

/// iperf3 from inside `netns` (a container's) to a server in the test namespace on
/// `port`; `reverse`: the server sends (traffic into the container). Bits per second
/// received.
fn iperf(b: &NetBerth, netns: &std::path::Path, port: u16, reverse: bool, secs: u32) -> f64 {
    let _ = b;
    let attempt = || {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", netns.display()))
            .args([
                "iperf3",
                "-c",
                "10.89.0.1",
                "-p",
                &port.to_string(),
                "-J",
                "-t",
            ])
            .arg(secs.to_string());
        if reverse {
            c.arg("-R");
        }
        let out = run_with_timeout(&mut c, Duration::from_secs(u64::from(secs) + 30));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    // iperf3 3.12's server closes its listening socket between two tests: a client that
    // comes in that moment is refused, and tries again
    let mut last = serde_json::Value::Null;
    let measured = wait_until(Duration::from_secs(20), || {
        last = attempt();
        let refused = last["error"].as_str().is_some_and(|e| {
            e.contains("Connection refused") || e.contains("busy") || e.contains("reset by peer")
        });
        !refused
    });
    assert!(measured, "iperf3 kept being refused: {last}");
    last["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate in {last}"))
}

/// An iperf3 server in the test namespace on `port`, for `runs` tests.
fn iperf_server(b: &NetBerth, port: u16) -> berth_test_support::ChildGuard {
    let guard = berth_test_support::ChildGuard::spawn(
        b.in_ns("iperf3")
            .args(["-s", "-B", "10.89.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let ss = b.in_ns("ss").args(["-ltn"]).output().unwrap();
            String::from_utf8_lossy(&ss.stdout).contains(&format!(":{port}"))
        }),
        "iperf3 -s did not listen on {port}"
    );
    guard
}

#[test]
fn bandwidth_limits_hold_both_ways_and_the_neighbour_keeps_its_throughput() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iperf3", "ss");
    let b = NetBerth::new();
    // the default network (and its gateway, where the servers listen) exists after a run
    b.ok(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    let _server = iperf_server(&b, 5201);
    let _neighbour_server = iperf_server(&b, 5202);
    let netns_of = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&b.ok(&["container", "inspect", name])).unwrap();
        PathBuf::from(
            v[0]["Spec"]["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["type"] == "network")
                .and_then(|n| n["path"].as_str())
                .unwrap(),
        )
    };
    for mbit in [1u64, 10, 100] {
        let name = format!("capped-{mbit}");
        let rate = format!("egress={mbit}mbit,ingress={mbit}mbit");
        b.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "bridge",
            "--network-bandwidth",
            &rate,
            IMAGE,
            "sleep",
            "300",
        ]);
        let ns = netns_of(&name);
        for reverse in [false, true] {
            let what = format!(
                "{} at {mbit} Mbit/s",
                if reverse { "ingress" } else { "egress" }
            );
            assert_rate(
                &what,
                || iperf(&b, &ns, 5201, reverse, 4) / 1e6,
                mbit as f64,
            );
        }
        b.ok(&["rm", "-f", &name]);
    }
    // a neighbour without a limit keeps its throughput while a capped container saturates
    b.ok(&[
        "run",
        "-d",
        "--name",
        "capped",
        "--network",
        "bridge",
        "--network-bandwidth",
        "egress=10mbit",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "free",
        "--network",
        "bridge",
        IMAGE,
        "sleep",
        "300",
    ]);
    let (capped, free) = (netns_of("capped"), netns_of("free"));
    let alone = iperf(&b, &free, 5202, false, 3) / 1e6;
    let ns = capped.clone();
    let saturating = std::thread::spawn(move || {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", ns.display())).args([
            "iperf3",
            "-c",
            "10.89.0.1",
            "-p",
            "5201",
            "-t",
            "5",
        ]);
        run_with_timeout(&mut c, Duration::from_secs(40))
    });
    // (the capped run has started once its server has a connection)
    assert!(wait_until(Duration::from_secs(10), || {
        let ss = b
            .in_ns("ss")
            .args(["-tn", "state", "established", "( sport = :5201 )"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ss.stdout).lines().count() > 1
    }));
    let beside = iperf(&b, &free, 5202, false, 3) / 1e6;
    let _ = saturating.join();
    eprintln!("neighbour: {alone:.0} Mbit/s alone, {beside:.0} Mbit/s beside a capped container");
    assert!(
        beside >= alone * 0.5 && beside > 100.0,
        "the neighbour dropped from {alone:.0} to {beside:.0} Mbit/s"
    );
    b.ok(&["rm", "-f", "capped", "free"]);
}

/// A second namespace made by the test (for `--network ns:PATH`), deleted on drop.
struct TestNetns(String);

impl TestNetns {
    fn new(tag: &str) -> TestNetns {
        let name = format!("berth-e2e-{}-{tag}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        TestNetns(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn run_joins_the_default_bridge_network_unless_told_none_host_or_a_namespace() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save");
    let b = NetBerth::new();
    // without the CNI plugins the default network fails, saying how to run without it (and
    // what it left is undone by the next run that attaches a network, below)
    let mut c = b.berth(&["run", "--rm", IMAGE, "true"]);
    c.env("CNI_PATH", b.dir.path().join("no-plugins"));
    let out = run_with_timeout(&mut c, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("default network berth0") && err.contains("--network none"),
        "{err}"
    );
    // the failed run's root filesystem was unmounted all the same (its network waits for
    // the next collection), and --network none works at once
    let rootfs = b.data().join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(rootfs.to_str().unwrap()),
        "a root filesystem left mounted: {mounts}"
    );
    b.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    // no --network: the default network, berth0 (its list written on first use)
    let out = b.ok(&[
        "run", "--rm", IMAGE, "ip", "-o", "-4", "addr", "show", "eth0",
    ]);
    assert!(out.contains("inet 10.89."), "{out}");
    assert!(
        b.dir
            .path()
            .join("config/berth/networks/berth0.conflist")
            .exists(),
        "the default network's list was not written"
    );
    // the pinned namespace's loopback is up (with and without a user namespace owning it)
    for userns in ["auto", "host"] {
        let out = b.ok(&[
            "run",
            "--rm",
            "--userns",
            userns,
            IMAGE,
            "sh",
            "-c",
            "ip -o link show lo; nc -l -p 7 -e echo up & sleep 0.2; nc -w 2 127.0.0.1 7",
        ]);
        assert!(out.contains("LOOPBACK,UP"), "{userns}: {out}");
        assert!(out.ends_with("up\n"), "{userns}: loopback traffic: {out}");
    }
    let id = b.ok(&["run", "-d", IMAGE, "sleep", "300"]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", id.trim()])).unwrap();
    let ip = v[0]["NetworkSettings"]["Networks"]["berth0"]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("not on berth0: {v}"))
        .to_owned();
    assert!(ip.starts_with("10.89."), "{v}");
    // `create` too
    let created = b.ok(&["create", IMAGE, "true"]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", created.trim()])).unwrap();
    assert!(
        v[0]["NetworkSettings"]["Networks"]["berth0"].is_object(),
        "{v}"
    );
    b.ok(&["rm", "-f", id.trim(), created.trim()]);
    // --network none: loopback only, nothing attached
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(": lo:"), "{out}");
    // --network ns:PATH: the namespace given, with what it holds
    let other = TestNetns::new("other");
    let out = Command::new("ip")
        .args([
            "-n", &other.0, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ns = format!("ns:{}", other.path());
    let out = b.ok(&["run", "--rm", "--network", &ns, IMAGE, "ip", "-o", "link"]);
    assert!(out.contains("probe0"), "{out}");
    assert!(!out.contains("eth0"), "{out}");
    // a relative path is refused
    let out = b.run(&["run", "--rm", "--network", "ns:netns/x", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("absolute path"),
        "{out:?}"
    );
    b.assert_no_leftovers();
}

/// An image of the test's busybox root filesystem whose config exposes `ports`, loaded
/// from an OCI archive as `name`.
fn load_exposing(b: &NetBerth, name: &str, ports: &[&str]) {
    use berth_test_support::{Layer, OciLayout, image_config};
    let tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(b.dir.path().join("rootfs"))
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tar.status.success(), "tar: {tar:?}");
    let layer = Layer::from_tar(&tar.stdout);
    let mut config = image_config("linux", "amd64", std::slice::from_ref(&layer));
    config["config"]["ExposedPorts"] = ports
        .iter()
        .map(|p| ((*p).to_owned(), serde_json::json!({})))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let dir = b.dir.path().join(format!("layout-{}", ports.len()));
    let mut layout = OciLayout::new(&dir);
    let desc = layout.image(&[layer], &config);
    layout.tag(&desc, name);
    let archive = dir.with_extension("tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    b.ok(&["load", "-i", archive.to_str().unwrap()]);
}

#[test]
fn publish_all_maps_each_exposed_port_to_a_free_host_port_shown_by_port_and_inspect() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save", "sysctl");
    let b = NetBerth::new();
    const EXPOSING: &str = "localhost/busybox:exposing";
    load_exposing(&b, EXPOSING, &["80/tcp", "81", "53/udp"]);
    // the test namespace's ephemeral range (the sysctl is per namespace), with its first
    // port taken by a listener on the host side and its second by another container's -p
    let out = b
        .in_ns("sysctl")
        .args(["-w", "net.ipv4.ip_local_port_range=40000 40009"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _listener = berth_test_support::ChildGuard::spawn(
        b.in_ns("busybox")
            .args(["nc", "-l", "-p", "40000"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let ss = b.in_ns("ss").args(["-ltn"]).output().unwrap();
            String::from_utf8_lossy(&ss.stdout).contains(":40000")
        }),
        "the listener on 40000 did not start"
    );
    serve(&b, "berth-runtime", "pinned", &["-p", "40001:80"]);
    // the image's ports: tcp 80 and 81 on the first free tcp ports, udp 53 on the first udp
    let script = "while true; do echo hello from all | nc -l -p 80; done";
    b.ok(&[
        "run", "-d", "--name", "all", "-P", EXPOSING, "sh", "-c", script,
    ]);
    let ports = b.ok(&["port", "all"]);
    let mut lines: Vec<&str> = ports.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "53/udp -> 0.0.0.0:40000",
            "80/tcp -> 0.0.0.0:40002",
            "81/tcp -> 0.0.0.0:40003"
        ],
        "{ports}"
    );
    assert_eq!(b.ok(&["port", "all", "80/tcp"]).trim(), "0.0.0.0:40002");
    assert_eq!(
        b.ok(&["container", "port", "all", "81"]).trim(),
        "0.0.0.0:40003"
    );
    let out = b.run(&["port", "all", "8080"]);
    assert!(!out.status.success(), "{out:?}");
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "all"])).unwrap();
    let published = v[0]["NetworkSettings"]["Ports"].to_string();
    for p in ["40002->80/tcp", "40003->81/tcp", "40000->53/udp"] {
        assert!(published.contains(p), "{p}: {v}");
    }
    // the published port answers from the host
    assert!(
        wait_until(Duration::from_secs(10), || b.connect("10.89.0.1", 40002)
            == "hello from all\n"),
        "-P's port 40002"
    );
    // -P with -p: the explicit one kept, the others on free ports; a full range is an error
    b.ok(&[
        "run", "-d", "--name", "both", "-P", "-p", "40004:80", EXPOSING, "sleep", "300",
    ]);
    let ports = b.ok(&["port", "both"]);
    assert!(ports.contains("80/tcp -> 0.0.0.0:40004"), "{ports}");
    assert!(ports.contains("80/tcp -> 0.0.0.0:40005"), "{ports}");
    assert!(ports.contains("81/tcp -> 0.0.0.0:40006"), "{ports}");
    assert!(ports.contains("53/udp -> 0.0.0.0:40001"), "{ports}");
    b.ok(&[
        "run", "-d", "--name", "more", "-P", EXPOSING, "sleep", "300",
    ]);
    let out = b.run(&["run", "--rm", "-P", EXPOSING, "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no free tcp port"),
        "{out:?}"
    );
    // and -P needs a network of the container's own
    let out = b.run(&["run", "--rm", "--network", "none", "-P", EXPOSING, "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    b.ok(&["rm", "-f", "all", "both", "more", "pinned"]);
    b.assert_no_leftovers();
}

#[test]
fn ip_picks_the_containers_address_and_a_taken_one_is_refused() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save");
    let b = NetBerth::new();
    serve(&b, "berth-runtime", "fixed", &["--ip", "10.89.0.200"]);
    assert_eq!(address(&b, "fixed"), "10.89.0.200");
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "fixed"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["berth0"]["IPAddress"], "10.89.0.200",
        "{v}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || b.connect("10.89.0.200", 80)
            == "hello from fixed\n"),
        "the container at 10.89.0.200"
    );
    // on a user-defined network too
    b.ok(&["network", "create", "--subnet", "10.93.0.0/24", "fixednet"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "fixednet",
        "--ip",
        "10.93.0.9",
        IMAGE,
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains("inet 10.93.0.9/24"), "{out}");
    b.run_refused(&[
        // taken by the running container
        (&["--ip", "10.89.0.200"], "10.89.0.200"),
        // outside the network's subnet
        (&["--ip", "192.0.2.7"], "192.0.2.7"),
        (
            &["--network", "none", "--ip", "10.89.0.9"],
            "need a network",
        ),
    ]);
    b.ok(&["rm", "-f", "fixed"]);
    b.assert_no_leftovers();
}

#[test]
fn an_internal_network_has_no_route_out_where_the_default_one_has() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    // an address of the test namespace off every bridge (on its loopback), with a server on
    // it: "outside"
    let out = Command::new("ip")
        .args(["-n", &b.netns, "addr", "add", "192.0.2.1/32", "dev", "lo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // (one process, a persistent server: the guard's kill ends it)
    let _server = berth_test_support::ChildGuard::spawn(
        b.in_ns("busybox")
            .args(["nc", "-ll", "-p", "9000", "-e", "echo", "from", "outside"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    b.ok(&["network", "create", "--internal", "walled"]);
    let probe = "for i in 1 2 3 4 5; do nc -w 2 192.0.2.1 9000 </dev/null && exit 0; sleep 0.2; done; \
                 echo unreachable; ip route";
    let out = b.ok(&["run", "--rm", IMAGE, "sh", "-c", probe]);
    assert_eq!(out, "from outside\n", "the default network routes out");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "walled",
        IMAGE,
        "sh",
        "-c",
        probe,
    ]);
    assert!(out.starts_with("unreachable\n"), "{out}");
    assert!(!out.contains("default"), "{out}");
    b.ok(&["network", "rm", "walled"]);
    b.assert_no_leftovers();
}

/// A bridge network's masquerade and forwarding are rules of the network, made once by berth
/// (crates/engine/src/hostrules.rs), not the plugins' rules per container: a container
/// reaches a machine that has no route back to the network (so only masquerade can answer)
/// through a host whose FORWARD policy is DROP (as docker's hosts have it); a second
/// container adds no rule; rules a firewall reload dropped are put back by the next
/// container; an `--internal` network's containers are not forwarded out even with a route
/// of their own; `network rm` takes the network's rules out.
#[test]
fn bridge_networks_masquerade_and_forward_through_rules_of_their_own() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables", "iptables-save");
    let b = NetBerth::new();
    // "outside": a machine on a link of the test namespace, with no route to any bridge's
    // subnet, and a server on it
    let outside = TestNetns::new(&format!("{}-out", b.netns));
    let ip_ok = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    ip_ok(&[
        "-n", &b.netns, "link", "add", "up0", "type", "veth", "peer", "name", "wire", "netns",
        &outside.0,
    ]);
    ip_ok(&[
        "-n",
        &b.netns,
        "addr",
        "add",
        "198.51.100.2/24",
        "dev",
        "up0",
    ]);
    ip_ok(&["-n", &b.netns, "link", "set", "up0", "up"]);
    ip_ok(&[
        "-n",
        &outside.0,
        "addr",
        "add",
        "198.51.100.1/24",
        "dev",
        "wire",
    ]);
    ip_ok(&["-n", &outside.0, "link", "set", "wire", "up"]);
    ip_ok(&["-n", &outside.0, "link", "set", "lo", "up"]);
    let mut server = Command::new("nsenter");
    server
        .arg(format!("--net={}", outside.path()))
        .args([
            "--", "busybox", "nc", "-ll", "-p", "9000", "-e", "echo", "from", "outside",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _server = berth_test_support::ChildGuard::spawn(&mut server);
    let ipt = |args: &[&str]| {
        let out = b.in_ns("iptables").args(args).output().unwrap();
        assert!(out.status.success(), "iptables {args:?}: {out:?}");
    };
    ipt(&["-P", "FORWARD", "DROP"]);
    let rules_of = |network: &str| -> Vec<String> {
        let out = b.in_ns("iptables-save").output().unwrap();
        let tag = format!("\"berth network {network}\"");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&tag))
            .map(str::to_owned)
            .collect()
    };
    let probe = "for i in 1 2 3 4 5; do nc -w 2 198.51.100.1 9000 </dev/null && exit 0; \
                 sleep 0.2; done; echo unreachable";
    let out = b.ok(&["run", "--rm", IMAGE, "sh", "-c", probe]);
    assert_eq!(out, "from outside\n", "masqueraded and forwarded out");
    let rules = rules_of("berth0");
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert_eq!(
        rules.iter().filter(|r| r.contains("-j MASQUERADE")).count(),
        1,
        "{rules:?}"
    );
    // per container: none (the plugins' masquerade chains are CNI- and 24 hex digits)
    b.ok(&["run", "-d", "--name", "second", IMAGE, "sleep", "60"]);
    assert_eq!(rules_of("berth0"), rules, "a second container adds no rule");
    let nat = b
        .in_ns("iptables-save")
        .args(["-t", "nat"])
        .output()
        .unwrap();
    let nat = String::from_utf8_lossy(&nat.stdout).into_owned();
    assert!(
        !nat.lines()
            .any(|l| l.starts_with(":CNI-")
                && l[5..].split(' ').next().is_some_and(|c| c.len() == 24)),
        "{nat}"
    );
    b.ok(&["rm", "-f", "second"]);
    // a firewall reload drops them: the next container puts them back
    ipt(&["-t", "nat", "-F", "POSTROUTING"]);
    ipt(&["-F", "FORWARD"]);
    assert!(rules_of("berth0").is_empty());
    let out = b.ok(&["run", "--rm", IMAGE, "sh", "-c", probe]);
    assert_eq!(out, "from outside\n", "the rules were put back");
    assert_eq!(rules_of("berth0").len(), 3);

    // --internal: with forwarding open, a route out of the container's own (NET_ADMIN) and
    // one back to the network from outside, the network's rules still forward nothing
    ipt(&["-P", "FORWARD", "ACCEPT"]);
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.97.0.0/24",
        "walled",
    ]);
    b.ok(&["network", "create", "--subnet", "10.97.1.0/24", "open"]);
    ip_ok(&[
        "-n",
        &outside.0,
        "route",
        "add",
        "10.97.0.0/23",
        "via",
        "198.51.100.2",
    ]);
    let probe_via = |gw: &str| format!("ip route add default via {gw} && {{ {probe}; }}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "walled",
        "--cap-add",
        "NET_ADMIN",
        IMAGE,
        "sh",
        "-c",
        &probe_via("10.97.0.1"),
    ]);
    assert_eq!(
        out, "unreachable\n",
        "the internal network forwards nothing out"
    );
    assert_eq!(rules_of("walled").len(), 3, "{:?}", rules_of("walled"));
    // the same from a network that is not internal (the test's control)
    let out = b.ok(&["run", "--rm", "--network", "open", IMAGE, "sh", "-c", probe]);
    assert_eq!(out, "from outside\n");
    b.ok(&["network", "rm", "walled", "open"]);
    assert!(rules_of("walled").is_empty(), "{:?}", rules_of("walled"));
    assert!(rules_of("open").is_empty(), "{:?}", rules_of("open"));
    assert_eq!(
        rules_of("berth0").len(),
        3,
        "the default network keeps its rules"
    );
    ip_ok(&["-n", &b.netns, "link", "del", "up0"]);
    b.assert_no_leftovers();
}

/// `--ip6` (docker's and podman's flag): the container's IPv6 address on a dual-stack
/// network, with `--ip` or alone, on `run` and on `network connect`; a taken address, a
/// network without an IPv6 subnet and no network at all are refused with their reasons.
#[test]
fn ip6_picks_the_containers_ipv6_address_on_a_dual_stack_network() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.96.0.0/24",
        "--subnet",
        "fd00:96::/64",
        "ds",
    ]);
    b.ok(&["network", "create", "--subnet", "10.96.1.0/24", "four"]);
    let on = |name: &str, network: &str| -> (String, String) {
        let v: serde_json::Value =
            serde_json::from_str(&b.ok(&["container", "inspect", name])).unwrap();
        let net = &v[0]["NetworkSettings"]["Networks"][network];
        (
            net["IPAddress"].as_str().unwrap_or_default().to_owned(),
            net["GlobalIPv6Address"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    b.ok(&[
        "run",
        "-d",
        "--name",
        "both",
        "--network",
        "ds",
        "--ip",
        "10.96.0.50",
        "--ip6",
        "fd00:96::50",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(
        on("both", "ds"),
        ("10.96.0.50".into(), "fd00:96::50".into())
    );
    let addrs = b.ok(&["exec", "both", "ip", "-o", "addr", "show", "eth0"]);
    assert!(addrs.contains("inet6 fd00:96::50/64"), "{addrs}");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "six",
        "--network",
        "ds",
        "--ip6",
        "fd00:96::60",
        IMAGE,
        "sleep",
        "60",
    ]);
    let (v4, v6) = on("six", "ds");
    assert_eq!(v6, "fd00:96::60");
    assert!(v4.starts_with("10.96.0.") && v4 != "10.96.0.50", "{v4}");
    let pinned = || {
        let mut v: Vec<String> = std::fs::read_dir(b.data().join("netns"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = pinned();
    b.run_refused(&[
        // taken by `both`
        (&["--network", "ds", "--ip6", "fd00:96::50"], "fd00:96::50"),
        (
            &["--network", "four", "--ip6", "fd00:96::70"],
            "no IPv6 subnet",
        ),
        (
            &["--network", "none", "--ip6", "fd00:96::70"],
            "need a network",
        ),
    ]);
    // (a running container's intent may go meanwhile: its record holds the attachment)
    let after = pinned();
    assert!(
        after.iter().all(|e| before.contains(e)),
        "a refused run leaves no namespace or intent: {after:?} after {before:?}"
    );
    // connect
    b.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "four",
        IMAGE,
        "sleep",
        "60",
    ]);
    b.ok(&["network", "connect", "--ip6", "fd00:96::70", "ds", "late"]);
    assert_eq!(on("late", "ds").1, "fd00:96::70");
    let out = b.run(&["network", "connect", "--ip6", "fd00:96::71", "four", "six"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no IPv6 subnet"),
        "{out:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "six"])).unwrap();
    let nets = v[0]["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(
        nets.keys().collect::<Vec<_>>(),
        ["ds"],
        "a refused connect names nothing"
    );
    b.ok(&["rm", "-f", "both", "six", "late"]);
    b.ok(&["network", "rm", "ds", "four"]);
    b.assert_no_leftovers();
}

/// `network create --ipv6` (podman's and docker's flag): a dual-stack network, each
/// container with an address of each family, reachable over IPv6 from another container (by
/// address and by the name in its /etc/hosts) and from the host through the bridge; shown by
/// `inspect`; nothing left of either family after `rm`.
#[test]
fn a_dual_stack_network_gives_containers_both_families_and_names_on_both() {
    requires_root!();
    requires_tool!("ip", "nsenter", "ip6tables-save");
    let b = NetBerth::new();
    // what each flag refuses, before anything is written
    b.create_refused(&[
        (
            &["--subnet", "10.94.0.0/24", "--subnet", "10.95.0.0/24"],
            "at most one IPv4 and one IPv6",
        ),
        (&["--gateway", "fd00:94::1"], "no IPv6 subnet"),
        (
            &["--subnet", "fd00:94::/64", "--gateway", "fd00:95::1"],
            "not in the subnet",
        ),
        (&["--subnet", "fd00:94::/127"], "too small"),
    ]);
    b.ok(&["network", "create", "--ipv6", "ds"]);
    // given explicitly, with a gateway of each family
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.94.0.0/24",
        "--subnet",
        "fd00:94::/64",
        "--gateway",
        "fd00:94::fe",
        "--gateway",
        "10.94.0.254",
        "ds2",
    ]);
    let ls = b.ok(&["network", "ls"]);
    assert!(
        ls.contains("fd8a:b3e7:6c2d:"),
        "a /64 of berth's pool: {ls}"
    );
    assert!(ls.contains("10.94.0.0/24,fd00:94::/64"), "{ls}");
    let out = b.run(&[
        "network",
        "create",
        "--subnet",
        "fd00:94:0:0:8000::/65",
        "clash",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("overlaps"),
        "{out:?}"
    );
    assert!(!b.ok(&["network", "ls", "-q"]).contains("refused"));

    b.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "ds",
        IMAGE,
        "sh",
        "-c",
        "while true; do echo hello over six | nc -l -p 80; done",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "srv"])).unwrap();
    let net = &v[0]["NetworkSettings"]["Networks"]["ds"];
    let v4: std::net::Ipv4Addr = net["IPAddress"].as_str().unwrap().parse().unwrap();
    let v6: std::net::Ipv6Addr = net["GlobalIPv6Address"].as_str().unwrap().parse().unwrap();
    assert_eq!(v6.segments()[..3], [0xfd8a, 0xb3e7, 0x6c2d], "{net}");
    assert_eq!(v4.octets()[..2], [10, 90], "{net}");
    let srv_hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(
        srv_hosts.contains(&format!("{v6}\t")),
        "its own IPv6 line: {srv_hosts}"
    );
    // from another container: by address, and by name with the name's IPv6 line
    let probe = format!(
        "for i in 1 2 3 4 5; do nc -w 2 {v6} 80 </dev/null && break; sleep 0.2; done; \
         grep srv /etc/hosts"
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--name",
        "cli",
        "--network",
        "ds",
        IMAGE,
        "sh",
        "-c",
        &probe,
    ]);
    assert!(out.starts_with("hello over six\n"), "{out}");
    assert!(out.contains(&format!("{v4}\tsrv\n")), "{out}");
    assert!(out.contains(&format!("{v6}\tsrv\n")), "{out}");
    // the peer learnt the client's name on both families too
    let srv_hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert_eq!(srv_hosts.matches("\tcli\n").count(), 2, "{srv_hosts}");
    // from the host, through the bridge's IPv6 gateway address
    let mut got = String::new();
    wait_until(Duration::from_secs(10), || {
        got = b.connect(&v6.to_string(), 80);
        !got.is_empty()
    });
    assert_eq!(got, "hello over six\n");
    // the explicit network's gateway is the bridge's address, and the container's route
    let routes = b.ok(&[
        "run",
        "--rm",
        "--network",
        "ds2",
        IMAGE,
        "ip",
        "-6",
        "route",
    ]);
    assert!(routes.contains("default via fd00:94::fe"), "{routes}");
    // -p over IPv6: portmap's ip6tables DNAT answers at the host's IPv6 address on the
    // bridge (the gateway, ds's first address; a moment after the bridge is up, its
    // duplicate address detection done)
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "--network",
        "ds",
        "-p",
        "8096:80",
        IMAGE,
        "sh",
        "-c",
        "while true; do echo published over six | nc -l -p 80; done",
    ]);
    let mut gw = v6.segments();
    gw[4..].copy_from_slice(&[0, 0, 0, 1]);
    let gw = std::net::Ipv6Addr::from(gw).to_string();
    let mut got = String::new();
    wait_until(Duration::from_secs(10), || {
        got = b.connect(&gw, 8096);
        !got.is_empty()
    });
    assert_eq!(got, "published over six\n", "through [{gw}]:8096");

    b.ok(&["rm", "-f", "srv", "pub"]);
    b.ok(&["network", "rm", "ds", "ds2"]);
    b.assert_no_leftovers();
    // no per-container IPv6 masquerade chain or forward rule is left either
    let nat6 = b.in_ns("ip6tables-save").output().unwrap();
    let nat6 = String::from_utf8_lossy(&nat6.stdout);
    assert!(
        !nat6
            .lines()
            .any(|l| l.contains("fd00:94:") || l.contains(&v6.to_string())),
        "{nat6}"
    );
    assert!(
        !nat6
            .lines()
            .any(|l| l.starts_with(":CNI-")
                && l[5..].split(' ').next().is_some_and(|c| c.len() == 24)),
        "{nat6}"
    );
}

/// `--mac-address` (docker's, podman's and nerdctl's flag) sets the address of the
/// container's interface, shown by `inspect`; a bad one is refused before anything is made.
/// And the container's sysfs is its own network namespace's (its user namespace owns the
/// namespace berth pinned for it): `/sys/class/net` lists its interfaces, not the host's.
#[test]
fn mac_address_sets_the_interface_and_sysfs_shows_the_containers_own_interfaces() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    let out = b.ok(&[
        "run",
        "-d",
        "--name",
        "mac",
        "--mac-address",
        "02:42:AC:11:00:99",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert!(!out.trim().is_empty());
    let got = b.ok(&[
        "exec",
        "mac",
        "sh",
        "-c",
        "cat /sys/class/net/eth0/address; echo /sys/class/net/*",
    ]);
    assert_eq!(
        got,
        "02:42:ac:11:00:99\n/sys/class/net/eth0 /sys/class/net/lo\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "mac"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["berth0"]["MacAddress"],
        "02:42:ac:11:00:99"
    );
    // one the kernel chose is shown too
    let plain = b.ok(&["run", "--rm", IMAGE, "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(plain.trim().len(), 17, "{plain}");
    assert_ne!(plain.trim(), "02:42:ac:11:00:99");
    b.run_refused(&[
        (&["--mac-address", "02:42:ac:11:00"], "six hex octets"),
        (&["--mac-address", "01:00:5e:00:00:01"], "multicast"),
        (
            &["--network", "none", "--mac-address", "02:42:ac:11:00:98"],
            "--mac-address",
        ),
    ]);
    b.ok(&["rm", "-f", "mac"]);
    b.assert_no_leftovers();
}

/// `network rm` takes the network's bridge and host-local's directory with it (as docker's
/// and podman's do): a bridge left behind keeps its gateway address and the route to its
/// subnet, and the next network given that subnet — `network create` picks the first free
/// one — would be unreachable from the host through the stale route.
#[test]
fn a_removed_networks_bridge_goes_with_it_and_its_subnet_serves_the_next_network() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    let reach = |net: &str| -> (String, String) {
        let name = format!("srv-{net}");
        let script = format!("while true; do echo hello from {net} | nc -l -p 80; done");
        b.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            net,
            IMAGE,
            "sh",
            "-c",
            &script,
        ]);
        let v: serde_json::Value =
            serde_json::from_str(&b.ok(&["container", "inspect", &name])).unwrap();
        let ip = v[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
            .as_str()
            .unwrap()
            .to_owned();
        let want = format!("hello from {net}\n");
        let mut got = String::new();
        wait_until(Duration::from_secs(10), || {
            got = b.connect(&ip, 80);
            got == want
        });
        b.ok(&["rm", "-f", &name]);
        (ip, got)
    };
    b.ok(&["network", "create", "first"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "first"])).unwrap();
    let bridge = inspect[0]["plugins"][0]["bridge"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ip1, got) = reach("first");
    assert_eq!(got, "hello from first\n");
    let ipam = b.data().join("cni/networks/first");
    assert!(ipam.is_dir(), "host-local's directory while in use");
    b.ok(&["network", "rm", "first"]);
    let link = b
        .in_ns("ip")
        .args(["link", "show", "dev", &bridge])
        .output()
        .unwrap();
    assert!(
        !link.status.success(),
        "the bridge {bridge} is left: {link:?}"
    );
    assert!(!ipam.exists(), "host-local's directory is left");
    // the next network gets the same subnet, and the host reaches it
    b.ok(&["network", "create", "second"]);
    let (ip2, got) = reach("second");
    assert_eq!(
        ip1, ip2,
        "the same subnet again (the test expects the first free one)"
    );
    assert_eq!(
        got, "hello from second\n",
        "unreachable at {ip2} after a removed network"
    );
    b.ok(&["network", "rm", "second"]);
    b.assert_no_leftovers();
}

/// `network create -d macvlan|ipvlan -o parent=IFACE` (podman's and nerdctl's drivers): the
/// containers sit on the parent's LAN with addresses of its subnet, reachable from another
/// machine there (a network namespace of the test's own behind a veth) and from each other
/// by name; `-o mtu=` sets a bridge network's MTU; bad options are refused.
#[test]
fn macvlan_and_ipvlan_networks_put_containers_on_the_parents_lan() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    // the "LAN": a veth from the test namespace to a namespace with a machine at .100
    let lan = format!("{}-lan", b.netns);
    let ip_ok = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    ip_ok(&["netns", "add", &lan]);
    struct DelNetns(String);
    impl Drop for DelNetns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _lan_guard = DelNetns(lan.clone());
    ip_ok(&[
        "-n", &b.netns, "link", "add", "lan0", "type", "veth", "peer", "name", "wire", "netns",
        &lan,
    ]);
    ip_ok(&["-n", &b.netns, "link", "set", "lan0", "up"]);
    ip_ok(&[
        "-n",
        &lan,
        "addr",
        "add",
        "192.168.77.100/24",
        "dev",
        "wire",
    ]);
    ip_ok(&["-n", &lan, "link", "set", "wire", "up"]);
    ip_ok(&["-n", &lan, "link", "set", "lo", "up"]);
    let from_lan = |addr: &str| -> String {
        let mut got = String::new();
        wait_until(Duration::from_secs(10), || {
            let out = run_with_timeout(
                Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{lan}"))
                    .args(["--", "busybox", "nc", "-w", "2", addr, "80"])
                    .stdin(std::process::Stdio::null()),
                Duration::from_secs(10),
            );
            got = String::from_utf8_lossy(&out.stdout).into_owned();
            !got.is_empty()
        });
        got
    };
    b.create_refused(&[
        (&["-d", "macvlan", "-o", "parent=lan0"], "IPv4 --subnet"),
        (
            &[
                "-d",
                "macvlan",
                "-o",
                "parent=nosuch0",
                "--subnet",
                "192.168.77.0/24",
            ],
            "no such interface",
        ),
        (
            &[
                "-d",
                "macvlan",
                "-o",
                "parent=lan0",
                "-o",
                "mode=l3",
                "--subnet",
                "192.168.77.0/24",
            ],
            "macvlan takes bridge",
        ),
        (&["-o", "parent=lan0"], "macvlan and ipvlan"),
        (&["-o", "bogus=1"], "parent=IFACE"),
        (&["-o", "mtu=9x"], "number of bytes"),
        (&["-d", "overlay"], "bridge, macvlan or ipvlan"),
    ]);
    for (driver, mode) in [("macvlan", "bridge"), ("ipvlan", "l2")] {
        b.ok(&[
            "network",
            "create",
            "-d",
            driver,
            "-o",
            "parent=lan0",
            "--subnet",
            "192.168.77.0/24",
            "--gateway",
            "192.168.77.100",
            "onlan",
        ]);
        let conf: serde_json::Value =
            serde_json::from_str(&b.ok(&["network", "inspect", "onlan"])).unwrap();
        assert_eq!(conf[0]["plugins"][0]["type"], driver);
        assert_eq!(conf[0]["plugins"][0]["mode"], mode);
        assert_eq!(conf[0]["plugins"].as_array().unwrap().len(), 1, "{conf}");
        let args = [
            "run",
            "-d",
            "--name",
            "lansrv",
            "--network",
            "onlan",
            IMAGE,
            "sh",
            "-c",
            "while true; do echo hello from the lan | nc -l -p 80; done",
        ];
        if !kernel_has(&b, driver) {
            // (this machine's kernel lacks it: the plugin's failure is reported whole and
            // undone; a kernel with it runs the checks below)
            let out = b.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{err}");
            assert!(
                err.contains(&format!("CNI plugin {driver} failed ADD")),
                "{err}"
            );
            assert!(err.contains("no support for"), "the hint: {err}");
            let after = berth_leftovers(&b);
            assert!(after.is_empty(), "left behind: {after:?}");
            b.ok(&["network", "rm", "onlan"]);
            continue;
        }
        b.ok(&args);
        let v: serde_json::Value =
            serde_json::from_str(&b.ok(&["container", "inspect", "lansrv"])).unwrap();
        let ip = v[0]["NetworkSettings"]["Networks"]["onlan"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ip.starts_with("192.168.77."), "{ip}");
        assert_eq!(
            from_lan(&ip),
            "hello from the lan\n",
            "{driver}: from the LAN"
        );
        let out = b.ok(&[
            "run", "--rm", "--network", "onlan", IMAGE, "sh", "-c",
            "for i in 1 2 3 4 5; do nc -w 2 lansrv 80 </dev/null && break; sleep 0.2; done; ip route",
        ]);
        assert!(
            out.starts_with("hello from the lan\n"),
            "{driver}: by name: {out}"
        );
        assert!(
            out.contains("default via 192.168.77.100"),
            "{driver}: {out}"
        );
        b.ok(&["rm", "-f", "lansrv"]);
        b.ok(&["network", "rm", "onlan"]);
        assert!(!b.data().join("cni/networks/onlan").exists());
    }
    // a bridge network's MTU
    b.ok(&["network", "create", "-o", "mtu=1400", "small"]);
    let mtu = b.ok(&[
        "run",
        "--rm",
        "--network",
        "small",
        IMAGE,
        "cat",
        "/sys/class/net/eth0/mtu",
    ]);
    assert_eq!(mtu, "1400\n");
    b.ok(&["network", "rm", "small"]);
    assert!(
        berth_leftovers(&b).is_empty(),
        "left behind: {:?}",
        berth_leftovers(&b)
    );
}

/// [`NetBerth::leftovers`] but the test's own LAN veth.
fn berth_leftovers(b: &NetBerth) -> Vec<String> {
    let mut left = b.leftovers();
    left.retain(|l| !l.contains(" lan0@"));
    left
}

/// Whether the kernel can make a `kind` link (macvlan, ipvlan) on the test namespace's
/// `lan0`: tried there, and removed.
fn kernel_has(b: &NetBerth, kind: &str) -> bool {
    let made = b
        .in_ns("ip")
        .args(["link", "add", "probe0", "link", "lan0", "type", kind])
        .output()
        .unwrap();
    let _ = b.in_ns("ip").args(["link", "del", "probe0"]).output();
    made.status.success()
}

/// A container that exited gives its network back at once, as docker's, podman's and
/// nerdctl's do: its address, veth, port rules, cache entry and pinned namespace go while its
/// record stays for `ps -a`, `inspect` and `logs` until `rm`. Not while a running container
/// shares its namespace (`--network container:`): that one keeps its network until `rm`.
#[test]
fn an_exited_container_gives_its_network_back_unless_a_neighbour_still_uses_it() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save");
    let b = NetBerth::new();
    let released = |name: &str| {
        wait_until(Duration::from_secs(20), || {
            let v: serde_json::Value =
                serde_json::from_str(&b.ok(&["container", "inspect", name])).unwrap();
            v[0]["State"]["Status"] == "exited" && v[0]["NetworkSettings"]["SandboxKey"].is_null()
        })
    };
    b.ok(&[
        "run",
        "-d",
        "--name",
        "gone",
        "-p",
        "18081:80",
        IMAGE,
        "sh",
        "-c",
        "echo bye; exit 3",
    ]);
    assert!(
        released("gone"),
        "the network of the exited container was not released"
    );
    let after = b.leftovers();
    assert!(
        after.is_empty(),
        "left behind by an exited container: {after:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "gone"])).unwrap();
    assert_eq!(v[0]["State"]["ExitCode"], 3);
    assert!(
        v[0]["NetworkSettings"]["Networks"]["berth0"]["IPAddress"].is_null(),
        "{v}"
    );
    assert_eq!(b.ok(&["logs", "gone"]), "bye\n");
    assert!(b.ok(&["ps", "-a"]).contains("gone"));
    b.ok(&["rm", "gone"]);
    b.assert_no_leftovers();

    // a neighbour in its namespace keeps it
    b.ok(&["run", "-d", "--name", "host", IMAGE, "sleep", "3"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "guest",
        "--network",
        "container:host",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            b.ok(&["ps", "-a"])
                .lines()
                .any(|l| l.contains("host") && l.contains("Exited"))
        }),
        "the first container did not exit"
    );
    // (the monitor has decided by the time `rm` can see it gone; give it that moment)
    wait_until(Duration::from_secs(2), || false);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "host"])).unwrap();
    assert!(
        !v[0]["NetworkSettings"]["SandboxKey"].is_null(),
        "released under a neighbour: {v}"
    );
    let addr = b.ok(&[
        "exec", "guest", "ip", "-o", "-4", "addr", "show", "dev", "eth0",
    ]);
    assert!(
        addr.contains("inet 10.89."),
        "the neighbour lost its network: {addr}"
    );
    b.ok(&["rm", "-f", "guest"]);
    b.ok(&["rm", "host"]);
    b.assert_no_leftovers();
}

/// `--network-alias` (docker's and podman's flag): more names a container answers to on its
/// user-defined networks, in the other containers' /etc/hosts both ways; refused on the
/// default network (as docker does) and where there is no network of the container's own.
#[test]
fn network_aliases_name_a_container_on_user_defined_networks() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    b.ok(&["network", "create", "aliased"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "aliased",
        "--network-alias",
        "backend",
        "--network-alias",
        "db.internal",
        IMAGE,
        "sh",
        "-c",
        "while true; do echo hello from api | nc -l -p 80; done",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "api"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["aliased"]["Aliases"],
        serde_json::json!(["backend", "db.internal"])
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "aliased",
        "--network-alias",
        "worker",
        IMAGE,
        "sh",
        "-c",
        "for n in backend db.internal api; do \
           for i in 1 2 3 4 5; do nc -w 2 $n 80 </dev/null && break; sleep 0.2; done; \
         done",
    ]);
    assert_eq!(out, "hello from api\n".repeat(3));
    // the unnamed client's alias reached the server's file
    let hosts = b.ok(&["exec", "api", "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tworker\n"), "{hosts}");
    b.run_refused(&[
        (&["--network-alias", "x"], "user-defined networks only"),
        (
            &["--network", "none", "--network-alias", "x"],
            "--network-alias",
        ),
        (
            &["--network", "aliased", "--network-alias=bad/name"],
            "--network-alias: invalid network alias",
        ),
    ]);
    b.ok(&["rm", "-f", "api"]);
    b.ok(&["network", "rm", "aliased"]);
    b.assert_no_leftovers();
}

/// `berth network connect` and `disconnect`, as docker's and podman's: a running container
/// joins a second network on its next interface (`--ip`, `--alias` honoured), is reached by
/// name there, and leaves it again; what cannot be done is refused by name; nothing is left.
#[test]
fn network_connect_and_disconnect_a_running_container() {
    requires_root!();
    requires_tool!("ip", "nsenter");
    let b = NetBerth::new();
    b.ok(&["network", "create", "--subnet", "10.91.7.0/24", "back"]);
    b.ok(&["network", "create", "front"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "back",
        IMAGE,
        "sh",
        "-c",
        "while true; do echo hello from srv | nc -l -p 80; done",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "300",
    ]);
    // bounded tries: srv's listener comes back a moment after each answer
    let reach = |name: &str| {
        b.run(&[
            "exec",
            "cli",
            "sh",
            "-c",
            &format!("for i in 1 2 3 4 5; do nc -w 2 {name} 80 </dev/null && exit 0; sleep 0.2; done; exit 1"),
        ])
    };
    let before = reach("srv");
    assert!(
        !before.status.success(),
        "reached srv before joining its network"
    );
    b.ok(&[
        "network",
        "connect",
        "--ip",
        "10.91.7.50",
        "--alias",
        "client",
        "back",
        "cli",
    ]);
    let out = reach("srv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from srv\n");
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "cli"])).unwrap();
    let nets = &v[0]["NetworkSettings"]["Networks"];
    assert_eq!(nets["back"]["IPAddress"], "10.91.7.50", "{nets}");
    assert_eq!(nets["back"]["Interface"], "eth1", "{nets}");
    assert_eq!(nets["front"]["Interface"], "eth0", "{nets}");
    // the newcomer's names are in the server's file, the server's in the newcomer's
    let srv_hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(
        srv_hosts.contains("10.91.7.50\tcli client\n"),
        "{srv_hosts}"
    );
    let cli_hosts = b.ok(&["exec", "cli", "cat", "/etc/hosts"]);
    assert!(cli_hosts.contains("\tsrv\n"), "{cli_hosts}");
    assert!(
        b.ok(&["exec", "cli", "cat", "/proc/net/dev"])
            .contains("eth1:")
    );
    for (args, says) in [
        (
            &["network", "connect", "back", "cli"][..],
            "already attached to network back",
        ),
        (&["network", "connect", "nosuch", "cli"][..], "nosuch"),
        (
            &["network", "connect", "--alias", "bad/name", "front", "srv"][..],
            "invalid network alias",
        ),
        (
            &["network", "disconnect", "front", "srv"][..],
            "not attached to network front",
        ),
        (&["network", "rm", "back"][..], "in use by container(s)"),
        (
            &["network", "connect", "--alias", "x", "bridge", "srv"][..],
            "user-defined networks only",
        ),
    ] {
        let out = b.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was taken");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    b.ok(&[
        "run",
        "-d",
        "--name",
        "lone",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "300",
    ]);
    let out = b.run(&["network", "connect", "front", "lone"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no network namespace of its own"),
        "{out:?}"
    );
    b.ok(&["network", "disconnect", "back", "cli"]);
    assert!(
        !reach("srv").status.success(),
        "srv reached after leaving its network"
    );
    assert!(
        !b.ok(&["exec", "cli", "cat", "/proc/net/dev"])
            .contains("eth1:")
    );
    let srv_hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(!srv_hosts.contains("10.91.7.50"), "{srv_hosts}");
    let cli_hosts = b.ok(&["exec", "cli", "cat", "/etc/hosts"]);
    assert!(!cli_hosts.contains("\tsrv\n"), "{cli_hosts}");
    // `bridge` is the default network, as for `run --network bridge`
    b.ok(&["network", "connect", "bridge", "cli"]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "cli"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["berth0"]["Interface"], "eth1",
        "{v}"
    );
    b.ok(&["network", "disconnect", "bridge", "cli"]);
    // joined again, the network goes with the container's exit and removal
    b.ok(&["network", "connect", "back", "cli"]);
    b.ok(&["rm", "-f", "srv", "cli", "lone"]);
    b.ok(&["network", "rm", "back", "front"]);
    b.assert_no_leftovers();
}

/// `tc qdisc show` in the test namespace: every qdisc of the host side.
fn qdiscs(b: &NetBerth) -> String {
    let out = b.in_ns("tc").args(["qdisc", "show"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn update_network_bandwidth_changes_a_running_containers_limits_and_rm_still_cleans_up() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iperf3", "ss", "tc");
    let b = NetBerth::new();
    b.ok(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    let _server = iperf_server(&b, 5201);
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "shaped",
            "--network",
            "bridge",
            "--network-bandwidth",
            "egress=5mbit,ingress=5mbit",
            IMAGE,
            "sleep",
            "300",
        ])
        .trim()
        .to_owned();
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "shaped"])).unwrap();
    let ns = PathBuf::from(v[0]["NetworkSettings"]["SandboxKey"].as_str().unwrap());
    assert_rate(
        "egress before",
        || iperf(&b, &ns, 5201, false, 3) / 1e6,
        5.0,
    );
    assert_rate(
        "ingress before",
        || iperf(&b, &ns, 5201, true, 3) / 1e6,
        5.0,
    );

    // live: both directions changed, the container keeps running
    b.ok(&[
        "update",
        "--network-bandwidth",
        "egress=20mbit,ingress=2mbit",
        "shaped",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "shaped"])).unwrap();
    assert_eq!(v[0]["State"]["Running"], true, "{v}");
    let bw = &v[0]["NetworkSettings"]["Bandwidth"];
    assert_eq!(bw["egress_rate"], 20_000_000, "{v}");
    assert_eq!(bw["ingress_rate"], 2_000_000, "{v}");
    assert_rate(
        "egress after",
        || iperf(&b, &ns, 5201, false, 3) / 1e6,
        20.0,
    );
    assert_rate("ingress after", || iperf(&b, &ns, 5201, true, 3) / 1e6, 2.0);
    let q = qdiscs(&b);
    assert_eq!(q.matches("tbf").count(), 2, "one tbf each way:\n{q}");
    assert!(!q.contains("5Mbit"), "the old limit is gone:\n{q}");

    // egress only: the ingress shaping goes, and the cache says what is there
    b.ok(&["update", "--network-bandwidth", "egress=8mbit", "shaped"]);
    let q = qdiscs(&b);
    assert_eq!(q.matches("tbf").count(), 1, "egress only:\n{q}");
    assert!(q.contains("rate 8Mbit"), "{q}");
    let cache = b
        .data()
        .join("cni/cache/results")
        .join(format!("berth0-{id}-eth0"));
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let cap = &entry["capabilityArgs"]["bandwidth"];
    assert_eq!(cap["egressRate"], 8_000_000, "{entry}");
    assert_eq!(cap["ingressRate"].as_u64().unwrap_or(0), 0, "{entry}");
    let ifbs = entry["result"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"].as_str().unwrap().starts_with("bwp"))
        .count();
    assert_eq!(ifbs, 1, "one IFB in the cached result: {entry}");
    assert_rate("egress only", || iperf(&b, &ns, 5201, false, 3) / 1e6, 8.0);

    // a container run without shaping gets it live (the plugin's first ADD had nothing to do)
    b.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "bridge",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["update", "--network-bandwidth", "ingress=2mbit", "plain"]);
    let q = qdiscs(&b);
    assert!(q.contains("rate 2Mbit"), "{q}");
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "plain"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Bandwidth"]["ingress_rate"], 2_000_000,
        "{v}"
    );
    let plain_ns = PathBuf::from(v[0]["NetworkSettings"]["SandboxKey"].as_str().unwrap());
    assert_rate(
        "ingress added live",
        || iperf(&b, &plain_ns, 5201, true, 4) / 1e6,
        2.0,
    );
    b.ok(&["rm", "-f", "plain"]);

    // a container without a network of its own has nothing to shape
    b.ok(&[
        "run",
        "-d",
        "--name",
        "alone",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "300",
    ]);
    let out = b.run(&["update", "--network-bandwidth", "egress=1mbit", "alone"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no network"), "{err}");

    b.ok(&["rm", "-f", "shaped", "alone"]);
    let q = qdiscs(&b);
    assert!(
        !q.contains("tbf") && !q.contains("ingress"),
        "a qdisc left:\n{q}"
    );
    let links = b.in_ns("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("bwp"), "an IFB left:\n{links}");
    b.assert_no_leftovers();
}

#[test]
fn kubernetes_bandwidth_annotations_shape_the_container_like_the_flag() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iperf3", "ss", "tc");
    let b = NetBerth::new();
    b.ok(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    let _server = iperf_server(&b, 5201);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pod",
        "--network",
        "bridge",
        "--annotation",
        "kubernetes.io/egress-bandwidth=10M",
        "--annotation",
        "kubernetes.io/ingress-bandwidth=2M",
        "--annotation",
        "example.com/other=kept",
        IMAGE,
        "sleep",
        "300",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "pod"])).unwrap();
    let bw = &v[0]["NetworkSettings"]["Bandwidth"];
    assert_eq!(bw["egress_rate"], 10_000_000, "{v}");
    assert_eq!(bw["ingress_rate"], 2_000_000, "{v}");
    let ann = &v[0]["Spec"]["annotations"];
    assert_eq!(ann["kubernetes.io/egress-bandwidth"], "10M", "{v}");
    assert_eq!(ann["example.com/other"], "kept", "{v}");
    let ns = PathBuf::from(v[0]["NetworkSettings"]["SandboxKey"].as_str().unwrap());
    assert_rate(
        "egress (annotation)",
        || iperf(&b, &ns, 5201, false, 3) / 1e6,
        10.0,
    );
    assert_rate(
        "ingress (annotation)",
        || iperf(&b, &ns, 5201, true, 3) / 1e6,
        2.0,
    );
    b.ok(&["rm", "-f", "pod"]);

    // the flag wins where both set a direction; the annotation keeps the other
    b.ok(&[
        "run",
        "-d",
        "--name",
        "both",
        "--network",
        "bridge",
        "--network-bandwidth",
        "egress=4mbit",
        "--annotation",
        "kubernetes.io/egress-bandwidth=10M",
        "--annotation",
        "kubernetes.io/ingress-bandwidth=2M",
        IMAGE,
        "sleep",
        "300",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["container", "inspect", "both"])).unwrap();
    let bw = &v[0]["NetworkSettings"]["Bandwidth"];
    assert_eq!(bw["egress_rate"], 4_000_000, "{v}");
    assert_eq!(bw["ingress_rate"], 2_000_000, "{v}");
    b.ok(&["rm", "-f", "both"]);

    // kubelet's quantities: `m` is milli, so 10m is refused (below 1k), as is a tc unit
    for bad in ["10m", "10Mbit"] {
        let a = format!("kubernetes.io/egress-bandwidth={bad}");
        let out = b.run(&[
            "run",
            "--rm",
            "--network",
            "bridge",
            "--annotation",
            &a,
            IMAGE,
            "true",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{bad}: {err}");
        assert!(err.contains("not a bandwidth"), "{bad}: {err}");
    }
    b.assert_no_leftovers();
}
