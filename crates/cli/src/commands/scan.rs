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

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use berth_sbom::package::{Distro, Ecosystem, Inventory, SourcePackage};
use berth_sbom::scan::{ScanOptions, Severity, scan};
use berth_sbom::version::OsvOrders;
use clap::{Args, ValueEnum};

use super::db::DbDirArgs;
use super::sbom::{Catalogued, SourceArgs, catalogue, emit, note};
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
        let mut inventory = parsed.inventory;
        complete_from_purls(&mut inventory);
        Catalogued {
            inventory,
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
    let json = || serde_json::to_vec_pretty(&report.to_json()).context("failed to render JSON");
    let out = match args.format {
        ReportFormat::Table => report.to_table().into_bytes(),
        ReportFormat::Json => json()?,
        ReportFormat::Sarif => {
            serde_json::to_vec_pretty(&report.to_sarif()).context("failed to render SARIF")?
        }
    };
    emit(args.output.as_deref(), &out)?;
    if args.attach {
        let digest = super::sbom::attach(
            &catalogued,
            &args.source.registry,
            args.key.as_deref(),
            REPORT_MEDIA_TYPE,
            &json()?,
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

/// What an SBOM of another tool (syft's) says only in its package URLs, filled in where the
/// document reader left it empty: a Debian or Alpine package's source package (the
/// `upstream` qualifier, `NAME` or `NAME@VERSION`, which distribution OSV records are keyed
/// by) and the distribution (the `distro` qualifier, `debian-12`), so that a syft SBOM finds
/// what an image scan finds.
fn complete_from_purls(inventory: &mut Inventory) {
    for pkg in &mut inventory.packages {
        if pkg.source.is_some() || !matches!(pkg.ecosystem, Ecosystem::Debian | Ecosystem::Alpine) {
            continue;
        }
        if let Some(up) = pkg.purl.qualifiers().get("upstream") {
            let (name, version) = match up.split_once('@') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (up.clone(), pkg.version.clone()),
            };
            if !name.is_empty() && name != pkg.name {
                pkg.source = Some(SourcePackage { name, version });
            }
        }
    }
    if inventory.distro.is_none() {
        let qualifier = inventory
            .packages
            .iter()
            .filter(|p| {
                matches!(
                    p.ecosystem,
                    Ecosystem::Debian | Ecosystem::Alpine | Ecosystem::Rpm
                )
            })
            .find_map(|p| p.purl.qualifiers().get("distro").cloned());
        if let Some((id, version)) = qualifier.as_deref().and_then(|q| q.rsplit_once('-')) {
            inventory.distro = Some(Distro {
                id: id.to_owned(),
                version_id: Some(version.to_owned()),
                ..Distro::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_sbom::package::{Package, Purl, Subject};

    fn deb(name: &str, purl: &str) -> Package {
        Package {
            name: name.to_owned(),
            version: "1:1.2.13.dfsg-1".to_owned(),
            ecosystem: Ecosystem::Debian,
            purl: Purl::parse(purl).unwrap(),
            licenses: Vec::new(),
            source: None,
            locations: Vec::new(),
            found_by: "spdx".to_owned(),
        }
    }

    #[test]
    fn syft_purls_give_source_packages_and_the_distribution() {
        let mut inv = Inventory {
            subject: Subject {
                name: "x".to_owned(),
                digest: None,
                layers: Vec::new(),
            },
            distro: None,
            packages: vec![
                deb(
                    "zlib1g",
                    "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib",
                ),
                deb(
                    "libc6",
                    "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc%402.36-9%2Bdeb12u1",
                ),
                deb("tar", "pkg:deb/debian/tar@1.34?arch=amd64&distro=debian-12"),
            ],
            unsupported: Vec::new(),
        };
        complete_from_purls(&mut inv);
        let src = |i: usize| inv.packages[i].source.clone().map(|s| (s.name, s.version));
        assert_eq!(
            src(0),
            Some(("zlib".to_owned(), "1:1.2.13.dfsg-1".to_owned()))
        );
        assert_eq!(
            src(1),
            Some(("glibc".to_owned(), "2.36-9+deb12u1".to_owned()))
        );
        assert_eq!(src(2), None);
        let d = inv.distro.unwrap();
        assert_eq!(
            (d.id.as_str(), d.version_id.as_deref()),
            ("debian", Some("12"))
        );
    }
}
