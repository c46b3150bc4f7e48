//! `berth`: the command line of the berth container stack.
//!
//! Commands are thin: parse flags, call one library function, render the result. Data goes
//! to stdout; logs, progress and errors to stderr. Exit codes: 0 success, 1 failure,
//! 2 usage error.

mod commands;
mod dirs;
mod logging;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log);
    let result = match cli.command {
        Command::Registry(args) => commands::registry::run(args),
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
    for cause in err.chain().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
}
