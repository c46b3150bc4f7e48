//! The image's executable files in the inventory: which files count (any x bit, an ELF or
//! `#!` file, whatever the selector keeps of them), their SHA-256 and SHA-1 (checked against
//! coreutils' `sha256sum` and `sha1sum`), hardlinks, whiteouts and opaque directories as for
//! packages; the same of a directory; both documents carry them and read them back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests fail by panicking; their temporary files need no atomic writes"
)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use berth_oci::Digest;
use berth_sbom::catalog::{catalog_dir, catalog_layers};
use berth_sbom::format::{self, Format};
use berth_sbom::layers::{LayerBlob, ScanLimits, is_executable};
use berth_sbom::package::{FileDigest, Inventory};

use crate::format::{FORMATS, options};
use crate::format_schema::{schema_kind, verdicts};

/// One tar entry.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        match e {
            E::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, path, *data).unwrap();
            }
            E::Link(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// `sha256sum`'s and `sha1sum`'s hex digests of `data`.
fn coreutils_sums(data: &[u8]) -> (String, String) {
    let sum = |tool: &str| -> String {
        use std::io::Write;
        let mut child = Command::new(tool)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} (coreutils) is required: {e}"));
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{tool} failed");
        String::from_utf8(out.stdout).unwrap()[..if tool == "sha1sum" { 40 } else { 64 }].to_owned()
    };
    (sum("sha256sum"), sum("sha1sum"))
}

/// The file the inventory must list at `path`: `data`'s digests, from `layer`.
fn expect(path: &str, data: &[u8], layer: Option<&Digest>) -> FileDigest {
    let (sha256, sha1) = coreutils_sums(data);
    FileDigest {
        path: path.to_owned(),
        sha256: format!("sha256:{sha256}").parse().unwrap(),
        layer: layer.cloned(),
        sha1: Some(sha1),
    }
}

const APP: &[u8] = b"\x7fELF\x02\x01\x01 an executable";
const SCRIPT: &[u8] = b"#!/bin/sh\necho hello\n";
const XBIT: &[u8] = b"plain text, but mode 0700";
const DATA: &[u8] = b"not an executable";
const LIB: &[u8] = b"\x7fELF\x02\x01\x01 a shared library, mode 0644";
const GONE: &[u8] = b"\x7fELF deleted by a whiteout";
const HIDDEN: &[u8] = b"#!/bin/sh\n# hidden by an opaque directory\n";
const READDED: &[u8] = b"#!/bin/sh\n# re-added under the opaque directory\n";
const SWAP_OLD: &[u8] = b"\x7fELF replaced by a data file";
const SWAP_NEW: &[u8] = b"now data";
/// Kept whole by the dpkg cataloguer, and executable: hashed from the kept bytes.
const KEPT: &[u8] =
    b"Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n";
/// Larger than the inspection limit below: hashed while streaming, never kept.
fn big() -> Vec<u8> {
    let mut b = b"\x7fELF".to_vec();
    b.extend((0..8192u32).map(|i| (i % 251) as u8));
    b
}
/// Files over 1 KiB are too large to inspect.
fn limits() -> ScanLimits {
    ScanLimits {
        max_inspect_bytes: 1024,
        ..ScanLimits::default()
    }
}

fn layers() -> Vec<Vec<u8>> {
    let big = big();
    let l1 = tar(&[
        E::File("usr/bin/app", APP, 0o755),
        E::File("usr/bin/tool.sh", SCRIPT, 0o644),
        E::File("usr/bin/xbit", XBIT, 0o700),
        E::File("etc/data.txt", DATA, 0o644),
        E::File("usr/lib/libfoo.so", LIB, 0o644),
        E::Link("usr/bin/app-link", "usr/bin/app"),
        E::File("usr/bin/gone", GONE, 0o755),
        E::File("opt/old/bin/hidden", HIDDEN, 0o755),
        E::File("usr/bin/swap", SWAP_OLD, 0o755),
        E::File("var/lib/dpkg/status", KEPT, 0o755),
        E::File("usr/bin/big", &big, 0o755),
    ]);
    let l2 = tar(&[
        E::File("usr/bin/.wh.gone", b"", 0o644),
        E::File("opt/old/.wh..wh..opq", b"", 0o644),
        E::File("opt/old/bin/readded", READDED, 0o755),
        E::File("usr/bin/swap", SWAP_NEW, 0o644),
        // a hardlink in a later layer to a lower layer's executable
        E::Link("usr/local/bin/app2", "usr/bin/app"),
    ]);
    vec![l1, l2]
}

fn diff_id(tar: &[u8]) -> Digest {
    let (hex, _) = coreutils_sums(tar);
    format!("sha256:{hex}").parse().unwrap()
}

fn catalog(tars: &[Vec<u8>]) -> Inventory {
    let blobs = tars.iter().map(|t| LayerBlob {
        reader: t.as_slice(),
        media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
        diff_id: diff_id(t),
    });
    catalog_layers("files", None, blobs, &limits()).unwrap()
}

