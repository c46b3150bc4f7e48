//! The loop that joins the parts: what `berth watch` runs.
//!
//! [`Watch::start`] loads the probes (their errors as they are: not root, no BTF, no
//! cgroup2…), then [`Watch::run`]:
//!
//! 1. finds the running containers ([`Containers::rescan`] over [`Sources`]); for each one
//!    selected, builds its [`Profile`] from its overlay's lower directories (for `berth run`'s
//!    id-mapped layers, which overlayfs shows as `/proc/self/fd/N`, from the engine record's
//!    snapshot; for a bundle whose root is a plain directory, from that directory as it is
//!    when the container is first seen), cached by that set of directories; watches its cgroup; in enforce mode
//!    sets its connect policy (the `[watch]` policy's `allow_connect`, and loopback unless
//!    `allow_loopback = false`);
//! 2. the thread that runs it blocks in [`EventReader::next_events`] (poll(2) on the ring
//!    buffer, at most 100 ms) and takes what the ring buffer holds as one batch: one thread,
//!    no channel; after a batch it lets the next events gather for 1 ms, so that a storm
//!    costs ~1,000 wake-ups a second, not one per event (an event after a quiet spell is
//!    handled at once); a slow writer backs up into the ring
//!    buffer, whose overflow the kernel side counts (memory stays bounded, nothing is lost
//!    silently);
//! 3. each event → its container → [`Detector::decide`] → one output line (a `berth.watch/v1`
//!    [`Record`] for every event, or a [`FalcoAlert`] for alerts only); a batch's lines are
//!    written and flushed together at its end; drops become `dropped` records;
//! 4. in enforce mode a drift exec is killed at once: `pidfd_open(pid)`, a check that the pid
//!    is still the process that made the exec (it started before the exec: a reused pid
//!    started after it), then `pidfd_send_signal(SIGKILL)` on that descriptor, so a pid
//!    recycled in between is never hit; the record's `details.kill` says `killed`,
//!    `exited` (gone before the signal) or `failed`, and `kill_us` the time from the exec
//!    to the signal;
//! 5. containers started later are picked up: an inotify watch on [`Sources::watch_dirs`]
//!    starts a burst of rescans (every 50 ms for 1.5 s: a runtime writes its state file after
//!    making the directory), a rescan every [`WatchConfig::rescan_every`] is the backstop,
//!    and an event of an unknown cgroup rescans (at most once a second); containers that
//!    exited are forgotten (unwatched, connect policy removed, their profile released);
//! 6. [`StopHandle::stop`] (the CLI's SIGINT/SIGTERM) ends the loop within about 100 ms; the
//!    probes are detached and their maps freed when the two halves are dropped. A tracefs
//!    mount the probes made at [`crate::probe::TRACEFS`] stays mounted (other tools share it).
//!
//! Opens for write are reported under the policy's `watch_writes` only (and relative paths,
//! which the kernel side cannot place): with none, the probes are given a prefix no path has.
//!
//! Memory is bounded: a batch is at most what the ring buffer holds, the profile
//! cache [`WatchConfig::profile_cache`] profiles beyond the ones in use, the file-hash cache
//! [`crate::detect::HASH_CACHE_ENTRIES`] hashes.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use berth_errdefs::ErrorKind;
use serde_json::{Value, json};

use crate::containers::{Changes, Container, Containers, RuntimeKind, Sources};
use crate::detect::{Action, Detector, EnforceRule, Policy, ProcFiles};
use crate::event::{Event, Exec};
use crate::output::{Clock, Counters, FalcoAlert, Record, boot_ns_now};
use crate::probe::{
    ALLOW_MAX, AllowedDestination, EventReader, ProbeControl, ProbeCounters, ProbeError,
    ProbeOptions, Probes,
};
use crate::profile::{ImageFacts, Profile};

/// A path prefix that no path has (a component holding NUL).
const NO_PATH: &str = "/\0";

