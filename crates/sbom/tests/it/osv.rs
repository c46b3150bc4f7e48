//! The OSV records reader and the offline database: exports as osv.dev writes them, merged
//! and replaced per ecosystem, replaced atomically, refused with file and field.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: failing loudly is the point; test inputs in a temporary directory need no atomic writes"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_sbom::osv::{self, Database, DbError, Event, RangeType, Record, SeverityType, layout};
use serde_json::{Value, json};

use crate::osv_common::{record, write_export, write_export_raw};

fn ghsa() -> Value {
    json!({
        "schema_version": "1.4.0",
        "id": "GHSA-r9p9-mrjm-926w",
        "modified": "2021-03-08T16:02:43Z",
        "published": "2021-03-08T16:06:50Z",
        "withdrawn": null,
        "aliases": ["CVE-2020-28498"],
        "summary": "Use of a Broken or Risky Cryptographic Algorithm",
        "details": "The npm package `elliptic` before version 6.5.4 …",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N"}],
        "affected": [{
            "package": {"ecosystem": "npm", "name": "elliptic", "purl": "pkg:npm/elliptic"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "6.5.4"}]},
                {"type": "GIT", "repo": "https://github.com/indutny/elliptic",
                 "events": [{"introduced": "0"}, {"limit": "441b7428b0e8f6636c42118ad2aaa186d3c34c3f"}]}
            ],
            "versions": ["6.5.3"],
            "ecosystem_specific": {"affected_functions": ["ec.derive"]},
            "database_specific": {"source": "https://github.com/advisories/GHSA-r9p9-mrjm-926w"}
        }],
        "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2020-28498"}],
        "database_specific": {"severity": "MODERATE", "cwe_ids": ["CWE-327"]}
    })
}

#[test]
fn a_record_in_the_schema_is_read_field_by_field() {
    let bytes = serde_json::to_vec(&ghsa()).unwrap();
    let r = Record::parse(&bytes, "npm/GHSA-r9p9-mrjm-926w.json").unwrap();
    assert_eq!(r.id, "GHSA-r9p9-mrjm-926w");
    assert_eq!(r.modified, "2021-03-08T16:02:43Z");
    assert_eq!(r.published.as_deref(), Some("2021-03-08T16:06:50Z"));
    assert_eq!(r.withdrawn, None);
    assert_eq!(r.aliases, ["CVE-2020-28498"]);
    assert_eq!(r.severity.len(), 1);
    assert_eq!(r.severity[0].kind, SeverityType::CvssV3);
    let a = &r.affected[0];
    let p = a.package.as_ref().unwrap();
    assert_eq!((p.ecosystem.as_str(), p.name.as_str()), ("npm", "elliptic"));
    assert_eq!(p.purl.as_deref(), Some("pkg:npm/elliptic"));
    assert_eq!(a.ranges[0].kind, RangeType::Ecosystem);
    assert_eq!(
        a.ranges[0].events,
        [Event::Introduced("0".into()), Event::Fixed("6.5.4".into())]
    );
    assert_eq!(a.ranges[1].kind, RangeType::Git);
    assert_eq!(
        a.ranges[1].repo.as_deref(),
        Some("https://github.com/indutny/elliptic")
    );
    assert!(matches!(a.ranges[1].events[1], Event::Limit(_)));
    assert_eq!(a.versions, ["6.5.3"]);
    assert_eq!(
        r.database_specific.as_ref().unwrap()["severity"],
        json!("MODERATE")
    );
    assert!(a.ecosystem_specific.is_some() && a.database_specific.is_some());

    // release suffixes
    let mut deb = record(
        "DSA-1-1",
        "Debian:12",
        "openssl",
        json!([{"introduced": "0"}]),
    );
    deb["affected"][0]["severity"] = json!([{"type": "Ubuntu", "score": "medium"}]);
    let r = Record::parse(&serde_json::to_vec(&deb).unwrap(), "x").unwrap();
    let p = r.affected[0].package.as_ref().unwrap();
    assert_eq!(
        (p.ecosystem_base(), p.ecosystem_release()),
        ("Debian", Some("12"))
    );
    assert_eq!(r.affected[0].severity[0].kind, SeverityType::Ubuntu);
    let mvn = record(
        "GHSA-x",
        "Maven:https://maven.google.com",
        "a:b",
        json!([{"introduced": "0"}]),
    );
    let r = Record::parse(&serde_json::to_vec(&mvn).unwrap(), "x").unwrap();
    let p = r.affected[0].package.as_ref().unwrap();
    assert_eq!((p.ecosystem_base(), p.ecosystem_release()), ("Maven", None));
}

