//! `berth run --network bridge` (CNI: the default network `berth0`, bridge + host-local +
//! portmap + firewall + bandwidth from Debian's plugins). Every test runs berth inside a
//! network namespace of its own (`ip netns add`, then `nsenter --net`), so the bridge, the
//! veths, the NAT rules and every packet stay there; the namespace is deleted at the end.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    berth_bin, requires_root, requires_tool, run_with_timeout, wait_until, write_file,
};

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
}

impl Drop for NetBerth {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
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
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
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
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
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
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
}

#[test]
fn a_run_killed_in_the_middle_of_attaching_leaves_nothing_after_system_prune_or_the_next_run() {
    requires_root!();
    requires_tool!("ip", "nsenter", "iptables-save");
    let b = NetBerth::new();
    // a network whose second plugin hangs on ADD: berth is killed while it runs, after the
    // bridge plugin made the veth and took an address, before any CNI cache entry exists
    let plugins = b.dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    // the script's own path marks its process (pgrep -f)
    let marker = plugins.join("slowpoke").display().to_string();
    write_file(
        plugins.join("slowpoke"),
        concat!(
            "#!/bin/sh\ncase \"$CNI_COMMAND\" in\n",
            "VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}' ;;\n",
            "ADD) i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done ;;\n",
            "*) exit 0 ;;\nesac\n"
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
            b.leftovers().iter().any(|l| l.starts_with("veth"))
                && Command::new("pgrep")
                    .args(["-f", &marker])
                    .output()
                    .is_ok_and(|o| o.status.success())
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
    };
    // `berth system prune` finds the orphan (no record) and undoes it
    kill_a_run();
    let pruned = b.ok(&["system", "prune"]);
    assert!(
        pruned.contains("removed the networking of 1 container"),
        "{pruned}"
    );
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
    assert_eq!(addresses(&ipam), 0, "the address was not given back");
    // and so does the next run on a network
    kill_a_run();
    b.ok(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
    assert_eq!(addresses(&ipam), 0, "the address was not given back");
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
            let got = iperf(&b, &ns, 5201, reverse, 4) / 1e6;
            let want = mbit as f64;
            eprintln!(
                "{mbit} Mbit/s {}: measured {got:.2} Mbit/s",
                if reverse { "ingress" } else { "egress" }
            );
            assert!(
                (got - want).abs() <= want * 0.10,
                "{} at {mbit} Mbit/s measured {got:.2} Mbit/s",
                if reverse { "ingress" } else { "egress" }
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
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
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
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
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
    for (flags, says) in [
        // taken by the running container
        (vec!["--ip", "10.89.0.200"], "10.89.0.200"),
        // outside the network's subnet
        (vec!["--ip", "192.0.2.7"], "192.0.2.7"),
        (
            vec!["--network", "none", "--ip", "10.89.0.9"],
            "need a network",
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().copied());
        args.extend([IMAGE, "true"]);
        let out = b.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
    b.ok(&["rm", "-f", "fixed"]);
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
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
    let after = b.leftovers();
    assert!(after.is_empty(), "left behind: {after:?}");
}
