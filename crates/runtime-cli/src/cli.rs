//! runc's command line: the program's flags, the verbs, `--help`, `--version`, `help VERB`.
//! Each verb's flags and arguments struct live in its file under `commands/`; the syntax
//! (how a flag and its value are written) is [`crate::args`].

use std::ffi::OsString;
use std::path::PathBuf;

use crate::args::{self, Flag, Matches, Positionals, UsageError};
use crate::commands::{
    create, delete, events, exec, kill, list, pause, ps, run, spec, start, state, unsupported,
    update,
};

pub const PROG: &str = "berth-runtime";

/// The program's flags that may also follow the verb (clap's `global`; runc takes them
/// only before it).
const GLOBAL_FLAGS: &[Flag] = &[
    Flag::bool("debug", None, "enable debug logging"),
    Flag::value(
        "log",
        None,
        "set the log file to write logs to (default is '/dev/stderr')",
    ),
    Flag::value(
        "log-format",
        None,
        "set the log format ('text' (default), or 'json')",
    ),
    Flag::value(
        "root",
        None,
        "root directory for storage of container state (this should be located in tmpfs) (default: /run/berth-runtime; $XDG_RUNTIME_DIR/berth-runtime when not root)",
    ),
    Flag::value(
        "criu",
        None,
        "path to the criu binary used for checkpoint and restore (accepted, unused)",
    ),
    Flag::bool(
        "systemd-cgroup",
        None,
        "enable systemd cgroup support (the cgroupfs driver is used when systemd is absent)",
    ),
];

/// The program's flags only before the verb.
const TOP_FLAGS: &[Flag] = &[
    Flag::value(
        "rootless",
        None,
        "ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")",
    ),
    Flag::bool("version", Some('v'), "print the version"),
];

/// The flags before (and, for most, after) the verb.
#[derive(Debug, PartialEq, Eq)]
pub struct GlobalArgs {
    pub debug: bool,
    pub log: Option<String>,
    pub log_format: String,
    pub root: Option<PathBuf>,
    pub criu: String,
    pub systemd_cgroup: bool,
    pub rootless: String,
    pub version: bool,
}

impl Default for GlobalArgs {
    fn default() -> Self {
        GlobalArgs {
            debug: false,
            log: None,
            log_format: "text".to_owned(),
            root: None,
            criu: "criu".to_owned(),
            systemd_cgroup: false,
            rootless: "auto".to_owned(),
            version: false,
        }
    }
}

