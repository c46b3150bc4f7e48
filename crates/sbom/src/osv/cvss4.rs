//! CVSS v4.0 scores: the specification's MacroVector method (CVSS v4.0 Specification
//! Document, section 8.2 "CVSS v4.0 Scoring"), as FIRST's reference calculator computes it
//! (`cvss_score.js`, `macroVector`): the vector's MacroVector (EQ1…EQ6) gives a score from
//! the lookup table, lowered by the vector's mean proportional severity distance from the
//! MacroVector's highest-severity vectors.
//!
//! The tables below (MacroVector scores, highest-severity vectors, maximal severity
//! distances) are data from FIRST's calculator, github.com/FIRSTdotorg/cvss-v4-calculator
//! at c5b0d409 (2024-08-19), under its licence:
//!
//! Copyright (c) 2023 FIRST.ORG, Inc., Red Hat, and contributors. Redistribution and use
//! in source and binary forms, with or without modification, are permitted provided that
//! the following conditions are met: 1. Redistributions of source code must retain the
//! above copyright notice, this list of conditions and the following disclaimer.
//! 2. Redistributions in binary form must reproduce the above copyright notice, this list
//! of conditions and the following disclaimer in the documentation and/or other materials
//! provided with the distribution. THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND
//! CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED
//! TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
//! DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY
//! DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING,
//! BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR
//! PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY,
//! WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
//! ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY
//! OF SUCH DAMAGE.

use std::collections::BTreeMap;

/// The value of `metric` for scoring: `E:X` is `E:A`, `CR/IR/AR:X` are `H`, and a modified
/// metric (`MAV`…) other than `X` replaces its base metric.
fn m<'a>(sel: &BTreeMap<&'a str, &'a str>, metric: &str) -> &'a str {
    let selected = sel.get(metric).copied().unwrap_or("X");
    match (metric, selected) {
        ("E", "X") => return "A",
        ("CR" | "IR" | "AR", "X") => return "H",
        _ => {}
    }
    if let Some(modified) = sel.get(format!("M{metric}").as_str())
        && *modified != "X"
    {
        return modified;
    }
    selected
}

fn macro_vector(sel: &BTreeMap<&str, &str>) -> [u8; 6] {
    let is = |k: &str, v: &str| m(sel, k) == v;
    let eq1 = if is("AV", "N") && is("PR", "N") && is("UI", "N") {
        0
    } else if (is("AV", "N") || is("PR", "N") || is("UI", "N")) && !is("AV", "P") {
        1
    } else {
        2
    };
    let eq2 = if is("AC", "L") && is("AT", "N") { 0 } else { 1 };
    let eq3 = if is("VC", "H") && is("VI", "H") {
        0
    } else if is("VC", "H") || is("VI", "H") || is("VA", "H") {
        1
    } else {
        2
    };
    let eq4 = if is("MSI", "S") || is("MSA", "S") {
        0
    } else if is("SC", "H") || is("SI", "H") || is("SA", "H") {
        1
    } else {
        2
    };
    let eq5 = match m(sel, "E") {
        "P" => 1,
        "U" => 2,
        _ => 0,
    };
    let eq6 = if (is("CR", "H") && is("VC", "H"))
        || (is("IR", "H") && is("VI", "H"))
        || (is("AR", "H") && is("VA", "H"))
    {
        0
    } else {
        1
    };
    [eq1, eq2, eq3, eq4, eq5, eq6]
}

fn lookup(eq: [u8; 6]) -> Option<f64> {
    let key: String = eq.iter().map(|d| char::from(b'0' + d.min(&9))).collect();
    LOOKUP
        .binary_search_by(|(k, _)| (*k).cmp(key.as_str()))
        .ok()
        .map(|i| LOOKUP[i].1)
}

fn level(metric: &str, value: &str) -> f64 {
    match (metric, value) {
        ("AV", "N") | ("PR", "N") | ("UI", "N") | ("AC", "L") | ("AT", "N") => 0.0,
        ("AV", "A") | ("PR", "L") | ("UI", "P") | ("AC", "H") | ("AT", "P") => 0.1,
        ("AV", "L") | ("PR", "H") | ("UI", "A") => 0.2,
        ("AV", "P") => 0.3,
        ("VC" | "VI" | "VA" | "CR" | "IR" | "AR", "H") => 0.0,
        ("VC" | "VI" | "VA", "L") | ("CR" | "IR" | "AR", "M") => 0.1,
        ("VC" | "VI" | "VA", "N") | ("CR" | "IR" | "AR", "L") => 0.2,
        ("SI" | "SA", "S") => 0.0,
        ("SC" | "SI" | "SA", "H") => 0.1,
        ("SC" | "SI" | "SA", "L") => 0.2,
        ("SC" | "SI" | "SA", "N") => 0.3,
        _ => 0.0,
    }
}

