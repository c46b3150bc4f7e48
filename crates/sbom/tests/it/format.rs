//! SPDX and CycloneDX documents: what berth writes reads back to the same inventory, the
//! writers are reproducible, odd inputs and 10 000 packages survive. Reading others' documents: `format_read.rs`; schema validity:
//! `format_schema.rs`; syft's documents: `format_syft.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::type_complexity,
    reason = "tests fail by panicking; their temporary files need no atomic writes"
)]

use std::time::{Duration, Instant, UNIX_EPOCH};

use berth_oci::Digest;
use berth_sbom::format::{
    self, CYCLONEDX_JSON_MEDIA_TYPE, Format, SPDX_JSON_MEDIA_TYPE, WriteOptions,
};
use berth_sbom::package::{
    Distro, Ecosystem, FileDigest, Inventory, Location, Package, Purl, SourcePackage, Subject,
};
use serde_json::Value;

pub(crate) const FORMATS: [Format; 2] = [Format::SpdxJson, Format::CycloneDxJson];

pub(crate) fn options() -> WriteOptions {
    WriteOptions {
        // 2026-12-05T04:28:09Z
        created: UNIX_EPOCH + Duration::from_secs(1_796_444_889),
    }
}

pub(crate) fn layer(n: u8) -> Digest {
    Digest::sha256_of(&[n])
}

pub(crate) fn package(
    eco: Ecosystem,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    licenses: &[&str],
    path: &str,
    layer_n: Option<u8>,
) -> Package {
    Package {
        name: name.to_owned(),
        version: version.to_owned(),
        ecosystem: eco,
        purl: Purl::new(eco.purl_type(), namespace, name, version),
        licenses: licenses.iter().map(|s| s.to_string()).collect(),
        source: None,
        locations: vec![Location {
            path: path.to_owned(),
            layer: layer_n.map(layer),
        }],
        found_by: match eco {
            Ecosystem::Debian => "dpkg",
            Ecosystem::Alpine => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::PyPI => "python",
            Ecosystem::Npm => "npm",
            Ecosystem::CratesIo => "cargo-auditable",
            Ecosystem::Go => "go-binary",
            Ecosystem::Maven => "java",
        }
        .to_owned(),
    }
}

/// An executable file of `content`, from layer `layer_n`; its SHA-1 from coreutils'
/// `sha1sum`.
pub(crate) fn file(path: &str, content: &[u8], layer_n: Option<u8>) -> FileDigest {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let out = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(content)?;
            c.wait_with_output()
        })
        .expect("sha1sum (coreutils) is required");
    let sha1 = String::from_utf8(out.stdout).unwrap()[..40].to_owned();
    FileDigest {
        path: path.to_owned(),
        sha256: Digest::sha256_of(content),
        layer: layer_n.map(layer),
        sha1: Some(sha1),
    }
}

pub(crate) fn sorted(mut packages: Vec<Package>) -> Vec<Package> {
    packages.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.version, &a.locations).cmp(&(
            b.ecosystem,
            &b.name,
            &b.version,
            &b.locations,
        ))
    });
    packages
}

