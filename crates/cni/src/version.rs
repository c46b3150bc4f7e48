//! CNI specification versions: parsing, ordering, and the versions berth speaks.
//!
//! A version is a semantic version `MAJOR.MINOR.PATCH` (SPEC.md, "Version considerations").
//! berth speaks the result formats of 0.3.0 and later (the rich result with `interfaces`,
//! `ips` and `routes`); the 0.1/0.2 `ip4`/`ip6` results are refused.

use std::fmt;

/// A CNI specification version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// The highest specification version berth implements (SPEC.md v1.1.0).
pub const CURRENT: Version = Version::new(1, 1, 0);

/// The versions berth speaks, oldest first.
pub const SUPPORTED: [Version; 5] = [
    Version::new(0, 3, 0),
    Version::new(0, 3, 1),
    Version::new(0, 4, 0),
    Version::new(1, 0, 0),
    Version::new(1, 1, 0),
];

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parse `MAJOR.MINOR.PATCH` (a bare `MAJOR.MINOR` is accepted as `.0`, as libcni's
    /// `version.ParseVersion` does). `None` for anything else.
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.');
        let num = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            p => num(p)?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version::new(major, minor, patch))
    }

    /// Whether berth speaks this version.
    pub fn is_supported(self) -> bool {
        SUPPORTED.contains(&self)
    }

    /// CHECK and a `prevResult` on DEL exist from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Version::new(0, 4, 0)
    }

    /// GC and STATUS exist from 1.1.0 on.
    pub fn has_gc_and_status(self) -> bool {
        self >= Version::new(1, 1, 0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert_eq!(Version::parse("1.0.0"), Some(Version::new(1, 0, 0)));
        assert_eq!(Version::parse("0.4"), Some(Version::new(0, 4, 0)));
        for bad in [
            "",
            "1",
            "1.",
            "a.b.c",
            "1.0.0.0",
            "-1.0.0",
            "1.0.0-rc1",
            " 1.0.0",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        assert!(Version::new(0, 10, 0) > Version::new(0, 4, 0));
        assert!(Version::new(1, 0, 0).has_check() && !Version::new(0, 3, 1).has_check());
        assert!(CURRENT.has_gc_and_status() && !Version::new(1, 0, 0).has_gc_and_status());
    }
}
