//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): `metadata.component` is the
//! image (`container`), `components` the operating system (`operating-system`) and the
//! packages (`library`), with berth's facts in `berth:` properties named as syft names its
//! own (`berth:location:0:path`, `berth:location:0:layerID`, `berth:package:foundBy`).
//! Licences: `license.id` for an SPDX licence list identifier, one `expression` when every
//! licence is an SPDX expression and one is more than an identifier, `license.name`
//! otherwise (the schema allows one expression or a list of licences, never both).
//! The reader takes syft's `syft:` properties (cataloguer, locations with layers, distro)
//! and trivy's `aquasecurity:trivy:` ones (`PkgType`, `FilePath`, `LayerDiffID`,
//! `SrcName`/`SrcVersion`) where berth's are missing.
//!
//! The image's executable files are components of type `file`, as syft writes them: the
//! absolute path as `name`, `SHA-1` and `SHA-256` `hashes`, the layer in a
//! `berth:file:layerID` property. The reader takes every `file` component with a `SHA-256`
//! hash into [`Inventory::files`] and ignores the others: a file is never a package, nor
//! listed as skipped.

use std::collections::{BTreeMap, HashSet};

use berth_oci::Digest;
use serde_json::{Value, json};

use super::{
    Format, ParseError, Parsed, Reader, Skipped, TOOL_NAME, TOOL_VERSION, WriteError, WriteOptions,
    content_digest, distro, licence, oci_purl, package_from_purl, package_id, sort_packages,
    subject_named, timestamp,
};
use crate::package::{Distro, FileDigest, Inventory, Location, Package, SourcePackage, Subject};

/// The versions berth reads.
const READS: [&str; 3] = ["1.4", "1.5", "1.6"];

