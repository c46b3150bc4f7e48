//! Java archives (`.jar`, `.war`, `.ear`, Jenkins' `.jpi`/`.hpi`): the Maven coordinates in
//! each `META-INF/maven/GROUP/ARTIFACT/pom.properties`, in the archive and in the archives
//! it holds (one level deep, as a fat jar's `BOOT-INF/lib/*.jar` or a war's `WEB-INF/lib`).
//! An archive without `pom.properties` is reported by its manifest's `Implementation-Title`
//! / `Implementation-Version` (or `Bundle-SymbolicName` / `Bundle-Version`) when it has them.

use super::{package, zip};
use crate::package::{Ecosystem, Package, Purl};

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

/// A manifest's main attributes (continuation lines joined).
fn manifest(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data).replace("\r\n", "\n");
    let main = text.split("\n\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in main.lines() {
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(cont);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

pub fn purl(group: &str, artifact: &str, version: &str) -> Purl {
    Purl::new("maven", Some(group), artifact, version)
}

fn maven(group: &str, artifact: &str, version: &str) -> Package {
    package(
        Ecosystem::Maven,
        &format!("{group}:{artifact}"),
        version,
        purl(group, artifact, version),
        "java",
    )
}

fn archive(data: &[u8], nested: bool, out: &mut Vec<Package>) {
    let Some(entries) = zip::entries(data) else {
        return;
    };
    let mut found = false;
    for e in &entries {
        if e.name.starts_with("META-INF/maven/") && e.name.ends_with("/pom.properties") {
            if let Some((g, a, v)) =
                zip::read(data, e, MAX_SMALL).and_then(|d| parse_pom_properties(&d))
            {
                out.push(maven(&g, &a, &v));
                found = true;
            }
        }
    }
    if !found {
        if let Some(m) = entries
            .iter()
            .find(|e| e.name == "META-INF/MANIFEST.MF")
            .and_then(|e| zip::read(data, e, MAX_SMALL))
        {
            let attrs = manifest(&m);
            let get = |k: &str| {
                attrs
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
            };
            let name = get("Implementation-Title").or_else(|| {
                get("Bundle-SymbolicName")
                    .map(|s| s.split(';').next().unwrap_or_default().to_owned())
            });
            let version = get("Implementation-Version").or_else(|| get("Bundle-Version"));
            let group = get("Implementation-Vendor-Id").unwrap_or_default();
            if let (Some(name), Some(version)) = (name, version) {
                let mut p = package(
                    Ecosystem::Maven,
                    &name,
                    &version,
                    purl(&group, &name, &version),
                    "java",
                );
                if !group.is_empty() {
                    p.name = format!("{group}:{name}");
                }
                out.push(p);
            }
        }
    }
    if nested {
        return;
    }
    for e in &entries {
        let lower = e.name.to_ascii_lowercase();
        if ARCHIVE_EXTENSIONS.iter().any(|x| lower.ends_with(x)) {
            if let Some(inner) = zip::read(data, e, MAX_NESTED) {
                archive(&inner, true, out);
            }
        }
    }
}

/// The Maven artifacts the archive at `path` holds.
pub fn from_archive(_path: &str, data: &[u8]) -> Vec<Package> {
    let mut out = Vec::new();
    archive(data, false, &mut out);
    out.sort_by(|a, b| a.purl.cmp(&b.purl));
    out.dedup_by(|a, b| a.purl == b.purl);
    out
}
