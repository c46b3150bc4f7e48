//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>), in the shape syft gives an
//! image: a root package for the image (`primaryPackagePurpose: CONTAINER`, its OCI purl),
//! one for the operating system (`OPERATING_SYSTEM`, the JSON schema's spelling of the
//! spec's `OPERATING-SYSTEM`), one per package found, `DESCRIBES` and `CONTAINS`
//! relationships, and licence texts that are not SPDX expressions as `LicenseRef-`s with
//! `hasExtractedLicensingInfos`.
//!
//! The image's executable files are `files` (8, "File information"): the absolute path as
//! `fileName`, a `SHA1` checksum (8.4 requires one) and a `SHA256` one, `NOASSERTION` for
//! the licence and copyright, the layer in `comment` (`layer: sha256:…`), and a `CONTAINS`
//! relationship from the root package. `fileTypes` is left out (optional): the inventory does
//! not say which file is a binary and which a script. The reader takes every file with a
//! `SHA256` checksum (a relative `fileName`, as syft writes, made absolute); others are
//! ignored.

use std::collections::{BTreeMap, HashSet};

use berth_oci::Digest;
use serde_json::{Map, Value, json};

use super::{
    ParseError, Parsed, Reader, Skipped, TOOL_NAME, TOOL_VERSION, WriteError, WriteOptions,
    content_digest, distro, licence, oci_purl, package_from_purl, package_id, sort_packages,
    subject_named, timestamp,
};
use crate::format::Format;
use crate::package::{FileDigest, Inventory, Location, Package, SourcePackage, Subject};

const NOASSERTION: &str = "NOASSERTION";
const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";

/// Letters, digits, `.` and `-`: what an SPDX identifier may hold after `SPDXRef-`.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Percent-encode all but unreserved characters, for the namespace URI's path.
fn uri_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Licence strings to an SPDX expression, each text that is not one becoming a
/// `LicenseRef-` recorded in `extracted` (id → text).
struct Licences {
    extracted: BTreeMap<String, String>,
    by_text: BTreeMap<String, String>,
    reserved: HashSet<String>,
}

