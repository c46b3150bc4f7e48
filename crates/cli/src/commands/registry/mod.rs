//! `berth registry serve | gc`.

mod gc;
mod serve;

pub(crate) use serve::shutdown_signal;

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_registry::Config;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Serve the OCI distribution API (default: http://127.0.0.1:5000, data under the berth
    /// data directory).
    Serve(serve::ServeArgs),
    /// Delete blobs no manifest references and abandoned uploads. Safe while serving.
    Gc(gc::GcArgs),
}

/// Flags shared by every registry command that opens the storage.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Data directory (default: $XDG_DATA_HOME/berth, or /var/lib/berth for root); the
    /// registry stores under its `registry/` folder.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl StorageArgs {
    /// The configuration with its storage root resolved.
    pub fn load(&self) -> anyhow::Result<(Config, PathBuf)> {
        let mut config = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let root = match (&self.data, &config.storage.root) {
            (Some(d), _) => d.join("registry"),
            (None, Some(r)) => r.clone(),
            (None, None) => crate::dirs::data_dir(None)?.join("registry"),
        };
        config.storage.root = Some(root.clone());
        Ok((config, root))
    }
}

/// The S3 driver of `config` (whose `storage.driver` is `s3`).
pub fn s3_driver(config: &Config) -> anyhow::Result<berth_registry::storage::s3::S3Driver> {
    let s3 = config
        .storage
        .s3
        .as_ref()
        .context("storage.driver = \"s3\" needs a [storage.s3] table")?;
    berth_registry::storage::s3::S3Driver::new(s3, &crate::dirs::aws_env()).with_context(|| {
        format!(
            "failed to open the S3 bucket {:?}{}",
            s3.bucket,
            s3.endpoint
                .as_deref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        )
    })
}

/// Create the registry's storage root private (0700, missing parents too) whatever the
/// umask, and tighten an existing root to 0700.
pub fn ensure_dir(root: &Path) -> anyhow::Result<()> {
    berth_registry::storage::fs::prepare_root(root).with_context(|| {
        format!(
            "failed to create the registry data directory {}",
            root.display()
        )
    })
}

pub fn run(args: RegistryArgs) -> anyhow::Result<()> {
    match args.command {
        RegistryCommand::Serve(a) => serve::run(a),
        RegistryCommand::Gc(a) => gc::run(a),
    }
}
