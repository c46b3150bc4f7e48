//! CVSS base scores against the specifications' examples and, for every base vector,
//! against Red Hat's `cvss` Python library (the reference implementation of the FIRST
//! calculators' formulas).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness: failing loudly is the point; test inputs in a temporary directory need no atomic writes"
)]

use std::io::Write;
use std::process::{Command, Stdio};

use berth_sbom::osv::cvss;

use crate::osv_common::require_python_module;

#[test]
fn v3_scores_match_the_specification_examples() {
    // CVSS v3.1 Specification Document, section 8 (examples) and NVD's scores
    for (vector, score) in [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5), // CVE-2014-0160 Heartbleed
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8), // CVE-2014-6271 Shellshock
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1), // CVE-2013-1937 phpMyAdmin XSS
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9), // CVE-2012-1516 VMware
        ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8), // CVE-2009-0658 Adobe Reader
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8), // GHSA-r9p9-mrjm-926w (elliptic)
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        // temporal metrics are accepted and do not change the base score
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/E:U/RL:O/RC:C",
            7.5,
        ),
    ] {
        assert_eq!(cvss::v3_base_score(vector).unwrap(), score, "{vector}");
    }
    for bad in [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N", // A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", // bad value
        "CVSS:2.0/AV:N/AC:L/Au:N/C:N/I:N/A:C",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
        "CVSS:3.1/AVN",
    ] {
        assert!(cvss::v3_base_score(bad).is_err(), "{bad}");
    }
}

#[test]
fn v2_scores_match_the_guide_examples() {
    // "A Complete Guide to the CVSS Version 2.0", section 3.3
    for (vector, score) in [
        ("AV:N/AC:L/Au:N/C:N/I:N/A:C", 7.8),  // CVE-2002-0392
        ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0), // CVE-2003-0818
        ("AV:L/AC:H/Au:N/C:C/I:C/A:C", 6.2),  // CVE-2003-0062
        ("(AV:N/AC:M/Au:N/C:P/I:P/A:P)", 6.8),
    ] {
        assert_eq!(cvss::v2_base_score(vector).unwrap(), score, "{vector}");
    }
    assert!(cvss::v2_base_score("AV:N/AC:L/Au:N/C:N/I:N").is_err());
}

#[test]
fn v4_vectors_are_validated_not_scored() {
    cvss::v4_validate("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N").unwrap();
    assert!(
        cvss::v4_validate("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N").is_err()
    );
    assert!(
        cvss::v4_validate("CVSS:4.0/AV:N/AC:L/AT:X/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N")
            .is_err()
    );
}

fn all_v3(version: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for (k, vals) in [
        ("AV", "NALP"),
        ("AC", "LH"),
        ("PR", "NLH"),
        ("UI", "NR"),
        ("S", "UC"),
        ("C", "HLN"),
        ("I", "HLN"),
        ("A", "HLN"),
    ] {
        out = out
            .iter()
            .flat_map(|p| vals.chars().map(move |v| format!("{p}/{k}:{v}")))
            .collect();
    }
    out.into_iter()
        .map(|s| format!("CVSS:{version}{s}"))
        .collect()
}

fn all_v2() -> Vec<String> {
    let mut out = vec![String::new()];
    for (k, vals) in [
        ("AV", "LAN"),
        ("AC", "HML"),
        ("Au", "MSN"),
        ("C", "NPC"),
        ("I", "NPC"),
        ("A", "NPC"),
    ] {
        out = out
            .iter()
            .flat_map(|p| vals.chars().map(move |v| format!("{p}/{k}:{v}")))
            .collect();
    }
    out.into_iter().map(|s| s[1..].to_owned()).collect()
}

/// Scores from the `cvss` library, one per input line.
fn reference_scores(class: &str, vectors: &[String]) -> Vec<f64> {
    let script = format!(
        "import sys\nfrom cvss import {class}\nfor l in sys.stdin:\n    print({class}(l.strip()).base_score)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = vectors.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn every_v2_and_v3_base_vector_scores_as_the_reference_library() {
    require_python_module(
        "cvss",
        "pip install cvss==3.6 (Red Hat's CVSS v2/v3/v4 library)",
    );
    let mut checked = 0;
    for version in ["3.0", "3.1"] {
        let vectors = all_v3(version);
        let want = reference_scores("CVSS3", &vectors);
        assert_eq!(want.len(), vectors.len());
        for (v, w) in vectors.iter().zip(want) {
            assert_eq!(cvss::v3_base_score(v).unwrap(), w, "{v}");
            checked += 1;
        }
    }
    let vectors = all_v2();
    let want = reference_scores("CVSS2", &vectors);
    for (v, w) in vectors.iter().zip(want) {
        assert_eq!(cvss::v2_base_score(v).unwrap(), w, "{v}");
        checked += 1;
    }
    assert_eq!(checked, 2 * 2592 + 729);
}
