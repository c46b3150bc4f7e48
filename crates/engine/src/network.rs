//! Container networking through CNI (`berth-cni` and the standard plugins), as containerd's
//! CRI and nerdctl do it: a pinned network namespace ([`crate::netns`]) is made first, each
//! network of the container is attached to it with CNI ADD (`eth0`, `eth1`, …), and the
//! runtime joins the namespace by path. Detaching runs CNI DEL from the result cache — so it
//! works after a killed engine too — and then unpins the namespace.
//!
//! Networks are CNI configuration lists, looked up by name in berth's own directory
//! (`<config>/networks`) and then in `/etc/cni/net.d`. The default network `berth0` is
//! written there on first use: a `bridge` (gateway, masquerade, hairpin) with `host-local`
//! addresses from 10.89.0.0/16, `portmap` for `-p`, `firewall`, and `bandwidth` for
//! `--network-bandwidth`; `disableCheck`, because portmap 1.1.1's CHECK fails on IPv4-only
//! networks (containernetworking/plugins#819).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use berth_cni::{Bandwidth, PortMapping};
use berth_cni::{Cni, NetworkConfigList, RuntimeConf};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "berth0";
/// The system's CNI configuration directory, searched after berth's own.
pub const SYSTEM_CONFIG_DIR: &str = berth_cni::SYSTEM_CONFIG_DIR;
/// The default network's subnet.
pub const DEFAULT_SUBNET: &str = "10.89.0.0/16";

/// Where networks, plugins and state live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDirs {
    /// Configuration directories, searched in order (berth's own first).
    pub config: Vec<PathBuf>,
    /// Plugin directories (`CNI_PATH`).
    pub plugins: Vec<PathBuf>,
    /// The CNI result cache.
    pub cache: PathBuf,
    /// Where pinned namespaces go (`<dir>/<container id>`).
    pub netns: PathBuf,
    /// host-local's address files for the networks berth writes.
    pub ipam: PathBuf,
}

/// What a container asks of its networks.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    /// The networks, by name, in interface order.
    pub networks: Vec<String>,
    pub ports: Vec<PortMapping>,
    pub bandwidth: Option<Bandwidth>,
    /// `--ip`: the address to ask of the first network's IPAM (host-local's `IP` in
    /// `CNI_ARGS`, as podman's and nerdctl's `--ip`).
    pub ip: Option<IpAddr>,
    /// `--ip6`: the IPv6 address to ask of the first network's IPAM (a dual-stack one). With
    /// it, both addresses go as `args.cni.ips` ([`berth_cni::RuntimeConf::config_ips`]):
    /// `CNI_ARGS` carries one address only.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--mac-address`: the first network's interface's address (the bridge plugin's `MAC`
    /// in `CNI_ARGS`, as podman's and nerdctl's), normalized by [`parse_mac`].
    pub mac: Option<String>,
    /// The container's user namespace range (`host_start`, `size`), when it has one: the
    /// network namespace is then made owned by a pinned user namespace with that map, which
    /// the container joins (see [`crate::netns::create_with_userns`]).
    pub userns: Option<(u32, u32)>,
}

/// A container's networking, recorded in its attachments: enough to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub dirs: NetworkDirs,
    /// The pinned namespace.
    pub netns: PathBuf,
    /// The pinned user namespace owning it, for a user-namespaced container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<PathBuf>,
    pub container_id: String,
    /// The networks attached (or being attached), with their interface names.
    pub networks: Vec<(String, String)>,
    /// The container's addresses on each network that gave some, in the network's order
    /// (a dual-stack network: its IPv4 address, then its IPv6 one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<(String, IpAddr)>,
    /// The MAC address of the container's interface on each network that reported one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<(String, String)>,
    /// `--network-alias`: the container's other names on its user-defined networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Published ports, as `[IP:]HOST->CONTAINER/PROTO` (for `inspect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<String>,
    /// The traffic shaping asked for (bits per second, bursts in bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthLimits>,
    /// Rootless: the namespace is attached to pasta instead of CNI networks
    /// ([`crate::pasta`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pasta: Option<crate::pasta::PastaState>,
    /// Detached when the container exited ([`release_exited`]): nothing of it is left to
    /// undo; the rest of the record says what it was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

/// [`Bandwidth`] as a record keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthLimits {
    pub ingress_rate: u64,
    pub ingress_burst: u64,
    pub egress_rate: u64,
    pub egress_burst: u64,
}

/// The default network's configuration list, its addresses kept in `ipam_dir`.
pub fn default_conflist(ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": DEFAULT_NETWORK,
        "disableCheck": true,
        crate::hostrules::KEY: crate::hostrules::Mode::Masquerade.marker(),
        "plugins": [
            {
                "type": "bridge",
                "bridge": DEFAULT_NETWORK,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": DEFAULT_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}},
        ]
    })
}

/// The network `name`, writing the default network's list into the first configuration
/// directory when it is asked for and found nowhere.
pub fn load(dirs: &NetworkDirs, name: &str) -> Result<NetworkConfigList> {
    let write_default = || -> Result<NetworkConfigList> {
        let dir = own_config_dir(dirs)?;
        let path = dir.join(format!("{DEFAULT_NETWORK}.conflist"));
        let text = serde_json::to_vec_pretty(&default_conflist(&dirs.ipam))
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        berth_fsutil::atomic_write(&path, &text)
            .map_err(|e| EngineError::io("failed to write", &path, std::io::Error::other(e)))?;
        berth_cni::load(&dirs.config, name).map_err(cni_err)
    };
    match berth_cni::load(&dirs.config, name) {
        // the default list an older berth wrote, unchanged since, is replaced by today's (a
        // list edited by hand is kept). Containers attached with it are not affected: their
        // DEL runs from the list their cached result keeps.
        Ok(list)
            if name == DEFAULT_NETWORK
                && list.origin.as_ref().and_then(|f| f.parent())
                    == dirs.config.first().map(PathBuf::as_path)
                && serde_json::from_slice::<serde_json::Value>(&list.bytes).ok()
                    == Some(legacy_default_conflist(&dirs.ipam)) =>
        {
            write_default()
        }
        Ok(list) => Ok(list),
        Err(berth_cni::CniError::NetworkNotFound { .. }) if name == DEFAULT_NETWORK => {
            write_default()
        }
        Err(e) => Err(cni_err(e)),
    }
}