/// An image with a Debian base, a Python and an npm layer, licences of every kind.
pub(crate) fn image_inventory() -> Inventory {
    let mut libssl = package(
        Ecosystem::Debian,
        Some("debian"),
        "libssl3",
        "3.0.15-1~deb12u1",
        &["Apache-2.0"],
        "/var/lib/dpkg/status",
        Some(0),
    );
    libssl.purl = libssl
        .purl
        .clone()
        .qualifier("arch", "amd64")
        .qualifier("distro", "debian-12")
        .qualifier("upstream", "openssl");
    libssl.source = Some(SourcePackage {
        name: "openssl".into(),
        version: "3.0.15-1~deb12u1".into(),
    });
    let packages = vec![
        libssl,
        package(
            Ecosystem::Debian,
            Some("debian"),
            "passwd",
            "1:4.13+dfsg1-1+b1",
            &["GPL-2.0-only", "BSD-3-Clause"],
            "/var/lib/dpkg/status",
            Some(0),
        ),
        package(
            Ecosystem::Debian,
            Some("debian"),
            "tzdata",
            "2024a-0+deb12u1",
            &["public-domain"],
            "/var/lib/dpkg/status",
            Some(0),
        ),
        package(
            Ecosystem::PyPI,
            None,
            "requests",
            "2.32.3",
            &["Apache-2.0 OR MIT", "LicenseRef-Custom"],
            "/usr/lib/python3/dist-packages/requests-2.32.3.dist-info/METADATA",
            Some(1),
        ),
        package(
            Ecosystem::PyPI,
            None,
            "urllib3",
            "2.2.2",
            &["MIT License", "MIT"],
            "/usr/lib/python3/dist-packages/urllib3-2.2.2.dist-info/METADATA",
            Some(1),
        ),
        package(
            Ecosystem::Npm,
            Some("@types"),
            "node",
            "20.1.0",
            &["MIT"],
            "/app/node_modules/@types/node/package.json",
            Some(2),
        ),
        package(
            Ecosystem::Maven,
            Some("org.apache.logging.log4j"),
            "log4j-core",
            "2.17.1",
            &["Apache-2.0 WITH LLVM-exception AND (MIT OR BSD-2-Clause)"],
            "/app/lib/log4j-core-2.17.1.jar",
            Some(2),
        ),
        package(
            Ecosystem::Go,
            Some("github.com/spf13"),
            "cobra",
            "v1.8.0",
            &[],
            "/usr/local/bin/app",
            Some(2),
        ),
    ];
    Inventory {
        subject: Subject {
            name: "registry.example:5000/team/app:1.0".into(),
            digest: Some(Digest::sha256_of(b"manifest")),
            layers: vec![layer(0), layer(1), layer(2)],
        },
        distro: Some(Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            id_like: vec![],
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
        }),
        packages: sorted(packages),
        unsupported: vec![],
        files: vec![
            file("/bin/sh", b"\x7fELF dash", Some(0)),
            file("/usr/bin/openssl", b"\x7fELF openssl", Some(0)),
            file("/usr/local/bin/app", b"\x7fELF app", Some(2)),
            file(
                "/usr/local/bin/entrypoint.sh",
                b"#!/bin/sh\nexec app\n",
                Some(2),
            ),
        ],
    }
}

pub(crate) fn empty_inventory() -> Inventory {
    Inventory {
        subject: Subject {
            name: "scratch".into(),
            digest: Some(Digest::sha256_of(b"scratch")),
            layers: vec![],
        },
        distro: None,
        packages: vec![],
        unsupported: vec![],
        files: vec![],
    }
}

/// Names and versions a cataloguer may well meet: spaces, quotes, slashes, `@`, `#`, `?`,
/// `%`, non-ASCII, control characters, an empty version.
pub(crate) fn odd_inventory() -> Inventory {
    let odd = [
        ("name with spaces", "1.0 beta"),
        ("quote\"d\\back", "v\"1\""),
        ("slash/in/name", "1/2"),
        ("at@sign", "1@2"),
        ("hash#and?query&amp", "1#2?3&4"),
        ("percent%41", "%zz"),
        ("ünïcødé-名前", "版本-1"),
        ("tab\tnew\nline", "\u{1}"),
        ("noversion", ""),
        ("..", "."),
    ];
    let packages = odd
        .iter()
        .enumerate()
        .map(|(i, (name, version))| {
            let mut p = package(
                Ecosystem::Npm,
                Some("@odd scope"),
                name,
                version,
                &["MIT OR Apache-2.0", "see \"LICENSE\" file", ""],
                &format!("/app/node_modules/{name}/package.json"),
                Some(i as u8),
            );
            p.found_by = format!("npm {name}");
            p
        })
        .collect();
    Inventory {
        subject: Subject {
            name: "/some dir/with \"odd\" name".into(),
            digest: None,
            layers: vec![],
        },
        distro: Some(Distro {
            id: "odd os".into(),
            version_id: None,
            codename: None,
            id_like: vec!["a".into(), "b c".into()],
            pretty_name: None,
        }),
        packages: sorted(packages),
        unsupported: vec![],
        // a directory scan: no layers; a file another document gave without SHA-1
        files: {
            let mut files = vec![
                file("/some dir/\"quoted\" \\ name", b"#!", None),
                file("/ünïcødé/名前", b"\x7fELF", None),
                file("/tab\tnew\nline", b"", None),
                FileDigest {
                    sha1: None,
                    ..file("/no-sha1", b"x", None)
                },
            ];
            files.sort();
            files
        },
    }
}

