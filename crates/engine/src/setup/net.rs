//! The container's networks as `run` sets them up: CNI networks (`crate::network`), rootless
//! pasta (`crate::pasta`), `--network container:`, names on user-defined networks, and the
//! container's own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`.

use std::path::{Path, PathBuf};

use berth_image::spec::{IdRange, ImageConfig};

use super::RunRequest;
use super::error::{Context, Result, SetupError, bail};
use crate::{Attachments, Engine};

/// The container's own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`
/// (`crate::etcfiles`), in `DIR/etc/ID` (removed with the container), bound over the
/// image's unless a `-v` or `--tmpfs` already covers the path.
pub(super) fn etc_files(
    args: &RunRequest,
    spec: &berth_runtime_spec::Spec,
    files: &Path,
    host_ids: Option<IdRange>,
    (address, peers): (Option<std::net::IpAddr>, Vec<(String, std::net::IpAddr)>),
    mounts: &mut Vec<berth_runtime_spec::Mount>,
    attachments: &mut Attachments,
) -> Result<()> {
    use crate::etcfiles::{EtcOptions, parse_add_host};
    let mut add_hosts = peers;
    for h in &args.add_host {
        add_hosts.push(parse_add_host(h).map_err(SetupError::Invalid)?);
    }
    // a dual-stack first network's IPv6 address
    let address6 = attachments.network.as_ref().and_then(|n| {
        let (first, _) = n.networks.first()?;
        n.addresses
            .iter()
            .find(|(net, ip)| net == first && ip.is_ipv6())
            .map(|(_, ip)| *ip)
    });
    let opts = EtcOptions {
        hostname: spec.hostname.clone().unwrap_or_default(),
        name: args.name.clone(),
        address,
        address6,
        host_network: args.network() == "host",
        add_hosts,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
    };
    attachments.volumes.push(files.to_owned());
    crate::etcfiles::write(files, &opts, host_ids.map(|r| r.host_start)).with_context(|| {
        format!(
            "failed to write the container's /etc files in {}",
            files.display()
        )
    })?;
    bind_etc_files(files, mounts);
    Ok(())
}

/// Bind `DIR/{hostname,hosts,resolv.conf}` over the image's, unless a mount covers one.
pub(super) fn bind_etc_files(files: &Path, mounts: &mut Vec<berth_runtime_spec::Mount>) {
    for name in ["hostname", "hosts", "resolv.conf"] {
        let (dest, src) = (Path::new("/etc").join(name), files.join(name));
        if !src.exists() {
            continue;
        }
        if mounts.iter().any(|m| m.destination == dest) {
            continue;
        }
        mounts.push(berth_runtime_spec::Mount {
            destination: dest,
            typ: Some("bind".into()),
            source: Some(src),
            options: Some(
                ["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"]
                    .map(String::from)
                    .to_vec(),
            ),
            ..Default::default()
        });
    }
}

/// The network a container joins when `run` and `create` are given no `--network` (the one
/// place this is decided): the default bridge network `berth0`, as docker's and podman's
/// `run` join theirs; for rootless berth, which cannot make a bridge, `pasta`, as rootless
/// podman's.
pub fn default_network(rootless: bool) -> &'static str {
    if rootless {
        crate::pasta::NETWORK
    } else {
        "bridge"
    }
}

/// The CNI networks `--network` names (`bridge` is the default network, `berth0`), or
/// `None` for none, host, pasta, container: and ns:.
pub(super) fn cni_networks(args: &RunRequest) -> Option<Vec<String>> {
    let n = args.network();
    if matches!(n, "none" | "host" | crate::pasta::NETWORK)
        || n.starts_with("container:")
        || n.starts_with("ns:")
    {
        return None;
    }
    Some(
        n.split(',')
            .map(|n| match n {
                "bridge" => crate::network::DEFAULT_NETWORK.to_owned(),
                other => other.to_owned(),
            })
            .collect(),
    )
}

/// Where [`attach_networks`] records the container's network attachment as soon as it
/// exists (and again once complete), from the thread it runs on beside the root
/// filesystem's mount: whatever it holds when the set-up ends is what a teardown undoes.
#[derive(Default)]
pub(super) struct NetworkSlot(std::sync::Mutex<Option<crate::network::NetworkAttachment>>);

