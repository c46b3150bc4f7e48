//! An image's inventory matched against the offline OSV database (issue 21 §2): findings
//! (package, installed version, fixed versions, OSV id, aliases, severity, layer) and the
//! reports a user or CI reads — a text table, JSON (`berth.scan/v1`, [`json`]) and SARIF
//! 2.1.0 for GitHub code scanning ([`sarif`]).
//!
//! Matching: a package's OSV ecosystem comes from its [`Ecosystem`] and, for distribution
//! packages, the image's `os-release` (`ubuntu` → `Ubuntu`); distribution records are keyed
//! by source package, so [`Package::source`] is looked up when present, with its version.
//! A record's ecosystem release (`Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04:LTS`) must name
//! the image's `VERSION_ID` (or its major, or `v<major>.<minor>`, or its codename); with no
//! `VERSION_ID` known every release matches. Withdrawn records are ignored.

pub mod json;
pub mod sarif;
mod severity;
mod table;

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use berth_oci::Digest;
use berth_oci::timefmt;
use serde::Serialize;

use crate::osv::evaluate::evaluate_ranges;
use crate::osv::record::{ecosystem_base, ecosystem_release};
use crate::osv::view::{AffectedView, RecordView};
use crate::osv::{Database, DbError, VersionOrder};
use crate::package::{Distro, Ecosystem, Inventory, Package, Subject};

pub use severity::{FindingSeverity, Severity, SeverityParseError};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("failed to read the OSV records for package {package}")]
    Database {
        package: String,
        #[source]
        source: DbError,
    },
}

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The time reports compare the database's build date with.
    pub now: SystemTime,
    /// A database built longer ago than this gets a warning in the report.
    pub max_db_age: Duration,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            now: SystemTime::now(),
            max_db_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The database a report was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbSummary {
    pub format_version: u32,
    /// When it was built (RFC 3339).
    pub built: String,
    /// The newest record's `modified`.
    pub newest_modified: Option<String>,
    /// The ecosystems imported, with each one's record count.
    pub ecosystems: Vec<(String, u64)>,
}

/// One vulnerability in one package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The OSV id (`DSA-5532-1`, `GHSA-…`, `CVE-…`).
    pub id: String,
    /// Other ids, CVEs among them.
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub package: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    /// The name the record is keyed by (the source package for distributions).
    pub osv_package: String,
    pub installed_version: String,
    /// The version matched (the source package's, where that is what the record names).
    pub matched_version: String,
    /// Versions that fix it, lowest first; empty when no fix is known.
    pub fixed_versions: Vec<String>,
    pub severity: FindingSeverity,
    /// Where the package was found (the file that records it).
    pub path: Option<String>,
    /// The layer that file is in.
    pub layer: Option<Digest>,
}

/// A scan's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// When the scan ran (RFC 3339, [`ScanOptions::now`]): what a policy's "a scan report
    /// newer than N days" compares.
    pub created: String,
    pub subject: Subject,
    pub distro: Option<Distro>,
    pub db: DbSummary,
    /// Sorted by severity (highest first), score (highest first), then package and id.
    pub findings: Vec<Finding>,
    pub packages_scanned: usize,
    /// Things a reader must know: a stale database, versions that could not be compared.
    pub warnings: Vec<String>,
}

impl Report {
    /// The highest severity among the findings (`--fail-on`: fail when this is at or above
    /// the threshold); `None` without findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity.level).max()
    }

    /// Whether any finding is at or above `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.max_severity().is_some_and(|s| s >= threshold)
    }
}

/// The OSV ecosystem a package's records are under (without release).
pub fn osv_ecosystem(pkg: &Package, distro: Option<&Distro>) -> &'static str {
    let id = distro.map(|d| d.id.as_str()).unwrap_or("");
    match pkg.ecosystem {
        Ecosystem::Debian => match id {
            "ubuntu" => "Ubuntu",
            _ => "Debian",
        },
        Ecosystem::Alpine => match id {
            "wolfi" => "Wolfi",
            "chainguard" => "Chainguard",
            _ => "Alpine",
        },
        Ecosystem::Rpm => match id {
            "rocky" => "Rocky Linux",
            "almalinux" => "AlmaLinux",
            "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" => "openSUSE",
            "sles" | "sled" => "SUSE",
            "mageia" => "Mageia",
            "openEuler" | "openeuler" => "openEuler",
            _ => "Red Hat",
        },
        e => e.osv_name(),
    }
}

