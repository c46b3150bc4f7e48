//! Installed Python distributions: `NAME-VERSION.dist-info/METADATA` (wheels, pip) and
//! `NAME.egg-info/PKG-INFO` or a `NAME.egg-info` file (setuptools, Debian's python3-*
//! packages). Core metadata: <https://packaging.python.org/en/latest/specifications/core-metadata/>.

use super::{package, rfc822_fields};
use crate::package::{Ecosystem, Package, Purl, pypi_name};

/// A metadata file: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` or a `*.egg-info` file.
pub fn is_metadata(path: &str) -> bool {
    let Some((dir, file)) = path.rsplit_once('/') else {
        return false;
    };
    (file == "METADATA" && dir.ends_with(".dist-info"))
        || (file == "PKG-INFO" && dir.ends_with(".egg-info"))
        || (file.ends_with(".egg-info") && file.len() > ".egg-info".len())
}

/// Name, version and licences of a metadata file (the header part: up to the first blank
/// line); `None` without a name or version.
pub fn parse_metadata(data: &[u8]) -> Option<(String, String, Vec<String>)> {
    let text = String::from_utf8_lossy(data).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or_default();
    let (mut name, mut version) = (String::new(), String::new());
    let (mut license, mut expression) = (None, None);
    let mut classifiers = Vec::new();
    for (k, v) in rfc822_fields(head) {
        match k.to_ascii_lowercase().as_str() {
            "name" => name = v,
            "version" => version = v,
            "license" => license = Some(v),
            "license-expression" => expression = Some(v),
            "classifier" => {
                if let Some(l) = v.strip_prefix("License :: OSI Approved :: ") {
                    classifiers.push(l.to_owned());
                }
            }
            _ => {}
        }
    }
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let licenses = match (expression, license) {
        (Some(e), _) if !e.is_empty() => vec![e],
        // a licence field holding the whole licence text is not a name
        (_, Some(l)) if !l.is_empty() && l != "UNKNOWN" && !l.contains('\n') => vec![l],
        _ => classifiers,
    };
    Some((name, version, licenses))
}

pub fn catalog(data: &[u8]) -> Result<Vec<Package>, String> {
    let Some((name, version, licenses)) = parse_metadata(data) else {
        return Err("python package metadata without Name or Version".to_owned());
    };
    let purl = Purl::new("pypi", None, &pypi_name(&name), &version);
    let mut p = package(Ecosystem::PyPI, &pypi_name(&name), &version, purl, "python");
    p.licenses = licenses;
    Ok(vec![p])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(pypi_name("Foo_Bar.baz"), "foo-bar-baz");
        assert_eq!(pypi_name("PyYAML"), "pyyaml");
        assert!(is_metadata(
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"
        ));
        assert!(is_metadata(
            "/usr/lib/python3/dist-packages/six.egg-info/PKG-INFO"
        ));
        assert!(is_metadata(
            "/usr/lib/python3.11/lib-dynload/x-1.0.egg-info"
        ));
        assert!(!is_metadata("/a/METADATA"));
        let (n, v, l) =
            parse_metadata(b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nbody\nName: no\n").unwrap();
        assert_eq!(
            (n.as_str(), v.as_str(), l),
            ("requests", "2.31.0", vec!["Apache 2.0".to_owned()])
        );
    }
}
