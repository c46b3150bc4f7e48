//! Matching an inventory against the database: real Debian 12 packages (the host's dpkg
//! database and dpkg's own version order), Alpine, Ubuntu, PyPI, npm, crates.io, Go and
//! Maven records; severities; stale-database warnings; a 500-package scan over 50 000
//! records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: failing loudly is the point; test inputs in a temporary directory need no atomic writes"
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use berth_sbom::osv::{self, Database};
use berth_sbom::package::{
    Distro, Ecosystem, Inventory, Location, Package, Purl, SourcePackage, Subject,
};
use berth_sbom::scan::{self, Report, ScanOptions, Severity};
use berth_test_support::sha256;
use serde_json::{Value, json};

use berth_sbom::version::OsvOrders;

use crate::osv_common::{dpkg, record, require_tool, write_export};

pub fn package(
    eco: Ecosystem,
    ns: Option<&str>,
    name: &str,
    version: &str,
    source: Option<(&str, &str)>,
    path: &str,
) -> Package {
    let purl_name = name.rsplit('/').next().unwrap_or(name);
    Package {
        name: name.to_owned(),
        version: version.to_owned(),
        ecosystem: eco,
        purl: Purl::new(eco.purl_type(), ns, purl_name, version),
        licenses: vec![],
        source: source.map(|(n, v)| SourcePackage {
            name: n.into(),
            version: v.into(),
        }),
        locations: vec![Location {
            path: path.into(),
            layer: Some(sha256(path.as_bytes())),
        }],
        found_by: "test".into(),
    }
}

fn inventory(distro: Option<Distro>, packages: Vec<Package>) -> Inventory {
    Inventory {
        subject: Subject {
            name: "registry.example/app:1.0".into(),
            digest: Some(sha256(b"manifest")),
            layers: vec![sha256(b"layer")],
        },
        distro,
        packages,
        unsupported: vec![],
        files: vec![],
    }
}

fn distro(id: &str, version_id: &str, codename: Option<&str>) -> Distro {
    Distro {
        id: id.into(),
        version_id: Some(version_id.into()),
        codename: codename.map(str::to_owned),
        id_like: vec![],
        pretty_name: None,
    }
}

fn import_all(dir: &Path, exports: &[(&str, Vec<Value>)]) -> Database {
    let db_dir = dir.join("db");
    for (name, recs) in exports {
        let zip = dir.join(format!("{name}.zip"));
        let recs: Vec<(String, Value)> = recs
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
            .collect();
        write_export(&zip, &recs);
        osv::import(&zip, &db_dir).unwrap();
    }
    Database::open(&db_dir).unwrap()
}

fn found(report: &Report) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.package.clone(), f.id.clone(), f.fixed_versions.clone()))
        .collect();
    v.sort();
    v
}

/// `(binary, version, source, source version)` of installed Debian packages, from dpkg.
fn installed(packages: &[&str]) -> Vec<(String, String, String, String)> {
    require_tool("dpkg-query", "the test runs on a Debian machine (dpkg)");
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ])
        .args(packages)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect()
}

fn host_distro() -> Distro {
    let text = std::fs::read_to_string("/etc/os-release").unwrap();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    Distro {
        id: get("ID").unwrap(),
        version_id: get("VERSION_ID"),
        codename: get("VERSION_CODENAME"),
        id_like: vec![],
        pretty_name: get("PRETTY_NAME"),
    }
}

