//! dpkg's database: `/var/lib/dpkg/status` (and distroless images' `/var/lib/dpkg/status.d/*`,
//! one file per package), with licences from the packages' machine-readable
//! `/usr/share/doc/NAME/copyright` files (DEP-5 `License:` fields).

use std::collections::BTreeSet;

use super::{osrelease, package, rfc822_fields};
use crate::layers::FileView;
use crate::package::{Distro, Ecosystem, Package, Purl, SourcePackage};

pub const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_D: &str = "/var/lib/dpkg/status.d/";

/// `/var/lib/dpkg/status` or a file of `status.d/` (not its `.md5sums`).
pub fn is_database(path: &str) -> bool {
    path == STATUS
        || path
            .strip_prefix(STATUS_D)
            .is_some_and(|f| !f.is_empty() && !f.contains('/') && !f.ends_with(".md5sums"))
}

/// `/usr/share/doc/NAME/copyright`.
pub fn is_copyright(path: &str) -> bool {
    path.strip_prefix("/usr/share/doc/")
        .and_then(|r| r.strip_suffix("/copyright"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// One paragraph of a dpkg status file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// `Status:` (`install ok installed`).
    pub status: String,
    /// `Source:` name and its optional `(version)`.
    pub source: Option<(String, Option<String>)>,
}

impl Entry {
    /// dpkg's "installed" state: the third word of `Status:`.
    pub fn installed(&self) -> bool {
        // distroless status.d files have no Status field: every file is an installed package
        self.status.is_empty() || self.status.split_whitespace().nth(2) == Some("installed")
    }
}

/// The paragraphs of a status file, in order; paragraphs without `Package:` are left out.
pub fn parse_status(data: &[u8]) -> Vec<Entry> {
    let text = String::from_utf8_lossy(data).replace("\r\n", "\n");
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut e = Entry::default();
        for (k, v) in rfc822_fields(para) {
            match k {
                "Package" => e.package = v,
                "Version" => e.version = v,
                "Architecture" => e.architecture = v,
                "Status" => e.status = v,
                "Source" => {
                    let v = v.trim();
                    e.source = Some(match v.split_once('(') {
                        Some((name, rest)) => (
                            name.trim().to_owned(),
                            Some(rest.trim_end_matches(')').trim().to_owned())
                                .filter(|s| !s.is_empty()),
                        ),
                        None => (v.to_owned(), None),
                    });
                }
                _ => {}
            }
        }
        if !e.package.is_empty() {
            out.push(e);
        }
    }
    out
}

/// The licences a copyright file names: each `License:` field's short name (DEP-5), and the
/// `/usr/share/common-licenses/NAME` files it points to; sorted, without duplicates.
pub fn parse_copyright(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:")
            && let Some(first) = v.split_whitespace().next()
        {
            let l = first.trim_end_matches([',', '.']);
            // "License: none": no licence named (syft leaves it out too)
            if !l.is_empty() && l != "none" {
                out.insert(l.to_owned());
            }
        }
        let mut rest = line;
        while let Some(i) = rest.find("/usr/share/common-licenses/") {
            let after = &rest[i + "/usr/share/common-licenses/".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                .collect();
            let name = name.trim_end_matches('.');
            if !name.is_empty() {
                out.insert(name.to_owned());
            }
            rest = after;
        }
    }
    out.into_iter().collect()
}

/// The purl syft writes for a dpkg package.
pub fn purl(e: &Entry, distro: Option<&Distro>) -> Purl {
    let mut p = Purl::new("deb", distro.map(|d| d.id.as_str()), &e.package, &e.version)
        .qualifier("arch", &e.architecture);
    if let Some((name, version)) = &e.source {
        let upstream = match version {
            Some(v) => format!("{name}@{v}"),
            None => name.clone(),
        };
        p = p.qualifier("upstream", &upstream);
    }
    if let Some(d) = distro {
        p = p.qualifier("distro", &osrelease::purl_qualifier(d));
    }
    p
}

/// The installed packages of a status file, with licences from `view`'s copyright files.
pub fn catalog(
    data: &[u8],
    distro: Option<&Distro>,
    view: &FileView<Vec<Package>>,
) -> Result<Vec<Package>, String> {
    Ok(parse_status(data)
        .into_iter()
        .filter(Entry::installed)
        .map(|e| {
            let mut p = package(
                Ecosystem::Debian,
                &e.package,
                &e.version,
                purl(&e, distro),
                "dpkg",
            );
            if let Some((_, _, c)) = view.data(&format!("/usr/share/doc/{}/copyright", e.package)) {
                p.licenses = parse_copyright(c);
            }
            if let Some((name, version)) = e.source {
                p.source = Some(SourcePackage {
                    name,
                    version: version.unwrap_or_else(|| e.version.clone()),
                });
            }
            p
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_sources_and_states() {
        let s = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: libssl3\nStatus: install ok installed\nSource: openssl (3.0.11-1)\nVersion: 3.0.11-1+b1\n";
        let e = parse_status(s);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].source, Some(("glibc".into(), None)));
        assert!(!e[1].installed());
        assert_eq!(
            e[2].source,
            Some(("openssl".into(), Some("3.0.11-1".into())))
        );
        let d = Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..Distro::default()
        };
        assert_eq!(
            purl(&e[0], Some(&d)).to_string(),
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc"
        );
        assert!(is_database("/var/lib/dpkg/status.d/base"));
        assert!(!is_database("/var/lib/dpkg/status.d/base.md5sums"));
        assert!(is_copyright("/usr/share/doc/bash/copyright"));
        assert!(!is_copyright("/usr/share/doc/bash/x/copyright"));
    }

    #[test]
    fn copyright_licences() {
        let c = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n\nFiles: a\nLicense: BSD-3-clause or MIT\n see /usr/share/common-licenses/GPL-2.\n\nFiles: b\nLicense: none\n";
        assert_eq!(parse_copyright(c), vec!["BSD-3-clause", "GPL-2", "GPL-2+"]);
    }
}
