//! `berth admission serve | certs`: the Kubernetes admission webhook and what deploying it
//! needs.

pub mod certs;

use clap::{Args, Subcommand};

/// `berth admission …`.
#[derive(Debug, Args)]
pub struct AdmissionArgs {
    #[command(subcommand)]
    command: AdmissionCommand,
}

#[derive(Debug, Subcommand)]
enum AdmissionCommand {
    /// Make a CA and the webhook's TLS serving certificate (and the caBundle of its webhook
    /// configurations).
    Certs(certs::CertsArgs),
}

pub fn run(args: AdmissionArgs) -> anyhow::Result<()> {
    match args.command {
        AdmissionCommand::Certs(a) => certs::run(a),
    }
}
