//! OSV records as a scan reads them back from the database: typed straight from the stored
//! JSON (no `serde_json::Value` tree), borrowing its strings where they have no escapes, and
//! keeping only what matching and reports use.
//!
//! Every record in the database passed [`Record::parse`] when it was imported (required
//! fields, types, one kind per event, an `introduced` per range), so this reader does not
//! repeat those checks with field paths: bytes it cannot read are a corrupt database.
//! What it skips without building anything (serde's `IgnoredAny`): `modified`,
//! `published`, `details`, `references`, `credits`, `affected[].package.purl`, every
//! `*_specific` member but the textual `severity` and `urgency`, and any member the schema
//! adds later.
//!
//! [`Record::parse`]: crate::osv::Record::parse

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

use crate::osv::evaluate::RangeEvent;
use crate::osv::record::{EventKind, RangeType};

/// A string of the stored JSON: borrowed from it unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A member kept only when it is a string (`database_specific.severity` is free-form: a
/// database may write a number or an object there, which says nothing berth reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TextOnly<'a>(pub Option<Text<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for TextOnly<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextOnly<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(Some(Text(Cow::Borrowed(s)))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(Some(Text(Cow::Owned(s.to_owned())))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<TextOnly<'de>, E> {
                Ok(TextOnly(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<TextOnly<'de>, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| TextOnly(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<TextOnly<'de>, A::Error> {
                IgnoredAny.visit_map(map).map(|_| TextOnly(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a record says of itself for matching and reports.
#[derive(Debug, Deserialize)]
pub(crate) struct RecordView<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    /// Only whether it is set (an import leaves withdrawn records out; a scan skips any).
    pub withdrawn: Option<IgnoredAny>,
    #[serde(borrow)]
    pub aliases: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub summary: Option<Text<'a>>,
    #[serde(borrow)]
    pub severity: Option<Vec<SeverityView<'a>>>,
    #[serde(borrow)]
    pub affected: Option<Vec<AffectedView<'a>>>,
    #[serde(borrow)]
    pub database_specific: Option<SeverityText<'a>>,
}

/// `severity[]`: a type and a score (a CVSS vector, or Ubuntu's priority).
#[derive(Debug, Deserialize)]
pub(crate) struct SeverityView<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub score: Text<'a>,
}

/// The textual severities an `*_specific` object may carry.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SeverityText<'a> {
    #[serde(borrow, default)]
    pub severity: TextOnly<'a>,
    #[serde(borrow, default)]
    pub urgency: TextOnly<'a>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AffectedView<'a> {
    #[serde(borrow)]
    pub package: Option<PackageView<'a>>,
    #[serde(borrow)]
    pub severity: Option<Vec<SeverityView<'a>>>,
    #[serde(borrow)]
    pub ranges: Option<Vec<RangeView<'a>>>,
    #[serde(borrow)]
    pub versions: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub ecosystem_specific: Option<SeverityText<'a>>,
    #[serde(borrow)]
    pub database_specific: Option<SeverityText<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PackageView<'a> {
    #[serde(borrow)]
    pub ecosystem: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RangeView<'a> {
    #[serde(rename = "type")]
    pub kind: RangeType,
    #[serde(borrow)]
    pub events: Option<Vec<EventView<'a>>>,
}

/// One event: the import checked that exactly one of the four is set.
#[derive(Debug, Deserialize)]
pub(crate) struct EventView<'a> {
    #[serde(borrow)]
    introduced: Option<Text<'a>>,
    #[serde(borrow)]
    fixed: Option<Text<'a>>,
    #[serde(borrow)]
    last_affected: Option<Text<'a>>,
    #[serde(borrow)]
    limit: Option<Text<'a>>,
}

impl EventView<'_> {
    fn get(&self) -> (EventKind, &str) {
        let found = [
            (EventKind::Introduced, &self.introduced),
            (EventKind::Fixed, &self.fixed),
            (EventKind::LastAffected, &self.last_affected),
            (EventKind::Limit, &self.limit),
        ]
        .into_iter()
        .find_map(|(k, v)| v.as_ref().map(|t| (k, t.as_str())));
        // an event with none set cannot have been imported; as a limit of "" it excludes
        // nothing it should not (every version is above "")
        found.unwrap_or((EventKind::Limit, ""))
    }
}

impl RangeEvent for EventView<'_> {
    fn kind(&self) -> EventKind {
        self.get().0
    }
    fn version(&self) -> &str {
        self.get().1
    }
}

impl<'a> RecordView<'a> {
    /// Read a stored record.
    pub fn parse(bytes: &'a [u8]) -> Result<RecordView<'a>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn affected(&self) -> &[AffectedView<'a>] {
        self.affected.as_deref().unwrap_or_default()
    }
}

impl<'a> AffectedView<'a> {
    pub fn ranges(&self) -> &[RangeView<'a>] {
        self.ranges.as_deref().unwrap_or_default()
    }

