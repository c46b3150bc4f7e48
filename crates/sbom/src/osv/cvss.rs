//! CVSS base scores from vector strings: v3.0 and v3.1 (FIRST, "CVSS v3.1 Specification
//! Document", section 7.1 and Appendix A's Roundup; v3.0 rounds up to one decimal), and v2
//! (FIRST, "A Complete Guide to the CVSS Version 2.0", section 3.2.1). Temporal and
//! environmental metrics in a vector are accepted and ignored: reports show base scores,
//! as NVD does.
//!
//! CVSS v4.0 (FIRST, "CVSS v4.0 Specification Document", section 8.2): the MacroVector
//! lookup and interpolation of FIRST's reference calculator, in `cvss4.rs`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CVSS vector `{vector}`: {problem}")]
pub struct CvssError {
    pub vector: String,
    pub problem: String,
}

fn metrics<'a>(
    vector: &'a str,
    parts: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<&'a str, &'a str>, CvssError> {
    let mut m = BTreeMap::new();
    for part in parts {
        let (k, v) = part.split_once(':').ok_or_else(|| CvssError {
            vector: vector.to_owned(),
            problem: format!("`{part}` is not METRIC:VALUE"),
        })?;
        if m.insert(k, v).is_some() {
            return Err(CvssError {
                vector: vector.to_owned(),
                problem: format!("metric {k} appears twice"),
            });
        }
    }
    Ok(m)
}

fn pick(
    vector: &str,
    m: &BTreeMap<&str, &str>,
    key: &str,
    table: &[(&str, f64)],
) -> Result<f64, CvssError> {
    let v = m.get(key).ok_or_else(|| CvssError {
        vector: vector.to_owned(),
        problem: format!("base metric {key} is missing"),
    })?;
    table
        .iter()
        .find(|(name, _)| name == v)
        .map(|(_, w)| *w)
        .ok_or_else(|| CvssError {
            vector: vector.to_owned(),
            problem: format!("{key}:{v} is not a value of {key}"),
        })
}

/// CVSS v3.1 Appendix A: the smallest number with one decimal that is ≥ the input, computed
/// on integers to avoid floating-point surprises.
fn roundup_31(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        ((i / 10_000) + 1) as f64 / 10.0
    }
}

/// CVSS v3.0's Roundup: ceiling to one decimal.
fn roundup_30(x: f64) -> f64 {
    (x * 10.0).ceil() / 10.0
}

/// The base score of a `CVSS:3.0/…` or `CVSS:3.1/…` vector.
pub fn v3_base_score(vector: &str) -> Result<f64, CvssError> {
    let mut parts = vector.split('/');
    let version = match parts.next() {
        Some("CVSS:3.1") => 31,
        Some("CVSS:3.0") => 30,
        _ => {
            return Err(CvssError {
                vector: vector.to_owned(),
                problem: "does not start with CVSS:3.0/ or CVSS:3.1/".into(),
            });
        }
    };
    let m = metrics(vector, parts)?;
    let scope_changed = match m.get("S") {
        Some(&"U") => false,
        Some(&"C") => true,
        _ => {
            return Err(CvssError {
                vector: vector.to_owned(),
                problem: "S (scope) must be U or C".into(),
            });
        }
    };
    let av = pick(
        vector,
        &m,
        "AV",
        &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)],
    )?;
    let ac = pick(vector, &m, "AC", &[("L", 0.77), ("H", 0.44)])?;
    let pr = if scope_changed {
        pick(vector, &m, "PR", &[("N", 0.85), ("L", 0.68), ("H", 0.5)])?
    } else {
        pick(vector, &m, "PR", &[("N", 0.85), ("L", 0.62), ("H", 0.27)])?
    };
    let ui = pick(vector, &m, "UI", &[("N", 0.85), ("R", 0.62)])?;
    let cia = [("H", 0.56), ("L", 0.22), ("N", 0.0)];
    let c = pick(vector, &m, "C", &cia)?;
    let i = pick(vector, &m, "I", &cia)?;
    let a = pick(vector, &m, "A", &cia)?;
    let iss = 1.0 - ((1.0 - c) * (1.0 - i) * (1.0 - a));
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Ok(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Ok(if version == 31 {
        roundup_31(raw)
    } else {
        roundup_30(raw)
    })
}

