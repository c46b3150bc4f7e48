//! Every document berth writes is valid against the official JSON schema, checked by an
//! independent validator: Debian's python3-jsonschema (`/usr/bin/python3`), reading the
//! schemas where their registry packages are installed, never from a copy in this
//! repository:
//!
//! - SPDX 2.3: `resources/spdx-schema-v2.3.json` inside Maven Central's
//!   `org.spdx:tools-java:2.0.1` jar (the SPDX project's own tools, which validate with it);
//! - CycloneDX 1.4–1.6: `cyclonedx/schema/_res/bom-1.6.SNAPSHOT.schema.json` with the
//!   `spdx` and `jsf-0.82` schemas it refers to, inside PyPI's `cyclonedx-python-lib==11.12.0`
//!   wheel (the CycloneDX project's Python library).
//!
//! Both are read straight out of the archives in [`SCHEMA_DIR`]; scripts/test's
//! `install_sbom_schemas` puts them there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::type_complexity,
    reason = "tests fail by panicking; their temporary files need no atomic writes"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_sbom::format::{self, Format};
use serde_json::Value;

use crate::format::{FORMATS, inventories, options};

pub(crate) const SCHEMA_DIR: &str = "/opt/berth-test/sbom-schemas";
const SPDX_JAR: &str = "tools-java-2.0.1.jar";
const CYCLONEDX_WHEEL: &str = "cyclonedx_python_lib-11.12.0-py3-none-any.whl";

const VALIDATE: &str = r#"
import json, sys, zipfile
try:
    import jsonschema
except ImportError:
    print("python3's jsonschema module is missing (apt-get install python3-jsonschema; scripts/test installs it)")
    sys.exit(3)
# jsonschema 4.10 (Debian 12) sorts the extra items to name them in an `additionalItems`
# message, which raises TypeError for objects (CycloneDX's `licenses` oneOf meets it): name
# them unsorted. Only the message changes, not the verdict.
def extras_msg(extras):
    extras = list(extras)
    return ", ".join(repr(e) for e in extras), ("was" if len(extras) == 1 else "were")
import jsonschema._utils, jsonschema._validators
jsonschema._utils.extras_msg = extras_msg
jsonschema._validators.extras_msg = extras_msg
kind, archive, docs = sys.argv[1], sys.argv[2], sys.argv[3:]
z = zipfile.ZipFile(archive)
if kind == "spdx":
    schema = json.loads(z.read("resources/spdx-schema-v2.3.json"))
    assert schema["title"] == "SPDX 2.3", schema["title"]
    cls = jsonschema.Draft201909Validator
    cls.check_schema(schema)
    v = cls(schema, format_checker=jsonschema.FormatChecker())
else:
    res = "cyclonedx/schema/_res/"
    bom = json.loads(z.read(res + "bom-%s.SNAPSHOT.schema.json" % kind))
    store = {}
    for name in ["spdx", "jsf-0.82"]:
        s = json.loads(z.read(res + name + ".SNAPSHOT.schema.json"))
        store[s["$id"]] = s
        store["http://cyclonedx.org/schema/" + name + ".SNAPSHOT.schema.json"] = s
    store[bom["$id"]] = bom
    cls = jsonschema.Draft7Validator
    cls.check_schema(bom)
    v = cls(bom, resolver=jsonschema.RefResolver.from_schema(bom, store=store),
            format_checker=jsonschema.FormatChecker())
for path in docs:
    errors = sorted(v.iter_errors(json.load(open(path))), key=lambda e: list(e.path))
    print(("OK " if not errors else "FAIL ") + path + "".join("\n  " + "/".join(map(str, e.path)) + ": " + e.message[:300] for e in errors[:20]))
"#;

fn archive(name: &str) -> PathBuf {
    let p = Path::new(SCHEMA_DIR).join(name);
    assert!(
        p.is_file(),
        "{} is missing: the schema tests read the official SPDX and CycloneDX JSON schemas from it\n\
         hint: scripts/test installs it (install_sbom_schemas, sha256-pinned): Maven Central's \
         org/spdx/tools-java/2.0.1/tools-java-2.0.1.jar and `pip download --no-deps --dest \
         {SCHEMA_DIR} cyclonedx-python-lib==11.12.0`",
        p.display()
    );
    p
}