#[test]
fn debian_12_packages_match_records_of_their_source_package_and_release() {
    require_tool("dpkg", "the test runs on a Debian machine (dpkg)");
    let host = host_distro();
    assert_eq!(
        (host.id.as_str(), host.version_id.as_deref()),
        ("debian", Some("12")),
        "this test reads a Debian 12 dpkg database (the project's machines are Debian 12)"
    );
    let pkgs = installed(&["libssl3", "openssl", "zlib1g"]);
    assert_eq!(pkgs.len(), 3, "{pkgs:?}");
    let ssl_src_version = &pkgs.iter().find(|p| p.0 == "libssl3").unwrap().3;
    assert_eq!(pkgs.iter().find(|p| p.0 == "libssl3").unwrap().2, "openssl");
    let zlib = pkgs.iter().find(|p| p.0 == "zlib1g").unwrap();
    assert_eq!(zlib.2, "zlib");
    let inv = inventory(
        Some(host.clone()),
        pkgs.iter()
            .map(|(b, v, s, sv)| {
                package(
                    Ecosystem::Debian,
                    Some("debian"),
                    b,
                    v,
                    Some((s, sv)),
                    "/var/lib/dpkg/status",
                )
            })
            .collect(),
    );
    // the fix of DSA-9999-1 comes after what is installed; DSA-5532-1's before it
    let later = format!("{ssl_src_version}+1");
    let zlib_later = format!("{}+1", zlib.3);
    let mut withdrawn = record(
        "DSA-4000-1",
        "Debian:12",
        "openssl",
        json!([{"introduced": "0"}]),
    );
    withdrawn["withdrawn"] = json!("2024-06-01T00:00:00Z");
    let tmp = tempfile::tempdir().unwrap();
    let db = import_all(
        tmp.path(),
        &[(
            "debian",
            vec![
                record(
                    "DSA-9999-1",
                    "Debian:12",
                    "openssl",
                    json!([{"introduced": "0"}, {"fixed": later}]),
                ),
                record(
                    "DSA-5532-1",
                    "Debian:12",
                    "openssl",
                    json!([{"introduced": "0"}, {"fixed": "3.0.0-1"}]),
                ),
                // another release's record: not this image's
                record(
                    "DLA-3000-1",
                    "Debian:11",
                    "openssl",
                    json!([{"introduced": "0"}]),
                ),
                withdrawn,
                // an epoch in the fixed version (zlib's is 1:)
                record(
                    "DSA-5000-1",
                    "Debian",
                    "zlib",
                    json!([{"introduced": "0"}, {"fixed": zlib_later}]),
                ),
                // keyed by the binary name: Debian records never are, so no match
                record(
                    "DSA-5001-1",
                    "Debian:12",
                    "libssl3",
                    json!([{"introduced": "0"}]),
                ),
            ],
        )],
    );
    let report = scan::scan(&inv, &db, &dpkg, &ScanOptions::default()).unwrap();
    // berth's own dpkg order finds exactly what dpkg's does
    let ours = scan::scan(&inv, &db, &OsvOrders, &ScanOptions::default()).unwrap();
    assert_eq!(found(&ours), found(&report));
    assert_eq!(
        found(&report),
        [
            (
                "libssl3".to_owned(),
                "DSA-9999-1".to_owned(),
                vec![later.clone()]
            ),
            (
                "openssl".to_owned(),
                "DSA-9999-1".to_owned(),
                vec![later.clone()]
            ),
            (
                "zlib1g".to_owned(),
                "DSA-5000-1".to_owned(),
                vec![zlib_later]
            ),
        ],
        "{:#?}",
        report.warnings
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.package == "libssl3")
        .unwrap();
    assert_eq!(f.osv_package, "openssl");
    assert_eq!(&f.matched_version, ssl_src_version);
    assert_eq!(f.layer, Some(sha256(b"/var/lib/dpkg/status")));
    assert!(f.aliases[0].starts_with("CVE-"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.packages_scanned, 3);
    assert_eq!(report.db.ecosystems, [("Debian".to_owned(), 5)]);
}

/// Records of every ecosystem berth catalogues, with each kind of severity.
pub fn language_records() -> Vec<(&'static str, Vec<Value>)> {
    let mut django = record(
        "GHSA-qmf9-6jqf-j8fq",
        "PyPI",
        "django",
        json!([{"introduced": "4.0"}, {"fixed": "4.1.13"}, {"introduced": "4.2"}, {"fixed": "4.2.7"}]),
    );
    django["severity"] =
        json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]);
    let mut babel = record(
        "GHSA-67hx-6x53-jw92",
        "npm",
        "@babel/traverse",
        json!([{"introduced": "0"}, {"fixed": "7.23.2"}]),
    );
    babel["severity"] = json!([{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]);
    let mut time = record(
        "RUSTSEC-2020-0071",
        "crates.io",
        "time",
        json!([{"introduced": "0"}, {"fixed": "0.2.23"}]),
    );
    time["affected"][0]["ranges"][0]["type"] = json!("SEMVER");
    time["severity"] = json!([{"type": "CVSS_V2", "score": "AV:L/AC:H/Au:N/C:C/I:C/A:C"}]);
    let mut net = record(
        "GO-2023-2102",
        "Go",
        "golang.org/x/net",
        json!([{"introduced": "0"}, {"fixed": "0.17.0"}]),
    );
    net["affected"][0]["ranges"][0]["type"] = json!("SEMVER");
    net["database_specific"] = json!({"severity": "HIGH"});
    let mut log4j = record(
        "GHSA-jfh8-c2jp-5v3q",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        json!([{"introduced": "2.0"}, {"fixed": "2.15.0"}]),
    );
    log4j["aliases"] = json!(["CVE-2021-44228"]);
    log4j["severity"] =
        json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}]);
    let musl = record(
        "ALPINE-CVE-2025-26519",
        "Alpine:v3.19",
        "musl",
        json!([{"introduced": "0"}, {"fixed": "1.2.4-r3"}]),
    );
    let musl_old = record(
        "ALPINE-CVE-2020-28928",
        "Alpine:v3.12",
        "musl",
        json!([{"introduced": "0"}]),
    );
    vec![
        (
            "pypi",
            vec![
                django,
                record(
                    "PYSEC-0000-1",
                    "PyPI",
                    "requests",
                    json!([{"introduced": "0"}, {"fixed": "2.0"}]),
                ),
            ],
        ),
        ("npm", vec![babel]),
        ("crates", vec![time]),
        ("go", vec![net]),
        ("maven", vec![log4j]),
        ("alpine", vec![musl, musl_old]),
    ]
}

