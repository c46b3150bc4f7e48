//! `berth pull REF`: a registry image into the local store; prints its digest.

use clap::Args;

use super::{DataArgs, PlatformArgs, RegistryFlags};
use berth_transfer::Endpoint;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image (`busybox`, `host:port/repo:tag`, `repo@sha256:…`).
    #[arg(value_parser = super::parse_registry_reference)]
    reference: berth_oci::Reference,
    #[command(flatten)]
    platforms: PlatformArgs,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Also unpack the layers into snapshots (as `berth image unpack`).
    #[arg(long)]
    unpack: bool,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: PullArgs) -> anyhow::Result<()> {
    let reference = args.reference;
    let src = Endpoint::Registry(reference.clone());
    let dst = Endpoint::Store(reference.to_string());
    let store = args.data.open()?;
    let client = args.registry.client()?;
    let opts = args.platforms.copy_options();
    let copied = super::copy(&client, Some(&store), &src, &dst, &opts, args.quiet)?;
    if !args.quiet {
        use std::io::Write;
        let platform = copied.platform.as_deref().unwrap_or("as published");
        let _ = writeln!(std::io::stderr().lock(), "pulled {reference} ({platform})");
    }
    if args.unpack {
        let snap = args.data.snapshots()?;
        super::unpack::unpack_image(&store, &snap, &reference.to_string(), None, args.quiet)?;
    }
    super::print(copied.digest.as_str())
}
