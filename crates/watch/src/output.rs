//! What `berth watch` writes: JSON lines of a stable schema, Falco-compatible alerts, and
//! Prometheus counters.
//!
//! **`berth.watch/v1`** ([`Record`]), one JSON object a line, for every event decided:
//!
//! ```json
//! {"schema":"berth.watch/v1","time":"2026-12-05T07:25:53.012010417Z","kind":"exec",
//!  "container":{"id":"…","name":"web","runtime":"berth","image":"docker.io/library/nginx:1.27"},
//!  "process":{"pid":4242,"ppid":4200,"uid":0,"exe":"/tmp/miner","argv":["/tmp/miner","-o","pool"]},
//!  "verdict":"drift","rule":"exec_drift",
//!  "details":{"reason":"not_in_image","origin":"upper","sha256":"sha256:…","hashed_via":"root",
//!             "action":{"type":"kill","pid":4242},"decision_us":41,"age_us":180}}
//! ```
//!
//! - `time`: RFC 3339 in UTC with nanoseconds (trailing zeros trimmed), when the kernel saw
//!   the event ([`Clock`] maps the probes' boot-time clock to the wall clock).
//! - `kind`: `exec`, `open_write`, `connect`, `dropped`.
//! - `container`: `null` for a process in no known container; `name` and `image` are `""`
//!   when unknown.
//! - `process`: `exe` and `argv` only for `exec` (`null` otherwise); `ppid` only for `exec`.
//! - `verdict`: `expected`, `drift`, `alert`, `dropped`, `unattributed`, `unprofiled`.
//! - `rule`: `exec_drift`, `connect_outside_profile`, `write_under_watched_path`,
//!   `events_dropped`, or `null` when no rule fired.
//! - `details.reason`: why (`lower_layer`, `image_file` and `copy_of_image_file` with `path`,
//!   `sbom_file` with `path` (the content of an executable the image's signed SBOM lists),
//!   `not_in_image`, `unreadable` with `error`, `policy` with `pattern`, `loopback`,
//!   `not_allowed`, `watched_prefix` with `prefix`, `not_watched`, `no_container`,
//!   `no_profile`, `kernel_drops` with `count`); then the event's own fields (`origin`, `ino`,
//!   `argv_truncated`, `interpreted` for exec, and `judged` — `script` or `interpreter` —
//!   for an interpreted one; `destination`, `protocol`, `blocked` for connect; `path`,
//!   `flags` for open_write), `sha256` and `hashed_via` when a file was hashed, `action`
//!   (`{"type":"none"}`, `{"type":"kill","pid":N}`, `{"type":"blocked"}`), `decision_us`
//!   (the time the decision took, hashing included) and `age_us` (from the kernel's event to
//!   the record: the exec-to-alert latency; not for `dropped`).
//!
//! New fields may be added to `details`; nothing is renamed or removed within `v1`.
//!
//! **Falco** ([`FalcoAlert`]): the JSON Falco writes with `json_output: true` (`output`,
//! `priority`, `rule`, `time`, `source: "syscall"`, `tags`, `hostname`, `output_fields` with
//! Falco's field names: `evt.time`, `evt.type`, `container.id` (12 characters, as Falco),
//! `container.name`, `container.image.repository`, `container.image.tag`, `proc.pid`,
//! `proc.ppid`, `proc.name`, `proc.exepath`, `proc.cmdline`, `proc.exe_ino`,
//! `proc.is_exe_upper_layer`, `user.uid`, `fd.name`, `fd.rip`, `fd.rport`, `fd.l4proto`),
//! for alerts only, so that falcosidekick and the sinks behind it take them as they are.
//!
//! **Prometheus** ([`Counters`]): the text exposition format, every series always present.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::containers::Container;
use crate::detect::{Decision, Rule, Verdict};
use crate::event::{Event, FileOrigin};

/// The `schema` of every [`Record`].
pub const RECORD_SCHEMA: &str = "berth.watch/v1";

/// Maps the probes' `CLOCK_BOOTTIME` nanoseconds to wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Wall-clock nanoseconds since the epoch at boot time 0.
    boot_epoch_ns: i128,
}

impl Clock {
    /// Sampled now (both clocks read back to back).
    pub fn now() -> Clock {
        let boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let boot_ns = i128::from(boot.tv_sec) * 1_000_000_000 + i128::from(boot.tv_nsec);
        Clock {
            boot_epoch_ns: i128::try_from(wall).unwrap_or(0) - boot_ns,
        }
    }

    /// A clock where boot time 0 is `boot` (for replays and tests).
    pub fn booted_at(boot: SystemTime) -> Clock {
        let ns = boot
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Clock {
            boot_epoch_ns: i128::try_from(ns).unwrap_or(0),
        }
    }