pub fn alpine_image() -> Inventory {
    inventory(
        Some(distro("alpine", "3.19.1", None)),
        vec![
            package(
                Ecosystem::Alpine,
                Some("alpine"),
                "musl-utils",
                "1.2.4-r2",
                Some(("musl", "1.2.4-r2")),
                "/lib/apk/db/installed",
            ),
            package(
                Ecosystem::PyPI,
                None,
                "Django",
                "4.2.1",
                None,
                "/usr/lib/python3.11/site-packages/Django-4.2.1.dist-info/METADATA",
            ),
            package(
                Ecosystem::PyPI,
                None,
                "requests",
                "2.31.0",
                None,
                "/usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
            ),
            package(
                Ecosystem::Npm,
                Some("@babel"),
                "@babel/traverse",
                "7.22.0",
                None,
                "/app/node_modules/@babel/traverse/package.json",
            ),
            package(
                Ecosystem::CratesIo,
                None,
                "time",
                "0.1.43",
                None,
                "/usr/bin/app",
            ),
            package(
                Ecosystem::Go,
                Some("golang.org/x"),
                "net",
                "v0.10.0",
                None,
                "/usr/bin/server",
            ),
            package(
                Ecosystem::Maven,
                Some("org.apache.logging.log4j"),
                "log4j-core",
                "2.14.1",
                None,
                "/app/lib/log4j-core-2.14.1.jar",
            ),
        ],
    )
}

#[test]
fn language_and_alpine_packages_match_and_carry_severities() {
    let tmp = tempfile::tempdir().unwrap();
    let db = import_all(tmp.path(), &language_records());
    let report = scan::scan(&alpine_image(), &db, &OsvOrders, &ScanOptions::default()).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let by = |pkg: &str| {
        report
            .findings
            .iter()
            .find(|f| f.package == pkg)
            .unwrap_or_else(|| panic!("no finding for {pkg}: {:#?}", report.findings))
    };
    assert_eq!(found(&report).len(), 6, "{:#?}", found(&report));
    assert!(
        !report.findings.iter().any(|f| f.package == "requests"),
        "2.31.0 is fixed"
    );

    let musl = by("musl-utils");
    assert_eq!(
        (musl.id.as_str(), musl.osv_package.as_str()),
        ("ALPINE-CVE-2025-26519", "musl")
    );
    assert_eq!(musl.fixed_versions, ["1.2.4-r3"]);
    assert_eq!(
        (musl.severity.level, musl.severity.source.as_str()),
        (Severity::Unknown, "none")
    );

    let django = by("Django");
    assert_eq!(
        django.fixed_versions,
        ["4.2.7"],
        "the fix of its own interval"
    );
    assert_eq!(
        (django.severity.level, django.severity.score),
        (Severity::High, Some(7.5))
    );

    let babel = by("@babel/traverse");
    assert_eq!(
        (
            babel.severity.level,
            babel.severity.score,
            babel.severity.source.as_str()
        ),
        (Severity::Critical, Some(9.3), "CVSS_V4")
    );
    assert!(
        babel
            .severity
            .vector
            .as_deref()
            .unwrap()
            .starts_with("CVSS:4.0/")
    );

    let time = by("time");
    assert_eq!(
        (
            time.severity.level,
            time.severity.score,
            time.severity.source.as_str()
        ),
        (Severity::Medium, Some(6.2), "CVSS_V2")
    );

    let net = by("net");
    assert_eq!(net.osv_package, "golang.org/x/net");
    assert_eq!(
        (net.installed_version.as_str(), net.matched_version.as_str()),
        ("v0.10.0", "0.10.0")
    );
    assert_eq!(
        (net.severity.level, net.severity.source.as_str()),
        (Severity::High, "database_specific.severity")
    );

    let log4j = by("log4j-core");
    assert_eq!(log4j.osv_package, "org.apache.logging.log4j:log4j-core");
    assert_eq!(
        (log4j.severity.level, log4j.severity.score),
        (Severity::Critical, Some(10.0))
    );
    assert_eq!(log4j.aliases, ["CVE-2021-44228"]);

    // highest first: critical 10.0, critical 9.3, high 7.5, high unscored
    let order: Vec<&str> = report.findings.iter().map(|f| f.package.as_str()).collect();
    assert_eq!(
        order[..4],
        ["log4j-core", "@babel/traverse", "Django", "net"]
    );
    assert_eq!(report.max_severity(), Some(Severity::Critical));
    assert!(report.fails(Severity::High) && report.fails(Severity::Critical));
    assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
    assert!("severe".parse::<Severity>().is_err());
}

