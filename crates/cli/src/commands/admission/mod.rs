//! `berth admission serve | certs`: the Kubernetes admission webhook and what deploying it
//! needs.

pub mod certs;
mod serve;

use clap::{Args, Subcommand};

/// `berth admission …`.
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
    /// Make a CA and the webhook's TLS serving certificate (and the caBundle of its webhook
    /// configurations).
    Certs(certs::CertsArgs),
}

pub fn run(args: AdmissionArgs) -> anyhow::Result<()> {
    match args.command {
        AdmissionCommand::Serve(a) => serve::run(a),
        AdmissionCommand::Certs(a) => certs::run(a),
    }
}