    /// The wall-clock time of `boot_ns`.
    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        let ns = (self.boot_epoch_ns + i128::from(boot_ns)).max(0);
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        UNIX_EPOCH + Duration::from_nanos(ns)
    }

    /// Nanoseconds since the epoch of `boot_ns`.
    pub fn epoch_ns(&self, boot_ns: u64) -> u64 {
        u64::try_from((self.boot_epoch_ns + i128::from(boot_ns)).max(0)).unwrap_or(u64::MAX)
    }
}

/// `CLOCK_BOOTTIME` now, in nanoseconds (the probes' clock): exec-to-decision latency is
/// `boot_ns_now() - event.boot_ns`.
pub fn boot_ns_now() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
}

/// `container` of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub runtime: &'static str,
    pub image: String,
}

/// `process` of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRef {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub uid: u32,
    pub exe: Option<String>,
    pub argv: Option<Vec<String>>,
}

/// One line of `berth.watch/v1` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub schema: &'static str,
    pub time: String,
    pub kind: &'static str,
    pub container: Option<ContainerRef>,
    pub process: Option<ProcessRef>,
    pub verdict: Verdict,
    pub rule: Option<Rule>,
    pub details: Map<String, Value>,
}

fn kind_of(e: &Event) -> &'static str {
    match e {
        Event::Exec(_) => "exec",
        Event::OpenWrite(_) => "open_write",
        Event::Connect(_) => "connect",
        Event::Bind(_) => "bind",
        Event::Dropped { .. } => "dropped",
    }
}

fn boot_ns_of(e: &Event) -> Option<u64> {
    match e {
        Event::Exec(e) => Some(e.boot_ns),
        Event::OpenWrite(e) => Some(e.boot_ns),
        Event::Connect(e) => Some(e.boot_ns),
        Event::Bind(e) => Some(e.boot_ns),
        Event::Dropped { .. } => None,
    }
}

fn origin_str(o: FileOrigin) -> &'static str {
    match o {
        FileOrigin::Lower => "lower",
        FileOrigin::Upper => "upper",
        FileOrigin::NotOverlay => "not_overlay",
    }
}

impl Record {
    /// The record of `event`, decided as `decision`, in `container`, written at `now`. A
    /// [`Event::Dropped`] carries no time of its own: it gets `now`.
    pub fn new(
        event: &Event,
        container: Option<&Container>,
        decision: &Decision,
        clock: &Clock,
        now: SystemTime,
    ) -> Record {
        let time = boot_ns_of(event).map_or(now, |ns| clock.wall(ns));
        let mut details = match serde_json::to_value(decision) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        // the verdict and the rule are top-level fields
        details.remove("verdict");
        details.remove("rule");
        details.insert(
            "decision_us".into(),
            json!(u64::try_from(decision.latency.as_micros()).unwrap_or(u64::MAX)),
        );
        if boot_ns_of(event).is_some() {
            // from the kernel's event to this record: exec-to-alert latency
            let age = now.duration_since(time).unwrap_or_default();
            details.insert(
                "age_us".into(),
                json!(u64::try_from(age.as_micros()).unwrap_or(u64::MAX)),
            );
        }
        let process = match event {
            Event::Exec(e) => {
                details.insert("origin".into(), json!(origin_str(e.origin)));
                details.insert("ino".into(), json!(e.ino));
                details.insert("argv_truncated".into(), json!(e.argv_truncated));
                details.insert("interpreted".into(), json!(e.interpreted));
                Some(ProcessRef {
                    pid: e.pid,
                    ppid: Some(e.ppid),
                    uid: e.uid,
                    exe: Some(e.filename.clone()),
                    argv: Some(e.argv.clone()),
                })
            }
            Event::Connect(e) => {
                details.insert("destination".into(), json!(e.destination.to_string()));
                details.insert(
                    "protocol".into(),
                    json!(if e.stream { "tcp" } else { "udp" }),
                );
                details.insert("blocked".into(), json!(e.blocked));
                Some(ProcessRef {
                    pid: e.pid,
                    ppid: None,
                    uid: e.uid,
                    exe: None,
                    argv: None,
                })
            }
            Event::Bind(e) => {
                details.insert("address".into(), json!(e.address.to_string()));
                details.insert(
                    "protocol".into(),
                    json!(if e.stream { "tcp" } else { "udp" }),
                );
                Some(ProcessRef {
                    pid: e.pid,
                    ppid: None,
                    uid: e.uid,
                    exe: None,
                    argv: None,
                })
            }
            Event::OpenWrite(e) => {
                details.insert("path".into(), json!(e.path));
                details.insert("flags".into(), json!(e.flags));
                Some(ProcessRef {
                    pid: e.pid,
                    ppid: None,
                    uid: e.uid,
                    exe: None,
                    argv: None,
                })
            }
            Event::Dropped { .. } => None,
        };
        Record {
            schema: RECORD_SCHEMA,
            time: berth_oci::timefmt::rfc3339_nano(time),
            kind: kind_of(event),
            container: container.map(|c| ContainerRef {
                id: c.id.clone(),
                name: c.name.clone(),
                runtime: c.runtime.as_str(),
                image: c.image.clone(),
            }),
            process,
            verdict: decision.verdict,
            rule: decision.rule,
            details,
        }
    }