/// After a batch, how long the loop lets the next events gather before it reads again: at
/// most ~1,000 wake-ups a second in a storm, instead of one per event.
const COALESCE: Duration = Duration::from_millis(1);

/// The output buffer kept between batches.
const PENDING_KEEP: usize = 64 << 10;

/// How long the loop waits for events before it looks at inotify, timers and the stop flag.
const LOOP_WAIT: Duration = Duration::from_millis(100);
/// After an inotify event: rescan every [`BURST_EVERY`] for [`BURST_FOR`].
const BURST_EVERY: Duration = Duration::from_millis(50);
const BURST_FOR: Duration = Duration::from_millis(1500);
/// An event of an unknown cgroup rescans at most this often.
const UNKNOWN_RESCAN: Duration = Duration::from_secs(1);

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `berth.watch/v1` JSON lines, one for every event.
    Json,
    /// Falco's `json_output` alerts, one for every alert.
    Falco,
}

/// What [`Watch`] watches and how.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub probes: ProbeOptions,
    pub sources: Sources,
    pub policy: Policy,
    /// Enforce every watched container (as a policy `enforce = [{ container = "**" }]`).
    pub enforce_all: bool,
    pub format: Format,
    /// Watch only the containers whose id, id prefix or name is one of these; empty: all.
    pub only: Vec<String>,
    /// The host name Falco alerts carry.
    pub hostname: String,
    /// The backstop rescan of the state directories.
    pub rescan_every: Duration,
    /// Profiles kept for containers no longer running (by their lower directories).
    pub profile_cache: usize,
}

impl WatchConfig {
    /// Watch every container of `sources` with the default probes and policy, JSON lines.
    pub fn new(sources: Sources) -> WatchConfig {
        WatchConfig {
            probes: ProbeOptions::default(),
            sources,
            policy: Policy::default(),
            enforce_all: false,
            format: Format::Json,
            only: Vec::new(),
            hostname: String::new(),
            rescan_every: Duration::from_secs(5),
            profile_cache: 32,
        }
    }
}

/// Why watching failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("failed to load the eBPF probes")]
    Probes { source: Box<ProbeError> },
    #[error("failed to watch container {id} (cgroup {cgroup_id})")]
    Container {
        id: String,
        cgroup_id: u64,
        source: Box<ProbeError>,
    },
    #[error("failed to read events from the eBPF probes")]
    Events { source: Box<ProbeError> },
    #[error("failed to write the output")]
    Output { source: io::Error },
    #[error("failed to set up inotify on the runtimes' state directories")]
    Inotify { source: io::Error },
}

impl WatchError {
    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WatchError::Probes { source }
            | WatchError::Container { source, .. }
            | WatchError::Events { source } => source.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

/// Stops a running [`Watch::run`] (from a signal handler's thread, say).
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The counters a metrics endpoint serves while [`Watch::run`] runs.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    counters: Arc<Mutex<Counters>>,
    watched: Arc<AtomicUsize>,
}

impl Metrics {
    /// The Prometheus text exposition format: [`Counters::render`], and the number of
    /// containers watched.
    pub fn render(&self) -> String {
        let mut s = match self.counters.lock() {
            Ok(c) => c.render(),
            Err(poisoned) => poisoned.into_inner().render(),
        };
        s.push_str(
            "# HELP berth_watch_containers Containers whose cgroups are watched now.\n\
             # TYPE berth_watch_containers gauge\n",
        );
        s.push_str(&format!(
            "berth_watch_containers {}\n",
            self.watched.load(Ordering::Relaxed)
        ));
        s
    }

