//! A finding's severity: from the record's CVSS vectors (scored; v3.x first, as NVD and
//! most databases give it, then v4.0, then v2), else the textual
//! severities databases carry (Ubuntu priorities, GitHub's `database_specific.severity`,
//! Debian's urgency).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::osv::cvss;
use crate::osv::view::{AffectedView, RecordView, SeverityText};

/// Severity levels, lowest first; CVSS v3 qualitative ratings (None 0.0, Low 0.1–3.9, Medium
/// 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0), v2's Low/Medium/High by the same score bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// No score and no textual severity.
    Unknown,
    /// Scored 0.0, or a distribution's "negligible"/"unimportant".
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The CVSS v3 rating of a score.
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Negligible
        }
    }

    /// A textual severity as databases write them; `None` for one that says nothing
    /// (`untriaged`, `not yet assigned`).
    pub fn from_text(text: &str) -> Option<Severity> {
        let t = text.trim().trim_end_matches('*').to_ascii_lowercase();
        Some(match t.as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "unimportant" | "none" => Severity::Negligible,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a severity (one of negligible, low, medium, high, critical, unknown)")]
pub struct SeverityParseError(pub String);

impl FromStr for Severity {
    type Err = SeverityParseError;
    fn from_str(s: &str) -> Result<Severity, SeverityParseError> {
        match s.to_ascii_lowercase().as_str() {
            "unknown" => Ok(Severity::Unknown),
            other => Severity::from_text(other).ok_or_else(|| SeverityParseError(s.to_owned())),
        }
    }
}

/// A finding's severity and what it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingSeverity {
    pub level: Severity,
    /// The CVSS score, when a vector gave one.
    pub score: Option<f64>,
    /// The vector the score came from.
    pub vector: Option<String>,
    /// Where the level came from: `CVSS_V3`, `CVSS_V2`, `CVSS_V4`, `Ubuntu`,
    /// `database_specific.severity`, `urgency`, or `none`.
    pub source: String,
}

/// The severity of a record for the `affected[]` entries that matched.
pub(crate) fn of(rec: &RecordView<'_>, matched: &[&AffectedView<'_>]) -> FindingSeverity {
    let all = rec
        .severity
        .iter()
        .flatten()
        .chain(matched.iter().flat_map(|a| a.severity.iter().flatten()));
    let (mut v3, mut v2, mut v4, mut ubuntu) = (None, None, None, None);
    for s in all {
        let vector = s.score.as_str();
        match s.kind.as_str() {
            "CVSS_V3" if v3.is_none() => {
                if let Ok(score) = cvss::v3_base_score(vector) {
                    v3 = Some((score, vector.to_owned()));
                }
            }
            "CVSS_V2" if v2.is_none() => {
                if let Ok(score) = cvss::v2_base_score(vector) {
                    v2 = Some((score, vector.to_owned()));
                }
            }
            "CVSS_V4" if v4.is_none() => {
                if let Ok(score) = cvss::v4_score(vector) {
                    v4 = Some((score, vector.to_owned()));
                }
            }
            "Ubuntu" if ubuntu.is_none() => ubuntu = Severity::from_text(vector),
            _ => {}
        }
    }
    let scored = |score: f64, vector: String, source: &str| FindingSeverity {
        level: Severity::from_score(score),
        score: Some(score),
        vector: Some(vector),
        source: source.to_owned(),
    };
    if let Some((score, vector)) = v3 {
        return scored(score, vector, "CVSS_V3");
    }
    if let Some((score, vector)) = v4 {
        return scored(score, vector, "CVSS_V4");
    }
    if let Some((score, vector)) = v2 {
        return scored(score, vector, "CVSS_V2");
    }
    // textual severities: Ubuntu's, GitHub's database_specific.severity, Debian's urgency
    let text = ubuntu.map(|l| (l, "Ubuntu")).or_else(|| {
        let places = std::iter::once(rec.database_specific.as_ref()).chain(
            matched
                .iter()
                .flat_map(|a| [a.ecosystem_specific.as_ref(), a.database_specific.as_ref()]),
        );
        let level = |t: &crate::osv::view::TextOnly<'_>| {
            t.0.as_ref().and_then(|t| Severity::from_text(t.as_str()))
        };
        for place in places.flatten() {
            let SeverityText { severity, urgency } = place;
            if let Some(l) = level(severity) {
                return Some((l, "database_specific.severity"));
            }
            if let Some(l) = level(urgency) {
                return Some((l, "urgency"));
            }
        }
        None
    });
    match text {
        Some((level, source)) => FindingSeverity {
            level,
            score: None,
            vector: None,
            source: source.to_owned(),
        },
        None => FindingSeverity {
            level: Severity::Unknown,
            score: None,
            vector: None,
            source: "none".into(),
        },
    }
}