    /// The record as one line of JSON (with its `\n`).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Falco's priorities, as its JSON output spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

/// How each rule shows in Falco's format: its name, priority and tags.
pub fn falco_rule(rule: Rule) -> (&'static str, Priority, &'static [&'static str]) {
    match rule {
        Rule::ExecDrift => (
            "Drift: exec of a file not in the image",
            Priority::Critical,
            &[
                "berth",
                "container",
                "drift",
                "mitre_persistence",
                "process",
                "TA0003",
            ],
        ),
        Rule::ConnectOutsideProfile => (
            "Outbound connection outside the profile",
            Priority::Warning,
            &[
                "berth",
                "container",
                "mitre_command_and_control",
                "network",
                "TA0011",
            ],
        ),
        Rule::WriteUnderWatchedPath => (
            "Write below a watched directory",
            Priority::Error,
            &[
                "berth",
                "container",
                "filesystem",
                "mitre_persistence",
                "TA0003",
            ],
        ),
        Rule::EventsDropped => (
            "Events dropped by the kernel side",
            Priority::Critical,
            &["berth", "internal"],
        ),
        Rule::ListenOutsideProfile => (
            "Listening on a port the image does not declare",
            Priority::Warning,
            &[
                "berth",
                "container",
                "mitre_command_and_control",
                "network",
                "TA0011",
            ],
        ),
    }
}

/// Falco's fields of a socket event: `evt.type`, `proc.pid`, `user.uid`, `fd.name`, the
/// address and port under `keys` (`fd.rip`/`fd.rport` for the remote end of a connect,
/// `fd.sip`/`fd.sport` for the server end of a bind) and `fd.l4proto`, which it returns.
fn socket_fields(
    f: &mut BTreeMap<&'static str, Value>,
    (evt_type, pid, uid): (&'static str, u32, u32),
    addr: std::net::SocketAddr,
    stream: bool,
    keys: (&'static str, &'static str),
) -> &'static str {
    let proto = if stream { "tcp" } else { "udp" };
    f.insert("evt.type", json!(evt_type));
    f.insert("proc.pid", json!(pid));
    f.insert("user.uid", json!(uid));
    f.insert("fd.name", json!(addr.to_string()));
    f.insert(keys.0, json!(addr.ip().to_string()));
    f.insert(keys.1, json!(addr.port()));
    f.insert("fd.l4proto", json!(proto));
    proto
}

/// One alert as Falco's `json_output` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalcoAlert {
    pub hostname: String,
    pub output: String,
    pub priority: Priority,
    pub rule: &'static str,
    pub source: &'static str,
    pub tags: Vec<&'static str>,
    /// RFC 3339, UTC, nine fraction digits (as Falco).
    pub time: String,
    pub output_fields: BTreeMap<&'static str, Value>,
}

/// `2006-01-02T15:04:05.000000000Z`, as Falco writes `time`.
fn falco_time(t: SystemTime) -> String {
    let second = berth_oci::timefmt::rfc3339(t);
    let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}.{nanos:09}Z", second.trim_end_matches('Z'))
}

/// `repository` and `tag` of an image reference (`registry/repo:tag`, `repo@sha256:…`).
fn split_image(image: &str) -> (Option<String>, Option<String>) {
    if image.is_empty() {
        return (None, None);
    }
    if let Some((repo, digest)) = image.split_once('@') {
        return (Some(repo.to_owned()), Some(digest.to_owned()));
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            Some(image[..slash + i].to_owned()),
            Some(image[slash + i + 1..].to_owned()),
        ),
        None => (Some(image.to_owned()), None),
    }
}

