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

    /// The ecosystem a package-URL type names (`deb`, `pypi`), or `None` for one berth does
    /// not catalogue (`oci`, `generic`, …). The inverse of [`Ecosystem::purl_type`].
    pub fn from_purl_type(ty: &str) -> Option<Ecosystem> {
        Some(match ty.to_ascii_lowercase().as_str() {
            "deb" => Ecosystem::Debian,
            "apk" => Ecosystem::Alpine,
            "rpm" => Ecosystem::Rpm,
            "cargo" => Ecosystem::CratesIo,
            "golang" => Ecosystem::Go,
            "npm" => Ecosystem::Npm,
            "pypi" => Ecosystem::PyPI,
            "maven" => Ecosystem::Maven,
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

    /// Reads a package URL as the purl specification's "How to parse a purl string" says:
    /// `pkg:` (case-insensitive, any `/` after it ignored), then from the right the
    /// `#subpath` (dropped: berth's purls carry none), the `?qualifiers`, the `@version`, the
    /// type, the namespace segments and the name, each percent-decoded.
    pub fn parse(s: &str) -> Result<Purl, PurlError> {
        let rest = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("pkg:"))
            .map(|_| &s[4..])
            .ok_or(PurlError::Scheme)?;
        let rest = rest.trim_start_matches('/');
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (rest, qualifiers) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        // An `@` in the last path segment starts the version (an unencoded npm scope's `@`
        // in the namespace does not).
        let (rest, version) = match rest.rsplit_once('@') {
            Some((r, v)) if !v.contains('/') => (r, decode(v)?),
            _ => (rest, String::new()),
        };
        let (ty, path) = rest.split_once('/').ok_or(PurlError::Name)?;
        let ty_ok = ty.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic()
                || (i > 0 && (b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-')))
        });
        if ty.is_empty() || !ty_ok {
            return Err(PurlError::Type(ty.to_owned()));
        }
        let mut segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let name = decode(segments.pop().ok_or(PurlError::Name)?)?;
        if name.is_empty() {
            return Err(PurlError::Name);
        }
        let namespace = segments
            .iter()
            .map(|s| decode(s))
            .collect::<Result<Vec<_>, _>>()?
            .join("/");
        let mut purl = Purl::new(ty, Some(&namespace), &name, &version);
        for pair in qualifiers.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| PurlError::Qualifier(pair.to_owned()))?;
            // keys are not encoded: letters, digits, `.`, `-`, `_`, not starting with a digit
            let key_ok = k.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_alphabetic()
                    || matches!(b, b'.' | b'-' | b'_')
                    || (i > 0 && b.is_ascii_digit())
            });
            if k.is_empty() || !key_ok {
                return Err(PurlError::Qualifier(pair.to_owned()));
            }
            purl = purl.qualifier(k, &decode(v)?);
        }
        Ok(purl)
    }
}

/// Why a string is not a package URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    #[error("a package URL starts with `pkg:`")]
    Scheme,
    #[error("invalid package URL type {0:?}: letters first, then letters, digits, `.`, `+` or `-`")]
    Type(String),
    #[error("a package URL needs `pkg:<type>/<name>`")]
    Name,
    #[error("invalid qualifier {0:?}: qualifiers are `key=value` pairs joined by `&`")]
    Qualifier(String),
    #[error("invalid percent-encoding in {0:?} (or it decodes to invalid UTF-8)")]
    Encoding(String),
}

/// Percent-decode one component.
fn decode(s: &str) -> Result<String, PurlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| PurlError::Encoding(s.to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PurlError::Encoding(s.to_owned()))
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
    /// The image's executable files (regular files with any x bit, or an ELF or `#!` file),
    /// sorted by path: what `berth watch` takes as the image's expected programs. Read from
    /// another tool's document: every file it lists with a SHA-256 (syft lists the files its
    /// packages own, executable or not).
    #[serde(default)]
    pub files: Vec<FileDigest>,
}

/// One file of an image and its content's digests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileDigest {
    /// Absolute, `/`-separated, as the squashed image shows it.
    pub path: String,
    pub sha256: Digest,
    /// The diff ID of the layer that holds this version; `None` for a directory scan or a
    /// document that does not say.
    pub layer: Option<Digest>,
    /// SHA-1 of the content, 40 lowercase hex digits: SPDX 2.3 requires one for every file
    /// ("8.4 File checksum field"), so the scan computes it beside the SHA-256; `None` from a
    /// document that gives none. Never a basis for trust: match on [`FileDigest::sha256`].
    pub sha1: Option<String>,
}

/// A Python project name normalised as PEP 503 says (`Foo_Bar.baz` → `foo-bar-baz`: lowercase,
/// each run of `-`, `_` and `.` one `-`): how PyPI, OSV records and syft name packages.
pub fn pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}
