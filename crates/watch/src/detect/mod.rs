//! The decision: is an event what the container's image says it does?
//!
//! - **exec**: a file from the image's lower layers ([`FileOrigin::Lower`]) is expected. A
//!   file from the upper layer or from outside the overlay is hashed (through the process'
//!   root, its executable, or the container's upper directory: [`ProcFiles`]) and looked up
//!   in the profile's content hashes: a copy of an image binary is expected, anything else
//!   is **drift** (rule [`Rule::ExecDrift`]), unless the policy allows its path. In enforce
//!   mode a drift comes with [`Action::Kill`]: the caller sends SIGKILL to the pid. A script
//!   (an [`Exec::interpreted`] exec, whose inode and origin are its interpreter's) is judged
//!   by its content found at its path, wherever it lies; an interpreter not from the image
//!   is judged first, as any binary.
//! - **connect**: to a destination outside the policy's allowed CIDRs and ports → an alert
//!   ([`Rule::ConnectOutsideProfile`]); loopback is allowed unless the policy says not.
//!   Blocking is the kernel's (`cgroup/connect4/6`, [`Policy::enforces`] says for whom); a
//!   blocked connect is reported with [`Action::Blocked`].
//! - **bind** to a port (a listener, or a UDP receiver): one the image declares
//!   (`ExposedPorts`, which the container's runtime config carries as the
//!   `org.opencontainers.image.exposedPorts` annotation: image-spec "conversion.md") or the
//!   policy's `allow_listen` allows is expected, loopback too unless the policy says not;
//!   another is an alert ([`Rule::ListenOutsideProfile`]: a bind shell, a miner's stratum
//!   proxy). A container whose runtime config does not say which ports its image declares is
//!   `unprofiled` for binds.
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
//! allow_listen = ["9090/tcp", "6000-6010"]                # beside the image's ExposedPorts
//! watch_writes = ["/etc", "/usr/bin", "/usr/sbin"]
//! enforce = [{ container = "web-*" }, { image = "registry.example/payments/*" }]
//! ```
//!
//! Every function here is pure but [`ProcFiles`], the one seam that reads a process' files.

mod files;
mod policy;

use std::time::{Duration, Instant};

use berth_oci::Digest;
use serde::Serialize;

pub use files::{HASH_CACHE_ENTRIES, HashError, HashedFile, ProcFiles, ProcessFiles};
pub use policy::{Destination, EnforceRule, ListenPorts, Policy, PolicyError, glob_match};

use crate::containers::Container;
use crate::event::{Bind, Connect, Event, Exec, FileOrigin, OpenWrite};
use crate::profile::Profile;

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
    ListenOutsideProfile,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ExecDrift => "exec_drift",
            Rule::ConnectOutsideProfile => "connect_outside_profile",
            Rule::WriteUnderWatchedPath => "write_under_watched_path",
            Rule::EventsDropped => "events_dropped",
            Rule::ListenOutsideProfile => "listen_outside_profile",
        }
    }

    pub const ALL: [Rule; 5] = [
        Rule::ExecDrift,
        Rule::ConnectOutsideProfile,
        Rule::WriteUnderWatchedPath,
        Rule::EventsDropped,
        Rule::ListenOutsideProfile,
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
    /// Its runtime, before the container was set up or as it entered it: it ran in a pid
    /// namespace above the container's, or in the host's mount namespace while the container
    /// has its own.
    Runtime,
    /// Its content is the image's executable at `path` (a copy under another name).
    CopyOfImageFile {
        path: String,
    },
    /// Its content is the image's executable at its own path (an unchanged file, or a
    /// script run from the image).
    ImageFile {
        path: String,
    },
    /// Its content is the executable at `path` of the image's signed SBOM (and in none of
    /// its layers).
    SbomFile {
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
    /// A port the image declares (`ExposedPorts`).
    DeclaredPort,
    /// A port the image does not declare, nor the policy allow.
    NotDeclared,
    /// The container's runtime config does not say which ports its image declares.
    NoDeclaredPorts,
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
    /// How the file was read for hashing (`root`, `exe`, `upperdir`, `init_root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashed_via: Option<&'static str>,
    /// For an interpreted exec, which file the decision is about: `interpreter` (one not
    /// from the image) or `script`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged: Option<&'static str>,
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
            judged: None,
            action: Action::None,
            latency: Duration::ZERO,
        }
    }

    /// Whether the decision raises an alert (a rule fired).
    pub fn is_alert(&self) -> bool {
        self.rule.is_some()
    }
}

/// Decides on events with a policy (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Detector {
    pub policy: Policy,
    /// The host's mount namespace (the inode number of `/proc/1/ns/mnt`, or of berth watch's
    /// own): see [`Reason::Runtime`]. `None`: no exec is told apart by it.
    pub host_mnt_ns: Option<u64>,
}

