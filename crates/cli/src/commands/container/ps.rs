//! `berth ps [-a] [-q] [--format json]`: containers, oldest first.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use berth_engine::{Record, Status};
use berth_oci::timefmt::parse_rfc3339;
use clap::Args;
use serde_json::json;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Also stopped containers.
    #[arg(short = 'a', long)]
    all: bool,
    /// Only the ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print a JSON array (stable field names, as podman's `ps --format json`).
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    format: String,
    /// Full ids and commands.
    #[arg(long)]
    no_trunc: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: PsArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    let (records, corrupt) = engine
        .list_checked(args.all)
        .context("failed to list containers")?;
    // listed on stderr, the others still shown: one broken record hides nothing else
    for e in &corrupt {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "warning: {e}");
    }
    let mut out = std::io::stdout().lock();
    let short = |id: &str| -> String {
        if args.no_trunc {
            id.to_owned()
        } else {
            id.get(..12).unwrap_or(id).to_owned()
        }
    };
    if args.quiet {
        for r in &records {
            writeln!(out, "{}", short(&r.id))?;
        }
        return Ok(0);
    }
    if args.format == "json" {
        let list: Vec<serde_json::Value> = records.iter().map(to_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(0);
    }
    let now = std::time::SystemTime::now();
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "NAMES",
        ]
        .map(String::from),
    ];
    for r in &records {
        let mut command = command_of(r).join(" ");
        if !args.no_trunc && command.chars().count() > 20 {
            command = format!("{}…", command.chars().take(19).collect::<String>());
        }
        rows.push([
            short(&r.id),
            r.image.clone(),
            format!("\"{command}\""),
            ago(&r.created, now).unwrap_or_else(|| r.created.clone()),
            status_line(r, now),
            r.name.clone(),
        ]);
    }
    write_table(&mut out, &rows)?;
    Ok(0)
}

/// Columns as docker's tabwriter lays them out: each as wide as its widest cell (at least
/// 10), then 3 spaces; the last column unpadded.
fn write_table<const N: usize>(out: &mut impl Write, rows: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = [10usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] + 3 - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The container's command, from its runtime config.
fn command_of(r: &Record) -> Vec<String> {
    std::fs::read(r.bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["process"]["args"].as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// docker's STATUS column, without the durations: `Up`, `Created`, `Exited (CODE)`.
fn status_text(r: &Record) -> String {
    match r.status {
        Status::Creating => "Creating".to_owned(),
        Status::Created => "Created".to_owned(),
        Status::Running => "Up".to_owned(),
        Status::Exited => match r.exit_code {
            Some(c) => format!("Exited ({c})"),
            None => "Exited (unknown)".to_owned(),
        },
    }
}

/// docker's table STATUS: `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created`.
fn status_line(r: &Record, now: SystemTime) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(parse_rfc3339)
            .and_then(|t| now.duration_since(t).ok())
    };
    match r.status {
        Status::Running => match since(&r.started) {
            Some(d) => format!("Up {}", human_duration(d)),
            None => "Up".to_owned(),
        },
        Status::Exited => match since(&r.finished) {
            Some(d) => format!("{} {} ago", status_text(r), human_duration(d)),
            None => status_text(r),
        },
        Status::Creating | Status::Created => status_text(r),
    }
}

/// `N units ago` for an RFC 3339 time, as docker's CREATED column.
fn ago(t: &str, now: SystemTime) -> Option<String> {
    let d = now.duration_since(parse_rfc3339(t)?).ok()?;
    Some(format!("{} ago", human_duration(d)))
}

/// docker's `units.HumanDuration`: `Less than a second`, `1 second`, `N seconds`, `About a
/// minute`, `N minutes`, `About an hour`, `N hours` (under 48), `N days` (under 14),
/// `N weeks` (under 60 days), `N months` (under 2 years), `N years`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (minutes, hours) = (secs / 60, secs / 3600);
    match secs {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        2..60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// One container of `--format json`.
fn to_json(r: &Record) -> serde_json::Value {
    json!({
        "Id": r.id,
        "Names": [r.name],
        "Image": r.image,
        "Command": command_of(r),
        "Created": r.created,
        "State": r.status.as_str(),
        "Status": status_text(r),
        "ExitCode": r.exit_code,
        "Exited": r.status == Status::Exited,
        "OOMKilled": r.oom_killed,
        "Pid": r.init_pid.unwrap_or(0),
        "StartedAt": r.started,
        "ExitedAt": r.finished,
        "AutoRemove": r.auto_remove,
        "Runtime": r.runtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_grow_with_their_widest_cell() {
        let rows = [
            ["CONTAINER ID", "STATUS", "NAMES"].map(String::from),
            ["0e024f2f451a", "Exited (137) Less than a second ago", "web"].map(String::from),
        ];
        let mut out = Vec::new();
        write_table(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "CONTAINER ID   STATUS                                NAMES\n\
             0e024f2f451a   Exited (137) Less than a second ago   web\n"
        );
    }

    #[test]
    fn durations_read_as_docker_writes_them() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (7200, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86_400, "2 weeks"),
            (60 * 86_400, "2 months"),
            (730 * 86_400, "2 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}");
        }
        let now = parse_rfc3339("2026-12-04T10:31:00Z").unwrap_or(SystemTime::UNIX_EPOCH);
        assert_eq!(
            ago("2026-12-04T10:30:56.046183659Z", now).as_deref(),
            Some("3 seconds ago")
        );
        assert_eq!(ago("not a time", now), None);
    }
}
