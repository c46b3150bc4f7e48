//! A bridge network's rules in the host's firewall: made once for the network, not once for
//! each container.
//!
//! The standard plugins' way is per container: `bridge`'s `ipMasq` adds a chain and a
//! POSTROUTING jump for each container address (9 `iptables` runs with Debian's 1.1.1), and
//! `firewall` adds each address to its FORWARD chains (10 runs); their DEL deletes them again,
//! and on nf_tables each deleted rule waits for an RCU grace period (docs/performance.md,
//! "Against podman with netavark"). docker (per bridge) and netavark (per network) masquerade
//! and accept forwarding per network instead, as flannel does for its `bridge` delegates
//! (`ipMasq` off). berth's own bridge networks do the same: their lists leave `bridge`'s
//! `ipMasq` off, list no `firewall` plugin, and carry
//! `"berth": {"hostRules": "masquerade" | "isolated"}` at the top (a key other CNI runtimes
//! ignore, as they do nerdctl's `nerdctlID`). [`ensure`] puts the network's rules in place
//! before each container's ADD (checked each time: a reboot or a firewall reload that
//! dropped them is repaired by the next container), and [`remove`] takes them out with the
//! network. Everything per container (the veth, the address, published ports, shaping) is
//! still the standard plugins' work.
//!
//! The rules, for bridge `B` and each subnet `S` (`ip6tables` for IPv6), each with the
//! comment `berth network NAME`:
//! - `masquerade`: `-t nat -A POSTROUTING -s S ! -o B -j MASQUERADE` (docker's rule), and
//!   at the top of FORWARD `-i B -j ACCEPT` and `-o B -m conntrack --ctstate
//!   RELATED,ESTABLISHED -j ACCEPT` (the `firewall` plugin's per-address pair): out of the
//!   network freely, into it only as replies or through a published port's DNAT (portmap's
//!   own rules).
//! - `isolated` (`--internal`): at the top of FORWARD `-i B -o B -j ACCEPT`, `-i B ! -o B
//!   -j DROP` and `! -i B -o B -j DROP`: the containers reach each other and the host (its
//!   INPUT, untouched), nothing is forwarded in or out (docker's internal networks).
//!
//! No two of a network's FORWARD rules match the same packet with different verdicts, so
//! their order does not matter and a missing one can be inserted alone.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use berth_cni::NetworkConfigList;

use crate::error::{EngineError, Result};

/// The top-level key of a list whose network's rules are berth's.
pub const KEY: &str = "berth";

/// How a network's traffic leaves the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Masqueraded out of the host; forwarding in as replies only.
    Masquerade,
    /// `--internal`: nothing forwarded in or out.
    Isolated,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Masquerade => "masquerade",
            Mode::Isolated => "isolated",
        }
    }

    /// The value a list carries under [`KEY`].
    pub fn marker(self) -> serde_json::Value {
        serde_json::json!({"hostRules": self.as_str()})
    }
}

/// A network's rules: what [`ensure`] and [`remove`] work from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRules {
    network: String,
    bridge: String,
    subnets: Vec<String>,
    mode: Mode,
}

/// One rule: `iptables`/`ip6tables`, table, chain, and the match and target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    v6: bool,
    table: &'static str,
    chain: &'static str,
    /// Inserted at the top of the chain (else appended).
    first: bool,
    spec: Vec<String>,
}

