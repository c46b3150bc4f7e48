//! Signer rules: one produced Notary Project signature (its signature manifest and its
//! envelope) judged rule by rule against the Notary Project specifications v1.1.0.
//!
//! Unlike `berth_trust::Envelope::parse`, which refuses an envelope at its first fault (what
//! a verifier must do), [`check_signature`] decodes as much as it can and evaluates every
//! rule on its own, so that a signer that breaks one rule fails that rule and no other: the
//! signature value is checked over the bytes as they were signed, whatever the headers say.
//! Every rule is in [`RULES`] with its level and the section it enforces.

mod certificates;
mod decode;
mod envelope;
mod manifest;

use berth_oci::Digest;
use berth_oci::oci_spec::image::Descriptor;
use berth_trust::cert::{Certificate, Curve, KeyUsage, PublicKey};
use berth_trust::manifest::{ANNOTATION_THUMBPRINT, ARTIFACT_TYPE};
use berth_trust::{EnvelopeFormat, SignatureAlgorithm, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::Level;
use decode::{Decoded, Hv, decode};

/// The release the rules follow.
pub const NOTARY_SPEC_VERSION: &str = "v1.1.0";
/// Where the specification's files are: `{NOTARY_SPEC_URL}/{file}#{anchor}`.
pub const NOTARY_SPEC_URL: &str =
    "https://github.com/notaryproject/specifications/blob/v1.1.0/specs";

const PAYLOAD_CTY: &str = "application/vnd.cncf.notary.payload.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const H_SCHEME: &str = "io.cncf.notary.signingScheme";
const H_TIME: &str = "io.cncf.notary.signingTime";
const H_AUTH_TIME: &str = "io.cncf.notary.authenticSigningTime";
const H_EXPIRY: &str = "io.cncf.notary.expiry";
const H_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
const H_PLUGIN_MIN: &str = "io.cncf.notary.verificationPluginMinVersion";
/// Protected headers that are critical whenever they are present.
const CRITICAL_WHEN_PRESENT: &[&str] = &[H_AUTH_TIME, H_EXPIRY, H_PLUGIN, H_PLUGIN_MIN];
/// JWS registered header names (RFC 7515 4.1): never in `crit`.
const JWS_REGISTERED: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
];
const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// extendedKeyUsage values a code-signing leaf MUST NOT have (with their names).
const EKU_FORBIDDEN: &[(&str, &str)] = &[
    ("2.5.29.37.0", "anyExtendedKeyUsage"),
    ("1.3.6.1.5.5.7.3.1", "serverAuth"),
    ("1.3.6.1.5.5.7.3.2", "clientAuth"),
    ("1.3.6.1.5.5.7.3.4", "emailProtection"),
    ("1.3.6.1.5.5.7.3.8", "timeStamping"),
];

/// Which specification file a rule cites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpecDoc {
    /// `signature-specification.md`.
    Signature,
    /// The envelope format's own file: `signature-envelope-jws.md` or `-cose.md`.
    Envelope,
}

/// A rule: what it requires and where the specification says so.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub doc: SpecDoc,
    /// The section's anchor (for [`SpecDoc::Envelope`], the JWS file's; the COSE file
    /// names its "Protected Header" in the singular).
    pub anchor: &'static str,
}

impl RuleInfo {
    /// The section's URL for an envelope of `format` (JWS when unknown).
    pub fn spec_url(&self, format: Option<EnvelopeFormat>) -> String {
        match (self.doc, format) {
            (SpecDoc::Signature, _) => {
                format!(
                    "{NOTARY_SPEC_URL}/signature-specification.md#{}",
                    self.anchor
                )
            }
            (SpecDoc::Envelope, Some(EnvelopeFormat::Cose)) => {
                let anchor = match self.anchor {
                    "protected-headers" => "protected-header",
                    a => a,
                };
                format!("{NOTARY_SPEC_URL}/signature-envelope-cose.md#{anchor}")
            }
            (SpecDoc::Envelope, _) => {
                format!(
                    "{NOTARY_SPEC_URL}/signature-envelope-jws.md#{}",
                    self.anchor
                )
            }
        }
    }
}

macro_rules! rule {
    ($id:literal, $level:ident, $doc:ident, $anchor:literal, $title:literal) => {
        RuleInfo {
            id: $id,
            title: $title,
            level: Level::$level,
            doc: SpecDoc::$doc,
            anchor: $anchor,
        }
    };
}

