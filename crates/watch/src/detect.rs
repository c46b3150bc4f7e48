//! The decision: is an event what the container's image says it does?
//!
//! - **exec**: a file from the image's lower layers ([`FileOrigin::Lower`]) is expected. A
//!   file from the upper layer or from outside the overlay is hashed (through the process'
//!   root, its executable, or the container's upper directory: [`ProcFiles`]) and looked up
//!   in the profile's content hashes: a copy of an image binary is expected, anything else
//!   is **drift** (rule [`Rule::ExecDrift`]), unless the policy allows its path. In enforce
//!   mode a drift comes with [`Action::Kill`]: the caller sends SIGKILL to the pid.
//! - **connect**: to a destination outside the policy's allowed CIDRs and ports → an alert
//!   ([`Rule::ConnectOutsideProfile`]); loopback is allowed unless the policy says not.
//!   Blocking is the kernel's (`cgroup/connect4/6`, [`Policy::enforces`] says for whom); a
//!   blocked connect is reported with [`Action::Blocked`].
//! - **open for write** under a watched prefix → an alert ([`Rule::WriteUnderWatchedPath`]).
//! - **dropped** events are always reported ([`Rule::EventsDropped`]): never lost silently.
//!
//! The policy is the `[watch]` table of a TOML file (or the same shape in JSON):
//!
//! ```toml
//! [watch]
//! allow_exec = ["/usr/local/bin/*", "/opt/tools/**"]   # globs: * within a component, ** across
//! allow_connect = ["10.0.0.0/8", "0.0.0.0/0:53", "192.0.2.7/32:8000-9000", "[2001:db8::/32]:443"]
//! allow_loopback = true                                   # the default
//! watch_writes = ["/etc", "/usr/bin", "/usr/sbin"]
//! enforce = [{ container = "web-*" }, { image = "registry.example/payments/*" }]
//! ```
//!
//! Every function here is pure but [`ProcFiles`], the one seam that reads a process' files.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_oci::{Algorithm, Digest, Digester};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

use crate::containers::Container;
use crate::event::{Connect, Event, Exec, FileOrigin, OpenWrite};
use crate::profile::Profile;

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
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
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
    pub watch_writes: Vec<String>,
    pub enforce: Vec<EnforceRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_exec: Vec::new(),
            allow_connect: Vec::new(),
            allow_loopback: true,
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
        Ok(Policy {
            allow_exec: raw.allow_exec,
            allow_connect,
            allow_loopback: raw.allow_loopback.unwrap_or(true),
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
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=t.len() {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if t.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            Some(b'?') => t.first().is_some_and(|c| *c != b'/') && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// What happened, as a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// As the image (or the policy) says.
    Expected,
    /// An exec of a file the image did not ship.
    Drift,
    /// A connect or a write the profile and policy do not allow.
    Alert,
    /// Events the kernel side could not deliver.
    Dropped,
    /// A process in no known container (the host, or a container started since the last
    /// rescan).
    Unattributed,
    /// A container with no profile: nothing to compare with.
    Unprofiled,
}

/// The rule an alert is raised under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    ExecDrift,
    ConnectOutsideProfile,
    WriteUnderWatchedPath,
    EventsDropped,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ExecDrift => "exec_drift",
            Rule::ConnectOutsideProfile => "connect_outside_profile",
            Rule::WriteUnderWatchedPath => "write_under_watched_path",
            Rule::EventsDropped => "events_dropped",
        }
    }

    pub const ALL: [Rule; 4] = [
        Rule::ExecDrift,
        Rule::ConnectOutsideProfile,
        Rule::WriteUnderWatchedPath,
        Rule::EventsDropped,
    ];
}

/// What the caller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    None,
    /// Send SIGKILL to this pid (enforce mode, drift).
    Kill {
        pid: u32,
    },
    /// The kernel refused the connect (enforce mode).
    Blocked,
}

/// Why the verdict is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The executed file is from the image's lower layers.
    LowerLayer,
    /// Its content is the image's executable at `path` (a copy under another name).
    CopyOfImageFile {
        path: String,
    },
    /// Its content is nowhere in the image.
    NotInImage,
    /// Its content could not be read (the process exited, the file is too large…): an
    /// unverified upper-layer exec counts as drift.
    Unreadable {
        error: String,
    },
    /// A policy entry allows it.
    Policy {
        pattern: String,
    },
    Loopback,
    /// Outside every allowed destination.
    NotAllowed,
    /// Under a watched prefix.
    WatchedPrefix {
        prefix: String,
    },
    /// Under no watched prefix.
    NotWatched,
    NoContainer,
    NoProfile,
    KernelDrops {
        count: u64,
    },
}