impl HostRules {
    /// The rules `list` asks berth for, or `None` for a list without [`KEY`] (written by
    /// someone else, or by a berth before this: its plugins do their own rules).
    pub fn of(list: &NetworkConfigList) -> Result<Option<HostRules>> {
        let invalid = |why: &str| {
            EngineError::Invalid(format!(
                "network {}{}: {why} (hint: recreate the network with `berth network rm` and \
                 `berth network create`)",
                list.name,
                list.origin
                    .as_ref()
                    .map(|p| format!(" ({})", p.display()))
                    .unwrap_or_default()
            ))
        };
        let top: serde_json::Value = serde_json::from_slice(&list.bytes)
            .map_err(|e| invalid(&format!("its list is not JSON: {e}")))?;
        let Some(marker) = top.get(KEY) else {
            return Ok(None);
        };
        let mode = match marker.get("hostRules").and_then(|m| m.as_str()) {
            Some("masquerade") => Mode::Masquerade,
            Some("isolated") => Mode::Isolated,
            other => {
                return Err(invalid(&format!(
                    "\"{KEY}\".\"hostRules\" is {other:?}: expected \"masquerade\" or \"isolated\""
                )));
            }
        };
        let bridge = list
            .plugins
            .first()
            .filter(|p| p.plugin_type == "bridge")
            .and_then(|p| p.raw.get("bridge"))
            .and_then(|b| b.as_str())
            .ok_or_else(|| {
                invalid("host rules need a first plugin of type bridge, naming its bridge")
            })?;
        let valid_name = bridge
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
            && bridge.len() <= 15
            && bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(invalid(&format!(
                "bridge name {bridge:?} is not an interface name"
            )));
        }
        let subnets = crate::network::subnets_of(list);
        for s in &subnets {
            let valid = s.split_once('/').is_some_and(|(a, p)| {
                a.parse::<IpAddr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 128)
            });
            if !valid {
                return Err(invalid(&format!("subnet {s:?} is not a CIDR")));
            }
        }
        if subnets.is_empty() {
            return Err(invalid(
                "host rules need the network's subnets in its ipam ranges",
            ));
        }
        Ok(Some(HostRules {
            network: list.name.clone(),
            bridge: bridge.to_owned(),
            subnets,
            mode,
        }))
    }

    /// Each rule as the check [`ensure`] runs for it: `iptables -w -t TABLE -C CHAIN …`
    /// (`ip6tables` for IPv6).
    pub fn checks(&self) -> Vec<Vec<String>> {
        self.rules()
            .iter()
            .map(|r| {
                let program = if r.v6 { "ip6tables" } else { "iptables" };
                [program, "-w", "-t", r.table, "-C", r.chain]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .chain(r.spec.iter().cloned())
                    .collect()
            })
            .collect()
    }

    fn rules(&self) -> Vec<Rule> {
        let comment = format!("berth network {}", self.network);
        let b = self.bridge.as_str();
        let spec = |parts: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
            v.extend(["-m", "comment", "--comment", &comment].map(str::to_owned));
            v
        };
        let mut out = Vec::new();
        for v6 in [false, true] {
            if !self.subnets.iter().any(|s| s.contains(':') == v6) {
                continue;
            }
            let forward = |parts: &[&str], target: &[&str]| {
                let mut s = spec(parts);
                s.extend(target.iter().map(|t| (*t).to_owned()));
                Rule {
                    v6,
                    table: "filter",
                    chain: "FORWARD",
                    first: true,
                    spec: s,
                }
            };
            match self.mode {
                Mode::Masquerade => {
                    out.push(forward(&["-i", b], &["-j", "ACCEPT"]));
                    out.push(forward(
                        &[
                            "-o",
                            b,
                            "-m",
                            "conntrack",
                            "--ctstate",
                            "RELATED,ESTABLISHED",
                        ],
                        &["-j", "ACCEPT"],
                    ));
                    for s in self.subnets.iter().filter(|s| s.contains(':') == v6) {
                        let mut m = spec(&["-s", s, "!", "-o", b]);
                        m.extend(["-j", "MASQUERADE"].map(str::to_owned));
                        out.push(Rule {
                            v6,
                            table: "nat",
                            chain: "POSTROUTING",
                            first: false,
                            spec: m,
                        });
                    }
                }
                Mode::Isolated => {
                    out.push(forward(&["-i", b, "-o", b], &["-j", "ACCEPT"]));
                    out.push(forward(&["-i", b, "!", "-o", b], &["-j", "DROP"]));
                    out.push(forward(&["!", "-i", b, "-o", b], &["-j", "DROP"]));
                }
            }
        }
        out
    }
}

/// Put `rules` in place where any is missing, under a lock in `lock_dir` so that two
/// containers started at once do not both add them.
pub fn ensure(rules: &HostRules, lock_dir: &Path) -> Result<()> {
    let _lock = lock(lock_dir)?;
    for rule in rules.rules() {
        if present(&rule) {
            continue;
        }
        let (op, pos): (&str, &[&str]) = if rule.first {
            ("-I", &["1"])
        } else {
            ("-A", &[])
        };
        iptables(&rule, op, pos).map_err(|why| {
            EngineError::Network(format!(
                "failed to add network {}'s rule `{}`: {why} (hint: the host needs iptables \
                 with the nat table, and the conntrack and comment matches)",
                rules.network,
                describe(&rule)
            ))
        })?;
    }
    Ok(())
}

/// Take `rules` out of the host's firewall (each as often as it is there, at most 16 times).
pub fn remove(rules: &HostRules, lock_dir: &Path) -> Result<()> {
    let _lock = lock(lock_dir)?;
    for rule in rules.rules() {
        for _ in 0..16 {
            if !present(&rule) {
                break;
            }
            iptables(&rule, "-D", &[]).map_err(|why| {
                EngineError::Network(format!(
                    "failed to delete network {}'s rule `{}`: {why}",
                    rules.network,
                    describe(&rule)
                ))
            })?;
        }
    }
    Ok(())
}

/// The lock every change of host rules holds (created in `dir`).
fn lock(dir: &Path) -> Result<berth_fsutil::FileLock> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io("failed to create", dir, e))?;
    let path = dir.join(".host-rules.lock");
    berth_fsutil::FileLock::exclusive(&path)
        .map_err(|e| EngineError::io("failed to lock", &path, e))
}

