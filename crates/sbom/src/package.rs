//! Packages found in an image, and how they are named outside berth.

use std::collections::BTreeMap;
use std::fmt;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

/// Where a package's versions and vulnerability records come from: one version order and one
/// purl type each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ecosystem {
    /// dpkg packages (Debian, Ubuntu): dpkg's version order.
    Debian,
    /// apk packages (Alpine, Wolfi): apk's version order.
    Alpine,
    /// RPM packages (Red Hat, Fedora, Rocky, AlmaLinux, SUSE): rpm's version order.
    Rpm,
    /// Rust crates.
    CratesIo,
    /// Go modules.
    Go,
    /// npm packages.
    Npm,
    /// Python packages (PEP 440 versions).
    PyPI,
    /// Maven artifacts (Java).
    Maven,
}

impl Ecosystem {
    /// The ecosystem's name in OSV records (`affected[].package.ecosystem`, without the
    /// `:release` suffix distributions add). RPM distributions each have their own name in
    /// OSV (`Red Hat`, `Rocky Linux`, …); this gives Red Hat's.
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Debian => "Debian",
            Ecosystem::Alpine => "Alpine",
            Ecosystem::Rpm => "Red Hat",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Go => "Go",
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Maven => "Maven",
        }
    }

    /// The ecosystem an OSV `ecosystem` string names (`Debian:12`, `Alpine:v3.19`, `PyPI`),
    /// or `None` for one berth does not catalogue.
    pub fn from_osv_name(name: &str) -> Option<Ecosystem> {
        let base = name.split(':').next().unwrap_or(name);
        Some(match base {
            "Debian" | "Ubuntu" => Ecosystem::Debian,
            "Alpine" | "Wolfi" | "Chainguard" => Ecosystem::Alpine,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia"
            | "openEuler" => Ecosystem::Rpm,
            "crates.io" => Ecosystem::CratesIo,
            "Go" => Ecosystem::Go,
            "npm" => Ecosystem::Npm,
            "PyPI" => Ecosystem::PyPI,
            "Maven" => Ecosystem::Maven,
            _ => return None,
        })
    }

    /// The package-URL type (`pkg:<type>/…`).
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Debian => "deb",
            Ecosystem::Alpine => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::CratesIo => "cargo",
            Ecosystem::Go => "golang",
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "pypi",
            Ecosystem::Maven => "maven",
        }
    }
}

/// A package URL (<https://github.com/package-url/purl-spec>): type, optional namespace
/// (segments separated by `/`), name, version and qualifiers. [`fmt::Display`] writes the
/// canonical form: every component percent-encoded but for the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), as packageurl-go (which syft uses) writes them, and qualifiers
/// sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Purl {
    ty: String,
    namespace: Option<String>,
    name: String,
    version: String,
    qualifiers: BTreeMap<String, String>,
}

impl Purl {
    pub fn new(ty: &str, namespace: Option<&str>, name: &str, version: &str) -> Purl {
        Purl {
            ty: ty.to_ascii_lowercase(),
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_owned),
            name: name.to_owned(),
            version: version.to_owned(),
            qualifiers: BTreeMap::new(),
        }
    }

    /// With qualifier `key=value` (an empty value is left out, as the specification says).
    pub fn qualifier(mut self, key: &str, value: &str) -> Purl {
        if !value.is_empty() {
            self.qualifiers
                .insert(key.to_ascii_lowercase(), value.to_owned());
        }
        self
    }

    pub fn purl_type(&self) -> &str {
        &self.ty
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn qualifiers(&self) -> &BTreeMap<String, String> {
        &self.qualifiers
    }
}

/// Percent-encode all but the unreserved characters.
fn encode(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.ty)?;
        if let Some(ns) = &self.namespace {
            for segment in ns.split('/').filter(|s| !s.is_empty()) {
                encode(f, segment)?;
                f.write_str("/")?;
            }
        }
        encode(f, &self.name)?;
        if !self.version.is_empty() {
            f.write_str("@")?;
            encode(f, &self.version)?;
        }
        for (i, (k, v)) in self.qualifiers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            f.write_str(k)?;
            f.write_str("=")?;
            encode(f, v)?;
        }
        Ok(())
    }
}

/// Where in the image a package was found: the file that records it and the layer that
/// file came from (the uncompressed layer's digest, its diff ID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    /// The absolute path in the image's root filesystem (`/var/lib/dpkg/status`).
    pub path: String,
    /// The diff ID of the layer that holds this version of the file; `None` for a
    /// directory scanned as a root filesystem.
    pub layer: Option<Digest>,
}

/// A distribution's source package, which Debian's OSV records are keyed by (a binary
/// package `libssl3` is built from source `openssl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
}

/// One package found in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: Purl,
    /// Licences as the package records them (SPDX expressions where it uses them).
    pub licenses: Vec<String>,
    /// The source package, where the format records one that differs from the binary.
    pub source: Option<SourcePackage>,
    /// The file(s) that record it.
    pub locations: Vec<Location>,
    /// Which cataloguer found it (`dpkg`, `apk`, `rpm`, `python`, `npm`, `cargo`,
    /// `cargo-auditable`, `go-binary`, `java`).
    pub found_by: String,
}

/// The operating system an image's `/etc/os-release` (or `/usr/lib/os-release`) names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, `rhel`).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`).
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`).
    pub codename: Option<String>,
    /// `ID_LIKE`, split.
    pub id_like: Vec<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// A file that records packages in a format berth does not read (an RPM Berkeley DB or NDB
/// database, say): reported, never skipped silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsupported {
    pub location: Location,
    /// What it is and why it was not read (`rpm Berkeley DB (Packages): unsupported, only
    /// rpmdb.sqlite is read`).
    pub reason: String,
}

/// What an image is, for the documents that describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The reference the user named (`registry.example/app:1.0`), or a path.
    pub name: String,
    /// The image manifest's digest, when the subject is an image.
    pub digest: Option<Digest>,
    /// The layers' diff IDs, bottom first.
    pub layers: Vec<Digest>,
}

/// Everything found in one image: the input to the SPDX and CycloneDX writers and to a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub subject: Subject,
    pub distro: Option<Distro>,
    /// Sorted by ecosystem, name, version, then location.
    pub packages: Vec<Package>,
    pub unsupported: Vec<Unsupported>,
}