impl Detector {
    pub fn new(policy: Policy) -> Detector {
        Detector {
            policy,
            host_mnt_ns: None,
        }
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
            (Event::Bind(e), Some(c)) => self.bind(e, c),
        };
        d.latency = started.elapsed();
        d
    }

    /// Whether an exec in a container's cgroup is its runtime's, not the container's: runc
    /// re-executes itself from a memfd (CVE-2019-5736's fix) after its parent placed it in
    /// the container's cgroup, before it enters the container's namespaces (`runc create`'s
    /// init, `runc exec`'s process). The container's own processes can be in neither place:
    /// no process leaves its pid namespace for one above it, and none in the container's
    /// mount namespace can reach the host's (`unshare` makes new ones below). For a container
    /// without a pid namespace of its own (`hostPID`), only the mount namespace tells.
    fn is_runtime(&self, e: &Exec, c: &Container) -> bool {
        let above = c.pid_ns_level.is_some_and(|l| e.pid_ns_level < l);
        let host_mounts = self
            .host_mnt_ns
            .is_some_and(|h| e.mnt_ns == h && c.mnt_ns.is_some_and(|m| m != h));
        above || host_mounts
    }

    fn exec(
        &self,
        e: &Exec,
        c: &Container,
        profile: Option<&Profile>,
        files: &dyn ProcessFiles,
    ) -> Decision {
        if let Some(pattern) = self.policy.allowed_exec(&e.filename) {
            return Decision::new(
                Verdict::Expected,
                None,
                Reason::Policy {
                    pattern: pattern.to_owned(),
                },
            );
        }
        if self.is_runtime(e, c) {
            return Decision::new(Verdict::Expected, None, Reason::Runtime);
        }
        // an interpreted exec's inode and origin are the interpreter's; the script is judged
        // by its content, wherever it lies (its origin is unknown)
        if e.origin == FileOrigin::Lower && !e.interpreted {
            return Decision::new(Verdict::Expected, None, Reason::LowerLayer);
        }
        let Some(profile) = profile else {
            return Decision::new(Verdict::Unprofiled, None, Reason::NoProfile);
        };
        let mut d = if e.interpreted {
            let interpreter = (e.origin != FileOrigin::Lower)
                .then(|| judge(e, profile, files.hash_executed(e, c), Some("interpreter")))
                .filter(|d| d.verdict == Verdict::Drift);
            match interpreter {
                Some(d) => d,
                None => judge(e, profile, files.hash_script(e, c), Some("script")),
            }
        } else {
            judge(e, profile, files.hash_executed(e, c), None)
        };
        if d.verdict == Verdict::Drift && self.policy.enforces(c) {
            d.action = Action::Kill { pid: e.pid };
        }
        d
    }

    fn bind(&self, e: &Bind, c: &Container) -> Decision {
        let port = e.address.port();
        if let Some(p) = self
            .policy
            .allow_listen
            .iter()
            .find(|p| p.contains(port, e.stream))
        {
            return Decision::new(
                Verdict::Expected,
                None,
                Reason::Policy {
                    pattern: p.to_string(),
                },
            );
        }
        if self.policy.allow_loopback && e.address.ip().is_loopback() {
            return Decision::new(Verdict::Expected, None, Reason::Loopback);
        }
        let Some(declared) = &c.declared_ports else {
            return Decision::new(Verdict::Unprofiled, None, Reason::NoDeclaredPorts);
        };
        let proto = if e.stream { "tcp" } else { "udp" };
        if declared
            .iter()
            .any(|d| d.port == port && d.protocol == proto)
        {
            Decision::new(Verdict::Expected, None, Reason::DeclaredPort)
        } else {
            Decision::new(
                Verdict::Alert,
                Some(Rule::ListenOutsideProfile),
                Reason::NotDeclared,
            )
        }
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
        // `//etc/passwd` and `/tmp/../etc/passwd` are under `/etc` (a symlink is not followed)
        let path = if path.starts_with('/') {
            crate::event::clean_path(&path)
        } else {
            path
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

/// The decision on an executed file's hash: in the image (at its own path or another) or not.
fn judge(
    e: &Exec,
    profile: &Profile,
    hashed: Result<HashedFile, HashError>,
    judged: Option<&'static str>,
) -> Decision {
    let mut d = match hashed {
        Ok(h) => {
            let mut d = match profile.find_hash(&h.sha256) {
                Some(path) if path == e.filename => Decision::new(
                    Verdict::Expected,
                    None,
                    Reason::ImageFile {
                        path: path.to_owned(),
                    },
                ),
                Some(path) => Decision::new(
                    Verdict::Expected,
                    None,
                    Reason::CopyOfImageFile {
                        path: path.to_owned(),
                    },
                ),
                None => match profile.find_sbom_hash(&h.sha256) {
                    Some(path) => Decision::new(
                        Verdict::Expected,
                        None,
                        Reason::SbomFile {
                            path: path.to_owned(),
                        },
                    ),
                    None => {
                        Decision::new(Verdict::Drift, Some(Rule::ExecDrift), Reason::NotInImage)
                    }
                },
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
    d.judged = judged;
    d
}