    /// A copy of the counters now.
    pub fn counters(&self) -> Counters {
        match self.counters.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// What a finished [`Watch::run`] counted.
#[derive(Debug, Clone)]
pub struct Summary {
    pub counters: Counters,
    pub probes: ProbeCounters,
}

/// The loaded probes and what the loop needs; see the module documentation.
#[derive(Debug)]
pub struct Watch {
    config: WatchConfig,
    probes: Probes,
    stop: StopHandle,
    metrics: Metrics,
}

impl Watch {
    /// Load and attach the probes (no container is watched yet).
    pub fn start(mut config: WatchConfig) -> Result<Watch, WatchError> {
        if config.enforce_all {
            config.policy.enforce.push(EnforceRule {
                container: Some("**".to_owned()),
                image: None,
            });
        }
        if config.probes.write_prefixes.is_empty() {
            config.probes.write_prefixes = config
                .policy
                .watch_writes
                .iter()
                .map(PathBuf::from)
                .collect();
            // no watched path: the probes' filter gets a prefix no path has (an empty list
            // would report every open for write)
            if config.probes.write_prefixes.is_empty() {
                config.probes.write_prefixes.push(PathBuf::from(NO_PATH));
            }
        }
        let probes = Probes::load(config.probes.clone()).map_err(|e| WatchError::Probes {
            source: Box::new(e),
        })?;
        Ok(Watch {
            config,
            probes,
            stop: StopHandle::default(),
            metrics: Metrics::default(),
        })
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Watch until stopped (see the module documentation), writing to `out`.
    pub fn run(self, out: &mut dyn Write) -> Result<Summary, WatchError> {
        let Watch {
            config,
            probes,
            stop,
            metrics,
        } = self;
        let (control, reader) = probes.split();
        let mut state = Loop {
            detector: Detector::new(config.policy.clone()),
            files: ProcFiles::new(&config.sources.proc),
            clock: Clock::now(),
            containers: Containers::default(),
            profiles: ProfileCache::new(config.profile_cache),
            watched: HashMap::new(),
            control,
            reader,
            metrics,
            inotify: Inotify::new().map_err(|source| WatchError::Inotify { source })?,
            pending: Vec::new(),
            config,
        };
        let result = state.run(out, &stop);
        state.forget_all();
        result?;
        Ok(Summary {
            counters: state.metrics.counters(),
            probes: state.reader.counters(),
        })
    }
}

/// A watched container: its profile and whether it is enforced.
struct Watched {
    container: Container,
    profile: Option<Arc<Profile>>,
}

struct Loop {
    config: WatchConfig,
    detector: Detector,
    files: ProcFiles,
    clock: Clock,
    containers: Containers,
    profiles: ProfileCache,
    watched: HashMap<u64, Watched>,
    control: ProbeControl,
    reader: EventReader,
    metrics: Metrics,
    inotify: Inotify,
    /// The lines of the batch being handled, written at its end in one write.
    pending: Vec<u8>,
}

impl Loop {
    fn run(&mut self, out: &mut dyn Write, stop: &StopHandle) -> Result<(), WatchError> {
        self.rescan()?;
        let mut next_rescan = Instant::now() + self.config.rescan_every;
        let mut burst_until: Option<Instant> = None;
        let mut last_rescan = Instant::now();
        while !stop.is_stopped() {
            let events =
                self.reader
                    .next_events(Some(LOOP_WAIT))
                    .map_err(|e| WatchError::Events {
                        source: Box::new(e),
                    })?;
            for event in &events {
                self.handle(event);
            }
            if !self.pending.is_empty() {
                out.write_all(&self.pending)
                    .and_then(|()| out.flush())
                    .map_err(|source| WatchError::Output { source })?;
                self.pending.clear();
                // a storm's batch may have grown it: give the memory back
                self.pending.shrink_to(PENDING_KEEP);
            }
            if !events.is_empty() {
                // more may be coming (a storm): let them gather in the ring buffer for a
                // moment rather than waking up for each one. An event after a quiet spell is
                // still handled at once.
                std::thread::park_timeout(COALESCE);
            }
            let now = Instant::now();
            if self.inotify.changed() {
                burst_until = Some(now + BURST_FOR);
            }
            let burst = burst_until.is_some_and(|u| now < u);
            if now >= next_rescan || (burst && now.duration_since(last_rescan) >= BURST_EVERY) {
                self.rescan()?;
                last_rescan = now;
                next_rescan = now + self.config.rescan_every;
            }
        }
        Ok(())
    }

    fn rescan(&mut self) -> Result<(), WatchError> {
        let changes = self.containers.rescan(&self.config.sources);
        self.inotify.watch(&self.config.sources);
        self.apply(changes)
    }

    fn apply(&mut self, changes: Changes) -> Result<(), WatchError> {
        for problem in &changes.problems {
            tracing::debug!(error = %berth_errdefs::error_chain(problem), "a container could not be read");
        }
        for c in changes.removed {
            self.forget(c.cgroup_id);
        }
        for c in changes.added {
            if self.selected(&c)
                && let Err(e) = self.admit(c)
            {
                // one container the kernel maps refuse (full, say) does not stop the others
                tracing::error!(error = %berth_errdefs::error_chain(&e), "a container is not watched");
            }
        }
        Ok(())
    }

    fn selected(&self, c: &Container) -> bool {
        self.config.only.is_empty()
            || self
                .config
                .only
                .iter()
                .any(|s| c.id.starts_with(s.as_str()) || (!c.name.is_empty() && c.name == *s))
    }

    fn admit(&mut self, c: Container) -> Result<(), WatchError> {
        let cgroup_id = c.cgroup_id;
        let fail = |e| WatchError::Container {
            id: c.id.clone(),
            cgroup_id,
            source: Box::new(e),
        };
        let profile = self.profiles.get(&c, &self.config.sources);
        self.control.watch_cgroup(cgroup_id).map_err(fail)?;
        let enforced = self.detector.policy.enforces(&c);
        if enforced {
            let allow = allowed_destinations(&self.detector.policy);
            self.control
                .set_connect_policy(cgroup_id, true, &allow)
                .map_err(fail)?;
        }
        tracing::info!(
            container_id = %c.id,
            name = %c.name,
            runtime = c.runtime.as_str(),
            cgroup_id,
            enforced,
            executables = profile.as_ref().map_or(0, |p| p.executables.len()),
            "watching container"
        );
        self.watched.insert(
            cgroup_id,
            Watched {
                container: c,
                profile,
            },
        );
        self.metrics
            .watched
            .store(self.watched.len(), Ordering::Relaxed);
        Ok(())
    }

    fn forget(&mut self, cgroup_id: u64) {
        let Some(w) = self.watched.remove(&cgroup_id) else {
            return;
        };
        for (map, r) in [
            ("watched", self.control.unwatch_cgroup(cgroup_id)),
            ("policies", self.control.clear_connect_policy(cgroup_id)),
        ] {
            if let Err(e) = r {
                tracing::warn!(map, cgroup_id, error = %berth_errdefs::error_chain(&e), "failed to forget a container");
            }
        }
        tracing::info!(container_id = %w.container.id, cgroup_id, "container unwatched (exited, or watch stopping)");
        drop(w);
        self.profiles.trim();
        self.metrics
            .watched
            .store(self.watched.len(), Ordering::Relaxed);
    }

    fn forget_all(&mut self) {
        let ids: Vec<u64> = self.watched.keys().copied().collect();
        for id in ids {
            self.forget(id);
        }
    }

    fn handle(&mut self, event: &Event) {
        if let Some(cg) = event.cgroup_id()
            && !self.watched.contains_key(&cg)
            && self.containers.by_cgroup(cg).is_none()
        {
            let (_, changes) = self
                .containers
                .resolve(cg, &self.config.sources, UNKNOWN_RESCAN);
            if let Some(changes) = changes
                && let Err(e) = self.apply(changes)
            {
                tracing::warn!(error = %berth_errdefs::error_chain(&e), "rescan failed");
            }
        }
        let watched = event.cgroup_id().and_then(|cg| self.watched.get(&cg));
        let container = watched.map(|w| &w.container);
        let profile = watched.and_then(|w| w.profile.as_deref());
        let decision = self.detector.decide(event, container, profile, &self.files);
        let mut kill = None;
        if let (Action::Kill { .. }, Event::Exec(e)) = (decision.action, event) {
            kill = Some(kill_drift(e, &self.config.sources.proc));
        }
        match self.metrics.counters.lock() {
            Ok(mut c) => c.record(event, &decision),
            Err(poisoned) => poisoned.into_inner().record(event, &decision),
        }
        let now = SystemTime::now();
        let line = match self.config.format {
            Format::Json => {
                let mut r = Record::new(event, container, &decision, &self.clock, now);
                if let Some(k) = &kill {
                    k.annotate(&mut r.details);
                }
                Some(r.to_line())
            }
            Format::Falco => FalcoAlert::new(
                event,
                container,
                &decision,
                &self.clock,
                now,
                &self.config.hostname,
            )
            .map(|mut a| {
                if let Some(k) = &kill {
                    a.output_fields.insert("berth.kill", json!(k.outcome()));
                }
                a.to_line()
            }),
        };
        if let Some(k) = &kill {
            match k {
                KillOutcome::Failed { error, .. } => {
                    tracing::warn!(error = %error, "failed to kill a drifting process");
                }
                KillOutcome::Killed { after } | KillOutcome::Exited { after } => {
                    tracing::debug!(
                        after_us = after.as_micros(),
                        outcome = k.outcome(),
                        "drift kill"
                    );
                }
            }
        }
        if let Some(line) = line {
            self.pending.extend_from_slice(line.as_bytes());
        }
    }
}

/// The kernel's connect allow-list for an enforced container: the policy's destinations
/// (a port range expanded while the map has room, else every port of that prefix: the
/// user-space decision still alerts on the ports outside the range), and loopback unless
/// the policy says not.
fn allowed_destinations(policy: &Policy) -> Vec<AllowedDestination> {
    let mut allow = Vec::new();
    if policy.allow_loopback {
        for (addr, prefix_len) in [
            (std::net::IpAddr::from([127, 0, 0, 0]), 8),
            (std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
        ] {
            allow.push(AllowedDestination {
                addr,
                prefix_len,
                port: None,
            });
        }
    }
    for d in &policy.allow_connect {
        let (lo, hi) = d.ports;
        let ports = usize::from(hi.saturating_sub(lo)) + 1;
        if (lo, hi) == (0, u16::MAX) || allow.len() + ports > ALLOW_MAX {
            if (lo, hi) != (0, u16::MAX) {
                tracing::warn!(destination = %d, "port range too wide for the kernel's allow-list: every port of this prefix is let through (and still alerted on)");
            }
            allow.push(AllowedDestination {
                addr: d.addr,
                prefix_len: d.prefix,
                port: None,
            });
        } else {
            for port in lo..=hi {
                allow.push(AllowedDestination {
                    addr: d.addr,
                    prefix_len: d.prefix,
                    port: Some(port),
                });
            }
        }
    }
    if allow.len() > ALLOW_MAX {
        tracing::warn!(
            entries = allow.len(),
            max = ALLOW_MAX,
            "the connect allow-list is longer than the kernel's map: the last entries are dropped"
        );
        allow.truncate(ALLOW_MAX);
    }
    allow
}

/// What became of a drift kill.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KillOutcome {
    /// SIGKILL sent `after` the exec.
    Killed {
        after: Duration,
    },
    /// The process had exited (or its pid was reused) before the signal.
    Exited {
        after: Duration,
    },
    Failed {
        after: Duration,
        error: String,
    },
}

impl KillOutcome {
    fn outcome(&self) -> &'static str {
        match self {
            KillOutcome::Killed { .. } => "killed",
            KillOutcome::Exited { .. } => "exited",
            KillOutcome::Failed { .. } => "failed",
        }
    }

    fn annotate(&self, details: &mut serde_json::Map<String, Value>) {
        let after = match self {
            KillOutcome::Killed { after }
            | KillOutcome::Exited { after }
            | KillOutcome::Failed { after, .. } => after,
        };
        details.insert("kill".into(), json!(self.outcome()));
        details.insert(
            "kill_us".into(),
            json!(u64::try_from(after.as_micros()).unwrap_or(u64::MAX)),
        );
        if let KillOutcome::Failed { error, .. } = self {
            details.insert("kill_error".into(), json!(error));
        }
    }
}

/// SIGKILL to the process of a drift exec, through a pidfd so that a reused pid is never
/// signalled: the pidfd is opened, then the process it names must have started no later
/// than the exec (a pid reused after the exec's process exited started after it), then the
/// signal goes through the pidfd (to the process checked, or to none: ESRCH).
fn kill_drift(e: &Exec, proc: &Path) -> KillOutcome {
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
    let since = || Duration::from_nanos(boot_ns_now().saturating_sub(e.boot_ns));
    let Some(pid) = i32::try_from(e.pid).ok().and_then(Pid::from_raw) else {
        return KillOutcome::Failed {
            after: since(),
            error: format!("invalid pid {}", e.pid),
        };
    };
    let fd: OwnedFd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(Errno::SRCH) => return KillOutcome::Exited { after: since() },
        Err(err) => {
            return KillOutcome::Failed {
                after: since(),
                error: format!("pidfd_open({}): {err}", e.pid),
            };
        }
    };
    match started_ns(proc, e.pid) {
        // one clock tick of slack: the start time is counted in ticks
        Some(start) if start <= e.boot_ns.saturating_add(tick_ns()) => {}
        _ => return KillOutcome::Exited { after: since() },
    }
    match pidfd_send_signal(&fd, Signal::KILL) {
        Ok(()) => KillOutcome::Killed { after: since() },
        Err(Errno::SRCH) => KillOutcome::Exited { after: since() },
        Err(err) => KillOutcome::Failed {
            after: since(),
            error: format!("pidfd_send_signal({}, SIGKILL): {err}", e.pid),
        },
    }
}

fn tick_ns() -> u64 {
    1_000_000_000 / rustix::param::clock_ticks_per_second().max(1)
}

/// When a process started, in `CLOCK_BOOTTIME` nanoseconds (field 22 of `/proc/PID/stat`);
/// `None` when it is gone.
fn started_ns(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: u64 = rest.split_ascii_whitespace().nth(19)?.parse().ok()?;
    Some(ticks.saturating_mul(tick_ns()))
}

/// Profiles by the directories they were read from. The ones in use by a watched container
/// stay; up to `cap` others are kept for containers of the same image started later.
struct ProfileCache {
    cap: usize,
    by_dirs: HashMap<Vec<PathBuf>, Arc<Profile>>,
}

impl ProfileCache {
    fn new(cap: usize) -> ProfileCache {
        ProfileCache {
            cap,
            by_dirs: HashMap::new(),
        }
    }

