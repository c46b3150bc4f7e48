//! `events <id>`: `--stats` once, else stats every `--interval` and OOM notifications, as
//! JSON lines (`{"type","id","data"}`), until the container stops. OOM kills are reported
//! as the kernel notifies them (v1 eventfd, v2 inotify: `berth_cgroups::notify`),
//! between notifications the counter and the container's status are looked at every
//! 100 ms (every 100 ms only, when the notification cannot be registered).

use std::time::{Duration, Instant};

use crate::Global;
use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;
use berth_container::Status;

pub const FLAGS: &[Flag] = &[
    Flag::value(
        "interval",
        None,
        "set the stats collection interval (default: 5s)",
    ),
    Flag::bool("stats", None, "display the container's stats then exit"),
];

#[derive(Debug, PartialEq, Eq)]
pub struct EventsArgs {
    pub id: String,
    pub interval: String,
    pub stats: bool,
}

impl EventsArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        let [id] = super::exactly::<1>("events", m)?;
        Ok(EventsArgs {
            id,
            interval: m.string("interval")?.unwrap_or_else(|| "5s".to_owned()),
            stats: m.flag("stats"),
        })
    }
}

/// Go durations: "5s", "100ms", "1m30s", "2h".
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    berth_runtime_spec::timefmt::parse_go_duration(s).map_err(anyhow::Error::msg)
}

/// One line of output, fields in runc's order: `{"type","id","data"}` (`data` left out
/// when there is none, as in runc's `oom` events).
#[derive(serde::Serialize)]
struct Event<'a, T: serde::Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

fn emit<T: serde::Serialize>(kind: &str, id: &str, data: Option<T>) -> anyhow::Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data })?;
    super::print(&format!("{line}\n"));
    Ok(())
}

/// How often the streaming loop looks for OOM kills and a stopped container, whatever the
/// stats interval.
const TICK: Duration = Duration::from_millis(100);

/// At most this many `oom` lines for the kills seen in one tick.
const MAX_OOM_LINES: u64 = 100;

/// After a notification the OOM kill counter may move a moment later (v1 raises the event
/// when the OOM killer is invoked): it is read again every [`HURRY_TICK`], this many times.
const HURRY_TICKS: u32 = 100;
const HURRY_TICK: Duration = Duration::from_millis(1);

fn sleep(pause: Duration) {
    let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
        tv_sec: i64::try_from(pause.as_secs()).unwrap_or(0),
        tv_nsec: i64::from(pause.subsec_nanos()),
    });
}

pub fn run(g: &Global, a: EventsArgs) -> anyhow::Result<u8> {
    let interval = parse_duration(&a.interval)?;
    if interval.is_zero() {
        anyhow::bail!("duration interval must be greater than 0");
    }
    let c = super::load(g, &a.id)?;
    if c.status() == Status::Stopped {
        anyhow::bail!("container with id {} is not running", a.id);
    }
    if a.stats {
        let s = c
            .stats()
            .with_context(|| format!("failed to read stats of container {}", a.id))?;
        emit("stats", &a.id, Some(s))?;
        return Ok(0);
    }
    // registered before the first look at the counter: no kill falls in between
    let notifier = c.oom_notifier().ok().flatten();
    let mut ooms = c.oom_kill_count().unwrap_or(0);
    let mut next_stats = Instant::now();
    let mut hurry = 0;
    loop {
        if c.status() == Status::Stopped {
            return Ok(0);
        }
        if let Ok(n) = c.oom_kill_count() {
            for _ in 0..n.saturating_sub(ooms).min(MAX_OOM_LINES) {
                emit::<()>("oom", &a.id, None)?;
            }
            if n != ooms {
                hurry = 0;
            }
            ooms = n;
        }
        let now = Instant::now();
        if now >= next_stats {
            match c.stats() {
                Ok(s) => emit("stats", &a.id, Some(s))?,
                Err(e) => g.log.warn(&crate::log::chain(&anyhow::Error::new(e))),
            }
            next_stats = now + interval;
        }
        let pause = TICK.min(next_stats.saturating_duration_since(Instant::now()));
        if hurry > 0 {
            hurry -= 1;
            sleep(HURRY_TICK.min(pause));
            continue;
        }
        match &notifier {
            Some(n) => {
                if matches!(n.wait(pause), Ok(true)) {
                    hurry = HURRY_TICKS;
                }
            }
            None => sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
    }
}
