//! apk's database, `/lib/apk/db/installed`: one paragraph per package, one `X:value` line
//! per field (`P` name, `V` version, `A` architecture, `L` licence, `o` origin).

use super::{osrelease, package};
use crate::package::{Distro, Ecosystem, Package, Purl, SourcePackage};

pub const INSTALLED: &str = "/lib/apk/db/installed";

/// One package of the apk database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub license: String,
    pub origin: String,
}

/// The packages of an installed database, in order; paragraphs without `P:` are left out.
pub fn parse_installed(data: &[u8]) -> Vec<Entry> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut e = Entry::default();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            if !e.name.is_empty() {
                out.push(std::mem::take(&mut e));
            }
            e = Entry::default();
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.to_owned();
        match k {
            "P" => e.name = v,
            "V" => e.version = v,
            "A" => e.arch = v,
            "L" => e.license = v,
            "o" => e.origin = v,
            _ => {}
        }
    }
    out
}

/// The purl syft writes for an apk package.
pub fn purl(e: &Entry, distro: Option<&Distro>) -> Purl {
    let mut p = Purl::new("apk", distro.map(|d| d.id.as_str()), &e.name, &e.version)
        .qualifier("arch", &e.arch);
    // syft names the origin only when it differs from the package
    if e.origin != e.name {
        p = p.qualifier("upstream", &e.origin);
    }
    if let Some(d) = distro {
        p = p.qualifier("distro", &osrelease::purl_qualifier(d));
    }
    p
}

pub fn catalog(data: &[u8], distro: Option<&Distro>) -> Result<Vec<Package>, String> {
    Ok(parse_installed(data)
        .into_iter()
        .map(|e| {
            let mut p = package(
                Ecosystem::Alpine,
                &e.name,
                &e.version,
                purl(&e, distro),
                "apk",
            );
            if !e.license.is_empty() {
                p.licenses = vec![e.license.clone()];
            }
            if !e.origin.is_empty() && e.origin != e.name {
                p.source = Some(SourcePackage {
                    name: e.origin.clone(),
                    version: e.version.clone(),
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
    fn paragraphs() {
        let db = b"C:Q1x=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\no:busybox\n";
        let e = parse_installed(db);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].origin, "busybox");
        let d = Distro {
            id: "alpine".into(),
            version_id: Some("3.19.1".into()),
            ..Distro::default()
        };
        assert_eq!(
            purl(&e[0], Some(&d)).to_string(),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
        );
    }
}
