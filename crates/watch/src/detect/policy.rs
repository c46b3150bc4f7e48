//! The `[watch]` policy: allowed exec globs, allowed destinations (CIDR and port ranges),
//! watched write prefixes, and which containers are enforced (see the module above for the
//! file's syntax).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::containers::Container;

/// Why a policy could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("failed to parse the watch policy (TOML)")]
    Toml {
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("failed to parse the watch policy (JSON)")]
    Json {
        #[source]
        source: Box<serde_json::Error>,
    },
    #[error(
        "watch.allow_connect[{index}] = {value:?}: {why}; hint: write CIDR[:PORT[-PORT]], an IPv6 CIDR in brackets when a port follows (\"[2001:db8::/32]:443\")"
    )]
    Destination {
        index: usize,
        value: String,
        why: &'static str,
    },
    #[error(
        "watch.allow_listen[{index}] = {value:?} is not a port; hint: write PORT[-PORT][/tcp|/udp] (\"8080\", \"53/udp\", \"9000-9100/tcp\")"
    )]
    ListenPort { index: usize, value: String },
    #[error("watch.{field}[{index}] = {value:?} is not an absolute path or glob")]
    NotAbsolute {
        field: &'static str,
        index: usize,
        value: String,
    },
    #[error(
        "watch.enforce[{index}] names neither a container nor an image; hint: {{ container = \"NAME-GLOB\" }} or {{ image = \"REF-GLOB\" }}"
    )]
    EmptyEnforce { index: usize },
}

impl PolicyError {
    /// The class of the failure: always bad input.
    pub fn kind(&self) -> berth_errdefs::ErrorKind {
        berth_errdefs::ErrorKind::InvalidInput
    }
}

/// Which containers are enforced: every given field must match (globs over the container's
/// name or id, and over its image reference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforceRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// An allowed destination: addresses in a CIDR, ports in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub addr: IpAddr,
    pub prefix: u8,
    pub ports: (u16, u16),
}

impl Destination {
    /// `CIDR[:PORT[-PORT]]`; an IPv6 CIDR in brackets when a port follows.
    pub fn parse(s: &str) -> Result<Destination, &'static str> {
        let s = s.trim();
        let (cidr, ports) = if let Some(rest) = s.strip_prefix('[') {
            let (cidr, after) = rest.split_once(']').ok_or("a '[' without its ']'")?;
            match after {
                "" => (cidr, None),
                a => (
                    cidr,
                    Some(
                        a.strip_prefix(':')
                            .ok_or("text after ']' that is not :PORT")?,
                    ),
                ),
            }
        } else if s.matches(':').count() > 1 {
            (s, None) // a bare IPv6 CIDR
        } else {
            match s.split_once(':') {
                Some((c, p)) => (c, Some(p)),
                None => (s, None),
            }
        };
        let (addr, prefix) = match cidr.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (cidr, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| "not an IP address")?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| "the prefix length is not a number")?,
            None => max,
        };
        if prefix > max {
            return Err("the prefix length is longer than the address");
        }
        let ports = match ports {
            None => (0, u16::MAX),
            Some(p) => {
                let (lo, hi) = p.split_once('-').unwrap_or((p, p));
                let lo: u16 = lo
                    .parse()
                    .map_err(|_| "the port is not a number up to 65535")?;
                let hi: u16 = hi
                    .parse()
                    .map_err(|_| "the port is not a number up to 65535")?;
                if lo > hi {
                    return Err("the port range is reversed");
                }
                (lo, hi)
            }
        };
        Ok(Destination {
            addr,
            prefix,
            ports,
        })
    }

    /// Whether `to` is in this destination.
    pub fn contains(&self, to: &SocketAddr) -> bool {
        let port = to.port();
        if port < self.ports.0 || port > self.ports.1 {
            return false;
        }
        let ip = match (self.addr, to.ip()) {
            // an IPv4-mapped IPv6 address is the IPv4 address
            (IpAddr::V4(_), IpAddr::V6(v6)) => {
                v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
            }
            (_, ip) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    // a prefix longer than the address (a Destination built by hand) is the whole address
    let prefix = usize::from(prefix).min(a.len() * 8);
    let (full, rest) = (prefix / 8, prefix % 8);
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => (x & mask) == (y & mask),
        _ => false,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    watch: RawPolicy,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    allow_exec: Vec<String>,
    #[serde(default)]
    allow_connect: Vec<String>,
    #[serde(default)]
    allow_loopback: Option<bool>,
    #[serde(default)]
    allow_listen: Vec<String>,
    #[serde(default)]
    watch_writes: Vec<String>,
    #[serde(default)]
    enforce: Vec<EnforceRule>,
}

/// What the operator adds to the profiles (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub allow_exec: Vec<String>,
    pub allow_connect: Vec<Destination>,
    pub allow_loopback: bool,
    /// Ports a container may bind beside the ones its image declares.
    pub allow_listen: Vec<ListenPorts>,
    pub watch_writes: Vec<String>,
    pub enforce: Vec<EnforceRule>,
}

