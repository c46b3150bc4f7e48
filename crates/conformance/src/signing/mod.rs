//! Conformance of signing tools to the Notary Project specification (v1.1.0): the same
//! [`Report`] as the registry checks (so the same JSON, HTML and JUnit renderers), with
//! [`Subject::Verifier`] or [`Subject::Signer`] and each check's [`Evidence`](crate::Evidence) — the input it
//! gave the implementation (an envelope's protected headers decoded, certificates
//! summarised, the trust policy), what the implementation did, and what the specification
//! requires.
//!
//! **Owns**: the signer rules ([`signer`]: every signature a signer produced, checked rule by
//! rule), the registry's signature handling ([`registry`]), and the verifier corpus and its
//! runner ([`verifier`]): signatures built at run time
//! from the checker's own test PKI (berth-trust's `certgen` and `sign`) and notation's own
//! vectors, each presented to any verifier command with its trust policy and trust store,
//! its verdict (exit status 0 = accepted) compared with the specification's.
//!
//! **Does not own**: verifying signatures (the implementation under test does; berth's own
//! verifier is `berth-trust`, run as a command like any other), or starting a registry (the
//! caller gives one).
//!
//! **Design decision**: an implementation is judged only by what it does — the exit status
//! of its command line — never by parsing its messages, so any tool (`berth verify`,
//! `notation verify`, a script) can be checked, and a deliberately broken one is caught by the
//! cases whose rule it breaks.

mod command;
mod corpus;
pub mod registry;
pub mod signer;
mod vectors;
pub mod verifier;
mod weak_key;

use std::fmt::Write as _;

use berth_trust::Certificate;
use berth_trust::envelope::{EnvelopeFormat, MEDIA_TYPE_COSE};

use crate::model::{
    CheckResult, NOTARY_SPEC_URL, NOTARY_SPEC_VERSION, REPORT_FORMAT, Report, Status, Subject,
    Workflow,
};

pub use command::CommandTemplate;

/// What stopped a signing conformance run before any verdict (a failing implementation is
/// a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid command line {command:?}: {reason}")]
    InvalidCommand { command: String, reason: String },
    #[error("could not run the implementation {command:?}: {reason}")]
    Start { command: String, reason: String },
    #[error("failed to build the {what} of the conformance corpus")]
    Corpus {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("failed to push {what} to {registry}")]
    Push {
        what: String,
        registry: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("failed to write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to read notation's test vectors in {path}: {reason}")]
    Vectors {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl Error {
    fn corpus(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Corpus {
            what: what.into(),
            source: Box::new(e),
        }
    }
}

/// The URL of a section of a Notary Project specification document: `doc` without `.md`
/// (`trust-store-trust-policy`), `anchor` as GitHub makes it (`steps`).
pub fn spec_url(doc: &str, anchor: &str) -> String {
    format!("{NOTARY_SPEC_URL}/{doc}.md#{anchor}")
}

/// A certificate as a person reads it: subject, issuer, validity, key, CA or not, usages.
pub fn describe_certificate(c: &Certificate) -> String {
    let mut s = format!(
        "subject:  {}\nissuer:   {}\nvalidity: {} .. {}\nkey:      {}\n",
        c.subject,
        c.issuer,
        c.not_before,
        c.not_after,
        c.public_key.describe()
    );
    let ca = match &c.basic_constraints {
        Some(bc) if bc.ca => "CA",
        Some(_) => "not a CA",
        None => "no basicConstraints",
    };
    let _ = writeln!(s, "basicConstraints: {ca}");
    let eku = match &c.ext_key_usage {
        Some(list) => list
            .iter()
            .map(|oid| signer::eku_name(oid))
            .collect::<Vec<_>>()
            .join(", "),
        None => "none".to_owned(),
    };
    let _ = write!(s, "extendedKeyUsage: {eku}");
    s
}

/// An envelope as a person reads it: for JWS the protected header decoded (as JSON, every
/// member, unknown ones included) and the payload; for COSE what berth-trust parses of it.
pub fn describe_envelope(bytes: &[u8], format: EnvelopeFormat) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoded = |v: Option<&serde_json::Value>| -> String {
        v.and_then(|v| v.as_str())
            .and_then(|s| b64.decode(s).ok())
            .map(|b| match serde_json::from_slice::<serde_json::Value>(&b) {
                Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
                Err(_) => String::from_utf8_lossy(&b).into_owned(),
            })
            .unwrap_or_else(|| "(absent or not base64url)".to_owned())
    };
    match format {
        EnvelopeFormat::Jws => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(env) => format!(
                "JWS (application/jose+json), {} bytes\nprotected header:\n{}\npayload:\n{}",
                bytes.len(),
                decoded(env.get("protected")),
                decoded(env.get("payload"))
            ),
            Err(e) => format!("JWS, {} bytes, not JSON: {e}", bytes.len()),
        },
        EnvelopeFormat::Cose => match berth_trust::Envelope::parse(bytes, MEDIA_TYPE_COSE) {
            Ok(env) => format!(
                "COSE_Sign1 (application/cose), {} bytes\nprotected header:\n  alg: {}\n  crit: {:?}\n  cty: {}\n  io.cncf.notary.signingScheme: {}\n  io.cncf.notary.signingTime: {}\npayload:\n{}",
                bytes.len(),
                env.algorithm.name(),
                env.critical,
                env.content_type,
                env.signing_scheme.as_str(),
                env.signing_time
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                String::from_utf8_lossy(&env.payload)
            ),
            Err(e) => format!(
                "COSE_Sign1, {} bytes, not parsed by berth: {e}",
                bytes.len()
            ),
        },
    }
}