/// The decision on one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The rule, for alerts (drift, connect, write, drops).
    pub rule: Option<Rule>,
    #[serde(flatten)]
    pub reason: Reason,
    /// The executed file's SHA-256, when it was hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// How the file was read for hashing (`root`, `exe`, `upperdir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashed_via: Option<&'static str>,
    pub action: Action,
    /// Time spent deciding (hashing included).
    #[serde(skip)]
    pub latency: Duration,
}

impl Decision {
    fn new(verdict: Verdict, rule: Option<Rule>, reason: Reason) -> Decision {
        Decision {
            verdict,
            rule,
            reason,
            sha256: None,
            hashed_via: None,
            action: Action::None,
            latency: Duration::ZERO,
        }
    }

    /// Whether the decision raises an alert (a rule fired).
    pub fn is_alert(&self) -> bool {
        self.rule.is_some()
    }
}

/// An executed file's content hash and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    pub sha256: Digest,
    pub size: u64,
    /// `root` (the path through the process' root), `exe` (`/proc/PID/exe`) or `upperdir`.
    pub via: &'static str,
}

/// Why an executed file could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    #[error(
        "the file process {pid} executed ({filename}) could not be opened as the same inode {ino} (it exited, or the file was replaced)"
    )]
    Gone {
        pid: u32,
        filename: String,
        ino: u64,
    },
    #[error("{filename} is {size} bytes, over the limit of {limit} for hashing an executed file")]
    TooLarge {
        filename: String,
        size: u64,
        limit: u64,
    },
    #[error("failed to read {filename} executed by process {pid}")]
    Read {
        pid: u32,
        filename: String,
        #[source]
        source: io::Error,
    },
}

/// The seam that reads a process' files.
pub trait ProcessFiles {
    /// The content hash of the file `exec` ran, as the kernel saw it (same inode).
    fn hash_executed(&self, exec: &Exec, container: &Container) -> Result<HashedFile, HashError>;
    /// The process' working directory, as a path inside its root, when readable.
    fn cwd(&self, pid: u32) -> Option<String>;
}

/// [`ProcessFiles`] through procfs: the file is opened once, in the process' root
/// (`openat2(RESOLVE_IN_ROOT)` on `/proc/PID/root`, so its symlinks resolve as the process
/// sees them), else `/proc/PID/exe`, else (an upper-layer file of a process that has
/// exited) in the container's upper directory; checked to be the executed inode, and read
/// up to `max_bytes`.
#[derive(Debug, Clone)]
pub struct ProcFiles {
    pub proc: PathBuf,
    pub max_bytes: u64,
}

impl ProcFiles {
    /// `/proc`, executables up to 1 GiB.
    pub fn new(proc: &Path) -> ProcFiles {
        ProcFiles {
            proc: proc.to_owned(),
            max_bytes: 1 << 30,
        }
    }

