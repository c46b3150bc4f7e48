//! `berth images`: the images of the local store.

use clap::{Args, ValueEnum};

use super::DataArgs;

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format; `json` is a stable array of records.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let images = args.data.open()?.images()?;
    match args.format {
        Format::Json => super::print(&serde_json::to_string_pretty(&images)?),
        Format::Table => {
            let mut out = format!(
                "{:<50} {:<20} {:<14} {:>10}",
                "NAME", "DIGEST", "PLATFORM", "SIZE"
            );
            for i in &images {
                let short = i.digest.as_str().get(..19).unwrap_or(i.digest.as_str());
                out.push_str(&format!(
                    "\n{:<50} {:<20} {:<14} {:>10}",
                    i.name,
                    short,
                    i.platform.as_deref().unwrap_or("-"),
                    i.size
                ));
            }
            super::print(&out)
        }
    }
}