/// berth's own configuration directory (the first), created if missing: where it writes
/// lists.
fn own_config_dir(dirs: &NetworkDirs) -> Result<&Path> {
    let dir = dirs
        .config
        .first()
        .ok_or_else(|| EngineError::Invalid("no network configuration directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io("failed to create", dir, e))?;
    Ok(dir)
}

/// The default list berth wrote before its rules became the network's
/// ([`crate::hostrules`]): `bridge` with `ipMasq`, and the `firewall` plugin.
fn legacy_default_conflist(ipam_dir: &Path) -> serde_json::Value {
    let mut v = default_conflist(ipam_dir);
    if let Some(top) = v.as_object_mut() {
        top.remove(crate::hostrules::KEY);
    }
    v["plugins"][0]["ipMasq"] = serde_json::json!(true);
    if let Some(plugins) = v["plugins"].as_array_mut() {
        plugins.insert(2, serde_json::json!({"type": "firewall"}));
    }
    v
}

fn cni_err(e: berth_cni::CniError) -> EngineError {
    EngineError::Network(e.to_string())
}

/// Make the container's namespace and attach its networks; `record` is called with the
/// attachment as soon as the namespace exists (and again after each network), so that a
/// failure — here, or a kill — can be undone from the record. On error what was made is
/// undone. Returns the container's address on each network, in order.
pub fn attach(
    dirs: &NetworkDirs,
    container_id: &str,
    req: &NetworkRequest,
    mut record: impl FnMut(&NetworkAttachment),
) -> Result<(NetworkAttachment, Vec<Option<IpAddr>>)> {
    let lists = req
        .networks
        .iter()
        .map(|n| load(dirs, n))
        .collect::<Result<Vec<_>>>()?;
    // (refused before anything is made)
    let config_ips = match (req.ip6, lists.first()) {
        (Some(ip6), Some(first)) => requested_ips(first, req.ip, ip6)?,
        _ => Vec::new(),
    };
    let netns = dirs.netns.join(container_id);
    let userns = req
        .userns
        .map(|_| dirs.netns.join(format!("{container_id}.userns")));
    match (req.userns, &userns) {
        (Some((start, size)), Some(path)) => {
            crate::netns::create_with_userns(&netns, path, start, size)?;
        }
        _ => {
            crate::netns::create(&netns)?;
        }
    }
    let mut att = NetworkAttachment {
        dirs: dirs.clone(),
        netns: netns.clone(),
        userns,
        container_id: container_id.to_owned(),
        networks: Vec::new(),
        addresses: Vec::new(),
        macs: Vec::new(),
        aliases: Vec::new(),
        published: published(&req.ports),
        bandwidth: req.bandwidth.map(BandwidthLimits::from),
        pasta: None,
        released: false,
    };
    // Every network named, on disk and durable, before the first ADD, beside the namespace:
    // a `run` killed before its record exists (or a crash) leaves what `collect_orphans`
    // needs to undo it, even an ADD cut short, which has no CNI cache entry yet (its DEL goes
    // from the network's list; CNI's DEL tolerates what was never added). The addresses are
    // added after the ADDs without waiting for the disk: the undo does not need them.
    att.networks = lists
        .iter()
        .enumerate()
        .map(|(i, list)| (list.name.clone(), format!("eth{i}")))
        .collect();
    record(&att);
    if let Err(e) = write_intent(&att) {
        let _ = detach(&att);
        return Err(e);
    }
    for list in &lists {
        if let Err(e) = ensure_host_rules(dirs, list) {
            let _ = detach(&att);
            return Err(e);
        }
    }
    let cni = Cni::new(dirs.plugins.clone(), &dirs.cache);
    let mut addresses = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        let ifname = format!("eth{i}");
        let mut rt = RuntimeConf::new(container_id, netns.to_string_lossy(), &ifname);
        if i == 0 {
            // published ports and shaping on the first network, as nerdctl does
            if !req.ports.is_empty() {
                rt = rt.with_port_mappings(&req.ports);
            }
            if let Some(bw) = req.bandwidth {
                rt = rt.with_bandwidth(bw);
            }
            let ip_arg = req.ip.filter(|_| req.ip6.is_none());
            if ip_arg.is_some() || req.mac.is_some() {
                // IgnoreUnknown: plugins that read CNI_ARGS refuse keys they do not know
                rt = rt.with_arg("IgnoreUnknown", "1");
            }
            if let Some(ip) = ip_arg {
                rt = rt.with_arg("IP", ip.to_string());
            }
            if !config_ips.is_empty() {
                rt = rt.with_config_ips(&config_ips);
            }
            if let Some(mac) = &req.mac {
                rt = rt.with_arg("MAC", mac.clone());
            }
        }
        match cni.add(list, &rt) {
            Ok(result) => {
                let ips = att.note_result(&list.name, &ifname, &result);
                addresses.push(ips.iter().find(|ip| ip.is_ipv4()).or(ips.first()).copied());
                record(&att);
            }
            Err(e) => {
                let _ = detach(&att);
                let text = e.to_string();
                let kind = list.plugins.first().map(|p| p.plugin_type.as_str());
                let hint = match kind {
                    Some(k @ ("macvlan" | "ipvlan"))
                        if text.contains("operation not supported") =>
                    {
                        format!(
                            " (hint: this kernel has no support for {k} links: load its module, \
                             or use a bridge network)"
                        )
                    }
                    _ => String::new(),
                };
                return Err(EngineError::Network(format!(
                    "failed to attach container {container_id} to network {}: {text}{hint}",
                    list.name
                )));
            }
        }
    }
    if let Err(e) = rewrite_intent(&att) {
        let _ = detach(&att);
        return Err(e);
    }
    Ok((att, addresses))
}

/// The addresses `--ip` and `--ip6` ask of `list`'s IPAM as `args.cni.ips`, refused when the
/// network has no IPv6 subnet for `ip6` (host-local would say only that it could not
/// allocate it).
fn requested_ips(
    list: &NetworkConfigList,
    ip: Option<IpAddr>,
    ip6: std::net::Ipv6Addr,
) -> Result<Vec<String>> {
    if !subnets_of(list).iter().any(|s| s.contains(':')) {
        return Err(EngineError::Invalid(format!(
            "--ip6 {ip6}: network {} has no IPv6 subnet (hint: a dual-stack network, made \
             with `berth network create --ipv6`)",
            list.name
        )));
    }
    Ok(ip
        .into_iter()
        .chain([IpAddr::V6(ip6)])
        .map(|a| a.to_string())
        .collect())
}

/// The network's own rules in the host's firewall, where its list asks berth for them
/// ([`crate::hostrules`]).
fn ensure_host_rules(dirs: &NetworkDirs, list: &NetworkConfigList) -> Result<()> {
    match crate::hostrules::HostRules::of(list)? {
        Some(rules) => crate::hostrules::ensure(&rules, &dirs.ipam),
        None => Ok(()),
    }
}

/// A `--network-alias` (`run`) or `--alias` (`network connect`): a host name of letters,
/// digits, `-`, `_` and `.`, starting with a letter or digit, at most 63 bytes.
pub fn check_alias(alias: &str) -> std::result::Result<(), String> {
    let valid = !alias.is_empty()
        && alias.len() <= 63
        && alias.as_bytes()[0].is_ascii_alphanumeric()
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid network alias {alias:?}: letters, digits, -, _ and ., starting with a \
             letter or digit, at most 63"
        ))
    }
}

/// `--mac-address`: six octets of two hex digits separated by `:` (or `-`), a unicast
/// address (the kernel gives no interface a multicast one); lower case, `:`-separated.
pub fn parse_mac(s: &str) -> std::result::Result<String, String> {
    let bad = |why: &str| format!("invalid --mac-address {s:?}: {why}");
    let octets: Vec<&str> = s.split([':', '-']).collect();
    if octets.len() != 6
        || octets
            .iter()
            .any(|o| o.len() != 2 || !o.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad("give six hex octets, such as 02:42:ac:11:00:02"));
    }
    let first = u8::from_str_radix(octets[0], 16).map_err(|_| bad("not hex"))?;
    if first & 1 == 1 {
        return Err(bad(
            "a multicast address (the first octet is odd); an interface needs a unicast one",
        ));
    }
    if octets.iter().all(|o| *o == "00") {
        return Err(bad("the all-zero address is no interface's"));
    }
    Ok(octets.join(":").to_ascii_lowercase())
}

