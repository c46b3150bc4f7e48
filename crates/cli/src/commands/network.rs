//! `berth network create | ls | inspect | rm | prune | connect | disconnect`: CNI network lists in berth's own
//! directory (`<config>/networks`), beside the system's (`/etc/cni/net.d`), as nerdctl keeps
//! them (`berth_engine::network`).

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::container::setup::network_dirs;
use super::container::{DataArgs, LsArgs, NamesArgs};

/// `berth network …`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// Create a bridge network (a CNI list in berth's network directory).
    Create(CreateArgs),
    /// List the networks berth can attach containers to.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks' CNI configuration lists as JSON.
    Inspect(NamesArgs),
    /// Remove networks berth created (none in use by a container).
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Remove every network berth created that no container uses.
    Prune(LsArgs),
    /// Attach a created or running container to one more network (its next interface).
    Connect(ConnectArgs),
    /// Detach a container from one of its networks.
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The network.
    network: String,
    /// The container (name or id).
    container: String,
    /// The address to ask of the network (within its subnet).
    #[arg(long)]
    ip: Option<std::net::IpAddr>,
    /// The IPv6 address to ask of a dual-stack network (within its IPv6 subnet).
    #[arg(long)]
    ip6: Option<std::net::Ipv6Addr>,
    /// Another name for the container on user-defined networks (repeatable).
    #[arg(long)]
    alias: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// The network.
    network: String,
    /// The container (name or id).
    container: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The network's name.
    name: String,
    /// Its subnet (CIDR; default: the first free /24 of 10.90.0.0/16). Give it twice, an
    /// IPv4 and an IPv6 one, for a dual-stack network.
    #[arg(long)]
    subnet: Vec<String>,
    /// Its gateway (default: the subnet's first address); one of each address family.
    #[arg(long)]
    gateway: Vec<std::net::IpAddr>,
    /// Dual-stack: an IPv6 subnet too (default: the first free /64 of fd8a:b3e7:6c2d::/48).
    #[arg(long)]
    ipv6: bool,
    /// No route out of the network and no masquerade.
    #[arg(long)]
    internal: bool,
    /// bridge (containers behind a bridge with NAT), or macvlan / ipvlan (containers on
    /// the parent interface's LAN, with addresses of its --subnet).
    #[arg(long, short, default_value = "bridge")]
    driver: String,
    /// A driver option, KEY=VALUE: parent=IFACE (macvlan, ipvlan; default: the interface
    /// of the default route), mode=MODE (macvlan: bridge, vepa, private, passthru; ipvlan:
    /// l2, l3, l3s), mtu=N.
    #[arg(long = "opt", short = 'o', value_name = "KEY=VALUE")]
    opt: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: NetworkArgs) -> anyhow::Result<()> {
    match args.command {
        NetworkCommand::Create(a) => create(a),
        NetworkCommand::Ls(a) => ls(a),
        NetworkCommand::Inspect(a) => inspect(a),
        NetworkCommand::Rm(a) => rm(a),
        NetworkCommand::Prune(a) => prune(a),
        NetworkCommand::Connect(a) => connect(a),
        NetworkCommand::Disconnect(a) => disconnect(a),
    }
}

fn connect(args: ConnectArgs) -> anyhow::Result<()> {
    let engine = args.data.engine()?;
    let opts = berth_engine::connect::Connect {
        ip: args.ip,
        ip6: args.ip6,
        aliases: args.alias,
    };
    engine
        .connect_network(&args.container, &args.network, &opts)
        .with_context(|| {
            format!(
                "failed to connect container {} to network {}",
                args.container, args.network
            )
        })?;
    Ok(())
}

fn disconnect(args: DisconnectArgs) -> anyhow::Result<()> {
    let engine = args.data.engine()?;
    engine
        .disconnect_network(&args.container, &args.network)
        .with_context(|| {
            format!(
                "failed to disconnect container {} from network {}",
                args.container, args.network
            )
        })?;
    Ok(())
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let driver: berth_engine::network::Driver = args
        .driver
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let dirs = network_dirs(&args.data.dir()?)?;
    let mut opts = berth_engine::network::CreateNetwork {
        subnets: args.subnet,
        gateways: args.gateway,
        ipv6: args.ipv6,
        internal: args.internal,
        driver,
        ..Default::default()
    };
    for o in &args.opt {
        match o.split_once('=') {
            Some(("parent", v)) if !v.is_empty() => opts.parent = Some(v.to_owned()),
            Some(("mode", v)) if !v.is_empty() => opts.mode = Some(v.to_owned()),
            // (docker's name for it too)
            Some(("mtu" | "com.docker.network.driver.mtu", v)) => {
                opts.mtu = Some(v.parse().map_err(|_| {
                    anyhow::anyhow!("-o {o}: the MTU is a number of bytes (such as 1400)")
                })?);
            }
            _ => anyhow::bail!("-o {o}: give parent=IFACE, mode=MODE or mtu=N"),
        }
    }
    let info = berth_engine::network::create(&dirs, &args.name, &opts)
        .with_context(|| format!("failed to create network {}", args.name))?;
    super::image::print(&info.name)
}

