//! `berth push REF`: the image named REF in the local store to the registry REF names.

use clap::Args;

use super::{DataArgs, RegistryFlags};
use berth_oci::Platform;
use berth_transfer::{CopyOptions, Endpoint};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image, as named in the local store and to push to.
    #[arg(value_parser = super::parse_registry_reference)]
    reference: berth_oci::Reference,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: PushArgs) -> anyhow::Result<()> {
    let reference = args.reference;
    let dst = Endpoint::Registry(reference.clone());
    let src = Endpoint::Store(reference.to_string());
    let store = args.data.open()?;
    let client = args.registry.client()?;
    let opts = CopyOptions {
        all_platforms: true,
        platform: Platform::host(),
        referrers: false,
    };
    let copied = super::copy(&client, Some(&store), &src, &dst, &opts, args.quiet)?;
    if let Some(record) = store.image(&reference.to_string())?
        && record.digest == copied.digest
    {
        crate::commands::trust::onpush::after_push(&client, &reference, &record, args.quiet)?;
    }
    super::print(copied.digest.as_str())
}
