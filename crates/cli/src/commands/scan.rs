//! `berth scan IMAGE|SBOM-FILE [--db DIR] [--format table|json|sarif] [--fail-on
//! low|medium|high|critical] [--max-db-age DAYS] [--attach [--key NAME]] [-o FILE]`: the
//! known vulnerabilities of an image's packages, from the offline OSV database (`berth db
//! import`).
//!
//! An image (named as for `berth sbom`) is catalogued, then scanned; an existing file is
//! read as an SPDX or CycloneDX JSON document (berth's, syft's, trivy's). Every report
//! names the database's build date; a database older than `--max-db-age` days (default 7)
//! gets a warning on stderr and in the report.
//!
//! Exit status, as grype's `--fail-on` and trivy's `--exit-code`: 0 when the scan ran and
//! no finding reaches the `--fail-on` severity (or none was given), 1 when one does, 2 when
//! the scan could not run (as for a usage error).
//!
//! `--attach` pushes the JSON report (`berth.scan/v1`) to the image's registry as a signed
//! referrer of the image, `artifactType` [`REPORT_MEDIA_TYPE`]
//! (`application/vnd.berth.scan.v1+json`: vendor tree, named after the report's schema and
//! its version, as `application/vnd.cncf.notary.signature` is); prints its digest on stderr.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use berth_sbom::scan::{Report, ScanOptions, Severity, scan};
use berth_sbom::version::OsvOrders;
use clap::{Args, ValueEnum};

use super::db::DbDirArgs;
use super::sbom::{Catalogued, SourceArgs, catalogue, note};
use crate::commands::container::Failure;

/// The `artifactType` of a scan report attached to an image.
pub const REPORT_MEDIA_TYPE: &str = berth_oci::media_type::BERTH_SCAN_REPORT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One row per finding.
    Table,
    /// The `berth.scan/v1` JSON report (stable).
    Json,
    /// SARIF 2.1.0, for CI code scanning.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Low,
    Medium,
    High,
    Critical,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The image (as for `berth sbom`), or an SPDX or CycloneDX JSON file.
    target: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
    /// Warn when the database was built more than this many days ago.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    max_db_age: u64,
    /// Write the report to FILE (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Push the JSON report to the image's registry as a signed referrer of the image.
    #[arg(long)]
    attach: bool,
    /// The signing key for --attach (default: the key store's default key).
    #[arg(long, short, value_name = "NAME", requires = "attach")]
    key: Option<String>,
    #[command(flatten)]
    db: DbDirArgs,
    #[command(flatten)]
    source: SourceArgs,
}

/// Runs the scan; its exit status (0 or 1), or a failure with status 2.
pub fn run(args: ScanArgs) -> Result<i32, Failure> {
    scan_image(args).map_err(|error| Failure { error, code: 2 })
}

fn scan_image(args: ScanArgs) -> anyhow::Result<i32> {
    let db = args.db.open(&args.source.data)?;
    let path = std::path::Path::new(&args.target);
    let catalogued = if path.is_file() {
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        let parsed = berth_sbom::format::parse(&bytes).with_context(|| {
            format!(
                "{} is not an SPDX or CycloneDX JSON document berth reads",
                path.display()
            )
        })?;
        if !parsed.skipped.is_empty() && !args.source.quiet {
            note(&format!(
                "note: {} of the document's packages have no package URL berth can match and are not scanned",
                parsed.skipped.len()
            ));
        }
        Catalogued {
            inventory: parsed.inventory,
            registry: None,
            digests: Vec::new(),
        }
    } else {
        catalogue(&args.target, &args.source)?
    };
    let options = ScanOptions {
        max_db_age: Duration::from_secs(args.max_db_age.saturating_mul(86_400)),
        ..ScanOptions::default()
    };
    let report = scan(&catalogued.inventory, &db, &OsvOrders, &options)
        .with_context(|| format!("failed to scan {}", args.target))?;
    for w in &report.warnings {
        note(&format!("warning: {w}"));
    }
    write_report(&report, args.format, args.output.as_deref())?;
    if args.attach {
        let mut json = Vec::new();
        report
            .write_json(&mut json)
            .context("failed to render the JSON report")?;
        let digest = super::sbom::attach(
            &catalogued,
            &args.source.registry,
            args.key.as_deref(),
            REPORT_MEDIA_TYPE,
            &json,
        )?;
        note(&format!("scan report attached: {digest}"));
    }
    if let Some(threshold) = args.fail_on
        && report.fails(threshold.severity())
    {
        note(&format!(
            "{} finding(s); the highest is {}, at or above --fail-on {}",
            report.findings.len(),
            report.max_severity().unwrap_or(Severity::Unknown),
            threshold.severity()
        ));
        return Ok(1);
    }
    Ok(0)
}

/// Write the report in `format` to `output` (atomically: a temporary file renamed into place)
/// or to stdout, as it is rendered: a report of many findings is never held whole in memory.
fn write_report(
    report: &Report,
    format: ReportFormat,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let render = |out: &mut dyn Write| -> anyhow::Result<()> {
        match format {
            ReportFormat::Table => out.write_all(report.to_table().as_bytes())?,
            ReportFormat::Json => {
                report.write_json(&mut *out)?;
                out.write_all(b"\n")?;
            }
            ReportFormat::Sarif => {
                report.write_sarif(&mut *out)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    };
    match output {
        Some(path) => {
            let failed = || format!("failed to write {}", path.display());
            let file = berth_fsutil::AtomicFile::create(path).with_context(failed)?;
            let mut out = BufWriter::with_capacity(1 << 16, file);
            render(&mut out).with_context(failed)?;
            let file = out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(failed)?;
            file.commit().with_context(failed)?;
        }
        None => {
            let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            render(&mut out)
                .and_then(|()| out.flush().map_err(anyhow::Error::from))
                .context("failed to write the report to stdout")?;
        }
    }
    Ok(())
}
