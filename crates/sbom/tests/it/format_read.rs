//! Reading documents: malformed ones are refused with the field named; other tools' shapes
//! (syft's, trivy's, hand-written here: their real output is read in format_syft.rs) keep the
//! packages berth can place and list the rest; package URLs as others write them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use berth_oci::Digest;
use berth_sbom::format::{self, ParseError};
use berth_sbom::package::{Ecosystem, Location, Purl, SourcePackage};

use crate::format::inventories;

fn refusal(doc: &str) -> String {
    match format::parse(doc.as_bytes()) {
        Ok(p) => panic!("accepted {doc}: {p:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_documents_are_refused_naming_the_field() {
    assert!(matches!(format::parse(b"{"), Err(ParseError::Json { .. })));
    assert!(matches!(
        format::parse(b"[]"),
        Err(ParseError::UnknownFormat)
    ));
    assert!(matches!(
        format::parse(b"{\"name\":\"x\"}"),
        Err(ParseError::UnknownFormat)
    ));
    for (doc, field) in [
        (r#"{"spdxVersion":"SPDX-3.0","name":"x"}"#, "`spdxVersion`"),
        (r#"{"spdxVersion":2.3}"#, "`spdxVersion` is not a string"),
        (r#"{"spdxVersion":"SPDX-2.3"}"#, "`name` is missing"),
        (
            r#"{"spdxVersion":"SPDX-2.3","name":"x","packages":{}}"#,
            "`packages` is not an array",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","name":"x","packages":[1]}"#,
            "`packages[0]` is not an object",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","name":"x","packages":[{"SPDXID":"SPDXRef-a"}]}"#,
            "`packages[0].name` is missing",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","name":"x","packages":[{"SPDXID":"SPDXRef-a","name":"a","externalRefs":[{"referenceType":"purl"}]}]}"#,
            "`packages[0].externalRefs[0].referenceLocator` is missing",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","name":"x","hasExtractedLicensingInfos":[{"extractedText":"t"}]}"#,
            "`hasExtractedLicensingInfos[0].licenseId` is missing",
        ),
        (
            r#"{"bomFormat":"SPDX","specVersion":"1.6"}"#,
            "`bomFormat` is \"SPDX\"",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.3"}"#,
            "version \"1.3\" in `specVersion`",
        ),
        (r#"{"bomFormat":"CycloneDX"}"#, "`specVersion` is missing"),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library"}]}"#,
            "`components[0].name` is missing",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"a","components":[{"name":"b"}]}]}"#,
            "`components[0].components[0].type` is missing",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"a","purl":"pkg:npm/a@1","licenses":[{"license":{}}]}]}"#,
            "`components[0].licenses[0].license` has neither `id` nor `name`",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","metadata":{"component":{"type":"container"}}}"#,
            "`metadata.component.name` is missing",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"a","properties":[{"value":"v"}]}]}"#,
            "`components[0].properties[0].name` is missing",
        ),
    ] {
        let msg = refusal(doc);
        assert!(
            msg.contains(field),
            "{doc}\n→ {msg}\nexpected it to name {field}"
        );
    }
}

