//! `berth conformance verify`: a verifier given signatures that MUST be accepted and
//! signatures that MUST be refused, each with its own trust policy and trust store, judged
//! by its exit status (0 = accepted, anything else = refused).
//!
//! Each case is one image in its own repository (`NAMESPACE/<case>`) of the registry the
//! caller gives, its signatures pushed beside it (referrers API, or the tag fallback the
//! client uses when the registry has none), and one configuration directory
//! (`WORKDIR/<n>-<case>/`) laid out for both reference verifiers:
//!
//! ```text
//! <n>-<case>/                        {config}; the command runs with XDG_CONFIG_HOME={config}
//!   notation/trustpolicy.json        {policy}  (notation's trust policy format, v1.0)
//!   notation/truststore/             {truststore}
//!     x509/ca/<store>/<store>.crt    the store's certificates (PEM)
//!   berth/trustpolicy.json           the same policy, where `berth verify` looks
//!   berth/truststore/…               the same store
//! ```
//!
//! `{image}` is `REGISTRY/NAMESPACE/<case>@sha256:…` (a digest, so no verifier resolves a
//! tag differently). The cases and the specification sections they enforce are
//! `corpus_plan`'s (listed by [`must_accept_ids`] and [`must_refuse_ids`]); notation's own
//! vectors are added when their directory is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use berth_distribution::Client;
use berth_trust::envelope::EnvelopeFormat;
use berth_trust::{SignOptions, Timestamp};
use serde_json::{Value, json};

use super::command::{CommandTemplate, Run};
use super::corpus::{self, Image, Pki, RawSigner, Stores};
use super::weak_key::WeakRsa;
use super::{Error, describe_certificate, describe_envelope, spec_url};
use crate::model::{
    CheckInfo, CheckResult, Evidence, InputItem, Level, Outcome, Report, Subject, Workflow,
};

/// The placeholders a verifier command may use.
pub const PLACEHOLDERS: [&str; 4] = ["image", "policy", "truststore", "config"];

/// Seconds the short-lived certificate of the timestamp case is valid for after it is made.
const SHORT_LIVED: i64 = 8;

/// The time a verifier has for one case unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What to check, where.
#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// A client for the registry (plain HTTP allowed for it when it is on loopback).
    pub client: Client,
    /// The registry the corpus is pushed to, `host:port`.
    pub registry: String,
    /// The repository prefix of the cases (`<namespace>/<case>`).
    pub namespace: String,
    /// The verifier's command line ([`parse_command`]).
    pub command: CommandTemplate,
    /// An empty directory for the cases' trust policies and stores (kept for inspection).
    pub workdir: PathBuf,
    /// notation's test vectors (`shared/vectors/notation`), if they are to be presented too.
    pub vectors: Option<PathBuf>,
    /// The time the verifier has for one case.
    pub timeout: Duration,
    /// An RFC 3161 timestamp authority for the timestamp cases (without one they are left
    /// out, and said so in the report's cases).
    pub tsa: Option<Tsa>,
    /// The openssl program that makes the weak-key case's 1024-bit RSA key and signature
    /// (berth's crypto library cannot); when it cannot run, that case is reported as not
    /// run, with the reason.
    pub openssl: PathBuf,
}

/// A timestamp authority: its URL and the root its certificate chains to.
#[derive(Debug, Clone)]
pub struct Tsa {
    pub url: String,
    pub root: berth_trust::Certificate,
}

/// Parses a verifier command line: `{image}` is required; `{policy}`, `{truststore}` and
/// `{config}` may be used.
pub fn parse_command(text: &str) -> Result<CommandTemplate, Error> {
    CommandTemplate::parse(text, &["image"], &PLACEHOLDERS)
}

/// The verdict a case requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Accept,
    Refuse,
}

/// One image, its policy and trust store, and the verdict the specification requires.
pub(crate) struct Case {
    /// `<workflow>.<name>`.
    pub id: String,
    pub title: String,
    pub workflow: Workflow,
    /// The specification document (without `.md`) and section anchor it enforces.
    pub doc: &'static str,
    pub anchor: &'static str,
    pub expect: Expect,
    /// What the specification requires, in a sentence.
    pub required: String,
    pub image: String,
    pub policy: Value,
    pub stores: Stores,
    /// The signatures presented, described.
    pub input: Vec<InputItem>,
    /// Why the case could not be built (it is reported as not run, never as passed).
    pub not_run: Option<String>,
}