/// The base score of a CVSS v2 vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`, optionally prefixed
/// `(`…`)` or `CVSS:2.0/`).
pub fn v2_base_score(vector: &str) -> Result<f64, CvssError> {
    let body = vector.trim_start_matches('(').trim_end_matches(')');
    let body = body.strip_prefix("CVSS:2.0/").unwrap_or(body);
    let m = metrics(vector, body.split('/'))?;
    let av = pick(vector, &m, "AV", &[("L", 0.395), ("A", 0.646), ("N", 1.0)])?;
    let ac = pick(vector, &m, "AC", &[("H", 0.35), ("M", 0.61), ("L", 0.71)])?;
    let au = pick(vector, &m, "Au", &[("M", 0.45), ("S", 0.56), ("N", 0.704)])?;
    let cia = [("N", 0.0), ("P", 0.275), ("C", 0.660)];
    let c = pick(vector, &m, "C", &cia)?;
    let i = pick(vector, &m, "I", &cia)?;
    let a = pick(vector, &m, "A", &cia)?;
    let impact = 10.41 * (1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a));
    let exploitability = 20.0 * av * ac * au;
    let f = if impact == 0.0 { 0.0 } else { 1.176 };
    let raw = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f;
    // round_to_1_decimal, half away from zero, on a value nudged past float error
    Ok(((raw * 10.0) + 1e-9).round() / 10.0)
}

/// Check that a `CVSS:4.0/…` vector names every base metric with a valid value (and
/// valid values for the threat and environmental metrics it names).
pub fn v4_validate(vector: &str) -> Result<(), CvssError> {
    v4_metrics(vector).map(|_| ())
}

/// The CVSS v4.0 score of a vector (base, with any threat and environmental metrics it
/// carries: CVSS-B, -BT, -BE or -BTE), as FIRST's calculator computes it.
pub fn v4_score(vector: &str) -> Result<f64, CvssError> {
    let m = v4_metrics(vector)?;
    Ok(super::cvss4::score(&m))
}

fn v4_metrics(vector: &str) -> Result<BTreeMap<&str, &str>, CvssError> {
    let mut parts = vector.split('/');
    if parts.next() != Some("CVSS:4.0") {
        return Err(CvssError {
            vector: vector.to_owned(),
            problem: "does not start with CVSS:4.0/".into(),
        });
    }
    let m = metrics(vector, parts)?;
    const IMPACT: &[&str] = &["H", "L", "N"];
    let base: [(&str, &[&str]); 11] = [
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("AT", &["N", "P"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "P", "A"]),
        ("VC", IMPACT),
        ("VI", IMPACT),
        ("VA", IMPACT),
        ("SC", IMPACT),
        ("SI", IMPACT),
        ("SA", IMPACT),
    ];
    let optional: [(&str, &[&str]); 15] = [
        ("E", &["X", "A", "P", "U"]),
        ("CR", &["X", "H", "M", "L"]),
        ("IR", &["X", "H", "M", "L"]),
        ("AR", &["X", "H", "M", "L"]),
        ("MAV", &["X", "N", "A", "L", "P"]),
        ("MAC", &["X", "L", "H"]),
        ("MAT", &["X", "N", "P"]),
        ("MPR", &["X", "N", "L", "H"]),
        ("MUI", &["X", "N", "P", "A"]),
        ("MVC", &["X", "H", "L", "N"]),
        ("MVI", &["X", "H", "L", "N"]),
        ("MVA", &["X", "H", "L", "N"]),
        ("MSC", &["X", "H", "L", "N"]),
        ("MSI", &["X", "S", "H", "L", "N"]),
        ("MSA", &["X", "S", "H", "L", "N"]),
    ];
    let bad = |k: &str, v: &str| CvssError {
        vector: vector.to_owned(),
        problem: format!("{k}:{v} is not a value of {k}"),
    };
    for (k, values) in base {
        match m.get(k) {
            Some(v) if values.contains(v) => {}
            Some(v) => return Err(bad(k, v)),
            None => {
                return Err(CvssError {
                    vector: vector.to_owned(),
                    problem: format!("base metric {k} is missing"),
                });
            }
        }
    }
    for (k, values) in optional {
        if let Some(v) = m.get(k)
            && !values.contains(v)
        {
            return Err(bad(k, v));
        }
    }
    Ok(m)
}