impl GlobalArgs {
    /// Apply the global flags found in `m` (before or after the verb: the last one wins).
    fn apply(&mut self, m: &Matches) -> Result<(), UsageError> {
        for (name, _) in &m.flags {
            match *name {
                "debug" => self.debug = m.flag("debug"),
                "log" => self.log = m.string("log")?,
                "log-format" => self.log_format = m.string("log-format")?.unwrap_or_default(),
                "root" => self.root = m.path("root"),
                "criu" => self.criu = m.string("criu")?.unwrap_or_default(),
                "systemd-cgroup" => self.systemd_cgroup = m.flag("systemd-cgroup"),
                "rootless" => self.rootless = m.string("rootless")?.unwrap_or_default(),
                "version" => self.version = m.flag("version"),
                _ => {}
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Create(Box<create::CreateArgs>),
    Start(start::StartArgs),
    Run(Box<run::RunArgs>),
    State(state::StateArgs),
    Kill(kill::KillArgs),
    Delete(delete::DeleteArgs),
    List(list::ListArgs),
    Exec(Box<exec::ExecArgs>),
    Ps(ps::PsArgs),
    Pause(pause::PauseArgs),
    Resume(pause::PauseArgs),
    Update(Box<update::UpdateArgs>),
    Events(events::EventsArgs),
    Features,
    Spec(spec::SpecArgs),
    Checkpoint(unsupported::AnyArgs),
    Restore(unsupported::AnyArgs),
}

/// One verb: its name, help, flags, and how its arguments become a [`Command`].
pub struct Verb {
    pub name: &'static str,
    pub about: &'static str,
    pub usage: &'static str,
    /// The verb's flag tables (the program's global flags are added to them).
    pub flags: &'static [&'static [Flag]],
    pub positionals: Positionals,
    pub build: fn(&Matches) -> Result<Command, UsageError>,
}

/// The verbs, in runc's help order.
pub const VERBS: &[Verb] = &[
    Verb {
        name: "checkpoint",
        about: "checkpoint a running container (not supported)",
        usage: "<container-id>",
        flags: &[],
        positionals: Positionals::RawAfter(0),
        build: |m| Ok(Command::Checkpoint(unsupported::AnyArgs::from_matches(m)?)),
    },
    Verb {
        name: "create",
        about: "create a container",
        usage: "<container-id>",
        flags: &[create::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| {
            Ok(Command::Create(Box::new(create::CreateArgs::from_matches(
                m,
            )?)))
        },
    },
    Verb {
        name: "delete",
        about: "delete any resources held by the container often used with detached container",
        usage: "<container-id>",
        flags: &[delete::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Delete(delete::DeleteArgs::from_matches(m)?)),
    },
    Verb {
        name: "events",
        about: "display container events such as OOM notifications and cpu, memory, and IO usage statistics",
        usage: "<container-id>",
        flags: &[events::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Events(events::EventsArgs::from_matches(m)?)),
    },
    Verb {
        name: "exec",
        about: "execute new process inside the container",
        usage: "<container-id> <command> [command options]  || -p process.json <container-id>",
        flags: &[exec::FLAGS],
        positionals: Positionals::RawAfter(1),
        build: |m| Ok(Command::Exec(Box::new(exec::ExecArgs::from_matches(m)?))),
    },
    Verb {
        name: "kill",
        about: "kill sends the specified signal (default: SIGTERM) to the container's init process",
        usage: "<container-id> [signal]",
        flags: &[kill::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Kill(kill::KillArgs::from_matches(m)?)),
    },
    Verb {
        name: "list",
        about: "lists containers started by berth-runtime with the given root",
        usage: "",
        flags: &[list::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::List(list::ListArgs::from_matches(m)?)),
    },
    Verb {
        name: "pause",
        about: "pause suspends all processes inside the container",
        usage: "<container-id>",
        flags: &[],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Pause(pause::PauseArgs::from_matches("pause", m)?)),
    },
    Verb {
        name: "ps",
        about: "ps displays the processes running inside a container",
        usage: "<container-id> [ps options]",
        flags: &[ps::FLAGS],
        positionals: Positionals::RawAfter(1),
        build: |m| Ok(Command::Ps(ps::PsArgs::from_matches(m)?)),
    },
    Verb {
        name: "restore",
        about: "restore a container from a previous checkpoint (not supported)",
        usage: "<container-id>",
        flags: &[],
        positionals: Positionals::RawAfter(0),
        build: |m| Ok(Command::Restore(unsupported::AnyArgs::from_matches(m)?)),
    },
    Verb {
        name: "resume",
        about: "resumes all processes that have been previously paused",
        usage: "<container-id>",
        flags: &[],
        positionals: Positionals::Interleaved,
        build: |m| {
            Ok(Command::Resume(pause::PauseArgs::from_matches(
                "resume", m,
            )?))
        },
    },
    Verb {
        name: "run",
        about: "create and run a container",
        usage: "<container-id>",
        flags: &[create::FLAGS, run::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Run(Box::new(run::RunArgs::from_matches(m)?))),
    },
    Verb {
        name: "spec",
        about: "create a new specification file",
        usage: "",
        flags: &[spec::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Spec(spec::SpecArgs::from_matches(m)?)),
    },
    Verb {
        name: "start",
        about: "executes the user defined process in a created container",
        usage: "<container-id>",
        flags: &[],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::Start(start::StartArgs::from_matches(m)?)),
    },
    Verb {
        name: "state",
        about: "output the state of a container",
        usage: "<container-id>",
        flags: &[],
        positionals: Positionals::Interleaved,
        build: |m| Ok(Command::State(state::StateArgs::from_matches(m)?)),
    },
    Verb {
        name: "update",
        about: "update container resource constraints",
        usage: "<container-id>",
        flags: &[update::FLAGS],
        positionals: Positionals::Interleaved,
        build: |m| {
            Ok(Command::Update(Box::new(update::UpdateArgs::from_matches(
                m,
            )?)))
        },
    },
    Verb {
        name: "features",
        about: "show the enabled features",
        usage: "",
        flags: &[],
        positionals: Positionals::Interleaved,
        build: |m| {
            m.positionals("features", 0, 0)?;
            Ok(Command::Features)
        },
    },
];

fn find(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Cli {
    pub global: GlobalArgs,
    /// `None`: no verb was given.
    pub command: Option<Command>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Cli),
    /// Print this text (help) on stdout and exit 0.
    Help(String),
}

/// A command-line error, with the global flags read before it (so that it can be logged to
/// `--log` as runc does) and the verb, for its usage line.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub error: UsageError,
    pub global: Box<GlobalArgs>,
    pub verb: Option<&'static str>,
}

