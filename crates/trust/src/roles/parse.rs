//! Reading a `berth.policy/v1` file: `serde_json` for the shape (unknown fields refused, its
//! line and column kept), then the semantic checks, each located by JSON pointer.

use super::spans::{Position, Spans, token};
use super::{
    NamespacePattern, Policy, Requirement, Role, RoleIdentity, Rule, ScopePattern, Signers, VERSION,
};
use crate::policy::{
    Action, Level, PolicyStatement, TrustedIdentity, VerificationLevel, VerifyTimestamp, parse_dn,
    validate_scope,
};
use crate::truststore::{StoreType, is_valid_store_name};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// One thing wrong with a policy file, where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub position: Position,
    /// The JSON pointer of the offending value (empty for syntax errors).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}; {}",
            self.position.line, self.position.column, self.message, self.hint
        )
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Position", 2)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("column", &self.column)?;
        st.end()
    }
}

/// Why a policy file was refused: every problem found, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PolicyFileError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [] => f.write_str("invalid role policy"),
            [one] => write!(f, "invalid role policy: {one}"),
            [first, rest @ ..] => write!(
                f,
                "invalid role policy: {first} (and {} more problems)",
                rest.len()
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDoc {
    version: String,
    #[serde(default)]
    trust_stores: Vec<String>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRole {
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for the reader of the file")]
    description: Option<String>,
    trusted_identities: Vec<RawIdentity>,
}

/// `"x509.subject: DN"` or `{"identity": "x509.subject: DN", "certificateSha256": "HEX"}`.
struct RawIdentity {
    identity: String,
    certificate_sha256: Option<String>,
}

impl<'de> Deserialize<'de> for RawIdentity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawIdentity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"x509.subject: DN\" or {\"identity\": \"x509.subject: DN\", \"certificateSha256\": \"HEX\"}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawIdentity, E> {
                Ok(RawIdentity {
                    identity: v.to_string(),
                    certificate_sha256: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawIdentity, A::Error> {
                const FIELDS: &[&str] = &["identity", "certificateSha256"];
                let (mut identity, mut pin) = (None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "identity" if identity.is_none() => identity = Some(m.next_value()?),
                        "certificateSha256" if pin.is_none() => pin = Some(m.next_value()?),
                        "identity" | "certificateSha256" => {
                            return Err(de::Error::custom(format!("duplicate field `{k}`")));
                        }
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    }
                }
                Ok(RawIdentity {
                    identity: identity.ok_or_else(|| de::Error::missing_field("identity"))?,
                    certificate_sha256: pin,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    name: String,
    registry_scopes: Vec<String>,
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    namespace_selector: Option<RawSelector>,
    signature_verification: RawVerification,
    #[serde(default)]
    trust_stores: Option<Vec<String>>,
    #[serde(default)]
    requirement: Option<RawRequirement>,
    #[serde(default)]
    require_source: Option<String>,
    #[serde(default)]
    require_sbom: Option<RawSbom>,
    #[serde(default)]
    require_scan: Option<RawScan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSbom {
    signed_by: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawScan {
    signed_by: String,
    max_age_days: u64,
    #[serde(default)]
    fail_on: Option<String>,
}

/// A Kubernetes label selector; only `matchLabels` (`matchExpressions` is refused as an
/// unknown field).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSelector {
    match_labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVerification {
    level: String,
    #[serde(default)]
    r#override: BTreeMap<String, String>,
    verify_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRequirement {
    all_of: Option<Vec<String>>,
    at_least: Option<RawAtLeast>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAtLeast {
    count: u64,
    of: Option<Vec<String>>,
    signers: Option<String>,
}

/// Collects problems against positions.
struct Checker<'a> {
    spans: &'a Spans,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, pointer: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem {
            position: self.spans.at(pointer),
            pointer: pointer.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// serde_json places data errors at the last character of the offending token (a key for
/// `unknown field`, a value for `invalid type`); editors want its first.
fn token_start(bytes: &[u8], at: Position) -> Position {
    let text = String::from_utf8_lossy(bytes);
    let Some(line) = text.lines().nth(at.line - 1) else {
        return at;
    };
    let chars: Vec<char> = line.chars().collect();
    let Some(mut i) = at.column.checked_sub(1).filter(|i| *i < chars.len()) else {
        return at;
    };
    if chars[i] == '"' {
        // back to the opening quote (not one escaped by an odd run of backslashes)
        let mut j = i;
        while j > 0 {
            j -= 1;
            if chars[j] == '"' {
                let slashes = chars[..j].iter().rev().take_while(|c| **c == '\\').count();
                if slashes % 2 == 0 {
                    return Position {
                        line: at.line,
                        column: j + 1,
                    };
                }
            }
        }
        return at;
    }
    let literal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.');
    if !literal(chars[i]) {
        return at;
    }
    while i > 0 && literal(chars[i - 1]) {
        i -= 1;
    }
    Position {
        line: at.line,
        column: i + 1,
    }
}

fn json_hint(e: &serde_json::Error, msg: &str) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => "fix the JSON syntax here".to_string(),
        Category::Io => "the file could not be read".to_string(),
        Category::Data if msg.starts_with("unknown field") => {
            "remove the field or correct its spelling (docs/policy.md lists every field)"
                .to_string()
        }
        Category::Data if msg.starts_with("missing field") => {
            "add the field (docs/policy.md shows a complete example)".to_string()
        }
        Category::Data => "give the value the type docs/policy.md documents".to_string(),
    }
}

impl Policy {
    /// Parses and checks a policy file. Refusals list every problem found, each with its
    /// 1-based line and column, what is wrong and what to do.
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyFileError> {
        let raw: RawDoc = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                let message = json_message(&e);
                let hint = json_hint(&e, &message);
                let mut position = Position {
                    line: e.line().max(1),
                    column: e.column().max(1),
                };
                if e.classify() == serde_json::error::Category::Data {
                    position = token_start(bytes, position);
                }
                return Err(PolicyFileError {
                    problems: vec![Problem {
                        position,
                        pointer: String::new(),
                        message,
                        hint,
                    }],
                });
            }
        };
        // serde_json accepted it, so it is UTF-8
        let text = String::from_utf8_lossy(bytes);
        let spans = Spans::index(&text);
        let mut c = Checker {
            spans: &spans,
            problems: Vec::new(),
        };
        for (pointer, position, key) in &spans.duplicates {
            c.problems.push(Problem {
                position: *position,
                pointer: pointer.clone(),
                message: format!("{key:?} appears twice in the same object"),
                hint: "JSON readers keep only one of them: remove or rename one".to_string(),
            });
        }
        let policy = check(&mut c, raw);
        let mut problems = c.problems;
        if problems.is_empty() {
            return Ok(policy);
        }
        problems.sort_by_key(|p| p.position);
        Err(PolicyFileError { problems })
    }
}

fn check(c: &mut Checker<'_>, raw: RawDoc) -> Policy {
    if raw.version != VERSION {
        let hint = if raw.version == "1.0" {
            format!(
                "this looks like notation's trustpolicy.json (version 1.0); a berth role policy has \"version\": \"{VERSION}\""
            )
        } else {
            format!("set \"version\": \"{VERSION}\"")
        };
        c.err(
            "/version",
            format!("unsupported version {:?}", raw.version),
            hint,
        );
    }
    // trust stores
    for (i, s) in raw.trust_stores.iter().enumerate() {
        let p = format!("/trustStores/{i}");
        if let Err((m, h)) = parse_store(s) {
            c.err(&p, m, h);
        }
        if raw.trust_stores[..i].contains(s) {
            c.err(
                &p,
                format!("trust store {s:?} is declared twice"),
                "remove one",
            );
        }
    }
    // roles, in file order
    let mut names: Vec<&String> = raw.roles.keys().collect();
    names.sort_by_key(|n| c.spans.at(&format!("/roles/{}", token(n))));
    let mut roles = Vec::new();
    for name in names {
        let Some(raw_role) = raw.roles.get(name) else {
            continue;
        };
        let p = format!("/roles/{}", token(name));
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            c.err(
                &p,
                format!("role name {name:?} is not [A-Za-z0-9_.-]+"),
                "rename the role",
            );
        }
        if raw_role.trusted_identities.is_empty() {
            c.err(
                &format!("{p}/trustedIdentities"),
                format!("role {name:?} has no trusted identities"),
                "add at least one \"x509.subject: C=…, ST=…, O=…, CN=…\"",
            );
        }
        let mut identities = Vec::new();
        for (i, id) in raw_role.trusted_identities.iter().enumerate() {
            let ip = format!("{p}/trustedIdentities/{i}");
            if raw_role.trusted_identities[..i]
                .iter()
                .any(|o| o.identity == id.identity && o.certificate_sha256 == id.certificate_sha256)
            {
                c.err(
                    &ip,
                    format!(
                        "identity {:?} is listed twice in role {name:?}",
                        id.identity
                    ),
                    "remove one",
                );
            }
            if let Some(ri) = check_identity(c, &ip, name, id) {
                identities.push(ri);
            }
        }
        roles.push(Role {
            name: name.clone(),
            identities,
        });
    }
    // rules
    if raw.rules.is_empty() {
        c.err(
            "/rules",
            "the policy has no rules",
            "add a rule; with none, every image is denied",
        );
    }
    let mut rules = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let p = format!("/rules/{i}");
        if rules.iter().any(|(_, o): &(usize, Rule)| o.name == r.name) {
            c.err(
                &format!("{p}/name"),
                format!("rule name {:?} is used twice", r.name),
                "give each rule its own name",
            );
        }
        if let Some(rule) = check_rule(c, &p, r, &raw.trust_stores, &roles) {
            rules.push((i, rule));
        }
    }
    check_ambiguity(c, &rules);
    Policy {
        trust_stores: raw.trust_stores,
        roles,
        rules: rules.into_iter().map(|(_, r)| r).collect(),
    }
}

type Hinted = (String, String);

fn parse_store(s: &str) -> Result<(StoreType, String), Hinted> {
    let (ty, n) = s.split_once(':').ok_or_else(|| {
        (
            format!("trust store {s:?} is not TYPE:NAME"),
            "write ca:NAME, signingAuthority:NAME or tsa:NAME".to_string(),
        )
    })?;
    let t = StoreType::parse(ty).ok_or_else(|| {
        (
            format!("trust store {s:?} has unknown type {ty:?}"),
            "the types are ca, signingAuthority and tsa".to_string(),
        )
    })?;
    if !is_valid_store_name(n) {
        return Err((
            format!("trust store name {n:?} is not [A-Za-z0-9_.-]+"),
            "use the name of a directory under truststore/x509/TYPE/".to_string(),
        ));
    }
    Ok((t, n.to_string()))
}

fn check_identity(
    c: &mut Checker<'_>,
    p: &str,
    role: &str,
    id: &RawIdentity,
) -> Option<RoleIdentity> {
    let text = &id.identity;
    // a pointer that lands on the identity text in both forms
    let tp = match id.certificate_sha256 {
        Some(_) => format!("{p}/identity"),
        None => p.to_string(),
    };
    let pin = match &id.certificate_sha256 {
        None => None,
        Some(h) => match parse_sha256(h) {
            Some(d) => Some(d),
            None => {
                c.err(
                    &format!("{p}/certificateSha256"),
                    format!("certificateSha256 {h:?} is not a SHA-256 in hex"),
                    "give 64 hex digits (optionally after \"sha256:\"), e.g. from `openssl x509 -noout -fingerprint -sha256`",
                );
                return None;
            }
        },
    };
    if text.trim() == "*" {
        c.err(
            &tp,
            format!("role {role:?} trusts every identity (\"*\")"),
            "a role is a set of named signers; to count any trusted signer use \"atLeast\": {\"count\": K, \"signers\": \"any-trusted\"}",
        );
        return None;
    }
    let Some((prefix, value)) = text.split_once(':') else {
        c.err(
            &tp,
            format!("identity {text:?} is not \"x509.subject: DN\""),
            "write it as notation does: \"x509.subject: C=US, ST=WA, O=Acme, CN=ci\"",
        );
        return None;
    };
    if prefix.trim() != "x509.subject" {
        c.err(
            &tp,
            format!("identity {text:?} has unsupported type {:?}", prefix.trim()),
            "only x509.subject identities are supported",
        );
        return None;
    }
    let dn = match parse_dn(value) {
        Ok(dn) => dn,
        Err(m) => {
            c.err(
                &tp,
                format!("malformed distinguished name in {text:?}: {m}"),
                "write comma-separated TYPE=value pairs, escaping , ; \\ with a backslash",
            );
            return None;
        }
    };
    for required in ["C", "ST", "O"] {
        if !dn.iter().any(|(k, _)| k == required) {
            c.err(
                &tp,
                format!("identity {text:?} lacks {required}"),
                "notation requires C, ST and O in an x509.subject identity; add them",
            );
            return None;
        }
    }
    Some(RoleIdentity {
        text: text.clone(),
        subject: TrustedIdentity::Subject(dn),
        certificate_sha256: pin,
    })
}

/// 64 hex digits, optionally after `sha256:`, colons between bytes allowed (openssl's form).
pub(crate) fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn check_rule(
    c: &mut Checker<'_>,
    p: &str,
    r: RawRule,
    declared: &[String],
    roles: &[Role],
) -> Option<Rule> {
    let n0 = c.problems.len();
    let name = r.name;
    if name.trim().is_empty() {
        c.err(
            &format!("{p}/name"),
            "a rule has an empty name",
            "name the rule",
        );
    }
    // scopes
    let mut scopes = Vec::new();
    if r.registry_scopes.is_empty() {
        c.err(
            &format!("{p}/registryScopes"),
            format!("rule {name:?} has no registry scopes"),
            "add a scope: \"*\", \"registry/team/*\" or \"registry/team/app\"",
        );
    }
    for (i, s) in r.registry_scopes.iter().enumerate() {
        let sp = format!("{p}/registryScopes/{i}");
        if r.registry_scopes[..i].contains(s) {
            c.err(&sp, format!("scope {s:?} is listed twice"), "remove one");
            continue;
        }
        match parse_scope(s) {
            Ok(pat) => scopes.push(pat),
            Err((m, h)) => c.err(&sp, m, h),
        }
    }
    if scopes.contains(&ScopePattern::Any) && r.registry_scopes.len() > 1 {
        c.err(
            &format!("{p}/registryScopes"),
            "the wildcard scope \"*\" must be the only scope of its rule",
            "\"*\" already covers the others: remove them, or move \"*\" to a rule of its own",
        );
    }
    // namespaces
    let mut namespaces = Vec::new();
    if let Some(list) = &r.namespaces {
        if list.is_empty() {
            c.err(
                &format!("{p}/namespaces"),
                "namespaces is empty",
                "omit \"namespaces\" for a rule that applies everywhere, or list patterns",
            );
        }
        for (i, s) in list.iter().enumerate() {
            let np = format!("{p}/namespaces/{i}");
            if list[..i].contains(s) {
                c.err(
                    &np,
                    format!("namespace {s:?} is listed twice"),
                    "remove one",
                );
                continue;
            }
            match parse_namespace(s) {
                Ok(pat) => namespaces.push(pat),
                Err((m, h)) => c.err(&np, m, h),
            }
        }
        if namespaces.contains(&NamespacePattern::Any) && list.len() > 1 {
            c.err(
                &format!("{p}/namespaces"),
                "the wildcard namespace \"*\" must be the only namespace pattern of its rule",
                "\"*\" already covers the others: remove them",
            );
        }
    }
    // namespace selector
    let mut namespace_selector = BTreeMap::new();
    if let Some(sel) = r.namespace_selector {
        let sp = format!("{p}/namespaceSelector/matchLabels");
        if sel.match_labels.is_empty() {
            c.err(
                &sp,
                "matchLabels is empty",
                "omit \"namespaceSelector\" for a rule that applies whatever the labels, or list labels",
            );
        }
        for (k, v) in &sel.match_labels {
            if let Err(m) = check_label(k, v) {
                c.err(
                    &format!("{sp}/{}", k.replace('~', "~0").replace('/', "~1")),
                    m,
                    "a label is [PREFIX/]NAME: VALUE, as Kubernetes labels (NAME and VALUE up to 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric)",
                );
            }
        }
        namespace_selector = sel.match_labels;
    }
    // verification
    let vp = format!("{p}/signatureVerification");
    let (verification, verify_timestamp) = check_verification(c, &vp, &r.signature_verification);
    let level = verification.map(|v| v.level);
    // trust stores
    let mut trust_stores = Vec::new();
    let stores = r.trust_stores.unwrap_or_default();
    if level == Some(Level::Skip) {
        if !stores.is_empty() {
            c.err(
                &format!("{p}/trustStores"),
                "a skip rule verifies nothing and takes no trust stores",
                "remove trustStores, or choose another level",
            );
        }
    } else if stores.is_empty() {
        c.err(
            &format!("{p}/trustStores"),
            format!("rule {name:?} names no trust store"),
            "add \"trustStores\": [\"ca:NAME\"] naming a store declared at the top level",
        );
    }
    for (i, s) in stores.iter().enumerate() {
        let sp = format!("{p}/trustStores/{i}");
        match parse_store(s) {
            Err((m, h)) => c.err(&sp, m, h),
            Ok(ts) => {
                if !declared.contains(s) {
                    c.err(
                        &sp,
                        format!("undefined trust store {s:?}"),
                        format!(
                            "declare it in the top-level \"trustStores\" (declared: {})",
                            list_or_none(declared.iter())
                        ),
                    );
                } else if stores[..i].contains(s) {
                    c.err(
                        &sp,
                        format!("trust store {s:?} is listed twice"),
                        "remove one",
                    );
                } else {
                    trust_stores.push(ts);
                }
            }
        }
    }
    if !stores.is_empty()
        && stores.iter().all(|s| parse_store(s).is_ok())
        && !stores.iter().any(|s| {
            matches!(
                parse_store(s),
                Ok((StoreType::Ca | StoreType::SigningAuthority, _))
            )
        })
    {
        c.err(
            &format!("{p}/trustStores"),
            "trustStores names no ca or signingAuthority store",
            "a tsa store only verifies timestamps; add the ca or signingAuthority store the signers chain to",
        );
    }
    // requirement
    let rp = format!("{p}/requirement");
    let requirement = match (level, r.requirement) {
        (Some(Level::Skip), Some(_)) => {
            c.err(
                &rp,
                "a skip rule verifies nothing and takes no requirement",
                "remove requirement, or choose strict, permissive or audit",
            );
            None
        }
        (Some(Level::Skip), None) => None,
        (_, None) => {
            c.err(
                p,
                format!("rule {name:?} has no requirement"),
                "add \"requirement\": {\"allOf\": [ROLES]} or {\"atLeast\": {\"count\": K, \"of\": [ROLES]}}",
            );
            None
        }
        (_, Some(req)) => check_requirement(c, &rp, req, roles),
    };
    // provenance
    let sp = format!("{p}/requireSource");
    let require_source = match (level, r.require_source) {
        (_, None) => None,
        (Some(Level::Skip), Some(_)) => {
            c.err(
                &sp,
                "a skip rule verifies nothing and requires no source",
                "remove requireSource, or choose strict, permissive or audit",
            );
            None
        }
        (_, Some(src)) => match crate::provenance::SourceRequirement::parse(&src) {
            Ok(req) => Some(req),
            Err(e) => {
                c.err(
                    &sp,
                    format!("requireSource {src:?}: {e}"),
                    "write REPO or REPO@COMMIT with the full commit, e.g. \"github.com/acme/app\"",
                );
                None
            }
        },
    };
    // SBOM and scan report referrers
    let skip = level == Some(Level::Skip);
    let require_sbom = r.require_sbom.and_then(|raw| {
        let bp = format!("{p}/requireSbom");
        if skip {
            c.err(
                &bp,
                "a skip rule verifies nothing and requires no SBOM",
                "remove requireSbom, or choose strict, permissive or audit",
            );
            return None;
        }
        check_signed_by(c, &format!("{bp}/signedBy"), &raw.signed_by, roles)?;
        Some(crate::evidence::SbomRequirement {
            signed_by: raw.signed_by,
        })
    });
    let require_scan = r.require_scan.and_then(|raw| {
        let sp = format!("{p}/requireScan");
        if skip {
            c.err(
                &sp,
                "a skip rule verifies nothing and requires no scan report",
                "remove requireScan, or choose strict, permissive or audit",
            );
            return None;
        }
        let role = check_signed_by(c, &format!("{sp}/signedBy"), &raw.signed_by, roles);
        let days_ok = (1..=crate::evidence::MAX_SCAN_AGE_DAYS).contains(&raw.max_age_days);
        if !days_ok {
            c.err(
                &format!("{sp}/maxAgeDays"),
                format!("maxAgeDays {} is out of range", raw.max_age_days),
                format!(
                    "give the age in whole days, 1 to {} (7: a report from the last week)",
                    crate::evidence::MAX_SCAN_AGE_DAYS
                ),
            );
        }
        let fail_on = match raw.fail_on.as_deref() {
            None => Some(None),
            Some(t) => match crate::evidence::ScanSeverity::parse(t) {
                Some(
                    sev @ (crate::evidence::ScanSeverity::Low
                    | crate::evidence::ScanSeverity::Medium
                    | crate::evidence::ScanSeverity::High
                    | crate::evidence::ScanSeverity::Critical),
                ) => Some(Some(sev)),
                _ => {
                    c.err(
                        &format!("{sp}/failOn"),
                        format!("unknown severity {t:?}"),
                        "write low, medium, high or critical (as `berth scan --fail-on`)",
                    );
                    None
                }
            },
        };
        let (_, fail_on) = (role?, fail_on?);
        days_ok.then_some(crate::evidence::ScanRequirement {
            signed_by: raw.signed_by,
            max_age_days: raw.max_age_days,
            fail_on,
        })
    });
    if c.problems.len() != n0 {
        return None;
    }
    let verification = verification?;
    let statement = PolicyStatement {
        name: name.clone(),
        registry_scopes: r.registry_scopes,
        verification,
        verify_timestamp,
        trust_stores,
        trusted_identities: if level == Some(Level::Skip) {
            Vec::new()
        } else {
            vec![TrustedIdentity::Any]
        },
    };
    Some(Rule {
        name,
        scopes,
        namespaces,
        namespace_selector,
        statement,
        requirement,
        require_source,
        require_sbom,
        require_scan,
    })
}

/// A Kubernetes label key and value (apimachinery's `IsQualifiedName` and `IsValidLabelValue`).
fn check_label(key: &str, value: &str) -> Result<(), String> {
    fn name_ok(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
    }
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let dns_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !dns_ok {
                return Err(format!("label key {key:?} has an invalid prefix"));
            }
            name
        }
        None => key,
    };
    if !name_ok(name) {
        return Err(format!("label key {key:?} is not a valid label name"));
    }
    if !value.is_empty() && !name_ok(value) {
        return Err(format!(
            "label value {value:?} of {key:?} is not a valid label value"
        ));
    }
    Ok(())
}

fn list_or_none<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn parse_scope(s: &str) -> Result<ScopePattern, Hinted> {
    if s == "*" {
        return Ok(ScopePattern::Any);
    }
    let hint = "a scope is \"*\", \"REGISTRY/PATH/*\" (everything under PATH) or \"REGISTRY/PATH\" (one repository), without tag or digest";
    let (base, prefix) = match s.strip_suffix("/*") {
        Some(b) => (b, true),
        None => (s, false),
    };
    if base.contains('*') {
        return Err((
            format!("scope {s:?}: \"*\" may only be the whole scope or its last component"),
            hint.to_string(),
        ));
    }
    // a prefix may be a registry alone ("registry/*"): check it as a repository under it
    let as_repo = if prefix && !base.contains('/') {
        format!("{base}/x")
    } else {
        base.to_string()
    };
    validate_scope(&as_repo).map_err(|m| (format!("scope {s:?}: {m}"), hint.to_string()))?;
    Ok(if prefix {
        ScopePattern::Prefix(format!("{base}/"))
    } else {
        ScopePattern::Exact(base.to_string())
    })
}

fn parse_namespace(s: &str) -> Result<NamespacePattern, Hinted> {
    if s == "*" {
        return Ok(NamespacePattern::Any);
    }
    let hint = "a namespace pattern is \"*\", \"PREFIX*\" (e.g. \"prod-*\") or a namespace name (lowercase letters, digits and '-', at most 63)";
    let (base, prefix) = match s.strip_suffix('*') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let ok = !base.is_empty()
        && base.len() <= 63
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && base
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && (prefix
            || base
                .as_bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric()));
    if !ok {
        return Err((
            format!("namespace pattern {s:?} is not a Kubernetes namespace name or prefix"),
            hint.to_string(),
        ));
    }
    Ok(if prefix {
        NamespacePattern::Prefix(base.to_string())
    } else {
        NamespacePattern::Exact(base.to_string())
    })
}

