//! `events <id>`: `--stats` once, else stats every `--interval` and OOM notifications, as
//! JSON lines (`{"type","id","data"}`), until the container stops.

use std::time::Duration;

use anyhow::Context;
use berth_container::Status;
use clap::Args;

use crate::Global;

#[derive(Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// set the stats collection interval
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
}

/// Go durations: "5s", "100ms", "1m30s", "2h".
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        anyhow::bail!("invalid duration {s:?}");
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| anyhow::anyhow!("missing unit in duration {s:?}"))?;
        let (num, tail) = rest.split_at(n);
        let value: f64 = num
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => anyhow::bail!("unknown unit {unit:?} in duration {s:?}"),
        };
        total += value * mult;
        rest = tail;
    }
    Ok(Duration::from_secs_f64(total))
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
    let emit = |typ: &str, data: serde_json::Value| {
        let mut v = serde_json::json!({"type": typ, "id": a.id});
        if !data.is_null() {
            v["data"] = data;
        }
        super::print(&format!("{v}\n"));
    };
    if a.stats {
        let s = c
            .stats()
            .with_context(|| format!("failed to read stats of container {}", a.id))?;
        emit("stats", serde_json::to_value(s)?);
        return Ok(0);
    }
    let mut ooms = c.oom_kill_count().unwrap_or(0);
    loop {
        let c = super::load(g, &a.id)?;
        if c.status() == Status::Stopped {
            return Ok(0);
        }
        match c.stats() {
            Ok(s) => emit("stats", serde_json::to_value(s)?),
            Err(e) => g.log.warn(&crate::log::chain(&anyhow::Error::new(e))),
        }
        if let Ok(n) = c.oom_kill_count() {
            if n > ooms {
                emit("oom", serde_json::Value::Null);
            }
            ooms = n;
        }
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
            tv_sec: interval.as_secs() as i64,
            tv_nsec: i64::from(interval.subsec_nanos()),
        });
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
