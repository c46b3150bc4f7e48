//! Finding packages in an image: one cataloguer per format, over the squashed view of the
//! image's files that [`crate::layers`] reads.
//!
//! - [`catalog_layers`]: an image's layers (bottom first), streamed once;
//! - [`catalog_dir`]: a root file system in a directory (`berth sbom DIR`).
//!
//! | cataloguer | files | `found_by` |
//! |---|---|---|
//! | [`dpkg`] | `/var/lib/dpkg/status`, `/var/lib/dpkg/status.d/*`, `/usr/share/doc/*/copyright` | `dpkg` |
//! | [`apk`] | `/lib/apk/db/installed` | `apk` |
//! | [`rpm`] | `rpmdb.sqlite` (Berkeley DB and NDB databases are [`Unsupported`]) | `rpm` |
//! | [`python`] | `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, `*.egg-info` | `python` |
//! | [`npm`] | `node_modules/**/package.json`, `package-lock.json` | `npm`, `npm-lock` |
//! | [`rust`] | `Cargo.lock`, ELF binaries' `.dep-v0` (`cargo auditable`) | `cargo`, `cargo-auditable` |
//! | [`golang`] | ELF binaries' Go build information | `go-binary` |
//! | [`java`] | `*.jar`, `*.war`, `*.ear` (`pom.properties`, nested archives one level deep) | `java` |
//! | [`osrelease`] | `/etc/os-release`, `/usr/lib/os-release` | (the [`Distro`]) |
//!
//! Beside the packages, the inventory lists the image's executable files with their
//! digests ([`Inventory::files`], from [`FileView::executables`]).
//!
//! A file a cataloguer cannot read (corrupt, or a format berth does not read) becomes an
//! [`Unsupported`] entry with the reason: never skipped silently, never fatal to the rest.
//! Purls are written as syft writes them (its `syft-json` output is what the tests compare
//! with), but for the order of qualifiers, which [`crate::package::Purl`] sorts.

pub mod apk;
pub mod dpkg;
pub mod elf;
pub mod golang;
pub mod java;
pub mod npm;
pub mod osrelease;
pub mod python;
pub mod rpm;
pub mod rust;
pub mod sqlite;

use std::io::Read;
use std::path::Path;

use berth_oci::Digest;

use crate::layers::{self, Content, FileView, LayerBlob, ScanError, ScanLimits, Want};
use crate::package::{FileDigest, Inventory, Location, Package, Subject, Unsupported};

/// Why an image or directory could not be catalogued at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("failed to read the image's files")]
    Scan(#[from] ScanError),
}

/// What the cataloguers ask of the image's files.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogSelector;

fn is_java_archive(path: &str) -> bool {
    java::ARCHIVE_EXTENSIONS
        .iter()
        .any(|ext| path.len() > ext.len() && path.to_ascii_lowercase().ends_with(ext))
}

impl layers::Selector for CatalogSelector {
    type Found = Vec<Package>;

    fn want(&self, path: &str) -> Want {
        if osrelease::PATHS.contains(&path)
            || dpkg::is_database(path)
            || dpkg::is_copyright(path)
            || path == apk::INSTALLED
            || rpm::is_sqlite(path)
            || python::is_metadata(path)
            || npm::is_package_json(path)
            || npm::is_lockfile(path)
            || rust::is_lockfile(path)
        {
            Want::Keep
        } else if rpm::unsupported_database(path).is_some() {
            Want::Mark
        } else if is_java_archive(path) {
            Want::Inspect
        } else {
            Want::Sniff
        }
    }

    fn inspect(&self, path: &str, data: &[u8]) -> Option<Vec<Package>> {
        let found = if data.starts_with(b"\x7fELF") {
            let mut found = golang::from_elf(data);
            found.extend(rust::from_elf(data));
            found
        } else if is_java_archive(path) {
            java::from_archive(path, data)
        } else {
            Vec::new()
        };
        (!found.is_empty()).then_some(found)
    }
}

/// The packages in an image's `layers` (bottom first; each layer's diff ID is checked as it
/// is read), as the squashed file system shows them: a package whose files a later layer
/// deleted is not reported; one re-added later is, at the later layer.
pub fn catalog_layers<R: Read>(
    name: &str,
    digest: Option<Digest>,
    layers: impl IntoIterator<Item = LayerBlob<R>>,
    limits: &ScanLimits,
) -> Result<Inventory, CatalogError> {
    let span = tracing::info_span!("catalog_layers", subject = name);
    let _enter = span.enter();
    let view = layers::scan_layers(layers, &CatalogSelector, limits)?;
    Ok(catalog_view(name, digest, &view))
}