/// The report of a signing run over `results`, grouped by their workflows in that order.
pub(crate) fn report(
    subject: Subject,
    implementation: &str,
    registry: &str,
    namespace: &str,
    started_at: String,
    duration_ms: u64,
    results: Vec<CheckResult>,
) -> Report {
    let mut workflows: Vec<Workflow> = Vec::new();
    for r in &results {
        if !workflows.contains(&r.info.workflow) {
            workflows.push(r.info.workflow);
        }
    }
    let (totals, summary) = crate::model::summarize(&workflows, &results);
    Report {
        format: REPORT_FORMAT,
        subject,
        implementation: Some(implementation.to_owned()),
        tool: format!("berth-conformance {}", env!("CARGO_PKG_VERSION")),
        spec_version: NOTARY_SPEC_VERSION.to_owned(),
        registry: registry.to_owned(),
        namespace: namespace.to_owned(),
        existing: None,
        started_at,
        duration_ms,
        workflows,
        conformant: results.iter().all(|r| r.outcome.status != Status::Fail),
        totals,
        summary,
        checks: results,
        setup: Vec::new(),
        cleanup: Vec::new(),
    }
}

/// The report of a signer run ([`registry::run_signer`]): one check per rule of
/// [`signer::RULES`] over every signature the signer produced (a rule fails when any
/// signature breaks it; its evidence is the first such signature's), plus one check that
/// each test image got a signature at all.
pub fn signer_report(
    command: &str,
    registry: &str,
    repository: &str,
    started_at: String,
    duration_ms: u64,
    images: &[registry::SignedImage],
) -> Report {
    use crate::model::{CheckInfo, Evidence, InputItem, Level, Outcome};
    let check = |id: String,
                 title: String,
                 level: Level,
                 url: String,
                 ok: bool,
                 reason: String,
                 evidence: Evidence| {
        let section = url
            .rsplit_once('#')
            .map(|(_, a)| a.to_owned())
            .unwrap_or_default();
        CheckResult {
            info: CheckInfo {
                id,
                title,
                workflow: Workflow::Signer,
                level,
                section,
                spec_url: url,
                optional: false,
            },
            outcome: if ok {
                Outcome {
                    status: Status::Pass,
                    reason: String::new(),
                }
            } else {
                crate::Verdict::violation(reason).outcome(level)
            },
            duration_ms: 0,
            exchanges: Vec::new(),
            evidence: Some(evidence),
        }
    };
    let mut results = Vec::new();
    // Each image signed, by a command that succeeded.
    let unsigned: Vec<&registry::SignedImage> = images
        .iter()
        .filter(|i| i.exit_code != Some(0) || i.signatures.is_empty())
        .collect();
    let observed = images
        .iter()
        .map(|i| {
            format!(
                "{}: exit status {}, {} signature(s){}",
                i.reference,
                i.exit_code
                    .map_or("none (killed)".to_owned(), |c| c.to_string()),
                i.signatures.len(),
                i.error
                    .as_deref()
                    .map(|e| format!(" — {e}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    results.push(check(
        "signer.signs-each-image".into(),
        "the signer signs every test image it is given".into(),
        Level::Must,
        spec_url("signing-and-verification-workflow", "signing-steps"),
        unsigned.is_empty(),
        format!("{} of {} images got no signature", unsigned.len(), images.len()),
        Evidence {
            input: images
                .iter()
                .map(|i| InputItem { label: "image".into(), text: format!("{}\ncommand: {}", i.reference, i.command) })
                .collect(),
            observed: format!(
                "{observed}{}",
                unsigned
                    .first()
                    .map(|i| format!("\n--- stderr of {} ---\n{}", i.reference, i.stderr.trim_end()))
                    .unwrap_or_default()
            ),
            required: "MUST: the signer produces a Notary Project signature for the artifact it is asked to sign, and pushes it beside it.".into(),
        },
    ));
    // Each rule over every signature.
    let mut order: Vec<String> = Vec::new();
    let mut by_rule: std::collections::BTreeMap<
        String,
        Vec<(&registry::SignedImage, &signer::RuleResult)>,
    > = std::collections::BTreeMap::new();
    for image in images {
        for sig in &image.signatures {
            for r in &sig.rules {
                if !by_rule.contains_key(&r.id) {
                    order.push(r.id.clone());
                }
                by_rule.entry(r.id.clone()).or_default().push((image, r));
            }
        }
    }
    for id in order {
        let Some(all) = by_rule.get(&id) else {
            continue;
        };
        let failing: Vec<_> = all.iter().filter(|(_, r)| !r.passed).collect();
        let Some((image, shown)) = failing
            .first()
            .copied()
            .or(all.first())
            .map(|(i, r)| (*i, *r))
        else {
            continue;
        };
        results.push(check(
            format!("signer.{id}"),
            shown.title.clone(),
            shown.level,
            shown.spec_url.clone(),
            failing.is_empty(),
            format!(
                "{} of {} signatures: {}",
                failing.len(),
                all.len(),
                shown.actual
            ),
            Evidence {
                input: vec![
                    InputItem {
                        label: "image".into(),
                        text: image.reference.clone(),
                    },
                    InputItem {
                        label: "signature".into(),
                        text: shown.input.clone(),
                    },
                ],
                observed: shown.actual.clone(),
                required: shown.expected.clone(),
            },
        ));
    }
    report(
        Subject::Signer,
        command,
        registry,
        repository,
        started_at,
        duration_ms,
        results,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_summarised_with_their_usages() {
        let key = berth_trust::SigningKey::generate(berth_trust::KeySpec::EcP256).unwrap();
        let cert = berth_trust::certgen::generate_test("summary.example", &key).unwrap();
        let s = describe_certificate(&cert);
        assert!(
            s.contains("subject:  CN=summary.example,O=Notary,L=Seattle,ST=WA,C=US"),
            "{s}"
        );
        assert!(s.contains("extendedKeyUsage: codeSigning"), "{s}");
        assert!(s.contains("basicConstraints: not a CA"), "{s}");
        assert!(s.contains("key:      EC P256"), "{s}");
    }

    #[test]
    fn jws_protected_headers_are_decoded() {
        let env = br#"{"protected":"eyJhbGciOiJFUzI1NiIsImNyaXQiOlsieCJdfQ","payload":"e30","signature":"AA"}"#;
        let s = describe_envelope(env, EnvelopeFormat::Jws);
        assert!(s.contains("\"alg\": \"ES256\""), "{s}");
        assert!(s.contains("\"crit\""), "{s}");
    }
}
