//! `berth load -i FILE`: the images of a docker-archive or oci-archive (detected) into the
//! local store, under the names the archive gives them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{DataArgs, PlatformArgs, RegistryFlags};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive to read (`docker save`/`podman save` output, or an oci-archive).
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,
    #[command(flatten)]
    platforms: PlatformArgs,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let client = RegistryFlags {
        plain_http: false,
        insecure: false,
    }
    .client()?;
    let opts = args.platforms.copy_options();
    let progress = crate::progress::Progress::new(crate::progress::Mode::detect(args.quiet));
    let loaded = super::runtime()?.block_on(berth_transfer::archive::load(
        &client,
        &store,
        &args.input,
        &opts,
        &progress,
    ));
    progress.finish();
    let loaded = loaded.with_context(|| format!("failed to load {}", args.input.display()))?;
    for l in loaded {
        super::print(&format!("Loaded image: {}", l.name))?;
    }
    Ok(())
}
