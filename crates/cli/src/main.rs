//! `berth`: the command line of the berth container stack.
//!
//! Commands are thin: parse flags, call one library function, render the result. Data goes
//! to stdout; logs, progress and errors to stderr. Exit codes: 0 success, 1 failure,
//! 2 usage error; `run`, `create`, `start` and `exec` exit as docker's do (125 berth failed,
//! 126 the command cannot be invoked, 127 not found, else the container's status).

mod commands;
mod dirs;
mod duration;
mod logging;
mod progress;
mod rootless;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A secure-by-default OCI container stack"
)]
struct Cli {
    #[command(flatten)]
    log: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run and maintain an OCI distribution-spec registry.
    Registry(commands::registry::RegistryArgs),
    /// Pull an image from a registry into the local store; prints its digest.
    Pull(commands::image::pull::PullArgs),
    /// Push an image of the local store to its registry; prints its digest.
    Push(commands::image::push::PushArgs),
    /// Copy an image between registries ([docker://]REF), OCI layouts (oci:PATH[:TAG]),
    /// the local store (store:NAME) and archives (docker-archive:PATH[:REF],
    /// oci-archive:PATH[:TAG]); prints its digest.
    Copy(commands::image::copy::CopyArgs),
    /// Save images of the local store into a docker-archive or oci-archive file.
    Save(commands::image::save::SaveArgs),
    /// Load the images of a docker-archive or oci-archive file into the local store.
    Load(commands::image::load::LoadArgs),
    /// Make a one-layer image of a root filesystem (a tar archive or a directory).
    Import(commands::image::import::ImportArgs),
    /// List the images of the local store.
    Images(commands::image::images::ImagesArgs),
    /// Show an image's manifest, config, layers and platforms.
    Inspect(commands::image::inspect::InspectArgs),
    /// Give an image of the local store another name.
    Tag(commands::image::tag::TagArgs),
    /// Remove images from the local store (`berth image prune` frees their blobs).
    Rmi(commands::image::rmi::RmiArgs),
    /// Manage the local store's images.
    Image(commands::image::ImageArgs),
    /// Check registries against the OCI distribution-spec, and signature verifiers against the
    /// Notary Project specification.
    Conformance(commands::conformance::ConformanceArgs),
    /// Log in to a registry (credentials are checked, then kept in docker's config.json).
    Login(commands::login::LoginArgs),
    /// Log out of a registry.
    Logout(commands::logout::LogoutArgs),
    /// Disk usage of images and snapshots, and pruning of what nothing uses.
    System(commands::system::SystemArgs),
    /// Manage networks (CNI configuration lists): create, ls, inspect, rm, prune.
    Network(commands::network::NetworkArgs),
    /// Manage named volumes: create, ls, inspect, rm, prune.
    Volume(commands::volume::VolumeArgs),
    /// Manage signing keys: generate, list, import, export, rm.
    Key(commands::trust::key::KeyArgs),
    /// Make test certificates (generate-test, as notation's).
    Cert(commands::trust::cert::CertArgs),
    /// Run a command in a new container of an image (pulled when missing).
    Run(commands::container::run::RunArgs),
    /// Create a container of an image (start it with `berth start`); prints its id.
    Create(commands::container::run::RunArgs),
    /// Start created containers.
    Start(commands::container::start::StartArgs),
    /// List containers.
    Ps(commands::container::ps::PsArgs),
    /// Show a container's logs.
    Logs(commands::container::logs::LogsArgs),
    /// Stop running containers: the stop signal, then SIGKILL after a timeout.
    Stop(commands::container::stop::StopArgs),
    /// Send a signal to running containers.
    Kill(commands::container::kill::KillArgs),
    /// Change a container's settings while it runs (--network-bandwidth).
    Update(commands::container::update::UpdateArgs),
    /// Remove containers, their snapshots and anonymous volumes.
    Rm(commands::container::rm::RmArgs),
    /// Wait for containers to exit; prints their exit codes.
    Wait(commands::container::wait::WaitArgs),
    /// List a container's published ports (`80/tcp -> 0.0.0.0:32768`).
    Port(commands::container::port::PortArgs),
    /// Run a command in a running container.
    Exec(commands::container::exec::ExecArgs),
    /// Attach this terminal (or stdio) to a running container.
    Attach(commands::container::attach::AttachArgs),
    /// Manage containers (`ls`, `run`, `create`, `start`, `stop`, `kill`, `rm`, `logs`,
    /// `inspect`, `prune`, `wait`, `exec`, `attach`).
    Container(commands::container::ContainerArgs),
    /// Sign an image in its registry (Notary Project signature); prints the signature's digest.
    Sign(commands::trust::sign::SignArgs),
    /// Verify an image's Notary Project signatures against the trust policy.
    Verify(commands::trust::verify::VerifyArgs),
    /// Record and sign where an image came from (SLSA provenance naming the source commit),
    /// attached to it in its registry; prints the attestation's digest.
    Attest(commands::trust::attest::AttestArgs),
    /// Check role policies (berth.policy/v1).
    Policy(commands::trust::policy::PolicyArgs),
    /// Signing on push (`init`) and trust on first use: the signing identities pinned per
    /// repository (`pins`, `accept`, `forget`).
    Trust(commands::trust::tofu::TrustArgs),
    /// The Kubernetes admission webhook enforcing role policies per namespace (`serve`), and
    /// its TLS certificates (`certs`).
    Admission(commands::admission::AdmissionArgs),
    /// List the packages of an image as an SPDX or CycloneDX document; attach it, signed, to
    /// the image in its registry (--attach), or read the attached one back (--from-referrer).
    Sbom(commands::sbom::SbomArgs),
    /// Scan an image or an SBOM for known vulnerabilities with the offline OSV database.
    /// Exit status 1 when a finding reaches --fail-on, 2 when the scan fails.
    Scan(commands::scan::ScanArgs),
    /// The offline OSV vulnerability database: import osv.dev exports, show what it holds.
    Db(commands::db::DbArgs),
    /// Watch what containers do (eBPF, as root): execs, connects and writes checked against
    /// the profile of their image; drift alerts (JSON lines or Falco's format), and with
    /// --enforce drift killed and connects outside the policy refused.
    Watch(commands::watch::WatchArgs),
}