impl ParseError {
    /// The lines after the error: the usage and where to find more.
    pub fn hint(&self) -> String {
        match self.verb.and_then(find) {
            Some(v) => {
                let opts = if v.flags.iter().all(|f| f.is_empty()) {
                    ""
                } else {
                    " [command options]"
                };
                format!(
                    "Usage: {PROG} {}{opts} {}\n\nFor more information, try '{PROG} {} --help'.",
                    v.name, v.usage, v.name
                )
            }
            None => format!(
                "Usage: {PROG} [global options] command [command options] [arguments...]\n\nFor more information, try '{PROG} --help'."
            ),
        }
    }
}

/// Parse `args` (with the program name first).
pub fn parse(args: &[OsString]) -> Result<Parsed, ParseError> {
    let mut global = GlobalArgs::default();
    let fail = |error, global, verb| ParseError {
        error,
        global: Box::new(global),
        verb,
    };
    let top = match args::lex(
        args.get(1..).unwrap_or_default(),
        &[GLOBAL_FLAGS, TOP_FLAGS],
        Positionals::Interleaved,
        true,
    ) {
        Ok(m) => m,
        Err(e) => return Err(fail(e, global, None)),
    };
    if let Err(e) = global.apply(&top) {
        return Err(fail(e, global, None));
    }
    if top.help {
        return Ok(Parsed::Help(program_help()));
    }
    let Some((verb, rest)) = top.positionals.split_first() else {
        return Ok(Parsed::Run(Cli {
            global,
            command: None,
        }));
    };
    if global.version {
        return Ok(Parsed::Run(Cli {
            global,
            command: None,
        }));
    }
    let name = verb.to_string_lossy();
    if name == "help" {
        return match rest.first().map(|v| v.to_string_lossy()) {
            None => Ok(Parsed::Help(program_help())),
            Some(topic) => match find(&topic) {
                Some(v) => Ok(Parsed::Help(verb_help(v))),
                None => Err(fail(
                    UsageError(format!("no help topic for '{topic}'")),
                    global,
                    None,
                )),
            },
        };
    }
    let Some(v) = find(&name) else {
        return Err(fail(
            UsageError(format!("unrecognized command '{name}'")),
            global,
            None,
        ));
    };
    let mut tables = v.flags.to_vec();
    tables.push(GLOBAL_FLAGS);
    let m = match args::lex(rest, &tables, v.positionals, false) {
        Ok(m) => m,
        Err(e) => return Err(fail(e, global, Some(v.name))),
    };
    if m.help {
        return Ok(Parsed::Help(verb_help(v)));
    }
    if let Err(e) = global.apply(&m) {
        return Err(fail(e, global, Some(v.name)));
    }
    match (v.build)(&m) {
        Ok(command) => Ok(Parsed::Run(Cli {
            global,
            command: Some(command),
        })),
        Err(e) => Err(fail(e, global, Some(v.name))),
    }
}