    fn open_in(dir: &Path, path: &str) -> io::Result<OwnedFd> {
        let d = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(rustix::fs::openat2(
            &d,
            path.trim_start_matches('/'),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    fn hash_fd(
        &self,
        fd: OwnedFd,
        exec: &Exec,
        via: &'static str,
    ) -> Result<HashedFile, HashError> {
        let read_err = |source| HashError::Read {
            pid: exec.pid,
            filename: exec.filename.clone(),
            source,
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| read_err(e.into()))?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        if size > self.max_bytes {
            return Err(HashError::TooLarge {
                filename: exec.filename.clone(),
                size,
                limit: self.max_bytes,
            });
        }
        let mut d = Digester::new(Algorithm::Sha256);
        let mut f = File::from(fd).take(self.max_bytes);
        io::copy(&mut f, &mut d).map_err(read_err)?;
        Ok(HashedFile {
            size: d.bytes_hashed(),
            sha256: d.finalize(),
            via,
        })
    }
}

impl ProcessFiles for ProcFiles {
    fn hash_executed(&self, exec: &Exec, container: &Container) -> Result<HashedFile, HashError> {
        let pid_dir = self.proc.join(exec.pid.to_string());
        let same = |fd: &OwnedFd| {
            exec.ino == 0 || rustix::fs::fstat(fd).is_ok_and(|st| st.st_ino == exec.ino)
        };
        let by_path = if exec.filename.starts_with('/') {
            ProcFiles::open_in(&pid_dir.join("root"), &exec.filename)
        } else {
            ProcFiles::open_in(&pid_dir.join("cwd"), &exec.filename)
        };
        if let Ok(fd) = by_path
            && same(&fd)
        {
            return self.hash_fd(fd, exec, "root");
        }
        if let Ok(fd) = rustix::fs::open(
            pid_dir.join("exe"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) && same(&fd)
        {
            return self.hash_fd(fd, exec, "exe");
        }
        if exec.origin == FileOrigin::Upper
            && exec.filename.starts_with('/')
            && let Some(upper) = container.overlay.as_ref().and_then(|o| o.upper.as_ref())
            && let Ok(fd) = ProcFiles::open_in(upper, &exec.filename)
        {
            // the upper directory's inode is not the overlay's: no inode check here
            return self.hash_fd(fd, exec, "upperdir");
        }
        Err(HashError::Gone {
            pid: exec.pid,
            filename: exec.filename.clone(),
            ino: exec.ino,
        })
    }

    fn cwd(&self, pid: u32) -> Option<String> {
        let link = std::fs::read_link(self.proc.join(pid.to_string()).join("cwd")).ok()?;
        Some(link.to_string_lossy().into_owned())
    }
}

/// Decides on events with a policy (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Detector {
    pub policy: Policy,
}

impl Detector {
    pub fn new(policy: Policy) -> Detector {
        Detector { policy }
    }

    /// The decision on `event`, from the container it happened in and that container's
    /// profile (`None` when unknown); `files` reads the executed file when it must be
    /// hashed. [`Decision::latency`] is the time this took.
    pub fn decide(
        &self,
        event: &Event,
        container: Option<&Container>,
        profile: Option<&Profile>,
        files: &dyn ProcessFiles,
    ) -> Decision {
        let started = Instant::now();
        let mut d = match (event, container) {
            (Event::Dropped { count }, _) => Decision::new(
                Verdict::Dropped,
                Some(Rule::EventsDropped),
                Reason::KernelDrops { count: *count },
            ),
            (_, None) => Decision::new(Verdict::Unattributed, None, Reason::NoContainer),
            (Event::Exec(e), Some(c)) => self.exec(e, c, profile, files),
            (Event::Connect(e), Some(_)) => self.connect(e),
            (Event::OpenWrite(e), Some(_)) => self.open_write(e, files),
        };
        d.latency = started.elapsed();
        d
    }

    fn exec(
        &self,
        e: &Exec,
        c: &Container,
        profile: Option<&Profile>,
        files: &dyn ProcessFiles,
    ) -> Decision {
        if e.origin == FileOrigin::Lower {
            return Decision::new(Verdict::Expected, None, Reason::LowerLayer);
        }
        if let Some(pattern) = self.policy.allowed_exec(&e.filename) {
            return Decision::new(
                Verdict::Expected,
                None,
                Reason::Policy {
                    pattern: pattern.to_owned(),
                },
            );
        }
        let Some(profile) = profile else {
            return Decision::new(Verdict::Unprofiled, None, Reason::NoProfile);
        };
        let mut d = match files.hash_executed(e, c) {
            Ok(h) => {
                let mut d = match profile.find_hash(&h.sha256) {
                    Some(path) => Decision::new(
                        Verdict::Expected,
                        None,
                        Reason::CopyOfImageFile {
                            path: path.to_owned(),
                        },
                    ),
                    None => {
                        Decision::new(Verdict::Drift, Some(Rule::ExecDrift), Reason::NotInImage)
                    }
                };
                d.sha256 = Some(h.sha256);
                d.hashed_via = Some(h.via);
                d
            }
            Err(err) => Decision::new(
                Verdict::Drift,
                Some(Rule::ExecDrift),
                Reason::Unreadable {
                    error: err.to_string(),
                },
            ),
        };
        if d.verdict == Verdict::Drift && self.policy.enforces(c) {
            d.action = Action::Kill { pid: e.pid };
        }
        d
    }

    fn connect(&self, e: &Connect) -> Decision {
        let mut d = if e.blocked {
            Decision::new(
                Verdict::Alert,
                Some(Rule::ConnectOutsideProfile),
                Reason::NotAllowed,
            )
        } else if self.policy.allow_loopback && e.destination.ip().is_loopback() {
            Decision::new(Verdict::Expected, None, Reason::Loopback)
        } else if let Some(dst) = self
            .policy
            .allow_connect
            .iter()
            .find(|d| d.contains(&e.destination))
        {
            Decision::new(
                Verdict::Expected,
                None,
                Reason::Policy {
                    pattern: dst.to_string(),
                },
            )
        } else {
            Decision::new(
                Verdict::Alert,
                Some(Rule::ConnectOutsideProfile),
                Reason::NotAllowed,
            )
        };
        if e.blocked {
            d.action = Action::Blocked;
        }
        d
    }

    fn open_write(&self, e: &OpenWrite, files: &dyn ProcessFiles) -> Decision {
        let path = if e.path.starts_with('/') {
            e.path.clone()
        } else {
            match files.cwd(e.pid) {
                Some(cwd) => format!("{}/{}", cwd.trim_end_matches('/'), e.path),
                None => e.path.clone(),
            }
        };
        match self.policy.watched_write(&path) {
            Some(prefix) => Decision::new(
                Verdict::Alert,
                Some(Rule::WriteUnderWatchedPath),
                Reason::WatchedPrefix {
                    prefix: prefix.to_owned(),
                },
            ),
            None => Decision::new(Verdict::Expected, None, Reason::NotWatched),
        }
    }
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
    }
}