#[test]
fn malformed_records_are_refused_naming_the_file_and_the_field() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("id");
            }),
            "id",
            "missing",
        ),
        (Box::new(|v| v["id"] = json!(42)), "id", "expected a string"),
        (
            Box::new(|v| v["modified"] = json!("yesterday")),
            "modified",
            "RFC 3339",
        ),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("modified");
            }),
            "modified",
            "missing",
        ),
        (
            Box::new(|v| v["withdrawn"] = json!("2024-13-01T00:00:00Z")),
            "withdrawn",
            "RFC 3339",
        ),
        (
            Box::new(|v| v["aliases"] = json!(["CVE-1", 2])),
            "aliases[1]",
            "expected a string",
        ),
        (
            Box::new(|v| v["severity"] = json!([{"type": "CVSS_V3"}])),
            "severity[0].score",
            "missing",
        ),
        (
            Box::new(|v| v["affected"] = json!({})),
            "affected",
            "expected an array",
        ),
        (
            Box::new(|v| {
                v["affected"][0]["package"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ecosystem");
            }),
            "affected[0].package.ecosystem",
            "missing",
        ),
        (
            Box::new(|v| v["affected"][0]["ranges"][0]["type"] = json!("DATE")),
            "affected[0].ranges[0].type",
            "not a range type",
        ),
        (
            Box::new(|v| {
                v["affected"][0]["ranges"][0]["events"][1] = json!({"fixed": "1", "limit": "2"})
            }),
            "affected[0].ranges[0].events[1]",
            "exactly one",
        ),
        (
            Box::new(|v| v["affected"][0]["ranges"][0]["events"][1] = json!({"fixed": 1})),
            "affected[0].ranges[0].events[1].fixed",
            "expected a string",
        ),
        (
            Box::new(|v| v["affected"][0]["ranges"][0]["events"][1] = json!({})),
            "affected[0].ranges[0].events[1]",
            "needs one of",
        ),
        (
            Box::new(|v| v["affected"][0]["ranges"][0]["events"] = json!([{"fixed": "1.0"}])),
            "affected[0].ranges[0].events",
            "at least one `introduced`",
        ),
        (
            Box::new(|v| {
                v["affected"][0]["ranges"][0] =
                    json!({"type": "GIT", "events": [{"introduced": "0"}]})
            }),
            "affected[0].ranges[0].repo",
            "repository",
        ),
        (
            Box::new(|v| v["affected"][0]["versions"] = json!("1.0")),
            "affected[0].versions",
            "expected an array",
        ),
        (
            Box::new(|v| v["database_specific"] = json!([1])),
            "database_specific",
            "expected an object",
        ),
    ];
    for (mutate, field, problem) in cases {
        let mut v = record(
            "OSV-2024-1",
            "PyPI",
            "django",
            json!([{"introduced": "0"}, {"fixed": "4.2"}]),
        );
        mutate(&mut v);
        let err = Record::parse(
            &serde_json::to_vec(&v).unwrap(),
            "PyPI/all.zip!OSV-2024-1.json",
        )
        .expect_err(field);
        assert_eq!(err.file, "PyPI/all.zip!OSV-2024-1.json");
        assert_eq!(err.field, field, "{err}");
        assert!(err.problem.contains(problem), "{field}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("PyPI/all.zip!OSV-2024-1.json") && msg.contains(field),
            "{msg}"
        );
    }
    let err = Record::parse(b"{\"id\": ", "bad.json").unwrap_err();
    assert_eq!((err.file.as_str(), err.field.as_str()), ("bad.json", "."));
    assert!(err.problem.starts_with("not JSON"), "{err}");
    let err = Record::parse(b"[]", "arr.json").unwrap_err();
    assert!(err.problem.contains("expected an object"), "{err}");
}

