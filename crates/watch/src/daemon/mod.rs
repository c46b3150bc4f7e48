//! The loop that joins the parts: what `berth watch` runs.
//!
//! [`Watch::start`] loads the probes (their errors as they are: not root, no BTF, no
//! cgroup2…), then [`Watch::run`]:
//!
//! 1. finds the running containers ([`Containers::rescan`] over [`Sources`]); for each one
//!    selected, builds its [`Profile`] from its overlay's lower directories (for `berth run`'s
//!    id-mapped layers, which overlayfs shows as `/proc/self/fd/N`, from the engine record's
//!    snapshot; for a bundle whose root is a plain directory, from that directory as it is
//!    when its profile is built: what the container wrote there before is in it), cached by
//!    that set of directories and built by a
//!    thread of its own (hashing a large image's executables takes seconds: the loop goes on
//!    deciding for the other containers, and the new one's events wait until its profile is
//!    ready); watches its cgroup; in enforce mode
//!    sets its connect policy (the `[watch]` policy's `allow_connect`, and loopback unless
//!    `allow_loopback = false`);
//! 2. the thread that runs it blocks in [`EventReader::next_events`] (poll(2) on the ring
//!    buffer, at most 100 ms) and takes what the ring buffer holds as one batch: one thread,
//!    no channel; after a batch it lets the next events gather for 3 ms, so that a stream of
//!    events costs ~330 wake-ups a second, not one or two per event (an event after a quiet spell is
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
//!    the kernel side also reports the execs and connects of cgroups not watched yet
//!    ([`ProbeOptions::unwatched`]), so that a container's first ones, made before
//!    its state file was read (`run` is create and start at once), are not missed: they are
//!    held (at most [`HELD_MAX`], for at most [`HOLD_FOR`], rescanning every 10 ms) until their
//!    cgroup turns out to be a container's, then judged (and killed) as if they had just
//!    arrived; the cgroups that do not, the host's own, are ignored by the kernel from then
//!    on, and so are those of containers not selected;
//! 6. [`StopHandle::stop`] (the CLI's SIGINT/SIGTERM) ends the loop within about 100 ms, once
//!    what the ring buffer still holds is reported; the
//!    probes are detached and their maps freed when the two halves are dropped. A tracefs
//!    mount the probes made at [`crate::probe::TRACEFS`] stays mounted (other tools share it).
//!
//! Opens for write are reported under the policy's `watch_writes` only (and relative paths,
//! which the kernel side cannot place): with none, the open tracepoints are not attached.
//!
//! Memory is bounded: a batch is at most what the ring buffer holds, the profile
//! cache [`WatchConfig::profile_cache`] profiles beyond the ones in use, the file-hash cache
//! [`crate::detect::HASH_CACHE_ENTRIES`] hashes.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use berth_errdefs::ErrorKind;
use serde_json::json;

use crate::containers::{Changes, Container, Containers, Sources};
use crate::detect::{Action, Detector, EnforceRule, Policy, ProcFiles};
use crate::event::Event;
use crate::output::{Clock, Counters, FalcoAlert, Record};
use crate::probe::{
    ALLOW_MAX, AllowedDestination, EventReader, ProbeControl, ProbeCounters, ProbeError,
    ProbeOptions, Probes,
};
use crate::profile::Profile;

mod follow;
mod kill;

use follow::{Inotify, Lookup, ProfileCache, ProfileKey};
use kill::{KillOutcome, kill_drift};

/// After a batch, how long the loop lets the next events gather before it reads again: at
/// most ~330 wake-ups a second in a storm, instead of one or two per event: at 1 ms, one exec
/// in a container every 0.7 ms cost `berth watch` 1,450 context switches and 90 ms of CPU per
/// 2,000 execs; at 3 ms, 500 and 45-70 ms (perf stat, release build). The price: an event in
/// a stream waits up to 3 ms more (one after a quiet spell is handled at once).
const COALESCE: Duration = Duration::from_millis(3);

/// The output buffer kept between batches.
const PENDING_KEEP: usize = 64 << 10;