/// Every signer rule, in the order results are given.
pub const RULES: &[RuleInfo] = &[
    rule!(
        "envelope.structure",
        Must,
        Envelope,
        "signature-envelope",
        "the envelope is a flattened JWS JSON object (payload, protected, header, signature) or a tagged COSE_Sign1 (tag 18, 4 elements, attached payload)"
    ),
    rule!(
        "envelope.required-headers",
        Must,
        Envelope,
        "protected-headers",
        "the protected header has alg, cty, crit, io.cncf.notary.signingScheme and the signing time the scheme requires"
    ),
    rule!(
        "envelope.signing-scheme",
        Must,
        Envelope,
        "protected-headers",
        "io.cncf.notary.signingScheme is notary.x509 or notary.x509.signingAuthority"
    ),
    rule!(
        "envelope.crit",
        Must,
        Envelope,
        "protected-headers",
        "crit lists io.cncf.notary.signingScheme and every critical header present, each present, and no registered header"
    ),
    rule!(
        "envelope.cty",
        Must,
        Envelope,
        "protected-headers",
        "the content type is application/vnd.cncf.notary.payload.v1+json"
    ),
    rule!(
        "envelope.alg",
        Must,
        Envelope,
        "supported-alg-header-values",
        "alg is the algorithm the signing certificate's key selects"
    ),
    rule!(
        "envelope.signature",
        Must,
        Envelope,
        "signature",
        "the signature verifies with the signing certificate's key over the signed bytes"
    ),
    rule!(
        "envelope.time-format",
        Must,
        Envelope,
        "protected-headers",
        "signing times and expiry are RFC 3339 strings (JWS) or tag-1 epoch integers (COSE)"
    ),
    rule!(
        "envelope.time-fraction",
        Should,
        Envelope,
        "protected-headers",
        "times carry no fractional seconds"
    ),
    rule!(
        "envelope.expiry",
        Must,
        Signature,
        "expiry",
        "an expiry, when present, is after the signing time"
    ),
    rule!(
        "envelope.unprotected-headers",
        Must,
        Envelope,
        "unprotected-headers",
        "the unprotected header holds only the certificate chain, io.cncf.notary.timestampSignature and io.cncf.notary.signingAgent"
    ),
    rule!(
        "chain.present",
        Must,
        Signature,
        "unsigned-attributes",
        "the certificate chain is present and every entry is a DER X.509 certificate"
    ),
    rule!(
        "chain.order",
        Must,
        Signature,
        "other-requirements",
        "the chain is ordered leaf first, each certificate issued and signed by the next, ending at a self-signed root"
    ),
    rule!(
        "chain.leaf-basic-constraints",
        Must,
        Signature,
        "leaf-certificates",
        "the signing certificate's basicConstraints, if present, has cA false"
    ),
    rule!(
        "chain.leaf-key-usage",
        Must,
        Signature,
        "leaf-certificates",
        "the signing certificate's keyUsage is present, critical, has digitalSignature and none of the forbidden bits"
    ),
    rule!(
        "chain.leaf-eku",
        Must,
        Signature,
        "leaf-certificates",
        "the signing certificate's extendedKeyUsage, if present, has no anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection or timeStamping"
    ),
    rule!(
        "chain.ca-constraints",
        Must,
        Signature,
        "root-and-intermediate-ca-certificates",
        "every CA certificate has basicConstraints cA true (pathLenConstraint kept) and a critical keyUsage with keyCertSign"
    ),
    rule!(
        "chain.key-size",
        Must,
        Signature,
        "leaf-certificates",
        "every key is RSA of 2048 bits or more or EC on P-256, P-384 or P-521"
    ),
    rule!(
        "chain.validity",
        Must,
        Signature,
        "other-requirements",
        "every certificate of the chain is valid at the signing time"
    ),
    rule!(
        "payload.structure",
        Must,
        Signature,
        "payload",
        "the payload is JSON with a targetArtifact descriptor holding mediaType, digest and size"
    ),
    rule!(
        "payload.target",
        Must,
        Signature,
        "payload",
        "the targetArtifact's digest, size and media type are the signed image's"
    ),
    rule!(
        "manifest.media-type",
        Must,
        Signature,
        "signature",
        "the signature manifest is an OCI image manifest (application/vnd.oci.image.manifest.v1+json)"
    ),
    rule!(
        "manifest.type",
        Must,
        Signature,
        "signature",
        "the manifest says it is a Notary Project signature: config.mediaType application/vnd.cncf.notary.signature (v1.1.0's form), or artifactType with the OCI empty config (the form the specification's main branch prefers)"
    ),
    rule!(
        "manifest.config",
        Should,
        Signature,
        "signature",
        "the config is the empty JSON object {} (size 2, sha256:44136fa3…)"
    ),
    rule!(
        "manifest.layer",
        Must,
        Signature,
        "signature",
        "exactly one layer, of media type application/jose+json or application/cose, naming the envelope by digest and size"
    ),
    rule!(
        "manifest.subject",
        Must,
        Signature,
        "signature",
        "subject is the signed image's descriptor (digest, size, media type)"
    ),
    rule!(
        "manifest.thumbprints",
        Must,
        Signature,
        "signature",
        "the io.cncf.notary.x509chain.thumbprint#S256 annotation is a JSON array of the chain's SHA-256 thumbprints, in order"
    ),
    rule!(
        "manifest.discoverable",
        Must,
        Signature,
        "signature-discovery",
        "the signature is listed for its subject through the referrers API or the referrers tag schema"
    ),
];

