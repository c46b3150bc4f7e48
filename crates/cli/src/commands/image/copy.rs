//! `berth copy SRC DST`: between registries (`[docker://]REF`), OCI layouts (`oci:PATH[:TAG]`),
//! the local store (`store:NAME`) and archives (`docker-archive:PATH[:REF]`,
//! `oci-archive:PATH[:TAG]`).

use clap::Args;

use super::{DataArgs, PlatformArgs, RegistryFlags};
use berth_transfer::Endpoint;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Where to copy from.
    #[arg(value_parser = super::parse_endpoint)]
    source: Endpoint,
    /// Where to copy to.
    #[arg(value_parser = super::parse_endpoint)]
    destination: Endpoint,
    #[command(flatten)]
    platforms: PlatformArgs,
    /// Also copy the image's referrers (signatures, SBOMs, attestations) and theirs, found
    /// with the referrers API or its tag fallback (registries) or in index.json (layouts).
    #[arg(long, short = 'r')]
    referrers: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: CopyArgs) -> anyhow::Result<()> {
    let (src, dst) = (args.source, args.destination);
    let uses_store = matches!(src, Endpoint::Store(_)) || matches!(dst, Endpoint::Store(_));
    let store = if uses_store {
        Some(args.data.open()?)
    } else {
        None
    };
    let client = args.registry.client()?;
    let mut opts = args.platforms.copy_options();
    opts.referrers = args.referrers;
    let copied = super::copy(&client, store.as_ref(), &src, &dst, &opts, args.quiet)?;
    if args.referrers && !args.quiet {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "copied {} referrers",
            copied.referrers
        );
    }
    super::print(copied.digest.as_str())
}