/// The highest-severity vectors of each EQ level (`maxComposed`).
fn eq_maxes(eq: usize, level: u8, eq6: u8) -> &'static [&'static str] {
    match (eq, level, eq6) {
        (1, 0, _) => &["AV:N/PR:N/UI:N"],
        (1, 1, _) => &["AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"],
        (1, 2, _) => &["AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"],
        (2, 0, _) => &["AC:L/AT:N"],
        (2, 1, _) => &["AC:H/AT:N", "AC:L/AT:P"],
        (3, 0, 0) => &["VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"],
        (3, 0, 1) => &[
            "VC:H/VI:H/VA:L/CR:M/IR:M/AR:H",
            "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M",
        ],
        (3, 1, 0) => &[
            "VC:L/VI:H/VA:H/CR:H/IR:H/AR:H",
            "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H",
        ],
        (3, 1, 1) => &[
            "VC:L/VI:H/VA:L/CR:H/IR:M/AR:H",
            "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M",
            "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
            "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H",
            "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M",
        ],
        (3, 2, 1) => &["VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"],
        (4, 0, _) => &["SC:H/SI:S/SA:S"],
        (4, 1, _) => &["SC:H/SI:H/SA:H"],
        (4, 2, _) => &["SC:L/SI:L/SA:L"],
        _ => &[],
    }
}

/// Maximal severity distances of each EQ level, plus one (`maxSeverity`).
fn max_severity(eq: usize, level: u8, eq6: u8) -> f64 {
    match (eq, level, eq6) {
        (1, 0, _) => 1.0,
        (1, 1, _) => 4.0,
        (1, 2, _) => 5.0,
        (2, 0, _) => 1.0,
        (2, 1, _) => 2.0,
        (3, 0, 0) => 7.0,
        (3, 0, 1) => 6.0,
        (3, 1, _) => 8.0,
        (3, 2, _) => 10.0,
        (4, 0, _) => 6.0,
        (4, 1, _) => 5.0,
        (4, 2, _) => 4.0,
        _ => f64::NAN,
    }
}

const DISTANCE_METRICS: [&str; 14] = [
    "AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR",
];

/// The score of a parsed, validated v4 vector's metrics.
pub(super) fn score(sel: &BTreeMap<&str, &str>) -> f64 {
    if ["VC", "VI", "VA", "SC", "SI", "SA"]
        .iter()
        .all(|k| m(sel, k) == "N")
    {
        return 0.0;
    }
    let mv = macro_vector(sel);
    let Some(value) = lookup(mv) else {
        return 0.0;
    };
    let [eq1, eq2, eq3, eq4, eq5, eq6] = mv;
    let with = |i: usize, d: u8| {
        let mut v = mv;
        v[i] += d;
        v
    };
    let lower_eq1 = lookup(with(0, 1));
    let lower_eq2 = lookup(with(1, 1));
    let lower_eq3eq6 = match (eq3, eq6) {
        (1, 1) | (0, 1) => lookup(with(2, 1)),
        (1, 0) => lookup(with(5, 1)),
        (0, 0) => {
            let left = lookup(with(5, 1));
            let right = lookup(with(2, 1));
            match (left, right) {
                (Some(l), Some(r)) if l > r => Some(l),
                _ => right,
            }
        }
        _ => {
            let mut v = with(2, 1);
            v[5] += 1;
            lookup(v)
        }
    };
    let lower_eq4 = lookup(with(3, 1));
    let lower_eq5 = lookup(with(4, 1));

    // the first highest-severity vector the vector is at or below in every metric
    let mut distances = [0.0f64; 14];
    'search: for a in eq_maxes(1, eq1, eq6) {
        for b in eq_maxes(2, eq2, eq6) {
            for c in eq_maxes(3, eq3, eq6) {
                for d in eq_maxes(4, eq4, eq6) {
                    let max: BTreeMap<&str, &str> = [*a, *b, *c, *d]
                        .iter()
                        .flat_map(|s| s.split('/'))
                        .filter_map(|p| p.split_once(':'))
                        .collect();
                    for (i, k) in DISTANCE_METRICS.iter().enumerate() {
                        distances[i] =
                            level(k, m(sel, k)) - level(k, max.get(k).copied().unwrap_or("X"));
                    }
                    if distances.iter().all(|d| *d >= 0.0) {
                        break 'search;
                    }
                }
            }
        }
    }
    let [av, pr, ui, ac, at, vc, vi, va, sc, si, sa, cr, ir, ar] = distances;
    let current_eq1 = av + pr + ui;
    let current_eq2 = ac + at;
    let current_eq3eq6 = vc + vi + va + cr + ir + ar;
    let current_eq4 = sc + si + sa;
    let step = 0.1;
    let mut n = 0u32;
    let mut sum = 0.0;
    for (lower, current, max) in [
        (lower_eq1, current_eq1, max_severity(1, eq1, eq6) * step),
        (lower_eq2, current_eq2, max_severity(2, eq2, eq6) * step),
        (
            lower_eq3eq6,
            current_eq3eq6,
            max_severity(3, eq3, eq6) * step,
        ),
        (lower_eq4, current_eq4, max_severity(4, eq4, eq6) * step),
    ] {
        if let Some(lower) = lower {
            n += 1;
            sum += (value - lower) * (current / max);
        }
    }
    if lower_eq5.is_some() {
        // EQ5's proportion is always 0
        n += 1;
        let _ = eq5;
    }
    let mean = if n == 0 { 0.0 } else { sum / f64::from(n) };
    let v = (value - mean).clamp(0.0, 10.0);
    // one decimal, half up, after a nudge of 1e-6 past floating-point error: 8.55 computed
    // as 8.5499999… is 8.6 (FIRST's later cvss40.js and Red Hat's calculators do the same;
    // the 2024-08 `Math.round(value * 10) / 10` gave 8.5)
    ((v + 1e-6) * 10.0).round() / 10.0
}

