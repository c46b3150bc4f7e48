//! `berth registry gc`.

use std::time::Duration;

use anyhow::Context;
use berth_registry::config::DriverKind;
use berth_registry::gc::{GcError, GcOptions, collect};
use berth_registry::storage::fs::FsDriver;
use berth_registry::storage::lease::LeaseConfig;
use clap::Args;

use super::StorageArgs;
use crate::duration;

#[derive(Debug, Args)]
#[command(after_help = concat!(
    "DURATION is a number of seconds, or <N><unit> groups with units d, h, m, s, largest first:\n",
    "90s, 15m, 2h, 1h30m, 1h30m15s, 2d. Without a flag, the --config file's gc.grace_secs and\n",
    "gc.upload_expiry_secs apply, else the defaults shown."
))]
pub struct GcArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Keep unreferenced blobs younger than this (an upload may still reference them).
    /// [default: 1h]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    grace: Option<Duration>,
    /// Remove upload sessions idle longer than this. [default: 24h]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
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
    let s3 = config.storage.driver == DriverKind::S3;
    if !s3 && !root.is_dir() {
        anyhow::bail!(
            "no registry data at {}\nhint: pass the --data DIR the registry serves from",
            root.display()
        );
    }
    let opts = GcOptions {
        grace: args
            .grace
            .unwrap_or(Duration::from_secs(config.gc.grace_secs)),
        upload_expiry: args
            .upload_expiry
            .unwrap_or(Duration::from_secs(config.gc.upload_expiry_secs)),
        dry_run: args.dry_run,
        // one collection at a time, through the lease object in the storage
        lease: LeaseConfig::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let (result, what) = if s3 {
        let driver = super::s3_driver(&config)?;
        let bucket = config.storage.s3.as_ref().map(|s| s.bucket.clone());
        (
            runtime.block_on(collect(&driver, &opts)),
            format!("the bucket {}", bucket.unwrap_or_default()),
        )
    } else {
        (
            runtime.block_on(collect(&FsDriver::new(&root), &opts)),
            root.display().to_string(),
        )
    };
    let report = match result {
        Ok(report) => report,
        // the refusal is the whole story: it names the holder and when to try again
        Err(GcError::Lease(e)) if e.is_busy() => return Err(e.into()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("garbage collection of {what} failed"))
            );
        }
    };
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
        if report.upload_data_deleted > 0 {
            writeln!(
                out,
                "{verb} the data of {} uploads left behind in object storage",
                report.upload_data_deleted
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::GcArgs,
    }

    #[test]
    fn help_shows_the_configuration_defaults_and_the_syntax() {
        let help = Cli::command().render_long_help().to_string();
        let gc = berth_registry::Config::default().gc;
        for secs in [gc.grace_secs, gc.upload_expiry_secs] {
            let default = crate::duration::format(Duration::from_secs(secs));
            assert!(help.contains(&format!("[default: {default}]")), "{help}");
        }
        assert!(help.contains("1h30m"), "{help}");
    }
}