    /// The profile of a container: of its overlay's lower directories, or of its bundle's
    /// root directory when its root is no overlay; `None` (every exec `unprofiled`) when
    /// neither can be read.
    fn get(&mut self, c: &Container, sources: &Sources) -> Option<Arc<Profile>> {
        let dirs = match &c.overlay {
            // id-mapped lower layers are given to overlayfs as `/proc/self/fd/N` of the
            // process that mounted them: the engine's snapshot says where they are
            Some(o) if o.lower.iter().any(|d| d.starts_with("/proc/self/fd")) => {
                snapshot_lower_dirs(c, sources)?
            }
            Some(o) if !o.lower.is_empty() => o.lower.clone(),
            _ => vec![bundle_root(c)?],
        };
        if let Some(p) = self.by_dirs.get(&dirs) {
            return Some(Arc::clone(p));
        }
        let started = Instant::now();
        match Profile::from_dirs(&dirs, ImageFacts::default()) {
            Ok(p) => {
                tracing::debug!(container_id = %c.id, executables = p.executables.len(), took_ms = started.elapsed().as_millis(), "profile built");
                let p = Arc::new(p);
                self.trim();
                self.by_dirs.insert(dirs, Arc::clone(&p));
                Some(p)
            }
            Err(e) => {
                tracing::warn!(container_id = %c.id, error = %berth_errdefs::error_chain(&e), "no profile: its execs are reported unprofiled");
                None
            }
        }
    }