/// A Debian export like osv.dev's: DSA/DLA records keyed by source package, with
/// `Debian:<release>` ecosystems.
fn debian_export() -> Vec<(String, Value)> {
    let mut v = vec![
        (
            "DSA-5532-1".to_owned(),
            record(
                "DSA-5532-1",
                "Debian:12",
                "openssl",
                json!([{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]),
            ),
        ),
        (
            "DSA-9999-1".to_owned(),
            record(
                "DSA-9999-1",
                "Debian:12",
                "openssl",
                json!([{"introduced": "0"}, {"fixed": "3.0.99-1~deb12u1"}]),
            ),
        ),
        (
            "DLA-3000-1".to_owned(),
            record(
                "DLA-3000-1",
                "Debian:11",
                "openssl",
                json!([{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u2"}]),
            ),
        ),
        (
            "DSA-5000-1".to_owned(),
            record(
                "DSA-5000-1",
                "Debian:12",
                "zlib",
                json!([{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-2"}]),
            ),
        ),
    ];
    let mut w = record(
        "DSA-4000-1",
        "Debian:12",
        "openssl",
        json!([{"introduced": "0"}]),
    );
    w["withdrawn"] = json!("2024-06-01T00:00:00Z");
    v.push(("DSA-4000-1".to_owned(), w));
    let mut newest = record(
        "DSA-5600-1",
        "Debian:12",
        "glibc",
        json!([{"introduced": "0"}, {"fixed": "2.36-9+deb12u99"}]),
    );
    newest["modified"] = json!("2024-11-30T23:59:59.5Z");
    v.push(("DSA-5600-1".to_owned(), newest));
    v
}

fn pypi_export() -> Vec<(String, Value)> {
    vec![
        (
            "PYSEC-2023-1".to_owned(),
            record(
                "PYSEC-2023-1",
                "PyPI",
                "Django",
                json!([{"introduced": "4.0"}, {"fixed": "4.2.7"}]),
            ),
        ),
        (
            "GHSA-aaaa-bbbb-cccc".to_owned(),
            record(
                "GHSA-aaaa-bbbb-cccc",
                "PyPI",
                "zope.interface",
                json!([{"introduced": "0"}, {"fixed": "6.0"}]),
            ),
        ),
    ]
}

fn ids(recs: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
    v.sort();
    v
}

#[test]
fn an_export_zip_is_imported_and_indexed_by_ecosystem_and_package() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    write_export(&zip, &debian_export());
    let db_dir = tmp.path().join("db");
    let before = berth_oci::timefmt::rfc3339(std::time::SystemTime::now());
    let rep = osv::import(&zip, &db_dir).unwrap();
    assert_eq!(rep.ecosystem, "Debian");
    assert_eq!((rep.records, rep.withdrawn, rep.duplicates), (5, 1, 0));
    assert_eq!(rep.replaced, None);
    assert_eq!(
        rep.meta.newest_modified.as_deref(),
        Some("2024-11-30T23:59:59.5Z")
    );
    assert!(rep.meta.built >= before, "{} < {before}", rep.meta.built);

    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.meta(), &rep.meta);
    assert_eq!(db.meta().format_version, layout::FORMAT_VERSION);
    // all releases' records of a source package, withdrawn ones left out at import
    assert_eq!(
        ids(&db.records_for("Debian:12", "openssl").unwrap()),
        ["DLA-3000-1", "DSA-5532-1", "DSA-9999-1"]
    );
    assert_eq!(
        ids(&db.records_for("Debian", "zlib").unwrap()),
        ["DSA-5000-1"]
    );
    assert!(db.records_for("Debian", "libssl3").unwrap().is_empty());
    assert!(db.records_for("Alpine", "openssl").unwrap().is_empty());
    assert_eq!(db.package_count(), 3);
    // the stored record is the record
    let r = &db.records_for("Debian", "zlib").unwrap()[0];
    assert_eq!(r.aliases.len(), 1);
    assert_eq!(
        r.affected[0].ranges[0].events[1],
        Event::Fixed("1:1.2.13.dfsg-2".into())
    );
    let names: Vec<String> = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| layout::is_stale_temp(n)), "{names:?}");
}

#[test]
fn a_directory_of_records_imports_like_a_zip_and_pypi_names_are_normalised() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("PyPI");
    std::fs::create_dir_all(src.join("nested")).unwrap();
    for (i, (id, v)) in pypi_export().into_iter().enumerate() {
        let dir = if i == 0 {
            src.clone()
        } else {
            src.join("nested")
        };
        std::fs::write(
            dir.join(format!("{id}.json")),
            serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(src.join("README.txt"), "not a record").unwrap();
    let db_dir = tmp.path().join("db");
    let rep = osv::import(&src, &db_dir).unwrap();
    assert_eq!((rep.ecosystem.as_str(), rep.records), ("PyPI", 2));
    let db = Database::open(&db_dir).unwrap();
    // PEP 503: Django, django, zope.interface, Zope_Interface are the same project
    assert_eq!(
        ids(&db.records_for("PyPI", "django").unwrap()),
        ["PYSEC-2023-1"]
    );
    assert_eq!(
        ids(&db.records_for("PyPI", "Zope_Interface").unwrap()),
        ["GHSA-aaaa-bbbb-cccc"]
    );
}

#[test]
fn importing_merges_ecosystems_and_reimporting_replaces_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (deb, py) = (tmp.path().join("deb.zip"), tmp.path().join("py.zip"));
    write_export(&deb, &debian_export());
    write_export(&py, &pypi_export());
    let db_dir = tmp.path().join("db");
    osv::import(&deb, &db_dir).unwrap();
    let rep = osv::import(&py, &db_dir).unwrap();
    let ecos: Vec<(&str, u64)> = rep
        .meta
        .exports
        .iter()
        .map(|e| (e.ecosystem.as_str(), e.records))
        .collect();
    assert_eq!(ecos, [("Debian", 5), ("PyPI", 2)]);
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(ids(&db.records_for("Debian", "openssl").unwrap()).len(), 3);
    assert_eq!(
        ids(&db.records_for("PyPI", "django").unwrap()),
        ["PYSEC-2023-1"]
    );

    // a newer Debian export: openssl's DSA-9999-1 is gone, a new record came
    let mut newer: Vec<(String, Value)> = debian_export()
        .into_iter()
        .filter(|(id, _)| id != "DSA-9999-1")
        .collect();
    newer.push((
        "DSA-6000-1".into(),
        record(
            "DSA-6000-1",
            "Debian:12",
            "curl",
            json!([{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u9"}]),
        ),
    ));
    let deb2 = tmp.path().join("deb2.zip");
    write_export(&deb2, &newer);
    let rep = osv::import(&deb2, &db_dir).unwrap();
    assert_eq!(rep.replaced.as_ref().map(|e| e.records), Some(5));
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(
        ids(&db.records_for("Debian", "openssl").unwrap()),
        ["DLA-3000-1", "DSA-5532-1"]
    );
    assert_eq!(
        ids(&db.records_for("Debian", "curl").unwrap()),
        ["DSA-6000-1"]
    );
    // PyPI untouched, its records still readable after being moved in the file
    assert_eq!(
        ids(&db.records_for("PyPI", "django").unwrap()),
        ["PYSEC-2023-1"]
    );
    assert_eq!(
        ids(&db.records_for("PyPI", "zope-interface").unwrap()),
        ["GHSA-aaaa-bbbb-cccc"]
    );
    let ecos: Vec<(&str, u64)> = db
        .meta()
        .exports
        .iter()
        .map(|e| (e.ecosystem.as_str(), e.records))
        .collect();
    assert_eq!(ecos, [("Debian", 5), ("PyPI", 2)]);
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failed_import_leaves_the_old_database_and_names_the_bad_record() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.zip");
    write_export(&good, &debian_export());
    let db_dir = tmp.path().join("db");
    osv::import(&good, &db_dir).unwrap();
    let db_file = layout::db_file(&db_dir);
    let before = std::fs::read(&db_file).unwrap();
    let listing = dir_listing(&db_dir);

    // the failure comes late: many good records are written to the new file first
    let mut lines: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                "DSA-{i}-1.json\t{}",
                record(
                    &format!("DSA-{i}-1"),
                    "Debian:12",
                    &format!("pkg{i}"),
                    json!([{"introduced": "0"}])
                )
            )
        })
        .collect();
    let mut bad = record(
        "DSA-BAD-1",
        "Debian:12",
        "openssl",
        json!([{"introduced": "0"}]),
    );
    bad["affected"][0]["ranges"][0]["events"][0] = json!({"introduced": "0", "fixed": "1"});
    lines.push(format!("DSA-BAD-1.json\t{bad}"));
    let bad_zip = tmp.path().join("bad.zip");
    write_export_raw(
        &bad_zip,
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let err = osv::import(&bad_zip, &db_dir).unwrap_err();
    let DbError::Record(rec) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(rec.file, format!("{}!DSA-BAD-1.json", bad_zip.display()));
    assert_eq!(rec.field, "affected[0].ranges[0].events[0]");
    assert!(err.to_string().contains("database is unchanged"), "{err}");

    // not JSON at all
    let junk = tmp.path().join("junk.zip");
    write_export_raw(&junk, &["X-1.json\t{not json"]);
    let err = osv::import(&junk, &db_dir).unwrap_err();
    let DbError::Record(rec) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (rec.field.as_str(), rec.file.ends_with("junk.zip!X-1.json")),
        (".", true)
    );

    // not a zip
    let notzip = tmp.path().join("not.zip");
    std::fs::write(&notzip, b"PK\x03\x04 truncated").unwrap();
    let err = osv::import(&notzip, &db_dir).unwrap_err();
    assert!(matches!(err, DbError::Zip(_)), "{err:?}");

    assert_eq!(
        std::fs::read(&db_file).unwrap(),
        before,
        "the database changed"
    );
    assert_eq!(dir_listing(&db_dir), listing, "a temporary file was left");
}

/// Records for `n_packages` source packages, `per_package` each: the shape of the Debian
/// export (~50 000 records over a few thousand source packages).
fn generated_debian(n_records: usize, per_package: usize) -> Vec<(String, Value)> {
    (0..n_records)
        .map(|i| {
            let id = format!("DEBIAN-CVE-2024-{i:05}");
            let pkg = format!("srcpkg{}", i / per_package);
            let mut r = record(&id, "Debian:12", &pkg, json!([{"introduced": "0"}, {"fixed": format!("{}.{}-1", i % 7 + 1, i % 13)}]));
            r["details"] = json!("A generated vulnerability, with a paragraph of details as real records carry: ".repeat(4));
            r["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]);
            (id, r)
        })
        .collect()
}

#[test]
fn import_and_lookup_of_a_50000_record_export_are_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    let recs = generated_debian(50_000, 10);
    let t = Instant::now();
    write_export(&zip, &recs);
    let gen_time = t.elapsed();
    let db_dir = tmp.path().join("db");
    let t = Instant::now();
    let rep = osv::import(&zip, &db_dir).unwrap();
    let import_time = t.elapsed();
    assert_eq!(rep.records, 50_000);
    let t = Instant::now();
    let db = Database::open(&db_dir).unwrap();
    let open_time = t.elapsed();
    assert_eq!(db.package_count(), 5000);
    // 500 packages: as a 500-package image would look them up (half have records)
    let t = Instant::now();
    let mut found = 0;
    for i in 0..500 {
        let name = if i % 2 == 0 {
            format!("srcpkg{}", i * 9)
        } else {
            format!("absent{i}")
        };
        found += db.records_for("Debian", &name).unwrap().len();
    }
    let lookup_time = t.elapsed();
    assert_eq!(found, 250 * 10);
    let size = std::fs::metadata(layout::db_file(&db_dir)).unwrap().len();
    eprintln!(
        "50 000 records: export written in {gen_time:?} ({} bytes zipped); import {import_time:?}; \
         database {size} bytes; open {open_time:?}; 500 lookups ({found} records) {lookup_time:?}",
        std::fs::metadata(&zip).unwrap().len()
    );
    assert!(
        open_time + lookup_time < Duration::from_secs(1),
        "{open_time:?} + {lookup_time:?}"
    );
}

#[test]
fn an_export_with_more_than_65535_entries_is_read_through_zip64() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    let n = 65_600;
    let recs: Vec<(String, Value)> = (0..n)
        .map(|i| {
            let id = format!("ALPINE-CVE-{i}");
            (
                id.clone(),
                record(
                    &id,
                    "Alpine:v3.19",
                    &format!("p{}", i % 100),
                    json!([{"introduced": "0"}]),
                ),
            )
        })
        .collect();
    write_export(&zip, &recs);
    let db_dir = tmp.path().join("db");
    let rep = osv::import(&zip, &db_dir).unwrap();
    assert_eq!((rep.ecosystem.as_str(), rep.records), ("Alpine", n as u64));
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.records_for("Alpine", "p7").unwrap().len(), n / 100);
}

#[test]
fn a_corrupt_or_missing_database_is_reported_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Database::open(tmp.path()).unwrap_err();
    assert!(matches!(err, DbError::Missing { .. }));
    assert!(err.to_string().contains("hint: import"), "{err}");
    std::fs::write(layout::db_file(tmp.path()), vec![7u8; 200]).unwrap();
    let err = Database::open(tmp.path()).unwrap_err();
    assert!(matches!(err, DbError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("hint: delete it"), "{err}");
    // an import over a corrupt database rebuilds it, and says so
    let zip = tmp.path().join("py.zip");
    write_export(&zip, &pypi_export());
    let rep = osv::import(&zip, tmp.path()).unwrap();
    assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
    assert_eq!(Database::open(tmp.path()).unwrap().meta().exports.len(), 1);
}

const CHILD_ENV: &str = "BERTH_TEST_OSV_IMPORT_CHILD";

/// Run by `a_killed_import_leaves_the_old_database` in a child process: one import.
#[test]
#[ignore = "a child process of a_killed_import_leaves_the_old_database"]
fn killed_import_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (src, db) = arg.split_once('\n').unwrap();
    osv::import(Path::new(src), Path::new(db)).unwrap();
}

