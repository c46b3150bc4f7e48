//! Changing a running container's traffic shaping (`berth update --network-bandwidth`).
//!
//! CNI has no UPDATE, and podman and CRI never change a live container's bandwidth. The
//! bandwidth plugin (containernetworking/plugins, Debian's 1.1.1 and later alike) shapes
//! traffic into the container with a TBF qdisc at the root of the host side of the veth, and
//! traffic out of it through an ingress qdisc on that veth whose filter redirects to an IFB
//! device (`bwp…`) with a TBF of its own. Its DEL removes only the IFB (the veth's qdiscs
//! go with the veth); its ADD refuses to add over existing qdiscs. So the honest change is
//! [`berth_cni::Cni::readd`] of the list's bandwidth plugin: DEL of that plugin, removal of
//! the two qdiscs it left on the host veth (exactly those: a root `tbf` and `ingress`),
//! then ADD of that plugin alone with the new `runtimeConfig.bandwidth` and the result it
//! first had as `prevResult`; the cache entry is rewritten with the new capability
//! arguments and result, so `rm` (DEL of the whole list) still undoes exactly what is there.
//! The container is unshaped for the few milliseconds between the two.

use std::process::Command;

use berth_cni::{Bandwidth, Cni, CniResult, RuntimeConf};

use crate::error::{EngineError, Result};
use crate::network::{BandwidthLimits, NetworkAttachment};

/// Shape the container's first CNI network (where `run` put `--network-bandwidth`) with
/// `bw`. `att` is updated (its `bandwidth`, and the intent file beside the namespace) in
/// every case: when the new ADD fails the container is left unshaped, and `att` says so.
pub fn update_bandwidth(att: &mut NetworkAttachment, bw: Bandwidth) -> Result<()> {
    let (network, ifname) = att.networks.first().cloned().ok_or_else(|| {
        EngineError::Invalid(format!(
            "container {} has no CNI network (--network bridge or a network's name): \
             --network-bandwidth shapes one",
            att.container_id
        ))
    })?;
    let cni = Cni::new(att.dirs.plugins.clone(), &att.dirs.cache);
    let cached = cni
        .cached(&network, &att.container_id, &ifname)
        .map_err(|e| EngineError::Network(e.to_string()))?
        .ok_or_else(|| {
            EngineError::Network(format!(
                "container {} has no cached attachment to network {network}: is it running?",
                att.container_id
            ))
        })?;
    let mut caps = cached.capability_args.clone();
    let rt = RuntimeConf::new(att.container_id.clone(), "", ifname.clone()).with_bandwidth(bw);
    if let Some(v) = rt.capability_args.get("bandwidth") {
        caps.insert("bandwidth".to_owned(), v.clone());
    }
    let outcome = cni.readd(&cached, "bandwidth", caps, remove_shaping);
    att.bandwidth = match &outcome {
        Ok(_) => Some(BandwidthLimits::from(bw)),
        Err(_) => None,
    };
    crate::network::write_intent(att)?;
    outcome.map(|_| ()).map_err(|e| {
        EngineError::Network(format!(
            "failed to change the bandwidth of container {} on network {network} (it is \
             unshaped now): {e}",
            att.container_id
        ))
    })
}

/// After the bandwidth plugin's DEL: remove the qdiscs it left on the host veth of `result`
/// and return `result` without the interfaces that are gone (its IFB).
fn remove_shaping(result: &CniResult) -> std::result::Result<CniResult, String> {
    let host: Vec<&str> = result
        .interfaces
        .iter()
        .filter(|i| i.sandbox.as_deref().is_none_or(str::is_empty))
        .map(|i| i.name.as_str())
        .collect();
    for name in &host {
        if link_kind(name).as_deref() != Some("veth") {
            continue;
        }
        for (kind, parent) in qdiscs(name)? {
            let which = match (kind.as_str(), parent.as_str()) {
                ("tbf", "root") => "root",
                ("ingress", _) => "ingress",
                _ => continue,
            };
            tc(&["qdisc", "del", "dev", name, which])?;
        }
    }
    let mut prev = result.clone();
    // (asked of the kernel through `ip`, not /sys/class/net: sysfs shows the network
    // namespace of whoever mounted it, not necessarily this process's)
    prev.interfaces.retain(|i| {
        i.sandbox.as_deref().is_some_and(|s| !s.is_empty()) || link_kind(&i.name).is_some()
    });
    Ok(prev)
}

/// `ip -d link`'s kind of the link `name` (`veth`, `bridge`, `ifb`; empty for a link of no
/// kind), if it exists.
fn link_kind(name: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let link = v.get(0)?;
    Some(
        link.get("linkinfo")
            .and_then(|l| l.get("info_kind"))
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The qdiscs of `dev` as (kind, `root` or the parent handle).
fn qdiscs(dev: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let out = Command::new("tc")
        .args(["-j", "qdisc", "show", "dev", dev])
        .output()
        .map_err(|e| format!("tc -j qdisc show dev {dev}: {e} (hint: install iproute2)"))?;
    if !out.status.success() {
        return Err(format!(
            "tc -j qdisc show dev {dev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("tc -j qdisc show dev {dev}: not JSON: {e}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            let kind = q["kind"].as_str().unwrap_or_default().to_owned();
            let parent = if q["root"].as_bool() == Some(true) {
                "root".to_owned()
            } else {
                q["parent"].as_str().unwrap_or_default().to_owned()
            };
            (kind, parent)
        })
        .collect())
}

fn tc(args: &[&str]) -> std::result::Result<(), String> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .map_err(|e| format!("tc {}: {e} (hint: install iproute2)", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