impl NetworkSlot {
    fn record(&self, att: &crate::network::NetworkAttachment) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(att.clone());
    }

    /// The attachment recorded last, if any.
    pub(super) fn into_inner(self) -> Option<crate::network::NetworkAttachment> {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// Attach the container to the CNI networks `--network` names (a pinned namespace, CNI
/// ADD), recorded in `slot` at once. The address on the first network, for /etc/hosts.
pub(super) fn attach_networks(
    engine: &Engine,
    args: &RunRequest,
    config: &ImageConfig,
    id: &str,
    host_ids: Option<IdRange>,
    slot: &NetworkSlot,
) -> Result<Option<std::net::IpAddr>> {
    let mut ports = args
        .publish
        .iter()
        .map(|p| crate::network::parse_publish(p).map_err(SetupError::Invalid))
        .collect::<Result<Vec<_>>>()?;
    let flag = args
        .network_bandwidth
        .as_deref()
        .map(|b| crate::network::parse_bandwidth(b).map_err(SetupError::Invalid))
        .transpose()?;
    let from_annotations =
        crate::shaping::kubernetes_bandwidth(&annotations(args)?).map_err(SetupError::Invalid)?;
    let bandwidth = crate::shaping::merge(flag, from_annotations);
    if args.network() == crate::pasta::NETWORK {
        return attach_pasta(engine, args, id, &ports, bandwidth, slot);
    }
    let Some(networks) = cni_networks(args) else {
        if !ports.is_empty()
            || bandwidth.is_some()
            || args.publish_all
            || args.ip.is_some()
            || args.ip6.is_some()
            || args.mac_address.is_some()
            || !args.network_alias.is_empty()
        {
            bail!(
                "-p, -P, --ip, --ip6, --mac-address, --network-alias and --network-bandwidth (or the \
                 kubernetes.io bandwidth annotations) need a network of the container's own: \
                 run with --network bridge (or a network's name), not --network {}",
                args.network()
            );
        }
        return Ok(None);
    };
    if args.rootless {
        bail!(
            "--network {}: rootless berth cannot make bridge networks yet; use --network none \
             or --network host",
            args.network()
        );
    }
    for alias in &args.network_alias {
        crate::network::check_alias(alias)
            .map_err(|e| SetupError::Invalid(format!("--network-alias: {e}")))?;
    }
    if !args.network_alias.is_empty()
        && networks
            .iter()
            .all(|n| n == crate::network::DEFAULT_NETWORK)
    {
        bail!(
            "--network-alias: names are given on user-defined networks only (as docker's): \
             create one with `berth network create NAME` and run with --network NAME"
        );
    }
    // (the host-id lock is held: no other `run` is between attaching and its record)
    let records = engine.list(true)?;
    if args.publish_all {
        // docker's -P: each exposed port on a free port of the ephemeral range, one no
        // other container publishes and nothing on the host listens on
        let exposed = config
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.as_ref())
            .map(|m| {
                m.keys()
                    .map(|k| crate::network::parse_exposed(k).map_err(SetupError::Invalid))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        let mut taken: Vec<(u16, String)> = records
            .iter()
            .filter_map(|r| r.attachments.network.as_ref())
            .flat_map(|n| n.published_ports())
            .collect();
        taken.extend(ports.iter().map(|p| (p.host_port, p.protocol.clone())));
        let range = crate::network::ephemeral_port_range();
        ports.extend(
            crate::network::publish_free(&exposed, &taken, range)
                .context("-P: failed to find free host ports")?,
        );
    }
    let req = crate::network::NetworkRequest {
        networks,
        ports,
        bandwidth,
        ip: args.ip,
        ip6: args.ip6,
        mac: args
            .mac_address
            .as_deref()
            .map(|m| crate::network::parse_mac(m).map_err(SetupError::Invalid))
            .transpose()?,
        userns: host_ids.map(|r| (r.host_start, r.size)),
    };
    let dirs = args.network_dirs.clone();
    let (mut att, addresses) = crate::network::attach(&dirs, id, &req, |a| slot.record(a))
        .with_context(|| {
            if args.network.is_none() {
                "failed to attach the container to the default network berth0 (--network none \
             runs it without a network)"
            } else {
                "failed to attach the container to its networks"
            }
        })?;
    att.aliases = args.network_alias.clone();
    slot.record(&att);
    Ok(addresses.first().copied().flatten())
}

/// `--annotation KEY=VALUE`s, as the runtime config's annotations hold them.
pub(super) fn annotations(args: &RunRequest) -> Result<std::collections::HashMap<String, String>> {
    args.annotation
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("invalid --annotation {a:?}: give KEY=VALUE"),
        })
        .collect()
}