/// A trust policy of one statement for `scope`: `level` (with `override`), the trust stores
/// (`ca:NAME`, `tsa:NAME`), the trusted identities.
pub(crate) fn policy(
    scope: &str,
    level: &str,
    overrides: Option<Value>,
    stores: &[&str],
    identities: &[&str],
) -> Value {
    let mut verification = json!({ "level": level });
    if let Some(o) = overrides {
        verification["override"] = o;
    }
    let mut statement = json!({
        "name": "conformance",
        "registryScopes": [scope],
        "signatureVerification": verification,
    });
    if level != "skip" {
        statement["trustStores"] = stores.iter().map(|s| s.to_string()).collect();
        statement["trustedIdentities"] = identities.iter().map(|s| s.to_string()).collect();
    }
    json!({ "version": "1.0", "trustPolicies": [statement] })
}

/// How a case's image is signed.
enum Sig {
    None,
    Valid(EnvelopeFormat),
    /// Signed over another target (the digest replaced by one of random content).
    WrongDigest,
    /// Signed over the right digest with the wrong size.
    WrongSize,
    /// Signed over the right digest and size with another media type.
    WrongMediaType,
    /// A valid signature of another image, its signature manifest's subject set to this one.
    SubjectSwapped,
    /// A valid JWS whose signature bytes were changed.
    Corrupted,
    ExpiredLeaf,
    Untrusted,
    ServerAuthLeaf,
    UnknownCritical,
    /// The same in a COSE_Sign1.
    UnknownCriticalCose,
    AlgMismatch,
    Hmac,
    /// The leaf alone in the chain (no root).
    ChainWithoutRoot,
    /// The chain root first, leaf last.
    ChainOutOfOrder,
    /// `cty` other than the Notary payload type.
    ContentType,
    /// `io.cncf.notary.expiry` yesterday.
    ExpiredSignature,
    /// Timestamped by the TSA while the leaf was valid; the leaf expires right after.
    TimestampedThenExpired,
    /// The leaf expired yesterday; timestamped now (after its notAfter).
    TimestampAfterExpiry,
    /// PS256 by a 1024-bit RSA leaf under a root of its own (made by openssl).
    WeakRsa,
}

/// One planned case: what to build and what the specification says of it.
struct Plan {
    name: &'static str,
    title: &'static str,
    doc: &'static str,
    anchor: &'static str,
    expect: Expect,
    required: &'static str,
    sig: Sig,
    level: &'static str,
    overrides: Option<Value>,
    /// The policy names another repository: no statement applies.
    other_scope: bool,
    /// `trustedIdentities` names another subject instead of `*`.
    other_identity: bool,
    /// The case needs a timestamp authority (and the policy its `tsa` store).
    tsa: bool,
}

const TSTP: &str = "trust-store-trust-policy";
const SIGSPEC: &str = "signature-specification";

fn plan(
    name: &'static str,
    title: &'static str,
    (doc, anchor): (&'static str, &'static str),
    expect: Expect,
    required: &'static str,
    sig: Sig,
) -> Plan {
    Plan {
        name,
        title,
        doc,
        anchor,
        expect,
        required,
        sig,
        level: "strict",
        overrides: None,
        other_scope: false,
        other_identity: false,
        tsa: false,
    }
}

impl Plan {
    /// The case of this plan.
    fn case(
        &self,
        image: String,
        policy: Value,
        stores: Stores,
        input: Vec<InputItem>,
        not_run: Option<String>,
    ) -> Case {
        Case {
            id: format!("verifier.{}", self.name),
            title: self.title.to_owned(),
            workflow: Workflow::Verifier,
            doc: self.doc,
            anchor: self.anchor,
            expect: self.expect,
            required: self.required.to_owned(),
            image,
            policy,
            stores,
            input,
            not_run,
        }
    }

    fn level(mut self, level: &'static str, overrides: Option<Value>) -> Plan {
        self.level = level;
        self.overrides = overrides;
        self
    }
}