#[test]
fn foreign_packages_without_an_ecosystem_are_listed_as_skipped() {
    // the shapes syft and trivy give (hand-written here: their own output is read in
    // format_syft.rs): a root file package, a binary without a purl, a generic purl
    let spdx = r#"{
      "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "alpine:3.19",
      "packages": [
        {"SPDXID": "SPDXRef-root", "name": "alpine:3.19", "primaryPackagePurpose": "CONTAINER",
         "versionInfo": "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
        {"SPDXID": "SPDXRef-os", "name": "alpine", "versionInfo": "3.19.1", "primaryPackagePurpose": "OPERATING-SYSTEM"},
        {"SPDXID": "SPDXRef-musl", "name": "musl", "versionInfo": "1.2.4-r2",
         "licenseConcluded": "MIT", "licenseDeclared": "NOASSERTION",
         "externalRefs": [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"}]},
        {"SPDXID": "SPDXRef-bin", "name": "busybox-binary", "versionInfo": "1.36"},
        {"SPDXID": "SPDXRef-gen", "name": "thing", "versionInfo": "1",
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:generic/thing@1"}]},
        {"SPDXID": "SPDXRef-bad", "name": "bad", "versionInfo": "1",
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "npm/bad@1"}]}
      ]}"#;
    let parsed = format::parse(spdx.as_bytes()).unwrap();
    let inv = &parsed.inventory;
    assert_eq!(inv.subject.name, "alpine:3.19");
    assert!(inv.subject.digest.is_some());
    assert_eq!(inv.distro.as_ref().map(|d| d.id.as_str()), Some("alpine"));
    assert_eq!(inv.packages.len(), 1);
    let musl = &inv.packages[0];
    assert_eq!(
        (musl.ecosystem, musl.name.as_str(), musl.version.as_str()),
        (Ecosystem::Alpine, "musl", "1.2.4-r2")
    );
    assert_eq!(
        musl.licenses,
        ["MIT"],
        "licenseConcluded when nothing is declared"
    );
    assert_eq!(
        musl.purl.qualifiers().get("distro").map(String::as_str),
        Some("alpine-3.19.1")
    );
    assert_eq!(musl.found_by, "spdx");
    let skipped: Vec<(&str, &str)> = parsed
        .skipped
        .iter()
        .map(|s| (s.field.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("packages[3]", "busybox-binary"),
            ("packages[4]", "thing"),
            ("packages[5]", "bad")
        ]
    );
    assert!(
        parsed.skipped[1].reason.contains("\"generic\""),
        "{}",
        parsed.skipped[1].reason
    );
    assert!(
        parsed.skipped[2].reason.contains("pkg:"),
        "{}",
        parsed.skipped[2].reason
    );

    let cdx = r#"{"bomFormat":"CycloneDX","specVersion":"1.5",
      "metadata":{"component":{"type":"container","name":"alpine:3.19","bom-ref":"r"}},
      "components":[
        {"type":"operating-system","name":"alpine","version":"3.19.1","description":"Alpine Linux v3.19"},
        {"type":"application","name":"app","components":[
           {"type":"library","name":"left-pad","version":"1.3.0","purl":"pkg:npm/left-pad@1.3.0",
            "licenses":[{"expression":"MIT OR WTFPL"}],
            "properties":[{"name":"aquasecurity:trivy:FilePath","value":"app/node_modules/left-pad/package.json"},
                          {"name":"aquasecurity:trivy:LayerDiffID","value":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},
                          {"name":"aquasecurity:trivy:PkgType","value":"node-pkg"}]}]},
        {"type":"library","name":"libssl3","version":"3.0.15-1~deb12u1","purl":"pkg:deb/debian/libssl3@3.0.15-1~deb12u1?distro=debian-12",
         "properties":[{"name":"aquasecurity:trivy:PkgType","value":"debian"},{"name":"aquasecurity:trivy:SrcName","value":"openssl"},
                       {"name":"aquasecurity:trivy:SrcVersion","value":"3.0.15-1~deb12u1"}]}
      ]}"#;
    let parsed = format::parse(cdx.as_bytes()).unwrap();
    let inv = &parsed.inventory;
    assert_eq!(parsed.spec_version, "1.5");
    assert_eq!(
        inv.distro.as_ref().and_then(|d| d.pretty_name.as_deref()),
        Some("Alpine Linux v3.19")
    );
    // trivy's properties: its package type, file path (relative) and layer, source package
    assert_eq!(inv.packages.len(), 2);
    let (libssl, left_pad) = (&inv.packages[0], &inv.packages[1]);
    assert_eq!(left_pad.name, "left-pad");
    assert_eq!(left_pad.licenses, ["MIT OR WTFPL"]);
    assert_eq!(left_pad.found_by, "trivy:node-pkg");
    assert_eq!(
        left_pad.locations,
        [Location {
            path: "/app/node_modules/left-pad/package.json".into(),
            layer: Some(Digest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap()),
        }]
    );
    assert_eq!(
        (libssl.name.as_str(), libssl.found_by.as_str()),
        ("libssl3", "trivy:debian")
    );
    assert!(libssl.locations.is_empty());
    assert_eq!(
        libssl.source,
        Some(SourcePackage {
            name: "openssl".into(),
            version: "3.0.15-1~deb12u1".into()
        })
    );
    assert_eq!(parsed.skipped.len(), 1);
    assert_eq!(parsed.skipped[0].field, "components[1]");
}

#[test]
fn package_urls_parse_back_to_what_was_written() {
    for (what, inv) in inventories() {
        for p in &inv.packages {
            let text = p.purl.to_string();
            assert_eq!(Purl::parse(&text).as_ref(), Ok(&p.purl), "{what}: {text}");
        }
    }
    // as others write them: unencoded ':' and '+', a scope's '@' unencoded, a subpath
    let p =
        Purl::parse("pkg:deb/debian/passwd@1:4.13+dfsg1-1?arch=amd64&distro=debian-12").unwrap();
    assert_eq!(
        (p.namespace(), p.name(), p.version()),
        (Some("debian"), "passwd", "1:4.13+dfsg1-1")
    );
    let p = Purl::parse("pkg:npm/@angular/core@16.0.0#dist/x").unwrap();
    assert_eq!(
        (p.namespace(), p.name(), p.version()),
        (Some("@angular"), "core", "16.0.0")
    );
    let p = Purl::parse("PKG:npm/@angular/core").unwrap();
    assert_eq!(
        (p.namespace(), p.name(), p.version()),
        (Some("@angular"), "core", "")
    );
    for bad in [
        "",
        "pkg:",
        "npm/x@1",
        "pkg:npm",
        "pkg:npm/",
        "pkg:1npm/x",
        "pkg:npm/x%zz",
        "pkg:npm/x?=v",
        "pkg:npm/x?k",
        "pkg:npm/x%+1",
        "pkg:npm/x?1k=v",
        "pkg:npm/x?a%26b=v",
    ] {
        assert!(Purl::parse(bad).is_err(), "accepted {bad:?}");
    }
    assert_eq!(Ecosystem::from_purl_type("PyPI"), Some(Ecosystem::PyPI));
    assert_eq!(Ecosystem::from_purl_type("oci"), None);
}
