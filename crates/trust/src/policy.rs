//! `trustpolicy.oci.json` / `trustpolicy.json` version 1.0 (trust-store-trust-policy.md,
//! "Trust Policy"): parsing and the validation notation applies when it loads a policy.

use crate::truststore::{StoreType, is_valid_store_name};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Why a policy document is invalid.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("trust policy is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("trust policy: {0}")]
    Invalid(String),
    #[error("no trust policy statement applies to {0:?}")]
    NoStatement(String),
}

fn invalid(msg: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(msg.into())
}

/// The verification levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Strict,
    Permissive,
    Audit,
    Skip,
}

/// What a failed validation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Enforce,
    Log,
    Skip,
}

/// `verifyTimestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyTimestamp {
    Always,
    AfterCertExpiry,
}

/// The action of each validation (integrity is always enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationLevel {
    pub level: Level,
    pub authenticity: Action,
    pub authentic_timestamp: Action,
    pub expiry: Action,
    pub revocation: Action,
}

impl VerificationLevel {
    /// The specification's table of levels.
    pub fn of(level: Level) -> VerificationLevel {
        use Action::*;
        let (a, t, e, r) = match level {
            Level::Strict => (Enforce, Enforce, Enforce, Enforce),
            Level::Permissive => (Enforce, Log, Log, Log),
            Level::Audit => (Log, Log, Log, Log),
            Level::Skip => (Skip, Skip, Skip, Skip),
        };
        VerificationLevel {
            level,
            authenticity: a,
            authentic_timestamp: t,
            expiry: e,
            revocation: r,
        }
    }
}

/// A trusted identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentity {
    /// `*`: any certificate chaining to the trust stores.
    Any,
    /// `x509.subject: …`: these attributes must equal the signing certificate's.
    Subject(Vec<(String, String)>),
}

impl TrustedIdentity {
    /// Whether a certificate subject satisfies this identity.
    pub fn matches(&self, subject: &crate::cert::DistinguishedName) -> bool {
        match self {
            TrustedIdentity::Any => true,
            TrustedIdentity::Subject(attrs) => attrs
                .iter()
                .all(|(k, v)| subject.get(k) == Some(v.as_str())),
        }
    }
}

/// One validated statement.
#[derive(Debug, Clone)]
pub struct PolicyStatement {
    pub name: String,
    pub registry_scopes: Vec<String>,
    pub verification: VerificationLevel,
    pub verify_timestamp: VerifyTimestamp,
    pub trust_stores: Vec<(StoreType, String)>,
    pub trusted_identities: Vec<TrustedIdentity>,
}