fn check_verification(
    c: &mut Checker<'_>,
    p: &str,
    raw: &RawVerification,
) -> (Option<VerificationLevel>, VerifyTimestamp) {
    let level = match raw.level.as_str() {
        "strict" => Some(Level::Strict),
        "permissive" => Some(Level::Permissive),
        "audit" => Some(Level::Audit),
        "skip" => Some(Level::Skip),
        other => {
            c.err(
                &format!("{p}/level"),
                format!("unknown verification level {other:?}"),
                "use strict, permissive, audit or skip",
            );
            None
        }
    };
    let mut verification = level.map(VerificationLevel::of);
    if level == Some(Level::Skip) && !raw.r#override.is_empty() {
        c.err(
            &format!("{p}/override"),
            "the skip level cannot be overridden",
            "remove override",
        );
    }
    for (k, v) in &raw.r#override {
        let op = format!("{p}/override/{}", token(k));
        let action = match v.as_str() {
            "enforce" => Action::Enforce,
            "log" => Action::Log,
            "skip" => Action::Skip,
            other => {
                c.err(
                    &op,
                    format!("override {k:?} has unknown action {other:?}"),
                    "use enforce, log or skip",
                );
                continue;
            }
        };
        if action == Action::Skip && k != "revocation" {
            c.err(
                &op,
                format!("{k} cannot be skipped"),
                "only revocation can be skipped; use log",
            );
            continue;
        }
        let Some(vl) = verification.as_mut() else {
            continue;
        };
        let slot = match k.as_str() {
            "authenticity" => &mut vl.authenticity,
            "authenticTimestamp" => &mut vl.authentic_timestamp,
            "expiry" => &mut vl.expiry,
            "revocation" => &mut vl.revocation,
            "integrity" => {
                c.err(
                    &op,
                    "integrity cannot be overridden",
                    "integrity is always enforced; remove it",
                );
                continue;
            }
            other => {
                c.err(
                    &op,
                    format!("unknown validation {other:?}"),
                    "the validations are authenticity, authenticTimestamp, expiry and revocation",
                );
                continue;
            }
        };
        *slot = action;
    }
    let verify_timestamp = match raw.verify_timestamp.as_deref() {
        None | Some("always") => VerifyTimestamp::Always,
        Some("afterCertExpiry") => VerifyTimestamp::AfterCertExpiry,
        Some(other) => {
            c.err(
                &format!("{p}/verifyTimestamp"),
                format!("unknown verifyTimestamp {other:?}"),
                "use always or afterCertExpiry",
            );
            VerifyTimestamp::Always
        }
    };
    (verification, verify_timestamp)
}