fn ls(args: LsArgs) -> anyhow::Result<()> {
    let dirs = network_dirs(&args.data.dir()?)?;
    // the default network is listed even before its first use writes it
    berth_engine::network::load(&dirs, berth_engine::network::DEFAULT_NETWORK)?;
    let (nets, broken) = berth_engine::network::list(&dirs)?;
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for n in &nets {
            writeln!(out, "{}", n.name)?;
        }
    } else {
        // (a dual-stack network's two subnets are wider than one)
        let width = nets
            .iter()
            .map(|n| n.subnets.join(",").len() + 2)
            .max()
            .unwrap_or(0)
            .max(20);
        writeln!(
            out,
            "{:<24}{:<12}{:<width$}FILE",
            "NAME", "DRIVER", "SUBNET"
        )?;
        for n in &nets {
            writeln!(
                out,
                "{:<24}{:<12}{:<width$}{}",
                n.name,
                n.driver,
                n.subnets.join(","),
                n.file
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default()
            )?;
        }
    }
    drop(out);
    for b in broken {
        let _ = writeln!(std::io::stderr().lock(), "warning: skipped: {b}");
    }
    Ok(())
}

fn inspect(args: NamesArgs) -> anyhow::Result<()> {
    let dirs = network_dirs(&args.data.dir()?)?;
    let mut out = Vec::new();
    for name in &args.names {
        let list = berth_engine::network::load(&dirs, name)
            .with_context(|| format!("failed to inspect network {name}"))?;
        let mut v: serde_json::Value = serde_json::from_slice(&list.bytes)
            .with_context(|| format!("network {name}'s file is not JSON"))?;
        if let (Some(o), Some(f)) = (v.as_object_mut(), &list.origin) {
            o.insert("file".into(), serde_json::json!(f));
        }
        out.push(v);
    }
    super::image::print(&serde_json::to_string_pretty(&out)?)
}

/// The containers (any status) attached to `name`.
fn users(engine: &berth_engine::Engine, name: &str) -> anyhow::Result<Vec<String>> {
    // a container whose record cannot be read may use it: refused until it is discarded
    let (records, corrupt) = engine.list_checked(true)?;
    if let Some(e) = corrupt.into_iter().next() {
        return Err(anyhow::Error::new(e).context("cannot tell which containers use the network"));
    }
    Ok(records
        .into_iter()
        .filter(|r| {
            r.attachments
                .network
                .as_ref()
                .is_some_and(|n| n.networks.iter().any(|(net, _)| net == name))
        })
        .map(|r| r.name)
        .collect())
}

fn rm(args: NamesArgs) -> anyhow::Result<()> {
    let dirs = network_dirs(&args.data.dir()?)?;
    let engine = args.data.engine()?;
    super::container::each(&args.names, |name| {
        let users = users(&engine, name)?;
        if !users.is_empty() {
            anyhow::bail!(
                "network {name} is in use by container(s) {}: remove them first",
                users.join(", ")
            );
        }
        berth_engine::network::remove(&dirs, name)
            .with_context(|| format!("failed to remove network {name}"))
    })
}

fn prune(args: LsArgs) -> anyhow::Result<()> {
    let dirs = network_dirs(&args.data.dir()?)?;
    let engine = args.data.engine()?;
    let (nets, _) = berth_engine::network::list(&dirs)?;
    for n in nets
        .iter()
        .filter(|n| n.berth && n.name != berth_engine::network::DEFAULT_NETWORK)
    {
        if users(&engine, &n.name)?.is_empty() {
            berth_engine::network::remove(&dirs, &n.name)?;
            super::image::print(&n.name)?;
        }
    }
    Ok(())
}
