//! `berth admission serve` (and the verbs next to it): the Kubernetes admission webhook.

mod serve;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct AdmissionArgs {
    #[command(subcommand)]
    command: AdmissionCommand,
}

/// One variant per verb (one file each).
#[derive(Debug, Subcommand)]
enum AdmissionCommand {
    /// Serve the validating (/validate) and mutating (/mutate) webhook endpoints over TLS.
    Serve(serve::ServeArgs),
}

pub fn run(args: AdmissionArgs) -> anyhow::Result<()> {
    match args.command {
        AdmissionCommand::Serve(a) => serve::run(a),
    }
}