/// The checker's own cases, in the order they run.
fn corpus_plan() -> Vec<Plan> {
    use Expect::{Accept, Refuse};
    let steps = (TSTP, "steps");
    let levels = (TSTP, "signature-verification-details");
    let custom = (TSTP, "custom-verification-level");
    vec![
        plan("valid-jws", "a valid JWS signature by a trusted signer is accepted", steps, Accept,
            "MUST accept: every validation succeeds (integrity, authenticity, authentic timestamp, expiry) for a JWS envelope signed by a code-signing leaf under a root in the policy's trust store.",
            Sig::Valid(EnvelopeFormat::Jws)),
        plan("valid-cose", "a valid COSE_Sign1 signature by a trusted signer is accepted", steps, Accept,
            "MUST accept: the COSE_Sign1 envelope is one of the two formats every implementation supports, and every validation succeeds.",
            Sig::Valid(EnvelopeFormat::Cose)),
        plan("unsigned", "an image without a signature is refused at level strict", ("signing-and-verification-workflow", "verification-steps"), Refuse,
            "MUST refuse: with a verification level other than skip, an artifact with no signature fails verification.",
            Sig::None),
        plan("corrupted-signature", "a signature whose bytes were altered is refused (integrity)", steps, Refuse,
            "MUST refuse: Validate Integrity — the signature over the envelope must verify with the signing certificate's public key.",
            Sig::Corrupted),
        plan("wrong-digest", "a signature over another digest is refused", (SIGSPEC, "payload"), Refuse,
            "MUST refuse: the payload's targetArtifact digest, media type and size must match the artifact being verified (Verify signature payload).",
            Sig::WrongDigest),
        plan("wrong-size", "a signature over the right digest but another size is refused", steps, Refuse,
            "MUST refuse: Verify signature payload — the artifact's digest, media type and size must all match the payload's targetArtifact; here the size is one more.",
            Sig::WrongSize),
        plan("wrong-media-type", "a signature over the right digest but another media type is refused", steps, Refuse,
            "MUST refuse: Verify signature payload — the payload's targetArtifact mediaType (here an image index's) must be the artifact's (an image manifest).",
            Sig::WrongMediaType),
        plan("subject-swapped", "a signature of another image, attached to this one, is refused", steps, Refuse,
            "MUST refuse: the signature manifest names this image as its subject, but the envelope signed another manifest; the payload must match the artifact being verified.",
            Sig::SubjectSwapped),
        plan("expired-leaf", "a signing certificate expired and no timestamp: refused at strict", steps, Refuse,
            "MUST refuse: Validate Authentic Timestamp — without a timestamp countersignature, the current time must be within the signing certificate chain's validity; strict enforces it.",
            Sig::ExpiredLeaf),
        plan("untrusted-root", "a chain to a root outside the trust store is refused", steps, Refuse,
            "MUST refuse: Validate Authenticity — the certificate chain must lead to a certificate in the policy's trust store.",
            Sig::Untrusted),
        plan("leaf-not-code-signing", "a signing certificate whose extendedKeyUsage is serverAuth is refused", (SIGSPEC, "leaf-certificates"), Refuse,
            "MUST refuse: a code-signing certificate's extendedKeyUsage is optional, but when present it MUST NOT contain anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection or timeStamping (certificate requirements, checked in Validate Authenticity).",
            Sig::ServerAuthLeaf),
        plan("unknown-critical-header", "an envelope with an unknown critical header is refused", (SIGSPEC, "extended-attributes"), Refuse,
            "MUST refuse: \"unknown critical attributes MUST cause signature verification to fail\" (Extended attributes); the envelope lists io.cncf.conformance.unknownCritical in crit.",
            Sig::UnknownCritical),
        plan("unknown-critical-header-cose", "a COSE_Sign1 with an unknown critical header is refused", (SIGSPEC, "extended-attributes"), Refuse,
            "MUST refuse: \"unknown critical attributes MUST cause signature verification to fail\" (Extended attributes); the COSE protected header lists io.cncf.conformance.unknownCritical in crit (label 2).",
            Sig::UnknownCriticalCose),
        plan("algorithm-mismatch", "an alg that does not match the signing key is refused", (SIGSPEC, "algorithm-selection"), Refuse,
            "MUST refuse: the signing algorithm is determined from the signing certificate (ES256 for a P-256 key) and must be the envelope's alg; here alg says ES384.",
            Sig::AlgMismatch),
        plan("algorithm-not-allowed", "an algorithm outside the specification's list (HS256, a MAC) is refused", (SIGSPEC, "signature-algorithm-requirements"), Refuse,
            "MUST refuse: only RSASSA-PSS (PS256/384/512) and ECDSA (ES256/384/512) are allowed; HS256 is a shared-key MAC, not a signature.",
            Sig::Hmac),
        plan("weak-rsa-key", "a signature by a 1024-bit RSA key is refused", (SIGSPEC, "signature-algorithm-requirements"), Refuse,
            "MUST refuse: RSASSA-PSS keys are 2048, 3072 or 4096 bits (and EC keys P-256, P-384 or P-521); here the signing certificate's key is RSA 1024 — the envelope is PS256 by that key, the chain otherwise valid (made with openssl at run time).",
            Sig::WeakRsa),
        plan("chain-without-root", "an envelope whose chain stops at the leaf is refused", (SIGSPEC, "unsigned-attributes"), Refuse,
            "MUST refuse: the certificate chain starts with the signing certificate and ends with the root certificate; Validate Authenticity requires a complete chain.",
            Sig::ChainWithoutRoot),
        plan("chain-out-of-order", "an envelope whose chain lists the root first is refused", (SIGSPEC, "unsigned-attributes"), Refuse,
            "MUST refuse: \"The ordered list starts with the signing certificate\"; here the root comes first, so the first certificate is not the one whose key signed.",
            Sig::ChainOutOfOrder),
        plan("unsupported-content-type", "an envelope whose cty is not the Notary payload type is refused", steps, Refuse,
            "MUST refuse: Validate Integrity — the content type signed attribute must be supported (application/vnd.cncf.notary.payload.v1+json); here it is application/json.",
            Sig::ContentType),
        Plan { other_identity: true, ..plan("identity-not-trusted", "a signer not in trustedIdentities is refused", (TSTP, "trusted-identities-constraints"), Refuse,
            "MUST refuse: the signing certificate's subject must match an x509.subject in trustedIdentities (Validate Authenticity).",
            Sig::Valid(EnvelopeFormat::Jws)) },
        Plan { other_scope: true, ..plan("scope-not-matching", "no statement's registryScopes covers the image: refused", (TSTP, "selecting-a-trust-policy-to-verify-a-signed-oci-artifact"), Refuse,
            "MUST refuse: if no trust policy statement's registryScopes matches the artifact, verification fails.",
            Sig::Valid(EnvelopeFormat::Jws)) },
        Plan { tsa: true, ..plan("timestamped-expired-leaf", "an expired signing certificate with a valid timestamp from its validity is accepted at strict", (TSTP, "timestamp-countersignature-verification-details"), Accept,
            "MUST accept: Validate Authentic Timestamp — the RFC 3161 timestamp countersignature (from a TSA in the policy's tsa store) lies within the signing certificate chain's validity, so the expired chain is valid for this signature.",
            Sig::TimestampedThenExpired) },
        Plan { tsa: true, ..plan("timestamp-after-expiry", "a timestamp made after the signing certificate expired is refused", (TSTP, "timestamp-countersignature-verification-details"), Refuse,
            "MUST refuse: Validate Authentic Timestamp — the timestamp's time range must be entirely within the signing certificate chain's validity; the chain expired the day before.",
            Sig::TimestampAfterExpiry) },
        plan("expired-signature", "a signature past its io.cncf.notary.expiry is refused at strict", steps, Refuse,
            "MUST refuse: Validate Expiry — the current time is after the signed expiry; strict enforces it.",
            Sig::ExpiredSignature),
        plan("permissive-logs-expiry", "permissive: an expired signature is accepted (expiry is logged)", levels, Accept,
            "MUST accept: permissive enforces integrity and authenticity and only logs authentic timestamp, expiry and revocation.",
            Sig::ExpiredSignature).level("permissive", None),
        plan("permissive-logs-expired-leaf", "permissive: an expired signing certificate is accepted (authentic timestamp is logged)", levels, Accept,
            "MUST accept: the expired chain fails only Validate Authentic Timestamp, which permissive logs.",
            Sig::ExpiredLeaf).level("permissive", None),
        plan("permissive-enforces-authenticity", "permissive: an untrusted root is refused", levels, Refuse,
            "MUST refuse: permissive enforces authenticity.",
            Sig::Untrusted).level("permissive", None),
        plan("audit-logs-authenticity", "audit: an untrusted root is accepted (authenticity is logged)", levels, Accept,
            "MUST accept: audit enforces only integrity; authenticity failures are logged.",
            Sig::Untrusted).level("audit", None),
        plan("audit-enforces-integrity", "audit: a corrupted signature is refused", levels, Refuse,
            "MUST refuse: all levels but skip enforce integrity.",
            Sig::Corrupted).level("audit", None),
        plan("skip-accepts-unsigned", "skip: an unsigned image is accepted", levels, Accept,
            "MUST accept: the skip level performs no signature verification.",
            Sig::None).level("skip", None),
        plan("override-strict-expiry-log", "strict with expiry overridden to log: an expired signature is accepted", custom, Accept,
            "MUST accept: override sets expiry to log, so an expired signature is only logged.",
            Sig::ExpiredSignature).level("strict", Some(json!({"expiry": "log"}))),
        plan("override-audit-authenticity-enforce", "audit with authenticity overridden to enforce: an untrusted root is refused", custom, Refuse,
            "MUST refuse: override sets authenticity to enforce.",
            Sig::Untrusted).level("audit", Some(json!({"authenticity": "enforce"}))),
        plan("override-permissive-timestamp-enforce", "permissive with authenticTimestamp overridden to enforce: an expired leaf is refused", custom, Refuse,
            "MUST refuse: override sets authenticTimestamp to enforce, and the chain expired without a timestamp.",
            Sig::ExpiredLeaf).level("permissive", Some(json!({"authenticTimestamp": "enforce"}))),
    ]
}