/// Published ports as `inspect` shows them: `[IP:]HOST->CONTAINER/PROTO`.
pub(crate) fn published(ports: &[PortMapping]) -> Vec<String> {
    ports
        .iter()
        .map(|p| {
            let ip = if p.host_ip.is_empty() {
                String::new()
            } else {
                format!("{}:", p.host_ip)
            };
            format!("{ip}{}->{}/{}", p.host_port, p.container_port, p.protocol)
        })
        .collect()
}

impl From<Bandwidth> for BandwidthLimits {
    fn from(b: Bandwidth) -> BandwidthLimits {
        BandwidthLimits {
            ingress_rate: b.ingress_rate,
            ingress_burst: b.ingress_burst,
            egress_rate: b.egress_rate,
            egress_burst: b.egress_burst,
        }
    }
}

/// `<netns dir>/<id>.json`: the attachment, for [`collect_orphans`].
fn intent_path(att: &NetworkAttachment) -> PathBuf {
    att.dirs.netns.join(format!("{}.json", att.container_id))
}

/// The attachment's intent, written whole and durably: what names something to undo.
pub(crate) fn write_intent(att: &NetworkAttachment) -> Result<()> {
    store_intent(att, |p, d| berth_fsutil::atomic_write(p, d))
}

/// The intent again, with facts its undo does not need (addresses, a pid, shaping): written
/// whole, never torn, but the rename not waited for (`atomic_rewrite`). Lost in a crash, the
/// durable intent before it still names everything to undo, and the crash took the kernel's
/// side (namespace, links, rules, processes) with it.
pub(crate) fn rewrite_intent(att: &NetworkAttachment) -> Result<()> {
    store_intent(att, |p, d| berth_fsutil::atomic_rewrite(p, d))
}

fn store_intent(
    att: &NetworkAttachment,
    write: fn(&Path, &[u8]) -> std::result::Result<(), berth_fsutil::FsError>,
) -> Result<()> {
    let path = intent_path(att);
    let text = serde_json::to_vec(att).map_err(|e| EngineError::Invalid(e.to_string()))?;
    write(&path, &text)
        .map_err(|e| EngineError::io("failed to write", &path, std::io::Error::other(e)))
}

/// Detach the networks of container `id` once it has exited, as docker, podman and nerdctl
/// do at a container's exit (berth never starts an exited container again): its addresses
/// go back to the pool, its veths, rules and pinned namespace go, and the record keeps the
/// rest, marked released, until `rm`. Left alone while a running container shares the
/// namespace (`--network container:`), whose network it would take; `rm` detaches then.
pub fn release_exited(layout: &crate::record::Layout, id: &str) -> Result<()> {
    let rec = crate::record::read(layout, id)?;
    let Some(att) = rec.attachments.network.as_ref().filter(|n| !n.released) else {
        return Ok(());
    };
    if rec.status != crate::Status::Exited || shared_by_a_running_container(layout, id, &att.netns)
    {
        return Ok(());
    }
    detach(att)?;
    crate::record::update(layout, id, |r| {
        if let Some(n) = r.attachments.network.as_mut() {
            n.released = true;
            n.addresses.clear();
            n.macs.clear();
            n.published.clear();
            if let Some(p) = n.pasta.as_mut() {
                p.pid = None;
            }
        }
    })?;
    Ok(())
}

/// Whether a running container other than `id` is in the network namespace pinned at
/// `netns` (compared by device and inode with its init's).
fn shared_by_a_running_container(layout: &crate::record::Layout, id: &str, netns: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(pinned) = std::fs::metadata(netns) else {
        return false;
    };
    let ids = crate::record::ids(layout).unwrap_or_default();
    ids.iter().filter(|other| *other != id).any(|other| {
        let Ok(r) = crate::record::read(layout, other) else {
            return false;
        };
        let Some(pid) = r
            .init_pid
            .filter(|p| crate::record::alive(*p, r.init_start))
        else {
            return false;
        };
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|m| m.dev() == pinned.dev() && m.ino() == pinned.ino())
    })
}

/// CNI DEL of every network the attachment names (with the cached result where the ADD
/// completed; without, as CNI allows, where it was cut short) and of any other cached
/// attachment of the container, then unpin the namespaces. Idempotent.
pub fn detach(att: &NetworkAttachment) -> Result<()> {
    let cni = Cni::new(att.dirs.plugins.clone(), &att.dirs.cache);
    let mut first: Option<EngineError> = None;
    let mut fail = |network: &str, e: &dyn std::fmt::Display| {
        first.get_or_insert(EngineError::Network(format!(
            "failed to detach container {} from network {network}: {e}",
            att.container_id
        )));
    };
    for (network, ifname) in att.networks.iter().rev() {
        let cached = berth_cni::entry_path(&att.dirs.cache, network, &att.container_id, ifname);
        if cached.exists() {
            continue; // below, from the cache
        }
        match load(&att.dirs, network) {
            Ok(list) => {
                let rt = RuntimeConf::new(
                    att.container_id.clone(),
                    att.netns.to_string_lossy(),
                    ifname.clone(),
                );
                if let Err(e) = cni.del(&list, &rt) {
                    fail(network, &e);
                }
            }
            Err(e) => fail(network, &e),
        }
    }
    match cni.cached_attachments(Some(&att.container_id)) {
        Ok(cached) => {
            for a in cached.iter().rev() {
                if let Err(e) = cni.del_attachment(a) {
                    fail(&a.network, &e);
                }
            }
        }
        Err(e) => fail("(cache)", &e),
    }
    if let Some(e) = first {
        // keep the namespace and the intent: a later teardown or collection tries again
        return Err(e);
    }
    crate::netns::remove(&att.netns)?;
    if let Some(p) = &att.pasta {
        // (pasta exits when its namespace file goes; this is for one that did not)
        crate::pasta::stop(p, &att.netns);
        // its listening sockets close a moment after it exits: `rm` returns once the host
        // ports are free again, so a `run -p` of the same port right after does not fail
        crate::pasta::wait_ports_released(&att.published_ports());
    }
    if let Some(u) = &att.userns {
        crate::netns::remove(u)?;
    }
    match std::fs::remove_file(intent_path(att)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io("failed to remove", intent_path(att), e)),
    }
}

