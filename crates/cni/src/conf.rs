//! The per-attachment parameters (SPEC.md, "Attachment Parameters") and the capability
//! arguments of the conventions (CONVENTIONS.md): `portMappings`, `bandwidth`, `ips`, `mac`,
//! `dns`, `aliases`, … reach a plugin in `runtimeConfig` only when it declares the capability.

use serde_json::{Map, Value, json};

/// The arguments of one attachment of a container to a network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConf {
    /// `CNI_CONTAINERID`: a letter or digit, then letters, digits, `_`, `.`, `-`.
    pub container_id: String,
    /// `CNI_NETNS`: the path of the container's network namespace.
    pub netns: String,
    /// `CNI_IFNAME`: the interface to create in the container (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS`: `K=V` pairs given to every plugin.
    pub args: Vec<(String, String)>,
    /// Capability arguments by capability name; each plugin gets those it declares.
    pub capability_args: Map<String, Value>,
    /// `args.cni.ips` of every plugin's configuration (CONVENTIONS.md, "Args in network
    /// config"): the addresses to ask of the IPAM, one per range set (host-local and static
    /// read it; unlike `CNI_ARGS`' `IP`, it carries an address of each family). Given to the
    /// ADD only: a DEL releases by container id.
    pub config_ips: Vec<String>,
}

/// A published port (the `portMappings` capability, as the portmap plugin reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The host address to listen on; empty for all.
    pub host_ip: String,
}

/// Traffic shaping (the `bandwidth` capability, as the bandwidth plugin reads it): rates in
/// bits per second, bursts in bits. Ingress is traffic into the container, egress out of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bandwidth {
    pub ingress_rate: u64,
    pub ingress_burst: u64,
    pub egress_rate: u64,
    pub egress_burst: u64,
}

impl RuntimeConf {
    pub fn new(
        container_id: impl Into<String>,
        netns: impl Into<String>,
        ifname: impl Into<String>,
    ) -> RuntimeConf {
        RuntimeConf {
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            ..RuntimeConf::default()
        }
    }

    /// Add a `CNI_ARGS` pair (`IgnoreUnknown=1`, `K8S_POD_NAME=…`).
    pub fn with_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> RuntimeConf {
        self.args.push((key.into(), value.into()));
        self
    }

    /// Set a capability argument by its conventional name.
    pub fn with_capability(mut self, capability: impl Into<String>, value: Value) -> RuntimeConf {
        self.capability_args.insert(capability.into(), value);
        self
    }

    /// `portMappings`.
    pub fn with_port_mappings(self, ports: &[PortMapping]) -> RuntimeConf {
        let v = ports
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol,
                });
                if !p.host_ip.is_empty()
                    && let Value::Object(o) = &mut m
                {
                    o.insert("hostIP".to_owned(), Value::String(p.host_ip.clone()));
                }
                m
            })
            .collect();
        self.with_capability("portMappings", Value::Array(v))
    }

    /// `bandwidth`.
    pub fn with_bandwidth(self, bw: Bandwidth) -> RuntimeConf {
        let mut m = Map::new();
        for (k, v) in [
            ("ingressRate", bw.ingress_rate),
            ("ingressBurst", bw.ingress_burst),
            ("egressRate", bw.egress_rate),
            ("egressBurst", bw.egress_burst),
        ] {
            if v > 0 {
                m.insert(k.to_owned(), json!(v));
            }
        }
        self.with_capability("bandwidth", Value::Object(m))
    }

    /// `ips`: static addresses in CIDR notation (host-local and static honour them).
    pub fn with_ips(self, ips: &[String]) -> RuntimeConf {
        self.with_capability("ips", json!(ips))
    }

    /// `args.cni.ips` ([`RuntimeConf::config_ips`]).
    pub fn with_config_ips(mut self, ips: &[String]) -> RuntimeConf {
        self.config_ips = ips.to_vec();
        self
    }

    /// `mac`: the container interface's MAC address (tuning honours it).
    pub fn with_mac(self, mac: impl Into<String>) -> RuntimeConf {
        self.with_capability("mac", Value::String(mac.into()))
    }

    /// `CNI_ARGS` as the plugins read it: `K=V;K2=V2`.
    pub(crate) fn cni_args(&self) -> Option<String> {
        if self.args.is_empty() {
            return None;
        }
        Some(
            self.args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
        )
    }
}
