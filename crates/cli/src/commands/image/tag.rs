//! `berth tag SRC DST`: name an image of the local store again.

use clap::Args;

use super::DataArgs;
use crate::transfer::store_name;

#[derive(Debug, Args)]
pub struct TagArgs {
    /// An image of the local store.
    source: String,
    /// The new name.
    target: String,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: TagArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let src = store_name(&args.source)?;
    let mut record = store.image(&src)?.ok_or_else(|| {
        anyhow::anyhow!("no image {src} in the local store\nhint: `berth images` lists the images")
    })?;
    record.name = store_name(&args.target)?;
    store.put_image(record)?;
    Ok(())
}
