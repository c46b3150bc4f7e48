//! `berth network connect` and `disconnect`: a created or running container joins another
//! CNI network, or leaves one, as docker's and podman's do. The container's record names the
//! network (under its lock) and its intent file does before the plugins run
//! ([`network::connect`]); names on a user-defined network go into the `/etc/hosts` of the
//! containers on it, both ways, and leave with the container.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{EngineError, Result};
use crate::record::{self, Record};
use crate::{Engine, Status, network};

/// `network connect`'s options.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// The address to ask of the network's IPAM (`--ip`).
    pub ip: Option<IpAddr>,
    /// The IPv6 address to ask of a dual-stack network's IPAM (`--ip6`).
    pub ip6: Option<std::net::Ipv6Addr>,
    /// More names for the container on user-defined networks (`--alias`).
    pub aliases: Vec<String>,
}

impl Engine {
    /// `berth network connect NETWORK CONTAINER`: the container's next interface on
    /// `network`; its names written into the `/etc/hosts` of the containers on that network
    /// (when user-defined) and theirs into its own.
    pub fn connect_network(&self, reference: &str, name: &str, opts: &Connect) -> Result<Record> {
        let id = self.resolve(reference)?;
        let name = network_name(name);
        for a in &opts.aliases {
            network::check_alias(a).map_err(EngineError::Invalid)?;
        }
        if name == network::DEFAULT_NETWORK && !opts.aliases.is_empty() {
            return Err(EngineError::Invalid(
                "--alias: names are given on user-defined networks only (as docker's), not on \
                 the default network"
                    .to_owned(),
            ));
        }
        // read before the record is locked (the listing locks each record)
        let others = self.others_on_networks(&id)?;
        let (outcome, rec) = record::update(&self.layout, &id, |r| -> Result<Vec<IpAddr>> {
            if !matches!(r.status, Status::Created | Status::Running) {
                return Err(EngineError::State {
                    id: r.id.clone(),
                    status: r.status.as_str().to_owned(),
                    what: "only a created or running container joins a network".to_owned(),
                });
            }
            let att = r
                .attachments
                .network
                .as_mut()
                .ok_or_else(|| no_network(&r.id))?;
            let ips = network::connect(att, name, opts.ip, opts.ip6)?;
            for a in &opts.aliases {
                if !att.aliases.contains(a) {
                    att.aliases.push(a.clone());
                }
            }
            Ok(ips)
        })?;
        let ips = outcome?;
        let Some(att) = rec.attachments.network.as_ref() else {
            return Ok(rec);
        };
        let Some((network, _)) = att.networks.last() else {
            return Ok(rec);
        };
        if network == network::DEFAULT_NETWORK {
            // names are given on user-defined networks only, as docker's
            return Ok(rec);
        }
        let own_names = names_of(&rec);
        let own_file = self.hosts_file(&rec.id);
        for other in &others {
            let theirs: Vec<IpAddr> = addresses_on(other, network);
            if theirs.is_empty() {
                continue;
            }
            let their_names = names_of(other);
            let lines: Vec<(IpAddr, String)> =
                theirs.iter().map(|ip| (*ip, their_names.clone())).collect();
            crate::etcfiles::append_hosts(&own_file, &lines);
            let lines: Vec<(IpAddr, String)> =
                ips.iter().map(|ip| (*ip, own_names.clone())).collect();
            crate::etcfiles::append_hosts(&self.hosts_file(&other.id), &lines);
        }
        Ok(rec)
    }

    /// `berth network disconnect NETWORK CONTAINER`: CNI DEL of that network alone; the
    /// container's addresses there leave the other containers' `/etc/hosts`, and theirs on
    /// that network leave its own.
    pub fn disconnect_network(&self, reference: &str, name: &str) -> Result<Record> {
        let id = self.resolve(reference)?;
        let name = network_name(name);
        let others = self.others_on_networks(&id)?;
        let (outcome, rec) = record::update(&self.layout, &id, |r| -> Result<Vec<IpAddr>> {
            let att = r
                .attachments
                .network
                .as_mut()
                .ok_or_else(|| no_network(&r.id))?;
            network::disconnect(att, name)
        })?;
        let gone = outcome?;
        let own_file = self.hosts_file(&rec.id);
        // (each network gives its own addresses: theirs on that one are unreachable now)
        let mut theirs_gone = Vec::new();
        for other in &others {
            crate::etcfiles::remove_hosts(&self.hosts_file(&other.id), &gone);
            theirs_gone.extend(addresses_on(other, name));
        }
        crate::etcfiles::remove_hosts(&own_file, &theirs_gone);
        Ok(rec)
    }

    /// The other created and running containers with networks of their own.
    fn others_on_networks(&self, id: &str) -> Result<Vec<Record>> {
        Ok(self
            .list(false)?
            .into_iter()
            .filter(|r| r.id != id && r.attachments.network.is_some())
            .collect())
    }

    /// The container's own `/etc/hosts` (`DIR/etc/ID/hosts`, bound into it).
    fn hosts_file(&self, id: &str) -> PathBuf {
        self.layout.root.join("etc").join(id).join("hosts")
    }
}

/// `bridge` names the default network, as `run --network bridge` does.
fn network_name(name: &str) -> &str {
    if name == "bridge" {
        network::DEFAULT_NETWORK
    } else {
        name
    }
}

fn no_network(id: &str) -> EngineError {
    EngineError::Invalid(format!(
        "container {id} has no network namespace of its own (--network none, host, \
         container: or ns:): it cannot join or leave networks"
    ))
}

/// The container's name and aliases, as a hosts line lists them.
fn names_of(r: &Record) -> String {
    std::iter::once(r.name.as_str())
        .chain(
            r.attachments
                .network
                .iter()
                .flat_map(|n| n.aliases.iter().map(String::as_str)),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn addresses_on(r: &Record, name: &str) -> Vec<IpAddr> {
    r.attachments
        .network
        .iter()
        .flat_map(|n| n.addresses.iter())
        .filter(|(n, _)| n == name)
        .map(|(_, ip)| *ip)
        .collect()
}