/// Builds the checker's own cases: pushes each image and its signatures (the timestamp
/// cases only with a TSA). Also returns when the last short-lived certificate expires: the
/// cases that need it expired must not run before.
async fn build_corpus(opts: &VerifierOptions) -> Result<(Vec<Case>, Option<Timestamp>), Error> {
    let (client, registry, namespace) = (&opts.client, &opts.registry, &opts.namespace);
    let tsa = opts.tsa.as_ref();
    let pki = Pki::new()?;
    let mut cases = Vec::new();
    let mut expires = None;
    let mut weak = None;
    for p in corpus_plan() {
        if p.tsa && tsa.is_none() {
            continue;
        }
        let mut root = pki.root.clone();
        if matches!(p.sig, Sig::WeakRsa) {
            let dir = opts.workdir.join("weak-rsa-pki");
            if weak.is_none() {
                weak = Some(WeakRsa::make(&opts.openssl, &dir).await);
            }
            match weak.as_ref() {
                Some(Ok(w)) => root = w.root.clone(),
                Some(Err(reason)) => {
                    // reported as not run, with the reason
                    let (policy, stores) = (Value::Null, Stores::new());
                    cases.push(p.case(String::new(), policy, stores, vec![], Some(reason.clone())));
                    continue;
                }
                None => {}
            }
        }
        let weak = weak.as_ref().and_then(|w| w.as_ref().ok());
        let repository = format!("{namespace}/{}", p.name);
        let image = corpus::push_image(client, registry, &repository).await?;
        let mut input = vec![InputItem {
            label: "image".into(),
            text: image.reference.clone(),
        }];
        let signed = sign_case(client, registry, &pki, &image, &p.sig, tsa, weak).await?;
        if signed.expires.is_some() {
            expires = expires.max(signed.expires);
        }
        for (envelope, format, chain) in &signed.presented {
            input.push(InputItem {
                label: "signature envelope".into(),
                text: describe_envelope(envelope, *format),
            });
            for (i, c) in chain.iter().enumerate() {
                input.push(InputItem {
                    label: format!("certificate {} of the envelope's chain", i + 1),
                    text: describe_certificate(c),
                });
            }
        }
        let scope = if p.other_scope {
            format!("{registry}/{namespace}/another-repository")
        } else {
            format!("{registry}/{repository}")
        };
        let identity = if p.other_identity {
            "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=someone else"
        } else {
            "*"
        };
        let mut stores = Stores::from([("ca:conformance".to_owned(), vec![root])]);
        if let Some(tsa) = tsa.filter(|_| p.tsa) {
            stores.insert("tsa:conformance-tsa".to_owned(), vec![tsa.root.clone()]);
        }
        let refs: Vec<&str> = stores.keys().map(String::as_str).collect();
        let policy = policy(&scope, p.level, p.overrides.clone(), &refs, &[identity]);
        input.push(InputItem {
            label: "trust policy".into(),
            text: corpus::pretty(&policy),
        });
        for (name, certs) in &stores {
            for c in certs {
                input.push(InputItem {
                    label: format!("trust store {name}"),
                    text: describe_certificate(c),
                });
            }
        }
        cases.push(p.case(image.reference.clone(), policy, stores, input, None));
    }
    Ok((cases, expires))
}