fn or_null(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

impl FalcoAlert {
    /// The Falco alert for `decision` on `event`, or `None` when no rule fired.
    pub fn new(
        event: &Event,
        container: Option<&Container>,
        decision: &Decision,
        clock: &Clock,
        now: SystemTime,
        hostname: &str,
    ) -> Option<FalcoAlert> {
        let rule = decision.rule?;
        let (name, priority, tags) = falco_rule(rule);
        let time = boot_ns_of(event).map_or(now, |ns| clock.wall(ns));
        let mut f: BTreeMap<&'static str, Value> = BTreeMap::new();
        let epoch_ns = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        f.insert("evt.time", json!(epoch_ns));
        let (repo, tag) = split_image(container.map_or("", |c| c.image.as_str()));
        if let Some(c) = container {
            let short: String = c.id.chars().take(12).collect();
            f.insert("container.id", json!(short));
            f.insert("container.full_id", json!(c.id));
            f.insert("container.name", or_null(&c.name));
            f.insert("container.image.repository", json!(repo));
            f.insert("container.image.tag", json!(tag));
        } else {
            f.insert("container.id", json!("host"));
        }
        let mut what = String::new();
        match event {
            Event::Exec(e) => {
                let proc_name = e.filename.rsplit('/').next().unwrap_or(&e.filename);
                let mut cmdline = proc_name.to_owned();
                for a in e.argv.iter().skip(1) {
                    cmdline.push(' ');
                    cmdline.push_str(a);
                }
                f.insert("evt.type", json!("execve"));
                f.insert("proc.pid", json!(e.pid));
                f.insert("proc.ppid", json!(e.ppid));
                f.insert("proc.name", json!(proc_name));
                f.insert("proc.exepath", json!(e.filename));
                f.insert("proc.cmdline", json!(cmdline));
                f.insert("proc.exe_ino", json!(e.ino));
                f.insert(
                    "proc.is_exe_upper_layer",
                    json!(e.origin == FileOrigin::Upper),
                );
                f.insert("user.uid", json!(e.uid));
                let _ = write!(
                    what,
                    "Executable not shipped by the image was run (proc_exepath={} proc_cmdline={} origin={}",
                    e.filename,
                    cmdline,
                    origin_str(e.origin)
                );
                if let Some(d) = &decision.sha256 {
                    f.insert("berth.sha256", json!(d.as_str()));
                    let _ = write!(what, " sha256={d}");
                }
            }
            Event::Connect(e) => {
                let proto = socket_fields(
                    &mut f,
                    ("connect", e.pid, e.uid),
                    e.destination,
                    e.stream,
                    ("fd.rip", "fd.rport"),
                );
                let _ = write!(
                    what,
                    "Outbound connection outside the profile (connection={} proto={proto} blocked={}",
                    e.destination, e.blocked
                );
            }
            Event::Bind(e) => {
                let proto = socket_fields(
                    &mut f,
                    ("bind", e.pid, e.uid),
                    e.address,
                    e.stream,
                    ("fd.sip", "fd.sport"),
                );
                let _ = write!(
                    what,
                    "Bind to a port the image does not declare (address={} proto={proto}",
                    e.address
                );
            }
            Event::OpenWrite(e) => {
                f.insert("evt.type", json!("openat"));
                f.insert("proc.pid", json!(e.pid));
                f.insert("user.uid", json!(e.uid));
                f.insert("fd.name", json!(e.path));
                f.insert("evt.arg.flags", json!(e.flags));
                let _ = write!(
                    what,
                    "File opened for writing below a watched directory (file={}",
                    e.path
                );
            }
            Event::Dropped { count } => {
                f.insert("evt.type", json!("drop"));
                f.insert("berth.dropped", json!(count));
                let _ = write!(what, "Events dropped by the kernel side (count={count}");
            }
        }
        if let Some(c) = container {
            let _ = write!(
                what,
                " container_id={} container_name={} image={})",
                c.id.chars().take(12).collect::<String>(),
                if c.name.is_empty() { "<NA>" } else { &c.name },
                if c.image.is_empty() { "<NA>" } else { &c.image },
            );
        } else {
            what.push_str(" container_id=host)");
        }
        // Falco's text: "HH:MM:SS.nnnnnnnnn: Priority message"
        let t = falco_time(time);
        let clock_part = t.get(11..29).unwrap_or("");
        let output = format!("{clock_part}: {priority:?} {what}");
        // Falco keeps a rule's tags in a std::set: sorted bytewise
        let mut tags = tags.to_vec();
        tags.sort_unstable();
        Some(FalcoAlert {
            hostname: hostname.to_owned(),
            output,
            priority,
            rule: name,
            source: "syscall",
            tags,
            time: t,
            output_fields: f,
        })
    }

    /// The alert as one line of JSON (with its `\n`).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Prometheus counters: events by kind, alerts by rule, drops, kills.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub events: BTreeMap<&'static str, u64>,
    pub alerts: BTreeMap<Rule, u64>,
    pub verdicts: BTreeMap<&'static str, u64>,
    pub dropped: u64,
    pub kills: u64,
    /// Execs of cgroups not yet known to be a container's, let go undecided because more
    /// than [`crate::daemon::HELD_MAX`] waited at once.
    pub held_lost: u64,
}

const KINDS: [&str; 5] = ["exec", "open_write", "connect", "bind", "dropped"];

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Expected => "expected",
        Verdict::Drift => "drift",
        Verdict::Alert => "alert",
        Verdict::Dropped => "dropped",
        Verdict::Unattributed => "unattributed",
        Verdict::Unprofiled => "unprofiled",
    }
}

