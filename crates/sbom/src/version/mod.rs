//! Version orders, one per ecosystem (issue 21 §2).
//!
//! A scanner compares one installed version against the many events of a vulnerability's
//! ranges, so the unit is a parsed [`Version`]: parse each string once with
//! [`Version::parse`], then compare the values with [`Ord`] (no allocation, no re-parsing).
//! [`compare`] is the one-shot form.
//!
//! Each order is the reference tool's, proven against that tool on generated and real pairs
//! (`crates/sbom/tests/it/version.rs`):
//!
//! | ecosystems | order | reference |
//! |---|---|---|
//! | Debian, Ubuntu | [`DpkgVersion`] | dpkg's `verrevcmp` (Debian policy §5.6.12) |
//! | Alpine | [`ApkVersion`] | apk-tools' `apk_version_compare` (v3, `src/version.c`) |
//! | RPM distributions | [`RpmVersion`] | rpm's `rpmvercmp` over epoch, version, release |
//! | crates.io, npm, Go | [`SemVersion`] | SemVer 2.0.0 precedence (§11) |
//! | PyPI | [`Pep440Version`] | PEP 440, as Python's `packaging.version.Version` |
//! | Maven | [`MavenVersion`] | Maven's `ComparableVersion` (maven-artifact 3.8) |
//!
//! Every order is total but Maven's, which is not transitive in Maven either (see
//! [`MavenVersion`]): do not `sort` Maven versions.
//!
//! Equality is the order's, not the text's: `1.0` and `1.00` are the same dpkg version, `1.0`
//! and `1.0.0` the same PEP 440 version. Values of different orders compare by order first,
//! which means nothing; compare only values parsed for one ecosystem.

mod apk;
mod dpkg;
mod maven;
mod pep440;
mod rpm;
mod semver;

use std::cmp::Ordering;
use std::fmt;

pub use apk::ApkVersion;
pub use dpkg::DpkgVersion;
pub use maven::MavenVersion;
pub use pep440::Pep440Version;
pub use rpm::RpmVersion;
pub use semver::{SemVersion, SemverFlavor};

use crate::package::Ecosystem;

/// A version string its ecosystem's grammar rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "invalid {} version {version:?}: {reason}\nhint: {} versions look like {}",
        ecosystem.osv_name(),
        ecosystem.osv_name(),
        grammar(*ecosystem)
    )]
    Invalid {
        ecosystem: Ecosystem,
        version: String,
        reason: String,
    },
    #[error(
        "invalid SemVer version {version:?} in an OSV SEMVER range: {reason}\nhint: SemVer 2.0.0 versions look like MAJOR.MINOR.PATCH[-pre][+build], e.g. 1.0.0-rc.1"
    )]
    InvalidSemver { version: String, reason: String },
}

impl VersionError {
    fn invalid(ecosystem: Ecosystem, version: &str, reason: impl Into<String>) -> VersionError {
        VersionError::Invalid {
            ecosystem,
            version: version.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The grammar a hint shows for each ecosystem.
fn grammar(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Debian => "[epoch:]upstream[-revision], e.g. 1:2.36-9+deb12u4",
        Ecosystem::Alpine => "digits{.digits}[letter]{_suffix[n]}[~hash][-rN], e.g. 1.2.3_rc1-r0",
        Ecosystem::Rpm => "[epoch:]version[-release], e.g. 1:3.0.7-27.el9",
        Ecosystem::CratesIo => "MAJOR.MINOR.PATCH[-pre][+build], e.g. 1.0.0-rc.1",
        Ecosystem::Npm => "[v]MAJOR.MINOR.PATCH[-pre][+build], e.g. 7.5.4",
        Ecosystem::Go => "v1.2.3, v0.0.0-20191109021931-daa7c04131f5 or v2.0.0+incompatible",
        Ecosystem::PyPI => "[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local], e.g. 1.0rc1",
        Ecosystem::Maven => "any text; e.g. 1.2.3, 1.0-SNAPSHOT, 2.0.0.Final",
    }
}

/// A version parsed by its ecosystem's order. [`Ord`] is that order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Dpkg(DpkgVersion),
    Apk(ApkVersion),
    Rpm(RpmVersion),
    Semver(SemVersion),
    Pep440(Pep440Version),
    Maven(MavenVersion),
}

impl Version {
    /// Parse `text` as a version of `ecosystem`.
    ///
    /// Where the reference tool accepts a string (dpkg compares versions it only warns about;
    /// rpm and Maven order any text) this does too; a NUL byte is refused everywhere, as no
    /// reference tool can be handed one.
    pub fn parse(ecosystem: Ecosystem, text: &str) -> Result<Version, VersionError> {
        if text.contains('\0') {
            return Err(VersionError::invalid(
                ecosystem,
                text,
                "it contains a NUL byte",
            ));
        }
        let parsed = match ecosystem {
            Ecosystem::Debian => DpkgVersion::parse(text).map(Version::Dpkg),
            Ecosystem::Alpine => ApkVersion::parse(text).map(Version::Apk),
            Ecosystem::Rpm => RpmVersion::parse(text).map(Version::Rpm),
            Ecosystem::CratesIo => {
                SemVersion::parse(SemverFlavor::Cargo, text).map(Version::Semver)
            }
            Ecosystem::Npm => SemVersion::parse(SemverFlavor::Npm, text).map(Version::Semver),
            Ecosystem::Go => SemVersion::parse(SemverFlavor::Go, text).map(Version::Semver),
            Ecosystem::PyPI => Pep440Version::parse(text).map(Version::Pep440),
            Ecosystem::Maven => Ok(Version::Maven(MavenVersion::parse(text))),
        };
        parsed.map_err(|reason| VersionError::invalid(ecosystem, text, reason))
    }