/// The name and version a package's records are keyed by: the source package for
/// distributions, `group:artifact` for Maven, the module path for Go (its version without
/// the leading `v`, as Go's OSV records write versions).
pub fn osv_name_version(pkg: &Package) -> (String, String) {
    match pkg.ecosystem {
        Ecosystem::Debian | Ecosystem::Alpine | Ecosystem::Rpm => match &pkg.source {
            Some(src) if !src.name.is_empty() => {
                let v = if src.version.is_empty() {
                    pkg.version.clone()
                } else {
                    src.version.clone()
                };
                (src.name.clone(), v)
            }
            _ => (pkg.name.clone(), pkg.version.clone()),
        },
        Ecosystem::Maven => match pkg.purl.namespace() {
            Some(g) if !pkg.name.contains(':') => {
                (format!("{g}:{}", pkg.purl.name()), pkg.version.clone())
            }
            _ => (pkg.name.clone(), pkg.version.clone()),
        },
        // Go records write versions without the `v` Go module versions carry
        Ecosystem::Go => {
            let v = pkg
                .version
                .strip_prefix('v')
                .unwrap_or(&pkg.version)
                .to_owned();
            match pkg.purl.namespace() {
                Some(ns) if !pkg.name.contains('/') => (format!("{ns}/{}", pkg.purl.name()), v),
                _ => (pkg.name.clone(), v),
            }
        }
        Ecosystem::Npm => match pkg.purl.namespace() {
            Some(ns) if !pkg.name.starts_with('@') => {
                (format!("{ns}/{}", pkg.purl.name()), pkg.version.clone())
            }
            _ => (pkg.name.clone(), pkg.version.clone()),
        },
        _ => (pkg.name.clone(), pkg.version.clone()),
    }
}

/// Whether a record's ecosystem release suffix applies to the image's distribution.
pub fn release_matches(release: Option<&str>, distro: Option<&Distro>) -> bool {
    Releases::of(distro).matches(release)
}

/// The names an image's distribution release goes by in records' ecosystems (`12`,
/// `v3.19`, `bookworm`), worked out once per scan.
struct Releases<'d> {
    /// `None`: no `VERSION_ID` known, every release matches.
    version_id: Option<&'d str>,
    major: &'d str,
    /// `v<major>.<minor>`, as Alpine's ecosystems write it.
    vmm: Option<String>,
    codename: Option<&'d str>,
}

impl<'d> Releases<'d> {
    fn of(distro: Option<&'d Distro>) -> Releases<'d> {
        let version_id = distro
            .and_then(|d| d.version_id.as_deref())
            .filter(|v| !v.is_empty());
        let (major, vmm) = match version_id {
            Some(vid) => {
                let mut parts = vid.split('.');
                let major = parts.next().unwrap_or(vid);
                (major, parts.next().map(|m| format!("v{major}.{m}")))
            }
            None => ("", None),
        };
        Releases {
            version_id,
            major,
            vmm,
            codename: distro.and_then(|d| d.codename.as_deref()),
        }
    }

    fn matches(&self, release: Option<&str>) -> bool {
        let (Some(release), Some(vid)) = (release, self.version_id) else {
            return true;
        };
        release.split(':').any(|c| {
            c == vid
                || c == self.major
                || self.vmm.as_deref() == Some(c)
                || self.codename == Some(c)
        })
    }
}

/// Match every package of `inventory` against `db`, comparing versions with `order`.
pub fn scan<O: VersionOrder>(
    inventory: &Inventory,
    db: &Database,
    order: &O,
    options: &ScanOptions,
) -> Result<Report, ScanError> {
    let meta = db.meta();
    let mut warnings = Vec::new();
    if let Some(built) = timefmt::parse_rfc3339(&meta.built)
        && let Ok(age) = options.now.duration_since(built)
        && age > options.max_db_age
    {
        warnings.push(format!(
            "the OSV database was built {} ({} days ago), older than the {}-day limit\nhint: import fresh osv.dev exports",
            meta.built,
            age.as_secs() / 86_400,
            options.max_db_age.as_secs() / 86_400
        ));
    }
    let distro = inventory.distro.as_ref();
    let releases = Releases::of(distro);
    let mut findings: Vec<Finding> = Vec::new();
    for pkg in &inventory.packages {
        let eco = osv_ecosystem(pkg, distro);
        let (name, version) = osv_name_version(pkg);
        let target = Target {
            pkg,
            eco,
            name: &name,
            version: &version,
            releases: &releases,
        };
        db.for_each_view(eco, &name, |rec| {
            if rec.withdrawn.is_none()
                && let Some(f) = target.match_record(&rec, order, &mut warnings)
            {
                findings.push(f);
            }
            Ok::<(), DbError>(())
        })
        .map_err(|source| ScanError::Database {
            package: pkg.name.clone(),
            source,
        })?;
    }
    findings.sort_by(|a, b| {
        b.severity
            .level
            .cmp(&a.severity.level)
            .then_with(|| {
                let score = |f: &Finding| f.severity.score.unwrap_or(-1.0);
                score(b).total_cmp(&score(a))
            })
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.installed_version.cmp(&b.installed_version))
            .then_with(|| a.id.cmp(&b.id))
    });
    findings.dedup_by(|a, b| a.id == b.id && a.purl == b.purl);
    Ok(Report {
        created: timefmt::rfc3339_nano(options.now),
        subject: inventory.subject.clone(),
        distro: inventory.distro.clone(),
        db: DbSummary {
            format_version: meta.format_version,
            built: meta.built.clone(),
            newest_modified: meta.newest_modified.clone(),
            ecosystems: meta
                .exports
                .iter()
                .map(|e| (e.ecosystem.clone(), e.records))
                .collect(),
        },
        findings,
        packages_scanned: inventory.packages.len(),
        warnings,
    })
}