/// How the checker found the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum HowPushed {
    /// Listed by the registry's referrers API.
    ReferrersApi,
    /// Listed in the `sha256-<hex>` referrers tag index (a registry without the API).
    TagFallback,
    /// Found, but listed by neither (the string says where it was found).
    NotListed(String),
    /// Handed to the checker as files: how it was pushed is not judged.
    Given,
}

/// One rule's result on one signature.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub id: String,
    pub title: String,
    pub level: Level,
    /// The Notary Project specification v1.1.0 file and section.
    pub spec_url: String,
    pub passed: bool,
    /// What the specification requires.
    pub expected: String,
    /// What the signature has.
    pub actual: String,
    /// A readable decoding of what was checked (headers, certificates, descriptors).
    pub input: String,
}

/// One line per certificate: subject, issuer, key, constraints, usages, validity.
pub fn describe_chain(chain: &[Certificate]) -> String {
    let mut out = String::from("certificate chain:\n");
    for (i, c) in chain.iter().enumerate() {
        let bc = match c.basic_constraints {
            Some(b) => format!(
                "cA={}{}",
                b.ca,
                b.path_len
                    .map(|p| format!(" pathLen={p}"))
                    .unwrap_or_default()
            ),
            None => "no basicConstraints".into(),
        };
        let ku = match c.key_usage {
            Some(k) => format!(
                "keyUsage {}{}",
                key_usage_names(k.bits).join("+"),
                if k.critical { " (critical)" } else { "" }
            ),
            None => "no keyUsage".into(),
        };
        let eku = match &c.ext_key_usage {
            Some(e) => format!(
                "EKU {}",
                e.iter().map(|o| eku_name(o)).collect::<Vec<_>>().join("+")
            ),
            None => "no EKU".into(),
        };
        out.push_str(&format!(
            "  [{i}] subject {}; issuer {}; {}; {bc}; {ku}; {eku}; valid {} to {}; sha256 {}\n",
            c.subject,
            c.issuer,
            c.public_key.describe(),
            c.not_before,
            c.not_after,
            Digest::sha256_of(c.der()).hex()
        ));
    }
    out
}

const KEY_USAGE_BITS: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

fn key_usage_names(bits: u16) -> Vec<&'static str> {
    KEY_USAGE_BITS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// An extendedKeyUsage OID by its name where the rules know it, else the OID itself.
pub(crate) fn eku_name(oid: &str) -> &str {
    if oid == OID_CODE_SIGNING {
        return "codeSigning";
    }
    EKU_FORBIDDEN
        .iter()
        .find(|(o, _)| *o == oid)
        .map_or(oid, |(_, n)| n)
}

/// Results are built through this: one per rule of [`RULES`], in order.
struct Results {
    format: Option<EnvelopeFormat>,
    out: Vec<RuleResult>,
}

impl Results {
    fn add(
        &mut self,
        id: &str,
        passed: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
        input: impl Into<String>,
    ) {
        let Some(info) = RULES.iter().find(|r| r.id == id) else {
            return;
        };
        self.out.push(RuleResult {
            id: info.id.to_owned(),
            title: info.title.to_owned(),
            level: info.level,
            spec_url: info.spec_url(self.format),
            passed,
            expected: expected.into(),
            actual: actual.into(),
            input: input.into(),
        });
    }
}

fn alg_of(d: &Decoded) -> Result<SignatureAlgorithm, String> {
    match (d.format, d.get("alg")) {
        (_, None) => Err("no alg header".into()),
        (Some(EnvelopeFormat::Cose), Some(Hv::Int(i))) => SignatureAlgorithm::from_cose(*i)
            .ok_or_else(|| format!("alg {i} is not an allowed algorithm")),
        (_, Some(Hv::Text(s))) if d.format == Some(EnvelopeFormat::Jws) => {
            SignatureAlgorithm::from_jws(s)
                .ok_or_else(|| format!("alg {s:?} is not an allowed algorithm"))
        }
        (_, Some(v)) => Err(format!("alg is {v}, of the wrong type")),
    }
}