    /// The text this version was parsed from.
    pub fn as_str(&self) -> &str {
        match self {
            Version::Dpkg(v) => v.as_str(),
            Version::Apk(v) => v.as_str(),
            Version::Rpm(v) => v.as_str(),
            Version::Semver(v) => v.as_str(),
            Version::Pep440(v) => v.as_str(),
            Version::Maven(v) => v.as_str(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compare two versions of `ecosystem` by its order.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(ecosystem, a)?.cmp(&Version::parse(ecosystem, b)?))
}

/// The orders OSV ranges are evaluated in ([`crate::osv::evaluate`], [`crate::scan::scan`]):
/// an `ECOSYSTEM` range in its package's ecosystem's order, a `SEMVER` range as SemVer 2.0.0.
/// Go's records write versions without Go's leading `v` (`1.2.3`, and the scan strips it from
/// the installed version too), so Go ranges compare as plain SemVer as well.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsvOrders;

impl crate::osv::VersionOrder for OsvOrders {
    type Error = VersionError;

    fn compare(
        &self,
        scheme: crate::osv::Scheme,
        a: &str,
        b: &str,
    ) -> Result<Ordering, VersionError> {
        use crate::osv::Scheme;
        match scheme {
            Scheme::Semver | Scheme::Ecosystem(Ecosystem::Go) => {
                let parse = |text: &str| {
                    SemVersion::parse(SemverFlavor::Cargo, text).map_err(|reason| {
                        VersionError::InvalidSemver {
                            version: text.to_owned(),
                            reason,
                        }
                    })
                };
                Ok(parse(a)?.cmp(&parse(b)?))
            }
            Scheme::Ecosystem(ecosystem) => compare(ecosystem, a, b),
        }
    }
}

/// A non-negative integer of any length, kept as its decimal digits without leading zeros
/// (zero is `"0"`), ordered by value. Version components are not bounded by any integer type
/// (`20191109021931`, dates, long build numbers), and no order here may overflow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Num(Box<str>);

impl Num {
    /// From ASCII digits (the caller has checked them).
    pub(crate) fn from_digits(digits: &str) -> Num {
        let trimmed = digits.trim_start_matches('0');
        Num(if trimmed.is_empty() { "0" } else { trimmed }.into())
    }

    pub(crate) fn is_zero(&self) -> bool {
        &*self.0 == "0"
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Num) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Num) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `Ord`, `PartialOrd`, `PartialEq` and `Eq` for a type with `fn order(&self, &Self) ->
/// Ordering`: equality is the order's.
macro_rules! ord_by_order {
    ($ty:ty) => {
        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.order(other)
            }
        }
        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.order(other) == std::cmp::Ordering::Equal
            }
        }
        impl Eq for $ty {}
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use ord_by_order;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_orders_by_value_whatever_the_length() {
        let n = |s| Num::from_digits(s);
        assert_eq!(n("007"), n("7"));
        assert!(n("0").is_zero() && n("000").is_zero());
        assert!(n("9") < n("10"));
        assert!(n("99999999999999999999999") < n("100000000000000000000000"));
    }

    #[test]
    fn errors_name_the_version_and_the_ecosystem() {
        let e = compare(Ecosystem::PyPI, "1.0", "not a version")
            .expect_err("not PEP 440")
            .to_string();
        assert!(e.contains("invalid PyPI version \"not a version\""), "{e}");
        assert!(e.contains("hint: PyPI versions look like"), "{e}");
    }
}
