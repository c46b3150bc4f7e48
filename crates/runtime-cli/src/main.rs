//! berth-runtime: runc's command line over `berth-container`.
//!
//! Global flags, commands and output formats follow runc so that containerd (go-runc),
//! CRI-O, podman and conmon can drive it unchanged: errors are one line on stderr and, with
//! `--log`, a logrus-style line (`--log-format json`: `{"level","msg","time"}`) in the log
//! file, which is where go-runc reads them from.

mod args;
mod cli;
mod commands;
mod log;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_container::rootless;
use cli::{Cli, Command, Parsed};

/// Exit code of a failed command (runc's).
const EXIT_FAILURE: u8 = 1;

/// Exit code of a command-line error (unknown verb or flag, missing value or argument, bad
/// number): 2, as berth-runtime has always answered (runc answers 1, and 3 for an unknown
/// verb; supervisors only look for non-zero).
const EXIT_USAGE: u8 = 2;

/// Global settings every command gets.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: bool,
    pub log: log::Logger,
}

/// create, run and exec fork and run the container's first process in the child: only
/// sound in a single-threaded process. berth-runtime starts no threads; this proves it.
fn single_threaded() -> anyhow::Result<berth_container::SingleThreaded> {
    berth_container::SingleThreaded::check()
        .context("berth-runtime cannot fork the container process")
}

fn needs_sealed_exe(cmd: &Command) -> bool {
    matches!(cmd, Command::Create(_) | Command::Run(_) | Command::Exec(_))
}

/// Whether the command reads or writes container state under `--root`.
fn uses_state(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Features | Command::Spec(_) | Command::Checkpoint(_) | Command::Restore(_)
    )
}

/// The default `--root` (see [`rootless::default_root`]); a directory under
/// `XDG_RUNTIME_DIR` is created 0700 with the sticky bit, as runc does (the XDG spec
/// prunes files without it).
#[expect(
    clippy::disallowed_methods,
    reason = "the binary reads its environment and hands the values to the library"
)]
fn default_state_root(euid: u32, in_userns: bool) -> anyhow::Result<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    let user = std::env::var_os("USER");
    let (root, from_xdg) =
        rootless::default_root(euid, in_userns, xdg.as_deref(), user.as_deref())?;
    if from_xdg {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .with_context(|| {
                format!(
                    "failed to create {}: the path in $XDG_RUNTIME_DIR must be writable by the user",
                    root.display()
                )
            })?;
        rustix::fs::chmod(&root, rustix::fs::Mode::from_raw_mode(0o1700)).with_context(|| {
            format!(
                "failed to set the sticky bit on {}: check the permissions of $XDG_RUNTIME_DIR",
                root.display()
            )
        })?;
    }
    Ok(root)
}

/// Report a command-line error: "error: …" and the usage on stderr and, as runc does, an
/// error line in the `--log` file when one was given before the error.
fn usage_error(e: &cli::ParseError) -> ExitCode {
    if let Some(path) = e.global.log.as_deref()
        && let Ok(logger) = log::Logger::new(path, &e.global.log_format, false)
    {
        logger.error(&e.error.to_string());
    }
    let _ = writeln!(std::io::stderr(), "error: {}\n\n{}", e.error, e.hint());
    ExitCode::from(EXIT_USAGE)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match cli::parse(&args) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Help(text)) => {
            commands::print(&text);
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e),
    };
    let Cli {
        global: cli,
        command,
    } = cli;
    if cli.version {
        return commands::version();
    }
    let logger =
        match log::Logger::new(cli.log.as_deref().unwrap_or(""), &cli.log_format, cli.debug) {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "{}", log::chain(&e));
                return ExitCode::from(EXIT_FAILURE);
            }
        };
    let Some(command) = command else {
        logger.fatal(&anyhow::anyhow!("no command given (see --help)"));
        return ExitCode::from(EXIT_FAILURE);
    };
    // the state root, a directory away from the binary, for the sealed overlay (as root;
    // unprivileged callers get the memfd copy anyway)
    let spare_lower = cli
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(berth_container::paths::DEFAULT_ROOT));
    if needs_sealed_exe(&command)
        && let Err(e) = berth_container::sealed::ensure_sealed(
            args,
            std::env::vars_os()
                .map(|(k, v)| {
                    let mut s = k;
                    s.push("=");
                    s.push(v);
                    s
                })
                .collect(),
            spare_lower.is_dir().then_some(spare_lower.as_path()),
        )
    {
        logger.fatal(&anyhow::Error::new(e));
        return ExitCode::from(EXIT_FAILURE);
    }
    let euid = rustix::process::geteuid().as_raw();
    // only root needs to know whether it is root in a user namespace
    let in_userns = euid == 0 && rootless::running_in_user_namespace();
    let rootless = match rootless::resolve_flag(&cli.rootless, euid, in_userns) {
        Ok(r) => r,
        Err(e) => {
            logger.fatal(&anyhow::Error::new(e));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let root = match cli.root {
        Some(root) => root,
        None if uses_state(&command) => match default_state_root(euid, in_userns) {
            Ok(root) => root,
            Err(e) => {
                logger.fatal(&e);
                return ExitCode::from(EXIT_FAILURE);
            }
        },
        None => PathBuf::from(berth_container::paths::DEFAULT_ROOT),
    };
    let g = Global {
        root,
        systemd_cgroup: cli.systemd_cgroup,
        rootless,
        log: logger,
    };
    let result = match command {
        Command::Create(a) => single_threaded().and_then(|p| commands::create::run(&g, *a, p)),
        Command::Start(a) => commands::start::run(&g, a),
        Command::Run(a) => single_threaded().and_then(|p| commands::run::run(&g, *a, p)),
        Command::State(a) => commands::state::run(&g, a),
        Command::Kill(a) => commands::kill::run(&g, a),
        Command::Delete(a) => commands::delete::run(&g, a),
        Command::List(a) => commands::list::run(&g, a),
        Command::Exec(a) => single_threaded().and_then(|p| commands::exec::run(&g, *a, p)),
        Command::Ps(a) => commands::ps::run(&g, a),
        Command::Pause(a) => commands::pause::run(&g, a, true),
        Command::Resume(a) => commands::pause::run(&g, a, false),
        Command::Update(a) => commands::update::run(&g, *a),
        Command::Events(a) => commands::events::run(&g, a),
        Command::Features => commands::features::run(),
        Command::Spec(a) => commands::spec::run(a),
        Command::Checkpoint(_) | Command::Restore(_) => Err(anyhow::anyhow!(
            "checkpoint/restore is not supported by berth-runtime"
        )),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            g.log.fatal(&e);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