fn verb_help(v: &Verb) -> String {
    let mut tables = v.flags.to_vec();
    tables.push(GLOBAL_FLAGS);
    args::help(PROG, v.name, v.about, v.usage, &tables)
}

fn program_help() -> String {
    let mut s = format!(
        "NAME:\n   {PROG} - Open Container Initiative runtime (runc-compatible)\n\nUSAGE:\n   {PROG} [global options] command [command options] [arguments...]\n\nCOMMANDS:\n"
    );
    let width = VERBS.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in VERBS {
        s.push_str(&format!("   {:width$}  {}\n", v.name, v.about));
    }
    s.push_str(&format!(
        "   {:width$}  {}\n",
        "help", "shows the help of a command"
    ));
    args::options(&mut s, "GLOBAL OPTIONS", &[GLOBAL_FLAGS, TOP_FLAGS]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<OsString> {
        std::iter::once(PROG)
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn cli(line: &str) -> Cli {
        match parse(&argv(line)) {
            Ok(Parsed::Run(cli)) => cli,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn command(line: &str) -> Command {
        cli(line)
            .command
            .unwrap_or_else(|| panic!("{line}: no command"))
    }

    fn error(line: &str) -> ParseError {
        match parse(&argv(line)) {
            Err(e) => e,
            other => panic!("{line}: parsed as {other:?}"),
        }
    }

    fn create_flags() -> create::CreateFlags {
        create::CreateFlags {
            bundle: None,
            console_socket: None,
            pidfd_socket: None,
            pid_file: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
        }
    }

    fn exec_args(id: &str) -> exec::ExecArgs {
        exec::ExecArgs {
            console_socket: None,
            pidfd_socket: None,
            cwd: None,
            env: vec![],
            tty: false,
            user: None,
            additional_gids: vec![],
            process: None,
            detach: false,
            pid_file: None,
            process_label: None,
            apparmor: None,
            no_new_privs: false,
            cap: vec![],
            preserve_fds: 0,
            cgroup: vec![],
            ignore_paused: false,
            id: id.to_owned(),
            command: vec![],
        }
    }

    fn p(s: &str) -> Option<PathBuf> {
        Some(PathBuf::from(s))
    }

    /// The global flags as containerd (go-runc), conmon and CRI-O put them before the verb,
    /// and after it (clap's `global`, kept).
    #[test]
    fn global_flags_before_and_after_the_verb() {
        let want = GlobalArgs {
            debug: true,
            log: Some("/l".to_owned()),
            log_format: "json".to_owned(),
            root: p("/r"),
            criu: "criu".to_owned(),
            systemd_cgroup: true,
            rootless: "false".to_owned(),
            version: false,
        };
        for line in [
            "--root /r --log /l --log-format json --systemd-cgroup --debug --rootless=false state x",
            "--root=/r --log=/l --log-format=json --systemd-cgroup --debug --rootless false state x",
            "-root /r -log /l -log-format json -systemd-cgroup -debug -rootless false state x",
            "--rootless false state --root /r --log /l --log-format json --systemd-cgroup --debug x",
            "--root /other --rootless false --log-format text state x --root /r --log /l --log-format json --debug --systemd-cgroup",
        ] {
            let c = cli(line);
            assert_eq!(c.global, want, "{line}");
            assert_eq!(
                c.command,
                Some(Command::State(state::StateArgs { id: "x".into() })),
                "{line}"
            );
        }
        assert_eq!(cli("state x").global, GlobalArgs::default());
        assert_eq!(cli("--criu /c delete x").global.criu, "/c");
        // a global flag's value is not the verb
        assert_eq!(
            command("--root run start x"),
            Command::Start(start::StartArgs { id: "x".into() })
        );
        assert_eq!(cli("--root run start x").global.root, p("run"));
    }

    #[test]
    fn create_and_run_as_supervisors_send_them() {
        let full = create::CreateArgs {
            id: "c1".into(),
            flags: create::CreateFlags {
                bundle: p("/b"),
                console_socket: p("/s"),
                pid_file: p("/p"),
                no_pivot: true,
                no_new_keyring: true,
                preserve_fds: 2,
                ..create_flags()
            },
        };
        for line in [
            // go-runc
            "--root /r --log /l --log-format json create --bundle /b --pid-file /p --console-socket /s --no-pivot --no-new-keyring --preserve-fds 2 c1",
            // conmon
            "--root /r --systemd-cgroup --log-format=json --log /l create --bundle /b --pid-file /p --no-pivot --console-socket /s --preserve-fds 2 --no-new-keyring c1",
            // flags after the id (urfave reorders), short and Go forms
            "create c1 -b /b --pid-file=/p --console-socket=/s -no-pivot --no-new-keyring=true --preserve-fds=2",
            "create -b=/b --pid-file /p --console-socket /s --no-pivot --no-new-keyring --preserve-fds 2 -- c1",
        ] {
            assert_eq!(
                command(line),
                Command::Create(Box::new(create::CreateArgs {
                    id: full.id.clone(),
                    flags: full.flags.clone(),
                })),
                "{line}"
            );
        }
        assert_eq!(
            command("create x"),
            Command::Create(Box::new(create::CreateArgs {
                id: "x".into(),
                flags: create_flags(),
            }))
        );
        assert_eq!(
            command("run -d --keep --no-subreaper --bundle /b --pid-file /p x"),
            Command::Run(Box::new(run::RunArgs {
                id: "x".into(),
                flags: create::CreateFlags {
                    bundle: p("/b"),
                    pid_file: p("/p"),
                    ..create_flags()
                },
                detach: true,
                keep: true,
                no_subreaper: true,
            }))
        );
        assert_eq!(
            command("run --detach=false x"),
            Command::Run(Box::new(run::RunArgs {
                id: "x".into(),
                flags: create_flags(),
                detach: false,
                keep: false,
                no_subreaper: false,
            }))
        );
    }

    #[test]
    fn exec_with_a_process_file_or_a_command() {
        let mut want = exec_args("c1");
        want.process = p("/proc.json");
        want.detach = true;
        want.pid_file = p("/pid");
        want.console_socket = p("/s");
        want.tty = true;
        for line in [
            // go-runc
            "--root /r exec --process /proc.json --detach --pid-file /pid --console-socket /s --tty c1",
            // conmon
            "exec --pid-file /pid --process /proc.json --detach --tty --console-socket /s c1",
            "exec -p /proc.json -dt --pid-file=/pid --console-socket /s c1",
        ] {
            assert_eq!(
                command(line),
                Command::Exec(Box::new(want.clone())),
                "{line}"
            );
        }
        let mut want = exec_args("x");
        want.tty = true;
        want.cwd = p("/tmp");
        want.env = vec!["A=1".into(), "B=2".into()];
        want.user = Some("1:2".into());
        want.cap = vec!["CAP_KILL".into(), "CAP_CHOWN".into()];
        want.additional_gids = vec![10, 20];
        want.preserve_fds = 1;
        want.command = ["sh", "-c", "--tty", "-e"].map(String::from).to_vec();
        for line in [
            "exec -t --cwd /tmp --env A=1 -e B=2 --user 1:2 --cap CAP_KILL -c CAP_CHOWN -g 10 --additional-gids 20 --preserve-fds 1 x sh -c --tty -e",
            "exec -t --cwd /tmp --env A=1 -e B=2 --user 1:2 --cap CAP_KILL -c CAP_CHOWN -g 10 --additional-gids 20 --preserve-fds 1 x -- sh -c --tty -e",
        ] {
            assert_eq!(
                command(line),
                Command::Exec(Box::new(want.clone())),
                "{line}"
            );
        }
        // after the id, `--help` is the command's
        let Command::Exec(a) = command("exec x ls --help") else {
            panic!("not exec")
        };
        assert_eq!(a.command, ["ls", "--help"]);
    }

    #[test]
    fn the_other_verbs() {
        let kill = |id: &str, signal: &str, all| {
            Command::Kill(kill::KillArgs {
                id: id.into(),
                signal: signal.into(),
                all,
            })
        };
        assert_eq!(command("kill x"), kill("x", "SIGTERM", false));
        assert_eq!(command("kill x 9"), kill("x", "9", false));
        assert_eq!(command("kill --all x KILL"), kill("x", "KILL", true));
        assert_eq!(command("kill x KILL -a"), kill("x", "KILL", true));
        let delete = |force| {
            Command::Delete(delete::DeleteArgs {
                id: "x".into(),
                force,
            })
        };
        assert_eq!(command("delete x"), delete(false));
        assert_eq!(command("delete --force x"), delete(true));
        assert_eq!(command("delete -f x"), delete(true));
        assert_eq!(
            command("ps --format json x"),
            Command::Ps(ps::PsArgs {
                format: "json".into(),
                id: "x".into(),
                ps_args: vec![],
            })
        );
        assert_eq!(
            command("ps x -o pid,comm"),
            Command::Ps(ps::PsArgs {
                format: "table".into(),
                id: "x".into(),
                ps_args: vec!["-o".into(), "pid,comm".into()],
            })
        );
        assert_eq!(
            command("list --format json -q"),
            Command::List(list::ListArgs {
                format: "json".into(),
                quiet: true,
            })
        );
        assert_eq!(
            command("list"),
            Command::List(list::ListArgs {
                format: "table".into(),
                quiet: false,
            })
        );
        assert_eq!(
            command("pause x"),
            Command::Pause(pause::PauseArgs { id: "x".into() })
        );
        assert_eq!(
            command("resume x"),
            Command::Resume(pause::PauseArgs { id: "x".into() })
        );
        assert_eq!(
            command("events --stats x"),
            Command::Events(events::EventsArgs {
                id: "x".into(),
                interval: "5s".into(),
                stats: true,
            })
        );
        assert_eq!(
            command("events --interval=2s x"),
            Command::Events(events::EventsArgs {
                id: "x".into(),
                interval: "2s".into(),
                stats: false,
            })
        );
        assert_eq!(
            command("spec --rootless --bundle /b"),
            Command::Spec(spec::SpecArgs {
                bundle: p("/b"),
                rootless: true,
                runc_compat: false,
            })
        );
        assert_eq!(
            command("spec --runc-compat"),
            Command::Spec(spec::SpecArgs {
                bundle: None,
                rootless: false,
                runc_compat: true,
            })
        );
        assert_eq!(command("features"), Command::Features);
        assert!(matches!(
            command("checkpoint --image-path /i x"),
            Command::Checkpoint(_)
        ));
        assert!(matches!(command("restore x"), Command::Restore(_)));
        let Command::Update(u) = command("update --resources - x") else {
            panic!("not update")
        };
        assert_eq!((u.id.as_str(), u.resources), ("x", p("-")));
        let Command::Update(u) = command("update --pids-limit -1 --cpu-quota -1 --memory 1g x")
        else {
            panic!("not update")
        };
        assert_eq!(
            (u.pids_limit, u.cpu_quota, u.memory.as_deref()),
            (Some(-1), Some(-1), Some("1g"))
        );
    }

    #[test]
    fn help_and_version() {
        for (line, has) in [
            ("--help", "COMMANDS:"),
            ("-h", "COMMANDS:"),
            ("help", "COMMANDS:"),
            ("--root /r --help", "COMMANDS:"),
            ("create --help", "berth-runtime create - create a container"),
            ("create -h x", "--bundle value, -b value"),
            ("help exec", "--process value, -p value"),
            ("exec --help", "--env value, -e value"),
            ("help update", "--memory-swap value"),
            ("kill --help", "<container-id> [signal]"),
        ] {
            match parse(&argv(line)) {
                Ok(Parsed::Help(text)) => assert!(text.contains(has), "{line}: {text}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        for line in ["-v", "--version", "--version state x"] {
            assert!(cli(line).global.version, "{line}");
        }
        assert_eq!(cli("").command, None);
        assert_eq!(cli("--root /r").command, None);
    }

    /// Command-line errors name what is wrong: the flag, the value, the verb.
    #[test]
    fn errors_name_the_flag_value_or_verb() {
        for (line, msg, verb) in [
            ("frobnicate x", "unrecognized command 'frobnicate'", None),
            ("help frobnicate", "no help topic for 'frobnicate'", None),
            (
                "--bogus state x",
                "flag provided but not defined: --bogus",
                None,
            ),
            ("--root", "flag needs an argument: --root", None),
            ("-v --rootless", "flag needs an argument: --rootless", None),
            (
                "create",
                "\"create\" requires exactly 1 argument(s): missing container id",
                Some("create"),
            ),
            (
                "create --bundle /b",
                "\"create\" requires exactly 1 argument(s): missing container id",
                Some("create"),
            ),
            (
                "start x y",
                "\"start\" requires exactly 1 argument(s): unexpected argument \"y\"",
                Some("start"),
            ),
            (
                "kill",
                "\"kill\" requires a minimum of 1 argument(s): missing container id",
                Some("kill"),
            ),
            (
                "kill x 9 y",
                "\"kill\" requires a maximum of 2 argument(s): unexpected argument \"y\"",
                Some("kill"),
            ),
            (
                "list x",
                "\"list\" requires exactly 0 argument(s): unexpected argument \"x\"",
                Some("list"),
            ),
            (
                "features x",
                "\"features\" requires exactly 0 argument(s): unexpected argument \"x\"",
                Some("features"),
            ),
            (
                "exec",
                "\"exec\" requires a minimum of 1 argument(s): missing container id",
                Some("exec"),
            ),
            (
                "create --bogus x",
                "flag provided but not defined: --bogus",
                Some("create"),
            ),
            ("run -z x", "flag provided but not defined: -z", Some("run")),
            // runc's top-level-only flags stay before the verb
            (
                "create --rootless true x",
                "flag provided but not defined: --rootless",
                Some("create"),
            ),
            (
                "create x --bundle",
                "flag needs an argument: --bundle",
                Some("create"),
            ),
            (
                "update --memory --pids-limit 1 x",
                "flag needs an argument: --memory",
                Some("update"),
            ),
            (
                "create --preserve-fds abc x",
                "invalid value \"abc\" for flag --preserve-fds: invalid digit found in string",
                Some("create"),
            ),
            (
                "create --preserve-fds -1 x",
                "invalid value \"-1\" for flag --preserve-fds: invalid digit found in string",
                Some("create"),
            ),
            (
                "exec -g x1 x sh",
                "invalid value \"x1\" for flag --additional-gids: invalid digit found in string",
                Some("exec"),
            ),
            (
                "run --detach=yes x",
                "invalid boolean value \"yes\" for flag --detach",
                Some("run"),
            ),
        ] {
            let e = error(line);
            assert_eq!(e.error.0, msg, "{line}");
            assert_eq!(e.verb, verb, "{line}");
            let hint = e.hint();
            match verb {
                Some(v) => assert!(hint.contains(&format!("{PROG} {v} --help")), "{hint}"),
                None => assert!(hint.contains(&format!("{PROG} --help")), "{hint}"),
            }
        }
        // the log settings read before an error, to log it where the supervisor looks
        let e = error("--log /l --log-format json create");
        assert_eq!(
            (e.global.log.as_deref(), e.global.log_format.as_str()),
            (Some("/l"), "json")
        );
    }

    /// Every verb's help renders, and every flag name is unique within a verb.
    #[test]
    fn every_verb_has_help_and_unique_flags() {
        for v in VERBS {
            let h = verb_help(v);
            assert!(h.contains(v.about), "{}", v.name);
            let mut names: Vec<&str> = v
                .flags
                .iter()
                .chain(std::iter::once(&GLOBAL_FLAGS))
                .flat_map(|f| f.iter())
                .flat_map(|f| [Some(f.long.to_owned()), f.short.map(String::from)])
                .flatten()
                .map(|s| &*s.leak())
                .collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{}: a flag name twice", v.name);
        }
    }
}