/// The packages in the root file system in the directory `root` (locations have no layer).
pub fn catalog_dir(root: &Path, limits: &ScanLimits) -> Result<Inventory, CatalogError> {
    let span = tracing::info_span!("catalog_dir", root = %root.display());
    let _enter = span.enter();
    let view = layers::scan_dir(root, &CatalogSelector, limits)?;
    Ok(catalog_view(&root.display().to_string(), None, &view))
}

/// What each cataloguer finds in `view`.
pub fn catalog_view(
    name: &str,
    digest: Option<Digest>,
    view: &FileView<Vec<Package>>,
) -> Inventory {
    let distro = osrelease::from_view(view);
    let mut packages = Vec::new();
    let mut unsupported = Vec::new();
    let mut problem = |path: &str, layer: Option<&Digest>, reason: String| {
        unsupported.push(Unsupported {
            location: Location {
                path: path.to_owned(),
                layer: layer.cloned(),
            },
            reason,
        });
    };
    for (path, entry) in &view.files {
        let loc = Location {
            path: path.clone(),
            layer: entry.layer.clone(),
        };
        let data = match &entry.content {
            Content::Data(d) => d.as_slice(),
            Content::Found(found) => {
                for p in found {
                    let mut p = p.clone();
                    p.locations = vec![loc.clone()];
                    packages.push(p);
                }
                continue;
            }
            Content::Present => {
                if let Some(what) = rpm::unsupported_database(path) {
                    problem(path, entry.layer.as_ref(), what.to_owned());
                }
                continue;
            }
            Content::TooLarge { size } => {
                problem(
                    path,
                    entry.layer.as_ref(),
                    format!(
                        "{size} bytes: larger than the limit for inspecting binaries and archives (ScanLimits::max_inspect_bytes); not inspected"
                    ),
                );
                continue;
            }
        };
        let found = if dpkg::is_database(path) {
            dpkg::catalog(data, distro.as_ref(), view)
        } else if path == apk::INSTALLED {
            apk::catalog(data, distro.as_ref())
        } else if rpm::is_sqlite(path) {
            rpm::catalog(data, distro.as_ref())
        } else if python::is_metadata(path) {
            python::catalog(data)
        } else if npm::is_package_json(path) {
            npm::catalog_package_json(data)
        } else if npm::is_lockfile(path) {
            npm::catalog_lockfile(data)
        } else if rust::is_lockfile(path) {
            rust::catalog_lockfile(data)
        } else {
            Ok(Vec::new())
        };
        match found {
            Ok(found) => {
                for mut p in found {
                    p.locations = vec![loc.clone()];
                    packages.push(p);
                }
            }
            Err(reason) => problem(path, entry.layer.as_ref(), reason),
        }
    }
    packages.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.version, &a.locations).cmp(&(
            b.ecosystem,
            &b.name,
            &b.version,
            &b.locations,
        ))
    });
    Inventory {
        subject: Subject {
            name: name.to_owned(),
            digest,
            layers: view.layers.clone(),
        },
        distro,
        packages,
        unsupported,
        files: view
            .executables
            .iter()
            .map(|(path, e)| FileDigest {
                path: path.clone(),
                sha256: e.sha256.clone(),
                layer: e.layer.clone(),
                sha1: Some(e.sha1.clone()),
            })
            .collect(),
    }
}

/// `Name: value` fields of an RFC 822-style paragraph (dpkg, Python metadata), continuation
/// lines joined with `\n`; lines that are neither are ignored.
pub(crate) fn rfc822_fields(paragraph: &str) -> Vec<(&str, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in paragraph.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim(), v.trim().to_owned()));
        }
    }
    fields
}

/// A package with no location yet (the caller sets it).
pub(crate) fn package(
    ecosystem: crate::package::Ecosystem,
    name: &str,
    version: &str,
    purl: crate::package::Purl,
    found_by: &str,
) -> Package {
    Package {
        name: name.to_owned(),
        version: version.to_owned(),
        ecosystem,
        purl,
        licenses: Vec::new(),
        source: None,
        locations: Vec::new(),
        found_by: found_by.to_owned(),
    }
}
