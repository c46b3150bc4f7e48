//! `berth image unpack IMAGE`: make every layer of an image in the local store a committed
//! snapshot (what `berth run` mounts), unpacking the missing ones in parallel; `berth pull
//! --unpack` does the same after the pull.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use berth_image::rootfs::{EnsureOptions, EnsureReport, ensure_layers, resolve};
use berth_image::snapshot::SnapshotStore;
use berth_store::Store;
use clap::Args;

use super::DataArgs;

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The image (a name in the local store).
    #[arg(value_parser = super::parse_reference)]
    reference: berth_oci::Reference,
    /// Layers unpacked at once (default: the CPUs, at most 8).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// No summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: UnpackArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let snap = args.data.snapshots()?;
    let top = unpack_image(
        &store,
        &snap,
        &args.reference.to_string(),
        args.workers,
        args.quiet,
    )?;
    super::print(&top)
}

/// Unpack image `name` of `store` into `snap`; returns the top chain ID (empty for an image
/// without layers). A summary on stderr unless `quiet`.
pub fn unpack_image(
    store: &Store,
    snap: &SnapshotStore,
    name: &str,
    workers: Option<usize>,
    quiet: bool,
) -> anyhow::Result<String> {
    let record = store.image(name)?.with_context(|| {
        format!("no image {name} in the local store\nhint: `berth pull {name}` first")
    })?;
    let platform = match &record.platform {
        Some(p) => berth_oci::Platform::parse(p)
            .with_context(|| format!("image {name} records an invalid platform {p:?}"))?,
        None => berth_oci::Platform::host(),
    };
    let image = resolve(store, &record.digest, &platform)
        .with_context(|| format!("failed to read image {name}"))?;
    let mut opts = EnsureOptions {
        image_name: Some(name.to_owned()),
        ..EnsureOptions::default()
    };
    if let Some(w) = workers {
        opts.workers = w.max(1);
    }
    let started = Instant::now();
    let report = ensure_layers(snap, store, &image, &opts)
        .with_context(|| format!("failed to unpack image {name}"))?;
    if !quiet {
        summary(name, "", &report, started, snap);
    }
    Ok(report.top.map(|d| d.to_string()).unwrap_or_default())
}

/// The line on stderr after an unpack (`how`: "" or " while pulling").
pub fn summary(
    name: &str,
    how: &str,
    report: &EnsureReport,
    started: Instant,
    snap: &SnapshotStore,
) {
    let secs = started.elapsed().as_secs_f64();
    let _ = writeln!(
        std::io::stderr().lock(),
        "unpacked {name}{how}: {} layers new, {} present, {:.1} MiB in {secs:.2}s ({} snapshots)",
        report.unpacked.len(),
        report.reused,
        report.bytes as f64 / (1 << 20) as f64,
        snap.driver().name(),
    );
}
