//! OSV records and the zip exports that carry them, as osv.dev (or anyone serving an
//! export) sends them. The first byte chooses:
//!
//! - even: the rest is one record for `berth_sbom::osv::Record::parse` — never panics; a
//!   refusal names the file and a field; an accepted record has an id, a `modified` time,
//!   an `introduced` event in every range and a repository for every GIT range; evaluating
//!   each affected entry at each version its events and `versions[]` name (with a numeric
//!   order that refuses some versions) never panics, and a version listed in `versions[]`
//!   is affected; CVSS v2/v3/v4 scoring of every severity never panics and stays in 0–10.
//! - odd: the rest is a zip archive for `berth_sbom::zip::ZipReader` — never panics,
//!   never allocates past the archive's size for its directory, and every entry it returns
//!   is no larger than the limit.
#![no_main]

use std::cmp::Ordering;
use std::io::Cursor;
use std::path::Path;

use berth_sbom::osv::{Event, RangeType, Record, Scheme, SeverityType, cvss, evaluate};
use berth_sbom::zip::ZipReader;
use berth_sbom::package::Ecosystem;
use libfuzzer_sys::fuzz_target;

fn numeric(_: Scheme, a: &str, b: &str) -> Result<Ordering, std::fmt::Error> {
    let parse = |s: &str| -> Result<Vec<u64>, std::fmt::Error> {
        s.split(['.', '-', '~', '+'])
            .map(|p| p.parse::<u64>().map_err(|_| std::fmt::Error))
            .collect()
    };
    Ok(parse(a)?.cmp(&parse(b)?))
}

fn record(data: &[u8]) {
    let rec = match Record::parse(data, "fuzz/X.json") {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e.file, "fuzz/X.json");
            assert!(!e.field.is_empty());
            return;
        }
    };
    assert!(!rec.id.is_empty());
    assert!(berth_oci::timefmt::parse_rfc3339(&rec.modified).is_some());
    let severities = rec.severity.iter().chain(rec.affected.iter().flat_map(|a| a.severity.iter()));
    for s in severities {
        let score = match s.kind {
            SeverityType::CvssV3 => cvss::v3_base_score(&s.score).ok(),
            SeverityType::CvssV2 => cvss::v2_base_score(&s.score).ok(),
            SeverityType::CvssV4 => cvss::v4_score(&s.score).ok(),
            _ => None,
        };
        if let Some(score) = score {
            assert!((0.0..=10.0).contains(&score), "{} scored {score}", s.score);
        }
    }
    for a in &rec.affected {
        let mut probes: Vec<&str> = a.versions.iter().map(String::as_str).collect();
        for r in &a.ranges {
            assert!(r.events.iter().any(|e| matches!(e, Event::Introduced(_))));
            if r.kind == RangeType::Git {
                assert!(r.repo.is_some());
            }
            probes.extend(r.events.iter().map(Event::version));
        }
        for v in probes.iter().take(64) {
            if let Ok(verdict) = evaluate(a, Ecosystem::Debian, v, &numeric) {
                if a.versions.iter().any(|x| x == v) {
                    assert!(verdict.affected, "{v} is listed in versions[]");
                }
            }
        }
    }
}

fn zip(data: &[u8]) {
    let Ok(mut z) = ZipReader::new(Cursor::new(data), Path::new("fuzz.zip")) else { return };
    let n = z.entries().len().min(64);
    for i in 0..n {
        if let Ok(bytes) = z.read(i, 1 << 20) {
            assert!(bytes.len() <= 1 << 20);
            assert_eq!(bytes.len() as u64, z.entries()[i].size);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => record(rest),
        Some((_, rest)) => zip(rest),
        None => {}
    }
});
