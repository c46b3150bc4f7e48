//! Rootless networking through `pasta` (Debian's `passt`), as rootless podman 4.4+ does it:
//! the container's network namespace is made by rootless berth — so it is owned by berth's
//! user namespace, which the container shares — pinned like a bridge container's
//! ([`crate::netns`]), and `pasta --config-net --netns PATH` is attached to it. pasta copies
//! the host's addresses and routes onto a tap device (`eth0`) in the namespace and carries
//! its traffic through ordinary sockets of the user on the host: no privilege beyond
//! opening `/dev/net/tun` from the user's namespace (which distributions allow: mode 0666).
//!
//! `-p` becomes pasta's `-t`/`-u` forwards (the host side listens as the user). Nothing else
//! is forwarded (`-t none -u none -T none -U none`: pasta's `auto` would publish every port
//! the container binds) and the host's loopback is not reachable through the gateway
//! (`--no-map-gw`), as podman 4.4 runs it.
//!
//! `--network-bandwidth` is applied in the namespace, on `eth0` and an IFB device beside it
//! ([`crate::shaping::shape_namespace`]): pasta itself has no rate limit.
//!
//! pasta daemonises once the namespace is configured and watches the namespace file: it
//! exits when the file is removed ([`crate::network::detach`] unpins it), so a removed or
//! killed container, or one whose `run` was killed (`collect_orphans`), leaves no pasta
//! behind. Its pid is recorded too, and a pasta still running for the namespace after the
//! unpin is terminated.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cni::{Bandwidth, PortMapping};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::network::{NetworkAttachment, NetworkDirs};

/// The network's name, as `--network` takes it and `inspect` shows it.
pub const NETWORK: &str = "pasta";
/// The interface pasta makes in the container's namespace.
pub const IFNAME: &str = "eth0";
/// How long pasta may take to configure the namespace and daemonise.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What a pasta attachment records (in [`NetworkAttachment::pasta`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastaState {
    /// The daemon's pid (pasta's `--pid` file), when it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

/// pasta's arguments for the namespace at `netns`, forwarding `ports`, its pid written to
/// `pid_file`.
pub fn args(netns: &Path, ports: &[PortMapping], pid_file: &Path) -> Result<Vec<String>> {
    let mut args: Vec<String> = [
        "--config-net",
        "--quiet",
        "--ns-ifname",
        IFNAME,
        "--no-map-gw",
        "-T",
        "none",
        "-U",
        "none",
    ]
    .map(String::from)
    .to_vec();
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for p in ports {
        let spec = if p.host_ip.is_empty() {
            format!("{}:{}", p.host_port, p.container_port)
        } else {
            format!("{}/{}:{}", p.host_ip, p.host_port, p.container_port)
        };
        match p.protocol.as_str() {
            "tcp" => tcp.push(spec),
            "udp" => udp.push(spec),
            other => {
                return Err(EngineError::Invalid(format!(
                    "-p {}:{}/{other}: pasta forwards tcp and udp only",
                    p.host_port, p.container_port
                )));
            }
        }
    }
    for (flag, specs) in [("-t", tcp), ("-u", udp)] {
        if specs.is_empty() {
            args.extend([flag.to_owned(), "none".to_owned()]);
        }
        for s in specs {
            args.extend([flag.to_owned(), s]);
        }
    }
    args.push("--pid".into());
    args.push(pid_file.display().to_string());
    args.push("--netns".into());
    args.push(netns.display().to_string());
    Ok(args)
}