/// `(macro vector, score)`, sorted by macro vector.
pub(super) static LOOKUP: [(&str, f64); 270] = [
    ("000000", 10.0),
    ("000001", 9.9),
    ("000010", 9.8),
    ("000011", 9.5),
    ("000020", 9.5),
    ("000021", 9.2),
    ("000100", 10.0),
    ("000101", 9.6),
    ("000110", 9.3),
    ("000111", 8.7),
    ("000120", 9.1),
    ("000121", 8.1),
    ("000200", 9.3),
    ("000201", 9.0),
    ("000210", 8.9),
    ("000211", 8.0),
    ("000220", 8.1),
    ("000221", 6.8),
    ("001000", 9.8),
    ("001001", 9.5),
    ("001010", 9.5),
    ("001011", 9.2),
    ("001020", 9.0),
    ("001021", 8.4),
    ("001100", 9.3),
    ("001101", 9.2),
    ("001110", 8.9),
    ("001111", 8.1),
    ("001120", 8.1),
    ("001121", 6.5),
    ("001200", 8.8),
    ("001201", 8.0),
    ("001210", 7.8),
    ("001211", 7.0),
    ("001220", 6.9),
    ("001221", 4.8),
    ("002001", 9.2),
    ("002011", 8.2),
    ("002021", 7.2),
    ("002101", 7.9),
    ("002111", 6.9),
    ("002121", 5.0),
    ("002201", 6.9),
    ("002211", 5.5),
    ("002221", 2.7),
    ("010000", 9.9),
    ("010001", 9.7),
    ("010010", 9.5),
    ("010011", 9.2),
    ("010020", 9.2),
    ("010021", 8.5),
    ("010100", 9.5),
    ("010101", 9.1),
    ("010110", 9.0),
    ("010111", 8.3),
    ("010120", 8.4),
    ("010121", 7.1),
    ("010200", 9.2),
    ("010201", 8.1),
    ("010210", 8.2),
    ("010211", 7.1),
    ("010220", 7.2),
    ("010221", 5.3),
    ("011000", 9.5),
    ("011001", 9.3),
    ("011010", 9.2),
    ("011011", 8.5),
    ("011020", 8.5),
    ("011021", 7.3),
    ("011100", 9.2),
    ("011101", 8.2),
    ("011110", 8.0),
    ("011111", 7.2),
    ("011120", 7.0),
    ("011121", 5.9),
    ("011200", 8.4),
    ("011201", 7.0),
    ("011210", 7.1),
    ("011211", 5.2),
    ("011220", 5.0),
    ("011221", 3.0),
    ("012001", 8.6),
    ("012011", 7.5),
    ("012021", 5.2),
    ("012101", 7.1),
    ("012111", 5.2),
    ("012121", 2.9),
    ("012201", 6.3),
    ("012211", 2.9),
    ("012221", 1.7),
    ("100000", 9.8),
    ("100001", 9.5),
    ("100010", 9.4),
    ("100011", 8.7),
    ("100020", 9.1),
    ("100021", 8.1),
    ("100100", 9.4),
    ("100101", 8.9),
    ("100110", 8.6),
    ("100111", 7.4),
    ("100120", 7.7),
    ("100121", 6.4),
    ("100200", 8.7),
    ("100201", 7.5),
    ("100210", 7.4),
    ("100211", 6.3),
    ("100220", 6.3),
    ("100221", 4.9),
    ("101000", 9.4),
    ("101001", 8.9),
    ("101010", 8.8),
    ("101011", 7.7),
    ("101020", 7.6),
    ("101021", 6.7),
    ("101100", 8.6),
    ("101101", 7.6),
    ("101110", 7.4),
    ("101111", 5.8),
    ("101120", 5.9),
    ("101121", 5.0),
    ("101200", 7.2),
    ("101201", 5.7),
    ("101210", 5.7),
    ("101211", 5.2),
    ("101220", 5.2),
    ("101221", 2.5),
    ("102001", 8.3),
    ("102011", 7.0),
    ("102021", 5.4),
    ("102101", 6.5),
    ("102111", 5.8),
    ("102121", 2.6),
    ("102201", 5.3),
    ("102211", 2.1),
    ("102221", 1.3),
    ("110000", 9.5),
    ("110001", 9.0),
    ("110010", 8.8),
    ("110011", 7.6),
    ("110020", 7.6),
    ("110021", 7.0),
    ("110100", 9.0),
    ("110101", 7.7),
    ("110110", 7.5),
    ("110111", 6.2),
    ("110120", 6.1),
    ("110121", 5.3),
    ("110200", 7.7),
    ("110201", 6.6),
    ("110210", 6.8),
    ("110211", 5.9),
    ("110220", 5.2),
    ("110221", 3.0),
    ("111000", 8.9),
    ("111001", 7.8),
    ("111010", 7.6),
    ("111011", 6.7),
    ("111020", 6.2),
    ("111021", 5.8),
    ("111100", 7.4),
    ("111101", 5.9),
    ("111110", 5.7),
    ("111111", 5.7),
    ("111120", 4.7),
    ("111121", 2.3),
    ("111200", 6.1),
    ("111201", 5.2),
    ("111210", 5.7),
    ("111211", 2.9),
    ("111220", 2.4),
    ("111221", 1.6),
    ("112001", 7.1),
    ("112011", 5.9),
    ("112021", 3.0),
    ("112101", 5.8),
    ("112111", 2.6),
    ("112121", 1.5),
    ("112201", 2.3),
    ("112211", 1.3),
    ("112221", 0.6),
    ("200000", 9.3),
    ("200001", 8.7),
    ("200010", 8.6),
    ("200011", 7.2),
    ("200020", 7.5),
    ("200021", 5.8),
    ("200100", 8.6),
    ("200101", 7.4),
    ("200110", 7.4),
    ("200111", 6.1),
    ("200120", 5.6),
    ("200121", 3.4),
    ("200200", 7.0),
    ("200201", 5.4),
    ("200210", 5.2),
    ("200211", 4.0),
    ("200220", 4.0),
    ("200221", 2.2),
    ("201000", 8.5),
    ("201001", 7.5),
    ("201010", 7.4),
    ("201011", 5.5),
    ("201020", 6.2),
    ("201021", 5.1),
    ("201100", 7.2),
    ("201101", 5.7),
    ("201110", 5.5),
    ("201111", 4.1),
    ("201120", 4.6),
    ("201121", 1.9),
    ("201200", 5.3),
    ("201201", 3.6),
    ("201210", 3.4),
    ("201211", 1.9),
    ("201220", 1.9),
    ("201221", 0.8),
    ("202001", 6.4),
    ("202011", 5.1),
    ("202021", 2.0),
    ("202101", 4.7),
    ("202111", 2.1),
    ("202121", 1.1),
    ("202201", 2.4),
    ("202211", 0.9),
    ("202221", 0.4),
    ("210000", 8.8),
    ("210001", 7.5),
    ("210010", 7.3),
    ("210011", 5.3),
    ("210020", 6.0),
    ("210021", 5.0),
    ("210100", 7.3),
    ("210101", 5.5),
    ("210110", 5.9),
    ("210111", 4.0),
    ("210120", 4.1),
    ("210121", 2.0),
    ("210200", 5.4),
    ("210201", 4.3),
    ("210210", 4.5),
    ("210211", 2.2),
    ("210220", 2.0),
    ("210221", 1.1),
    ("211000", 7.5),
    ("211001", 5.5),
    ("211010", 5.8),
    ("211011", 4.5),
    ("211020", 4.0),
    ("211021", 2.1),
    ("211100", 6.1),
    ("211101", 5.1),
    ("211110", 4.8),
    ("211111", 1.8),
    ("211120", 2.0),
    ("211121", 0.9),
    ("211200", 4.6),
    ("211201", 1.8),
    ("211210", 1.7),
    ("211211", 0.7),
    ("211220", 0.8),
    ("211221", 0.2),
    ("212001", 5.3),
    ("212011", 2.4),
    ("212021", 1.4),
    ("212101", 2.4),
    ("212111", 1.2),
    ("212121", 0.5),
    ("212201", 1.0),
    ("212211", 0.3),
    ("212221", 0.1),
];