/// `berth network connect`: attach the container whose networking `att` records to network
/// `name` as well, on its next free interface (`eth1`, …), asking the network's IPAM for `ip`
/// when given (host-local's `IP`, as `run --ip`). As [`attach`], the intent names the network
/// durably before the ADD, and an ADD that fails is undone (DEL) and forgotten. Returns the
/// addresses the network gave.
pub fn connect(
    att: &mut NetworkAttachment,
    name: &str,
    ip: Option<IpAddr>,
    ip6: Option<std::net::Ipv6Addr>,
) -> Result<Vec<IpAddr>> {
    if att.pasta.is_some() {
        return Err(EngineError::Invalid(format!(
            "container {} is rootless, on pasta's network: rootless berth cannot make bridge              networks yet",
            att.container_id
        )));
    }
    if att.released {
        return Err(EngineError::Invalid(format!(
            "container {} has exited and given its networks back: connect a created or              running container",
            att.container_id
        )));
    }
    let list = load(&att.dirs, name)?;
    if att.networks.iter().any(|(n, _)| *n == list.name) {
        return Err(EngineError::Invalid(format!(
            "container {} is already attached to network {}",
            att.container_id, list.name
        )));
    }
    // (checked before the network is named in the intent)
    let config_ips = match ip6 {
        Some(ip6) => requested_ips(&list, ip, ip6)?,
        None => Vec::new(),
    };
    ensure_host_rules(&att.dirs, &list)?;
    let Some(ifname) = (0..att.networks.len() + 1)
        .map(|i| format!("eth{i}"))
        .find(|f| !att.networks.iter().any(|(_, g)| g == f))
    else {
        return Err(EngineError::Invalid("no free interface name".to_owned()));
    };
    att.networks.push((list.name.clone(), ifname.clone()));
    let forget = |att: &mut NetworkAttachment| {
        att.networks.retain(|(n, _)| *n != list.name);
    };
    if let Err(e) = write_intent(att) {
        forget(att);
        return Err(e);
    }
    let cni = Cni::new(att.dirs.plugins.clone(), &att.dirs.cache);
    let mut rt = RuntimeConf::new(
        att.container_id.clone(),
        att.netns.to_string_lossy(),
        ifname.clone(),
    );
    match (ip, ip6) {
        (_, Some(_)) => rt = rt.with_config_ips(&config_ips),
        (Some(ip), None) => {
            rt = rt
                .with_arg("IgnoreUnknown", "1")
                .with_arg("IP", ip.to_string());
        }
        (None, None) => {}
    }
    let result = match cni.add(&list, &rt) {
        Ok(r) => r,
        Err(e) => {
            // what the plugins that ran made goes (CNI's DEL tolerates the rest)
            let undone = cni.del(&list, &rt);
            forget(att);
            let _ = write_intent(att);
            let mut text = format!(
                "failed to attach container {} to network {}: {e}",
                att.container_id, list.name
            );
            if let Err(u) = undone {
                text.push_str(&format!(" (and undoing it failed: {u})"));
            }
            return Err(EngineError::Network(text));
        }
    };
    let ips = att.note_result(&list.name, &ifname, &result);
    rewrite_intent(att)?;
    Ok(ips)
}

/// `berth network disconnect`: CNI DEL of network `name` alone (from its cached result, or
/// from its list where the ADD left none), and the attachment forgets it. The namespace
/// stays, with the container's other networks (none left: only its loopback, as docker's).
/// Returns the addresses the container had there.
pub fn disconnect(att: &mut NetworkAttachment, name: &str) -> Result<Vec<IpAddr>> {
    let Some((network, ifname)) = att.networks.iter().find(|(n, _)| n == name).cloned() else {
        return Err(EngineError::Invalid(format!(
            "container {} is not attached to network {name}",
            att.container_id
        )));
    };
    if !att.released {
        let cni = Cni::new(att.dirs.plugins.clone(), &att.dirs.cache);
        let cached = cni
            .cached_attachments(Some(&att.container_id))
            .map_err(cni_err)?
            .into_iter()
            .find(|a| a.network == network && a.ifname == ifname);
        let del = match cached {
            Some(a) => cni.del_attachment(&a),
            None => {
                let list = load(&att.dirs, &network)?;
                let rt = RuntimeConf::new(
                    att.container_id.clone(),
                    att.netns.to_string_lossy(),
                    ifname.clone(),
                );
                cni.del(&list, &rt)
            }
        };
        del.map_err(|e| {
            EngineError::Network(format!(
                "failed to detach container {} from network {network}: {e}",
                att.container_id
            ))
        })?;
    }
    let gone: Vec<IpAddr> = att
        .addresses
        .iter()
        .filter(|(n, _)| *n == network)
        .map(|(_, ip)| *ip)
        .collect();
    att.networks.retain(|(n, _)| *n != network);
    att.addresses.retain(|(n, _)| *n != network);
    att.macs.retain(|(n, _)| *n != network);
    if !att.released {
        write_intent(att)?;
    }
    Ok(gone)
}

impl NetworkAttachment {
    /// Keep what network `name`'s ADD on `ifname` gave: every address (a dual-stack
    /// network: IPv4 and IPv6) and the interface's MAC. Returns the addresses.
    fn note_result(
        &mut self,
        name: &str,
        ifname: &str,
        result: &berth_cni::CniResult,
    ) -> Vec<IpAddr> {
        let ips: Vec<IpAddr> = result
            .ips
            .iter()
            .filter_map(berth_cni::IpConfig::ip)
            .collect();
        self.addresses
            .extend(ips.iter().map(|ip| (name.to_owned(), *ip)));
        if let Some(mac) = result
            .interfaces
            .iter()
            .find(|i| i.name == ifname && i.sandbox.is_some())
            .and_then(|i| i.mac.clone())
        {
            self.macs.push((name.to_owned(), mac));
        }
        ips
    }

    /// The host ports published, with their protocols (from [`NetworkAttachment::published`]).
    pub fn published_ports(&self) -> Vec<(u16, String)> {
        self.published
            .iter()
            .filter_map(|p| {
                let (host, rest) = p.split_once("->")?;
                let (_, proto) = rest.rsplit_once('/')?;
                let port = host
                    .rsplit_once(':')
                    .map_or(host, |(_, p)| p)
                    .parse()
                    .ok()?;
                Some((port, proto.to_owned()))
            })
            .collect()
    }
}

/// An `ExposedPorts` key of an image config (`80/tcp`, `53/udp`, `8080`): the port and its
/// protocol (tcp when none is given).
pub fn parse_exposed(key: &str) -> std::result::Result<(u16, String), String> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "the image exposes {key:?}: unknown protocol {proto}"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, proto)),
        _ => Err(format!("the image exposes {key:?}: not a port")),
    }
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), where docker's `-P`
/// takes host ports; Linux's default 32768–60999 when it cannot be read.
pub fn ephemeral_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(lo, hi)| lo <= hi && *lo > 0)
        .unwrap_or((32768, 60999))
}

/// `-P`: a host port for each of `exposed` (port, protocol), the lowest of `range` that is
/// not in `taken` (published by another container, or by this one's `-p`) and that nothing
/// on the host is bound to (a bind to it succeeds). portmap's rules hold no socket, so the
/// caller must keep other `run`s out between this and the container's record (the host-id
/// lock does).
pub fn publish_free(
    exposed: &[(u16, String)],
    taken: &[(u16, String)],
    range: (u16, u16),
) -> Result<Vec<PortMapping>> {
    let mut taken = taken.to_vec();
    let mut out = Vec::new();
    for (container_port, protocol) in exposed {
        let free = (range.0..=range.1).find(|p| {
            !taken.iter().any(|(t, proto)| t == p && proto == protocol)
                && host_port_free(*p, protocol)
        });
        let Some(host_port) = free else {
            return Err(EngineError::Invalid(format!(
                "no free {protocol} port left in {}-{} for the exposed port {container_port}",
                range.0, range.1
            )));
        };
        taken.push((host_port, protocol.clone()));
        out.push(PortMapping {
            host_port,
            container_port: *container_port,
            protocol: protocol.clone(),
            host_ip: String::new(),
        });
    }
    Ok(out)
}