fn property(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

fn licences(list: &[String]) -> Option<Value> {
    if list.is_empty() {
        return None;
    }
    let all_expressions = list.iter().all(|l| licence::is_expression(l));
    let all_ids = list.iter().all(|l| licence::is_licence_id(l));
    if all_expressions && !all_ids {
        return Some(json!([{ "expression": licence::join(list) }]));
    }
    Some(Value::Array(
        list.iter()
            .map(|l| {
                if licence::is_licence_id(l) {
                    json!({ "license": { "id": l } })
                } else {
                    json!({ "license": { "name": l } })
                }
            })
            .collect(),
    ))
}

fn distro_component(d: &Distro) -> (String, Value) {
    let version = d.version_id.as_deref().unwrap_or("");
    let bom_ref = format!("os:{}@{version}", d.id);
    let mut props = vec![property("berth:distro:id", &d.id)];
    if let Some(v) = &d.version_id {
        props.push(property("berth:distro:versionID", v));
    }
    if let Some(v) = &d.codename {
        props.push(property("berth:distro:versionCodename", v));
    }
    if let Some(v) = &d.pretty_name {
        props.push(property("berth:distro:prettyName", v));
    }
    for (i, like) in d.id_like.iter().enumerate() {
        props.push(property(&format!("berth:distro:idLike:{i}"), like));
    }
    let mut c = json!({
        "bom-ref": bom_ref,
        "type": "operating-system",
        "name": d.id,
        "properties": props,
    });
    if !version.is_empty() {
        c["version"] = json!(version);
    }
    if let Some(p) = &d.pretty_name {
        c["description"] = json!(p);
    }
    (bom_ref, c)
}

fn package_component(p: &Package, bom_ref: &str) -> Value {
    let mut props = vec![property("berth:package:foundBy", &p.found_by)];
    for (i, loc) in p.locations.iter().enumerate() {
        props.push(property(&format!("berth:location:{i}:path"), &loc.path));
        if let Some(layer) = &loc.layer {
            props.push(property(
                &format!("berth:location:{i}:layerID"),
                layer.as_str(),
            ));
        }
    }
    if let Some(src) = &p.source {
        props.push(property("berth:package:sourceName", &src.name));
        props.push(property("berth:package:sourceVersion", &src.version));
    }
    let mut c = json!({
        "bom-ref": bom_ref,
        "type": "library",
        "name": p.name,
        "purl": p.purl.to_string(),
        "properties": props,
    });
    if !p.version.is_empty() || !p.purl.version().is_empty() {
        c["version"] = json!(p.version);
    }
    if let Some(l) = licences(&p.licenses) {
        c["licenses"] = l;
    }
    c
}

/// The property naming the layer a file component's version comes from.
const FILE_LAYER: &str = "berth:file:layerID";

fn file_component(f: &FileDigest, bom_ref: &str) -> Value {
    let mut hashes = Vec::with_capacity(2);
    if let Some(sha1) = &f.sha1 {
        hashes.push(json!({ "alg": "SHA-1", "content": sha1 }));
    }
    hashes.push(json!({ "alg": "SHA-256", "content": f.sha256.hex() }));
    let mut c = json!({
        "bom-ref": bom_ref,
        "type": "file",
        "name": f.path,
        "hashes": hashes,
    });
    if let Some(layer) = &f.layer {
        c["properties"] = json!([property(FILE_LAYER, layer.as_str())]);
    }
    c
}

pub(super) fn write(inventory: &Inventory, options: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let timestamp = timestamp(options.created)?;
    let digest = content_digest(inventory);
    let serial = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, digest.as_str().as_bytes());
    let subject = &inventory.subject;

    let mut refs = HashSet::new();
    let purl = oci_purl(subject);
    let subject_ref = match (&purl, &subject.digest) {
        (Some(p), _) => p.to_string(),
        (None, Some(d)) => format!("image:{d}"),
        (None, None) => format!("dir:{}", subject.name),
    };
    refs.insert(subject_ref.clone());
    let mut root = json!({
        "bom-ref": subject_ref,
        "type": if subject.digest.is_some() { "container" } else { "file" },
        "name": subject.name,
    });
    if let Some(d) = &subject.digest {
        root["version"] = json!(d.as_str());
    }
    if let Some(p) = &purl {
        root["purl"] = json!(p.to_string());
    }
    if !subject.layers.is_empty() {
        root["properties"] = Value::Array(
            subject
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| property(&format!("berth:image:layer:{i}"), l.as_str()))
                .collect(),
        );
    }

    let mut components = Vec::with_capacity(inventory.packages.len() + 1);
    if let Some(d) = &inventory.distro {
        let (r, c) = distro_component(d);
        if refs.insert(r) {
            components.push(c);
        }
    }
    for p in &inventory.packages {
        // syft's form: the purl with a `package-id` qualifier; a second identical package
        // gets `-2`.
        let id = package_id(p);
        let mut n = 1;
        let mut bom_ref = p.purl.clone().qualifier("package-id", &id).to_string();
        while !refs.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = p
                .purl
                .clone()
                .qualifier("package-id", &format!("{id}-{n}"))
                .to_string();
        }
        components.push(package_component(p, &bom_ref));
    }
    for f in &inventory.files {
        let base = format!("file:{}", f.path);
        let mut bom_ref = base.clone();
        let mut n = 1;
        while !refs.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = format!("{base}#{n}");
        }
        components.push(file_component(f, &bom_ref));
    }

    let doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {
                "components": [{
                    "type": "application",
                    "author": TOOL_NAME,
                    "name": TOOL_NAME,
                    "version": TOOL_VERSION,
                }],
            },
            "component": root,
        },
        "components": components,
    });
    serde_json::to_vec_pretty(&doc).map_err(|source| WriteError::Serialise {
        format: "CycloneDX",
        source,
    })
}

/// A component's `properties` by name (the last of a repeated name wins).
fn properties<'a>(
    r: &Reader,
    c: &'a Value,
    field: &str,
) -> Result<BTreeMap<&'a str, &'a str>, ParseError> {
    let mut out = BTreeMap::new();
    for (i, p) in r.array(c, field, "properties")?.iter().enumerate() {
        let field = format!("{field}.properties[{i}]");
        r.object(p, &field)?;
        let name = r.str(p, &field, "name")?;
        if let Some(value) = r.opt_str(p, &field, "value")? {
            out.insert(name, value);
        }
    }
    Ok(out)
}

/// `<prefix>:location:<i>:path` / `…:layerID` → locations in index order.
fn locations(props: &BTreeMap<&str, &str>, prefix: &str) -> Vec<Location> {
    let mut by_index: BTreeMap<usize, (Option<&str>, Option<&str>)> = BTreeMap::new();
    for (name, value) in props {
        let Some(rest) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(":location:"))
        else {
            continue;
        };
        let Some((index, key)) = rest.split_once(':') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        let entry = by_index.entry(index).or_default();
        match key {
            "path" => entry.0 = Some(value),
            "layerID" => entry.1 = Some(value),
            _ => {}
        }
    }
    by_index
        .into_values()
        .filter_map(|(path, layer)| {
            Some(Location {
                path: path?.to_owned(),
                layer: layer.and_then(|l| Digest::parse(l).ok()),
            })
        })
        .collect()
}