/// What signing a case presented, and when its short-lived certificate expires (if any).
struct Signed {
    presented: Vec<Presented>,
    expires: Option<Timestamp>,
}

/// An envelope presented to the verifier, its format and the chain it carries.
type Presented = (Vec<u8>, EnvelopeFormat, Vec<berth_trust::Certificate>);

/// Signs `image` as `sig` says and pushes the signature; returns the envelopes presented.
async fn sign_case(
    client: &Client,
    registry: &str,
    pki: &Pki,
    image: &Image,
    sig: &Sig,
    tsa: Option<&Tsa>,
    weak: Option<&WeakRsa>,
) -> Result<Signed, Error> {
    use EnvelopeFormat::{Cose, Jws};
    let now = Timestamp::now().0;
    let day = 86_400;
    let signer = &pki.signer;
    let reversed: Vec<_> = signer.chain.iter().rev().cloned().collect();
    // A hand-made JWS with the protected header `h`, signed by the trusted signer.
    let es256 = |h| {
        corpus::raw_jws(
            &image.target,
            h,
            RawSigner::Es256(&signer.key),
            &signer.chain,
        )
    };
    let (envelope, format, chain): (Vec<u8>, EnvelopeFormat, &[berth_trust::Certificate]) =
        match sig {
            Sig::None => {
                return Ok(Signed {
                    presented: Vec::new(),
                    expires: None,
                });
            }
            Sig::TimestampedThenExpired | Sig::TimestampAfterExpiry => {
                let Some(tsa) = tsa else {
                    return Err(Error::corpus(
                        "timestamp case",
                        corpus::KeyRejected("no timestamp authority was given".into()),
                    ));
                };
                // Valid for SHORT_LIVED seconds: long enough to be timestamped now, expired
                // when the verifier runs (check_verifier waits for it).
                let short;
                let (id, expires) = match sig {
                    Sig::TimestampedThenExpired => {
                        short = pki.short_lived(SHORT_LIVED)?;
                        (&short, Some(short.chain[0].not_after))
                    }
                    _ => (&pki.expired, None),
                };
                let env = corpus::sign_timestamped(client, &image.target, id, tsa).await?;
                corpus::push_signature(
                    client,
                    registry,
                    image,
                    &image.descriptor,
                    &env,
                    Jws,
                    &id.chain,
                )
                .await?;
                return Ok(Signed {
                    presented: vec![(env, Jws, id.chain.clone())],
                    expires,
                });
            }
            Sig::Valid(f) => (
                corpus::sign(&image.target, signer, *f, |_| {})?,
                *f,
                &signer.chain,
            ),
            Sig::WrongDigest => {
                let mut target = image.target.clone();
                target.digest =
                    berth_oci::Digest::sha256_of(image.reference.as_bytes()).to_string();
                (
                    corpus::sign(&target, signer, Jws, |_| {})?,
                    Jws,
                    &signer.chain,
                )
            }
            Sig::WrongSize => {
                let mut target = image.target.clone();
                target.size += 1;
                (
                    corpus::sign(&target, signer, Jws, |_| {})?,
                    Jws,
                    &signer.chain,
                )
            }
            Sig::WrongMediaType => {
                let mut target = image.target.clone();
                target.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
                (
                    corpus::sign(&target, signer, Jws, |_| {})?,
                    Jws,
                    &signer.chain,
                )
            }
            Sig::SubjectSwapped => {
                let other = corpus::push_image(client, registry, image.repo.name()).await?;
                let env = corpus::sign(&other.target, signer, Jws, |_| {})?;
                // The genuine signature of the other image, as a signer would push it …
                corpus::push_signature(
                    client,
                    registry,
                    &other,
                    &other.descriptor,
                    &env,
                    Jws,
                    &signer.chain,
                )
                .await?;
                // … and the same envelope attached to this image.
                (env, Jws, &signer.chain)
            }
            Sig::Corrupted => {
                let env = corpus::sign(&image.target, signer, Jws, |_| {})?;
                (corpus::corrupt_jws(&env)?, Jws, &signer.chain)
            }
            Sig::ExpiredLeaf => {
                let id = &pki.expired;
                let env = corpus::sign(&image.target, id, Jws, |o| {
                    o.signing_time = Timestamp(now - 5 * day);
                })?;
                (env, Jws, &id.chain)
            }
            Sig::Untrusted => {
                let id = &pki.untrusted;
                (
                    corpus::sign(&image.target, id, Jws, |_| {})?,
                    Jws,
                    &id.chain,
                )
            }
            Sig::ServerAuthLeaf => {
                let id = &pki.server_auth;
                (
                    corpus::sign(&image.target, id, Cose, |_| {})?,
                    Cose,
                    &id.chain,
                )
            }
            Sig::UnknownCritical => {
                let mut h = corpus::standard_protected("ES256");
                h.insert(
                    "crit".into(),
                    json!([
                        "io.cncf.notary.signingScheme",
                        "io.cncf.conformance.unknownCritical"
                    ]),
                );
                h.insert(
                    "io.cncf.conformance.unknownCritical".into(),
                    "must-understand".into(),
                );
                let env = es256(h)?;
                (env, Jws, &signer.chain)
            }
            Sig::UnknownCriticalCose => {
                let env = corpus::raw_cose_with_critical(
                    &image.target,
                    &[("io.cncf.conformance.unknownCritical", "must-understand")],
                    &signer.key,
                    &signer.chain,
                )?;
                (env, Cose, &signer.chain[..])
            }
            Sig::AlgMismatch => {
                let h = corpus::standard_protected("ES384");
                let env = es256(h)?;
                (env, Jws, &signer.chain)
            }
            Sig::Hmac => {
                let h = corpus::standard_protected("HS256");
                (
                    corpus::raw_jws(&image.target, h, RawSigner::Hs256, &signer.chain)?,
                    Jws,
                    &signer.chain,
                )
            }
            Sig::ChainWithoutRoot => {
                let leaf = &signer.chain[..1];
                let env =
                    berth_trust::sign(&image.target, &signer.key, leaf, &SignOptions::new(Jws))
                        .map_err(|e| Error::corpus("signature", e))?;
                (env, Jws, leaf)
            }
            Sig::ChainOutOfOrder => {
                let h = corpus::standard_protected("ES256");
                let env =
                    corpus::raw_jws(&image.target, h, RawSigner::Es256(&signer.key), &reversed)?;
                (env, Jws, &reversed[..])
            }
            Sig::ContentType => {
                let mut h = corpus::standard_protected("ES256");
                h.insert("cty".into(), "application/json".into());
                let env = es256(h)?;
                (env, Jws, &signer.chain)
            }
            Sig::WeakRsa => {
                let Some(w) = weak else {
                    return Err(Error::corpus(
                        "weak-key case",
                        corpus::KeyRejected("openssl made no weak key".into()),
                    ));
                };
                let jws =
                    corpus::JwsInput::new(&image.target, &corpus::standard_protected("PS256"))?;
                let signature = w
                    .sign_ps256(jws.signing_input().as_bytes())
                    .await
                    .map_err(|r| Error::corpus("weak-key signature", corpus::KeyRejected(r)))?;
                (jws.assemble(&signature, &w.chain)?, Jws, &w.chain[..])
            }
            Sig::ExpiredSignature => {
                let env = corpus::sign(&image.target, signer, Jws, |o| {
                    o.signing_time = Timestamp(now - 2 * day);
                    o.expiry = Some(Timestamp(now - day));
                })?;
                (env, Jws, &signer.chain)
            }
        };
    corpus::push_signature(
        client,
        registry,
        image,
        &image.descriptor,
        &envelope,
        format,
        chain,
    )
    .await?;
    Ok(Signed {
        presented: vec![(envelope, format, chain.to_vec())],
        expires: None,
    })
}