/// The signing time the scheme names, parsed, if any.
fn time_of(d: &Decoded, name: &str) -> Option<Result<Timestamp, String>> {
    let v = d.get(name)?;
    Some(match (d.format, v) {
        (Some(EnvelopeFormat::Jws), Hv::Text(s)) => Timestamp::parse_rfc3339(s)
            .ok_or_else(|| format!("{name} {s:?} is not an RFC 3339 date-time")),
        (Some(EnvelopeFormat::Cose), Hv::Epoch(t)) => Ok(Timestamp(*t)),
        (Some(EnvelopeFormat::Cose), other) => {
            Err(format!("{name} is {other}, not a tag-1 epoch integer"))
        }
        (_, other) => Err(format!("{name} is {other}, not an RFC 3339 string")),
    })
}

fn key_ok(k: &PublicKey) -> bool {
    match k {
        PublicKey::Rsa { bits, .. } => *bits >= 2048,
        PublicKey::Ec { curve, .. } => matches!(curve, Curve::P256 | Curve::P384 | Curve::P521),
        PublicKey::Other { .. } => false,
    }
}

/// What every rule reads of one signature.
#[derive(Clone, Copy)]
struct Cx<'a> {
    d: &'a Decoded,
    format: Option<EnvelopeFormat>,
    chain: &'a [Certificate],
    cert_faults: &'a [String],
    /// The readable decoding every result carries.
    input: &'a str,
    subject: &'a Descriptor,
    /// The signing-time header the scheme names (none for an unknown scheme).
    time_header: Option<&'static str>,
    signing_time: Option<Timestamp>,
    leaf: Option<&'a Certificate>,
}

/// Judge one signature: its manifest's bytes, its envelope's bytes, the descriptor of the
/// image it should sign, and how the checker found it. One result per rule of [`RULES`]
/// (`manifest.discoverable` is left out for [`HowPushed::Given`]).
pub fn check_signature(
    manifest_bytes: &[u8],
    envelope_bytes: &[u8],
    subject: &Descriptor,
    how_pushed: &HowPushed,
) -> Vec<RuleResult> {
    let manifest: Option<Map<String, Value>> = match serde_json::from_slice(manifest_bytes) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let layers = manifest
        .as_ref()
        .and_then(|m| m.get("layers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let layer_type = layers
        .first()
        .and_then(|l| l.get("mediaType"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let format = EnvelopeFormat::from_media_type(&layer_type).ok();
    let d = decode(envelope_bytes, format);
    let format = d.format;
    let mut r = Results {
        format,
        out: Vec::new(),
    };
    let mut chain = Vec::new();
    let mut cert_faults = d.chain_faults.clone();
    for (i, der) in d.chain_der.iter().flatten().enumerate() {
        match Certificate::from_der(der) {
            Ok(c) => chain.push(c),
            Err(e) => cert_faults.push(format!("certificate {i} does not parse: {e}")),
        }
    }
    let input = d.readable(&chain);

    let scheme = d.text(H_SCHEME).map(str::to_owned);
    let time_header = match scheme.as_deref() {
        Some("notary.x509.signingAuthority") => Some(H_AUTH_TIME),
        Some("notary.x509") => Some(H_TIME),
        _ => None,
    };
    let signing_time = time_header
        .and_then(|h| time_of(&d, h))
        .and_then(Result::ok);
    let leaf = chain.first();
    let cx = Cx {
        d: &d,
        format,
        chain: &chain,
        cert_faults: &cert_faults,
        input: &input,
        subject,
        time_header,
        signing_time,
        leaf,
    };
    envelope::rules(&mut r, &cx);
    certificates::rules(&mut r, &cx);
    manifest::rules(
        &mut r,
        &cx,
        manifest_bytes,
        envelope_bytes,
        how_pushed,
        manifest,
        &layers,
        &layer_type,
    );
    r.out
}

/// Whether `d` (a JSON descriptor) has `subject`'s media type, digest and size; and what
/// it has.
fn same_descriptor(d: &Map<String, Value>, subject: &Descriptor) -> (bool, String) {
    let mt = d
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("absent");
    let dg = d.get("digest").and_then(Value::as_str).unwrap_or("absent");
    let sz = d.get("size").and_then(Value::as_u64);
    (
        mt == subject.media_type().to_string()
            && dg == subject.digest().to_string()
            && sz == Some(subject.size()),
        format!(
            "mediaType {mt}, digest {dg}, size {}",
            sz.map_or("absent".into(), |s| s.to_string())
        ),
    )
}

/// (no faults, what was found — with the faults after it when there are some).
fn judged<S: AsRef<str>>(faults: &[S], shown: String, prefix: &str) -> (bool, String) {
    if faults.is_empty() {
        return (true, shown);
    }
    let list: Vec<&str> = faults.iter().map(AsRef::as_ref).collect();
    (false, format!("{shown}: {prefix}{}", list.join(", ")))
}

fn want_target_text(subject: &Descriptor) -> String {
    format!(
        "mediaType {}, digest {}, size {}",
        subject.media_type(),
        subject.digest(),
        subject.size()
    )
}
