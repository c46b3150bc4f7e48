//! berth-runtime: runc's command line over `berth-container`.
//!
//! Global flags, commands and output formats follow runc so that containerd (go-runc),
//! CRI-O, podman and conmon can drive it unchanged: errors are one line on stderr and, with
//! `--log`, a logrus-style line (`--log-format json`: `{"level","msg","time"}`) in the log
//! file, which is where go-runc reads them from.

mod commands;
mod log;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_container::rootless;
use clap::{Args, FromArgMatches, Parser, Subcommand};

/// Exit code of a failed command (runc's).
const EXIT_FAILURE: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    about = "Open Container Initiative runtime (runc-compatible)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The flags before (and, for most, after) the verb.
#[derive(Args, Debug)]
struct GlobalArgs {
    /// enable debug logging
    #[arg(long, global = true)]
    debug: bool,
    /// set the log file to write logs to (default is '/dev/stderr')
    #[arg(long, global = true)]
    log: Option<String>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/berth-runtime; $XDG_RUNTIME_DIR/berth-runtime when not root]
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// path to the criu binary used for checkpoint and restore (accepted, unused)
    #[arg(long, global = true, default_value = "criu")]
    criu: String,
    /// enable systemd cgroup support (the cgroupfs driver is used when systemd is absent)
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, default_value = "auto")]
    rootless: String,
    /// print the version
    #[arg(short = 'v', long)]
    version: bool,
}

/// Global flags that take a value as the next argument (`--root /x`), to find the verb.
const GLOBAL_FLAGS_WITH_VALUE: &[&str] =
    &["--log", "--log-format", "--root", "--criu", "--rootless"];

/// The verb of a command line: the first argument that is neither a flag nor a global flag's
/// value.
fn find_verb(args: &[OsString]) -> Option<&str> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if !arg.starts_with('-') {
            return Some(arg);
        }
        if GLOBAL_FLAGS_WITH_VALUE.contains(&arg) {
            rest.next()?;
        }
    }
    None
}