/// `berth run …` with only `run`'s own flags: the whole command tree ([`Cli`], every
/// subcommand's arguments) takes about a millisecond to build at every start, a tenth of a
/// bare runtime's container start. What this accepts, [`Cli`] parses the same way (the same
/// `LogArgs` and `RunArgs`; `run_fast_path_parses_as_the_full_command_line` checks);
/// anything else (`--help`, `--version`, a mistake) goes through [`Cli`] for its usual
/// output.
#[derive(Debug, Parser)]
#[command(name = "berth", version)]
struct RunCli {
    #[command(flatten)]
    log: logging::LogArgs,
    #[command(subcommand)]
    command: RunOnly,
}

#[derive(Debug, Subcommand)]
enum RunOnly {
    Run(commands::container::run::RunArgs),
}

/// The command line: [`RunCli`] first for `berth run`, else (and when it refuses) [`Cli`].
fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    if args.get(1).is_some_and(|a| a == "run")
        && let Ok(RunCli {
            log,
            command: RunOnly::Run(run),
        }) = RunCli::try_parse_from(&args)
    {
        return Ok(Cli {
            log,
            command: Command::Run(run),
        });
    }
    Cli::try_parse_from(args)
}

/// Commands whose failures exit as `docker run`'s do (125, 126, 127).
/// Whether the command line is `berth run …` or `berth container run …` (global flags before
/// the command are not looked through: this only decides an early start of the warm-up).
fn starts_a_container() -> bool {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).take(2).collect();
    match args.as_slice() {
        [first, ..] if first == "run" => true,
        [first, second] => first == "container" && second == "run",
        _ => false,
    }
}

const RUN_LIKE: [&str; 5] = ["run", "create", "start", "exec", "container"];

