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
fn v4_scores_match_the_specification_examples() {
    // the OSV schema's own example, and vectors scored by FIRST's calculator
    for (vector, score) in [
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
            5.1,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
            10.0,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            9.3,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
            0.0,
        ),
        // threat: unreported exploitation lowers it
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U",
            8.1,
        ),
        // 8.55 in exact arithmetic, 8.549999… in floating point: rounds half up to 8.6
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:H/VI:L/VA:N/SC:H/SI:H/SA:H",
            8.6,
        ),
    ] {
        assert_eq!(cvss::v4_score(vector).unwrap(), score, "{vector}");
    }
    for bad in [
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N",
        "CVSS:4.0/AV:N/AC:L/AT:X/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N/E:Q",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
    ] {
        assert!(cvss::v4_validate(bad).is_err(), "{bad}");
        assert!(cvss::v4_score(bad).is_err(), "{bad}");
    }
}

/// Every base vector, then threat and environmental metrics from a fixed pseudo-random
/// sequence.
fn v4_vectors() -> Vec<String> {
    let mut out = vec![String::new()];
    for (k, vals) in [
        ("AV", "NALP"),
        ("AC", "LH"),
        ("AT", "NP"),
        ("PR", "NLH"),
        ("UI", "NPA"),
        ("VC", "HLN"),
        ("VI", "HLN"),
        ("VA", "HLN"),
        ("SC", "HLN"),
        ("SI", "HLN"),
        ("SA", "HLN"),
    ] {
        out = out
            .iter()
            .flat_map(|p| vals.chars().map(move |v| format!("{p}/{k}:{v}")))
            .collect();
    }
    let mut all: Vec<String> = out.iter().map(|s| format!("CVSS:4.0{s}")).collect();
    let extra = [
        ("E", "XAPU"),
        ("CR", "XHML"),
        ("IR", "XHML"),
        ("AR", "XHML"),
        ("MAV", "XNALP"),
        ("MAC", "XLH"),
        ("MAT", "XNP"),
        ("MPR", "XNLH"),
        ("MUI", "XNPA"),
        ("MVC", "XHLN"),
        ("MVI", "XHLN"),
        ("MVA", "XHLN"),
        ("MSC", "XHLN"),
        ("MSI", "XSHLN"),
        ("MSA", "XSHLN"),
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..5000 {
        let mut v = out[next(out.len())].clone();
        for (k, vals) in extra {
            if next(3) == 0 {
                let c = vals.as_bytes()[next(vals.len())] as char;
                v.push_str(&format!("/{k}:{c}"));
            }
        }
        all.push(format!("CVSS:4.0{v}"));
    }
    all
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
    let mut child = Command::new(crate::tools::sbom_python())
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
    // Red Hat's CVSS v2/v3/v4 library, cvss 3.6
    require_python_module("cvss");
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

#[test]
fn every_v4_base_vector_and_5000_with_threat_and_environment_score_as_the_reference() {
    // Red Hat's CVSS v2/v3/v4 library, cvss 3.6
    require_python_module("cvss");
    let vectors = v4_vectors();
    assert_eq!(vectors.len(), 104_976 + 5000);
    let want = reference_scores("CVSS4", &vectors);
    assert_eq!(want.len(), vectors.len());
    let wrong: Vec<String> = vectors
        .iter()
        .zip(want)
        .filter_map(|(v, w)| {
            let got = cvss::v4_score(v).unwrap();
            (got != w).then(|| format!("{v}: berth {got}, cvss {w}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} differ, e.g. {:?}",
        wrong.len(),
        vectors.len(),
        &wrong[..wrong.len().min(10)]
    );
}
