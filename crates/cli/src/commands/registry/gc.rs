//! `berth registry gc`.

use std::time::Duration;

use anyhow::Context;
use berth_registry::gc::{GcLock, GcOptions, collect};
use berth_registry::storage::fs::FsDriver;
use clap::Args;

use super::{StorageArgs, parse_duration};

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Keep unreferenced blobs younger than this (an upload may still reference them).
    #[arg(long, value_parser = parse_duration)]
    grace: Option<Duration>,
    /// Remove upload sessions idle longer than this.
    #[arg(long, value_parser = parse_duration)]
    upload_expiry: Option<Duration>,
    /// Report what would be deleted without deleting.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GcArgs) -> anyhow::Result<()> {
    let (config, root) = args.storage.load()?;
    if !root.is_dir() {
        anyhow::bail!(
            "no registry data at {}\nhint: pass the --data DIR the registry serves from",
            root.display()
        );
    }
    let _lock = GcLock::try_acquire(&root)?;
    let opts = GcOptions {
        grace: args
            .grace
            .unwrap_or(Duration::from_secs(config.gc.grace_secs)),
        upload_expiry: args
            .upload_expiry
            .unwrap_or(Duration::from_secs(config.gc.upload_expiry_secs)),
        dry_run: args.dry_run,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let report = runtime
        .block_on(collect(&FsDriver::new(&root), &opts))
        .with_context(|| format!("garbage collection of {} failed", root.display()))?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        let verb = if opts.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(
            out,
            "{} repositories, {} manifests, {} blobs referenced; {verb} {} blobs ({} bytes), {} upload sessions; {} unreferenced blobs kept within the grace period",
            report.repositories,
            report.manifests,
            report.blobs_marked,
            report.blobs_deleted,
            report.bytes_freed,
            report.uploads_deleted,
            report.blobs_kept_in_grace
        )?;
    }
    Ok(())
}