    pub fn versions(&self) -> &[Text<'a>] {
        self.versions.as_deref().unwrap_or_default()
    }
}

impl<'a> RangeView<'a> {
    pub fn events(&self) -> &[EventView<'a>] {
        self.events.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_matching_needs_and_borrows_plain_strings() {
        let json = br#"{"id":"DSA-1","modified":"2024-01-01T00:00:00Z","details":"long \"text\"",
            "summary":"a \"quoted\" summary","aliases":["CVE-2024-1"],
            "references":[{"type":"WEB","url":"https://x"}],
            "database_specific":{"severity":["odd"],"urgency":"high"},
            "affected":[{"package":{"ecosystem":"Debian:12","name":"zlib","purl":"pkg:deb/debian/zlib"},
              "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2"}]}],
              "versions":["1.0",null],"ecosystem_specific":{"urgency":7}}]}"#;
        let r = RecordView::parse(json);
        // `versions` with a null entry was refused at import; the view refuses it too
        assert!(r.is_err());
        let json = String::from_utf8_lossy(json).replace(",null]", "]");
        let r = RecordView::parse(json.as_bytes()).unwrap();
        assert!(matches!(r.id.0, Cow::Borrowed("DSA-1")));
        let summary = r.summary.as_ref().unwrap();
        assert!(matches!(summary.0, Cow::Owned(_)));
        assert_eq!(summary.as_str(), r#"a "quoted" summary"#);
        assert!(r.withdrawn.is_none());
        let ds = r.database_specific.as_ref().unwrap();
        assert_eq!(ds.severity, TextOnly(None));
        assert_eq!(ds.urgency.0.as_ref().map(Text::as_str), Some("high"));
        let a = &r.affected()[0];
        let p = a.package.as_ref().unwrap();
        assert_eq!(
            (p.ecosystem.as_str(), p.name.as_str()),
            ("Debian:12", "zlib")
        );
        assert_eq!(
            a.ecosystem_specific.as_ref().unwrap().urgency,
            TextOnly(None)
        );
        let events: Vec<(EventKind, &str)> =
            a.ranges()[0].events().iter().map(|e| e.get()).collect();
        assert_eq!(
            events,
            [(EventKind::Introduced, "0"), (EventKind::Fixed, "1.2")]
        );
        assert_eq!(a.ranges()[0].kind, RangeType::Ecosystem);
        assert_eq!(a.versions()[0].as_str(), "1.0");
    }

    #[test]
    fn nulls_read_as_absent() {
        let r = RecordView::parse(
            br#"{"id":"X","withdrawn":null,"aliases":null,"affected":[{"package":null,"ranges":null,"versions":null}]}"#,
        )
        .unwrap();
        assert!(r.withdrawn.is_none() && r.aliases.is_none());
        assert!(r.affected()[0].package.is_none());
        assert!(r.affected()[0].ranges().is_empty() && r.affected()[0].versions().is_empty());
        let w = RecordView::parse(br#"{"id":"X","withdrawn":"2024-01-01T00:00:00Z"}"#).unwrap();
        assert!(w.withdrawn.is_some());
    }

    /// The view and the whole record give the same verdict for every affected entry at
    /// every version its events and `versions[]` name, and between them.
    #[test]
    fn views_evaluate_as_records_do() {
        use crate::osv::evaluate::evaluate_ranges;
        use crate::osv::{Record, Scheme, evaluate};
        use crate::package::Ecosystem;
        use std::cmp::Ordering;

        fn numeric(_: Scheme, a: &str, b: &str) -> Result<Ordering, std::fmt::Error> {
            let parse = |s: &str| -> Result<Vec<u64>, std::fmt::Error> {
                s.split('.')
                    .map(|p| p.parse::<u64>().map_err(|_| std::fmt::Error))
                    .collect()
            };
            Ok(parse(a)?.cmp(&parse(b)?))
        }
        let json = br#"{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"PyPI","name":"a"},"versions":["0.5","9.9"],"ranges":[
              {"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0"},{"introduced":"2.0"},{"last_affected":"2.5"}]},
              {"type":"SEMVER","events":[{"introduced":"3.0"},{"limit":"4.0"},{"fixed":"3.5"}]},
              {"type":"GIT","repo":"https://x.example/r","events":[{"introduced":"abc"},{"fixed":"def"}]}]},
            {"package":{"ecosystem":"PyPI","name":"a"},"ranges":[
              {"type":"ECOSYSTEM","events":[{"fixed":"7.0"},{"introduced":"6.0"},{"fixed":"6.5"},{"introduced":"5.0"}]}]},
            {"package":{"ecosystem":"PyPI","name":"a"},"ranges":[
              {"type":"ECOSYSTEM","events":[{"introduced":"1.x"},{"fixed":"2.0"}]}]}]}"#;
        let record = Record::parse(json, "x.json").unwrap();
        let view = RecordView::parse(json).unwrap();
        let probes = [
            "0", "0.1", "0.5", "1.0", "1.5", "2.0", "2.2", "2.5", "2.6", "3.0", "3.2", "3.5",
            "3.9", "4.0", "5.0", "6.2", "6.5", "6.9", "7.0", "9.9", "1.x",
        ];
        assert_eq!(record.affected.len(), view.affected().len());
        for (a, v) in record.affected.iter().zip(view.affected()) {
            for p in probes {
                let whole = evaluate(a, Ecosystem::PyPI, p, &numeric);
                let viewed = evaluate_ranges(
                    v.versions().iter().any(|x| x.as_str() == p),
                    v.ranges().iter().map(|r| (r.kind, r.events())),
                    Ecosystem::PyPI,
                    p,
                    &numeric,
                );
                assert_eq!(whole, viewed, "{p}");
            }
        }
        let first = |p| evaluate(&record.affected[0], Ecosystem::PyPI, p, &numeric).unwrap();
        assert!(first("0.5").affected && first("2.2").affected && first("3.2").affected);
        assert!(!first("1.5").affected && !first("2.6").affected && !first("3.9").affected);
        assert_eq!(first("3.2").fixed, ["3.5"]);
    }
}