/// A validated trust policy document.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    pub statements: Vec<PolicyStatement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Doc {
    version: String,
    trust_policies: Vec<RawStatement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStatement {
    name: String,
    registry_scopes: Option<Vec<String>>,
    signature_verification: RawVerification,
    #[serde(default)]
    trust_stores: Option<Vec<String>>,
    #[serde(default)]
    trusted_identities: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVerification {
    level: String,
    #[serde(default)]
    r#override: BTreeMap<String, String>,
    verify_timestamp: Option<String>,
}

impl TrustPolicy {
    /// Parses and validates a policy document.
    pub fn parse(bytes: &[u8]) -> Result<TrustPolicy, PolicyError> {
        let doc: Doc = serde_json::from_slice(bytes).map_err(PolicyError::Json)?;
        if doc.version != "1.0" {
            return Err(invalid(format!(
                "unsupported version {:?} (supported: \"1.0\")",
                doc.version
            )));
        }
        if doc.trust_policies.is_empty() {
            return Err(invalid("trustPolicies is empty"));
        }
        let mut statements: Vec<PolicyStatement> = Vec::new();
        let mut global = false;
        for raw in doc.trust_policies {
            let s = validate_statement(raw)?;
            if statements.iter().any(|o| o.name == s.name) {
                return Err(invalid(format!(
                    "multiple statements are named {:?}",
                    s.name
                )));
            }
            for scope in &s.registry_scopes {
                if scope == "*" {
                    if global {
                        return Err(invalid(
                            "more than one statement has the global scope \"*\"",
                        ));
                    }
                    global = true;
                } else if let Some(o) = statements
                    .iter()
                    .find(|o| o.registry_scopes.contains(scope))
                {
                    return Err(invalid(format!(
                        "registry scope {scope:?} is in both statements {:?} and {:?}",
                        o.name, s.name
                    )));
                }
            }
            statements.push(s);
        }
        Ok(TrustPolicy { statements })
    }

    /// The statement for a repository (`registry/namespace/repo`): exact scope first, then
    /// the global one.
    pub fn statement_for(&self, repository: &str) -> Result<&PolicyStatement, PolicyError> {
        self.statements
            .iter()
            .find(|s| s.registry_scopes.iter().any(|r| r == repository))
            .or_else(|| {
                self.statements
                    .iter()
                    .find(|s| s.registry_scopes.iter().any(|r| r == "*"))
            })
            .ok_or_else(|| PolicyError::NoStatement(repository.to_string()))
    }
}

fn validate_statement(raw: RawStatement) -> Result<PolicyStatement, PolicyError> {
    let name = raw.name;
    if name.trim().is_empty() {
        return Err(invalid("a statement has an empty name"));
    }
    let ctx = |m: String| invalid(format!("statement {name:?}: {m}"));
    let level = match raw.signature_verification.level.as_str() {
        "strict" => Level::Strict,
        "permissive" => Level::Permissive,
        "audit" => Level::Audit,
        "skip" => Level::Skip,
        other => {
            return Err(ctx(format!(
                "unknown signatureVerification level {other:?}"
            )));
        }
    };
    let mut verification = VerificationLevel::of(level);
    if level == Level::Skip && !raw.signature_verification.r#override.is_empty() {
        return Err(ctx("the skip level cannot be overridden".to_string()));
    }
    for (k, v) in &raw.signature_verification.r#override {
        let action = match v.as_str() {
            "enforce" => Action::Enforce,
            "log" => Action::Log,
            "skip" => Action::Skip,
            other => return Err(ctx(format!("override {k:?} has unknown action {other:?}"))),
        };
        let slot = match k.as_str() {
            "integrity" => {
                return Err(ctx("integrity validation cannot be overridden".to_string()));
            }
            "authenticity" => &mut verification.authenticity,
            "authenticTimestamp" => &mut verification.authentic_timestamp,
            "expiry" => &mut verification.expiry,
            "revocation" => &mut verification.revocation,
            other => return Err(ctx(format!("unknown override {other:?}"))),
        };
        if action == Action::Skip && k != "revocation" {
            return Err(ctx(format!("{k} cannot be skipped (only revocation can)")));
        }
        *slot = action;
    }
    let verify_timestamp = match raw.signature_verification.verify_timestamp.as_deref() {
        None | Some("always") => VerifyTimestamp::Always,
        Some("afterCertExpiry") => VerifyTimestamp::AfterCertExpiry,
        Some(other) => return Err(ctx(format!("unknown verifyTimestamp {other:?}"))),
    };

    let scopes = raw
        .registry_scopes
        .ok_or_else(|| ctx("registryScopes is missing".to_string()))?;
    if scopes.is_empty() {
        return Err(ctx("registryScopes is empty".to_string()));
    }
    if scopes.len() > 1 && scopes.iter().any(|s| s == "*") {
        return Err(ctx(
            "the wildcard scope \"*\" must be the only scope".to_string()
        ));
    }
    for (i, s) in scopes.iter().enumerate() {
        if s != "*" {
            validate_scope(s).map_err(|m| ctx(format!("registry scope {s:?}: {m}")))?;
        }
        if scopes[..i].contains(s) {
            return Err(ctx(format!("registry scope {s:?} is listed twice")));
        }
    }
    // the specification forbids skip with the global scope; notation's loader accepts it
    // (its e2e suite uses skip_trustpolicy.json), and berth follows notation here

    let stores = raw.trust_stores.unwrap_or_default();
    let identities = raw.trusted_identities.unwrap_or_default();
    if level == Level::Skip {
        if !stores.is_empty() || !identities.is_empty() {
            return Err(ctx(
                "the skip level takes no trustStores or trustedIdentities".to_string(),
            ));
        }
    } else {
        if stores.is_empty() {
            return Err(ctx("trustStores is empty".to_string()));
        }
        if identities.is_empty() {
            return Err(ctx("trustedIdentities is empty".to_string()));
        }
    }
    let mut trust_stores = Vec::new();
    for s in &stores {
        let (ty, n) = s
            .split_once(':')
            .ok_or_else(|| ctx(format!("trust store {s:?} is not TYPE:NAME")))?;
        let ty = StoreType::parse(ty)
            .ok_or_else(|| ctx(format!("trust store {s:?}: unknown type {ty:?}")))?;
        if !is_valid_store_name(n) {
            return Err(ctx(format!(
                "trust store {s:?}: name must be [a-zA-Z0-9_.-]+"
            )));
        }
        // a store listed twice is harmless: notation does not refuse it either
        trust_stores.push((ty, n.to_string()));
    }
    if !trust_stores.is_empty() && trust_stores.iter().all(|(t, _)| *t == StoreType::Tsa) {
        return Err(ctx(
            "trustStores names only tsa stores: a ca or signingAuthority store is required"
                .to_string(),
        ));
    }
    let mut trusted_identities = Vec::new();
    for id in &identities {
        if id == "*" {
            if identities.len() > 1 {
                return Err(ctx(
                    "the wildcard identity \"*\" must be the only identity".to_string()
                ));
            }
            trusted_identities.push(TrustedIdentity::Any);
            continue;
        }
        let (prefix, value) = id.split_once(':').ok_or_else(|| {
            ctx(format!(
                "trusted identity {id:?} is not \"x509.subject: DN\""
            ))
        })?;
        if prefix.trim() != "x509.subject" {
            return Err(ctx(format!(
                "trusted identity {id:?}: unsupported type {prefix:?}"
            )));
        }
        let dn = parse_dn(value).map_err(|m| ctx(format!("trusted identity {id:?}: {m}")))?;
        for required in ["C", "ST", "O"] {
            if !dn.iter().any(|(k, _)| k == required) {
                return Err(ctx(format!(
                    "trusted identity {id:?} lacks {required} (C, ST and O are required)"
                )));
            }
        }
        for other in &trusted_identities {
            if let TrustedIdentity::Subject(o) = other {
                let subset = |a: &Vec<(String, String)>, b: &Vec<(String, String)>| {
                    a.iter().all(|x| b.contains(x))
                };
                if subset(o, &dn) || subset(&dn, o) {
                    return Err(ctx(format!(
                        "trusted identity {id:?} overlaps another identity"
                    )));
                }
            }
        }
        trusted_identities.push(TrustedIdentity::Subject(dn));
    }
    Ok(PolicyStatement {
        name,
        registry_scopes: scopes,
        verification,
        verify_timestamp,
        trust_stores,
        trusted_identities,
    })
}

