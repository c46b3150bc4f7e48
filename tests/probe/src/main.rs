//! berth-probe: a small static binary copied into test root filesystems. It reports what
//! it sees from inside a container as one JSON object on stdout, and signals failure by its
//! exit code (style.md convention 16; models: crun `tests/init.c`, youki `runtimetest`).
//!
//! Usage: `probe STEP...`, each step `name` or `name:arg:arg…`, run in order. The output
//! is one JSON object whose keys are the steps exactly as written and whose values are
//! their results (a repeated step keeps its last result):
//!
//! ```text
//! $ probe identity mount-tmpfs:/mnt syscall:258:-100:0
//! {"identity":{"uid":0,…},"mount-tmpfs:/mnt":{"ok":false,"errno":1,"errno_name":"EPERM"},
//!  "syscall:258:-100:0":{"ok":false,"errno":38,"errno_name":"ENOSYS","nr":258}}
//! ```
//!
//! - **reports** (`identity`, `caps`, `mounts`, …: see `report::REPORTS`) read /proc and
//!   friends; one that cannot be made becomes `{"error": …}` and the exit code 1;
//! - **attempts** (`mount-tmpfs`, `init-module`, `syscall:<nr>:<args>`, …) try what a
//!   contained process should not be able to do and report `ok` or the errno: a refusal is
//!   an observation, not a failure;
//! - **loads** (`fork:<n>`, `alloc:<MiB>`, `burn:<ms>`, `read-direct`, `write-direct`, `write-fsync`,
//!   `wait-signal`) run into a limit or wait;
//! - **neighbour** steps (`neighbour-scan`, `neighbour-watch`) attack the other processes
//!   the probe sees (`/proc/<pid>/mem`, `/proc/<pid>/fd/*`, ptrace): a hostile neighbour;
//! - `exit:<code>` makes the probe exit with that code after printing.
//!
//! Every step is checked before any runs: an unknown step or a bad argument prints the
//! usage on stderr and exits 2 without doing anything. The probe never panics on input.

mod attempt;
mod load;
mod names;
mod neighbour;
mod procfs;
mod report;
mod step;

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::step::{Step, UsageError};

/// A planned step: runs when called and returns its JSON result.
pub type Action = Box<dyn FnOnce() -> Value>;

/// Exit codes.
const EXIT_REPORT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

enum Kind {
    Report,
    Other,
}

struct Planned {
    key: String,
    kind: Kind,
    action: Action,
}

fn plan(args: &[String]) -> Result<(Vec<Planned>, Option<u8>), UsageError> {
    let mut planned = Vec::new();
    let mut exit = None;
    for arg in args {
        let step = Step::parse(arg);
        if step.name == "exit" {
            step.arity(1, 1)?;
            let code = step.u64_arg(0, 0, 255)?;
            exit = u8::try_from(code).ok();
            continue;
        }
        let (kind, action) = if let Some(a) = report::plan(&step)? {
            (Kind::Report, a)
        } else if let Some(a) = attempt::plan(&step)? {
            (Kind::Other, a)
        } else if let Some(a) = load::plan(&step)? {
            (Kind::Other, a)
        } else if let Some(a) = neighbour::plan(&step)? {
            (Kind::Other, a)
        } else {
            return Err(step.usage("unknown step"));
        };
        planned.push(Planned {
            key: step.key,
            kind,
            action,
        });
    }
    Ok((planned, exit))
}

fn usage() -> String {
    let list = |v: &[&str]| v.join(" ");
    format!(
        "usage: probe STEP...\n  reports:  {}\n  attempts: {}\n  loads:    {}\n  neighbours: {}\n  control:  exit:<code>\n",
        list(report::REPORTS),
        list(attempt::ATTEMPTS),
        list(load::LOADS),
        list(neighbour::NEIGHBOUR),
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut stderr = std::io::stderr();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "help") {
        let _ = stderr.write_all(usage().as_bytes());
        return ExitCode::from(EXIT_USAGE);
    }
    let (planned, exit) = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(stderr, "probe: {e}\n{}", usage());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut out = Map::new();
    let mut failed = false;
    for p in planned {
        let v = (p.action)();
        if matches!(p.kind, Kind::Report) && v.get("error").is_some() {
            failed = true;
        }
        out.insert(p.key, v);
    }
    let mut text = Value::Object(out).to_string();
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(EXIT_REPORT_FAILED);
    }
    match (exit, failed) {
        (Some(code), _) => ExitCode::from(code),
        (None, true) => ExitCode::from(EXIT_REPORT_FAILED),
        (None, false) => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_step_is_checked_before_any_runs() {
        assert!(plan(&args(&["identity", "nope"])).is_err());
        assert!(plan(&args(&["identity:extra"])).is_err());
        assert!(plan(&args(&["fork"])).is_err());
        assert!(plan(&args(&["syscall:1:2:3:4:5:6:7:8"])).is_err());
        assert!(plan(&args(&["sysctl:../../etc"])).is_err());
        assert!(plan(&args(&["sysctl:a/b"])).is_err());
        assert!(plan(&args(&["exit:256"])).is_err());
        let (p, exit) = plan(&args(&["identity", "mount-tmpfs", "exit:3", "burn:10:2"])).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(exit, Some(3));
    }

    #[test]
    fn reports_run_outside_a_container_too() {
        let (p, _) = plan(&args(&[
            "identity",
            "pids",
            "self",
            "caps",
            "nnp",
            "seccomp",
            "mounts",
            "fds",
            "cwd",
            "env",
            "rlimits",
            "umask",
            "oom_score_adj",
            "cgroup",
            "tty",
        ]))
        .unwrap();
        for step in p {
            let key = step.key.clone();
            let v = (step.action)();
            assert!(v.get("error").is_none(), "{key}: {v}");
        }
    }

    #[test]
    fn attempts_report_errno_names() {
        let (p, _) = plan(&args(&["open-write:/nonexistent/x", "syscall:-1"])).unwrap();
        let v: Vec<Value> = p.into_iter().map(|s| (s.action)()).collect();
        assert_eq!(v[0]["ok"], false);
        assert_eq!(v[0]["errno_name"], "ENOENT");
        assert_eq!(v[1]["errno_name"], "ENOSYS");
    }

    #[test]
    fn loads_stay_within_their_arguments() {
        let (p, _) = plan(&args(&["fork:3", "alloc:2", "burn:30:2"])).unwrap();
        let v: Vec<Value> = p.into_iter().map(|s| (s.action)()).collect();
        assert_eq!(v[0]["forked"], 3);
        assert_eq!(v[0]["reaped"], 3);
        assert_eq!(v[1]["ok"], true);
        assert_eq!(v[2]["joined"], 2);
        assert!(v[2]["wall_ms"].as_u64().unwrap() >= 30);
    }
}
