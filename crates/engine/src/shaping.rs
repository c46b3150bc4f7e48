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

use std::collections::HashMap;
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
    crate::network::rewrite_intent(att)?;
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

/// The annotation Kubernetes (kubelet, containerd's and CRI-O's CRI) reads for the rate of
/// traffic into a pod.
pub const INGRESS_ANNOTATION: &str = "kubernetes.io/ingress-bandwidth";
/// … and out of it.
pub const EGRESS_ANNOTATION: &str = "kubernetes.io/egress-bandwidth";

/// The shaping the Kubernetes bandwidth annotations in `annotations` ask for (as kubelet's
/// `ExtractPodBandwidthResources`: resource quantities in bits per second, `10M` is
/// 10 Mbit/s, from 1k to 1P), `None` when neither is there. Bursts are berth's default (a
/// tenth of a second at the rate): containerd's CRI passes 2³²-1 bits, which lets 512 MiB
/// through unshaped.
pub fn kubernetes_bandwidth(
    annotations: &HashMap<String, String>,
) -> std::result::Result<Option<Bandwidth>, String> {
    let rate = |key: &str| -> std::result::Result<u64, String> {
        match annotations.get(key) {
            None => Ok(0),
            Some(v) => parse_quantity(v.trim())
                .filter(|bits| (1e3..=1e15).contains(bits))
                .map(|bits| {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "range checked"
                    )]
                    let b = bits.ceil() as u64;
                    b
                })
                .ok_or_else(|| {
                    format!(
                        "annotation {key}={v:?}: not a bandwidth (a Kubernetes quantity in bits \
                         per second from 1k to 1P, such as 10M)"
                    )
                }),
        }
    };
    let (ingress, egress) = (rate(INGRESS_ANNOTATION)?, rate(EGRESS_ANNOTATION)?);
    if ingress == 0 && egress == 0 {
        return Ok(None);
    }
    let burst = |r: u64| {
        if r > 0 {
            crate::network::default_burst(r)
        } else {
            0
        }
    };
    Ok(Some(Bandwidth {
        ingress_rate: ingress,
        ingress_burst: burst(ingress),
        egress_rate: egress,
        egress_burst: burst(egress),
    }))
}

/// `flag` (`--network-bandwidth`) over `annotations` (Kubernetes'), direction by direction.
pub fn merge(flag: Option<Bandwidth>, annotations: Option<Bandwidth>) -> Option<Bandwidth> {
    match (flag, annotations) {
        (None, a) => a,
        (f, None) => f,
        (Some(f), Some(a)) => {
            let (ingress_rate, ingress_burst) = if f.ingress_rate > 0 {
                (f.ingress_rate, f.ingress_burst)
            } else {
                (a.ingress_rate, a.ingress_burst)
            };
            let (egress_rate, egress_burst) = if f.egress_rate > 0 {
                (f.egress_rate, f.egress_burst)
            } else {
                (a.egress_rate, a.egress_burst)
            };
            Some(Bandwidth {
                ingress_rate,
                ingress_burst,
                egress_rate,
                egress_burst,
            })
        }
    }
}

/// A Kubernetes resource quantity (`10M`, `1.5Gi`, `500k`, `100m`, `1e6`) as a number.
fn parse_quantity(v: &str) -> Option<f64> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(v.len());
    let (num, suffix) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        s => {
            let exp: i32 = s.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exp)
        }
    };
    let q = n * mult;
    q.is_finite().then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kubernetes_annotations_are_quantities_in_bits_per_second() {
        let bw = kubernetes_bandwidth(&ann(&[
            (INGRESS_ANNOTATION, "10M"),
            (EGRESS_ANNOTATION, "1Mi"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(bw.ingress_rate, 10_000_000);
        assert_eq!(bw.egress_rate, 1_048_576);
        assert_eq!(bw.ingress_burst, 1_000_000);
        assert_eq!(bw.egress_burst, 32 * 1024 * 8);
        let bw = kubernetes_bandwidth(&ann(&[(EGRESS_ANNOTATION, "2.5e6")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (bw.egress_rate, bw.ingress_rate, bw.ingress_burst),
            (2_500_000, 0, 0)
        );
        assert_eq!(kubernetes_bandwidth(&ann(&[("other", "1")])).unwrap(), None);
        // kubelet's bounds (1k to 1P), and m is milli, not mega
        for bad in ["10m", "999", "2P", "fast", "10Mbit", ""] {
            assert!(
                kubernetes_bandwidth(&ann(&[(INGRESS_ANNOTATION, bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_flag_wins_over_the_annotations_direction_by_direction() {
        let flag = Bandwidth {
            egress_rate: 5,
            egress_burst: 50,
            ..Bandwidth::default()
        };
        let a = Bandwidth {
            ingress_rate: 7,
            ingress_burst: 70,
            egress_rate: 9,
            egress_burst: 90,
        };
        let m = merge(Some(flag), Some(a)).unwrap();
        assert_eq!(
            (
                m.egress_rate,
                m.egress_burst,
                m.ingress_rate,
                m.ingress_burst
            ),
            (5, 50, 7, 70)
        );
        assert_eq!(merge(None, None), None);
        assert_eq!(merge(None, Some(a)), Some(a));
    }
}
