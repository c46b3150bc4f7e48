//! SemVer 2.0.0 precedence (<https://semver.org/#spec-item-11>), for crates.io, npm and Go.
//!
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`: numbers without leading zeros; pre-release and
//! build identifiers of `[0-9A-Za-z-]`, non-empty, numeric pre-release identifiers without
//! leading zeros. Precedence: major, minor, patch as numbers; a pre-release is lower than
//! its release; pre-releases compare identifier by identifier, numeric ones as numbers and
//! lower than alphanumeric ones (ASCII), a shorter list lower when all before are equal.
//! Build metadata is ignored (`1.0.0+a` = `1.0.0+b`).
//!
//! The ecosystems differ only in the spellings they accept:
//! - crates.io: exactly the grammar, with major, minor and patch at most 2^64 - 1 (the
//!   `semver` crate cargo uses).
//! - npm: node-semver's strict `parse` (what npm validates with): an optional leading `v`;
//!   at most 256 characters; major, minor and patch at most 2^53 - 1.
//! - Go: module versions carry a `v` (`v1.2.3`); OSV records leave it out, so it is
//!   optional. Module versions are canonical, so `golang.org/x/mod/semver`'s shorthands
//!   (`v1`, `v1.2`) are refused, as `module.Check` refuses them. Pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`) are ordinary
//!   pre-releases and `+incompatible` is build metadata, so both need nothing special.

use std::cmp::Ordering;

use super::{Num, ord_by_order};

/// Which ecosystem's spellings [`SemVersion::parse`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemverFlavor {
    Cargo,
    Npm,
    Go,
}

/// node-semver's `MAX_LENGTH` and `MAX_SAFE_INTEGER`.
const NPM_MAX_LENGTH: usize = 256;
const NPM_MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    // Declared first: numeric identifiers have lower precedence than alphanumeric ones.
    Numeric(Num),
    Alpha(Box<str>),
}

/// A semantic version.
#[derive(Debug, Clone)]
pub struct SemVersion {
    text: Box<str>,
    major: Num,
    minor: Num,
    patch: Num,
    pre: Vec<Ident>,
}

ord_by_order!(SemVersion);

impl SemVersion {
    pub fn parse(flavor: SemverFlavor, text: &str) -> Result<SemVersion, String> {
        let mut s = text;
        match flavor {
            SemverFlavor::Cargo => {}
            SemverFlavor::Npm => {
                if text.len() > NPM_MAX_LENGTH {
                    return Err(format!(
                        "it is longer than npm's {NPM_MAX_LENGTH} characters"
                    ));
                }
                s = s.strip_prefix('v').unwrap_or(s);
            }
            SemverFlavor::Go => s = s.strip_prefix('v').unwrap_or(s),
        }
        let (rest, build) = match s.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let mut number = |name: &str| -> Result<Num, String> {
            match parts.next() {
                Some(n) => numeric(n).ok_or_else(|| {
                    format!("the {name} version {n:?} is not a number without leading zeros")
                }),
                None => Err(format!("the {name} version is missing")),
            }
        };
        let major = number("major")?;
        let minor = number("minor")?;
        let patch = number("patch")?;
        if parts.next().is_some() {
            return Err("it has more than three numbers before the pre-release".into());
        }
        if flavor == SemverFlavor::Cargo {
            for n in [&major, &minor, &patch] {
                if n.0.parse::<u64>().is_err() {
                    return Err(format!("{} is larger than cargo's 2^64 - 1", n.0));
                }
            }
        }
        if flavor == SemverFlavor::Npm {
            for n in [&major, &minor, &patch] {
                if n.0.len() > 16 || n.0.parse::<u64>().is_ok_and(|v| v > NPM_MAX_SAFE_INTEGER) {
                    return Err(format!("{} is larger than npm's 2^53 - 1", n.0));
                }
            }
        }
        let mut idents = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                idents.push(identifier(id, true).ok_or_else(|| {
                    format!("the pre-release identifier {id:?} is empty, has a character outside [0-9A-Za-z-] or is a number with a leading zero")
                })?);
            }
        }
        if let Some(build) = build {
            for id in build.split('.') {
                if identifier(id, false).is_none() {
                    return Err(format!(
                        "the build identifier {id:?} is empty or has a character outside [0-9A-Za-z-]"
                    ));
                }
            }
        }
        Ok(SemVersion {
            text: text.into(),
            major,
            minor,
            patch,
            pre: idents,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a pre-release (Go pseudo-versions are).
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    fn order(&self, other: &SemVersion) -> Ordering {
        (&self.major, &self.minor, &self.patch)
            .cmp(&(&other.major, &other.minor, &other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

/// A numeric identifier: `0` or digits not starting with `0`.
fn numeric(s: &str) -> Option<Num> {
    let ok =
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    ok.then(|| Num::from_digits(s))
}

/// A pre-release (`strict_numbers`: numeric ones without leading zeros) or build identifier.
fn identifier(s: &str, strict_numbers: bool) -> Option<Ident> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return None;
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        if strict_numbers {
            return numeric(s).map(Ident::Numeric);
        }
        return Some(Ident::Numeric(Num::from_digits(s)));
    }
    Some(Ident::Alpha(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(flavor: SemverFlavor, s: &str) -> SemVersion {
        SemVersion::parse(flavor, s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_specifications_precedence_example() {
        // semver.org §11.4: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta
        // < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in chain.windows(2) {
            assert!(
                v(SemverFlavor::Cargo, w[0]) < v(SemverFlavor::Cargo, w[1]),
                "{w:?}"
            );
        }
        assert!(v(SemverFlavor::Cargo, "1.9.0") < v(SemverFlavor::Cargo, "1.10.0"));
        assert_eq!(
            v(SemverFlavor::Cargo, "1.0.0+a"),
            v(SemverFlavor::Cargo, "1.0.0+b")
        );
    }

    #[test]
    fn go_spellings() {
        let go = |s| v(SemverFlavor::Go, s);
        assert_eq!(go("v1.2.3"), go("1.2.3"));
        assert_eq!(go("v2.0.0+incompatible"), go("v2.0.0"));
        assert!(go("v0.0.0-20191109021931-daa7c04131f5") < go("v0.0.1"));
        assert!(go("v1.2.4-0.20191109021931-daa7c04131f5") > go("v1.2.3"));
        assert!(SemVersion::parse(SemverFlavor::Go, "v1.2").is_err());
    }

    #[test]
    fn what_the_grammar_refuses() {
        for bad in [
            "",
            "1",
            "1.2",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3-a..b",
            "v1.2.3",
            "1.2.3.4",
        ] {
            assert!(
                SemVersion::parse(SemverFlavor::Cargo, bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(SemVersion::parse(SemverFlavor::Npm, "v1.2.3").is_ok());
        assert!(SemVersion::parse(SemverFlavor::Npm, " 1.2.3").is_err());
        assert!(SemVersion::parse(SemverFlavor::Npm, "9007199254740992.0.0").is_err());
    }
}
