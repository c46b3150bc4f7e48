//! `berth port CONTAINER [PORT[/PROTO]]`: the container's published ports, as docker prints
//! them (`80/tcp -> 0.0.0.0:32768`; with a port, only its host addresses).

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct PortArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The container (name, id or unique id prefix).
    container: String,
    /// Only this container port (80, 80/tcp, 53/udp).
    #[arg(value_name = "PORT[/PROTO]")]
    port: Option<String>,
}

pub fn run(args: PortArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let rec = engine
        .inspect(&args.container)
        .with_context(|| format!("failed to read container {}", args.container))?;
    let want = args
        .port
        .as_deref()
        .map(berth_engine::network::parse_exposed)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let published = rec
        .attachments
        .network
        .as_ref()
        .map(|n| n.published.clone())
        .unwrap_or_default();
    let mut lines = Vec::new();
    for p in &published {
        // `[IP:]HOST->CONTAINER/PROTO`, as the attachment records it
        let Some((host, rest)) = p.split_once("->") else {
            continue;
        };
        let Some((container, proto)) = rest.rsplit_once('/') else {
            continue;
        };
        let (ip, host_port) = match host.rsplit_once(':') {
            Some((ip, port)) => (ip.to_owned(), port),
            None => ("0.0.0.0".to_owned(), host),
        };
        let ip = if ip.contains(':') && !ip.starts_with('[') {
            format!("[{ip}]")
        } else {
            ip
        };
        match &want {
            Some((port, wproto)) => {
                if container == port.to_string() && proto == wproto {
                    lines.push(format!("{ip}:{host_port}"));
                }
            }
            None => lines.push(format!("{container}/{proto} -> {ip}:{host_port}")),
        }
    }
    if let (Some(port), true) = (&args.port, lines.is_empty()) {
        anyhow::bail!(
            "no public port {port} published for container {}",
            args.container
        );
    }
    for l in lines {
        crate::commands::image::print(&l)?;
    }
    Ok(0)
}