/// Parse a command line building only its verb's arguments. clap's derive builds every
/// verb's (some 130 arguments) before parsing: that was most of the runtime's heap and much
/// of the code it touches at start, i.e. of its peak RSS. Anything unusual — no verb, help,
/// a parse error — returns `None`, and the full parser handles it as before, with the same
/// messages.
fn parse_verb_only(args: &[OsString]) -> Option<Cli> {
    let verb = find_verb(args)?;
    fn one<A: Args + FromArgMatches>(
        args: &[OsString],
        verb: &'static str,
        wrap: fn(A) -> Command,
    ) -> Option<Cli> {
        let cmd = GlobalArgs::augment_args(
            clap::Command::new("berth-runtime").disable_version_flag(true),
        )
        .subcommand(A::augment_args(clap::Command::new(verb)));
        let m = cmd.try_get_matches_from(args).ok()?;
        let global = GlobalArgs::from_arg_matches(&m).ok()?;
        let sub = A::from_arg_matches(m.subcommand_matches(verb)?).ok()?;
        Some(Cli {
            global,
            command: Some(wrap(sub)),
        })
    }
    use commands::*;
    match verb {
        "create" => one(args, "create", |a: create::CreateArgs| {
            Command::Create(Box::new(a))
        }),
        "start" => one(args, "start", Command::Start),
        "run" => one(args, "run", |a: run::RunArgs| Command::Run(Box::new(a))),
        "state" => one(args, "state", Command::State),
        "kill" => one(args, "kill", Command::Kill),
        "delete" => one(args, "delete", Command::Delete),
        "list" => one(args, "list", Command::List),
        "exec" => one(args, "exec", |a: exec::ExecArgs| Command::Exec(Box::new(a))),
        "ps" => one(args, "ps", Command::Ps),
        "pause" => one(args, "pause", Command::Pause),
        "resume" => one(args, "resume", Command::Resume),
        "update" => one(args, "update", |a: update::UpdateArgs| {
            Command::Update(Box::new(a))
        }),
        "events" => one(args, "events", Command::Events),
        "spec" => one(args, "spec", Command::Spec),
        _ => None,
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// create a container
    Create(Box<commands::create::CreateArgs>),
    /// executes the user defined process in a created container
    Start(commands::start::StartArgs),
    /// create and run a container
    Run(Box<commands::run::RunArgs>),
    /// output the state of a container
    State(commands::state::StateArgs),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(commands::kill::KillArgs),
    /// delete any resources held by the container often used with detached container
    Delete(commands::delete::DeleteArgs),
    /// lists containers started by berth-runtime with the given root
    List(commands::list::ListArgs),
    /// execute new process inside the container
    Exec(Box<commands::exec::ExecArgs>),
    /// ps displays the processes running inside a container
    Ps(commands::ps::PsArgs),
    /// pause suspends all processes inside the container
    Pause(commands::pause::PauseArgs),
    /// resumes all processes that have been previously paused
    Resume(commands::pause::PauseArgs),
    /// update container resource constraints
    Update(Box<commands::update::UpdateArgs>),
    /// display container events such as OOM notifications and cpu, memory, and IO usage statistics
    Events(commands::events::EventsArgs),
    /// show the enabled features
    Features,
    /// create a new specification file
    Spec(commands::spec::SpecArgs),
    /// checkpoint a running container (not supported)
    Checkpoint(commands::unsupported::AnyArgs),
    /// restore a container from a previous checkpoint (not supported)
    Restore(commands::unsupported::AnyArgs),
}

/// Global settings every command gets.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: bool,
    pub log: log::Logger,
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

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = parse_verb_only(&args).unwrap_or_else(|| Cli::parse_from(&args));
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
        Command::Create(a) => commands::create::run(&g, *a),
        Command::Start(a) => commands::start::run(&g, a),
        Command::Run(a) => commands::run::run(&g, *a),
        Command::State(a) => commands::state::run(&g, a),
        Command::Kill(a) => commands::kill::run(&g, a),
        Command::Delete(a) => commands::delete::run(&g, a),
        Command::List(a) => commands::list::run(&g, a),
        Command::Exec(a) => commands::exec::run(&g, *a),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    /// The one-verb parser must read every command line exactly as the full parser does.
    #[test]
    fn verb_only_parse_equals_the_full_parse() {
        let lines = [
            "berth-runtime run x",
            "berth-runtime --root /r --log /l --log-format json --debug run -d --bundle /b x",
            "berth-runtime --root=/r create --bundle /b --pid-file /p --console-socket /s --no-pivot --preserve-fds 2 x",
            "berth-runtime create --root /r --bundle /b x",
            "berth-runtime --systemd-cgroup --rootless true start x",
            "berth-runtime state x",
            "berth-runtime kill --all x KILL",
            "berth-runtime kill x 9",
            "berth-runtime delete --force x",
            "berth-runtime list --format json -q",
            "berth-runtime exec -t --cwd /tmp --env A=1 --user 1:2 --cap CAP_KILL x sh -c true",
            "berth-runtime exec --process /p.json --detach --pid-file /p x",
            "berth-runtime ps --format json x",
            "berth-runtime pause x",
            "berth-runtime resume x",
            "berth-runtime update --memory 1000000 --pids-limit 10 x",
            "berth-runtime update --pids-limit -1 --cpu-quota -1 --memory -1 x",
            "berth-runtime update --resources - x",
            "berth-runtime events --stats --interval 2s x",
            "berth-runtime spec --rootless --bundle /b",
            "berth-runtime --criu /c --log-format text delete x",
        ];
        for line in lines {
            let args = argv(line);
            let fast = parse_verb_only(&args);
            let full = Cli::try_parse_from(&args);
            match (fast, full) {
                (Some(fast), Ok(full)) => {
                    assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line}");
                }
                (fast, full) => panic!("{line}: verb-only {fast:?}, full {full:?}"),
            }
        }
    }

    /// What the one-verb parser does not handle falls through to the full parser.
    #[test]
    fn help_version_errors_and_unknown_verbs_fall_through() {
        for line in [
            "berth-runtime",
            "berth-runtime --help",
            "berth-runtime -v",
            "berth-runtime run --help",
            "berth-runtime run",
            "berth-runtime run --no-such-flag x",
            "berth-runtime features",
            "berth-runtime frobnicate x",
            "berth-runtime --root",
        ] {
            assert!(parse_verb_only(&argv(line)).is_none(), "{line}");
        }
        assert_eq!(
            find_verb(&argv("berth-runtime --root run start x")),
            Some("start")
        );
        assert_eq!(
            find_verb(&argv("berth-runtime --debug --log-format json kill")),
            Some("kill")
        );
    }
}
