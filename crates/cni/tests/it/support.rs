//! Namespaces, counters and configurations shared by the tests.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use berth_cni::{Cni, NetworkConfigList};

pub const PLUGIN_DIR: &str = "/usr/lib/cni";

/// Skip (or fail under BERTH_TEST_REQUIRE_TOOLS=1) without root, iproute2, iptables or
/// the plugins.
#[macro_export]
macro_rules! requires_cni {
    () => {
        berth_test_support::requires_root!();
        berth_test_support::requires_tool!("ip", "tc", "iptables", "iptables-save");
        if !std::path::Path::new("/usr/lib/cni/bridge").exists()
            && berth_test_support::skip_or_fail(
                "the CNI plugins are not in /usr/lib/cni (Debian: containernetworking-plugins)",
            )
        {
            return;
        }
    };
}

/// A network namespace made with `ip netns add`, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "berthcni-{}-{}-{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns {
            path: PathBuf::from(format!("/run/netns/{name}")),
            name,
        };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Run a command inside; its stdout. Panics when it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Run `f` on a thread that has entered this namespace: processes it starts (the
    /// plugins) are born in it.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::fs::File::open(&self.path).unwrap();
                rustix::thread::move_into_link_name_space(
                    fd.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Write a test fixture (a configuration, a plugin script) into a temporary directory.
#[expect(
    clippy::disallowed_methods,
    reason = "fixtures in a test's temporary directory, not state that must survive a crash"
)]
pub fn write_file(path: &Path, data: &str) {
    std::fs::write(path, data).unwrap();
}

pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A host namespace, a container namespace, a temporary directory (host-local's data, the
/// result cache, configurations) and a `Cni` over the Debian plugins.
pub struct Env {
    pub host: Netns,
    pub ctr: Netns,
    pub tmp: tempfile::TempDir,
    pub cni: Cni,
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let cni = Cni::new(vec![PathBuf::from(PLUGIN_DIR)], tmp.path().join("cache"));
        Env {
            host: Netns::new(&format!("{tag}-h")),
            ctr: Netns::new(&format!("{tag}-c")),
            tmp,
            cni,
        }
    }

    pub fn ipam_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }

    pub fn netns(&self) -> String {
        self.ctr.path.display().to_string()
    }

    /// What the tests count before and after: leaks show as a difference.
    pub fn resources(&self, network: &str, container_id: &str) -> Resources {
        let count = |s: &str, needle: &str| s.lines().filter(|l| l.contains(needle)).count();
        let links = self.host.exec(&["ip", "-o", "link", "show"]);
        let qdiscs = self.host.exec(&["tc", "qdisc", "show"]);
        let nat = self.host.exec(&["iptables-save", "-t", "nat"]);
        Resources {
            veths: count(&links, "veth"),
            ifbs: self
                .host
                .exec(&["ip", "-o", "link", "show", "type", "ifb"])
                .lines()
                .count(),
            tbf_qdiscs: count(&qdiscs, "qdisc tbf"),
            nat_rules_of_container: count(&nat, container_id),
            ip_allocations: ip_allocations(&self.ipam_dir().join(network)),
            ctr_links: self.ctr.exec(&["ip", "-o", "link", "show"]).lines().count(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub veths: usize,
    pub ifbs: usize,
    pub tbf_qdiscs: usize,
    pub nat_rules_of_container: usize,
    /// host-local's files named after allocated addresses.
    pub ip_allocations: Vec<String>,
    pub ctr_links: usize,
}

fn ip_allocations(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    v.sort();
    v
}

/// bridge (+ host-local) → bandwidth → tuning → portmap, as a `cniVersion` network.
/// portmap is last: its CHECK in plugins 1.1.1 fails on any IPv4-only attachment (it looks
/// for IPv6 rules it never made, containernetworking/plugins#819), and CHECK stops at the
/// first failure, so the others are checked before it.
pub fn standard_conflist(name: &str, version: &str, ipam_dir: &Path) -> NetworkConfigList {
    let json = serde_json::json!({
        "cniVersion": version,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni-br0",
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.213.7.0/24",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                }
            },
            {"type": "bandwidth", "capabilities": {"bandwidth": true}},
            {"type": "tuning", "capabilities": {"mac": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    NetworkConfigList::from_bytes(json.to_string().as_bytes(), "test").unwrap()
}

/// CHECK of [`standard_conflist`]: passes, or fails only in portmap with its IPv6 bug
/// (containernetworking/plugins#819, fixed after 1.1.1) — after bridge, bandwidth and
/// tuning passed.
pub fn assert_check_passes(result: Result<(), berth_cni::CniError>) {
    match result {
        Ok(()) => {}
        Err(berth_cni::CniError::Plugin {
            plugin,
            command,
            error,
            ..
        }) if plugin == "portmap"
            && command == "CHECK"
            && error.msg.starts_with("could not check ipv6 dnat") => {}
        Err(e) => panic!("CHECK failed: {e}"),
    }
}
