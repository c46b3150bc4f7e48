//! `berth pull REF`: a registry image into the local store; prints its digest.

use clap::Args;

use super::{DataArgs, RegistryFlags};
use crate::transfer::{self, CopyOptions, Endpoint, Platform};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image (`busybox`, `host:port/repo:tag`, `repo@sha256:…`).
    reference: String,
    /// The platform to pull from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = Platform::parse)]
    platform: Option<Platform>,
    /// Pull every platform of a multi-platform image.
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: PullArgs) -> anyhow::Result<()> {
    let src = Endpoint::parse(&args.reference)?;
    let Endpoint::Registry(reference) = &src else {
        anyhow::bail!(
            "{} is not a registry reference\nhint: use `berth copy` for OCI layouts",
            args.reference
        );
    };
    let dst = Endpoint::Store(reference.to_string());
    let store = args.data.open()?;
    let client = args.registry.client()?;
    let opts = CopyOptions {
        all_platforms: args.all_platforms,
        platform: args.platform.unwrap_or_else(Platform::host),
        quiet: args.quiet,
    };
    let copied =
        super::runtime()?.block_on(transfer::copy(&client, Some(&store), &src, &dst, &opts))?;
    if !args.quiet {
        use std::io::Write;
        let platform = copied.platform.as_deref().unwrap_or("as published");
        let _ = writeln!(std::io::stderr().lock(), "pulled {reference} ({platform})");
    }
    super::print(copied.digest.as_str())
}
