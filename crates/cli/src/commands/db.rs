//! `berth db import FILE.zip|DIR... [--db DIR]` and `berth db info [--db DIR] [--format
//! json]`: the offline OSV vulnerability database `berth scan` matches against.
//!
//! `import` takes osv.dev's per-ecosystem exports (`Debian/all.zip`, `Alpine/all.zip`,
//! `crates.io/all.zip`, …, or a directory of `<ID>.json` records): each replaces the export
//! of the same ecosystem; the database file is rebuilt beside the old one and renamed over
//! it, so a failed import leaves the old one as it was. The database lives in `--db DIR`,
//! default `<data>/vulndb` (`<data>` as for the local store).

use std::path::PathBuf;

use anyhow::Context;
use berth_sbom::osv::{self, Database};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::commands::image::DataArgs;

/// `berth db …`.
#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Import osv.dev exports (zips of OSV records, or directories of them).
    Import(ImportArgs),
    /// Show the database's build date, newest record and ecosystems with record counts.
    Info(InfoArgs),
}

/// Where the database is.
#[derive(Debug, Args)]
pub struct DbDirArgs {
    /// The database directory (default: <data>/vulndb).
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
}

impl DbDirArgs {
    /// `--db`, else `<data>/vulndb` of the data directory `data` names.
    pub fn dir(&self, data: &DataArgs) -> anyhow::Result<PathBuf> {
        match &self.db {
            Some(d) => Ok(d.clone()),
            None => Ok(crate::dirs::data_dir(data.data.clone())?.join("vulndb")),
        }
    }

    /// The database.
    pub fn open(&self, data: &DataArgs) -> anyhow::Result<Database> {
        let dir = self.dir(data)?;
        // the database's error carries the hint (import an export first)
        Database::open(&dir).with_context(|| {
            format!(
                "failed to open the vulnerability database in {}",
                dir.display()
            )
        })
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The exports: zips (`all.zip`) or directories of `<ID>.json` records.
    #[arg(required = true, value_name = "FILE.zip|DIR")]
    sources: Vec<PathBuf>,
    #[command(flatten)]
    db: DbDirArgs,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InfoFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format (`json`: one stable JSON document on stdout).
    #[arg(long, value_enum, default_value = "text")]
    format: InfoFormat,
    #[command(flatten)]
    db: DbDirArgs,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: DbArgs) -> anyhow::Result<()> {
    match args.command {
        DbCommand::Import(a) => import(a),
        DbCommand::Info(a) => info(a),
    }
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let dir = args.db.dir(&args.data)?;
    for source in &args.sources {
        let r = osv::import(source, &dir).with_context(|| {
            format!(
                "failed to import {} into {}",
                source.display(),
                dir.display()
            )
        })?;
        for w in &r.warnings {
            crate::commands::sbom::note(&format!("warning: {w}"));
        }
        let replaced = r
            .replaced
            .as_ref()
            .map(|old| format!(", replacing {} records from {}", old.records, old.source))
            .unwrap_or_default();
        crate::commands::image::print(&format!(
            "imported {} {} records from {} ({} withdrawn, {} duplicate, {} without a package left out{replaced}) in {} ms",
            r.records,
            r.ecosystem,
            source.display(),
            r.withdrawn,
            r.duplicates,
            r.unmatched,
            r.elapsed_ms
        ))?;
    }
    Ok(())
}

fn info(args: InfoArgs) -> anyhow::Result<()> {
    let db = args.db.open(&args.data)?;
    let meta = db.meta();
    match args.format {
        InfoFormat::Json => {
            let ecosystems: Vec<_> = meta
                .exports
                .iter()
                .map(|e| {
                    json!({
                        "ecosystem": e.ecosystem,
                        "records": e.records,
                        "source": e.source,
                        "imported": e.imported,
                        "newestModified": e.newest_modified,
                    })
                })
                .collect();
            let doc = json!({
                "path": db.path().display().to_string(),
                "formatVersion": meta.format_version,
                "built": meta.built,
                "newestModified": meta.newest_modified,
                "packages": db.package_count(),
                "ecosystems": ecosystems,
            });
            crate::commands::image::print(
                &serde_json::to_string_pretty(&doc).context("failed to render JSON")?,
            )
        }
        InfoFormat::Text => {
            let mut s = format!(
                "database: {} (format {})\nbuilt: {}\nnewest record: {}\npackages: {}\n",
                db.path().display(),
                meta.format_version,
                meta.built,
                meta.newest_modified.as_deref().unwrap_or("none"),
                db.package_count()
            );
            let w = meta
                .exports
                .iter()
                .map(|e| e.ecosystem.len())
                .max()
                .unwrap_or(9)
                .max(9);
            s.push_str(&format!(
                "{:w$}  {:>8}  {:20}  SOURCE\n",
                "ECOSYSTEM", "RECORDS", "IMPORTED"
            ));
            for e in &meta.exports {
                s.push_str(&format!(
                    "{:w$}  {:>8}  {:20}  {}\n",
                    e.ecosystem, e.records, e.imported, e.source
                ));
            }
            crate::commands::image::print(s.trim_end())
        }
    }
}