const TRIVY: &str = "aquasecurity:trivy:";

/// trivy's properties: `PkgType` (the cataloguer: `trivy:debian`, `trivy:npm`), `FilePath`
/// (relative to the root) and `LayerDiffID`.
fn trivy(props: &BTreeMap<&str, &str>) -> (String, Vec<Location>) {
    let get = |k: &str| props.get(format!("{TRIVY}{k}").as_str()).copied();
    let found_by = match get("PkgType") {
        Some(t) => format!("trivy:{t}"),
        None => "trivy".to_owned(),
    };
    let locations = get("FilePath")
        .map(|path| Location {
            path: format!("/{}", path.trim_start_matches('/')),
            layer: get("LayerDiffID").and_then(|l| Digest::parse(l).ok()),
        })
        .into_iter()
        .collect();
    (found_by, locations)
}

fn read_licences(r: &Reader, c: &Value, field: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for (i, l) in r.array(c, field, "licenses")?.iter().enumerate() {
        let field = format!("{field}.licenses[{i}]");
        r.object(l, &field)?;
        if let Some(expr) = r.opt_str(l, &field, "expression")? {
            out.extend(licence::split(expr));
        } else if let Some(lic) = l.get("license") {
            let field = format!("{field}.license");
            r.object(lic, &field)?;
            match (
                r.opt_str(lic, &field, "id")?,
                r.opt_str(lic, &field, "name")?,
            ) {
                (Some(id), _) => out.push(id.to_owned()),
                (None, Some(name)) => out.push(name.to_owned()),
                (None, None) => return Err(r.err(field, "has neither `id` nor `name`")),
            }
        } else {
            return Err(r.err(field, "has neither `license` nor `expression`"));
        }
    }
    Ok(out)
}

fn read_distro(
    r: &Reader,
    c: &Value,
    field: &str,
    props: &BTreeMap<&str, &str>,
) -> Result<Distro, ParseError> {
    let name = r.str(c, field, "name")?;
    let version = r.opt_str(c, field, "version")?;
    for prefix in ["berth", "syft"] {
        let get = |k: &str| props.get(format!("{prefix}:distro:{k}").as_str()).copied();
        if let Some(id) = get("id") {
            let mut id_like = Vec::new();
            for i in 0.. {
                match get(&format!("idLike:{i}")) {
                    Some(v) => id_like.push(v.to_owned()),
                    None => break,
                }
            }
            return Ok(Distro {
                id: id.to_owned(),
                version_id: get("versionID").map(str::to_owned),
                codename: get("versionCodename").map(str::to_owned),
                id_like,
                pretty_name: get("prettyName").map(str::to_owned),
            });
        }
    }
    let mut d = distro(name, version);
    d.pretty_name = r.opt_str(c, field, "description")?.map(str::to_owned);
    Ok(d)
}

struct Walk<'r> {
    r: &'r Reader,
    distro: Option<Distro>,
    packages: Vec<Package>,
    skipped: Vec<Skipped>,
    files: Vec<FileDigest>,
}