/// The same name and version found in two places (two layers, two files): two packages.
pub(crate) fn duplicate_inventory() -> Inventory {
    let a = package(
        Ecosystem::PyPI,
        None,
        "six",
        "1.16.0",
        &["MIT"],
        "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        Some(0),
    );
    let b = package(
        Ecosystem::PyPI,
        None,
        "six",
        "1.16.0",
        &["MIT"],
        "/opt/venv/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
        Some(1),
    );
    let c = Package {
        locations: vec![Location {
            path: a.locations[0].path.clone(),
            layer: Some(layer(1)),
        }],
        ..a.clone()
    };
    Inventory {
        subject: Subject {
            name: "docker.io/library/python:3.11".into(),
            digest: Some(Digest::sha256_of(b"python")),
            layers: vec![layer(0), layer(1)],
        },
        distro: None,
        packages: sorted(vec![a, b, c]),
        unsupported: vec![],
        files: vec![],
    }
}

pub(crate) fn big_inventory(n: usize) -> Inventory {
    let packages = (0..n)
        .map(|i| {
            package(
                Ecosystem::Npm,
                None,
                &format!("pkg-{i:05}"),
                &format!("1.{}.{}", i / 100, i % 100),
                &["MIT", "custom licence text"],
                &format!("/app/node_modules/pkg-{i:05}/package.json"),
                Some((i % 7) as u8),
            )
        })
        .collect();
    Inventory {
        subject: Subject {
            name: "registry.example/big:latest".into(),
            digest: Some(Digest::sha256_of(b"big")),
            layers: (0..7).map(layer).collect(),
        },
        distro: None,
        packages: sorted(packages),
        unsupported: vec![],
        files: vec![],
    }
}

