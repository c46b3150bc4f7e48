//! SBOM documents: an [`Inventory`] written as SPDX 2.3 JSON or CycloneDX 1.6 JSON, and
//! SPDX 2.2/2.3 and CycloneDX 1.4–1.6 JSON documents (berth's, syft's, trivy's) read back
//! into one.
//!
//! The writers never read the clock or any other state: the creation time is passed in
//! ([`WriteOptions::created`]), and the SPDX `documentNamespace` and the CycloneDX
//! `serialNumber` derive from the subject and the inventory's content, so the same
//! inventory written at the same time gives the same bytes.
//!
//! What round-trips: everything a [`Package`] holds through CycloneDX (berth's `berth:`
//! properties carry locations, layers, the cataloguer and the source package); through SPDX
//! the same (`sourceInfo` carries them in a form [`parse`] reads back), and of the
//! [`Distro`] its id, version and pretty name. What the reader keeps of another tool's
//! document: each package with a package URL whose type names an [`Ecosystem`] berth
//! catalogues; the others are listed in [`Parsed::skipped`] with why.
//!
//! Files ([`Inventory::files`]) round-trip through both formats (path, SHA-256, SHA-1,
//! layer): SPDX `files` with `SHA1` and `SHA256` checksums, CycloneDX components of type
//! `file` with `SHA-1` and `SHA-256` hashes, as syft writes them. A file another tool lists
//! without a SHA-256 is ignored, and a file is never a package nor a skipped one.

mod cyclonedx;
mod licence;
mod spdx_json;

use std::time::{SystemTime, UNIX_EPOCH};

use berth_oci::{Digest, Reference};
use serde_json::Value;

use crate::package::{Distro, Ecosystem, Inventory, Package, Purl, SourcePackage, Subject};

/// The media type of an SPDX JSON document (an OCI referrer's `artifactType`).
pub const SPDX_JSON_MEDIA_TYPE: &str = berth_oci::media_type::SPDX_JSON;
/// The media type of a CycloneDX JSON document (an OCI referrer's `artifactType`).
pub const CYCLONEDX_JSON_MEDIA_TYPE: &str = berth_oci::media_type::CYCLONEDX_JSON;

/// The tool name and version berth writes into its documents.
const TOOL_NAME: &str = "berth";
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A document format berth writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// SPDX JSON (berth writes 2.3; reads 2.2 and 2.3).
    SpdxJson,
    /// CycloneDX JSON (berth writes 1.6; reads 1.4 to 1.6).
    CycloneDxJson,
}

impl Format {
    /// The document's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::SpdxJson => SPDX_JSON_MEDIA_TYPE,
            Format::CycloneDxJson => CYCLONEDX_JSON_MEDIA_TYPE,
        }
    }

    /// The format a media type names (parameters such as `;version=1.6` ignored).
    pub fn from_media_type(media_type: &str) -> Option<Format> {
        let base = media_type.split(';').next().unwrap_or(media_type).trim();
        match base {
            SPDX_JSON_MEDIA_TYPE => Some(Format::SpdxJson),
            CYCLONEDX_JSON_MEDIA_TYPE => Some(Format::CycloneDxJson),
            _ => None,
        }
    }

    /// `SPDX` or `CycloneDX`.
    pub fn name(self) -> &'static str {
        match self {
            Format::SpdxJson => "SPDX",
            Format::CycloneDxJson => "CycloneDX",
        }
    }
}

/// What a document says beside the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// When the document was made (SPDX `creationInfo.created`, CycloneDX
    /// `metadata.timestamp`), written to the second in UTC.
    pub created: SystemTime,
}

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the document's creation time is before 1970-01-01T00:00:00Z")]
    CreatedBeforeEpoch,
    #[error("failed to serialise the {format} document")]
    Serialise {
        format: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Writes `inventory` as a document of `format`.
pub fn write(
    format: Format,
    inventory: &Inventory,
    options: &WriteOptions,
) -> Result<Vec<u8>, WriteError> {
    match format {
        Format::SpdxJson => spdx_json::write(inventory, options),
        Format::CycloneDxJson => cyclonedx::write(inventory, options),
    }
}

/// A document read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub format: Format,
    /// `SPDX-2.3`, `1.6`, …
    pub spec_version: String,
    /// The subject (from the document's root package or `metadata.component`; the document's
    /// name when it has none), the distribution and the packages, sorted as an
    /// [`Inventory`]'s are. A package whose document does not say which cataloguer found it
    /// has `found_by` `spdx` or `cyclonedx`.
    pub inventory: Inventory,
    /// Packages the document lists that berth cannot place in an ecosystem.
    pub skipped: Vec<Skipped>,
}

