//! Signer rules: one produced Notary Project signature (its signature manifest and its
//! envelope) judged rule by rule against the Notary Project specifications v1.1.0.
//!
//! Unlike `berth_trust::Envelope::parse`, which refuses an envelope at its first fault (what
//! a verifier must do), [`check_signature`] decodes as much as it can and evaluates every
//! rule on its own, so that a signer that breaks one rule fails that rule and no other: the
//! signature value is checked over the bytes as they were signed, whatever the headers say.
//! Every rule is in [`RULES`] with its level and the section it enforces.

mod decode;

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

fn eku_name(oid: &str) -> &str {
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
    let manifest_text = String::from_utf8_lossy(manifest_bytes).into_owned();
    let subject_text = format!(
        "signed image: mediaType {}, digest {}, size {}",
        subject.media_type(),
        subject.digest(),
        subject.size()
    );

    // envelope.structure
    r.add(
        "envelope.structure",
        d.structure.is_empty(),
        match format {
            Some(EnvelopeFormat::Cose) => "a COSE_Sign1_Tagged: tag 18 over [protected bstr (a non-empty map), unprotected map, payload bstr, signature bstr]",
            _ => "a flattened JWS JSON object with exactly payload, protected, header and signature, base64url without padding",
        },
        if d.structure.is_empty() { "as required".into() } else { d.structure.join("; ") },
        &input,
    );

    // envelope.required-headers
    let scheme = d.text(H_SCHEME).map(str::to_owned);
    let mut missing = Vec::new();
    for h in ["alg", "cty", "crit", H_SCHEME] {
        if d.get(h).is_none() {
            missing.push(h.to_owned());
        }
    }
    let time_header = match scheme.as_deref() {
        Some("notary.x509.signingAuthority") => Some(H_AUTH_TIME),
        Some("notary.x509") => Some(H_TIME),
        _ => None,
    };
    let mut misplaced = Vec::new();
    if let Some(t) = time_header {
        if d.get(t).is_none() {
            missing.push(t.to_owned());
        }
        if t == H_TIME && d.get(H_AUTH_TIME).is_some() {
            misplaced.push(format!(
                "{H_AUTH_TIME} is only valid for notary.x509.signingAuthority"
            ));
        }
    }
    r.add(
        "envelope.required-headers",
        missing.is_empty() && misplaced.is_empty(),
        format!("alg, cty, crit, {H_SCHEME}, and {H_TIME} (notary.x509) or {H_AUTH_TIME} (notary.x509.signingAuthority)"),
        if missing.is_empty() && misplaced.is_empty() {
            format!("present: {}", d.protected.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "))
        } else {
            let mut v = Vec::new();
            if !missing.is_empty() {
                v.push(format!("missing: {}", missing.join(", ")));
            }
            v.extend(misplaced);
            v.join("; ")
        },
        &input,
    );

    // envelope.signing-scheme
    r.add(
        "envelope.signing-scheme",
        time_header.is_some(),
        "notary.x509 or notary.x509.signingAuthority",
        match d.get(H_SCHEME) {
            Some(v) => v.to_string(),
            None => "absent".into(),
        },
        &input,
    );

    // envelope.crit
    let crit = match d.get("crit") {
        Some(Hv::List(l)) => Ok(l.clone()),
        Some(other) => Err(format!("crit is {other}, not an array of names")),
        None => Err("crit is absent".into()),
    };
    let mut must: Vec<&str> = vec![H_SCHEME];
    must.extend(CRITICAL_WHEN_PRESENT.iter().filter(|h| d.get(h).is_some()));
    let crit_faults: Vec<String> = match &crit {
        Err(e) => vec![e.clone()],
        Ok(list) => {
            let mut f = Vec::new();
            for m in &must {
                if !list.iter().any(|c| c == m) {
                    f.push(format!("{m} is not listed"));
                }
            }
            let mut seen = Vec::new();
            for c in list {
                if seen.contains(&c) {
                    f.push(format!("{c} is listed twice"));
                }
                seen.push(c);
                let registered = match format {
                    Some(EnvelopeFormat::Cose) => {
                        c.parse::<i64>().is_ok_and(|n| (0..=8).contains(&n))
                    }
                    _ => JWS_REGISTERED.contains(&c.as_str()),
                };
                if registered {
                    f.push(format!("{c} is a registered header and must not be listed"));
                } else if c == H_TIME {
                    f.push(format!("{c} is informational and must not be critical"));
                } else if d.get(c).is_none() {
                    f.push(format!("{c} is listed but not in the protected header"));
                }
            }
            f
        }
    };
    r.add(
        "envelope.crit",
        crit_faults.is_empty(),
        format!(
            "crit = [{}] (plus extended headers the signer marks critical)",
            must.join(", ")
        ),
        match (&crit, crit_faults.is_empty()) {
            (Ok(l), true) => format!("crit = {l:?}"),
            (Ok(l), false) => format!("crit = {l:?}: {}", crit_faults.join("; ")),
            (Err(_), _) => crit_faults.join("; "),
        },
        &input,
    );

    // envelope.cty
    r.add(
        "envelope.cty",
        d.text("cty") == Some(PAYLOAD_CTY),
        PAYLOAD_CTY,
        d.get("cty").map_or_else(|| "absent".into(), Hv::to_string),
        &input,
    );

    // envelope.alg
    let leaf = chain.first();
    let alg = alg_of(&d);
    let want_alg = leaf.map(|l| SignatureAlgorithm::for_key(&l.public_key));
    let (alg_ok, alg_expected) = match (&alg, &want_alg) {
        (Ok(a), Some(Ok(w))) => (
            a == w,
            format!(
                "{} (the signing certificate has {})",
                w.name(),
                leaf.map(|l| l.public_key.describe()).unwrap_or_default()
            ),
        ),
        (_, Some(Err(e))) => (false, format!("no algorithm: {e}")),
        (_, None) => (
            false,
            "the algorithm of the signing certificate's key (there is no certificate)".into(),
        ),
        (Err(_), Some(Ok(w))) => (false, w.name().to_owned()),
    };
    r.add(
        "envelope.alg",
        alg_ok,
        alg_expected,
        match &alg {
            Ok(a) => a.name().to_owned(),
            Err(e) => e.clone(),
        },
        &input,
    );

    // envelope.signature
    // checked under the algorithm the key selects (the header's, for a key outside the
    // table), so that a wrong alg header fails envelope.alg alone
    let verify_alg = match &want_alg {
        Some(Ok(w)) => Ok(*w),
        _ => alg.clone(),
    };
    let sig_check = match (&verify_alg, leaf, &d.signed, &d.signature) {
        (Ok(a), Some(l), Some(signed), Some(sig)) => a.verify(&l.public_key, signed, sig),
        (Err(e), ..) => Err(format!("cannot check: {e}")),
        (_, None, ..) => Err("cannot check: no signing certificate".into()),
        _ => Err("cannot check: the signed bytes or the signature could not be read".into()),
    };
    r.add(
        "envelope.signature",
        sig_check.is_ok(),
        "a signature over the signed bytes that the signing certificate's key verifies",
        match &sig_check {
            Ok(()) => "verifies".to_owned(),
            Err(e) => e.clone(),
        },
        &input,
    );

    // envelope.time-format and envelope.time-fraction
    let times: Vec<(&str, Result<Timestamp, String>)> = [H_TIME, H_AUTH_TIME, H_EXPIRY]
        .into_iter()
        .filter_map(|h| time_of(&d, h).map(|t| (h, t)))
        .collect();
    let time_faults: Vec<String> = times
        .iter()
        .filter_map(|(_, t)| t.as_ref().err().cloned())
        .collect();
    let shown: Vec<String> = times
        .iter()
        .map(|(h, _)| format!("{h} = {}", d.get(h).map(Hv::to_string).unwrap_or_default()))
        .collect();
    r.add(
        "envelope.time-format",
        time_faults.is_empty(),
        match format {
            Some(EnvelopeFormat::Cose) => {
                "epoch-based date/time: CBOR tag 1 over an integer (RFC 8949 3.4.2)"
            }
            _ => "RFC 3339 date-time strings",
        },
        if time_faults.is_empty() {
            shown.join("; ")
        } else {
            time_faults.join("; ")
        },
        &input,
    );
    let fractional: Vec<&str> = times
        .iter()
        .filter(|(h, _)| matches!(d.get(h), Some(Hv::Text(s)) if s.len() > 19 && s.as_bytes()[19] == b'.'))
        .map(|(h, _)| *h)
        .collect();
    r.add(
        "envelope.time-fraction",
        fractional.is_empty(),
        "no fractional seconds",
        if fractional.is_empty() {
            shown.join("; ")
        } else {
            format!("fractional seconds in {}", fractional.join(", "))
        },
        &input,
    );

    // envelope.expiry
    let signing_time = time_header
        .and_then(|h| time_of(&d, h))
        .and_then(Result::ok);
    let expiry = time_of(&d, H_EXPIRY);
    let (exp_ok, exp_actual) = match (&expiry, signing_time) {
        (None, _) => (true, "no expiry".to_owned()),
        (Some(Ok(e)), Some(s)) => (*e > s, format!("expiry {e}, signing time {s}")),
        (Some(Ok(e)), None) => (false, format!("expiry {e} but no readable signing time")),
        (Some(Err(e)), _) => (false, e.clone()),
    };
    r.add("envelope.expiry", exp_ok, "expiry later than the signing time (an expiry at or before it makes a signature expired when made)", exp_actual, &input);

    // envelope.unprotected-headers
    let allowed: &[&str] = match format {
        Some(EnvelopeFormat::Cose) => &[
            "x5chain (33)",
            "io.cncf.notary.timestampSignature",
            "io.cncf.notary.signingAgent",
        ],
        _ => &[
            "x5c",
            "io.cncf.notary.timestampSignature",
            "io.cncf.notary.signingAgent",
        ],
    };
    let extra: Vec<&String> = d
        .unprotected
        .iter()
        .filter(|h| !allowed.contains(&h.as_str()))
        .collect();
    r.add(
        "envelope.unprotected-headers",
        extra.is_empty(),
        allowed.join(", "),
        if extra.is_empty() {
            format!("[{}]", d.unprotected.join(", "))
        } else {
            format!(
                "unexpected: {}",
                extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        &input,
    );

    // chain.present
    let chain_ok = cert_faults.is_empty() && !chain.is_empty();
    r.add(
        "chain.present",
        chain_ok,
        "a non-empty chain of DER certificates, leaf first",
        if chain_ok {
            format!("{} certificate(s)", chain.len())
        } else if cert_faults.is_empty() {
            "an empty chain".into()
        } else {
            cert_faults.join("; ")
        },
        &input,
    );

    // chain.order
    let mut order_faults = Vec::new();
    for (i, pair) in chain.windows(2).enumerate() {
        if !pair[0].names_issuer(&pair[1]) {
            order_faults.push(format!(
                "certificate {i}'s issuer ({}) is not certificate {}'s subject ({})",
                pair[0].issuer,
                i + 1,
                pair[1].subject
            ));
        } else if let Err(e) = pair[0].verify_signed_by(&pair[1]) {
            order_faults.push(format!(
                "certificate {i} is not signed by certificate {}: {e}",
                i + 1
            ));
        }
    }
    if let Some(root) = chain.last() {
        if !root.is_self_issued() {
            order_faults.push(format!(
                "the last certificate ({}) is not a self-signed root",
                root.subject
            ));
        } else if let Err(e) = root.verify_signed_by(root) {
            order_faults.push(format!("the root does not verify with its own key: {e}"));
        }
    }
    r.add(
        "chain.order",
        !chain.is_empty() && order_faults.is_empty(),
        "leaf, intermediates, root: each certificate issued and signed by the next; the last self-signed",
        if chain.is_empty() { "no certificates".into() } else if order_faults.is_empty() { "in order".into() } else { order_faults.join("; ") },
        &input,
    );

    // chain.leaf-basic-constraints
    let (bc_ok, bc_actual) = match leaf.map(|l| l.basic_constraints) {
        None => (false, "no signing certificate".to_owned()),
        Some(None) => (true, "absent".to_owned()),
        Some(Some(b)) => (!b.ca, format!("cA={}", b.ca)),
    };
    r.add(
        "chain.leaf-basic-constraints",
        bc_ok,
        "absent, or cA=false",
        bc_actual,
        &input,
    );

    // chain.leaf-key-usage
    let forbidden_bits: u16 =
        (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
    let (ku_ok, ku_actual) = match leaf.map(|l| l.key_usage) {
        None => (false, "no signing certificate".to_owned()),
        Some(None) => (false, "absent".to_owned()),
        Some(Some(k)) => {
            let mut f = Vec::new();
            if !k.critical {
                f.push("not critical".to_owned());
            }
            if !k.has(KeyUsage::DIGITAL_SIGNATURE) {
                f.push("no digitalSignature".to_owned());
            }
            let bad = key_usage_names(k.bits & forbidden_bits);
            if !bad.is_empty() {
                f.push(format!("forbidden {}", bad.join("+")));
            }
            let shown = format!(
                "{}{}",
                key_usage_names(k.bits).join("+"),
                if k.critical { " (critical)" } else { "" }
            );
            judged(&f, shown, "")
        }
    };
    r.add("chain.leaf-key-usage", ku_ok, "critical keyUsage with digitalSignature and none of keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly", ku_actual, &input);

    // chain.leaf-eku
    let (eku_ok, eku_actual) = match leaf.map(|l| &l.ext_key_usage) {
        None => (false, "no signing certificate".to_owned()),
        Some(None) => (true, "absent".to_owned()),
        Some(Some(ekus)) => {
            let bad: Vec<&str> = ekus
                .iter()
                .filter(|o| EKU_FORBIDDEN.iter().any(|(f, _)| f == o))
                .map(|o| eku_name(o))
                .collect();
            let shown = ekus
                .iter()
                .map(|o| eku_name(o))
                .collect::<Vec<_>>()
                .join("+");
            judged(&bad, shown, "forbidden ")
        }
    };
    r.add("chain.leaf-eku", eku_ok, "absent, or codeSigning (or other usages) without anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection, timeStamping", eku_actual, &input);

    // chain.ca-constraints
    let mut ca_faults = Vec::new();
    if chain.len() > 1 {
        for (i, c) in chain.iter().enumerate().skip(1) {
            match c.basic_constraints {
                Some(b) if b.ca => {
                    // CA certificates below this one in the chain
                    let below = (i - 1) as u64;
                    if let Some(p) = b.path_len
                        && below > p
                    {
                        ca_faults.push(format!("certificate {i}: pathLenConstraint {p} with {below} CA certificate(s) below"));
                    }
                }
                Some(_) => ca_faults.push(format!("certificate {i}: cA=false")),
                None => ca_faults.push(format!("certificate {i}: no basicConstraints")),
            }
            match c.key_usage {
                Some(k) if k.critical && k.has(KeyUsage::KEY_CERT_SIGN) => {}
                Some(k) if !k.critical => {
                    ca_faults.push(format!("certificate {i}: keyUsage not critical"))
                }
                Some(_) => ca_faults.push(format!("certificate {i}: no keyCertSign")),
                None => ca_faults.push(format!("certificate {i}: no keyUsage")),
            }
        }
    }
    r.add(
        "chain.ca-constraints",
        ca_faults.is_empty(),
        "basicConstraints cA=true and a critical keyUsage with keyCertSign on every certificate after the leaf",
        if chain.len() <= 1 { "no CA certificates (a single self-signed certificate is judged as a leaf)".into() } else if ca_faults.is_empty() { "as required".into() } else { ca_faults.join("; ") },
        &input,
    );

    // chain.key-size
    let weak: Vec<String> = chain
        .iter()
        .enumerate()
        .filter(|(_, c)| !key_ok(&c.public_key))
        .map(|(i, c)| format!("certificate {i}: {}", c.public_key.describe()))
        .collect();
    r.add(
        "chain.key-size",
        !chain.is_empty() && weak.is_empty(),
        "RSA ≥ 2048 bits or EC P-256/P-384/P-521",
        if chain.is_empty() {
            "no certificates".into()
        } else if weak.is_empty() {
            chain
                .iter()
                .map(|c| c.public_key.describe())
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            weak.join("; ")
        },
        &input,
    );

    // chain.validity
    // without a readable signing time (another rule's failure), at the time of checking
    let (at, when) = match signing_time {
        Some(t) => (t, "the signing time"),
        None => (
            Timestamp::now(),
            "the time of checking (no readable signing time)",
        ),
    };
    let bad: Vec<String> = chain
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.valid_at(at))
        .map(|(i, c)| format!("certificate {i} valid {} to {}", c.not_before, c.not_after))
        .collect();
    let val_ok = !chain.is_empty() && bad.is_empty();
    let val_actual = if bad.is_empty() {
        format!("all valid at {when}, {at}")
    } else {
        format!("at {when}, {at}: {}", bad.join("; "))
    };
    r.add(
        "chain.validity",
        val_ok,
        "notBefore ≤ signing time ≤ notAfter for every certificate",
        val_actual,
        &input,
    );

    // payload.structure and payload.target
    let target = d
        .payload
        .as_deref()
        .map(|p| -> Result<Map<String, Value>, String> {
            let v: Value =
                serde_json::from_slice(p).map_err(|e| format!("the payload is not JSON: {e}"))?;
            let t = v
                .get("targetArtifact")
                .and_then(Value::as_object)
                .ok_or("no targetArtifact object")?;
            let mut f = Vec::new();
            if !t.get("mediaType").is_some_and(Value::is_string) {
                f.push("mediaType");
            }
            let digest = t.get("digest").and_then(Value::as_str);
            if digest.is_none_or(|s| Digest::parse(s).is_err()) {
                f.push("digest");
            }
            if !t.get("size").is_some_and(Value::is_u64) {
                f.push("size");
            }
            let annotations_ok = match t.get("annotations") {
                None => true,
                Some(Value::Object(a)) => a.values().all(Value::is_string),
                Some(_) => false,
            };
            if !annotations_ok {
                f.push("annotations (a string-to-string map)");
            }
            if f.is_empty() {
                Ok(t.clone())
            } else {
                Err(format!("targetArtifact without a valid {}", f.join(", ")))
            }
        });
    r.add(
        "payload.structure",
        matches!(target, Some(Ok(_))),
        "{\"targetArtifact\": {\"mediaType\", \"digest\", \"size\", optional string-to-string \"annotations\"}}",
        match &target {
            Some(Ok(_)) => "as required".into(),
            Some(Err(e)) => e.clone(),
            None => "no payload".into(),
        },
        &input,
    );
    let want_target = want_target_text(subject);
    // what the payload names, read even when the descriptor is otherwise malformed
    let named = d.payload.as_deref().and_then(|p| {
        serde_json::from_slice::<Value>(p)
            .ok()?
            .get("targetArtifact")?
            .as_object()
            .cloned()
    });
    let (tgt_ok, tgt_actual) = match &named {
        Some(t) => same_descriptor(t, subject),
        None => (false, "no readable targetArtifact".to_owned()),
    };
    r.add(
        "payload.target",
        tgt_ok,
        want_target,
        tgt_actual,
        format!("{input}{subject_text}\n"),
    );

    // the signature manifest
    let m = manifest.unwrap_or_default();
    let minput = format!("signature manifest: {manifest_text}\n{subject_text}\n");
    let mt = m.get("mediaType").and_then(Value::as_str);
    r.add(
        "manifest.media-type",
        mt == Some(OCI_MANIFEST),
        OCI_MANIFEST,
        mt.map_or_else(
            || {
                if manifest_bytes.is_empty() {
                    "no manifest".into()
                } else {
                    "no mediaType".into()
                }
            },
            str::to_owned,
        ),
        &minput,
    );
    let artifact_type = m.get("artifactType").and_then(Value::as_str);
    let config = m.get("config").and_then(Value::as_object);
    let config_type = config
        .and_then(|c| c.get("mediaType"))
        .and_then(Value::as_str);
    let (type_ok, type_actual) = match (artifact_type, config_type) {
        (None, Some(ARTIFACT_TYPE)) => (
            true,
            format!("config.mediaType {ARTIFACT_TYPE}, no artifactType: the v1.1.0 form"),
        ),
        (Some(ARTIFACT_TYPE), Some(OCI_EMPTY)) => (
            true,
            format!(
                "artifactType {ARTIFACT_TYPE} with config.mediaType {OCI_EMPTY}: the form the main branch prefers"
            ),
        ),
        (a, c) => (
            false,
            format!(
                "artifactType {}, config.mediaType {}",
                a.unwrap_or("absent"),
                c.unwrap_or("absent")
            ),
        ),
    };
    r.add(
        "manifest.type",
        type_ok,
        format!("config.mediaType {ARTIFACT_TYPE} without artifactType (v1.1.0), or artifactType {ARTIFACT_TYPE} with config.mediaType {OCI_EMPTY} (main branch: preferred)"),
        type_actual,
        &minput,
    );
    let cdig = config.and_then(|c| c.get("digest")).and_then(Value::as_str);
    let csize = config.and_then(|c| c.get("size")).and_then(Value::as_u64);
    r.add(
        "manifest.config",
        cdig == Some(EMPTY_JSON_DIGEST) && csize == Some(2),
        format!("digest {EMPTY_JSON_DIGEST}, size 2"),
        format!(
            "digest {}, size {}",
            cdig.unwrap_or("absent"),
            csize.map_or("absent".into(), |s| s.to_string())
        ),
        &minput,
    );
    let env_digest = Digest::sha256_of(envelope_bytes).to_string();
    let mut layer_faults = Vec::new();
    if layers.len() != 1 {
        layer_faults.push(format!("{} layers", layers.len()));
    }
    if let Some(l) = layers.first() {
        if format.is_none() || EnvelopeFormat::from_media_type(&layer_type).is_err() {
            layer_faults.push(format!("media type {layer_type:?}"));
        }
        if l.get("digest").and_then(Value::as_str) != Some(env_digest.as_str()) {
            layer_faults.push(format!(
                "digest {} is not the envelope's {env_digest}",
                l.get("digest").and_then(Value::as_str).unwrap_or("absent")
            ));
        }
        if l.get("size").and_then(Value::as_u64) != Some(envelope_bytes.len() as u64) {
            layer_faults.push(format!(
                "size {} is not the envelope's {}",
                l.get("size").map_or("absent".into(), Value::to_string),
                envelope_bytes.len()
            ));
        }
    }
    r.add(
        "manifest.layer",
        layer_faults.is_empty(),
        format!(
            "one layer, application/jose+json or application/cose, digest {env_digest}, size {}",
            envelope_bytes.len()
        ),
        if layer_faults.is_empty() {
            format!("one {layer_type} layer")
        } else {
            layer_faults.join("; ")
        },
        &minput,
    );
    let subj = m.get("subject").and_then(Value::as_object);
    let (s_ok, s_actual) = match subj {
        None => (false, "no subject".to_owned()),
        Some(s) => same_descriptor(s, subject),
    };
    r.add(
        "manifest.subject",
        s_ok,
        want_target_text(subject),
        s_actual,
        &minput,
    );
    let want_thumbs: Vec<String> = chain
        .iter()
        .map(|c| Digest::sha256_of(c.der()).hex().to_string())
        .collect();
    let annotation = m
        .get("annotations")
        .and_then(|a| a.get(ANNOTATION_THUMBPRINT))
        .and_then(Value::as_str);
    let (th_ok, th_actual) = match annotation {
        None => (false, "absent".to_owned()),
        Some(a) => match serde_json::from_str::<Vec<String>>(a) {
            Ok(list) => (
                !chain.is_empty()
                    && list.len() == want_thumbs.len()
                    && list
                        .iter()
                        .zip(&want_thumbs)
                        .all(|(g, w)| g.eq_ignore_ascii_case(w)),
                a.to_owned(),
            ),
            Err(_) => (false, format!("{a:?} is not a JSON array of strings")),
        },
    };
    r.add(
        "manifest.thumbprints",
        th_ok,
        serde_json::Value::from(want_thumbs).to_string(),
        th_actual,
        format!("{minput}{}", describe_chain(&chain)),
    );
    match how_pushed {
        HowPushed::Given => {}
        HowPushed::ReferrersApi => r.add(
            "manifest.discoverable",
            true,
            "listed by the referrers API or in the sha256-<hex> tag index",
            "listed by the referrers API",
            &minput,
        ),
        HowPushed::TagFallback => r.add(
            "manifest.discoverable",
            true,
            "listed by the referrers API or in the sha256-<hex> tag index",
            "listed in the referrers tag index",
            &minput,
        ),
        HowPushed::NotListed(where_) => r.add(
            "manifest.discoverable",
            false,
            "listed by the referrers API or in the sha256-<hex> tag index",
            format!("listed by neither; found {where_}"),
            &minput,
        ),
    }
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