/// How long the loop waits for events before it looks at inotify, timers and the stop flag.
const LOOP_WAIT: Duration = Duration::from_millis(100);
/// After an inotify event: rescan every [`BURST_EVERY`] for [`BURST_FOR`].
const BURST_EVERY: Duration = Duration::from_millis(50);
const BURST_FOR: Duration = Duration::from_millis(1500);
/// An event of an unknown cgroup rescans at most this often.
const UNKNOWN_RESCAN: Duration = Duration::from_secs(1);
/// How long the exec of a cgroup no container is known for is held, waiting for a rescan
/// to find its container (a runtime writes its state before it starts the container's
/// process: found by the first rescan after the exec).
pub const HOLD_FOR: Duration = Duration::from_millis(1500);
/// While execs are held, the loop wakes and rescans this often (the held drift of a
/// container just started is killed within about this long).
const HELD_RESCAN: Duration = Duration::from_millis(10);
/// At most this many such execs are held; beyond, the oldest are let go (and counted).
pub const HELD_MAX: usize = 4096;

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
    #[error("failed to start the thread that builds the containers' profiles")]
    Profiles { source: io::Error },
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
    building: Arc<AtomicUsize>,
}

impl Metrics {
    /// The Prometheus text exposition format: [`Counters::render`], the number of containers
    /// watched, and of those whose profile is being built.
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
        s.push_str(
            "# HELP berth_watch_profiles_building Watched containers whose profile is being built (their events wait).\n\
             # TYPE berth_watch_profiles_building gauge\n",
        );
        s.push_str(&format!(
            "berth_watch_profiles_building {}\n",
            self.building.load(Ordering::Relaxed)
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
        // a container's first execs are held until it is found, not missed
        config.probes.unwatched = true;
        if config.probes.write_prefixes.is_empty() {
            config.probes.write_prefixes = config
                .policy
                .watch_writes
                .iter()
                .map(PathBuf::from)
                .collect();
            // no watched path: no open tracepoint is attached at all (an empty list would
            // report every open for write, and attached tracepoints cost every open)
            if config.probes.write_prefixes.is_empty() {
                config.probes.opens = false;
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
            detector: Detector {
                host_mnt_ns: host_mount_namespace(&config.sources),
                ..Detector::new(config.policy.clone())
            },
            files: ProcFiles::new(&config.sources.proc),
            clock: Clock::now(),
            containers: Containers::default(),
            profiles: ProfileCache::new(config.profile_cache)
                .map_err(|source| WatchError::Profiles { source })?,
            watched: HashMap::new(),
            control,
            reader,
            metrics,
            inotify: Inotify::new().map_err(|source| WatchError::Inotify { source })?,
            pending: Vec::new(),
            held: VecDeque::new(),
            burst_until: None,
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

/// A watched container and its profile.
struct Watched {
    container: Container,
    profile: Option<Arc<Profile>>,
    /// What its profile is being built from: its events wait until it is.
    building: Option<ProfileKey>,
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
    /// Execs of cgroups not (yet) known to be a watched container's, oldest first, with
    /// when they arrived.
    held: VecDeque<(Instant, Event)>,
    /// Rescan every [`BURST_EVERY`] until then (a state directory changed).
    burst_until: Option<Instant>,
}

impl Loop {
    fn run(&mut self, out: &mut dyn Write, stop: &StopHandle) -> Result<(), WatchError> {
        self.rescan()?;
        tracing::info!(
            containers = self.watched.len(),
            "watching: the probes are attached, and containers started from now on are seen from their first exec"
        );
        let mut next_rescan = Instant::now() + self.config.rescan_every;
        let mut last_rescan = Instant::now();
        while !stop.is_stopped() {
            let events = self
                .reader
                .next_events(Some(if self.held.is_empty() {
                    LOOP_WAIT
                } else {
                    HELD_RESCAN
                }))
                .map_err(|e| WatchError::Events {
                    source: Box::new(e),
                })?;
            for event in &events {
                self.handle(event);
            }
            self.write_pending(out)?;
            if !events.is_empty() {
                // more may be coming (a storm): let them gather in the ring buffer for a
                // moment rather than waking up for each one. An event after a quiet spell is
                // still handled at once.
                std::thread::park_timeout(COALESCE);
            }
            let now = Instant::now();
            if self.inotify.changed() {
                self.burst_until = Some(now + BURST_FOR);
            }
            let burst = self.burst_until.is_some_and(|u| now < u);
            let since = now.duration_since(last_rescan);
            if now >= next_rescan
                || (burst && since >= BURST_EVERY)
                || (!self.held.is_empty() && since >= HELD_RESCAN)
            {
                self.rescan()?;
                last_rescan = now;
                next_rescan = now + self.config.rescan_every;
            }
            self.profiles_built();
            if !self.held.is_empty() {
                self.release_held(now);
            }
            self.write_pending(out)?;
        }
        // what happened before the stop and still waits in the ring buffer is reported too
        let events =
            self.reader
                .next_events(Some(Duration::ZERO))
                .map_err(|e| WatchError::Events {
                    source: Box::new(e),
                })?;
        for event in &events {
            self.handle(event);
        }
        self.profiles_built();
        self.release_held(Instant::now());
        self.write_pending(out)
    }

    /// Write (and flush) the lines decided since the last write, in one write.
    fn write_pending(&mut self, out: &mut dyn Write) -> Result<(), WatchError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        out.write_all(&self.pending)
            .and_then(|()| out.flush())
            .map_err(|source| WatchError::Output { source })?;
        self.pending.clear();
        // a storm's batch may have grown it: give the memory back
        self.pending.shrink_to(PENDING_KEEP);
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
        let (profile, building) = match self.profiles.get(&c, &self.config.sources) {
            Lookup::Ready(p) => (p, None),
            Lookup::Building(key) => (None, Some(key)),
        };
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
            profile = if building.is_some() { "building" } else if profile.is_some() { "ready" } else { "none" },
            sbom = c.sbom.as_ref().map_or("-", |s| s.manifest.as_str()),
            "watching container"
        );
        self.watched.insert(
            cgroup_id,
            Watched {
                container: c,
                profile,
                building,
            },
        );
        self.update_gauges();
        Ok(())
    }

    fn forget(&mut self, cgroup_id: u64) {
        if self
            .watched
            .get(&cgroup_id)
            .is_some_and(|w| w.building.is_some())
        {
            // gone before its profile was built: what it did is still reported (unprofiled)
            if let Some(w) = self.watched.get_mut(&cgroup_id) {
                w.building = None;
            }
            self.release_held(Instant::now());
        }
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
        self.update_gauges();
    }

    /// The containers watched and those whose profile is being built, for the metrics.
    fn update_gauges(&self) {
        let building = self
            .watched
            .values()
            .filter(|w| w.building.is_some())
            .count();
        self.metrics
            .watched
            .store(self.watched.len(), Ordering::Relaxed);
        self.metrics.building.store(building, Ordering::Relaxed);
    }

    fn forget_all(&mut self) {
        let ids: Vec<u64> = self.watched.keys().copied().collect();
        for id in ids {
            self.forget(id);
        }
    }

    fn handle(&mut self, event: &Event) {
        if let Some(cg) = event.cgroup_id() {
            match self.watched.get(&cg) {
                None => {
                    self.unwatched(cg, event);
                    return;
                }
                Some(w) if w.building.is_some() => {
                    self.hold(event);
                    return;
                }
                Some(_) => {}
            }
        }
        self.judge(event);
    }

    /// Keep an event until its container is found or its profile built (at most
    /// [`HELD_MAX`]: beyond, the oldest are let go and counted).
    fn hold(&mut self, event: &Event) {
        if self.held.len() >= HELD_MAX {
            self.held.pop_front();
            let lost = match self.metrics.counters.lock() {
                Ok(mut c) => {
                    c.held_lost += 1;
                    c.held_lost
                }
                Err(poisoned) => {
                    let mut c = poisoned.into_inner();
                    c.held_lost += 1;
                    c.held_lost
                }
            };
            if lost.is_power_of_two() {
                tracing::warn!(
                    lost,
                    max = HELD_MAX,
                    "events of cgroups not yet known to be a container's were let go undecided: too many waited at once"
                );
            }
        }
        self.held.push_back((Instant::now(), event.clone()));
    }

    /// The profiles built since the last look: their containers' held events are judged.
    fn profiles_built(&mut self) {
        let built = self.profiles.finished();
        if built.is_empty() {
            return;
        }
        for (key, profile) in built {
            for w in self.watched.values_mut() {
                if w.building.as_ref() == Some(&key) {
                    w.building = None;
                    w.profile = profile.clone();
                    let sbom = profile.as_ref().and_then(|p| p.sbom.as_ref());
                    tracing::info!(
                        container_id = %w.container.id,
                        executables = profile.as_ref().map_or(0, |p| p.executables.len()),
                        sbom = sbom.map_or("-", |s| s.manifest.as_str()),
                        sbom_files = sbom.map_or(0, |s| s.files.len()),
                        sbom_mismatched = sbom.map_or(0, |s| s.mismatched.len()),
                        "profile ready"
                    );
                }
            }
        }
        self.update_gauges();
        self.release_held(Instant::now());
    }

    /// An event of a cgroup not watched: an exec the kernel side reports because no one said
    /// to ignore its cgroup, or the last events of a container just forgotten. Judged at
    /// once when a rescan finds its container, else held.
    fn unwatched(&mut self, cg: u64, event: &Event) {
        if self.containers.by_cgroup(cg).is_none() {
            let (_, changes) = self
                .containers
                .resolve(cg, &self.config.sources, UNKNOWN_RESCAN);
            if let Some(changes) = changes
                && let Err(e) = self.apply(changes)
            {
                tracing::warn!(error = %berth_errdefs::error_chain(&e), "rescan failed");
            }
        }
        if self.watched.contains_key(&cg) {
            // found: what it did before comes first; then this (held instead when its
            // profile is being built)
            self.release_held(Instant::now());
            self.handle(event);
            return;
        }
        if let Some(c) = self.containers.by_cgroup(cg)
            && !self.selected(c)
        {
            self.ignore(cg);
            return;
        }
        self.hold(event);
    }

    /// After a rescan or a profile built: the held events whose cgroup is now a watched
    /// container's with its profile are judged; those of no container held longer than
    /// [`HOLD_FOR`] are let go, and their cgroups ignored.
    fn release_held(&mut self, now: Instant) {
        let held = std::mem::take(&mut self.held);
        for (at, event) in held {
            let Some(cg) = event.cgroup_id() else {
                continue;
            };
            match self.watched.get(&cg) {
                Some(w) if w.building.is_some() => self.held.push_back((at, event)),
                Some(_) => self.judge(&event),
                None if now.duration_since(at) < HOLD_FOR => self.held.push_back((at, event)),
                None => self.ignore(cg),
            }
        }
    }

    /// Tell the kernel side to stop reporting a cgroup's execs (no container of it is
    /// watched).
    fn ignore(&mut self, cg: u64) {
        if let Err(e) = self.control.ignore_cgroup(cg) {
            tracing::warn!(cgroup_id = cg, error = %berth_errdefs::error_chain(&e), "failed to ignore a cgroup");
        } else {
            tracing::debug!(cgroup_id = cg, "cgroup ignored: no watched container's");
        }
    }

    /// Decide on an event of a watched container (or one of no container: a drop), kill
    /// drift in enforce mode, and add its output line.
    fn judge(&mut self, event: &Event) {
        let watched = event.cgroup_id().and_then(|cg| self.watched.get(&cg));
        let container = watched.map(|w| &w.container);
        let profile = watched.and_then(|w| w.profile.as_deref());
        let decision = self.detector.decide(event, container, profile, &self.files);
        let mut kill = None;
        if let (Action::Kill { .. }, Event::Exec(e)) = (decision.action, event) {
            kill = Some(kill_drift(e, &self.config.sources.proc));
        }
        {
            let mut c = match self.metrics.counters.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            c.record(event, &decision);
            if matches!(kill, Some(KillOutcome::Killed { .. })) {
                c.killed();
            }
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

/// The host's mount namespace: pid 1's in the `/proc` watched, else berth watch's own (pid 1's
/// cannot always be read, even by root: a VM's init in a namespace of its own).
fn host_mount_namespace(sources: &Sources) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let init = sources.proc.join("1/ns/mnt");
    let own = sources.proc.join("self/ns/mnt");
    match std::fs::metadata(&init).or_else(|_| std::fs::metadata(&own)) {
        Ok(m) => Some(m.ino()),
        Err(e) => {
            tracing::warn!(path = %own.display(), error = %e, "the host's mount namespace is unknown: only the pid namespace tells a runtime's own execs in a container's cgroup");
            None
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
}
