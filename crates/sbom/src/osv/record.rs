//! OSV records (<https://ossf.github.io/osv-schema/>), read field by field so that a refusal
//! names the file and the field (`affected[0].ranges[1].events[2]`).

use serde_json::{Map, Value};

use berth_oci::timefmt;

/// A record berth refused: which file, which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed OSV record {file}: field `{field}`: {problem}")]
pub struct RecordError {
    /// The file the record came from (`Debian/all.zip!DSA-5532-1.json`, or a path).
    pub file: String,
    /// The JSON path of the offending field (`affected[0].package.ecosystem`; `.` for the
    /// document itself).
    pub field: String,
    pub problem: String,
}

/// One OSV vulnerability record: what berth keeps of it for matching and reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// RFC 3339 (UTC, `Z`), as the schema requires.
    pub modified: String,
    pub published: Option<String>,
    /// Set when the record was withdrawn: a scan ignores it.
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability (`CVE-2023-5678`).
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    pub severity: Vec<Severity>,
    pub affected: Vec<Affected>,
    pub database_specific: Option<Value>,
}

/// `severity[]` (top-level or per `affected[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Severity {
    pub kind: SeverityType,
    /// A CVSS vector (`CVSS:3.1/AV:N/…`) or, for `Ubuntu`, a priority (`medium`).
    pub score: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeverityType {
    CvssV2,
    CvssV3,
    CvssV4,
    /// Ubuntu's priority (`negligible`, `low`, `medium`, `high`, `critical`).
    Ubuntu,
    /// A type the schema added after this reader was written: kept, not scored.
    Other(String),
}

impl SeverityType {
    /// The type a `severity[].type` names.
    pub fn from_name(name: &str) -> SeverityType {
        match name {
            "CVSS_V2" => SeverityType::CvssV2,
            "CVSS_V3" => SeverityType::CvssV3,
            "CVSS_V4" => SeverityType::CvssV4,
            "Ubuntu" => SeverityType::Ubuntu,
            other => SeverityType::Other(other.to_owned()),
        }
    }
}

/// One `affected[]` entry: a package and the versions of it the vulnerability is in.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    /// Absent in records that describe only a git range of a project without a package.
    pub package: Option<AffectedPackage>,
    pub severity: Vec<Severity>,
    pub ranges: Vec<Range>,
    pub versions: Vec<String>,
    pub ecosystem_specific: Option<Value>,
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedPackage {
    /// With its release suffix, as written (`Debian:12`, `Alpine:v3.19`, `PyPI`).
    pub ecosystem: String,
    pub name: String,
    pub purl: Option<String>,
}

impl AffectedPackage {
    /// The ecosystem without its `:release` suffix (`Debian`).
    pub fn ecosystem_base(&self) -> &str {
        ecosystem_base(&self.ecosystem)
    }

    /// The release suffix (`12` of `Debian:12`, `v3.19` of `Alpine:v3.19`), if any.
    pub fn ecosystem_release(&self) -> Option<&str> {
        ecosystem_release(&self.ecosystem)
    }
}

/// The ecosystem name without a `:release` suffix.
pub fn ecosystem_base(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// The release suffix of an ecosystem (`12` of `Debian:12`), if any.
pub fn ecosystem_release(ecosystem: &str) -> Option<&str> {
    if ecosystem.starts_with("Maven:") || ecosystem.starts_with("Packagist:") {
        // a repository URL, not a release
        return None;
    }
    ecosystem.split_once(':').map(|(_, r)| r)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeType {
    /// Semantic Versioning 2.0 order.
    Semver,
    /// The ecosystem's own version order.
    Ecosystem,
    /// Commits of a git repository: not evaluated against installed versions (a record's
    /// `versions[]` lists the tags they cover).
    Git,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub kind: RangeType,
    pub repo: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }

    /// Which of the four events this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Introduced(_) => EventKind::Introduced,
            Event::Fixed(_) => EventKind::Fixed,
            Event::LastAffected(_) => EventKind::LastAffected,
            Event::Limit(_) => EventKind::Limit,
        }
    }
}

/// An [`Event`]'s kind, without its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Introduced,
    Fixed,
    LastAffected,
    Limit,
}