/// The validator's verdict on each document, in order: `Ok(())` or the errors it listed.
/// `kind` is `spdx` or a CycloneDX version (`1.6`).
pub(crate) fn verdicts(kind: &str, docs: &[Vec<u8>]) -> Vec<Result<(), String>> {
    let archive = archive(if kind == "spdx" {
        SPDX_JAR
    } else {
        CYCLONEDX_WHEEL
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let p = tmp.path().join(format!("doc{i}.json"));
        std::fs::write(&p, d).unwrap();
        paths.push(p);
    }
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(kind)
        .arg(&archive)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| {
            panic!("/usr/bin/python3 is required for the schema tests: {e}\nhint: apt-get install python3 python3-jsonschema (scripts/test installs them)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "schema validation did not run: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut verdicts: Vec<Result<(), String>> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("OK ") {
            verdicts.push(Ok(()));
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            verdicts.push(Err(rest.to_owned()));
        } else if let Some(Err(e)) = verdicts.last_mut() {
            e.push('\n');
            e.push_str(line);
        }
    }
    assert_eq!(verdicts.len(), docs.len(), "{stdout}");
    verdicts
}

pub(crate) fn schema_kind(f: Format) -> &'static str {
    match f {
        Format::SpdxJson => "spdx",
        Format::CycloneDxJson => "1.6",
    }
}

#[test]
fn every_document_berth_writes_is_valid_against_the_official_schema() {
    for f in FORMATS {
        let named: Vec<(&str, Vec<u8>)> = inventories()
            .into_iter()
            .map(|(what, inv)| (what, format::write(f, &inv, &options()).unwrap()))
            .collect();
        let docs: Vec<Vec<u8>> = named.iter().map(|(_, d)| d.clone()).collect();
        // Debian's jsonschema checks no `uri` or `date-time` format (it lacks rfc3987 and
        // rfc3339-validator): check what berth writes in them here.
        for (what, doc) in &named {
            let v: Value = serde_json::from_slice(doc).unwrap();
            if f == Format::SpdxJson {
                let ns = v["documentNamespace"].as_str().unwrap();
                let path = ns
                    .strip_prefix("https://github.com/berth-dev/berth/spdx/")
                    .unwrap();
                assert!(
                    path.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b)),
                    "{what}: documentNamespace {ns:?} is not a plain URI"
                );
            }
            let created = match f {
                Format::SpdxJson => &v["creationInfo"]["created"],
                Format::CycloneDxJson => &v["metadata"]["timestamp"],
            };
            assert_eq!(created, "2026-12-05T04:28:09Z", "{what}");
        }
        for ((what, doc), verdict) in named.iter().zip(verdicts(schema_kind(f), &docs)) {
            if let Err(e) = verdict {
                panic!(
                    "{f:?} document of the {what} inventory fails the schema: {e}\n{}",
                    String::from_utf8_lossy(doc)
                );
            }
        }
    }
}

/// The validator is not a rubber stamp: documents broken in ways the schemas forbid fail.
#[test]
fn the_validator_refuses_what_the_schemas_forbid() {
    let (_, inv) = inventories().remove(0);
    let breakers: [(Format, fn(&mut Value)); 8] = [
        (Format::SpdxJson, |d| {
            d.as_object_mut().unwrap().remove("documentNamespace");
        }),
        (Format::SpdxJson, |d| {
            d["packages"][1]["primaryPackagePurpose"] = "OPERATING-SYSTEM".into();
        }),
        (Format::SpdxJson, |d| {
            d["relationships"][0]["relationshipType"] = "HAS".into();
        }),
        // a file with no checksum (SPDX requires one at least)
        (Format::SpdxJson, |d| {
            d["files"][0]["checksums"] = serde_json::json!([]);
        }),
        (Format::CycloneDxJson, |d| {
            d["serialNumber"] = "urn:uuid:not-a-uuid".into();
        }),
        // a file's hash of an algorithm CycloneDX does not name (the last component is a file)
        (Format::CycloneDxJson, |d| {
            let last = d["components"].as_array().unwrap().len() - 1;
            assert_eq!(d["components"][last]["type"], "file");
            d["components"][last]["hashes"][0]["alg"] = "SHA-257".into();
        }),
        (Format::CycloneDxJson, |d| {
            d["components"][1]["licenses"] =
                serde_json::json!([{"license": {"id": "Not-A-Licence"}}]);
        }),
        (Format::CycloneDxJson, |d| {
            d["components"][1]["licenses"] =
                serde_json::json!([{"license": {"id": "MIT"}}, {"expression": "MIT OR ISC"}]);
        }),
    ];
    for f in FORMATS {
        let good = format::write(f, &inv, &options()).unwrap();
        let mut docs = vec![good.clone()];
        for (bf, breaker) in &breakers {
            if *bf == f {
                let mut doc: Value = serde_json::from_slice(&good).unwrap();
                breaker(&mut doc);
                docs.push(serde_json::to_vec(&doc).unwrap());
            }
        }
        let v = verdicts(schema_kind(f), &docs);
        assert_eq!(v[0], Ok(()), "{f:?}: the unbroken document");
        for (i, verdict) in v.iter().enumerate().skip(1) {
            assert!(
                verdict.is_err(),
                "{f:?}: broken document {i} passed the schema"
            );
        }
    }
}