fn main() -> ExitCode {
    // `berth __monitor STATE_ROOT ID`: the per-container monitor (berth-engine), dispatched
    // before anything else so that it stays single-threaded (no logging, no async runtime)
    let mut args = std::env::args_os();
    match args.nth(1) {
        Some(a) if a == "__monitor" => {
            let rest: Vec<std::ffi::OsString> = args.collect();
            let code = berth_engine::monitor::main(&rest);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        // rootless: the process holding the user's namespaces (see `rootless`)
        Some(a) if a == rootless::PAUSE_ARG => return rootless::pause_main(),
        _ => {}
    }
    // `berth run` as root: start the kernel's wait for the runtime's cgroup writes before
    // even the flags are parsed (berth_engine::warm_up_cgroup_lock: a thread; a rootless
    // berth stays single-threaded until it has entered its namespace, and starts it later)
    let warm = (rustix::process::geteuid().is_root() && starts_a_container())
        .then(berth_engine::warm_up_cgroup_lock);
    let cli = match parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            let run_like = std::env::args()
                .nth(1)
                .is_some_and(|a| RUN_LIKE.contains(&a.as_str()));
            return if run_like && e.use_stderr() {
                ExitCode::from(125)
            } else {
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
            };
        }
    };
    // an ordinary user's berth becomes root of its rootless namespace, while still
    // single-threaded; the registry and its client need no namespace
    let needs_namespace = !matches!(
        cli.command,
        Command::Registry(_)
            | Command::Conformance(_)
            | Command::Login(_)
            | Command::Logout(_)
            | Command::Sign(_)
            | Command::Verify(_)
            | Command::Attest(_)
            | Command::Key(_)
            | Command::Cert(_)
            | Command::Policy(_)
            | Command::Trust(_)
            | Command::Admission(_)
            // the eBPF probes need the host's root, not a namespace's
            | Command::Watch(_)
    );
    if needs_namespace && let Err(e) = rootless::enter() {
        let run_like = std::env::args()
            .nth(1)
            .is_some_and(|a| RUN_LIKE.contains(&a.as_str()));
        report(&e);
        return ExitCode::from(if run_like { 125 } else { 1 });
    }
    let log_format = if matches!(cli.command, Command::Admission(_)) {
        logging::LogFormat::Json
    } else {
        logging::LogFormat::Text
    };
    logging::init(&cli.log, log_format);
    use commands::container as c;
    let legacy = |r: anyhow::Result<()>| r.map(|()| 0).map_err(c::Failure::other);
    let result = match cli.command {
        Command::Registry(args) => legacy(commands::registry::run(args)),
        Command::Pull(args) => legacy(commands::image::pull::run(args)),
        Command::Push(args) => legacy(commands::image::push::run(args)),
        Command::Copy(args) => legacy(commands::image::copy::run(args)),
        Command::Save(args) => legacy(commands::image::save::run(args)),
        Command::Load(args) => legacy(commands::image::load::run(args)),
        Command::Import(args) => legacy(commands::image::import::run(args)),
        Command::Images(args) => legacy(commands::image::images::run(args)),
        Command::Inspect(args) => legacy(commands::image::inspect::run(args)),
        Command::Tag(args) => legacy(commands::image::tag::run(args)),
        Command::Rmi(args) => legacy(commands::image::rmi::run(args)),
        Command::Image(args) => legacy(commands::image::run(args)),
        Command::Conformance(args) => legacy(commands::conformance::run(args)),
        Command::Login(args) => legacy(commands::login::run(args)),
        Command::Logout(args) => legacy(commands::logout::run(args)),
        Command::System(args) => legacy(commands::system::run(args)),
        Command::Network(args) => legacy(commands::network::run(args)),
        Command::Volume(args) => legacy(commands::volume::run(args)),
        Command::Key(args) => legacy(commands::trust::key::run(args)),
        Command::Cert(args) => legacy(commands::trust::cert::run(args)),
        Command::Policy(args) => legacy(commands::trust::policy::run(args)),
        Command::Trust(args) => legacy(commands::trust::tofu::run(args)),
        Command::Admission(args) => legacy(commands::admission::run(args)),
        Command::Run(args) => c::run::run(args, warm),
        Command::Create(args) => c::run::create(args),
        Command::Start(args) => c::start::run(args),
        Command::Exec(args) => c::exec::run(args),
        Command::Attach(args) => c::attach::run(args),
        Command::Container(args) => c::run(args, warm),
        Command::Ps(args) => c::ps::run(args).map_err(c::Failure::other),
        Command::Logs(args) => c::logs::run(args).map_err(c::Failure::other),
        Command::Stop(args) => c::stop::run(args).map_err(c::Failure::other),
        Command::Kill(args) => c::kill::run(args).map_err(c::Failure::other),
        Command::Update(args) => c::update::run(args).map_err(c::Failure::other),
        Command::Rm(args) => c::rm::run(args).map_err(c::Failure::other),
        Command::Wait(args) => c::wait::run(args).map_err(c::Failure::other),
        Command::Port(args) => c::port::run(args).map_err(c::Failure::other),
        Command::Sign(args) => legacy(commands::trust::sign::run(args)),
        Command::Verify(args) => legacy(commands::trust::verify::run(args)),
        Command::Attest(args) => legacy(commands::trust::attest::run(args)),
        Command::Sbom(args) => legacy(commands::sbom::run(args)),
        Command::Scan(args) => commands::scan::run(args),
        Command::Db(args) => legacy(commands::db::run(args)),
        Command::Watch(args) => commands::watch::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(failure) => {
            report(&failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// "error: …" then one "  caused by: …" line per source, as cargo and uv print them.
fn report(err: &anyhow::Error) {
    use std::io::Write;
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "error: {err}");
    let mut hint = None;
    for cause in err.chain() {
        if hint.is_none()
            && let Some(e) = cause.downcast_ref::<berth_distribution::Error>()
        {
            hint = e.hint();
        }
        if hint.is_none()
            && let Some(e) = cause.downcast_ref::<berth_transfer::TransferError>()
        {
            hint = e.hint();
        }
    }
    for cause in err.chain().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
    if let Some(hint) = hint {
        let _ = writeln!(out, "{hint}");
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every command (duplicate flags among flattened
    /// argument groups, say), which otherwise fire only when that command is run.
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
        super::RunCli::command().debug_assert();
    }

    /// `berth run` through the fast path parses exactly as through the whole command line,
    /// and whatever the fast path refuses gets the whole command line's answer.
    #[test]
    fn run_fast_path_parses_as_the_full_command_line() {
        use clap::Parser;
        let accepted: &[&[&str]] = &[
            &["berth", "run", "busybox"],
            &["berth", "run", "--rm", "busybox", "true"],
            &[
                "berth", "run", "-d", "--name", "web", "-p", "8080:80", "nginx",
            ],
            &[
                "berth",
                "run",
                "--rm",
                "-e",
                "A=1",
                "-v",
                "/tmp:/data:ro",
                "img",
                "sh",
                "-c",
                "echo $A",
            ],
            &[
                "berth",
                "run",
                "--log-level",
                "debug",
                "--network",
                "none",
                "img",
                "--",
                "ls",
                "-l",
            ],
            &[
                "berth",
                "run",
                "--memory",
                "64m",
                "--pids-limit",
                "10",
                "img",
                "cat",
                "--help",
            ],
            &[
                "berth",
                "run",
                "--log-format",
                "json",
                "--userns",
                "host",
                "img",
            ],
        ];
        for args in accepted {
            let fast = super::parse_from(args.iter().copied()).unwrap();
            assert!(matches!(fast.command, super::Command::Run(_)), "{args:?}");
            let full = super::Cli::try_parse_from(args.iter().copied()).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{args:?}");
        }
        let refused: &[&[&str]] = &[
            &["berth", "run"],
            &["berth", "run", "--help"],
            &["berth", "run", "--no-such-flag", "img"],
            &["berth", "run", "--memory", "lots", "img"],
            &["berth", "--version"],
        ];
        for args in refused {
            let fast = super::parse_from(args.iter().copied()).unwrap_err();
            let full = super::Cli::try_parse_from(args.iter().copied()).unwrap_err();
            assert_eq!(fast.kind(), full.kind(), "{args:?}");
            assert_eq!(fast.to_string(), full.to_string(), "{args:?}");
        }
        // not `run`: the whole command line, as before
        let ps = super::parse_from(["berth", "ps", "-a"]).unwrap();
        assert!(matches!(ps.command, super::Command::Ps(_)));
    }
}