fn check_roles(c: &mut Checker<'_>, p: &str, list: &[String], roles: &[Role]) {
    if list.len() > 64 {
        c.err(
            p,
            format!("{} roles in one requirement", list.len()),
            "a requirement names at most 64 roles",
        );
    }
    for (i, name) in list.iter().enumerate() {
        let ip = format!("{p}/{i}");
        if !roles.iter().any(|r| &r.name == name) {
            c.err(
                &ip,
                format!("undefined role {name:?}"),
                format!(
                    "define it under \"roles\" or correct the name (defined: {})",
                    list_or_none(roles.iter().map(|r| &r.name))
                ),
            );
        } else if list[..i].contains(name) {
            c.err(
                &ip,
                format!("role {name:?} is listed twice"),
                "each role counts once: remove the repetition",
            );
        }
    }
}

/// A `signedBy` role name: defined in the policy.
fn check_signed_by(c: &mut Checker<'_>, p: &str, name: &str, roles: &[Role]) -> Option<()> {
    if roles.iter().any(|r| r.name == name) {
        return Some(());
    }
    c.err(
        p,
        format!("undefined role {name:?}"),
        format!(
            "name the role whose signature the artifact must carry (defined: {})",
            list_or_none(roles.iter().map(|r| &r.name))
        ),
    );
    None
}

