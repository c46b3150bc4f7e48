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
//!
//! A rootless container's network (pasta's) has no host-side veth: pasta carries its traffic
//! through the user's sockets from a tap device in the container's namespace. There the
//! bandwidth plugin's method is applied inside the namespace ([`shape_namespace`]), which
//! the container could undo only with CAP_NET_ADMIN: berth refuses to shape a container
//! that has it ([`lifts_shaping`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_cni::{Bandwidth, Cni, CniResult, RuntimeConf};

use crate::error::{EngineError, Result};
use crate::network::{BandwidthLimits, NetworkAttachment};

/// Shape the container's first CNI network (where `run` put `--network-bandwidth`) with
/// `bw`. `att` is updated (its `bandwidth`, and the intent file beside the namespace) in
/// every case: when the new ADD fails the container is left unshaped, and `att` says so.
pub fn update_bandwidth(att: &mut NetworkAttachment, bw: Bandwidth) -> Result<()> {
    if att.pasta.is_some() {
        let outcome = shape_namespace(&att.netns, crate::pasta::IFNAME, bw, true);
        att.bandwidth = outcome.is_ok().then(|| BandwidthLimits::from(bw));
        crate::network::rewrite_intent(att)?;
        return outcome.map_err(|e| {
            EngineError::Network(format!(
                "failed to change the bandwidth of container {} (it is unshaped now): {e}",
                att.container_id
            ))
        });
    }
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

/// The IFB device that carries the traffic into a pasta container to its TBF, made in the
/// container's own namespace (no other container's namespace holds it).
pub const NAMESPACE_IFB: &str = "berth-ingress";

/// The largest frame pasta's tap carries: its MTU (65 520) and the Ethernet header. A TBF
/// drops a packet larger than its bucket, so no bucket is smaller.
const TAP_FRAME_BYTES: u64 = 65_520 + 14;

/// The bandwidth plugin's TBF latency (how long a packet may wait in the bucket's queue).
const TBF_LATENCY: &str = "25ms";

/// Shape the traffic of the network namespace at `netns` whose interface `ifname` has no
/// host side to shape (rootless pasta's tap), with the bandwidth plugin's method inside the
/// namespace: traffic out of the container through a TBF at the root of `ifname`, traffic
/// into it through an ingress qdisc on `ifname` whose filter redirects every packet to an
/// IFB device ([`NAMESPACE_IFB`]) with a TBF of its own. A direction of rate 0 is left
/// unshaped. `replace`: remove the shaping there is first (`update`), so that the
/// namespace holds exactly `bw`'s.
///
/// Each bucket holds at least one of the tap's frames ([`TAP_FRAME_BYTES`]), whatever the
/// burst asked: a smaller one would drop every full-size frame.
pub fn shape_namespace(
    netns: &Path,
    ifname: &str,
    bw: Bandwidth,
    replace: bool,
) -> std::result::Result<(), String> {
    if replace {
        // (each may be absent: -force goes on past a failed line)
        in_namespace(
            netns,
            "tc",
            &["-force", "-batch", "-"],
            &format!("qdisc del dev {ifname} root\nqdisc del dev {ifname} ingress\n"),
        )
        .ok();
        in_namespace(
            netns,
            "ip",
            &["-force", "-batch", "-"],
            &format!("link del {NAMESPACE_IFB}\n"),
        )
        .ok();
    }
    let mut tc = String::new();
    if bw.ingress_rate > 0 {
        in_namespace(
            netns,
            "ip",
            &["-batch", "-"],
            &format!("link add {NAMESPACE_IFB} type ifb\nlink set {NAMESPACE_IFB} up\n"),
        )?;
        // the IFB's bucket before any traffic is sent to it
        let _ = writeln!(
            tc,
            "qdisc add dev {NAMESPACE_IFB} root {}",
            tbf(bw.ingress_rate, bw.ingress_burst)
        );
        let _ = writeln!(tc, "qdisc add dev {ifname} handle ffff: ingress");
        let _ = writeln!(
            tc,
            "filter add dev {ifname} parent ffff: protocol all u32 match u32 0 0 action mirred \
             egress redirect dev {NAMESPACE_IFB}"
        );
    }
    if bw.egress_rate > 0 {
        let _ = writeln!(
            tc,
            "qdisc add dev {ifname} root {}",
            tbf(bw.egress_rate, bw.egress_burst)
        );
    }
    if tc.is_empty() {
        return Ok(());
    }
    in_namespace(netns, "tc", &["-batch", "-"], &tc)
}

/// A TBF qdisc's parameters for `rate` bits per second and a bucket of `burst` bits (at
/// least one tap frame).
fn tbf(rate: u64, burst: u64) -> String {
    let bytes = (burst / 8).max(TAP_FRAME_BYTES);
    format!("tbf rate {rate}bit burst {bytes}b latency {TBF_LATENCY}")
}

/// Run `program args…` (iproute2's, in batch mode) in the network namespace at `netns`, its
/// commands on stdin.
fn in_namespace(
    netns: &Path,
    program: &str,
    args: &[&str],
    commands: &str,
) -> std::result::Result<(), String> {
    let what = || format!("{program} {} (in {})", args.join(" "), netns.display());
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e} (hint: install util-linux and iproute2)", what()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(commands.as_bytes())
            .map_err(|e| format!("{}: writing its commands: {e}", what()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", what()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            what(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The containers holding CAP_NET_ADMIN in the network namespace of `rec` (a rootless
/// container's, where its shaping is made): itself, and those of `others` whose runtime
/// config joins that namespace by path (`--network container:`).
pub(crate) fn net_admin_holders(
    rec: &crate::Record,
    others: &[crate::Record],
) -> Result<Vec<String>> {
    let joined = rec
        .init_pid
        .map(|pid| std::path::PathBuf::from(format!("/proc/{pid}/ns/net")));
    let mut holders = Vec::new();
    if lifts_shaping(&crate::bundle_spec(&rec.bundle)?) {
        holders.push(rec.id.clone());
    }
    for other in others {
        let spec = crate::bundle_spec(&other.bundle)?;
        let shares = spec
            .linux
            .as_ref()
            .and_then(|l| l.namespaces.as_ref())
            .into_iter()
            .flatten()
            .any(|ns| {
                ns.typ == berth_runtime_spec::LinuxNamespaceType::Network
                    && ns.path.is_some()
                    && ns.path == joined
            });
        if shares && lifts_shaping(&spec) {
            holders.push(other.id.clone());
        }
    }
    Ok(holders)
}

/// Whether the container's bounding set (its runtime config's) holds CAP_NET_ADMIN, with which the container could remove shaping made in its own
/// namespace.
pub fn lifts_shaping(spec: &berth_runtime_spec::Spec) -> bool {
    spec.process
        .as_ref()
        .and_then(|p| p.capabilities.as_ref())
        .and_then(|c| c.bounding.as_ref())
        .is_some_and(|b| b.contains(&berth_runtime_spec::Capability::NetAdmin))
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
    fn a_namespaces_buckets_hold_a_tap_frame_and_net_admin_could_lift_them() {
        assert_eq!(
            tbf(10_000_000, 1_000_000),
            "tbf rate 10000000bit burst 125000b latency 25ms"
        );
        // berth's default burst at 1 Mbit/s (32 KiB) is less than one of pasta's frames
        assert_eq!(
            tbf(1_000_000, crate::network::default_burst(1_000_000)),
            "tbf rate 1000000bit burst 65534b latency 25ms"
        );
        let with = |caps: &[berth_runtime_spec::Capability]| berth_runtime_spec::Spec {
            process: Some(berth_runtime_spec::Process {
                capabilities: Some(berth_runtime_spec::LinuxCapabilities {
                    bounding: Some(caps.iter().copied().collect()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        use berth_runtime_spec::Capability::{NetAdmin, NetBindService};
        assert!(lifts_shaping(&with(&[NetBindService, NetAdmin])));
        assert!(!lifts_shaping(&with(&[NetBindService])));
        assert!(!lifts_shaping(&berth_runtime_spec::Spec::default()));
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