/// A package of a document that is not in the inventory read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it is in the document (`packages[3]`, `components[0].components[2]`).
    pub field: String,
    pub name: String,
    pub version: String,
    /// Why: no package URL, an invalid one, or one of a type berth does not catalogue.
    pub reason: String,
}

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the SBOM document is not JSON")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the SBOM document is neither SPDX nor CycloneDX JSON: it has no `spdxVersion` and no `bomFormat`"
    )]
    UnknownFormat,
    #[error("unsupported {format} version {version:?} in `{field}`: berth reads {supported}")]
    Version {
        format: &'static str,
        field: &'static str,
        version: String,
        supported: &'static str,
    },
    #[error("malformed {format} document: `{field}` {problem}")]
    Field {
        format: &'static str,
        field: String,
        problem: String,
    },
}

/// Reads an SPDX (2.2, 2.3) or CycloneDX (1.4–1.6) JSON document, whichever `bytes` is.
///
/// What another tool's document says only in its package URLs is filled in where its
/// fields left it empty: a Debian or Alpine package's source package (syft's `upstream`
/// qualifier) and the distribution (the `distro` qualifier), which a scan matches
/// distribution records by.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|source| ParseError::Json { source })?;
    let Some(obj) = doc.as_object() else {
        return Err(ParseError::UnknownFormat);
    };
    let mut parsed = if obj.contains_key("spdxVersion") {
        spdx_json::read(&doc)?
    } else if obj.contains_key("bomFormat") {
        cyclonedx::read(&doc)?
    } else {
        return Err(ParseError::UnknownFormat);
    };
    complete_from_purls(&mut parsed.inventory);
    Ok(parsed)
}

/// What an SBOM of another tool (syft's) says only in its package URLs, filled in where the
/// document's own fields left it empty: a Debian or Alpine package's source package (the
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
        let id_version = qualifier
            .as_deref()
            .and_then(|q| q.rsplit_once('-'))
            .filter(|(id, version)| !id.is_empty() && !version.is_empty());
        if let Some((id, version)) = id_version {
            inventory.distro = Some(Distro {
                id: id.to_owned(),
                version_id: Some(version.to_owned()),
                ..Distro::default()
            });
        }
    }
}

// ---- shared by the writers and readers ----

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
fn timestamp(t: SystemTime) -> Result<String, WriteError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| WriteError::CreatedBeforeEpoch)?
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

/// The digest of what a document describes: its subject and every package, distro and
/// unsupported file (the inventory's own JSON), for names that are the same for the same
/// content and differ otherwise.
fn content_digest(inventory: &Inventory) -> Digest {
    // Serialising these plain types cannot fail; an empty input would still be a digest.
    let bytes = serde_json::to_vec(inventory).unwrap_or_default();
    Digest::sha256_of(&bytes)
}

/// 16 hex digits identifying one package of an inventory (syft's `package-id` length).
fn package_id(package: &Package) -> String {
    let bytes = serde_json::to_vec(package).unwrap_or_default();
    Digest::sha256_of(&bytes).hex()[..16].to_owned()
}

/// The OCI package URL of an image subject, as purl-spec's `oci` type defines it:
/// `pkg:oci/<name>@<digest>?repository_url=<registry>/<repository>&tag=<tag>`. `None` for a
/// subject that is not an image (no digest).
fn oci_purl(subject: &Subject) -> Option<Purl> {
    let digest = subject.digest.as_ref()?;
    let reference = Reference::parse(&subject.name).ok();
    let (name, repository_url, tag) = match &reference {
        Some(r) => {
            let repo = r.repository();
            let last = repo.rsplit('/').next().unwrap_or(repo);
            (
                last.to_ascii_lowercase(),
                format!("{}/{}", r.registry(), repo),
                r.tag().map(str::to_owned),
            )
        }
        None => {
            let last = subject
                .name
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("image");
            (last.to_ascii_lowercase(), String::new(), None)
        }
    };
    let name = if name.is_empty() {
        "image".into()
    } else {
        name
    };
    Some(
        Purl::new("oci", None, &name, digest.as_str())
            .qualifier("repository_url", &repository_url)
            .qualifier("tag", tag.as_deref().unwrap_or("")),
    )
}