/// Every inventory the document tests use, named.
pub(crate) fn inventories() -> Vec<(&'static str, Inventory)> {
    vec![
        ("image", image_inventory()),
        ("empty", empty_inventory()),
        ("odd", odd_inventory()),
        ("duplicate", duplicate_inventory()),
        ("big-300", big_inventory(300)),
    ]
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// What SPDX keeps of a distro.
fn spdx_distro(d: &Distro) -> Distro {
    Distro {
        id: d.id.clone(),
        version_id: d.version_id.clone(),
        pretty_name: d.pretty_name.clone(),
        ..Distro::default()
    }
}

#[test]
fn documents_read_back_to_the_same_inventory() {
    for (what, inv) in inventories() {
        for f in FORMATS {
            let bytes = format::write(f, &inv, &options()).unwrap();
            let parsed = format::parse(&bytes).unwrap_or_else(|e| {
                panic!("{what} {f:?}: {e}\n{}", String::from_utf8_lossy(&bytes))
            });
            assert_eq!(parsed.format, f, "{what}");
            assert!(
                parsed.skipped.is_empty(),
                "{what} {f:?}: {:?}",
                parsed.skipped
            );
            assert_eq!(parsed.inventory.packages, inv.packages, "{what} {f:?}");
            assert_eq!(parsed.inventory.files, inv.files, "{what} {f:?}");
            assert_eq!(
                parsed.inventory.subject.name, inv.subject.name,
                "{what} {f:?}"
            );
            assert_eq!(
                parsed.inventory.subject.digest, inv.subject.digest,
                "{what} {f:?}"
            );
            match f {
                Format::SpdxJson => {
                    assert_eq!(parsed.spec_version, "SPDX-2.3");
                    assert_eq!(
                        parsed.inventory.distro,
                        inv.distro.as_ref().map(spdx_distro)
                    );
                }
                Format::CycloneDxJson => {
                    assert_eq!(parsed.spec_version, "1.6");
                    assert_eq!(parsed.inventory.distro, inv.distro, "{what}");
                    assert_eq!(
                        parsed.inventory.subject.layers, inv.subject.layers,
                        "{what}"
                    );
                }
            }
        }
    }
}

#[test]
fn writing_is_reproducible_and_names_follow_the_content() {
    let inv = image_inventory();
    for f in FORMATS {
        let a = format::write(f, &inv, &options()).unwrap();
        let b = format::write(f, &inv, &options()).unwrap();
        assert_eq!(a, b, "{f:?}: two writes of one inventory differ");
    }
    let id = |f, inv: &Inventory| {
        let doc = json(&format::write(f, inv, &options()).unwrap());
        match f {
            Format::SpdxJson => doc["documentNamespace"].as_str().unwrap().to_owned(),
            Format::CycloneDxJson => doc["serialNumber"].as_str().unwrap().to_owned(),
        }
    };
    let mut other = image_inventory();
    other.packages[0].version.push_str("+1");
    let mut later = options();
    later.created += Duration::from_secs(3600);
    for f in FORMATS {
        assert_ne!(
            id(f, &inv),
            id(f, &other),
            "{f:?}: different content, same name"
        );
        let at_later = json(&format::write(f, &inv, &later).unwrap());
        let same = match f {
            Format::SpdxJson => at_later["documentNamespace"].as_str().unwrap().to_owned(),
            Format::CycloneDxJson => at_later["serialNumber"].as_str().unwrap().to_owned(),
        };
        assert_eq!(id(f, &inv), same, "{f:?}: the name depends on the time");
    }
    let spdx = json(&format::write(Format::SpdxJson, &inv, &later).unwrap());
    assert_eq!(spdx["creationInfo"]["created"], "2026-12-05T05:28:09Z");
    assert_eq!(
        spdx["creationInfo"]["creators"][0],
        format!("Tool: berth-{}", env!("CARGO_PKG_VERSION"))
    );
    let cdx = json(&format::write(Format::CycloneDxJson, &inv, &later).unwrap());
    assert_eq!(cdx["metadata"]["timestamp"], "2026-12-05T05:28:09Z");
    let serial = cdx["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && serial.len() == 45,
        "{serial}"
    );
    assert_eq!(&serial[23..24], "5", "UUIDv5: {serial}");
}

#[test]
fn spdx_describes_the_image_and_contains_the_os_and_packages() {
    let inv = image_inventory();
    let doc = json(&format::write(Format::SpdxJson, &inv, &options()).unwrap());
    let packages = doc["packages"].as_array().unwrap();
    assert_eq!(packages.len(), inv.packages.len() + 2);
    let root = &packages[0];
    assert_eq!(root["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(root["name"], "registry.example:5000/team/app:1.0");
    let digest = inv.subject.digest.as_ref().unwrap();
    assert_eq!(root["versionInfo"], digest.as_str());
    assert_eq!(
        root["externalRefs"][0]["referenceLocator"],
        format!(
            "pkg:oci/app@sha256%3A{}?repository_url=registry.example%3A5000%2Fteam%2Fapp&tag=1.0",
            digest.hex()
        )
    );
    let os = &packages[1];
    assert_eq!(os["primaryPackagePurpose"], "OPERATING_SYSTEM");
    assert_eq!(
        (os["name"].as_str(), os["versionInfo"].as_str()),
        (Some("debian"), Some("12"))
    );

    let ids: Vec<&str> = packages
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    for id in &ids {
        let rest = id.strip_prefix("SPDXRef-").unwrap();
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "{id}"
        );
    }
    let rels = doc["relationships"].as_array().unwrap();
    let has = |from: &str, ty: &str, to: &str| {
        rels.iter().any(|r| {
            r["spdxElementId"] == from
                && r["relationshipType"] == ty
                && r["relatedSpdxElement"] == to
        })
    };
    assert!(has("SPDXRef-DOCUMENT", "DESCRIBES", ids[0]));
    for id in &ids[1..] {
        assert!(has(ids[0], "CONTAINS", id), "{id} is not contained");
    }

    // licences: an SPDX list id or expression as it is; free text as a LicenseRef with its text
    let by_name = |n: &str| packages.iter().find(|p| p["name"] == n).unwrap();
    assert_eq!(
        by_name("passwd")["licenseDeclared"],
        "GPL-2.0-only AND BSD-3-Clause"
    );
    assert_eq!(by_name("passwd")["licenseConcluded"], "NOASSERTION");
    assert_eq!(
        by_name("requests")["licenseDeclared"],
        "(Apache-2.0 OR MIT) AND LicenseRef-Custom"
    );
    assert_eq!(by_name("cobra")["licenseDeclared"], "NOASSERTION");
    assert_eq!(
        by_name("urllib3")["licenseDeclared"],
        "LicenseRef-MIT-License AND MIT"
    );
    assert_eq!(
        by_name("tzdata")["licenseDeclared"],
        "LicenseRef-public-domain"
    );
    let extracted = doc["hasExtractedLicensingInfos"].as_array().unwrap();
    let texts: Vec<(&str, &str)> = extracted
        .iter()
        .map(|e| {
            (
                e["licenseId"].as_str().unwrap(),
                e["extractedText"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("LicenseRef-MIT-License", "MIT License"),
            ("LicenseRef-public-domain", "public-domain")
        ]
    );
    let libssl = by_name("libssl3");
    assert_eq!(libssl["downloadLocation"], "NOASSERTION");
    assert_eq!(
        libssl["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl"
    );
    assert_eq!(
        libssl["externalRefs"][0]["referenceCategory"],
        "PACKAGE-MANAGER"
    );
    let source_info = libssl["sourceInfo"].as_str().unwrap();
    assert!(
        source_info.contains("\"dpkg\" cataloguer in \"/var/lib/dpkg/status\" (layer sha256:")
            && source_info.contains(layer(0).as_str()),
        "{source_info}"
    );
}

#[test]
fn cyclonedx_has_the_image_the_os_and_the_packages_with_berth_properties() {
    let inv = image_inventory();
    let doc = json(&format::write(Format::CycloneDxJson, &inv, &options()).unwrap());
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(doc["version"], 1);
    let meta = &doc["metadata"];
    assert_eq!(meta["tools"]["components"][0]["name"], "berth");
    assert_eq!(meta["component"]["type"], "container");
    assert_eq!(meta["component"]["name"], inv.subject.name);
    assert!(
        meta["component"]["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:oci/app@sha256%3A")
    );
    let components = doc["components"].as_array().unwrap();
    assert_eq!(components.len(), inv.packages.len() + 1 + inv.files.len());
    assert_eq!(components[0]["type"], "operating-system");
    let by_name = |n: &str| components.iter().find(|c| c["name"] == n).unwrap();
    let lic = |n: &str| by_name(n)["licenses"].clone();
    assert_eq!(
        lic("passwd"),
        serde_json::json!([{"license": {"id": "GPL-2.0-only"}}, {"license": {"id": "BSD-3-Clause"}}])
    );
    assert_eq!(
        lic("requests"),
        serde_json::json!([{"expression": "(Apache-2.0 OR MIT) AND LicenseRef-Custom"}])
    );
    assert_eq!(
        lic("urllib3"),
        serde_json::json!([{"license": {"name": "MIT License"}}, {"license": {"id": "MIT"}}])
    );
    assert!(by_name("cobra").get("licenses").is_none());
    let props: Vec<(String, String)> = by_name("libssl3")["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |n: &str, v: &str| (n.to_owned(), v.to_owned());
    assert_eq!(
        props,
        [
            expect("berth:package:foundBy", "dpkg"),
            expect("berth:location:0:path", "/var/lib/dpkg/status"),
            expect("berth:location:0:layerID", layer(0).as_str()),
            expect("berth:package:sourceName", "openssl"),
            expect("berth:package:sourceVersion", "3.0.15-1~deb12u1"),
        ]
    );
    let refs: std::collections::HashSet<&str> = components
        .iter()
        .chain([&meta["component"]])
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), components.len() + 1, "bom-refs are not unique");
}

#[test]
fn duplicates_in_two_places_stay_two_packages_with_distinct_ids() {
    let inv = duplicate_inventory();
    let spdx = json(&format::write(Format::SpdxJson, &inv, &options()).unwrap());
    let ids: std::collections::HashSet<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    // the very same package twice is two entries still
    let mut twice = inv.clone();
    twice.packages.push(twice.packages[0].clone());
    twice.packages = sorted(twice.packages);
    for f in FORMATS {
        let bytes = format::write(f, &twice, &options()).unwrap();
        assert_eq!(
            format::parse(&bytes).unwrap().inventory.packages,
            twice.packages,
            "{f:?}"
        );
    }
}

#[test]
fn ten_thousand_packages_write_and_read_within_seconds() {
    let inv = big_inventory(10_000);
    for f in FORMATS {
        let start = Instant::now();
        let bytes = format::write(f, &inv, &options()).unwrap();
        let wrote = start.elapsed();
        let start = Instant::now();
        let parsed = format::parse(&bytes).unwrap();
        let read = start.elapsed();
        eprintln!(
            "{f:?}: 10 000 packages, {} bytes, written in {wrote:?}, read in {read:?}",
            bytes.len()
        );
        assert_eq!(parsed.inventory.packages.len(), 10_000);
        assert_eq!(parsed.inventory.packages, inv.packages, "{f:?}");
        // a debug build on a shared two-core machine: generous, yet an accidental quadratic
        // step (10^8 comparisons) would break it
        assert!(
            wrote + read < Duration::from_secs(20),
            "{f:?}: {wrote:?} + {read:?}"
        );
    }
}

#[test]
fn media_types_are_the_registered_ones() {
    assert_eq!(SPDX_JSON_MEDIA_TYPE, "application/spdx+json");
    assert_eq!(CYCLONEDX_JSON_MEDIA_TYPE, "application/vnd.cyclonedx+json");
    assert_eq!(Format::SpdxJson.media_type(), SPDX_JSON_MEDIA_TYPE);
    assert_eq!(
        Format::CycloneDxJson.media_type(),
        CYCLONEDX_JSON_MEDIA_TYPE
    );
}
