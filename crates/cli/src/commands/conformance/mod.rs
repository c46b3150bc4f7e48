//! `berth conformance …`: check registries against the OCI distribution-spec.

pub mod check;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    command: ConformanceCommand,
}

#[derive(Debug, Subcommand)]
enum ConformanceCommand {
    /// Check REGISTRY/NAMESPACE against distribution-spec v1.1; exit 0 only when every MUST
    /// passes. Pushes generated test data to NAMESPACE (and NAMESPACE-mount), deleted
    /// afterwards where the registry allows; or, given REGISTRY/REPOSITORY:TAG, checks
    /// that existing image read-only (only GET and HEAD are sent). --include-main adds the
    /// optional checks of the spec's main branch (reported, never failing the run).
    Check(check::CheckArgs),
}

pub fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    match args.command {
        ConformanceCommand::Check(a) => check::run(a),
    }
}