const VERDICTS: [Verdict; 6] = [
    Verdict::Expected,
    Verdict::Drift,
    Verdict::Alert,
    Verdict::Dropped,
    Verdict::Unattributed,
    Verdict::Unprofiled,
];

impl Counters {
    /// Count one decided event.
    pub fn record(&mut self, event: &Event, decision: &Decision) {
        *self.events.entry(kind_of(event)).or_default() += 1;
        *self
            .verdicts
            .entry(verdict_str(decision.verdict))
            .or_default() += 1;
        if let Some(rule) = decision.rule {
            *self.alerts.entry(rule).or_default() += 1;
        }
        if let Event::Dropped { count } = event {
            self.dropped = self.dropped.saturating_add(*count);
        }
    }

    /// Count one drifting process killed (not a kill decided for a process that had
    /// already exited).
    pub fn killed(&mut self) {
        self.kills += 1;
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "# HELP berth_watch_events_total Events received from the kernel side, by kind.\n",
        );
        s.push_str("# TYPE berth_watch_events_total counter\n");
        for k in KINDS {
            let n = self.events.get(k).copied().unwrap_or(0);
            let _ = writeln!(s, "berth_watch_events_total{{kind=\"{k}\"}} {n}");
        }
        s.push_str("# HELP berth_watch_verdicts_total Decided events, by verdict.\n");
        s.push_str("# TYPE berth_watch_verdicts_total counter\n");
        for v in VERDICTS {
            let v = verdict_str(v);
            let n = self.verdicts.get(v).copied().unwrap_or(0);
            let _ = writeln!(s, "berth_watch_verdicts_total{{verdict=\"{v}\"}} {n}");
        }
        s.push_str("# HELP berth_watch_alerts_total Alerts raised, by rule.\n");
        s.push_str("# TYPE berth_watch_alerts_total counter\n");
        for r in Rule::ALL {
            let n = self.alerts.get(&r).copied().unwrap_or(0);
            let _ = writeln!(s, "berth_watch_alerts_total{{rule=\"{}\"}} {n}", r.as_str());
        }
        s.push_str("# HELP berth_watch_dropped_events_total Events the kernel side could not deliver (ring buffer full).\n");
        s.push_str("# TYPE berth_watch_dropped_events_total counter\n");
        let _ = writeln!(s, "berth_watch_dropped_events_total {}", self.dropped);
        s.push_str("# HELP berth_watch_kills_total Processes killed for drift in enforce mode.\n");
        s.push_str("# TYPE berth_watch_kills_total counter\n");
        let _ = writeln!(s, "berth_watch_kills_total {}", self.kills);
        s.push_str("# HELP berth_watch_held_lost_total Execs of cgroups not yet known to be a container's, let go undecided (too many waited at once).\n");
        s.push_str("# TYPE berth_watch_held_lost_total counter\n");
        let _ = writeln!(s, "berth_watch_held_lost_total {}", self.held_lost);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_repository_and_tag() {
        assert_eq!(
            split_image("docker.io/library/nginx:1.27"),
            (Some("docker.io/library/nginx".into()), Some("1.27".into()))
        );
        assert_eq!(
            split_image("localhost:5000/app"),
            (Some("localhost:5000/app".into()), None)
        );
        assert_eq!(
            split_image("r.example/app@sha256:abcd"),
            (Some("r.example/app".into()), Some("sha256:abcd".into()))
        );
        assert_eq!(split_image(""), (None, None));
    }

    #[test]
    fn falco_time_has_nine_fraction_digits() {
        let t = UNIX_EPOCH + Duration::new(1_740_609_587, 261_363_951);
        assert_eq!(falco_time(t), "2025-02-26T22:39:47.261363951Z");
        let t = UNIX_EPOCH + Duration::new(1_740_609_587, 0);
        assert_eq!(falco_time(t), "2025-02-26T22:39:47.000000000Z");
    }
}
