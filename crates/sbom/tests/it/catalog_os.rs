//! The OS cataloguers (dpkg, apk, rpm, os-release) on real databases, against syft.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "tests fail by panicking, helpers included, and report measurements"
)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use berth_sbom::catalog::catalog_dir;
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
    let libc = inv.packages.iter().find(|p| p.name == "libc6").unwrap();
    assert_eq!(libc.source.as_ref().unwrap().name, "glibc");
    assert!(
        libc.licenses.iter().any(|l| l.starts_with("LGPL")),
        "{:?}",
        libc.licenses
    );
    assert_eq!(libc.locations[0].path, "/var/lib/dpkg/status");
    let ours = ours(&inv, &["dpkg"]);
    let theirs = syft(&format!("dir:{}", root.display()), &["deb"]);
    assert!(
        ours.len() > 80,
        "a minbase system has ~90 packages: {}",
        ours.len()
    );
    assert_same("debian minbase (dir)", &ours, &theirs, &[]);

    // licences from the copyright files: syft's, but for one package
    let theirs = syft_licenses(&format!("dir:{}", root.display()), &["deb"]);
    let mut differ = Vec::new();
    for p in inv.packages.iter().filter(|p| p.found_by == "dpkg") {
        let ours: BTreeSet<String> = p.licenses.iter().cloned().collect();
        if theirs.get(&p.name) != Some(&ours) {
            differ.push(p.name.as_str());
        }
    }
    // perl-base's copyright has "License:  CC0-1.0" (two spaces), which syft's
    // `^License: (\S*)` reads as nothing, and "License: REGCOMP, and …", where syft keeps
    // the comma ("REGCOMP,"): berth reads "CC0-1.0" and "REGCOMP"
    assert_eq!(differ, ["perl-base"], "licences differ from syft's");
}

#[test]
fn this_machines_dpkg_status_is_read_whole() {
    // hundreds of packages, some removed with their configuration kept
    let status = fs::read("/var/lib/dpkg/status").expect("a Debian machine");
    let all = berth_sbom::catalog::dpkg::parse_status(&status);
    let paragraphs = String::from_utf8_lossy(&status)
        .lines()
        .filter(|l| l.starts_with("Package: "))
        .count();
    assert_eq!(all.len(), paragraphs);
    let out = run(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Abbrev}${Package}\n"]));
    let installed = String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.starts_with("ii"))
        .count();
    assert_eq!(all.iter().filter(|e| e.installed()).count(), installed);
}

/// rpmbuild one spec holding `n` packages with long descriptions (so that the headers need
/// SQLite overflow pages and the table interior pages), installed by rpm into `root`.
fn rpm_root(root: &Path, n: usize) {
    // fail, never skip: this is a helper, and a skip would return from it, not the test
    let hint = "apt-get install rpm (Debian's rpm 4.18, with rpmbuild; scripts/test installs it)";
    crate::osv_common::require_tool("rpm", hint);
    crate::osv_common::require_tool("rpmbuild", hint);
    let top = root.with_extension("rpmbuild");
    fs::create_dir_all(top.join("SPECS")).unwrap();
    let long = "A package for berth's rpm cataloguer test. ".repeat(120);
    let mut spec = format!(
        "Name: berth-base\nVersion: 1.2.3\nRelease: 4.fc40\nEpoch: 2\nSummary: t\nLicense: MIT AND (Apache-2.0 OR BSD-3-Clause)\nBuildArch: noarch\n\n%description\n{long}\n\n"
    );
    for i in 0..n {
        let _ = write!(
            spec,
            "%package -n berth-sub{i}\nVersion: 0.{i}\nSummary: s\nLicense: GPL-2.0-or-later\n\n%description -n berth-sub{i}\n{long}\n\n%files -n berth-sub{i}\n/usr/share/berth/{i}\n\n"
        );
    }
    spec.push_str("%install\nmkdir -p %{buildroot}/usr/share/berth\n");
    for i in 0..n {
        let _ = writeln!(spec, "echo {i} > %{{buildroot}}/usr/share/berth/{i}");
    }
    spec.push_str(
        "echo base > %{buildroot}/usr/share/berth/base\n\n%files\n/usr/share/berth/base\n",
    );
    put(top.join("SPECS/t.spec"), spec);
    run(Command::new("rpmbuild")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["-bb"])
        .arg(top.join("SPECS/t.spec")));
    let rpms: Vec<_> = fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fs::create_dir_all(root).unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "--nodeps", "-i"])
        .args(rpms));
    fs::create_dir_all(root.join("etc")).unwrap();
    put(
        root.join("etc/os-release"),
        "NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=40\n",
    );
}

#[test]
fn rpmdb_sqlite_written_by_rpm_equals_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    rpm_root(&root, 40);
    let db = root.join("var/lib/rpm/rpmdb.sqlite");
    assert!(
        db.is_file(),
        "rpm wrote no rpmdb.sqlite (is its backend sqlite?)"
    );
    let inv = catalog_dir(&root, &ScanLimits::default()).unwrap();
    let rpms: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Rpm)
        .collect();
    assert_eq!(rpms.len(), 41);
    let base = rpms.iter().find(|p| p.name == "berth-base").unwrap();
    assert_eq!(base.version, "2:1.2.3-4.fc40");
    assert_eq!(
        base.purl.to_string(),
        "pkg:rpm/fedora/berth-base@1.2.3-4.fc40?arch=noarch&distro=fedora-40&epoch=2&upstream=berth-base-1.2.3-4.fc40.src.rpm"
    );
    assert_eq!(base.licenses, vec!["MIT AND (Apache-2.0 OR BSD-3-Clause)"]);
    assert_eq!(base.source.as_ref().unwrap().name, "berth-base");
    let theirs = syft(&format!("dir:{}", root.display()), &["rpm"]);
    assert_same("rpmdb.sqlite", &ours(&inv, &["rpm"]), &theirs, &[]);
}

