//! npm packages: installed ones (`node_modules/**/package.json`) and the ones a
//! `package-lock.json` pins (lockfileVersion 1: nested `dependencies`; 2 and 3: `packages`
//! keyed by their `node_modules/…` path).

use serde_json::Value;

use super::package;
use crate::package::{Ecosystem, Package, Purl};

/// Any `package.json` (a package installed under `node_modules/`, or an application's own):
/// syft reads them all; those without a name and a version are not packages.
pub fn is_package_json(path: &str) -> bool {
    path.ends_with("/package.json")
}

pub fn is_lockfile(path: &str) -> bool {
    path.ends_with("/package-lock.json") && !path.contains("/node_modules/")
}

/// The purl of an npm package name (`@scope/name` → namespace `@scope`).
pub fn purl(name: &str, version: &str) -> Purl {
    match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => Purl::new("npm", Some(scope), n, version),
        _ => Purl::new("npm", None, name, version),
    }
}

fn licenses(v: &Value) -> Vec<String> {
    match v.get("license") {
        Some(Value::String(s)) if !s.is_empty() => return vec![s.clone()],
        Some(Value::Object(o)) => {
            if let Some(Value::String(s)) = o.get("type") {
                return vec![s.clone()];
            }
        }
        _ => {}
    }
    match v.get("licenses") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|l| match l {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn catalog_package_json(data: &[u8]) -> Result<Vec<Package>, String> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| format!("package.json is not JSON: {e}"))?;
    let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
    let version = v.get("version").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = package(Ecosystem::Npm, name, version, purl(name, version), "npm");
    p.licenses = licenses(&v);
    Ok(vec![p])
}

fn lock_package(name: &str, version: &str, entry: &Value) -> Package {
    let mut p = package(
        Ecosystem::Npm,
        name,
        version,
        purl(name, version),
        "npm-lock",
    );
    p.licenses = licenses(entry);
    p
}

/// lockfileVersion 1: `dependencies`, nested.
fn walk_v1(deps: &serde_json::Map<String, Value>, out: &mut Vec<Package>, depth: usize) {
    if depth > 64 {
        return;
    }
    for (name, entry) in deps {
        if let Some(version) = entry.get("version").and_then(Value::as_str) {
            out.push(lock_package(name, version, entry));
        }
        if let Some(Value::Object(nested)) = entry.get("dependencies") {
            walk_v1(nested, out, depth + 1);
        }
    }
}

pub fn catalog_lockfile(data: &[u8]) -> Result<Vec<Package>, String> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| format!("package-lock.json is not JSON: {e}"))?;
    let mut out = Vec::new();
    if let Some(Value::Object(packages)) = v.get("packages") {
        for (path, entry) in packages {
            // links point at a workspace's own folder ("" is the project itself: reported,
            // as syft does)
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| path.rsplit_once("node_modules/").map(|(_, n)| n.to_owned()));
            let (Some(name), Some(version)) = (name, entry.get("version").and_then(Value::as_str))
            else {
                continue;
            };
            out.push(lock_package(&name, version, entry));
        }
    } else if let Some(Value::Object(deps)) = v.get("dependencies") {
        walk_v1(deps, &mut out, 0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_purls() {
        assert!(is_package_json("/app/node_modules/left-pad/package.json"));
        assert!(is_package_json(
            "/app/node_modules/@types/node/package.json"
        ));
        assert!(is_package_json(
            "/app/node_modules/a/node_modules/b/package.json"
        ));
        assert!(!is_package_json("/app/package.json.bak"));
        assert_eq!(
            purl("@types/node", "1.0.0").to_string(),
            "pkg:npm/%40types/node@1.0.0"
        );
        let v1 = br#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}"#;
        let p = catalog_lockfile(v1).unwrap();
        assert_eq!(p.len(), 2);
        let v3 = br#"{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/@s/x":{"version":"3.0.0","license":"MIT"}}}"#;
        let p = catalog_lockfile(v3).unwrap();
        assert_eq!(p.len(), 1, "the project without a version is no package");
        assert_eq!(p[0].purl.to_string(), "pkg:npm/%40s/x@3.0.0");
        assert_eq!(p[0].licenses, vec!["MIT"]);
    }
}
