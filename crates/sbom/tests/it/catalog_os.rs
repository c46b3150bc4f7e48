//! The OS cataloguers (dpkg, apk, rpm, os-release) on real databases, against syft.

use std::process::Command;

use berth_sbom::catalog::{catalog_dir, catalog_layers};
use berth_sbom::layers::ScanLimits;
use berth_sbom::package::Ecosystem;

use crate::catalog_support::*;

#[test]
fn debian_rootfs_dpkg_packages_equal_syfts() {
    let root = debian_rootfs();
    let inv = catalog_dir(&root, &ScanLimits::default()).unwrap();
    let distro = inv.distro.as_ref().expect("os-release read");
    assert_eq!(
        (distro.id.as_str(), distro.version_id.as_deref()),
        ("debian", Some("12"))
    );
    let ours = ours(&inv, &["dpkg"]);
    let theirs = syft(&format!("dir:{}", root.display()), &["deb"]);
    assert!(
        ours.len() > 80,
        "a minbase system has ~90 packages: {}",
        ours.len()
    );
    assert_same("debian minbase (dir)", &ours, &theirs, &[]);
}