impl Licences {
    fn new(inventory: &Inventory) -> Licences {
        // A `LicenseRef-…` a package names itself is never handed out for another text.
        let reserved = inventory
            .packages
            .iter()
            .flat_map(|p| &p.licenses)
            .filter(|l| licence::is_expression(l))
            .flat_map(|l| {
                l.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                    .filter(|t| t.starts_with("LicenseRef-"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        Licences {
            extracted: BTreeMap::new(),
            by_text: BTreeMap::new(),
            reserved,
        }
    }

    fn expression(&mut self, licenses: &[String]) -> String {
        if licenses.is_empty() {
            return NOASSERTION.to_owned();
        }
        let terms: Vec<String> = licenses
            .iter()
            .map(|l| {
                if licence::is_expression(l) {
                    l.clone()
                } else {
                    self.reference(l)
                }
            })
            .collect();
        licence::join(&terms)
    }

    fn reference(&mut self, text: &str) -> String {
        if let Some(id) = self.by_text.get(text) {
            return id.clone();
        }
        let base = licence::licence_ref(text);
        let mut id = base.clone();
        let mut n = 1;
        while self.reserved.contains(&id) || self.extracted.contains_key(&id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        self.extracted.insert(id.clone(), text.to_owned());
        self.by_text.insert(text.to_owned(), id.clone());
        id
    }
}

/// `sourceInfo`: the cataloguer, the files and their layers, the source package, in a form
/// [`read_source_info`] reads back (strings as JSON strings).
fn source_info(p: &Package) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut s = format!("{SOURCE_INFO_PREFIX}{} cataloguer", q(&p.found_by));
    for (i, loc) in p.locations.iter().enumerate() {
        s.push_str(if i == 0 { " in " } else { ", " });
        s.push_str(&q(&loc.path));
        if let Some(layer) = &loc.layer {
            s.push_str(&format!(" (layer {layer})"));
        }
    }
    if let Some(src) = &p.source {
        s.push_str(&format!(
            "; source package {} version {}",
            q(&src.name),
            q(&src.version)
        ));
    }
    s
}

const SOURCE_INFO_PREFIX: &str = "found by berth's ";

/// What [`source_info`] wrote: (found_by, locations, source).
fn read_source_info(s: &str) -> Option<(String, Vec<Location>, Option<SourcePackage>)> {
    fn string(s: &str) -> Option<(String, &str)> {
        let mut it = serde_json::Deserializer::from_str(s).into_iter::<String>();
        let v = it.next()?.ok()?;
        Some((v, &s[it.byte_offset()..]))
    }
    let rest = s.strip_prefix(SOURCE_INFO_PREFIX)?;
    let (found_by, rest) = string(rest)?;
    let mut rest = rest.strip_prefix(" cataloguer")?;
    let mut locations = Vec::new();
    if let Some(mut r) = rest.strip_prefix(" in ") {
        loop {
            let (path, after) = string(r)?;
            r = after;
            let mut layer = None;
            if let Some(after) = r.strip_prefix(" (layer ") {
                let end = after.find(')')?;
                layer = Some(Digest::parse(&after[..end]).ok()?);
                r = &after[end + 1..];
            }
            locations.push(Location { path, layer });
            match r.strip_prefix(", ") {
                Some(after) => r = after,
                None => break,
            }
        }
        rest = r;
    }
    let mut source = None;
    if let Some(r) = rest.strip_prefix("; source package ") {
        let (name, r) = string(r)?;
        let (version, r) = string(r.strip_prefix(" version ")?)?;
        source = Some(SourcePackage { name, version });
        rest = r;
    }
    rest.is_empty().then_some((found_by, locations, source))
}

pub(super) fn write(inventory: &Inventory, options: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let created = timestamp(options.created)?;
    let subject = &inventory.subject;
    let digest = content_digest(inventory);
    let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, digest.as_str().as_bytes());
    let kind = if subject.digest.is_some() {
        "image"
    } else {
        "dir"
    };
    let namespace = format!(
        "https://github.com/berth-dev/berth/spdx/{kind}/{}-{uuid}",
        uri_part(&subject.name)
    );

    let mut packages = Vec::with_capacity(inventory.packages.len() + 2);
    let mut relationships = Vec::with_capacity(inventory.packages.len() + 2);

    // The image (or directory) the document describes.
    let root_id = match &subject.digest {
        Some(_) => format!("SPDXRef-DocumentRoot-Image-{}", id_part(&subject.name)),
        None => format!("SPDXRef-DocumentRoot-Directory-{}", id_part(&subject.name)),
    };
    let mut root = json!({
        "SPDXID": root_id,
        "name": subject.name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "supplier": NOASSERTION,
        "primaryPackagePurpose": if subject.digest.is_some() { "CONTAINER" } else { "FILE" },
    });
    if let Some(d) = &subject.digest {
        root["versionInfo"] = json!(d.as_str());
        if d.algorithm().as_str() == "sha256" || d.algorithm().as_str() == "sha512" {
            root["checksums"] = json!([{
                "algorithm": d.algorithm().as_str().to_ascii_uppercase(),
                "checksumValue": d.hex(),
            }]);
        }
    }
    if let Some(purl) = oci_purl(subject) {
        root["externalRefs"] = json!([purl_ref(&purl.to_string())]);
    }
    packages.push(root);
    relationships.push(json!({
        "spdxElementId": DOCUMENT_ID,
        "relatedSpdxElement": root_id,
        "relationshipType": "DESCRIBES",
    }));

    if let Some(d) = &inventory.distro {
        let id = format!(
            "SPDXRef-OperatingSystem-{}-{}",
            id_part(&d.id),
            id_part(d.version_id.as_deref().unwrap_or(""))
        );
        let mut os = json!({
            "SPDXID": id,
            "name": d.id,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "supplier": NOASSERTION,
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        });
        if let Some(v) = &d.version_id {
            os["versionInfo"] = json!(v);
        }
        if let Some(p) = &d.pretty_name {
            os["description"] = json!(p);
        }
        packages.push(os);
        relationships.push(contains(&root_id, &id));
    }

    let mut licences = Licences::new(inventory);
    let mut ids = HashSet::new();
    for p in &inventory.packages {
        let base = format!(
            "SPDXRef-Package-{}-{}-{}",
            id_part(p.purl.purl_type()),
            id_part(&p.name),
            package_id(p)
        );
        let mut id = base.clone();
        let mut n = 1;
        while !ids.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": licences.expression(&p.licenses),
            "copyrightText": NOASSERTION,
            "supplier": NOASSERTION,
            "externalRefs": [purl_ref(&p.purl.to_string())],
            "sourceInfo": source_info(p),
        });
        // Left out when empty, unless the reader would then take the purl's version.
        if !p.version.is_empty() || !p.purl.version().is_empty() {
            pkg["versionInfo"] = json!(p.version);
        }
        packages.push(pkg);
        relationships.push(contains(&root_id, &id));
    }

    let mut files = Vec::with_capacity(inventory.files.len());
    for f in &inventory.files {
        let base = format!(
            "SPDXRef-File-{}-{}",
            id_part(f.path.trim_start_matches('/')),
            &Digest::sha256_of(f.path.as_bytes()).hex()[..16]
        );
        let mut id = base.clone();
        let mut n = 1;
        while !ids.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        let mut checksums = Vec::with_capacity(2);
        if let Some(sha1) = &f.sha1 {
            checksums.push(json!({ "algorithm": "SHA1", "checksumValue": sha1 }));
        }
        checksums.push(json!({ "algorithm": "SHA256", "checksumValue": f.sha256.hex() }));
        let mut file = json!({
            "SPDXID": id,
            "fileName": f.path,
            "checksums": checksums,
            "licenseConcluded": NOASSERTION,
            "copyrightText": NOASSERTION,
        });
        if let Some(layer) = &f.layer {
            file["comment"] = json!(format!("{LAYER_COMMENT}{layer}"));
        }
        files.push(file);
        relationships.push(contains(&root_id, &id));
    }

    let mut doc = Map::new();
    doc.insert("spdxVersion".into(), json!("SPDX-2.3"));
    doc.insert("dataLicense".into(), json!("CC0-1.0"));
    doc.insert("SPDXID".into(), json!(DOCUMENT_ID));
    doc.insert("name".into(), json!(subject.name));
    doc.insert("documentNamespace".into(), json!(namespace));
    doc.insert(
        "creationInfo".into(),
        json!({
            "created": created,
            "creators": [format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        }),
    );
    doc.insert("packages".into(), Value::Array(packages));
    if !files.is_empty() {
        doc.insert("files".into(), Value::Array(files));
    }
    if !licences.extracted.is_empty() {
        let infos: Vec<Value> = licences
            .extracted
            .iter()
            .map(|(id, text)| json!({ "licenseId": id, "extractedText": text, "name": text }))
            .collect();
        doc.insert("hasExtractedLicensingInfos".into(), Value::Array(infos));
    }
    doc.insert("relationships".into(), Value::Array(relationships));
    serde_json::to_vec_pretty(&Value::Object(doc)).map_err(|source| WriteError::Serialise {
        format: "SPDX",
        source,
    })
}

/// How a file's `comment` names its layer.
const LAYER_COMMENT: &str = "layer: ";

/// `files[]`: each with a `SHA256` checksum.
fn read_files(r: &Reader, doc: &Value) -> Result<Vec<FileDigest>, ParseError> {
    let mut out = Vec::new();
    for (i, f) in r.array(doc, "", "files")?.iter().enumerate() {
        let field = format!("files[{i}]");
        r.object(f, &field)?;
        let name = r.str(f, &field, "fileName")?;
        let (mut sha256, mut sha1) = (None, None);
        for (j, c) in r.array(f, &field, "checksums")?.iter().enumerate() {
            let field = format!("{field}.checksums[{j}]");
            r.object(c, &field)?;
            let value = r.str(c, &field, "checksumValue")?;
            match r.str(c, &field, "algorithm")? {
                "SHA256" if sha256.is_none() => {
                    sha256 = Some(super::sha256_hex(r, &field, value)?);
                }
                "SHA1" if sha1.is_none() => sha1 = Some(super::sha1_hex(r, &field, value)?),
                _ => {}
            }
        }
        let Some(sha256) = sha256 else {
            continue;
        };
        let layer = r
            .opt_str(f, &field, "comment")?
            .and_then(|c| c.strip_prefix(LAYER_COMMENT))
            .and_then(|l| Digest::parse(l).ok());
        out.push(FileDigest {
            path: super::absolute(name),
            sha256,
            layer,
            sha1,
        });
    }
    out.sort();
    Ok(out)
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn contains(from: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relatedSpdxElement": to,
        "relationshipType": "CONTAINS",
    })
}

pub(super) fn read(doc: &Value) -> Result<Parsed, ParseError> {
    let r = Reader { format: "SPDX" };
    let version = r.str(doc, "", "spdxVersion")?;
    if !matches!(version, "SPDX-2.2" | "SPDX-2.3") {
        return Err(ParseError::Version {
            format: "SPDX",
            field: "spdxVersion",
            version: version.to_owned(),
            supported: "SPDX-2.2 and SPDX-2.3",
        });
    }
    let doc_name = r.str(doc, "", "name")?;

    let mut extracted = BTreeMap::new();
    for (i, info) in r
        .array(doc, "", "hasExtractedLicensingInfos")?
        .iter()
        .enumerate()
    {
        let field = format!("hasExtractedLicensingInfos[{i}]");
        r.object(info, &field)?;
        let id = r.str(info, &field, "licenseId")?;
        let text = r.opt_str(info, &field, "extractedText")?.unwrap_or(id);
        extracted.insert(id.to_owned(), text.to_owned());
    }

    let mut subject: Option<Subject> = None;
    let mut os = None;
    let mut packages = Vec::new();
    let mut skipped = Vec::new();
    for (i, p) in r.array(doc, "", "packages")?.iter().enumerate() {
        let field = format!("packages[{i}]");
        r.object(p, &field)?;
        r.str(p, &field, "SPDXID")?;
        let name = r.str(p, &field, "name")?;
        let version_info = r.opt_str(p, &field, "versionInfo")?;
        let purpose = r.opt_str(p, &field, "primaryPackagePurpose")?;
        let mut purl = None;
        for (j, e) in r.array(p, &field, "externalRefs")?.iter().enumerate() {
            let field = format!("{field}.externalRefs[{j}]");
            r.object(e, &field)?;
            if r.str(e, &field, "referenceType")? == "purl" {
                purl = Some(r.str(e, &field, "referenceLocator")?);
            }
        }
        match purpose {
            Some("CONTAINER") if subject.is_none() => {
                subject = Some(Subject {
                    name: name.to_owned(),
                    digest: version_info.and_then(|v| Digest::parse(v).ok()),
                    layers: Vec::new(),
                });
                continue;
            }
            Some("OPERATING_SYSTEM" | "OPERATING-SYSTEM") if os.is_none() => {
                let mut d = distro(name, version_info);
                d.pretty_name = r.opt_str(p, &field, "description")?.map(str::to_owned);
                os = Some(d);
                continue;
            }
            _ => {}
        }
        let skip = |reason: String| Skipped {
            field: field.clone(),
            name: name.to_owned(),
            version: version_info.unwrap_or("").to_owned(),
            reason,
        };
        let Some(purl) = purl else {
            if purpose != Some("FILE") {
                skipped.push(skip("no package URL in `externalRefs`".into()));
            }
            continue;
        };
        let (purl, ecosystem) = match package_from_purl(purl) {
            Ok(ok) => ok,
            Err(reason) => {
                skipped.push(skip(reason));
                continue;
            }
        };
        let mut licenses = Vec::new();
        for key in ["licenseDeclared", "licenseConcluded"] {
            match r.opt_str(p, &field, key)? {
                None | Some("NOASSERTION" | "NONE" | "") => {}
                Some(expr) => {
                    licenses = licence::split(expr)
                        .into_iter()
                        .map(|t| extracted.get(&t).cloned().unwrap_or(t))
                        .collect();
                    break;
                }
            }
        }
        let (found_by, locations, source) = r
            .opt_str(p, &field, "sourceInfo")?
            .and_then(read_source_info)
            .unwrap_or_else(|| ("spdx".to_owned(), Vec::new(), None));
        packages.push(Package {
            name: name.to_owned(),
            version: version_info.unwrap_or(purl.version()).to_owned(),
            ecosystem,
            purl,
            licenses,
            source,
            locations,
            found_by,
        });
    }
    sort_packages(&mut packages);
    let files = read_files(&r, doc)?;
    Ok(Parsed {
        format: Format::SpdxJson,
        spec_version: version.to_owned(),
        inventory: Inventory {
            subject: subject.unwrap_or_else(|| subject_named(doc_name)),
            distro: os,
            packages,
            unsupported: Vec::new(),
            files,
        },
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_info_reads_back() {
        let layer = Digest::sha256_of(b"layer");
        let mut p = Package {
            name: "x".into(),
            version: "1".into(),
            ecosystem: crate::package::Ecosystem::Debian,
            purl: crate::package::Purl::new("deb", None, "x", "1"),
            licenses: vec![],
            source: Some(SourcePackage {
                name: "src \"q\"".into(),
                version: "1, 2".into(),
            }),
            locations: vec![
                Location {
                    path: "/a, \"b\" (layer x)".into(),
                    layer: Some(layer),
                },
                Location {
                    path: "/c".into(),
                    layer: None,
                },
            ],
            found_by: "dpkg\" cataloguer".into(),
        };
        let s = source_info(&p);
        assert_eq!(
            read_source_info(&s),
            Some((p.found_by.clone(), p.locations.clone(), p.source.clone()))
        );
        p.locations.clear();
        p.source = None;
        let s = source_info(&p);
        assert_eq!(
            read_source_info(&s),
            Some((p.found_by.clone(), vec![], None))
        );
        assert_eq!(
            read_source_info("acquired package info from DPKG DB: /x"),
            None
        );
    }
}