/// Rootless `--network pasta`: the container's namespace attached to pasta
/// (`crate::pasta`), `-p` forwarded by it.
fn attach_pasta(
    engine: &Engine,
    args: &RunRequest,
    id: &str,
    ports: &[crate::network::PortMapping],
    bandwidth: Option<crate::network::Bandwidth>,
    slot: &NetworkSlot,
) -> Result<Option<std::net::IpAddr>> {
    if !args.rootless {
        bail!(
            "--network pasta is rootless berth's network (an ordinary user's); as root use \
             --network bridge or a network's name"
        );
    }
    let dirs = args.network_dirs.clone();
    // (the host-id lock is held: no other `run` is between attaching and its record)
    let live: std::collections::HashSet<String> = engine.ids()?.into_iter().collect();
    crate::network::collect_orphans(&dirs, &|c| live.contains(c))
        .context("failed to clean up the networks of containers whose run was killed")?;
    let (att, address) =
        crate::pasta::attach(&dirs, id, ports, bandwidth, &args.search_path, |a| {
            slot.record(a);
        })?;
    slot.record(&att);
    Ok(address)
}

/// Names on user-defined networks (not the default one, as docker's): the running
/// containers sharing a network with this one, for its /etc/hosts; and this one's name and
/// address appended to theirs (in place: the files are bind-mounted). Best effort: a peer
/// whose file cannot be written is skipped.
pub(super) fn link_names(
    engine: &Engine,
    dir: &Path,
    name: Option<&str>,
    attachments: &Attachments,
) -> Vec<(String, std::net::IpAddr)> {
    let Some(own) = &attachments.network else {
        return Vec::new();
    };
    let user_defined: Vec<&(String, std::net::IpAddr)> = own
        .addresses
        .iter()
        .filter(|(n, _)| n != crate::network::DEFAULT_NETWORK)
        .collect();
    if user_defined.is_empty() {
        return Vec::new();
    }
    // this container's names there (its name and aliases), and each peer's
    let own_names: Vec<&str> = name
        .into_iter()
        .chain(own.aliases.iter().map(String::as_str))
        .collect();
    let mut peers = Vec::new();
    for r in engine.list(false).unwrap_or_default() {
        let Some(theirs) = &r.attachments.network else {
            continue;
        };
        let their_names = std::iter::once(r.name.as_str())
            .chain(theirs.aliases.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        // on a dual-stack network each side has an address of each family: every one of
        // theirs into this container's file, every one of this container's into theirs
        let shared: Vec<&String> = theirs
            .addresses
            .iter()
            .map(|(n, _)| n)
            .filter(|n| user_defined.iter().any(|(net, _)| net == *n))
            .collect();
        for (net, their_ip) in &theirs.addresses {
            if shared.contains(&net)
                && !peers.iter().any(|p| p == &(their_names.clone(), *their_ip))
            {
                peers.push((their_names.clone(), *their_ip));
            }
        }
        for (net, ip) in &user_defined {
            if !shared.contains(&net) {
                continue;
            }
            if !own_names.is_empty() {
                crate::etcfiles::append_hosts(
                    &dir.join("etc").join(&r.id).join("hosts"),
                    &[(*ip, own_names.join(" "))],
                );
            }
        }
    }
    peers
}

/// `--network container:NAME|ID`: the running container's network namespace and its /etc
/// files.
pub(super) struct SharedNetwork {
    pub(super) netns: PathBuf,
    pub(super) etc: PathBuf,
    /// The other container's traffic is shaped inside that namespace (rootless pasta's
    /// `--network-bandwidth`), where CAP_NET_ADMIN could remove it.
    pub(super) shaped_inside: bool,
}

pub(super) fn shared_network(engine: &Engine, args: &RunRequest) -> Result<Option<SharedNetwork>> {
    let Some(reference) = args.network().strip_prefix("container:") else {
        return Ok(None);
    };
    if args.hostname.is_some() {
        bail!(
            "--hostname and --network container:{reference} conflict: the container takes the \
             other's hostname"
        );
    }
    let other = engine
        .inspect(reference)
        .with_context(|| format!("--network container:{reference}"))?;
    let pid = other
        .init_pid
        .filter(|_| other.status == crate::Status::Running)
        .with_context(|| {
            format!(
                "--network container:{reference}: the container is not running ({}); start it first",
                other.status.as_str()
            )
        })?;
    let dir = &args.data_dir;
    Ok(Some(SharedNetwork {
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        etc: dir.join("etc").join(&other.id),
        shaped_inside: other
            .attachments
            .network
            .as_ref()
            .is_some_and(|n| n.pasta.is_some() && n.bandwidth.is_some()),
    }))
}
