//! `berth import ROOTFS.tar|DIR NAME[:TAG]`: a root filesystem as a one-layer image in the
//! local store, as `docker import`/`podman import`; prints the image id (its config digest).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::DataArgs;
use berth_transfer::ImportOptions;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A tar archive (plain or gzip) or a directory holding the root filesystem.
    source: PathBuf,
    /// The name to give the image.
    #[arg(value_parser = super::parse_reference)]
    name: berth_oci::Reference,
    /// A comment for the image's history entry.
    #[arg(long, short)]
    message: Option<String>,
    /// The platform the image is for (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = super::parse_platform)]
    platform: Option<berth_oci::Platform>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let opts = ImportOptions {
        message: args.message,
        platform: args.platform.unwrap_or_else(berth_oci::Platform::host),
    };
    let name = args.name.to_string();
    let imported = super::runtime()?
        .block_on(berth_transfer::archive::import(
            &store,
            &args.source,
            &name,
            &opts,
        ))
        .with_context(|| format!("failed to import {}", args.source.display()))?;
    super::print(imported.config.as_str())
}