/// The package a document entry names, or why it is skipped.
fn package_from_purl(purl: &str) -> Result<(Purl, Ecosystem), String> {
    let parsed = Purl::parse(purl).map_err(|e| format!("invalid package URL {purl:?}: {e}"))?;
    let ecosystem = Ecosystem::from_purl_type(parsed.purl_type()).ok_or_else(|| {
        format!(
            "package URL type {:?} is not an ecosystem berth catalogues",
            parsed.purl_type()
        )
    })?;
    Ok((parsed, ecosystem))
}

/// Sorts packages as [`Inventory::packages`] are.
fn sort_packages(packages: &mut [Package]) {
    packages.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.version, &a.locations).cmp(&(
            b.ecosystem,
            &b.name,
            &b.version,
            &b.locations,
        ))
    });
}

/// A JSON reader that names the field it is at in its errors.
struct Reader {
    format: &'static str,
}

impl Reader {
    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> ParseError {
        ParseError::Field {
            format: self.format,
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// An optional string member.
    fn opt_str<'a>(
        &self,
        v: &'a Value,
        field: &str,
        key: &str,
    ) -> Result<Option<&'a str>, ParseError> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(join_field(field, key), "is not a string")),
        }
    }

    /// A required string member.
    fn str<'a>(&self, v: &'a Value, field: &str, key: &str) -> Result<&'a str, ParseError> {
        self.opt_str(v, field, key)?
            .ok_or_else(|| self.err(join_field(field, key), "is missing"))
    }

    /// An optional array member (missing or null: empty).
    fn array<'a>(&self, v: &'a Value, field: &str, key: &str) -> Result<&'a [Value], ParseError> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(self.err(join_field(field, key), "is not an array")),
        }
    }

    /// `v` must be an object.
    fn object(&self, v: &Value, field: &str) -> Result<(), ParseError> {
        if v.is_object() {
            Ok(())
        } else {
            Err(self.err(field, "is not an object"))
        }
    }
}

fn join_field(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_owned()
    } else {
        format!("{field}.{key}")
    }
}

/// A file path as the inventory holds it: absolute (`usr/bin/x` and `./usr/bin/x`, as
/// syft's SPDX writes them, become `/usr/bin/x`).
fn absolute(path: &str) -> String {
    let rel = path.strip_prefix("./").unwrap_or(path);
    if rel.starts_with('/') {
        rel.to_owned()
    } else {
        format!("/{rel}")
    }
}

/// A SHA-256 checksum as a document writes it (hex), at `field`.
fn sha256_hex(r: &Reader, field: &str, hex: &str) -> Result<Digest, ParseError> {
    Digest::parse(&format!("sha256:{}", hex.to_ascii_lowercase()))
        .map_err(|e| r.err(field, format!("is not a SHA-256 checksum: {e}")))
}

/// A SHA-1 checksum (40 hex digits) at `field`, lowercased.
fn sha1_hex(r: &Reader, field: &str, hex: &str) -> Result<String, ParseError> {
    if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(r.err(field, "is not a SHA-1 checksum (40 hex digits)"))
    }
}

/// A subject named only by the document.
fn subject_named(name: &str) -> Subject {
    Subject {
        name: name.to_owned(),
        digest: None,
        layers: Vec::new(),
    }
}

/// A distro with just an id and version.
fn distro(id: &str, version: Option<&str>) -> Distro {
    Distro {
        id: id.to_owned(),
        version_id: version.filter(|v| !v.is_empty()).map(str::to_owned),
        ..Distro::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s| timestamp(UNIX_EPOCH + Duration::from_secs(s)).unwrap();
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_796_444_889), "2026-12-05T04:28:09Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert!(timestamp(UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }

    #[test]
    fn media_types_name_their_formats() {
        for f in [Format::SpdxJson, Format::CycloneDxJson] {
            assert_eq!(Format::from_media_type(f.media_type()), Some(f));
        }
        assert_eq!(
            Format::from_media_type("application/vnd.cyclonedx+json; version=1.6"),
            Some(Format::CycloneDxJson)
        );
        assert_eq!(Format::from_media_type("application/json"), None);
    }

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
            files: Vec::new(),
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
