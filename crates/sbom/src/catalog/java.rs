//! Java archives (`.jar`, `.war`, `.ear`, Jenkins' `.jpi`/`.hpi`): the Maven coordinates in
//! each `META-INF/maven/GROUP/ARTIFACT/pom.properties`, in the archive and in the archives
//! it holds (one level deep, as a fat jar's `BOOT-INF/lib/*.jar` or a war's `WEB-INF/lib`).
//! An archive without `pom.properties` is not reported: its coordinates would be guesses
//! (syft derives them from the file name and the manifest, often wrongly: `maven3-core` for
//! `org.apache.maven:maven-core`), and a wrong purl matches the wrong vulnerabilities.

use std::io::Cursor;
use std::path::Path;

use super::package;
use crate::package::{Ecosystem, Package, Purl};
use crate::zip::ZipReader;

pub const ARCHIVE_EXTENSIONS: [&str; 5] = [".jar", ".war", ".ear", ".jpi", ".hpi"];

/// Small files read from an archive (pom.properties, the manifest).
const MAX_SMALL: u64 = 1 << 20;
/// Nested archives read into memory.
const MAX_NESTED: u64 = 64 << 20;

/// `groupId`, `artifactId`, `version` of a pom.properties file.
pub fn parse_pom_properties(data: &[u8]) -> Option<(String, String, String)> {
    let text = String::from_utf8_lossy(data);
    let (mut g, mut a, mut v) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, val)) = line.split_once(['=', ':']) else {
            continue;
        };
        let val = val.trim().to_owned();
        match k.trim() {
            "groupId" => g = Some(val),
            "artifactId" => a = Some(val),
            "version" => v = Some(val),
            _ => {}
        }
    }
    let (g, a, v) = (g?, a?, v?);
    (!a.is_empty() && !v.is_empty()).then_some((g, a, v))
}

pub fn purl(group: &str, artifact: &str, version: &str) -> Purl {
    Purl::new("maven", Some(group), artifact, version)
}

fn maven(group: &str, artifact: &str, version: &str) -> Package {
    package(
        Ecosystem::Maven,
        artifact,
        version,
        purl(group, artifact, version),
        "java",
    )
}

fn archive(path: &str, data: &[u8], nested: bool, out: &mut Vec<Package>) {
    let Ok(mut zip) = ZipReader::new(Cursor::new(data), Path::new(path)) else {
        return;
    };
    let entries: Vec<(usize, String)> = zip
        .entries()
        .iter()
        .enumerate()
        .map(|(i, e)| (i, e.name.clone()))
        .collect();
    for (i, name) in &entries {
        if name.starts_with("META-INF/maven/")
            && name.ends_with("/pom.properties")
            && let Some((g, a, v)) = zip
                .read(*i, MAX_SMALL)
                .ok()
                .and_then(|d| parse_pom_properties(&d))
        {
            out.push(maven(&g, &a, &v));
        }
    }
    if nested {
        return;
    }
    for (i, name) in &entries {
        let lower = name.to_ascii_lowercase();
        if ARCHIVE_EXTENSIONS.iter().any(|x| lower.ends_with(x))
            && let Ok(inner) = zip.read(*i, MAX_NESTED)
        {
            archive(&format!("{path}!{name}"), &inner, true, out);
        }
    }
}

/// The Maven artifacts the archive at `path` holds.
pub fn from_archive(path: &str, data: &[u8]) -> Vec<Package> {
    let mut out = Vec::new();
    archive(path, data, false, &mut out);
    out.sort_by(|a, b| a.purl.cmp(&b.purl));
    out.dedup_by(|a, b| a.purl == b.purl);
    out
}