#[test]
fn ubuntu_records_match_by_release_and_carry_ubuntu_priorities() {
    let mut jammy = record(
        "UBUNTU-CVE-2024-0001",
        "Ubuntu:22.04:LTS",
        "openssl",
        json!([{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.15"}]),
    );
    jammy["affected"][0]["severity"] = json!([{"type": "Ubuntu", "score": "high"}]);
    let focal = record(
        "UBUNTU-CVE-2024-0002",
        "Ubuntu:20.04:LTS",
        "openssl",
        json!([{"introduced": "0"}]),
    );
    let mut deb = record(
        "DEBIAN-CVE-2024-0003",
        "Debian:12",
        "curl",
        json!([{"introduced": "0"}]),
    );
    deb["affected"][0]["ecosystem_specific"] = json!({"urgency": "low"});
    let tmp = tempfile::tempdir().unwrap();
    let db = import_all(
        tmp.path(),
        &[("ubuntu", vec![jammy, focal]), ("debian", vec![deb])],
    );
    let inv = inventory(
        Some(distro("ubuntu", "22.04", Some("jammy"))),
        vec![package(
            Ecosystem::Debian,
            Some("ubuntu"),
            "libssl3",
            "3.0.2-0ubuntu1.10",
            Some(("openssl", "3.0.2-0ubuntu1.10")),
            "/var/lib/dpkg/status",
        )],
    );
    let report = scan::scan(&inv, &db, &OsvOrders, &ScanOptions::default()).unwrap();
    assert_eq!(
        found(&report),
        [(
            "libssl3".to_owned(),
            "UBUNTU-CVE-2024-0001".to_owned(),
            vec!["3.0.2-0ubuntu1.15".to_owned()]
        )]
    );
    assert_eq!(
        (
            report.findings[0].severity.level,
            report.findings[0].severity.source.as_str()
        ),
        (Severity::High, "Ubuntu")
    );

    // Debian's urgency, on a Debian image
    let inv = inventory(
        Some(distro("debian", "12", Some("bookworm"))),
        vec![package(
            Ecosystem::Debian,
            Some("debian"),
            "curl",
            "7.88.1-10",
            None,
            "/var/lib/dpkg/status",
        )],
    );
    let report = scan::scan(&inv, &db, &OsvOrders, &ScanOptions::default()).unwrap();
    assert_eq!(
        (
            report.findings[0].severity.level,
            report.findings[0].severity.source.as_str()
        ),
        (Severity::Low, "urgency")
    );
    assert_eq!(report.max_severity(), Some(Severity::Low));
    assert!(!report.fails(Severity::Medium));
}

#[test]
fn an_old_database_is_warned_about_and_uncomparable_versions_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let db = import_all(tmp.path(), &language_records());
    let built = berth_oci::timefmt::parse_rfc3339(&db.meta().built).unwrap();
    let opts = ScanOptions {
        now: built + Duration::from_secs(30 * 86_400),
        max_db_age: Duration::from_secs(7 * 86_400),
    };
    let report = scan::scan(&alpine_image(), &db, &OsvOrders, &opts).unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("30 days ago") && report.warnings[0].contains(&db.meta().built),
        "{}",
        report.warnings[0]
    );
    let fresh = ScanOptions {
        now: built + Duration::from_secs(3600),
        ..opts
    };
    assert!(
        scan::scan(&alpine_image(), &db, &OsvOrders, &fresh)
            .unwrap()
            .warnings
            .is_empty()
    );

    // an empty installed version cannot be ordered: a warning, no finding, no guess
    let mut inv = alpine_image();
    inv.packages.retain(|p| p.name == "Django");
    inv.packages[0].version = String::new();
    let report = scan::scan(&inv, &db, &OsvOrders, &ScanOptions::default()).unwrap();
    assert!(report.findings.is_empty());
    assert!(
        report.warnings[0].contains("cannot compare")
            && report.warnings[0].contains("GHSA-qmf9-6jqf-j8fq"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn a_500_package_image_against_50000_records_finds_every_affected_range() {
    let tmp = tempfile::tempdir().unwrap();
    let recs: Vec<(String, Value)> = (0..50_000)
        .map(|i| {
            let id = format!("DEBIAN-CVE-2024-{i:05}");
            let mut r = record(&id, "Debian:12", &format!("src{}", i / 10), json!([{"introduced": "0"}, {"fixed": format!("{}.0-1", i % 10 + 1)}]));
            r["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]);
            (id, r)
        })
        .collect();
    let zip = tmp.path().join("all.zip");
    write_export(&zip, &recs);
    let db_dir = tmp.path().join("db");
    osv::import(&zip, &db_dir).unwrap();
    // 500 binary packages from 250 source packages with records and 250 without
    let packages: Vec<Package> = (0..500)
        .map(|i| {
            let src = if i % 2 == 0 {
                format!("src{}", i * 7)
            } else {
                format!("norecords{i}")
            };
            package(
                Ecosystem::Debian,
                Some("debian"),
                &format!("bin{i}"),
                "5.5-1",
                Some((&src, "5.5-1")),
                "/var/lib/dpkg/status",
            )
        })
        .collect();
    let inv = inventory(Some(distro("debian", "12", Some("bookworm"))), packages);
    let t = Instant::now();
    let db = Database::open(&db_dir).unwrap();
    let report = scan::scan(
        &inv,
        &db,
        &OsvOrders,
        &ScanOptions {
            now: SystemTime::now(),
            max_db_age: Duration::from_secs(86_400),
        },
    )
    .unwrap();
    let took = t.elapsed();
    // fixed in 1.0-1 … 10.0-1: versions 6.0-1 … 10.0-1 fix 5.5-1, five per source package
    assert_eq!(report.findings.len(), 250 * 5);
    eprintln!(
        "scan of 500 packages against 50 000 records (open included): {took:?}, {} findings",
        report.findings.len()
    );
    // the time is measured by bench/scan.sh, never asserted here
}

/// A scan reads records back from the database typed, skipping what it does not use
/// (`osv::view`): strings with escapes keep their text, a non-string
/// `database_specific.severity` is passed over for the `urgency` beside it, nulls read as
/// absent, and members it never reads (`details`, `references`, `credits`, nested
/// `ecosystem_specific` objects) are skipped whatever they hold.
#[test]
fn records_read_back_for_a_scan_keep_escaped_text_and_skip_what_a_scan_does_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rec = record(
        "DSA-9999-1",
        "Debian:12",
        "zlib",
        json!([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-1+deb12u1"}]),
    );
    rec["summary"] = json!("zlib: \"inflate\" overflow in caf\u{e9}\\tests");
    rec["aliases"] = json!(["CVE-2023-45853", "\u{2603}-1"]);
    rec["details"] = json!("line one\nline \"two\"\t\u{1F600}");
    rec["references"] = json!([{"type": "ADVISORY", "url": "https://x.example/\"q\""}]);
    rec["credits"] = json!([{"name": "A", "contact": ["mailto:a@x.example"]}]);
    rec["database_specific"] =
        json!({"severity": 7, "urgency": "high", "nested": {"a": [1, {"b": null}]}});
    rec["affected"][0]["ecosystem_specific"] = json!({"urgency": ["not", "text"], "x": {"y": 1.5}});
    rec["affected"][0]["versions"] = Value::Null;
    rec["withdrawn"] = Value::Null;
    let db = import_all(tmp.path(), &[("Debian", vec![rec])]);
    let zlib = package(
        Ecosystem::Debian,
        Some("debian"),
        "zlib1g",
        "1:1.2.13.dfsg-1",
        Some(("zlib", "1:1.2.13.dfsg-1")),
        "/var/lib/dpkg/status",
    );
    let inv = inventory(Some(distro("debian", "12", Some("bookworm"))), vec![zlib]);
    let r = scan::scan(&inv, &db, &OsvOrders, &ScanOptions::default()).unwrap();
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.id, "DSA-9999-1");
    assert_eq!(
        f.summary.as_deref(),
        Some("zlib: \"inflate\" overflow in caf\u{e9}\\tests")
    );
    assert_eq!(f.aliases, ["CVE-2023-45853", "\u{2603}-1"]);
    assert_eq!(f.fixed_versions, ["1:1.2.13.dfsg-1+deb12u1"]);
    assert_eq!(
        (f.severity.level, f.severity.source.as_str()),
        (Severity::High, "urgency")
    );
}