    /// Drop unused profiles beyond the cap.
    fn trim(&mut self) {
        let unused = self
            .by_dirs
            .values()
            .filter(|p| Arc::strong_count(p) == 1)
            .count();
        if unused >= self.cap {
            self.by_dirs.retain(|_, p| Arc::strong_count(p) > 1);
        }
    }
}

/// The lower directories of a `berth run` container's snapshot, upper-most first, from its
/// engine record (`attachments.snapshot`: the snapshot store's root, driver and key).
fn snapshot_lower_dirs(c: &Container, sources: &Sources) -> Option<Vec<PathBuf>> {
    use berth_image::snapshot::{Driver, SnapshotStore, Snapshotter};
    if c.runtime != RuntimeKind::Berth {
        return None;
    }
    let record = sources
        .state_dirs
        .iter()
        .filter(|d| d.runtime == RuntimeKind::Berth)
        .map(|d| d.path.join("containers").join(&c.id).join("container.json"))
        .find_map(|p| std::fs::read(p).ok())?;
    let record: Value = serde_json::from_slice(&record).ok()?;
    let snap = record.get("attachments")?.get("snapshot")?;
    let (root, driver, key) = (
        snap.get("root")?.as_str()?,
        snap.get("driver")?.as_str()?,
        snap.get("key")?.as_str()?,
    );
    let driver = match driver {
        "native" => Driver::Native,
        _ => Driver::Overlay,
    };
    let store = SnapshotStore::open(root, driver)
        .map_err(|e| tracing::warn!(container_id = %c.id, root, error = %berth_errdefs::error_chain(&e), "failed to open the container's snapshot store"))
        .ok()?;
    let mounts = store
        .mounts(key)
        .map_err(|e| tracing::warn!(container_id = %c.id, key, error = %berth_errdefs::error_chain(&e), "failed to read the container's snapshot"))
        .ok()?;
    let dirs: Vec<PathBuf> = mounts.iter().flat_map(|m| m.lowerdirs()).collect();
    (!dirs.is_empty()).then_some(dirs)
}

/// `root.path` of a container's bundle `config.json`, resolved against the bundle.
fn bundle_root(c: &Container) -> Option<PathBuf> {
    let bundle = c.bundle.as_ref()?;
    let data = std::fs::read(bundle.join("config.json")).ok()?;
    let config: Value = serde_json::from_slice(&data).ok()?;
    let root = Path::new(config.get("root")?.get("path")?.as_str()?);
    let root = bundle.join(root);
    root.is_dir().then_some(root)
}

/// inotify on the runtimes' state directories: a change there means a container was
/// created or deleted. A directory that does not exist yet is watched once it does (it is
/// looked for again at each rescan).
struct Inotify {
    fd: OwnedFd,
    watched: HashSet<PathBuf>,
}

impl Inotify {
    fn new() -> io::Result<Inotify> {
        use rustix::fs::inotify::{CreateFlags, init};
        let fd = init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        Ok(Inotify {
            fd,
            watched: HashSet::new(),
        })
    }