fn check_requirement(
    c: &mut Checker<'_>,
    p: &str,
    req: RawRequirement,
    roles: &[Role],
) -> Option<Requirement> {
    match (req.all_of, req.at_least) {
        (Some(_), Some(_)) => {
            c.err(
                p,
                "a requirement has both allOf and atLeast",
                "keep one: allOf for one signer per role, atLeast for k of n",
            );
            None
        }
        (None, None) => {
            c.err(
                p,
                "empty requirement",
                "give \"allOf\": [ROLES] or \"atLeast\": {\"count\": K, \"of\": [ROLES]}",
            );
            None
        }
        (Some(all), None) => {
            let ap = format!("{p}/allOf");
            if all.is_empty() {
                c.err(
                    &ap,
                    "empty requirement: allOf lists no role",
                    "list the roles that must each sign",
                );
            }
            check_roles(c, &ap, &all, roles);
            Some(Requirement::AllOf(all))
        }
        (None, Some(al)) => {
            let ap = format!("{p}/atLeast");
            let count = usize::try_from(al.count).unwrap_or(usize::MAX);
            if count == 0 {
                c.err(
                    &format!("{ap}/count"),
                    "atLeast count is 0, which any image satisfies",
                    "require at least 1 signer, or use level skip to verify nothing",
                );
            }
            let of = match (al.of, al.signers) {
                (Some(_), Some(_)) => {
                    c.err(
                        &ap,
                        "atLeast has both of and signers",
                        "keep one: \"of\": [ROLES] or \"signers\": \"any-trusted\"",
                    );
                    return None;
                }
                (None, None) => {
                    c.err(
                        &ap,
                        "empty requirement: atLeast names neither of nor signers",
                        "add \"of\": [ROLES] or \"signers\": \"any-trusted\"",
                    );
                    return None;
                }
                (None, Some(s)) => {
                    if s != "any-trusted" {
                        c.err(
                            &format!("{ap}/signers"),
                            format!("unknown signers {s:?}"),
                            "the only value is \"any-trusted\"; list roles with \"of\"",
                        );
                    }
                    Signers::AnyTrusted
                }
                (Some(of), None) => {
                    let op = format!("{ap}/of");
                    if of.is_empty() {
                        c.err(
                            &op,
                            "empty requirement: atLeast of lists no role",
                            "list the roles to count",
                        );
                    } else if count > of.len() {
                        c.err(
                            &format!("{ap}/count"),
                            format!(
                                "atLeast needs {count} signers of {} role(s), which can never be satisfied",
                                of.len()
                            ),
                            format!("lower count to at most {} or add roles", of.len()),
                        );
                    }
                    check_roles(c, &op, &of, roles);
                    Signers::Roles(of)
                }
            };
            Some(Requirement::AtLeast { count, of })
        }
    }
}