impl Walk<'_> {
    fn components(&mut self, list: &[Value], parent: &str) -> Result<(), ParseError> {
        for (i, c) in list.iter().enumerate() {
            let field = format!("{parent}components[{i}]");
            self.component(c, &field)?;
            let nested = self.r.array(c, &field, "components")?;
            self.components(nested, &format!("{field}."))?;
        }
        Ok(())
    }

    fn component(&mut self, c: &Value, field: &str) -> Result<(), ParseError> {
        let r = self.r;
        r.object(c, field)?;
        let ty = r.str(c, field, "type")?;
        let name = r.str(c, field, "name")?;
        let version = r.opt_str(c, field, "version")?;
        let props = properties(r, c, field)?;
        if ty == "operating-system" {
            if self.distro.is_none() {
                self.distro = Some(read_distro(r, c, field, &props)?);
            }
            return Ok(());
        }
        if ty == "file" {
            let (mut sha256, mut sha1) = (None, None);
            for (i, h) in r.array(c, field, "hashes")?.iter().enumerate() {
                let field = format!("{field}.hashes[{i}]");
                r.object(h, &field)?;
                let content = r.str(h, &field, "content")?;
                match r.str(h, &field, "alg")? {
                    "SHA-256" if sha256.is_none() => {
                        sha256 = Some(super::sha256_hex(r, &field, content)?);
                    }
                    "SHA-1" if sha1.is_none() => sha1 = Some(super::sha1_hex(r, &field, content)?),
                    _ => {}
                }
            }
            if let Some(sha256) = sha256 {
                self.files.push(FileDigest {
                    path: super::absolute(name),
                    sha256,
                    layer: props.get(FILE_LAYER).and_then(|l| Digest::parse(l).ok()),
                    sha1,
                });
            }
            return Ok(());
        }
        let skip = |reason: String| Skipped {
            field: field.to_owned(),
            name: name.to_owned(),
            version: version.unwrap_or("").to_owned(),
            reason,
        };
        let Some(purl) = r.opt_str(c, field, "purl")? else {
            self.skipped.push(skip("no `purl`".into()));
            return Ok(());
        };
        let (purl, ecosystem) = match package_from_purl(purl) {
            Ok(ok) => ok,
            Err(reason) => {
                self.skipped.push(skip(reason));
                return Ok(());
            }
        };
        let licenses = read_licences(r, c, field)?;
        let (found_by, locations) = if let Some(f) = props.get("berth:package:foundBy") {
            (f.to_string(), locations(&props, "berth"))
        } else if let Some(f) = props.get("syft:package:foundBy") {
            (f.to_string(), locations(&props, "syft"))
        } else if props.keys().any(|k| k.starts_with(TRIVY)) {
            trivy(&props)
        } else {
            ("cyclonedx".to_owned(), Vec::new())
        };
        let source = match (
            props
                .get("berth:package:sourceName")
                .or(props.get("aquasecurity:trivy:SrcName")),
            props
                .get("berth:package:sourceVersion")
                .or(props.get("aquasecurity:trivy:SrcVersion")),
        ) {
            (Some(name), Some(version)) => Some(SourcePackage {
                name: name.to_string(),
                version: version.to_string(),
            }),
            _ => None,
        };
        self.packages.push(Package {
            name: name.to_owned(),
            version: version.unwrap_or(purl.version()).to_owned(),
            ecosystem,
            purl,
            licenses,
            source,
            locations,
            found_by,
        });
        Ok(())
    }
}

pub(super) fn read(doc: &Value) -> Result<Parsed, ParseError> {
    let r = Reader {
        format: "CycloneDX",
    };
    let bom_format = r.str(doc, "", "bomFormat")?;
    if bom_format != "CycloneDX" {
        return Err(r.err("bomFormat", format!("is {bom_format:?}, not \"CycloneDX\"")));
    }
    let version = r.str(doc, "", "specVersion")?;
    if !READS.contains(&version) {
        return Err(ParseError::Version {
            format: "CycloneDX",
            field: "specVersion",
            version: version.to_owned(),
            supported: "1.4, 1.5 and 1.6",
        });
    }
    let mut subject = subject_named("");
    if let Some(meta) = doc.get("metadata").filter(|m| !m.is_null()) {
        r.object(meta, "metadata")?;
        if let Some(c) = meta.get("component").filter(|c| !c.is_null()) {
            let field = "metadata.component";
            r.object(c, field)?;
            let props = properties(&r, c, field)?;
            subject = Subject {
                name: r.str(c, field, "name")?.to_owned(),
                digest: r
                    .opt_str(c, field, "version")?
                    .and_then(|v| Digest::parse(v).ok()),
                layers: (0..)
                    .map_while(|i| props.get(format!("berth:image:layer:{i}").as_str()))
                    .filter_map(|l| Digest::parse(l).ok())
                    .collect(),
            };
        }
    }
    let mut walk = Walk {
        r: &r,
        distro: None,
        packages: Vec::new(),
        skipped: Vec::new(),
        files: Vec::new(),
    };
    walk.components(r.array(doc, "", "components")?, "")?;
    let Walk {
        distro,
        mut packages,
        skipped,
        mut files,
        ..
    } = walk;
    sort_packages(&mut packages);
    files.sort();
    Ok(Parsed {
        format: Format::CycloneDxJson,
        spec_version: version.to_owned(),
        inventory: Inventory {
            subject,
            distro,
            packages,
            unsupported: Vec::new(),
            files,
        },
        skipped,
    })
}