/// Writes a case's policy and trust store under `dir` for both notation and berth.
fn write_config(dir: &Path, case: &Case) -> Result<(), Error> {
    let write = |path: PathBuf, data: &[u8]| {
        berth_fsutil::atomic_write(&path, data).map_err(|source| Error::Write { path, source })
    };
    let policy = serde_json::to_vec(&case.policy).unwrap_or_default();
    for tool in ["notation", "berth"] {
        write(dir.join(tool).join("trustpolicy.json"), &policy)?;
        for (store, certs) in &case.stores {
            let (kind, name) = store.split_once(':').unwrap_or(("ca", store));
            write(
                dir.join(tool)
                    .join("truststore/x509")
                    .join(kind)
                    .join(name)
                    .join(format!("{name}.crt")),
                berth_trust::keys::chain_pem(certs).as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// Presents every case to the verifier and reports on each.
#[tracing::instrument(level = "info", skip_all, fields(registry = %opts.registry, command = %opts.command.as_str()))]
pub async fn check_verifier(opts: &VerifierOptions) -> Result<Report, Error> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let (mut cases, expires) = build_corpus(opts).await?;
    if let Some(end) = expires {
        // The timestamped certificate must have expired before the verifier sees it; it
        // lives SHORT_LIVED seconds, so this waits that long at most (and a second more).
        let wait = (end.0 + 1 - Timestamp::now().0).clamp(0, SHORT_LIVED + 1);
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    }
    if let Some(dir) = &opts.vectors {
        cases.extend(
            super::vectors::cases(&opts.client, &opts.registry, &opts.namespace, dir).await?,
        );
    }
    let mut results = Vec::with_capacity(cases.len());
    for (n, case) in cases.into_iter().enumerate() {
        if let Some(reason) = &case.not_run {
            tracing::info!(case = %case.id, %reason, "case not run");
            results.push(not_run(&case, reason));
            continue;
        }
        let name = case.id.split_once('.').map_or(case.id.as_str(), |(_, n)| n);
        let dir = opts.workdir.join(format!("{:02}-{name}", n + 1));
        write_config(&dir, &case)?;
        let notation = dir.join("notation");
        let values = BTreeMap::from([
            ("image", case.image.clone()),
            (
                "policy",
                notation.join("trustpolicy.json").display().to_string(),
            ),
            (
                "truststore",
                notation.join("truststore").display().to_string(),
            ),
            ("config", dir.display().to_string()),
        ]);
        let run = opts
            .command
            .run(
                &values,
                &[("XDG_CONFIG_HOME", dir.as_path())],
                &dir,
                opts.timeout,
            )
            .await;
        tracing::debug!(case = %case.id, code = ?run.code, "verifier ran");
        // A command that cannot start says nothing about conformance: stop, say why.
        if run.not_started {
            return Err(Error::Start {
                command: opts.command.as_str().to_owned(),
                reason: run.error.unwrap_or_default(),
            });
        }
        results.push(judge(case, &run));
    }
    Ok(super::report(
        Subject::Verifier,
        opts.command.as_str(),
        &opts.registry,
        &opts.namespace,
        berth_oci::timefmt::rfc3339(started),
        clock.elapsed().as_millis() as u64,
        results,
    ))
}

/// A case that did not run: skipped with its reason (not a pass, not a violation).
fn not_run(case: &Case, reason: &str) -> CheckResult {
    CheckResult {
        info: info(case),
        outcome: crate::Verdict::NotRun(format!("not run: {reason}")).outcome(Level::Must),
        duration_ms: 0,
        exchanges: Vec::new(),
        evidence: Some(Evidence {
            input: Vec::new(),
            observed: format!("not run: {reason}"),
            required: case.required.clone(),
        }),
    }
}

fn info(case: &Case) -> CheckInfo {
    CheckInfo {
        spec_url: spec_url(case.doc, case.anchor),
        section: format!("{}: {}", case.doc, case.anchor),
        id: case.id.clone(),
        title: case.title.clone(),
        workflow: case.workflow,
        level: Level::Must,
        optional: false,
    }
}

/// Compares what the verifier did with what the case requires.
fn judge(case: Case, run: &Run) -> CheckResult {
    let did = match (run.code, &run.error) {
        (Some(0), _) => "accepted (exit status 0)".to_owned(),
        (Some(code), _) => format!("refused (exit status {code})"),
        (None, Some(e)) => format!("gave no verdict: {e}"),
        (None, None) => "gave no verdict".to_owned(),
    };
    let verdict = match (run.code, case.expect) {
        (Some(0), Expect::Accept) => crate::Verdict::Pass,
        (Some(0), Expect::Refuse) => crate::Verdict::violation(format!(
            "accepted what the specification requires it to refuse: {}",
            case.title
        )),
        (Some(_), Expect::Accept) => crate::Verdict::violation(format!(
            "refused what the specification requires it to accept: {}",
            case.title
        )),
        (Some(_), Expect::Refuse) => crate::Verdict::Pass,
        (None, _) => crate::Verdict::violation(format!("no verdict: {did}")),
    };
    let outcome: Outcome = verdict.outcome(Level::Must);
    let mut observed = did;
    if !run.output.trim().is_empty() {
        observed.push_str("\n--- its output (the end of stdout and stderr) ---\n");
        observed.push_str(run.output.trim_end());
    }
    CheckResult {
        info: info(&case),
        outcome,
        duration_ms: run.duration.as_millis() as u64,
        exchanges: Vec::new(),
        evidence: Some(Evidence {
            input: case.input,
            observed,
            required: case.required,
        }),
    }
}

/// The ids of the checker's own cases that MUST be refused (for tests and docs).
pub fn must_refuse_ids() -> Vec<String> {
    corpus_plan()
        .into_iter()
        .filter(|p| p.expect == Expect::Refuse)
        .map(|p| format!("verifier.{}", p.name))
        .collect()
}

/// The ids of the checker's own cases that MUST be accepted.
pub fn must_accept_ids() -> Vec<String> {
    corpus_plan()
        .into_iter()
        .filter(|p| p.expect == Expect::Accept)
        .map(|p| format!("verifier.{}", p.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    #[test]
    fn every_case_cites_a_section_and_both_verdicts_are_covered() {
        let plan = corpus_plan();
        assert!(plan.iter().any(|p| p.expect == Expect::Accept));
        assert!(plan.iter().any(|p| p.expect == Expect::Refuse));
        let mut names: Vec<_> = plan.iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), plan.len(), "case names are unique");
        for p in &plan {
            assert!(
                !p.anchor.is_empty() && p.required.starts_with("MUST "),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn skip_policies_have_no_trust_store() {
        let p = policy("h/r", "skip", None, &["ca:x"], &["*"]);
        let s = &p["trustPolicies"][0];
        assert!(s.get("trustStores").is_none() && s.get("trustedIdentities").is_none());
        let p = policy(
            "h/r",
            "audit",
            Some(json!({"authenticity": "enforce"})),
            &["ca:x"],
            &["*"],
        );
        assert_eq!(p["trustPolicies"][0]["trustStores"], json!(["ca:x"]));
        assert_eq!(
            p["trustPolicies"][0]["signatureVerification"]["override"]["authenticity"],
            "enforce"
        );
    }

    #[test]
    fn the_verdict_is_the_exit_status() {
        let case = |expect| Case {
            id: "verifier.x".into(),
            title: "x".into(),
            workflow: Workflow::Verifier,
            doc: TSTP,
            anchor: "steps",
            expect,
            required: "MUST".into(),
            image: "h/r@sha256:0".into(),
            policy: json!({}),
            stores: Stores::new(),
            input: vec![],
            not_run: None,
        };
        let run = |code: Option<i32>| Run {
            code,
            not_started: false,
            error: code.is_none().then(|| "killed".to_owned()),
            output: "out".into(),
            duration: Duration::from_millis(5),
        };
        assert_eq!(
            judge(case(Expect::Accept), &run(Some(0))).outcome.status,
            Status::Pass
        );
        assert_eq!(
            judge(case(Expect::Refuse), &run(Some(1))).outcome.status,
            Status::Pass
        );
        assert_eq!(
            judge(case(Expect::Refuse), &run(Some(0))).outcome.status,
            Status::Fail
        );
        assert_eq!(
            judge(case(Expect::Accept), &run(Some(2))).outcome.status,
            Status::Fail
        );
        let r = judge(case(Expect::Refuse), &run(None));
        assert_eq!(r.outcome.status, Status::Fail);
        assert!(
            r.evidence
                .unwrap()
                .observed
                .contains("gave no verdict: killed")
        );
    }
}