#[test]
fn a_killed_import_leaves_the_old_database() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small.zip");
    write_export(&small, &debian_export());
    let db_dir = tmp.path().join("db");
    osv::import(&small, &db_dir).unwrap();
    let before = std::fs::read(layout::db_file(&db_dir)).unwrap();
    let big = tmp.path().join("big.zip");
    write_export(&big, &generated_debian(60_000, 10));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "osv::killed_import_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(
            CHILD_ENV,
            format!("{}\n{}", big.display(), db_dir.display()),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill it once it has written part of the new database
    let temp: std::cell::RefCell<Option<PathBuf>> = Default::default();
    let midway = berth_test_support::wait_until(Duration::from_secs(60), || {
        std::fs::read_dir(&db_dir).unwrap().flatten().any(|e| {
            let is_temp = e.file_name().to_str().is_some_and(layout::is_stale_temp);
            if is_temp && e.metadata().is_ok_and(|m| m.len() > 64 * 1024) {
                *temp.borrow_mut() = Some(e.path());
                true
            } else {
                false
            }
        })
    });
    assert!(midway, "the child's import never started writing");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import finished before it could be killed"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    // the database is the old one, whole; the torn temporary file is not read
    assert_eq!(std::fs::read(layout::db_file(&db_dir)).unwrap(), before);
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.meta().exports[0].records, 5);
    let temp = temp.into_inner().unwrap();
    assert!(
        temp.exists(),
        "the killed import's temporary file should be there"
    );
    // the next import removes it
    osv::import(&small, &db_dir).unwrap();
    assert!(!temp.exists());
    assert!(
        !dir_listing(&db_dir)
            .iter()
            .any(|n| layout::is_stale_temp(n))
    );
}
