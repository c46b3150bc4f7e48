//! `berth rmi REF…`: forget images of the local store (`berth image prune` frees their
//! blobs).

use anyhow::Context;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove.
    #[arg(required = true, value_parser = super::parse_reference)]
    references: Vec<berth_oci::Reference>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: RmiArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    for r in &args.references {
        let name = r.to_string();
        match store.remove_image(&name)? {
            Some(record) => {
                // its snapshots become collectable unless another image or a container
                // references them
                if let Some(snap) = args.data.existing_snapshots()? {
                    berth_image::rootfs::release_image(&snap, &name).with_context(|| {
                        format!("failed to drop the snapshot reference of {name}")
                    })?;
                }
                super::print(&format!("untagged {name} ({})", record.digest))?
            }
            None => anyhow::bail!(
                "no image {name} in the local store\nhint: `berth images` lists the images"
            ),
        }
    }
    Ok(())
}