    fn watch(&mut self, sources: &Sources) {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        let mut dirs = sources.watch_dirs();
        for d in sources.state_dirs.iter().filter(|d| d.namespaced) {
            if let Ok(rd) = std::fs::read_dir(&d.path) {
                dirs.extend(rd.filter_map(Result::ok).map(|e| e.path()));
            }
        }
        for dir in dirs {
            if self.watched.contains(&dir) || !dir.is_dir() {
                continue;
            }
            let flags = WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MOVED_TO
                | WatchFlags::MOVED_FROM
                | WatchFlags::ONLYDIR;
            match add_watch(&self.fd, &dir, flags) {
                Ok(_) => {
                    tracing::debug!(dir = %dir.display(), "inotify watch");
                    self.watched.insert(dir);
                }
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "no inotify watch (the periodic rescan covers it)");
                }
            }
        }
    }

    /// Whether anything changed since the last call (the queue is emptied).
    fn changed(&mut self) -> bool {
        use std::mem::MaybeUninit;
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut changed = false;
        loop {
            let mut reader = rustix::fs::inotify::Reader::new(&self.fd, &mut buf);
            match reader.next() {
                Ok(_) => changed = true,
                Err(_) => return changed,
            }
            // the rest of this read's events
            while reader.next().is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Destination;

    #[test]
    fn allow_list_expands_small_port_ranges_and_adds_loopback() {
        let mut policy = Policy {
            allow_connect: vec![
                Destination::parse("10.0.0.0/8:8000-8002").unwrap(),
                Destination::parse("192.0.2.1/32").unwrap(),
            ],
            ..Policy::default()
        };
        let allow = allowed_destinations(&policy);
        assert_eq!(allow.len(), 2 + 3 + 1, "{allow:?}");
        assert_eq!(allow[2].port, Some(8000));
        assert_eq!(allow[4].port, Some(8002));
        assert_eq!(allow[5].port, None);
        policy.allow_loopback = false;
        policy.allow_connect = vec![Destination::parse("10.0.0.0/8:1000-2000").unwrap()];
        let allow = allowed_destinations(&policy);
        assert_eq!(allow.len(), 1, "a wide range is the whole prefix");
        assert_eq!(allow[0].port, None);
    }

    fn exec_of(pid: u32, boot_ns: u64) -> Exec {
        Exec {
            cgroup_id: 0,
            pid,
            ppid: std::process::id(),
            uid: 0,
            boot_ns,
            filename: "/bin/sleep".into(),
            argv: vec!["sleep".into(), "60".into()],
            argv_truncated: false,
            interpreted: false,
            ino: 0,
            dev: 0,
            origin: crate::event::FileOrigin::NotOverlay,
        }
    }

    #[test]
    fn kill_drift_never_signals_a_process_started_after_the_exec() {
        let proc = Path::new("/proc");
        let before = boot_ns_now();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        // an exec event older than the process (as for a pid reused since): not signalled
        let stale = before.saturating_sub(10 * tick_ns() + 1_000_000_000);
        assert!(matches!(
            kill_drift(&exec_of(pid, stale), proc),
            KillOutcome::Exited { .. }
        ));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the newer process was killed"
        );
        // the exec of this very process: killed by SIGKILL
        let exec_ns = boot_ns_now();
        let outcome = kill_drift(&exec_of(pid, exec_ns), proc);
        assert!(matches!(outcome, KillOutcome::Killed { .. }), "{outcome:?}");
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // gone (its exec's time again: a pid reused since started after it): exited
        let outcome = kill_drift(&exec_of(pid, exec_ns), proc);
        assert!(matches!(outcome, KillOutcome::Exited { .. }), "{outcome:?}");
    }

    #[test]
    fn start_time_of_this_process_is_before_now() {
        let start = started_ns(Path::new("/proc"), std::process::id()).unwrap();
        assert!(start <= boot_ns_now(), "{start}");
        assert_eq!(started_ns(Path::new("/proc"), u32::MAX), None);
    }
}
