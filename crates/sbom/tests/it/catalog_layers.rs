//! The layer reader's edges: diff IDs checked, limits that fail loudly, a file replacing a
//! directory, hardlinks, gzip and zstd layers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use berth_oci::Digest;
use berth_sbom::catalog::catalog_layers;
use berth_sbom::layers::{LayerBlob, ScanError, ScanLimits};
use berth_sbom::package::Inventory;

use crate::catalog_support::*;

const STATUS: &[u8] =
    b"Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n";
const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=12\n";

fn blob(tar: &[u8], media_type: &str, data: Vec<u8>) -> (Vec<u8>, String, Digest) {
    (data, media_type.to_owned(), berth_test_support::sha256(tar))
}

fn plain(tar: Vec<u8>) -> (Vec<u8>, String, Digest) {
    let d = berth_test_support::sha256(&tar);
    (tar, "application/vnd.oci.image.layer.v1.tar".to_owned(), d)
}

fn scan(
    layers: &[(Vec<u8>, String, Digest)],
    limits: &ScanLimits,
) -> Result<Inventory, berth_sbom::catalog::CatalogError> {
    let blobs = layers.iter().map(|(d, m, id)| LayerBlob {
        reader: d.as_slice(),
        media_type: m.clone(),
        diff_id: id.clone(),
    });
    catalog_layers("t", None, blobs, limits)
}

#[test]
fn a_layer_whose_diff_id_differs_is_refused() {
    let (data, mt, _) = plain(tar_of(&[("var/lib/dpkg/status", Some(STATUS))]));
    let wrong = berth_test_support::sha256(b"something else");
    let err = scan(&[(data, mt, wrong.clone())], &ScanLimits::default()).unwrap_err();
    let berth_sbom::catalog::CatalogError::Scan(ScanError::DiffId {
        index, expected, ..
    }) = err
    else {
        panic!("{err:?}");
    };
    assert_eq!((index, expected), (0, wrong));
}

#[test]
fn a_package_database_over_the_limit_is_an_error_naming_it() {
    let layers = [plain(tar_of(&[("var/lib/dpkg/status", Some(STATUS))]))];
    let limits = ScanLimits {
        max_file_bytes: 16,
        ..ScanLimits::default()
    };
    let err = scan(&layers, &limits).unwrap_err();
    let msg = format!("{}", std::error::Error::source(&err).unwrap());
    assert!(
        msg.contains("/var/lib/dpkg/status") && msg.contains("max_file_bytes"),
        "{msg}"
    );
}

#[test]
fn gzip_and_zstd_layers_and_a_file_replacing_a_directory() {
    let l1 = tar_of(&[
        ("etc/os-release", Some(OS_RELEASE)),
        ("var/lib/dpkg/status", Some(STATUS)),
        (
            "opt/app/node_modules/a/package.json",
            Some(br#"{"name":"a","version":"1.0.0"}"#),
        ),
    ]);
    // layer 2: /opt/app becomes a file: everything under it is gone
    let l2 = tar_of(&[("opt/app", Some(b"not a directory any more"))]);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&l1).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd_compress(&l2);
    let layers = [
        blob(&l1, "application/vnd.oci.image.layer.v1.tar+gzip", gz),
        blob(&l2, "application/vnd.oci.image.layer.v1.tar+zstd", zst),
    ];
    let inv = scan(&layers, &ScanLimits::default()).unwrap();
    let names: Vec<_> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello"]);
    assert_eq!(
        inv.packages[0].purl.to_string(),
        "pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12"
    );
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("l.tar");
    put(&p, data);
    run(std::process::Command::new("zstd")
        .args(["-q", "-f"])
        .arg(&p));
    std::fs::read(tmp.path().join("l.tar.zst")).unwrap()
}

#[test]
fn a_hardlink_to_a_package_database_is_read_at_its_own_path() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(STATUS.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "var/lib/dpkg/status.d/base", STATUS)
        .unwrap();
    let mut l = tar::Header::new_ustar();
    l.set_entry_type(tar::EntryType::Link);
    l.set_size(0);
    b.append_link(&mut l, "var/lib/dpkg/status", "var/lib/dpkg/status.d/base")
        .unwrap();
    let tar = b.into_inner().unwrap();
    // layer 2 deletes the original: the link keeps the content
    let l2 = tar_of(&[("var/lib/dpkg/status.d/.wh.base", Some(b""))]);
    let inv = scan(&[plain(tar), plain(l2)], &ScanLimits::default()).unwrap();
    assert_eq!(inv.packages.len(), 1);
    assert_eq!(inv.packages[0].locations[0].path, "/var/lib/dpkg/status");
}
