//! Signature verification as the workflow of signing-and-verification-workflow.md and
//! trust-store-trust-policy.md ("Signature Verification"): a pipeline of named steps, each with
//! its own outcome, that the statement's verification level maps to enforce / log / skip.

use crate::cert::{Certificate, Curve, KeyUsage, PublicKey};
use crate::envelope::{Envelope, SigningScheme, TargetArtifact};
use crate::policy::{Action, Level, PolicyStatement, VerifyTimestamp};
use crate::revocation::{self, CertResult, Fetcher};
use crate::time::Timestamp;
use crate::truststore::{StoreType, TrustStore};

/// The validations of the specification, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    Integrity,
    Authenticity,
    Expiry,
    AuthenticTimestamp,
    Revocation,
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "result", content = "reason")]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped,
}

/// One step's outcome and what the level made of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepResult {
    pub step: Step,
    pub action: Action,
    pub outcome: Outcome,
}

/// The verdict on one signature, like notation's `VerificationOutcome`.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// True when no enforced step failed (and the level is not skip or the artifact was skipped).
    pub passed: bool,
    pub level: Level,
    /// Each step run, in order; verification stops at the first enforced failure.
    pub steps: Vec<StepResult>,
    /// The parsed envelope, when it parsed.
    pub envelope: Option<Envelope>,
    /// A failure outside the steps (a required plugin berth cannot run).
    pub error: Option<String>,
    /// The revocation step's result per certificate, leaf first (empty when it did not run).
    pub revocation: Vec<CertResult>,
}

impl Verdict {
    /// The first enforced failure's reason, if any.
    pub fn failure(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        self.steps
            .iter()
            .find_map(|s| match (&s.outcome, s.action) {
                (Outcome::Failed(r), Action::Enforce) => Some(format!("{:?}: {r}", s.step)),
                _ => None,
            })
    }
}

/// What is being verified against what.
#[derive(Debug, Clone)]
pub struct VerifyOptions<'a> {
    /// The policy statement that applies to the artifact's repository.
    pub statement: &'a PolicyStatement,
    /// The artifact the signature must be over (digest, size, media type); `None` checks no
    /// artifact (for tests of the envelope alone).
    pub artifact: Option<&'a TargetArtifact>,
    /// The verification time.
    pub now: Timestamp,
    /// Where CRLs and OCSP responses are fetched from ([`crate::revocation::HTTP`] for the
    /// network).
    pub revocation: &'a dyn Fetcher,
}

/// Verifies one envelope.
pub fn verify(
    envelope_bytes: &[u8],
    media_type: &str,
    store: &TrustStore,
    opts: &VerifyOptions<'_>,
) -> Verdict {
    let v = opts.statement.verification;
    let mut verdict = Verdict {
        passed: false,
        level: v.level,
        steps: Vec::new(),
        envelope: None,
        error: None,
        revocation: Vec::new(),
    };
    if v.level == Level::Skip {
        verdict.passed = true;
        return verdict;
    }
    // Integrity (always enforced): parse, algorithm from the certificate, signature, payload
    let envelope = match Envelope::parse(envelope_bytes, media_type) {
        Ok(e) => e,
        Err(e) => {
            verdict
                .steps
                .push(failed(Step::Integrity, Action::Enforce, error_chain(&e)));
            return verdict;
        }
    };
    if let Some(plugin) = &envelope.verification_plugin {
        verdict.error = Some(format!(
            "the signature requires verification plugin {plugin:?}; berth runs no verification plugins"
        ));
        verdict.envelope = Some(envelope);
        return verdict;
    }
    let integrity = envelope
        .verify_integrity()
        .and_then(|()| match opts.artifact {
            None => Ok(()),
            Some(want) => {
                let got = envelope.target_artifact().map_err(|e| e.to_string())?;
                if got.digest != want.digest
                    || got.size != want.size
                    || got.media_type != want.media_type
                {
                    Err(format!(
                        "the signature is over {} ({} bytes, {}), not over {} ({} bytes, {})",
                        got.digest,
                        got.size,
                        got.media_type,
                        want.digest,
                        want.size,
                        want.media_type
                    ))
                } else {
                    Ok(())
                }
            }
        });
    if !push(&mut verdict, Step::Integrity, Action::Enforce, integrity) {
        verdict.envelope = Some(envelope);
        return verdict;
    }
    verdict.passed = run_steps(&mut verdict, &envelope, store, opts);
    verdict.envelope = Some(envelope);
    verdict
}

