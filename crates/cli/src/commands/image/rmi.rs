//! `berth rmi REF…`: forget images of the local store (`berth image prune` frees their
//! blobs).

use clap::Args;

use super::DataArgs;
use crate::transfer::store_name;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove.
    #[arg(required = true)]
    references: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: RmiArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    for r in &args.references {
        let name = store_name(r)?;
        match store.remove_image(&name)? {
            Some(record) => super::print(&format!("untagged {name} ({})", record.digest))?,
            None => anyhow::bail!(
                "no image {name} in the local store\nhint: `berth images` lists the images"
            ),
        }
    }
    Ok(())
}