/// Ports a bind may take: a range, of one protocol (`None`: TCP and UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenPorts {
    pub ports: (u16, u16),
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
}

impl ListenPorts {
    /// `PORT[-PORT][/tcp|/udp]`.
    pub fn parse(s: &str) -> Option<ListenPorts> {
        let (ports, protocol) = match s.split_once('/') {
            Some((p, proto)) if matches!(proto, "tcp" | "udp") => (p, Some(proto.to_owned())),
            Some(_) => return None,
            None => (s, None),
        };
        let (from, to) = match ports.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let p = ports.parse().ok()?;
                (p, p)
            }
        };
        (from <= to).then_some(ListenPorts {
            ports: (from, to),
            protocol,
        })
    }

    /// Whether a bind of `port` over TCP (`stream`) or UDP is one of these.
    pub fn contains(&self, port: u16, stream: bool) -> bool {
        let proto = if stream { "tcp" } else { "udp" };
        (self.ports.0..=self.ports.1).contains(&port)
            && self.protocol.as_deref().is_none_or(|p| p == proto)
    }
}

impl std::fmt::Display for ListenPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ports.0 == self.ports.1 {
            write!(f, "{}", self.ports.0)?;
        } else {
            write!(f, "{}-{}", self.ports.0, self.ports.1)?;
        }
        match &self.protocol {
            Some(p) => write!(f, "/{p}"),
            None => Ok(()),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_exec: Vec::new(),
            allow_connect: Vec::new(),
            allow_loopback: true,
            allow_listen: Vec::new(),
            watch_writes: Vec::new(),
            enforce: Vec::new(),
        }
    }
}