/// Largest record accepted (the biggest osv.dev records, Linux kernel ones with thousands of
/// versions, are a few MiB).
pub const MAX_RECORD_BYTES: usize = 32 << 20;

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> RecordError {
        RecordError {
            file: self.file.to_owned(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    fn object<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>, RecordError> {
        v.as_object()
            .ok_or_else(|| self.err(field, format!("expected an object, found {}", kind(v))))
    }

    fn opt_str(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, RecordError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                join(path, key),
                format!("expected a string, found {}", kind(v)),
            )),
        }
    }

    fn req_str(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<String, RecordError> {
        match self.opt_str(o, key, path)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.err(join(path, key), "must not be empty")),
            None => Err(self.err(join(path, key), "required field is missing")),
        }
    }

    fn time(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, RecordError> {
        let Some(s) = self.opt_str(o, key, path)? else {
            return Ok(None);
        };
        if timefmt::parse_rfc3339(&s).is_none() {
            return Err(self.err(
                join(path, key),
                format!("`{s}` is not an RFC 3339 UTC time (2024-01-31T12:00:00Z)"),
            ));
        }
        Ok(Some(s))
    }

    fn str_list(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Vec<String>, RecordError> {
        let field = join(path, key);
        match o.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        self.err(
                            format!("{field}[{i}]"),
                            format!("expected a string, found {}", kind(v)),
                        )
                    })
                })
                .collect(),
            Some(v) => Err(self.err(field, format!("expected an array, found {}", kind(v)))),
        }
    }

    fn array<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<&'v [Value], RecordError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.err(
                join(path, key),
                format!("expected an array, found {}", kind(v)),
            )),
        }
    }

    fn opt_object(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<Value>, RecordError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(v) => Err(self.err(
                join(path, key),
                format!("expected an object, found {}", kind(v)),
            )),
        }
    }

    fn severities(&self, o: &Map<String, Value>, path: &str) -> Result<Vec<Severity>, RecordError> {
        let base = join(path, "severity");
        let mut out = Vec::new();
        for (i, s) in self.array(o, "severity", path)?.iter().enumerate() {
            let p = format!("{base}[{i}]");
            let so = self.object(s, &p)?;
            let ty = self.req_str(so, "type", &p)?;
            let score = self.req_str(so, "score", &p)?;
            out.push(Severity {
                kind: SeverityType::from_name(&ty),
                score,
            });
        }
        Ok(out)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Record {
    /// Parse one record; `file` names where it came from, for the error.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Record, RecordError> {
        let cx = Ctx { file };
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(cx.err(
                ".",
                format!(
                    "{} bytes is larger than the {MAX_RECORD_BYTES}-byte limit",
                    bytes.len()
                ),
            ));
        }
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| cx.err(".", format!("not JSON: {e}")))?;
        Record::from_value(&doc, file)
    }

    /// Read a record from parsed JSON.
    pub fn from_value(doc: &Value, file: &str) -> Result<Record, RecordError> {
        let cx = Ctx { file };
        let o = cx.object(doc, ".")?;
        let id = cx.req_str(o, "id", "")?;
        let modified = cx
            .time(o, "modified", "")?
            .ok_or_else(|| cx.err("modified", "required field is missing"))?;
        let mut affected = Vec::new();
        for (i, a) in cx.array(o, "affected", "")?.iter().enumerate() {
            affected.push(parse_affected(&cx, a, &format!("affected[{i}]"))?);
        }
        Ok(Record {
            id,
            modified,
            published: cx.time(o, "published", "")?,
            withdrawn: cx.time(o, "withdrawn", "")?,
            aliases: cx.str_list(o, "aliases", "")?,
            summary: cx.opt_str(o, "summary", "")?,
            details: cx.opt_str(o, "details", "")?,
            severity: cx.severities(o, "")?,
            affected,
            database_specific: cx.opt_object(o, "database_specific", "")?,
        })
    }
}

fn parse_affected(cx: &Ctx<'_>, a: &Value, path: &str) -> Result<Affected, RecordError> {
    let o = cx.object(a, path)?;
    let package = match o.get("package") {
        None | Some(Value::Null) => None,
        Some(p) => {
            let pp = join(path, "package");
            let po = cx.object(p, &pp)?;
            Some(AffectedPackage {
                ecosystem: cx.req_str(po, "ecosystem", &pp)?,
                name: cx.req_str(po, "name", &pp)?,
                purl: cx.opt_str(po, "purl", &pp)?,
            })
        }
    };
    let mut ranges = Vec::new();
    for (i, r) in cx.array(o, "ranges", path)?.iter().enumerate() {
        ranges.push(parse_range(cx, r, &format!("{path}.ranges[{i}]"))?);
    }
    Ok(Affected {
        package,
        severity: cx.severities(o, path)?,
        ranges,
        versions: cx.str_list(o, "versions", path)?,
        ecosystem_specific: cx.opt_object(o, "ecosystem_specific", path)?,
        database_specific: cx.opt_object(o, "database_specific", path)?,
    })
}

fn parse_range(cx: &Ctx<'_>, r: &Value, path: &str) -> Result<Range, RecordError> {
    let o = cx.object(r, path)?;
    let ty = cx.req_str(o, "type", path)?;
    let kind = match ty.as_str() {
        "SEMVER" => RangeType::Semver,
        "ECOSYSTEM" => RangeType::Ecosystem,
        "GIT" => RangeType::Git,
        other => {
            return Err(cx.err(
                join(path, "type"),
                format!("`{other}` is not a range type (SEMVER, ECOSYSTEM or GIT)"),
            ));
        }
    };
    let repo = cx.opt_str(o, "repo", path)?;
    if kind == RangeType::Git && repo.is_none() {
        return Err(cx.err(join(path, "repo"), "a GIT range needs its repository"));
    }
    let mut events = Vec::new();
    for (i, e) in cx.array(o, "events", path)?.iter().enumerate() {
        let p = format!("{path}.events[{i}]");
        let eo = cx.object(e, &p)?;
        let mut found = None;
        for key in ["introduced", "fixed", "last_affected", "limit"] {
            if let Some(v) = cx.opt_str(eo, key, &p)? {
                if found.is_some() {
                    return Err(cx.err(
                        &p,
                        "an event has exactly one of introduced, fixed, last_affected, limit",
                    ));
                }
                if v.is_empty() {
                    return Err(cx.err(join(&p, key), "must not be empty"));
                }
                found = Some(match key {
                    "introduced" => Event::Introduced(v),
                    "fixed" => Event::Fixed(v),
                    "last_affected" => Event::LastAffected(v),
                    _ => Event::Limit(v),
                });
            }
        }
        match found {
            Some(ev) => events.push(ev),
            None => {
                return Err(cx.err(
                    &p,
                    "an event needs one of introduced, fixed, last_affected, limit",
                ));
            }
        }
    }
    if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return Err(cx.err(
            join(path, "events"),
            "a range needs at least one `introduced` event",
        ));
    }
    Ok(Range { kind, repo, events })
}