type StepFn<'a> = dyn Fn() -> Result<(), String> + 'a;

/// The steps after integrity; false at the first enforced failure.
fn run_steps(
    verdict: &mut Verdict,
    envelope: &Envelope,
    store: &TrustStore,
    opts: &VerifyOptions<'_>,
) -> bool {
    let v = opts.statement.verification;
    let chain = &envelope.certificate_chain;
    let revoked = std::cell::RefCell::new(Vec::new());
    let steps: [(Step, Action, &StepFn<'_>); 4] = [
        (Step::Authenticity, v.authenticity, &|| {
            authenticity(envelope, store, opts.statement)
        }),
        (Step::Expiry, v.expiry, &|| match envelope.expiry {
            Some(exp) if opts.now >= exp => Err(format!("the signature expired at {exp}")),
            _ => Ok(()),
        }),
        (Step::AuthenticTimestamp, v.authentic_timestamp, &|| {
            authentic_timestamp(envelope, opts.statement, store, opts.now)
        }),
        (Step::Revocation, v.revocation, &|| {
            // trust-store-trust-policy.md "Certificate Revocation Evaluation"; the signing
            // time counts only under the signingAuthority scheme, as in notation
            // as notation: a chain that is not valid is not checked (its "issuers" prove
            // nothing), which matters when authenticity is only logged
            validate_chain(chain, ChainPurpose::CodeSigning)
                .map_err(|e| format!("unable to check revocation status: {e}"))?;
            let mut ropts = revocation::Options::new(opts.revocation, opts.now);
            if envelope.signing_scheme == SigningScheme::X509SigningAuthority {
                ropts.signing_time = envelope.authentic_signing_time;
            }
            let results = revocation::check_chain(chain, &ropts);
            let r = revocation::summarize(&results);
            *revoked.borrow_mut() = results;
            r
        }),
    ];
    for (step, action, run) in steps {
        if action == Action::Skip {
            verdict.steps.push(StepResult {
                step,
                action,
                outcome: Outcome::Skipped,
            });
            continue;
        }
        let r = run();
        if step == Step::Revocation {
            verdict.revocation = revoked.take();
        }
        if !push(verdict, step, action, r) {
            return false;
        }
    }
    true
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn failed(step: Step, action: Action, reason: String) -> StepResult {
    StepResult {
        step,
        action,
        outcome: Outcome::Failed(reason),
    }
}

/// Records a step; false when it failed and was enforced (stop).
fn push(verdict: &mut Verdict, step: Step, action: Action, r: Result<(), String>) -> bool {
    match r {
        Ok(()) => {
            verdict.steps.push(StepResult {
                step,
                action,
                outcome: Outcome::Passed,
            });
            true
        }
        Err(reason) => {
            verdict.steps.push(failed(step, action, reason));
            action != Action::Enforce
        }
    }
}

fn authenticity(
    env: &Envelope,
    store: &TrustStore,
    statement: &PolicyStatement,
) -> Result<(), String> {
    validate_chain(&env.certificate_chain, ChainPurpose::CodeSigning)?;
    let ty = match env.signing_scheme {
        SigningScheme::X509 => StoreType::Ca,
        SigningScheme::X509SigningAuthority => StoreType::SigningAuthority,
    };
    let names: Vec<&String> = statement
        .trust_stores
        .iter()
        .filter(|(t, _)| *t == ty)
        .map(|(_, n)| n)
        .collect();
    if names.is_empty() {
        return Err(format!(
            "the signing scheme {} needs a {} trust store and statement {:?} names none",
            env.signing_scheme.as_str(),
            ty.as_str(),
            statement.name
        ));
    }
    let mut trusted = false;
    for name in names {
        let certs = store.certificates(ty, name).map_err(|e| error_chain(&e))?;
        if env
            .certificate_chain
            .iter()
            .any(|c| certs.iter().any(|t| t.der() == c.der()))
        {
            trusted = true;
            break;
        }
    }
    if !trusted {
        return Err(
            "the certificate chain does not lead to a certificate of the policy's trust stores"
                .to_string(),
        );
    }
    let leaf = env
        .certificate_chain
        .first()
        .ok_or("empty certificate chain")?;
    if !statement
        .trusted_identities
        .iter()
        .any(|i| i.matches(&leaf.subject))
    {
        return Err(format!(
            "signing certificate subject {:?} is not a trusted identity",
            leaf.subject.to_string()
        ));
    }
    Ok(())
}

fn authentic_timestamp(
    env: &Envelope,
    statement: &PolicyStatement,
    store: &TrustStore,
    now: Timestamp,
) -> Result<(), String> {
    let chain = &env.certificate_chain;
    let valid_at = |t: Timestamp| -> Result<(), String> {
        match chain.iter().find(|c| !c.valid_at(t)) {
            Some(c) => Err(format!(
                "certificate {:?} is not valid at {t} (valid from {} to {})",
                c.subject.to_string(),
                c.not_before,
                c.not_after
            )),
            None => Ok(()),
        }
    };
    match env.signing_scheme {
        SigningScheme::X509SigningAuthority => {
            let t = env
                .authentic_signing_time
                .ok_or("authenticSigningTime is missing")?;
            valid_at(t)
        }
        SigningScheme::X509 => match &env.timestamp_token {
            // As notation: a statement with a tsa store requires a timestamp, always or
            // (afterCertExpiry) once the chain has expired; without one, the chain must be
            // valid now.
            None if statement
                .trust_stores
                .iter()
                .any(|(t, _)| *t == StoreType::Tsa)
                && (statement.verify_timestamp == VerifyTimestamp::Always
                    || valid_at(now).is_err()) =>
            {
                Err(format!(
                    "no timestamp countersignature was found in the signature envelope, and statement {:?} requires one (it names a tsa trust store; verifyTimestamp {})",
                    statement.name,
                    match statement.verify_timestamp {
                        VerifyTimestamp::Always => "always",
                        VerifyTimestamp::AfterCertExpiry =>
                            "afterCertExpiry, and the certificate chain has expired",
                    }
                ))
            }
            None => valid_at(now),
            Some(token) => {
                if statement.verify_timestamp == VerifyTimestamp::AfterCertExpiry
                    && valid_at(now).is_ok()
                {
                    return Ok(());
                }
                let mut roots = Vec::new();
                for (_, name) in statement
                    .trust_stores
                    .iter()
                    .filter(|(t, _)| *t == StoreType::Tsa)
                {
                    roots.extend(
                        store
                            .certificates(StoreType::Tsa, name)
                            .map_err(|e| error_chain(&e))?,
                    );
                }
                if roots.is_empty() {
                    return Err(format!(
                        "the signature is timestamped and statement {:?} names no tsa trust store to verify it with",
                        statement.name
                    ));
                }
                let range = crate::timestamp::verify_token(token, env.signature_value(), &roots)?;
                match chain
                    .iter()
                    .find(|c| !(c.valid_at(range.lower) && c.valid_at(range.upper)))
                {
                    Some(c) => Err(format!(
                        "the timestamp range {} .. {} is not within the validity of certificate {:?} ({} to {})",
                        range.lower,
                        range.upper,
                        c.subject.to_string(),
                        c.not_before,
                        c.not_after
                    )),
                    None => Ok(()),
                }
            }
        },
    }
}

/// What a chain is for: its leaf's extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainPurpose {
    CodeSigning,
    TimeStamping,
}

/// The specification's certificate requirements over an ordered chain (leaf first, root
/// last): each certificate signed by the next, the last self-signed, CA constraints on all but
/// the leaf, the leaf's key usages, key sizes. Validity periods are checked by the
/// authentic-timestamp step, not here.
pub fn validate_chain(chain: &[Certificate], purpose: ChainPurpose) -> Result<(), String> {
    let leaf = chain.first().ok_or("empty certificate chain")?;
    let last = chain.last().ok_or("empty certificate chain")?;
    for (i, c) in chain.iter().enumerate() {
        let who = format!("certificate {i} ({:?})", c.subject.to_string());
        if let Some(oid) = c.unhandled_critical_extensions.first() {
            return Err(format!("{who} has an unsupported critical extension {oid}"));
        }
        match &c.public_key {
            PublicKey::Rsa { bits, .. } if *bits < 2048 => {
                return Err(format!(
                    "{who}: RSA key of {bits} bits is too weak (2048 minimum)"
                ));
            }
            PublicKey::Rsa { .. }
            | PublicKey::Ec {
                curve: Curve::P256 | Curve::P384 | Curve::P521,
                ..
            } => {}
            PublicKey::Other { algorithm } => {
                return Err(format!("{who}: unsupported key algorithm {algorithm}"));
            }
        }
        if i > 0 {
            let bc = c
                .basic_constraints
                .ok_or_else(|| format!("{who} is an issuer without basicConstraints"))?;
            if !bc.ca {
                return Err(format!(
                    "{who} issues certificate {} but is not a CA",
                    i - 1
                ));
            }
            if let Some(max) = bc.path_len {
                // intermediates below this one (the leaf does not count)
                let below = (i - 1) as u64;
                if below > max {
                    return Err(format!("{who}: path length constraint {max} exceeded"));
                }
            }
            let ku = c
                .key_usage
                .ok_or_else(|| format!("{who} is an issuer without keyUsage"))?;
            if !ku.has(KeyUsage::KEY_CERT_SIGN) {
                return Err(format!(
                    "{who} is an issuer without the keyCertSign key usage"
                ));
            }
        }
        let issuer = chain.get(i + 1).unwrap_or(c);
        if !c.names_issuer(issuer) {
            return Err(format!(
                "{who}: its issuer is not the subject of the next certificate (the chain must be ordered leaf to root)"
            ));
        }
        c.verify_signed_by(issuer)
            .map_err(|e| format!("{who}: {e}"))?;
    }
    if !last.is_self_issued() {
        return Err("the chain does not end in a self-signed root certificate".to_string());
    }
    // the leaf
    let who = format!("signing certificate {:?}", leaf.subject.to_string());
    let ku = leaf
        .key_usage
        .ok_or_else(|| format!("{who} has no keyUsage extension"))?;
    if !ku.critical {
        return Err(format!("{who}: keyUsage must be critical"));
    }
    if !ku.has(KeyUsage::DIGITAL_SIGNATURE) {
        return Err(format!("{who}: keyUsage lacks digitalSignature"));
    }
    if chain.len() > 1 && leaf.is_ca() {
        return Err(format!(
            "{who} is a CA certificate (basicConstraints cA must be false)"
        ));
    }
    match purpose {
        // signature-specification.md "Certificate Requirements": for a codesigning
        // certificate the extension is OPTIONAL and, present, MAY contain id-kp-codeSigning
        // and MUST NOT contain anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection or
        // timeStamping (notation-core-go also refuses OCSPSigning, and does not refuse
        // anyExtendedKeyUsage: berth refuses both)
        ChainPurpose::CodeSigning => {
            const EXCLUDED: &[(&str, &str)] = &[
                ("2.5.29.37.0", "anyExtendedKeyUsage"),
                ("1.3.6.1.5.5.7.3.1", "serverAuth"),
                ("1.3.6.1.5.5.7.3.2", "clientAuth"),
                ("1.3.6.1.5.5.7.3.4", "emailProtection"),
                ("1.3.6.1.5.5.7.3.8", "timeStamping"),
                ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
            ];
            for e in leaf.ext_key_usage.iter().flatten() {
                if let Some((_, name)) = EXCLUDED.iter().find(|(oid, _)| oid == e) {
                    return Err(format!(
                        "{who}: extendedKeyUsage must not contain {name} (a code-signing certificate may name codeSigning only, or have no extendedKeyUsage)"
                    ));
                }
            }
        }
        // RFC 3161 2.3: present, and timeStamping
        ChainPurpose::TimeStamping => {
            let eku = leaf
                .ext_key_usage
                .as_ref()
                .ok_or_else(|| format!("{who} has no extendedKeyUsage extension"))?;
            if !eku.iter().any(|e| e == "1.3.6.1.5.5.7.3.8") {
                return Err(format!("{who}: extendedKeyUsage lacks timeStamping"));
            }
        }
    }
    Ok(())
}