impl Policy {
    /// The `[watch]` table of a TOML document.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let f: PolicyFile = toml::from_str(text).map_err(|source| PolicyError::Toml {
            source: Box::new(source),
        })?;
        Policy::from_raw(f.watch)
    }

    /// `{"watch": {…}}`, the same fields as the TOML.
    pub fn from_json(data: &[u8]) -> Result<Policy, PolicyError> {
        let f: PolicyFile = serde_json::from_slice(data).map_err(|source| PolicyError::Json {
            source: Box::new(source),
        })?;
        Policy::from_raw(f.watch)
    }

    fn from_raw(raw: RawPolicy) -> Result<Policy, PolicyError> {
        for (field, list) in [
            ("allow_exec", &raw.allow_exec),
            ("watch_writes", &raw.watch_writes),
        ] {
            if let Some((index, value)) = list.iter().enumerate().find(|(_, v)| !v.starts_with('/'))
            {
                return Err(PolicyError::NotAbsolute {
                    field,
                    index,
                    value: value.clone(),
                });
            }
        }
        if let Some(index) = raw
            .enforce
            .iter()
            .position(|e| e.container.is_none() && e.image.is_none())
        {
            return Err(PolicyError::EmptyEnforce { index });
        }
        let allow_connect = raw
            .allow_connect
            .iter()
            .enumerate()
            .map(|(index, v)| {
                Destination::parse(v).map_err(|why| PolicyError::Destination {
                    index,
                    value: v.clone(),
                    why,
                })
            })
            .collect::<Result<_, _>>()?;
        let allow_listen = raw
            .allow_listen
            .iter()
            .enumerate()
            .map(|(index, v)| {
                ListenPorts::parse(v).ok_or_else(|| PolicyError::ListenPort {
                    index,
                    value: v.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            allow_exec: raw.allow_exec,
            allow_connect,
            allow_loopback: raw.allow_loopback.unwrap_or(true),
            allow_listen,
            watch_writes: raw.watch_writes,
            enforce: raw.enforce,
        })
    }

    /// Whether the container is in enforce mode (drift is killed, connects outside the
    /// profile refused).
    pub fn enforces(&self, c: &Container) -> bool {
        self.enforce.iter().any(|r| {
            r.container
                .as_deref()
                .is_none_or(|g| glob_match(g, &c.name) || glob_match(g, &c.id))
                && r.image.as_deref().is_none_or(|g| glob_match(g, &c.image))
        })
    }

    /// The allow_exec pattern that matches `path`, if one does.
    pub fn allowed_exec(&self, path: &str) -> Option<&str> {
        self.allow_exec
            .iter()
            .find(|g| glob_match(g, path))
            .map(String::as_str)
    }

    /// The watched prefix `path` is under (component-wise: `/etc` holds `/etc/passwd`, not
    /// `/etcetera`), if one.
    pub fn watched_write(&self, path: &str) -> Option<&str> {
        self.watch_writes
            .iter()
            .find(|p| {
                let p = p.trim_end_matches('/');
                p.is_empty()
                    || path == p
                    || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
            })
            .map(String::as_str)
    }
}

/// A glob over `/`-separated paths: `*` and `?` within one component, `**` across any.
/// Linear in memory and O(pattern × text) in time (no backtracking blow-up on `*a*a*a…`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let n = t.len();
    // rows[k][j]: does p[i + k..] match t[j..], for the row i being computed (k = 0) and the
    // two after it
    let mut next2 = vec![false; n + 1];
    let mut next1 = vec![false; n + 1];
    next1[n] = true; // the empty pattern matches the empty text
    for i in (0..p.len()).rev() {
        let mut row = vec![false; n + 1];
        let double = p[i] == b'*' && p.get(i + 1) == Some(&b'*');
        for j in (0..=n).rev() {
            row[j] = match p[i] {
                b'*' if double => next2[j] || (j < n && row[j + 1]),
                b'*' => next1[j] || (j < n && t[j] != b'/' && row[j + 1]),
                b'?' => j < n && t[j] != b'/' && next1[j + 1],
                c => j < n && t[j] == c && next1[j + 1],
            };
        }
        next2 = std::mem::replace(&mut next1, row);
    }
    next1[0]
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all = if self.addr.is_ipv4() { 32 } else { 128 };
        let cidr = if self.prefix == all {
            self.addr.to_string()
        } else {
            format!("{}/{}", self.addr, self.prefix)
        };
        match self.ports {
            (0, u16::MAX) => f.write_str(&cidr),
            (lo, hi) => {
                let cidr = if self.addr.is_ipv6() {
                    format!("[{cidr}]")
                } else {
                    cidr
                };
                if lo == hi {
                    write!(f, "{cidr}:{lo}")
                } else {
                    write!(f, "{cidr}:{lo}-{hi}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_keep_star_within_a_component() {
        assert!(glob_match("/usr/local/bin/*", "/usr/local/bin/x"));
        assert!(!glob_match("/usr/local/bin/*", "/usr/local/bin/a/x"));
        assert!(glob_match("/opt/**", "/opt/a/b/c"));
        assert!(glob_match("/opt/**/run", "/opt/a/b/run"));
        assert!(glob_match("web-?", "web-1"));
        assert!(!glob_match("web-?", "web-12"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("/tmp/x", "/tmp/xy"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
        assert!(glob_match("**", ""));
        assert!(glob_match("/a/**", "/a/"));
        assert!(glob_match("*/x", "/x"));
        // no exponential backtracking (found by the watch_policy fuzz target)
        let many = "*a".repeat(40) + "b";
        let text = "a".repeat(200);
        assert!(!glob_match(&many, &text));
        assert!(!glob_match(&"**a".repeat(40), &"a".repeat(39)));
    }

    #[test]
    fn destinations_parse_and_print_back() {
        for s in [
            "10.0.0.0/8",
            "0.0.0.0/0:53",
            "192.0.2.7:8000-9000",
            "[2001:db8::/32]:443",
            "2001:db8::/32",
            "::1",
        ] {
            let d = Destination::parse(s).unwrap();
            assert_eq!(d.to_string(), s, "{d:?}");
        }
        assert!(Destination::parse("10.0.0.0/33").is_err());
        assert!(Destination::parse("10.0.0.0/8:90-80").is_err());
        assert!(Destination::parse("example.com:80").is_err());
        assert!(Destination::parse("[::1:443").is_err());
    }

    #[test]
    fn cidrs_match_by_prefix_and_port_range() {
        let d = Destination::parse("10.1.0.0/15:80-443").unwrap();
        assert!(d.contains(&"10.0.255.1:80".parse().unwrap()));
        assert!(d.contains(&"10.1.2.3:443".parse().unwrap()));
        assert!(!d.contains(&"10.2.0.1:80".parse().unwrap()));
        assert!(!d.contains(&"10.1.2.3:444".parse().unwrap()));
        // IPv4-mapped IPv6 is the IPv4 address
        assert!(d.contains(&"[::ffff:10.1.2.3]:80".parse().unwrap()));
        let v6 = Destination::parse("[2001:db8::/32]:443").unwrap();
        assert!(v6.contains(&"[2001:db8:1::5]:443".parse().unwrap()));
        assert!(!v6.contains(&"[2001:db9::5]:443".parse().unwrap()));
        assert!(!v6.contains(&"1.2.3.4:443".parse().unwrap()));
        // a prefix longer than the address, built by hand, is the whole address
        let by_hand = Destination {
            addr: "10.0.0.1".parse().unwrap(),
            prefix: 200,
            ports: (0, u16::MAX),
        };
        assert!(by_hand.contains(&"10.0.0.1:1".parse().unwrap()));
        assert!(!by_hand.contains(&"10.0.0.2:1".parse().unwrap()));
    }
}