/// Whether nothing on the host holds `port` for `protocol` (a wildcard bind succeeds, on
/// IPv4 and, where the host has it, IPv6).
fn host_port_free(port: u16, protocol: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
    let bind = |ip: IpAddr| -> std::io::Result<()> {
        let addr = SocketAddr::new(ip, port);
        match protocol {
            "udp" => UdpSocket::bind(addr).map(drop),
            // (sctp: no std socket; tcp's answer stands for it)
            _ => TcpListener::bind(addr).map(drop),
        }
    };
    // one at a time (each socket closed before the next bind); no IPv6 on the host (or in
    // this namespace) leaves IPv4's answer
    bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).is_ok()
        && !matches!(
            bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
        )
}

/// `-p [IP:]HOST:CONTAINER[/tcp|udp|sctp]`, as docker reads it (a host port is required:
/// portmap publishes no random port).
pub fn parse_publish(s: &str) -> std::result::Result<PortMapping, String> {
    let bad = |why: &str| format!("invalid -p {s:?}: {why} (give [IP:]HOST:CONTAINER[/tcp|udp])");
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, p)) if matches!(p, "tcp" | "udp" | "sctp") => (spec, p),
        Some((_, p)) => return Err(bad(&format!("unknown protocol {p}"))),
        None => (s, "tcp"),
    };
    // an IPv6 host address is bracketed: [::1]:8080:80
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(r) => {
            let (ip, rest) = r.split_once("]:").ok_or_else(|| bad("unclosed ["))?;
            (ip.to_owned(), rest)
        }
        None => match spec.matches(':').count() {
            2 => {
                let (ip, rest) = spec.split_once(':').ok_or_else(|| bad("bad address"))?;
                (ip.to_owned(), rest)
            }
            1 => (String::new(), spec),
            _ => return Err(bad("a host port is required")),
        },
    };
    if !host_ip.is_empty() && host_ip.parse::<IpAddr>().is_err() {
        return Err(bad(&format!("{host_ip} is not an IP address")));
    }
    let (host, container) = rest
        .split_once(':')
        .ok_or_else(|| bad("a host port is required"))?;
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    Ok(PortMapping {
        host_port: port(host).ok_or_else(|| bad(&format!("bad host port {host}")))?,
        container_port: port(container)
            .ok_or_else(|| bad(&format!("bad container port {container}")))?,
        protocol: protocol.to_owned(),
        host_ip,
    })
}

/// `--network-bandwidth egress=RATE,ingress=RATE[,burst=SIZE]`: rates as `tc` writes them
/// (`10mbit`, `500kbit`, `1gbit`, `2mbps` bytes per second) or Kubernetes' annotation
/// quantities (`10M` = 10 Mbit/s); burst in bytes (`64k`, `1mb`; default a tenth of a second
/// at the rate, at least 32 KiB). CNI wants bits.
pub fn parse_bandwidth(s: &str) -> std::result::Result<Bandwidth, String> {
    let bad = |why: String| {
        format!(
            "invalid --network-bandwidth {s:?}: {why} (give egress=RATE,ingress=RATE[,burst=SIZE], such as egress=10mbit)"
        )
    };
    let mut bw = Bandwidth::default();
    let mut burst: Option<u64> = None;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part} is not KEY=VALUE")))?;
        match k {
            "egress" => bw.egress_rate = parse_rate(v).map_err(bad)?,
            "ingress" => bw.ingress_rate = parse_rate(v).map_err(bad)?,
            "burst" => burst = Some(parse_size_bits(v).map_err(bad)?),
            _ => return Err(bad(format!("unknown key {k}"))),
        }
    }
    if bw.egress_rate == 0 && bw.ingress_rate == 0 {
        return Err(bad("no rate".into()));
    }
    if bw.egress_rate > 0 {
        bw.egress_burst = burst.unwrap_or_else(|| default_burst(bw.egress_rate));
    }
    if bw.ingress_rate > 0 {
        bw.ingress_burst = burst.unwrap_or_else(|| default_burst(bw.ingress_rate));
    }
    Ok(bw)
}

/// The burst (bits) when none is given: a tenth of a second at `rate`, at least 32 KiB.
pub(crate) fn default_burst(rate: u64) -> u64 {
    (rate / 10).max(32 * 1024 * 8)
}

/// A rate in bits per second.
fn parse_rate(v: &str) -> std::result::Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{v} is not a rate"))?;
    let mult: f64 = match unit {
        "" | "bit" => 1.0,
        "k" | "kbit" => 1e3,
        "m" | "mbit" => 1e6,
        "g" | "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => return Err(format!("unknown rate unit in {v}")),
    };
    let bits = n * mult;
    if !(1.0..=1e12).contains(&bits) {
        return Err(format!("{v} is out of range"));
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "range checked"
    )]
    Ok(bits as u64)
}