#[test]
fn rpm_berkeley_db_is_reported_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("var/lib/rpm");
    fs::create_dir_all(&dir).unwrap();
    // a Berkeley DB hash file's magic at offset 12 (0x00061561): enough to be one
    let mut bdb = vec![0u8; 4096];
    bdb[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    put(dir.join("Packages"), &bdb);
    let inv = catalog_dir(tmp.path(), &ScanLimits::default()).unwrap();
    assert!(inv.packages.is_empty());
    assert_eq!(inv.unsupported.len(), 1);
    assert_eq!(inv.unsupported[0].location.path, "/var/lib/rpm/Packages");
    assert!(
        inv.unsupported[0].reason.contains("Berkeley DB"),
        "{}",
        inv.unsupported[0].reason
    );
}

/// An apk database in apk-tools' format, written by hand: the Alpine CDN is not reachable
/// from the test machines, so there is no real minirootfs here. Names, versions, origins and
/// licences are alpine:3.19.1's; the checksums and other fields are made up (no cataloguer
/// reads them).
const APK_INSTALLED: &str = "C:Q1bjy+gbRr/YPyjtt3qm+tY5yqORc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1705587808
c:2a1fc7ec33ef48b5b18f3e2db2aaf1ac00a1ae36
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755

C:Q1Gd2Nzh0Kc9r82RPlG1C8lmINvW0=
P:busybox-binsh
V:1.36.1-r15
A:x86_64
S:1538
I:1
T:busybox ash /bin/sh
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1702323290
c:8e5f7a6dbf2cb4da3ad4efa2cad41a7ce36d4ec5
D:busybox=1.36.1-r15
p:cmd:sh=1.36.1-r15 /bin/sh

C:Q1mQ4QShJWoDqETDRGb7d82OYBtU4=
P:ca-certificates-bundle
V:20230506-r0
A:x86_64
S:126712
I:228352
T:Pre generated bundle of Mozilla certificates
U:https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
t:1683380766
c:59534a02716a92a10d177a118c34066162eff4a6

";

#[test]
fn apk_installed_database_equals_syfts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    put(root.join("lib/apk/db/installed"), APK_INSTALLED);
    put(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
    );
    let inv = catalog_dir(root, &ScanLimits::default()).unwrap();
    assert_eq!(inv.packages.len(), 3);
    let sh = inv
        .packages
        .iter()
        .find(|p| p.name == "busybox-binsh")
        .unwrap();
    assert_eq!(sh.source.as_ref().unwrap().name, "busybox");
    assert_eq!(sh.licenses, vec!["GPL-2.0-only"]);
    let theirs = syft(&format!("dir:{}", root.display()), &["apk"]);
    assert_same("apk", &ours(&inv, &["apk"]), &theirs, &[]);
}

#[test]
fn sqlite_reader_scans_what_sqlite3_wrote() {
    crate::osv_common::require_tool(
        "sqlite3",
        "apt-get install sqlite3 (scripts/test installs it)",
    );
    use berth_sbom::catalog::sqlite::{Database, Value};
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("t.sqlite");
    // 500 rows, blobs from 0 bytes to ~20 KiB (overflow chains), 1 KiB pages (a deep tree),
    // some rows deleted (free space inside pages), negative and large integers
    let sql = "PRAGMA page_size=1024; CREATE TABLE other (x); INSERT INTO other VALUES (1);
        CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL, n INTEGER, t TEXT);
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
        INSERT INTO Packages (blob, n, t) SELECT randomblob((i * 41) % 20000), i * -1000003, 'row ' || i FROM c;
        DELETE FROM Packages WHERE hnum % 7 = 0;";
    run(Command::new("sqlite3").arg(&db).arg(sql));
    let expected = run(Command::new("sqlite3").arg(&db).arg(
        "SELECT hnum || ' ' || hex(blob) || ' ' || n || ' ' || t FROM Packages ORDER BY hnum",
    ));
    let data = fs::read(&db).unwrap();
    let d = Database::open(&data).unwrap();
    let root = d.table_root("Packages").unwrap();
    let mut got = String::new();
    for (i, row) in d.scan(root).unwrap().iter().enumerate() {
        let hex: String = match &row[1] {
            Value::Blob(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
            v => panic!("row {i}: {v:?}"),
        };
        let (Value::Int(n), Value::Text(t)) = (&row[2], &row[3]) else {
            panic!("row {i}: {row:?}");
        };
        // hnum is the rowid (an INTEGER PRIMARY KEY is stored as NULL in the record)
        assert_eq!(row[0], Value::Null);
        let _ = writeln!(got, "? {hex} {n} {}", String::from_utf8_lossy(t));
    }
    let expected: String = String::from_utf8_lossy(&expected)
        .lines()
        .map(|l| {
            let (_, rest) = l.split_once(' ').unwrap();
            format!("? {rest}\n")
        })
        .collect();
    assert_eq!(got.lines().count(), 500 - 71);
    assert!(got == expected, "the reader's rows differ from sqlite3's");
}