/// Two rules with the same (namespace pattern, scope pattern) pair would tie for some image:
/// the policy is ambiguous. (Patterns of equal specificity that both match one input are
/// equal, so this finds every tie: docs/policy.md, "Which rule applies".)
fn check_ambiguity(c: &mut Checker<'_>, rules: &[(usize, Rule)]) {
    let ns_of = |r: &Rule| -> Vec<Option<NamespacePattern>> {
        if r.namespaces.is_empty() && !r.namespace_selector.is_empty() {
            // a selector alone ranks as "*"
            vec![Some(NamespacePattern::Any)]
        } else if r.namespaces.is_empty() {
            vec![None]
        } else {
            r.namespaces.iter().cloned().map(Some).collect()
        }
    };
    for (j, (index, b)) in rules.iter().enumerate() {
        for (_, a) in &rules[..j] {
            let (na, nb) = (ns_of(a), ns_of(b));
            let shared_ns = na.iter().find(|n| nb.contains(n));
            let shared_scope = a.scopes.iter().find(|s| b.scopes.contains(s));
            // selectors of the same size that some namespace's labels could both satisfy
            let (sa, sb) = (&a.namespace_selector, &b.namespace_selector);
            let selectors_tie =
                sa.len() == sb.len() && sa.iter().all(|(k, v)| sb.get(k).is_none_or(|w| w == v));
            if let (Some(ns), Some(scope), true) = (shared_ns, shared_scope, selectors_tie) {
                let where_ = match ns {
                    None => "in every namespace".to_string(),
                    Some(n) => format!("in namespaces {:?}", n.to_string()),
                };
                c.err(
                    &format!("/rules/{index}"),
                    format!(
                        "rules {:?} and {:?} both apply to scope {:?} {where_} with the same specificity",
                        a.name,
                        b.name,
                        scope.to_string()
                    ),
                    "the most specific rule would be ambiguous: merge them or make one more specific",
                );
            }
        }
    }
}
