//! The ADD result (SPEC.md, "Section 5: Result Types"), as the 1.0.0 type, read from any
//! version berth speaks (0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0) and written back in any of them,
//! as libcni's `types/100` converters do: the 0.3/0.4 results differ only in a `version`
//! ("4"/"6") on each IP and in lacking the newer optional fields.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::version::Version;

/// What an attachment created: interfaces, addresses, routes, DNS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// The version the plugins spoke.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// An interface the attachment created, in the container (`sandbox` set) or on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_path: Option<String>,
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// An address the attachment assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// CIDR notation: `10.88.0.2/16`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into [`CniResult::interfaces`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route the attachment created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

/// DNS settings the network knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

impl IpConfig {
    /// The address without its prefix length; `None` when it is not `IP/LEN`.
    pub fn ip(&self) -> Option<IpAddr> {
        parse_cidr(&self.address).map(|(ip, _)| ip)
    }

    /// The prefix length; `None` when the address is not `IP/LEN`.
    pub fn prefix_len(&self) -> Option<u8> {
        parse_cidr(&self.address).map(|(_, len)| len)
    }
}

/// `IP/LEN` with LEN within the address family's width.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

impl CniResult {
    /// Read a result printed by a plugin (or kept in the cache) in any version berth speaks.
    /// The error says what is wrong with it.
    pub fn from_json(value: &Value) -> Result<CniResult, String> {
        let Value::Object(obj) = value else {
            return Err("the result is not a JSON object".to_owned());
        };
        let version = match obj.get("cniVersion") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("cniVersion is not a string".to_owned()),
            None => return Err("cniVersion is missing".to_owned()),
        };
        let parsed = Version::parse(&version)
            .ok_or_else(|| format!("cniVersion {version:?} is not a version"))?;
        if !parsed.is_supported() {
            return Err(format!(
                "result version {version} is not one berth reads (0.3.0 and later)"
            ));
        }
        // 0.3.x/0.4.0 carry `version` on each IP; it is implied by the address in 1.0
        let mut v = Value::Object(obj.clone());
        if parsed < Version::new(1, 0, 0)
            && let Some(Value::Array(ips)) = v.get_mut("ips")
        {
            for ip in ips.iter_mut() {
                if let Value::Object(m) = ip {
                    m.remove("version");
                }
            }
        }
        let result: CniResult =
            serde_json::from_value(v).map_err(|e| format!("not a CNI result: {e}"))?;
        for (i, ip) in result.ips.iter().enumerate() {
            if parse_cidr(&ip.address).is_none() {
                return Err(format!("ips[{i}].address {:?} is not IP/LEN", ip.address));
            }
            if let Some(gw) = &ip.gateway
                && gw.parse::<IpAddr>().is_err()
            {
                return Err(format!("ips[{i}].gateway {gw:?} is not an IP address"));
            }
            if let Some(idx) = ip.interface
                && idx >= result.interfaces.len()
            {
                return Err(format!(
                    "ips[{i}].interface {idx} is not an index into the {} interface(s)",
                    result.interfaces.len()
                ));
            }
        }
        for (i, r) in result.routes.iter().enumerate() {
            if parse_cidr(&r.dst).is_none() {
                return Err(format!("routes[{i}].dst {:?} is not IP/LEN", r.dst));
            }
        }
        Ok(result)
    }

    /// The result as `version` writes it: what a plugin of that version expects as
    /// `prevResult`. Fields the older format lacks are dropped.
    pub fn to_json(&self, version: Version) -> Value {
        let mut r = self.clone();
        r.cni_version = version.to_string();
        let old = version < Version::new(1, 0, 0);
        if old {
            for i in &mut r.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            for rt in &mut r.routes {
                *rt = Route {
                    dst: rt.dst.clone(),
                    gw: rt.gw.clone(),
                    ..Route::default()
                };
            }
        }
        let mut v = serde_json::to_value(&r).unwrap_or_else(|_| Value::Object(Map::new()));
        if old && let Some(Value::Array(ips)) = v.get_mut("ips") {
            for (ip, typed) in ips.iter_mut().zip(&r.ips) {
                if let Value::Object(m) = ip {
                    let fam = if typed.ip().is_some_and(|a| a.is_ipv6()) {
                        "6"
                    } else {
                        "4"
                    };
                    m.insert("version".to_owned(), Value::String(fam.to_owned()));
                }
            }
        }
        v
    }

    /// The interface the container got (`sandbox` set) named `ifname`, with its index.
    pub fn container_interface(&self, ifname: &str) -> Option<(usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == ifname && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_040_result_reads_as_100_and_writes_back() {
        let v040 = json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/run/netns/x"}],
            "ips": [{"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0},
                    {"version": "6", "address": "fd00::5/64", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {}
        });
        let r = CniResult::from_json(&v040).unwrap();
        assert_eq!(r.ips[0].ip(), Some("10.1.0.5".parse().unwrap()));
        assert_eq!(r.ips[0].prefix_len(), Some(16));
        assert_eq!(r.ips[1].interface, Some(0));
        assert_eq!(r.container_interface("eth0").unwrap().0, 0);
        let back = r.to_json(Version::new(0, 4, 0));
        assert_eq!(back["ips"][0]["version"], "4");
        assert_eq!(back["ips"][1]["version"], "6");
        assert_eq!(back["cniVersion"], "0.4.0");
        assert!(back.get("dns").is_none());
        let v100 = r.to_json(Version::new(1, 0, 0));
        assert!(v100["ips"][0].get("version").is_none());
        assert_eq!(CniResult::from_json(&v100).unwrap().ips, r.ips);
    }

    #[test]
    fn malformed_results_are_refused_with_the_field() {
        let cases = [
            (json!([]), "not a JSON object"),
            (json!({"ips": []}), "cniVersion is missing"),
            (json!({"cniVersion": "0.2.0", "ip4": {}}), "0.3.0 and later"),
            (
                json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1"}]}),
                "ips[0].address",
            ),
            (
                json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/8", "interface": 3}]}),
                "ips[0].interface 3",
            ),
            (
                json!({"cniVersion": "1.0.0", "routes": [{"dst": "x"}]}),
                "routes[0].dst",
            ),
            (json!({"cniVersion": "1.0.0", "ips": 5}), "not a CNI result"),
        ];
        for (v, want) in cases {
            let e = CniResult::from_json(&v).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
        assert!(parse_cidr("10.0.0.1/33").is_none());
        assert!(parse_cidr("fd00::1/128").is_some());
    }
}
