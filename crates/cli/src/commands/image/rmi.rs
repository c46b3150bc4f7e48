//! `berth rmi REF…`: forget images of the local store (`berth image prune` frees their
//! blobs).

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
            Some(record) => super::print(&format!("untagged {name} ({})", record.digest))?,
            None => anyhow::bail!(
                "no image {name} in the local store\nhint: `berth images` lists the images"
            ),
        }
    }
    Ok(())
}
