//! `berth tag SRC DST`: name an image of the local store again.

use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct TagArgs {
    /// An image of the local store.
    #[arg(value_parser = super::parse_reference)]
    source: berth_oci::Reference,
    /// The new name.
    #[arg(value_parser = super::parse_reference)]
    target: berth_oci::Reference,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: TagArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let src = args.source.to_string();
    let mut record = store.image(&src)?.ok_or_else(|| {
        anyhow::anyhow!("no image {src} in the local store\nhint: `berth images` lists the images")
    })?;
    record.name = args.target.to_string();
    store.put_image(record)?;
    Ok(())
}