/// A size in bytes (`64k`, `1mb`, `1m`, `2048`) as bits.
fn parse_size_bits(v: &str) -> std::result::Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{v} is not a size"))?;
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("unknown size unit in {v}")),
    };
    n.checked_mul(mult)
        .and_then(|b| b.checked_mul(8))
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("{v} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reads_dockers_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            (
                p.host_port,
                p.container_port,
                p.protocol.as_str(),
                p.host_ip.as_str()
            ),
            (8080, 80, "tcp", "")
        );
        let p = parse_publish("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(
            (
                p.host_port,
                p.container_port,
                p.protocol.as_str(),
                p.host_ip.as_str()
            ),
            (5353, 53, "udp", "127.0.0.1")
        );
        let p = parse_publish("[::1]:8443:443").unwrap();
        assert_eq!(p.host_ip, "::1");
        for bad in [
            "80",
            "x:80",
            "8080:0",
            "1.2.3.4:80",
            "8080:80/icmp",
            "nope:1:2",
            "70000:80",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_addresses_are_unicast_six_octets_normalized() {
        assert_eq!(parse_mac("02:42:AC:11:00:02").unwrap(), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02-42-ac-11-00-03").unwrap(), "02:42:ac:11:00:03");
        for (bad, says) in [
            ("02:42:ac:11:00", "six hex octets"),
            ("02:42:ac:11:00:02:01", "six hex octets"),
            ("02:42:ac:11:00:zz", "six hex octets"),
            ("2:42:ac:11:00:02", "six hex octets"),
            ("01:00:5e:00:00:01", "multicast"),
            ("ff:ff:ff:ff:ff:ff", "multicast"),
            ("00:00:00:00:00:00", "all-zero"),
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn bandwidth_reads_tc_and_kubernetes_units_into_bits() {
        let bw = parse_bandwidth("egress=10mbit,ingress=1M").unwrap();
        assert_eq!(bw.egress_rate, 10_000_000);
        assert_eq!(bw.ingress_rate, 1_000_000);
        assert_eq!(bw.egress_burst, 1_000_000);
        assert_eq!(bw.ingress_burst, 32 * 1024 * 8);
        let bw = parse_bandwidth("ingress=2mbps,burst=64k").unwrap();
        assert_eq!(bw.ingress_rate, 16_000_000);
        assert_eq!(bw.ingress_burst, 64 * 1024 * 8);
        assert_eq!(bw.egress_rate, 0);
        for bad in [
            "",
            "egress",
            "egress=fast",
            "up=1m",
            "burst=1m",
            "egress=0",
            "egress=1m,burst=1t",
        ] {
            assert!(parse_bandwidth(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_older_berths_default_list_is_replaced_unless_it_was_edited() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = NetworkDirs {
            config: vec![dir.path().join("networks")],
            plugins: Vec::new(),
            cache: dir.path().join("cache"),
            netns: dir.path().join("netns"),
            ipam: dir.path().join("ipam"),
        };
        // what berth wrote before df5d5c6, word for word
        let old = |subnet: &str| {
            serde_json::json!({
                "cniVersion": "1.0.0",
                "name": "berth0",
                "disableCheck": true,
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": "berth0",
                        "isGateway": true,
                        "ipMasq": true,
                        "hairpinMode": true,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": subnet}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                            "dataDir": dirs.ipam,
                        }
                    },
                    {"type": "portmap", "capabilities": {"portMappings": true}},
                    {"type": "firewall"},
                    {"type": "bandwidth", "capabilities": {"bandwidth": true}},
                ]
            })
        };
        std::fs::create_dir_all(&dirs.config[0]).unwrap();
        let file = dirs.config[0].join("berth0.conflist");
        berth_fsutil::atomic_write(
            &file,
            &serde_json::to_vec_pretty(&old(DEFAULT_SUBNET)).unwrap(),
        )
        .unwrap();
        let list = load(&dirs, DEFAULT_NETWORK).unwrap();
        assert!(crate::hostrules::HostRules::of(&list).unwrap().is_some());
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk, default_conflist(&dirs.ipam));
        // edited (another subnet): the user's list stays as it is
        let edited = old("10.55.0.0/16");
        berth_fsutil::atomic_write(&file, &serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        let list = load(&dirs, DEFAULT_NETWORK).unwrap();
        assert!(crate::hostrules::HostRules::of(&list).unwrap().is_none());
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk, edited);
    }

    #[test]
    fn the_default_network_is_a_list_the_cni_crate_accepts() {
        let v = default_conflist(Path::new("/var/lib/berth/cni/networks"));
        let list =
            NetworkConfigList::from_bytes(&serde_json::to_vec(&v).unwrap(), "default").unwrap();
        assert_eq!(list.name, DEFAULT_NETWORK);
        let types: Vec<&str> = list
            .plugins
            .iter()
            .map(|p| p.plugin_type.as_str())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "bandwidth"]);
        let rules = crate::hostrules::HostRules::of(&list).unwrap();
        assert!(rules.is_some(), "the default network's rules are berth's");
    }
}

/// `berth network create`'s settings.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    /// CIDRs, at most one of each family. No IPv4 one: the first free /24 of
    /// 10.90.0.0/16 (a network always has one, as docker's and podman's). An IPv6 one makes
    /// the network dual-stack.
    pub subnets: Vec<String>,
    /// Gateways, at most one of each family, each inside its family's subnet (default: the
    /// subnet's first address).
    pub gateways: Vec<IpAddr>,
    /// Dual-stack: an IPv6 subnet too, the first free /64 of [`IPV6_POOL`] when none is given.
    pub ipv6: bool,
    /// No route out and no masquerade: containers reach each other and the host only.
    pub internal: bool,
    /// `bridge` (the default), or `macvlan` / `ipvlan`: the containers on the host's LAN
    /// through `parent`, with addresses of its subnet.
    pub driver: Driver,
    /// `-o parent=IFACE` (macvlan, ipvlan; default: the interface of the default route).
    pub parent: Option<String>,
    /// `-o mode=`: macvlan's bridge (default), vepa, private or passthru; ipvlan's l2
    /// (default), l3 or l3s.
    pub mode: Option<String>,
    /// `-o mtu=`: the containers' interfaces' MTU (and the bridge's).
    pub mtu: Option<u32>,
}

/// `network create --driver`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    #[default]
    Bridge,
    Macvlan,
    Ipvlan,
}

impl std::str::FromStr for Driver {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Driver, String> {
        match s {
            "bridge" => Ok(Driver::Bridge),
            "macvlan" => Ok(Driver::Macvlan),
            "ipvlan" => Ok(Driver::Ipvlan),
            other => Err(format!("--driver {other}: give bridge, macvlan or ipvlan")),
        }
    }
}

impl Driver {
    fn plugin(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
        }
    }
}

/// `ip ARGS…` (iproute2) in this network namespace, its output captured.
fn ip(args: &[&str]) -> Result<std::process::Output> {
    std::process::Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            EngineError::Network(format!(
                "ip {}: {e} (hint: install iproute2)",
                args.join(" ")
            ))
        })
}

/// `ip -j ARGS…`'s JSON (`null` when it failed or printed none).
fn ip_json(args: &[&str]) -> Result<serde_json::Value> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let out = ip(&all)?;
    Ok(serde_json::from_slice(&out.stdout).unwrap_or_default())
}

/// The interface of the host's default IPv4 route (macvlan's and ipvlan's default parent,
/// as podman's).
fn default_route_interface() -> Option<String> {
    let routes = ip_json(&["-4", "route", "show", "default"]).ok()?;
    routes[0]["dev"].as_str().map(str::to_owned)
}

/// Whether the interface `name` exists in this network namespace.
fn interface_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).is_ok_and(|o| o.status.success())
}

/// Where `network create --ipv6` takes a /64 when not given one: a unique local prefix
/// (RFC 4193: `fd` and a 40-bit global id, here a fixed one picked at random for berth),
/// its 16-bit subnet ids counted up from 1.
pub const IPV6_POOL: &str = "fd8a:b3e7:6c2d::/48";

/// A network as `berth network ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    pub name: String,
    /// The first plugin's type (`bridge`).
    pub driver: String,
    pub subnets: Vec<String>,
    pub file: Option<PathBuf>,
    /// Written by berth (in its own directory): `rm` and `prune` may remove it.
    pub berth: bool,
}