/// What the squashed image must list, each from the layer given (`None`: a directory).
fn expected(l1: Option<&Digest>, l2: Option<&Digest>) -> Vec<FileDigest> {
    let mut want = vec![
        expect("/usr/bin/app", APP, l1),
        expect("/usr/bin/tool.sh", SCRIPT, l1),
        expect("/usr/bin/xbit", XBIT, l1),
        expect("/usr/lib/libfoo.so", LIB, l1),
        expect("/usr/bin/app-link", APP, l1),
        expect("/opt/old/bin/readded", READDED, l2),
        expect("/var/lib/dpkg/status", KEPT, l1),
        expect("/usr/bin/big", &big(), l1),
        // a hardlink is its target's content, and version, at its own path
        expect("/usr/local/bin/app2", APP, l1),
    ];
    want.sort_by(|a, b| a.path.cmp(&b.path));
    want
}

#[test]
fn the_inventory_lists_exactly_the_squashed_images_executables_with_their_digests() {
    let tars = layers();
    let (l1, l2) = (diff_id(&tars[0]), diff_id(&tars[1]));
    let inv = catalog(&tars);
    assert_eq!(inv.files, expected(Some(&l1), Some(&l2)));
    // the selector still got what it wanted: the kept dpkg database, the big ELF too large to
    // inspect reported (and hashed all the same)
    assert!(inv.packages.iter().any(|p| p.name == "hello"));
    assert_eq!(
        inv.unsupported
            .iter()
            .map(|u| u.location.path.as_str())
            .collect::<Vec<_>>(),
        ["/usr/bin/big"]
    );
}

#[test]
fn a_directory_gives_the_same_executables_without_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let put = |path: &str, data: &[u8], mode: u32| {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    // the squashed tree of `layers()`, as an unpacked root filesystem
    put("usr/bin/app", APP, 0o755);
    put("usr/bin/tool.sh", SCRIPT, 0o644);
    put("usr/bin/xbit", XBIT, 0o700);
    put("etc/data.txt", DATA, 0o644);
    put("usr/lib/libfoo.so", LIB, 0o644);
    put("opt/old/bin/readded", READDED, 0o755);
    put("usr/bin/swap", SWAP_NEW, 0o644);
    put("var/lib/dpkg/status", KEPT, 0o755);
    put("usr/bin/big", &big(), 0o755);
    fs::hard_link(root.join("usr/bin/app"), root.join("usr/bin/app-link")).unwrap();
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    fs::hard_link(root.join("usr/bin/app"), root.join("usr/local/bin/app2")).unwrap();
    // a symlink to an executable is not a file of its own
    std::os::unix::fs::symlink("app", root.join("usr/bin/app-symlink")).unwrap();
    let inv = catalog_dir(root, &limits()).unwrap();
    assert_eq!(inv.files, expected(None, None));
}

/// The test `berth watch`'s profile uses (crates/watch/src/profile.rs `is_executable`), on
/// the edges: any one x bit, the magic at the very start only, short files.
#[test]
fn executables_are_any_x_bit_or_elf_or_shebang() {
    for mode in [0o100, 0o010, 0o001, 0o4755] {
        assert!(is_executable(mode, b""), "{mode:o}");
    }
    assert!(is_executable(0o644, b"\x7fELF"));
    assert!(is_executable(0o600, b"#!/b"));
    assert!(is_executable(0o600, b"#!"));
    assert!(!is_executable(0o644, b"\x7fEL"));
    assert!(!is_executable(0o644, b"#"));
    assert!(!is_executable(0o644, b" #!/"));
    assert!(!is_executable(0o666, b""));
}