/// A repository URI without tag or digest: `host[:port]/path`, path components lowercase.
pub(crate) fn validate_scope(s: &str) -> Result<(), String> {
    let (host, path) = s.split_once('/').ok_or("not REGISTRY/REPOSITORY")?;
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    if h.is_empty()
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err("invalid registry host".to_string());
    }
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("invalid registry port".to_string());
    }
    for comp in path.split('/') {
        let ok = !comp.is_empty()
            && comp.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && comp
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphanumeric)
            && comp
                .as_bytes()
                .last()
                .is_some_and(u8::is_ascii_alphanumeric);
        if !ok {
            return Err(format!(
                "invalid repository component {comp:?} (a scope has no tag or digest)"
            ));
        }
    }
    Ok(())
}

/// An RFC 4514-style DN as the specification writes trusted identities: comma-separated
/// `TYPE=value`, with `\,` `\;` `\\` and `\ ` escapes.
pub(crate) fn parse_dn(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let n = chars.next().ok_or("trailing backslash")?;
                cur.push('\\');
                cur.push(n);
            }
            ',' | ';' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut out: Vec<(String, String)> = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("{:?} is not TYPE=value", p.trim()))?;
        let k = k.trim().to_ascii_uppercase();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') {
            return Err(format!("invalid attribute type {k:?}"));
        }
        let v = unescape(v.trim_start())?;
        if v.is_empty() {
            return Err(format!("attribute {k} has an empty value"));
        }
        if out.iter().any(|(e, _)| *e == k) {
            return Err(format!("attribute {k} appears twice"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn unescape(v: &str) -> Result<String, String> {
    // trailing unescaped spaces are not part of the value
    let mut out = String::new();
    let mut chars = v.chars().peekable();
    let mut trailing_plain_spaces = 0;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let n = chars.next().ok_or("trailing backslash")?;
            out.push(n);
            trailing_plain_spaces = 0;
        } else {
            out.push(c);
            trailing_plain_spaces = if c == ' ' {
                trailing_plain_spaces + 1
            } else {
                0
            };
        }
    }
    out.truncate(out.len() - trailing_plain_spaces);
    Ok(out)
}
