//! `berth conformance …`: check registries against the OCI distribution-spec, and signature
//! verifiers against the Notary Project specification.

pub mod check;
pub mod sign;
pub mod verify;

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
    /// Check a signature verifier against the Notary Project specification v1.1: present it
    /// with signatures that MUST be accepted and MUST be refused (built now from a test
    /// PKI; --vectors adds notation's), each with its trust policy and store, and compare
    /// its verdicts (exit status 0 = accepted) with the specification's. Exit 0 only when
    /// it conforms.
    Verify(Box<verify::VerifyArgs>),
    /// Check a signer against the Notary Project specification v1.1: push test images, run
    /// the signer on each with a test key and certificate chain, and judge every signature
    /// it produced rule by rule (envelope, headers, algorithm, times, chain, payload,
    /// signature manifest, how it was pushed). Exit 0 only when it conforms.
    Sign(Box<sign::SignArgs>),
}

pub fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    match args.command {
        ConformanceCommand::Check(a) => check::run(a),
        ConformanceCommand::Verify(a) => verify::run(*a),
        ConformanceCommand::Sign(a) => sign::run(*a),
    }
}