/// Make the container's namespace and attach pasta to it (`pasta` found on `search`), its
/// traffic shaped to `bandwidth` inside the namespace ([`crate::shaping::shape_namespace`]);
/// `record` is called with the attachment as soon as the namespace exists, as
/// [`crate::network::attach`] does. On error what was made is undone. Returns the
/// attachment and the container's address (the host's, as pasta copies it).
pub fn attach(
    dirs: &NetworkDirs,
    container_id: &str,
    ports: &[PortMapping],
    bandwidth: Option<Bandwidth>,
    search: &[PathBuf],
    mut record: impl FnMut(&NetworkAttachment),
) -> Result<(NetworkAttachment, Option<IpAddr>)> {
    let pasta = search
        .iter()
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            EngineError::Network(format!(
                "rootless networking needs pasta, found in none of {}: install it (Debian: \
                 apt-get install passt), or run with --network none",
                search
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            ))
        })?;
    let netns = dirs.netns.join(container_id);
    let pid_file = dirs.netns.join(format!("{container_id}.pasta.pid"));
    let pasta_args = args(&netns, ports, &pid_file)?;
    crate::netns::create(&netns)?;
    let mut att = NetworkAttachment {
        dirs: dirs.clone(),
        netns: netns.clone(),
        userns: None,
        container_id: container_id.to_owned(),
        networks: Vec::new(),
        addresses: Vec::new(),
        macs: Vec::new(),
        aliases: Vec::new(),
        published: crate::network::published(ports),
        bandwidth: None,
        pasta: Some(PastaState { pid: None }),
        released: false,
    };
    let undo = |att: &NetworkAttachment, e: EngineError| -> EngineError {
        let _ = crate::network::detach(att);
        e
    };
    record(&att);
    if let Err(e) = crate::network::write_intent(&att) {
        return Err(undo(&att, e));
    }
    let started = start(&pasta, &pasta_args, &dirs.netns, container_id);
    att.pasta = Some(PastaState {
        pid: read_pid(&pid_file),
    });
    let _ = std::fs::remove_file(&pid_file);
    if let Err(e) = started {
        return Err(undo(&att, e));
    }
    if let Some(bw) = bandwidth {
        // recorded first: a failure half-way leaves qdiscs that go with the namespace
        att.bandwidth = Some(bw.into());
        if let Err(e) = crate::shaping::shape_namespace(&netns, IFNAME, bw, false) {
            return Err(undo(
                &att,
                EngineError::Network(format!(
                    "failed to shape the traffic of container {container_id}: {e}"
                )),
            ));
        }
    }
    let address = address_in(&netns);
    if let Some(ip) = address {
        att.addresses.push((NETWORK.to_owned(), ip));
    }
    record(&att);
    if let Err(e) = crate::network::rewrite_intent(&att) {
        return Err(undo(&att, e));
    }
    Ok((att, address))
}

/// Run pasta and wait (bounded) for it to configure the namespace and daemonise; its
/// error output is kept in `<dir>/<id>.pasta.err` meanwhile (a daemon's stdio is
/// `/dev/null`, so no pipe is held open by it).
fn start(pasta: &Path, args: &[String], dir: &Path, container_id: &str) -> Result<()> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let err_path = dir.join(format!("{container_id}.pasta.err"));
    let err_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&err_path)
        .map_err(|e| EngineError::io("failed to create", &err_path, e))?;
    let _ = std::fs::remove_file(&err_path);
    let stderr = err_file
        .try_clone()
        .map_err(|e| EngineError::io("failed to duplicate", &err_path, e))?;
    // a process group of its own: on the deadline it is killed with what it forked
    let mut child = std::process::Command::new(pasta)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| EngineError::io("failed to run", pasta, e))?;
    let status = berth_fsutil::wait_or_kill_group(&mut child, START_TIMEOUT)
        .map_err(|e| EngineError::io("failed to wait for", pasta, e))?;
    let mut message = String::new();
    let mut f = err_file;
    let _ = std::io::Seek::rewind(&mut f);
    let _ = f.take(8192).read_to_string(&mut message);
    // (pasta also tries the system log, and says so when there is none)
    let message = message
        .lines()
        .filter(|l| !l.contains("to syslog"))
        .collect::<Vec<_>>()
        .join("; ");
    let message = message.trim();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => {
            let hint = if message.contains("tun") {
                "\nhint: pasta opens /dev/net/tun from your user namespace: distributions ship \
                 it with mode 0666 (here it is not); or run with --network none"
            } else {
                "\nhint: pasta copies the host's addresses and routes (it needs an interface \
                 with a default route); --network none runs the container without a network"
            };
            Err(EngineError::Network(format!(
                "pasta failed ({s}) for the network namespace {}: {message}{hint}",
                args.last().map_or("", String::as_str)
            )))
        }
        None => Err(EngineError::Network(format!(
            "pasta did not finish setting up the network namespace in {}s; killed: {message}",
            START_TIMEOUT.as_secs()
        ))),
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The first global IPv4 (else IPv6) address of [`IFNAME`] in the namespace at `netns`.
fn address_in(netns: &Path) -> Option<IpAddr> {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["ip", "-o", "addr", "show", "dev", IFNAME, "scope", "global"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ips: Vec<IpAddr> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            f.find(|w| *w == "inet" || *w == "inet6")?;
            f.next()?.split('/').next()?.parse().ok()
        })
        .collect();
    ips.iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| ips.first())
        .copied()
}

