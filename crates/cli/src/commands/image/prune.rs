//! `berth image prune`: remove blobs no image references.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::DataArgs;
use crate::duration;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Report what would be removed without removing it.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this (a pull may be about to use them). DURATION:
    /// seconds, or 90s, 15m, 2h, 1h30m, 2d. [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    grace: Option<Duration>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: PruneArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let report = store.prune(berth_store::PruneOptions {
        dry_run: args.dry_run,
        grace: args.grace.unwrap_or(berth_store::DEFAULT_GRACE),
    })?;
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut out = String::new();
    for d in &report.removed_blobs {
        out.push_str(&format!("{verb} {d}\n"));
    }
    out.push_str(&format!(
        "{verb} {} blobs, {} bytes; kept {} blobs",
        report.removed_blobs.len(),
        report.bytes_freed(),
        report.blobs_kept
    ));
    if !args.dry_run {
        out.push('\n');
        out.push_str(&collect_snapshots(&store, &args.data)?);
    }
    super::print(&out)
}

/// Drop the snapshot references of images no longer in `store`, then collect the snapshots
/// nothing references; returns the summary line ("" when no snapshot was ever made).
pub fn collect_snapshots(store: &berth_store::Store, data: &DataArgs) -> anyhow::Result<String> {
    let Some(snap) = data.existing_snapshots()? else {
        return Ok(String::new());
    };
    let names: std::collections::HashSet<String> =
        store.images()?.into_iter().map(|r| r.name).collect();
    berth_image::rootfs::release_missing_images(&snap, |n| names.contains(n))
        .context("failed to drop stale image references from the snapshots")?;
    let gc = berth_image::snapshot::Snapshotter::gc(&snap)
        .context("failed to collect unused snapshots")?;
    Ok(format!(
        "removed {} snapshots, {} bytes",
        gc.removed.len(),
        gc.reclaimed
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::PruneArgs,
    }

    #[test]
    fn help_shows_the_store_default() {
        let help = Cli::command().render_long_help().to_string();
        let default = crate::duration::format(berth_store::DEFAULT_GRACE);
        assert!(help.contains(&format!("[default: {default}]")), "{help}");
    }
}
