//! `berth ps [-a] [-q] [--format json]`: containers, oldest first.

use std::io::Write;

use anyhow::Context;
use berth_engine::{Record, Status};
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
    let records = engine.list(args.all).context("failed to list containers")?;
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
    writeln!(
        out,
        "{:<14}{:<32}{:<24}{:<32}{:<24}NAMES",
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"
    )?;
    for r in &records {
        let mut command = command_of(r).join(" ");
        if !args.no_trunc && command.chars().count() > 20 {
            command = format!("{}…", command.chars().take(19).collect::<String>());
        }
        writeln!(
            out,
            "{:<14}{:<32}{:<24}{:<32}{:<24}{}",
            short(&r.id),
            r.image,
            format!("\"{command}\""),
            r.created.get(..19).unwrap_or(&r.created),
            status_text(r),
            r.name
        )?;
    }
    Ok(0)
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
