//! `berth save IMAGE… -o FILE [--format docker-archive|oci-archive]`: images of the local
//! store into one archive that `podman load`, `docker load` and skopeo read.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::{DataArgs, PlatformArgs};
use berth_transfer::ArchiveFormat;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// `docker save`'s format (uncompressed layers, manifest.json).
    DockerArchive,
    /// A tar of an OCI image layout.
    OciArchive,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The images to save, as named in the local store.
    #[arg(required = true, value_parser = super::parse_reference)]
    images: Vec<berth_oci::Reference>,
    /// The archive to write (replaced only once it is complete).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// The archive format.
    #[arg(long, value_enum, default_value = "docker-archive")]
    format: Format,
    #[command(flatten)]
    platforms: PlatformArgs,
    /// Also save the images' referrers (signatures, SBOMs, attestations) kept in the
    /// local store (`pull --referrers`, `copy --referrers … store:NAME`); `load` keeps
    /// them. Only an oci-archive can hold them.
    #[arg(long, short = 'r')]
    referrers: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: SaveArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let names: Vec<String> = args.images.iter().map(ToString::to_string).collect();
    let format = match args.format {
        Format::DockerArchive => ArchiveFormat::Docker,
        Format::OciArchive => ArchiveFormat::Oci,
    };
    let mut opts = args.platforms.copy_options();
    opts.referrers = args.referrers;
    let progress = crate::progress::Progress::new(crate::progress::Mode::detect(args.quiet));
    let saved = super::runtime()?.block_on(berth_transfer::archive::save(
        &store,
        &names,
        &args.output,
        format,
        &opts,
        &progress,
    ));
    progress.finish();
    saved.with_context(|| format!("failed to save to {}", args.output.display()))?;
    Ok(())
}