/// One package as its records are matched: the OSV ecosystem, name and version it is
/// looked up by.
struct Target<'p> {
    pkg: &'p Package,
    eco: &'p str,
    name: &'p str,
    version: &'p str,
    releases: &'p Releases<'p>,
}

impl Target<'_> {
    /// Whether an `affected[]` entry names this package, in this distribution release.
    fn names(&self, a: &AffectedView<'_>) -> bool {
        let Some(p) = &a.package else { return false };
        let ecosystem = p.ecosystem.as_str();
        ecosystem_base(ecosystem) == self.eco
            && crate::osv::layout::same_name(self.eco, p.name.as_str(), self.name)
            && self.releases.matches(ecosystem_release(ecosystem))
    }

    fn match_record<O: VersionOrder>(
        &self,
        rec: &RecordView<'_>,
        order: &O,
        warnings: &mut Vec<String>,
    ) -> Option<Finding> {
        let (pkg, version) = (self.pkg, self.version);
        let mut fixed: Vec<String> = Vec::new();
        let mut matched: Vec<&AffectedView<'_>> = Vec::new();
        for a in rec.affected().iter().filter(|a| self.names(a)) {
            let verdict = evaluate_ranges(
                a.versions().iter().any(|v| v.as_str() == version),
                a.ranges().iter().map(|r| (r.kind, r.events())),
                pkg.ecosystem,
                version,
                order,
            );
            match verdict {
                Ok(v) if v.affected => {
                    for f in v.fixed {
                        if !fixed.contains(&f) {
                            fixed.push(f);
                        }
                    }
                    matched.push(a);
                }
                Ok(_) => {}
                Err(e) => warnings.push(format!(
                    "{}: cannot compare version {version} of {} with the versions in {}: {e}",
                    pkg.purl,
                    self.name,
                    rec.id.as_str()
                )),
            }
        }
        if matched.is_empty() {
            return None;
        }
        if fixed.len() > 1 {
            fixed.sort_by(|a, b| {
                order
                    .compare(crate::osv::Scheme::Ecosystem(pkg.ecosystem), a, b)
                    .unwrap_or(Ordering::Equal)
            });
        }
        let location = pkg.locations.first();
        Some(Finding {
            id: rec.id.as_str().to_owned(),
            aliases: rec
                .aliases
                .iter()
                .flatten()
                .map(|a| a.as_str().to_owned())
                .collect(),
            summary: rec.summary.as_ref().map(|s| s.as_str().to_owned()),
            package: pkg.name.clone(),
            ecosystem: pkg.ecosystem,
            purl: pkg.purl.to_string(),
            osv_package: self.name.to_owned(),
            installed_version: pkg.version.clone(),
            matched_version: version.to_owned(),
            fixed_versions: fixed,
            severity: severity::of(rec, &matched),
            path: location.map(|l| l.path.clone()),
            layer: location.and_then(|l| l.layer.clone()),
        })
    }
}
