//! `berth load [-i FILE]`: the images of a docker-archive or oci-archive (detected) into the
//! local store, under the names the archive gives them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{DataArgs, PlatformArgs, RegistryFlags};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive to read (`docker save`/`podman save` output, or an oci-archive);
    /// standard input when not given.
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
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
    let rt = super::runtime()?;
    let (loaded, what) = match &args.input {
        Some(path) => (
            rt.block_on(berth_transfer::archive::load(
                &client, &store, path, &opts, &progress,
            )),
            path.display().to_string(),
        ),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                progress.finish();
                anyhow::bail!(
                    "no archive to load: standard input is a terminal\nhint: berth load -i FILE, or pipe one in (podman save IMAGE | berth load)"
                );
            }
            (
                rt.block_on(berth_transfer::archive::load_stream(
                    &client,
                    &store,
                    std::io::stdin(),
                    &opts,
                    &progress,
                )),
                "standard input".to_owned(),
            )
        }
    };
    progress.finish();
    let loaded = loaded.with_context(|| format!("failed to load {what}"))?;
    for l in loaded {
        super::print(&format!("Loaded image: {}", l.name))?;
    }
    Ok(())
}