/// After the namespace at `netns` is unpinned: terminate the recorded pasta if it still
/// runs for that namespace (it normally exits by itself on the unpin).
pub fn stop(state: &PastaState, netns: &Path) {
    let Some(pid) = state.pid else { return };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let mut words = cmdline.split(|b| *b == 0);
    let is_pasta = words
        .next()
        .is_some_and(|w| w.ends_with(b"pasta") || w.ends_with(b"passt"));
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|w| w == netns.as_os_str().as_encoded_bytes());
    if is_pasta
        && ours
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// How long [`wait_ports_released`] waits for pasta's host ports to be free.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Wait (at most [`RELEASE_TIMEOUT`]) until each of the published `(port, protocol)` can be
/// bound on the host again: pasta's listening sockets outlive its exit by a moment (their
/// last close is deferred by the kernel), and a port that stays taken longer is someone
/// else's, not berth's to wait for.
pub fn wait_ports_released(ports: &[(u16, String)]) {
    let deadline = std::time::Instant::now() + RELEASE_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    for (port, proto) in ports {
        let free = || {
            let addr = std::net::SocketAddr::from(([0, 0, 0, 0], *port));
            // (only "in use" is pasta's: another refusal will not change by waiting)
            let taken = |e: std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
            match proto.as_str() {
                "udp" => std::net::UdpSocket::bind(addr).map_or_else(|e| !taken(e), |_| true),
                _ => std::net::TcpListener::bind(addr).map_or_else(|e| !taken(e), |_| true),
            }
        };
        while !free() && std::time::Instant::now() < deadline {
            wait_a_little(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "waiting for the kernel to close another process's sockets, not a test"
)]
fn wait_a_little(d: Duration) {
    std::thread::sleep(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_become_pasta_forwards_and_nothing_else_is_forwarded() {
        let p = |host_ip: &str, host, container, proto: &str| PortMapping {
            host_port: host,
            container_port: container,
            protocol: proto.to_owned(),
            host_ip: host_ip.to_owned(),
        };
        let a = args(
            Path::new("/d/netns/c1"),
            &[p("127.0.0.1", 8080, 80, "tcp"), p("", 5353, 53, "udp")],
            Path::new("/d/netns/c1.pasta.pid"),
        )
        .unwrap();
        let joined = a.join(" ");
        assert!(joined.contains("-t 127.0.0.1/8080:80"), "{joined}");
        assert!(joined.contains("-u 5353:53"), "{joined}");
        assert!(joined.contains("-T none -U none"), "{joined}");
        assert!(joined.contains("--no-map-gw"), "{joined}");
        assert!(joined.ends_with("--netns /d/netns/c1"), "{joined}");
        let none = args(Path::new("/n"), &[], Path::new("/p"))
            .unwrap()
            .join(" ");
        assert!(
            none.contains("-t none") && none.contains("-u none"),
            "{none}"
        );
        assert!(args(Path::new("/n"), &[p("", 1, 1, "sctp")], Path::new("/p")).is_err());
    }
}
