//! Rust crates: `Cargo.lock` files and binaries built with `cargo auditable` (a `.dep-v0`
//! ELF section holding zlib-compressed JSON: `{"packages":[{"name","version","source",…}]}`,
//! <https://github.com/rust-secure-code/cargo-auditable/blob/master/PARSING.md>).

use std::io::Read;

use serde::Deserialize;

use super::{elf, package};
use crate::package::{Ecosystem, Package, Purl};

/// The decompressed dependency list is bounded (8 MiB: far more than any real one).
const MAX_DEP_JSON: u64 = 8 << 20;

pub fn is_lockfile(path: &str) -> bool {
    path.ends_with("/Cargo.lock")
}

#[derive(Debug, Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Debug, Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
}

pub fn purl(name: &str, version: &str) -> Purl {
    Purl::new("cargo", None, name, version)
}

/// The packages of a `Cargo.lock` that come from a registry or a git repository (`source`
/// set): the workspace's own crates are not dependencies.
pub fn catalog_lockfile(data: &[u8]) -> Result<Vec<Package>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "Cargo.lock is not UTF-8".to_owned())?;
    let lock: Lock = toml::from_str(text).map_err(|e| format!("Cargo.lock: {e}"))?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| p.source.is_some())
        .map(|p| {
            package(
                Ecosystem::CratesIo,
                &p.name,
                &p.version,
                purl(&p.name, &p.version),
                "cargo",
            )
        })
        .collect())
}

#[derive(Debug, Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(Debug, Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
}

/// The dependency list of a `cargo auditable` binary's `.dep-v0` section, or why not.
pub fn parse_dep_v0(section: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section)
        .take(MAX_DEP_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!(".dep-v0 is not zlib data: {e}"))?;
    if json.len() as u64 > MAX_DEP_JSON {
        return Err(format!(
            ".dep-v0 inflates to more than {MAX_DEP_JSON} bytes"
        ));
    }
    let audit: Audit = serde_json::from_slice(&json).map_err(|e| format!(".dep-v0 JSON: {e}"))?;
    Ok(audit
        .packages
        .into_iter()
        .map(|p| (p.name, p.version))
        .collect())
}

/// The crates a `cargo auditable` binary records (none for other files).
pub fn from_elf(data: &[u8]) -> Vec<Package> {
    let Some(section) = elf::section(data, ".dep-v0") else {
        return Vec::new();
    };
    match parse_dep_v0(section) {
        Ok(list) => list
            .into_iter()
            .map(|(n, v)| package(Ecosystem::CratesIo, &n, &v, purl(&n, &v), "cargo-auditable"))
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "unreadable cargo auditable data");
            Vec::new()
        }
    }
}