/// Whether `rule` is in its chain (`-C`). iptables says "missing" and most errors alike
/// (exit 1): a missing table or match is met again, with its words, by the add.
fn present(rule: &Rule) -> bool {
    iptables(rule, "-C", &[]).is_ok()
}

fn iptables(rule: &Rule, op: &str, pos: &[&str]) -> std::result::Result<(), String> {
    let program = if rule.v6 { "ip6tables" } else { "iptables" };
    let out = Command::new(program)
        .args(["-w", "-t", rule.table, op, rule.chain])
        .args(pos)
        .args(&rule.spec)
        .output()
        .map_err(|e| format!("failed to run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn describe(rule: &Rule) -> String {
    format!(
        "{} -t {} {} {}",
        if rule.v6 { "ip6tables" } else { "iptables" },
        rule.table,
        rule.chain,
        rule.spec.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(json: serde_json::Value) -> NetworkConfigList {
        NetworkConfigList::from_bytes(&serde_json::to_vec(&json).unwrap(), "test").unwrap()
    }

    fn bridge_list(marker: Option<serde_json::Value>, subnets: &[&str]) -> NetworkConfigList {
        let ranges: Vec<_> = subnets
            .iter()
            .map(|s| serde_json::json!([{"subnet": s}]))
            .collect();
        let mut v = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "appnet",
            "plugins": [{"type": "bridge", "bridge": "bn-1234abcd",
                         "ipam": {"type": "host-local", "ranges": ranges}}],
        });
        if let Some(m) = marker {
            v[KEY] = m;
        }
        list(v)
    }

    #[test]
    fn a_list_without_the_key_is_left_to_its_plugins() {
        assert_eq!(
            HostRules::of(&bridge_list(None, &["10.9.0.0/24"])).unwrap(),
            None
        );
    }

    #[test]
    fn masquerade_rules_cover_each_subnet_and_family() {
        let l = bridge_list(
            Some(Mode::Masquerade.marker()),
            &["10.9.0.0/24", "fd00:1::/64"],
        );
        let rules = HostRules::of(&l).unwrap().unwrap().rules();
        let text: Vec<String> = rules.iter().map(describe).collect();
        let c = "-m comment --comment berth network appnet";
        assert_eq!(
            text,
            [
                format!("iptables -t filter FORWARD -i bn-1234abcd {c} -j ACCEPT"),
                format!(
                    "iptables -t filter FORWARD -o bn-1234abcd -m conntrack --ctstate \
                     RELATED,ESTABLISHED {c} -j ACCEPT"
                ),
                format!(
                    "iptables -t nat POSTROUTING -s 10.9.0.0/24 ! -o bn-1234abcd {c} -j MASQUERADE"
                ),
                format!("ip6tables -t filter FORWARD -i bn-1234abcd {c} -j ACCEPT"),
                format!(
                    "ip6tables -t filter FORWARD -o bn-1234abcd -m conntrack --ctstate \
                     RELATED,ESTABLISHED {c} -j ACCEPT"
                ),
                format!(
                    "ip6tables -t nat POSTROUTING -s fd00:1::/64 ! -o bn-1234abcd {c} -j MASQUERADE"
                ),
            ]
        );
        assert!(rules.iter().all(|r| r.first == (r.chain == "FORWARD")));
    }

    #[test]
    fn isolated_rules_forward_nothing_in_or_out() {
        let l = bridge_list(Some(Mode::Isolated.marker()), &["10.9.0.0/24"]);
        let rules = HostRules::of(&l).unwrap().unwrap().rules();
        assert!(rules.iter().all(|r| r.table == "filter" && !r.v6));
        let targets: Vec<&str> = rules
            .iter()
            .map(|r| r.spec.last().unwrap().as_str())
            .collect();
        assert_eq!(targets, ["ACCEPT", "DROP", "DROP"]);
    }

    #[test]
    fn a_broken_marker_or_list_is_refused_with_a_hint() {
        for (marker, subnets, says) in [
            (
                serde_json::json!({"hostRules": "open"}),
                &["10.9.0.0/24"][..],
                "expected",
            ),
            (serde_json::json!({}), &["10.9.0.0/24"][..], "expected"),
            (Mode::Masquerade.marker(), &[][..], "subnets"),
            (Mode::Masquerade.marker(), &["10.9.0.0"][..], "not a CIDR"),
        ] {
            let e = HostRules::of(&bridge_list(Some(marker), subnets)).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(says) && text.contains("hint"), "{text}");
        }
        let mut v = serde_json::json!({
            "cniVersion": "1.0.0", "name": "lan",
            "plugins": [{"type": "macvlan", "master": "eth0"}],
        });
        v[KEY] = Mode::Masquerade.marker();
        let e = HostRules::of(&list(v)).unwrap_err().to_string();
        assert!(e.contains("type bridge"), "{e}");
    }
}