/// Each document written of the layered image lists its executables, is schema-valid, and
/// reads back to the same files; SPDX with the SHA-1 8.4 requires.
#[test]
fn documents_carry_the_executables_and_read_them_back() {
    let tars = layers();
    let mut inv = catalog(&tars);
    inv.subject.digest = Some(Digest::sha256_of(b"manifest"));
    let docs: Vec<Vec<u8>> = FORMATS
        .iter()
        .map(|f| format::write(*f, &inv, &options()).unwrap())
        .collect();
    for (f, bytes) in FORMATS.iter().zip(&docs) {
        let v = verdicts(schema_kind(*f), std::slice::from_ref(bytes));
        assert_eq!(v[0], Ok(()), "{f:?}");
        let back = format::parse(bytes).unwrap();
        assert_eq!(back.inventory.files, inv.files, "{f:?}");
        assert_eq!(back.inventory.packages, inv.packages, "{f:?}");
        assert!(back.skipped.is_empty(), "{f:?}: {:?}", back.skipped);
    }
    let by_path = |v: &[serde_json::Value], key: &str| -> BTreeMap<String, serde_json::Value> {
        v.iter()
            .map(|x| (x[key].as_str().unwrap().to_owned(), x.clone()))
            .collect()
    };
    let want = |path: &str| inv.files.iter().find(|f| f.path == path).unwrap();

    let spdx: serde_json::Value = serde_json::from_slice(&docs[0]).unwrap();
    let files = by_path(spdx["files"].as_array().unwrap(), "fileName");
    assert_eq!(files.len(), inv.files.len());
    let app = &files["/usr/bin/app"];
    assert_eq!(
        app["checksums"],
        serde_json::json!([
            {"algorithm": "SHA1", "checksumValue": want("/usr/bin/app").sha1},
            {"algorithm": "SHA256", "checksumValue": want("/usr/bin/app").sha256.hex()},
        ])
    );
    assert_eq!(app["comment"], format!("layer: {}", diff_id(&tars[0])));
    let root = spdx["relationships"][0]["relatedSpdxElement"]
        .as_str()
        .unwrap();
    let ids: Vec<&str> = files
        .values()
        .map(|f| f["SPDXID"].as_str().unwrap())
        .collect();
    for id in &ids {
        assert!(
            id.strip_prefix("SPDXRef-").is_some_and(|r| !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')),
            "{id}"
        );
        assert!(
            spdx["relationships"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["spdxElementId"] == root
                    && r["relationshipType"] == "CONTAINS"
                    && r["relatedSpdxElement"] == *id),
            "{id} is not contained by the image"
        );
    }
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());

    let cdx: serde_json::Value = serde_json::from_slice(&docs[1]).unwrap();
    let components: Vec<serde_json::Value> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "file")
        .cloned()
        .collect();
    let files = by_path(&components, "name");
    assert_eq!(files.len(), inv.files.len());
    let script = &files["/usr/bin/tool.sh"];
    assert_eq!(
        script["hashes"],
        serde_json::json!([
            {"alg": "SHA-1", "content": want("/usr/bin/tool.sh").sha1},
            {"alg": "SHA-256", "content": want("/usr/bin/tool.sh").sha256.hex()},
        ])
    );
    assert_eq!(
        script["properties"],
        serde_json::json!([{"name": "berth:file:layerID", "value": diff_id(&tars[0]).as_str()}])
    );
}

/// Another tool's files: SPDX `files` with a relative `fileName` and SHA-256 (syft's
/// shape), a directory with only a SHA-1 (ignored), CycloneDX `file` components with and
/// without a SHA-256 (the latter ignored), none of them a package or a skipped entry.
#[test]
fn other_tools_files_are_read_and_those_without_a_sha256_ignored() {
    let sha256 = "c79bf44242829108e323378531f4ac839513ca1fba45efd6583643526e1e9fd2";
    let sha1 = "8ae191681fa09d78923d555996d8746f8601146a";
    let spdx = serde_json::json!({
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": "root", "documentNamespace": "https://example.invalid/x",
        "creationInfo": {"created": "2026-12-05T13:43:18Z", "creators": ["Tool: syft-1.18.1"]},
        "packages": [],
        "files": [
            {"fileName": "usr/bin", "SPDXID": "SPDXRef-File-usr-bin",
             "checksums": [{"algorithm": "SHA1", "checksumValue": "0000000000000000000000000000000000000000"}]},
            {"fileName": "usr/bin/true", "SPDXID": "SPDXRef-File-usr-bin-true",
             "fileTypes": ["APPLICATION", "BINARY"],
             "checksums": [{"algorithm": "SHA1", "checksumValue": sha1},
                           {"algorithm": "SHA256", "checksumValue": sha256.to_uppercase()}]},
        ],
    });
    let cdx = serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "components": [
            {"bom-ref": "a", "type": "file", "name": "/usr/bin/true",
             "hashes": [{"alg": "SHA-256", "content": sha256}]},
            {"bom-ref": "b", "type": "file", "name": "/etc/motd",
             "hashes": [{"alg": "MD5", "content": "d41d8cd98f00b204e9800998ecf8427e"}]},
            {"bom-ref": "c", "type": "file", "name": "/etc/issue"},
        ],
    });
    for (f, doc, sha1) in [
        (Format::SpdxJson, spdx, Some(sha1.to_owned())),
        (Format::CycloneDxJson, cdx, None),
    ] {
        let parsed = format::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(parsed.format, f);
        assert_eq!(
            parsed.inventory.files,
            [FileDigest {
                path: "/usr/bin/true".into(),
                sha256: format!("sha256:{sha256}").parse().unwrap(),
                layer: None,
                sha1,
            }],
            "{f:?}"
        );
        assert!(parsed.inventory.packages.is_empty(), "{f:?}");
        assert!(parsed.skipped.is_empty(), "{f:?}: {:?}", parsed.skipped);
    }
    // a checksum that is not one is an error naming where it is
    let bad = serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "components": [{"type": "file", "name": "/x", "hashes": [{"alg": "SHA-256", "content": "xyz"}]}],
    });
    let err = format::parse(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
    assert!(err.to_string().contains("components[0].hashes[0]"), "{err}");
}