/// The subnets a list's IPAM ranges name (host-local's `ranges` or `subnet`).
pub(crate) fn subnets_of(list: &NetworkConfigList) -> Vec<String> {
    let mut out = Vec::new();
    for p in &list.plugins {
        let Some(ipam) = p.raw.get("ipam") else {
            continue;
        };
        if let Some(s) = ipam.get("subnet").and_then(|s| s.as_str()) {
            out.push(s.to_owned());
        }
        for set in ipam
            .get("ranges")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            for r in set.as_array().into_iter().flatten() {
                if let Some(s) = r.get("subnet").and_then(|s| s.as_str()) {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

/// Every network the configuration directories hold (the first of a name wins, as in
/// [`load`]); files that do not parse are returned as errors beside them.
pub fn list(dirs: &NetworkDirs) -> Result<(Vec<NetworkInfo>, Vec<String>)> {
    let (lists, broken) = berth_cni::load_all(&dirs.config).map_err(cni_err)?;
    let own = dirs.config.first();
    let infos = lists
        .iter()
        .map(|l| NetworkInfo {
            name: l.name.clone(),
            driver: l
                .plugins
                .first()
                .map(|p| p.plugin_type.clone())
                .unwrap_or_default(),
            subnets: subnets_of(l),
            file: l.origin.clone(),
            berth: l
                .origin
                .as_ref()
                .is_some_and(|f| own.is_some_and(|d| f.parent() == Some(d.as_path()))),
        })
        .collect();
    Ok((infos, broken.iter().map(ToString::to_string).collect()))
}

/// The bridge device of a network berth writes: `berth0` for the default, else `bn-` and
/// eight hex digits of the name's hash (interface names have at most 15 bytes).
fn bridge_name(name: &str) -> String {
    if name == DEFAULT_NETWORK {
        return name.to_owned();
    }
    // FNV-1a: stable across builds, enough to keep bridges of different names apart
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("bn-{h:08x}")
}

/// Write a new bridge network `name` into berth's own directory (refused when any directory
/// has a network of that name, or the subnet overlaps another network's).
pub fn create(dirs: &NetworkDirs, name: &str, opts: &CreateNetwork) -> Result<NetworkInfo> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !valid {
        return Err(EngineError::Invalid(format!(
            "invalid network name {name:?}: letters, digits, -, _ and ., starting with a letter or digit"
        )));
    }
    let lan = opts.driver != Driver::Bridge;
    let driver = opts.driver.plugin();
    if let Some(mode) = &opts.mode {
        let modes: &[&str] = match opts.driver {
            Driver::Bridge => &[],
            Driver::Macvlan => &["bridge", "vepa", "private", "passthru"],
            Driver::Ipvlan => &["l2", "l3", "l3s"],
        };
        if !modes.contains(&mode.as_str()) {
            return Err(EngineError::Invalid(if modes.is_empty() {
                format!("-o mode={mode}: a bridge network has no modes")
            } else {
                format!("-o mode={mode}: {driver} takes {}", modes.join(", "))
            }));
        }
    }
    if opts.mtu.is_some_and(|m| !(68..=65535).contains(&m)) {
        return Err(EngineError::Invalid(format!(
            "-o mtu={}: give 68 to 65535",
            opts.mtu.unwrap_or_default()
        )));
    }
    let parent = if lan {
        if !opts.subnets.iter().any(|s| !s.contains(':')) {
            return Err(EngineError::Invalid(format!(
                "a {driver} network puts containers on the parent interface's LAN: give that \
                 LAN's IPv4 --subnet (and --gateway, its router, unless it is the subnet's first \
                 address)"
            )));
        }
        let parent = match &opts.parent {
            Some(p) => p.clone(),
            None => default_route_interface().ok_or_else(|| {
                EngineError::Invalid(format!(
                    "a {driver} network needs a parent interface, and the host has no default \
                     route to take it from: give -o parent=IFACE"
                ))
            })?,
        };
        if !interface_exists(&parent) {
            return Err(EngineError::Invalid(format!(
                "-o parent={parent}: no such interface (see `ip link`)"
            )));
        }
        Some(parent)
    } else {
        if opts.parent.is_some() {
            return Err(EngineError::Invalid(
                "-o parent= is for macvlan and ipvlan networks (--driver)".into(),
            ));
        }
        None
    };
    let (existing, _) = list(dirs)?;
    if existing.iter().any(|n| n.name == name) || name == DEFAULT_NETWORK {
        return Err(EngineError::Invalid(format!(
            "network {name} already exists"
        )));
    }
    let mut taken: Vec<(IpAddr, u8)> = existing
        .iter()
        .flat_map(|n| n.subnets.iter())
        .filter_map(|s| berth_cni::parse_cidr(s))
        .collect();
    taken.extend(berth_cni::parse_cidr(DEFAULT_SUBNET));
    let (mut v4, mut v6) = (None, None);
    for s in &opts.subnets {
        let parsed = berth_cni::parse_cidr(s)
            .ok_or_else(|| EngineError::Invalid(format!("--subnet {s}: not a CIDR")))?;
        let slot = if parsed.0.is_ipv4() { &mut v4 } else { &mut v6 };
        if slot.is_some() {
            return Err(EngineError::Invalid(format!(
                "--subnet {s}: give at most one IPv4 and one IPv6 subnet"
            )));
        }
        let bits = if parsed.0.is_ipv4() { 32 } else { 128 };
        if parsed.1 > bits - 2 {
            return Err(EngineError::Invalid(format!(
                "--subnet {s}: too small for a gateway and a container"
            )));
        }
        if let Some(t) = taken.iter().find(|t| overlaps(**t, parsed)) {
            return Err(EngineError::Invalid(format!(
                "--subnet {s} overlaps {}/{} of another network",
                t.0, t.1
            )));
        }
        *slot = Some(s.clone());
    }
    let v4 = match v4 {
        Some(s) => s,
        None => {
            first_free(&taken, (0..=255u8).map(|i| format!("10.90.{i}.0/24"))).ok_or_else(|| {
                EngineError::Invalid("no free subnet left in 10.90.0.0/16: pass --subnet".into())
            })?
        }
    };
    let v6 = match v6 {
        Some(s) => Some(s),
        None if opts.ipv6 => Some(
            first_free(
                &taken,
                (1..=0xffffu32).map(|i| format!("fd8a:b3e7:6c2d:{i:x}::/64")),
            )
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "no free /64 left in {IPV6_POOL}: pass an IPv6 --subnet"
                ))
            })?,
        ),
        None => None,
    };
    let mut ranges = Vec::new();
    for subnet in std::iter::once(&v4).chain(v6.as_ref()) {
        let mut range = serde_json::json!({"subnet": subnet});
        let family = berth_cni::parse_cidr(subnet).map(|c| c.0.is_ipv4());
        let gateways: Vec<&IpAddr> = opts
            .gateways
            .iter()
            .filter(|g| Some(g.is_ipv4()) == family)
            .collect();
        match gateways[..] {
            [] => {}
            [gw] => {
                let inside = berth_cni::parse_cidr(subnet)
                    .is_some_and(|c| overlaps(c, (*gw, if gw.is_ipv4() { 32 } else { 128 })));
                if !inside {
                    return Err(EngineError::Invalid(format!(
                        "--gateway {gw} is not in the subnet {subnet}"
                    )));
                }
                range["gateway"] = serde_json::json!(gw.to_string());
            }
            _ => {
                return Err(EngineError::Invalid(
                    "give at most one --gateway of each address family".into(),
                ));
            }
        }
        ranges.push(serde_json::json!([range]));
    }
    if let Some(gw) = opts.gateways.iter().find(|g| g.is_ipv6() && v6.is_none()) {
        return Err(EngineError::Invalid(format!(
            "--gateway {gw}: the network has no IPv6 subnet (add --ipv6)"
        )));
    }
    let routes = if opts.internal {
        serde_json::json!([])
    } else if v6.is_some() {
        serde_json::json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
    } else {
        serde_json::json!([{"dst": "0.0.0.0/0"}])
    };
    let ipam = serde_json::json!({
        "type": "host-local",
        "ranges": ranges,
        "routes": routes,
        "dataDir": dirs.ipam,
    });
    let mut first = match &parent {
        None => serde_json::json!({
            "type": "bridge",
            "bridge": bridge_name(name),
            "isGateway": true,
            // masquerade and forwarding are the network's rules, not each container's
            // (crate::hostrules)
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": ipam,
        }),
        // the containers' interfaces on the parent's LAN: its router routes them, nothing of
        // the host's NAT, firewall or veth (so no portmap, firewall or bandwidth plugin:
        // podman's macvlan and ipvlan lists have none either)
        Some(parent) => serde_json::json!({
            "type": driver,
            "master": parent,
            "mode": opts.mode.clone().unwrap_or_else(|| {
                if opts.driver == Driver::Macvlan { "bridge" } else { "l2" }.to_owned()
            }),
            "ipam": ipam,
        }),
    };
    if let Some(mtu) = opts.mtu {
        first["mtu"] = serde_json::json!(mtu);
    }
    let mut plugins = vec![first];
    if !lan {
        if !opts.internal {
            plugins.push(
                serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}}),
            );
        }
        plugins.push(serde_json::json!({"type": "bandwidth", "capabilities": {"bandwidth": true}}));
    }
    let mut conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "disableCheck": true,
        "plugins": plugins,
    });
    if !lan {
        let mode = if opts.internal {
            crate::hostrules::Mode::Isolated
        } else {
            crate::hostrules::Mode::Masquerade
        };
        conf[crate::hostrules::KEY] = mode.marker();
    }
    let dir = own_config_dir(dirs)?;
    let path = dir.join(format!("{name}.conflist"));
    let text = serde_json::to_vec_pretty(&conf).map_err(|e| EngineError::Invalid(e.to_string()))?;
    // the list must be one the CNI crate takes back
    NetworkConfigList::from_bytes(&text, &path.to_string_lossy()).map_err(cni_err)?;
    berth_fsutil::atomic_write(&path, &text)
        .map_err(|e| EngineError::io("failed to write", &path, std::io::Error::other(e)))?;
    let (all, _) = list(dirs)?;
    all.into_iter()
        .find(|n| n.name == name)
        .ok_or_else(|| EngineError::Invalid(format!("network {name} vanished after writing it")))
}

