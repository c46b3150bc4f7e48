//! `berth`: the command line of the berth container stack.
//!
//! Commands are thin: parse flags, call one library function, render the result. Data goes
//! to stdout; logs, progress and errors to stderr. Exit codes: 0 success, 1 failure,
//! 2 usage error.

mod commands;
mod dirs;
mod duration;
mod logging;
mod progress;

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
    /// Check registries against the OCI distribution-spec.
    Conformance(commands::conformance::ConformanceArgs),
    /// Log in to a registry (credentials are checked, then kept in docker's config.json).
    Login(commands::login::LoginArgs),
    /// Log out of a registry.
    Logout(commands::logout::LogoutArgs),
    /// Disk usage of images and snapshots, and pruning of what nothing uses.
    System(commands::system::SystemArgs),
}

fn main() -> ExitCode {
    // `berth __monitor STATE_ROOT ID`: the per-container monitor (berth-engine), dispatched
    // before anything else so that it stays single-threaded (no logging, no async runtime)
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__monitor") {
        let rest: Vec<std::ffi::OsString> = args.collect();
        let code = berth_engine::monitor::main(&rest);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    logging::init(&cli.log);
    let result = match cli.command {
        Command::Registry(args) => commands::registry::run(args),
        Command::Pull(args) => commands::image::pull::run(args),
        Command::Push(args) => commands::image::push::run(args),
        Command::Copy(args) => commands::image::copy::run(args),
        Command::Save(args) => commands::image::save::run(args),
        Command::Load(args) => commands::image::load::run(args),
        Command::Import(args) => commands::image::import::run(args),
        Command::Images(args) => commands::image::images::run(args),
        Command::Inspect(args) => commands::image::inspect::run(args),
        Command::Tag(args) => commands::image::tag::run(args),
        Command::Rmi(args) => commands::image::rmi::run(args),
        Command::Image(args) => commands::image::run(args),
        Command::Conformance(args) => commands::conformance::run(args),
        Command::Login(args) => commands::login::run(args),
        Command::Logout(args) => commands::logout::run(args),
        Command::System(args) => commands::system::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
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