/// The first of `candidates` (CIDRs) that overlaps none of `taken`.
fn first_free(
    taken: &[(IpAddr, u8)],
    mut candidates: impl Iterator<Item = String>,
) -> Option<String> {
    candidates
        .find(|s| berth_cni::parse_cidr(s).is_some_and(|c| !taken.iter().any(|t| overlaps(*t, c))))
}

/// Whether two CIDRs share an address (same family only).
fn overlaps(a: (IpAddr, u8), b: (IpAddr, u8)) -> bool {
    let bits = |ip: IpAddr| -> (u128, u8) {
        match ip {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((x, wx), (y, wy)) = (bits(a.0), bits(b.0));
    if wx != wy {
        return false;
    }
    let len = u32::from(a.1.min(b.1).min(wx));
    let shift = u32::from(wx) - len;
    let mask = |v: u128| if shift >= 128 { 0 } else { v >> shift };
    mask(x) == mask(y)
}

/// Remove berth's own network `name` (the caller checks no container uses it). The default
/// network and networks of other directories are refused.
pub fn remove(dirs: &NetworkDirs, name: &str) -> Result<()> {
    if name == DEFAULT_NETWORK {
        return Err(EngineError::Invalid(format!(
            "network {name} is berth's default network and cannot be removed"
        )));
    }
    let (all, _) = list(dirs)?;
    let info = all.into_iter().find(|n| n.name == name).ok_or_else(|| {
        EngineError::Invalid(format!(
            "no network {name} (list them with `berth network ls`)"
        ))
    })?;
    let file = match (&info.file, info.berth) {
        (Some(f), true) => f.clone(),
        _ => {
            return Err(EngineError::Invalid(format!(
                "network {name} is not berth's ({}): remove its file yourself",
                info.file
                    .as_ref()
                    .map_or_else(|| "no file".to_owned(), |f| f.display().to_string())
            )));
        }
    };
    // what the network's plugins left on the host while it was in use, before its file (a
    // failure leaves the network to remove again): its bridge, whose address and route would
    // otherwise shadow a later network given the same subnet, and host-local's directory
    let list = load(dirs, name)?;
    if let Some(rules) = crate::hostrules::HostRules::of(&list)? {
        crate::hostrules::remove(&rules, &dirs.ipam)?;
    }
    for plugin in &list.plugins {
        if plugin.plugin_type == "bridge"
            && let Some(bridge) = plugin.raw.get("bridge").and_then(|b| b.as_str())
        {
            delete_idle_bridge(bridge)?;
        }
        if let Some(ipam) = plugin.raw.get("ipam")
            && ipam.get("type").and_then(|t| t.as_str()) == Some("host-local")
        {
            let data = ipam
                .get("dataDir")
                .and_then(|d| d.as_str())
                .map_or_else(|| PathBuf::from("/var/lib/cni/networks"), PathBuf::from);
            let own = data.join(name);
            match std::fs::remove_dir_all(&own) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io("failed to remove", &own, e)),
            }
        }
    }
    std::fs::remove_file(&file).map_err(|e| EngineError::io("failed to remove", &file, e))
}

/// Delete the bridge `name` in this network namespace if it exists, is a bridge and has no
/// port left (anything else is not the network's to delete: left alone).
fn delete_idle_bridge(name: &str) -> Result<()> {
    // (no such device: `null`, not a bridge)
    let links = ip_json(&["-d", "link", "show", "dev", name])?;
    let is_bridge = links[0]["linkinfo"]["info_kind"].as_str() == Some("bridge");
    let idle = ip_json(&["link", "show", "master", name])?
        .as_array()
        .is_some_and(Vec::is_empty);
    if !is_bridge || !idle {
        return Ok(());
    }
    let out = ip(&["link", "del", "dev", name])?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EngineError::Network(format!(
            "failed to delete the network's bridge {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Undo the networking of containers that have no record (a `berth run` killed between
/// attaching and writing the record): from their intent files ([`detach`]), then any cached
/// attachment or pinned namespace left without one. The caller must hold the lock every
/// `run` holds from set-up to record (else a `run` being set up would look orphaned).
/// Returns the ids cleaned.
pub fn collect_orphans(dirs: &NetworkDirs, live: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let mut cleaned: Vec<String> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dirs.netns) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if live(id) {
                continue;
            }
            let att: Option<NetworkAttachment> = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match att {
                Some(mut att) => {
                    // the plugins where they are now: the killed run's own CNI path may
                    // have been wrong (its ADD failed for it) or the plugins moved since
                    att.dirs.plugins.clone_from(&dirs.plugins);
                    detach(&att)?;
                }
                None => {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            cleaned.push(id.to_owned());
        }
    }
    let cni = Cni::new(dirs.plugins.clone(), &dirs.cache);
    for a in cni.cached_attachments(None).map_err(cni_err)? {
        if live(&a.container_id) {
            continue;
        }
        cni.del_attachment(&a).map_err(cni_err)?;
        if !cleaned.contains(&a.container_id) {
            cleaned.push(a.container_id.clone());
        }
    }
    if let Ok(rd) = std::fs::read_dir(&dirs.netns) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // (`<id>`, `<id>.userns`, and pasta's pid file of a run killed while it started)
            let id = [".userns", ".pasta.pid"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_owned();
            if !live(&id) {
                crate::netns::remove(&e.path())?;
                if !cleaned.contains(&id) {
                    cleaned.push(id);
                }
            }
        }
    }
    Ok(cleaned)
}
