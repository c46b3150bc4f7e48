//! Certificates berth makes: the self-signed signing certificate of
//! `notation cert generate-test NAME` (usable both as the trust anchor and as the signing leaf)
//! and a test CA with a leaf under it. Encoded with the in-crate DER writer, signed with the
//! key's own algorithm (ECDSA with the curve's hash; RSA with sha256WithRSAEncryption, as Go's
//! x509 does), and read back through [`Certificate::from_der`] before they are returned.
//!
//! What notation makes (notation-core-go testhelper): subject
//! `CN=NAME,O=Notary,L=Seattle,ST=WA,C=US`, keyUsage digitalSignature (critical),
//! extendedKeyUsage codeSigning, no basicConstraints, a random serial, valid for one day.
//! berth's self-signed certificate has the same subject and usages, plus basicConstraints
//! cA=false (critical) and a subjectKeyIdentifier, a 128-bit random serial, and is valid for
//! [`DEFAULT_VALIDITY_DAYS`] by default (one day makes every signature unverifiable the next).

use crate::cert::{CertError, Certificate, DistinguishedName};
use crate::der_writer as w;
use crate::keys::{KeyError, SigningKey};
use crate::time::Timestamp;
use ring::rand::SecureRandom;

/// How long before "now" a new certificate's validity starts: a timestamp's whole range
/// (genTime ± accuracy) must lie inside the signing certificate's validity (notation's
/// verifier and berth's), so a certificate valid only from this second would refuse a
/// signature timestamped in its first seconds; a few minutes also absorb clock skew.
pub const NOT_BEFORE_MARGIN_SECS: i64 = 300;

/// Validity of certificates made without an explicit period.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;

const OID_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertGenError {
    #[error("invalid certificate parameters: {0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the generated certificate does not parse (a bug in berth)")]
    Parse(#[source] CertError),
}

/// What goes into a certificate besides the key.
#[derive(Debug, Clone)]
pub struct CertParams {
    /// The subject, in encoding order (most general first: C, ST, L, O, OU, CN). Attributes:
    /// C, ST, L, O, OU, CN.
    pub subject: DistinguishedName,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

impl CertParams {
    /// notation's test subject `CN=NAME,O=Notary,L=Seattle,ST=WA,C=US`, valid for `days`
    /// from [`NOT_BEFORE_MARGIN_SECS`] ago.
    pub fn test(common_name: &str, days: u32) -> CertParams {
        let now = Timestamp::now();
        let start = Timestamp(now.0 - NOT_BEFORE_MARGIN_SECS);
        CertParams {
            subject: DistinguishedName(vec![
                ("C".to_string(), "US".to_string()),
                ("ST".to_string(), "WA".to_string()),
                ("L".to_string(), "Seattle".to_string()),
                ("O".to_string(), "Notary".to_string()),
                ("CN".to_string(), common_name.to_string()),
            ]),
            not_before: start,
            not_after: Timestamp(now.0 + i64::from(days) * 86_400),
        }
    }
}

/// A certificate role: what extensions it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Self-signed code-signing certificate (trust anchor and leaf at once).
    SelfSignedLeaf,
    /// Root CA.
    Ca,
    /// Code-signing leaf issued by a CA.
    Leaf,
}

/// The self-signed signing certificate of `notation cert generate-test NAME`, valid for
/// [`DEFAULT_VALIDITY_DAYS`].
pub fn generate_test(common_name: &str, key: &SigningKey) -> Result<Certificate, CertGenError> {
    self_signed(&CertParams::test(common_name, DEFAULT_VALIDITY_DAYS), key)
}

/// A self-signed code-signing certificate for `key`.
pub fn self_signed(params: &CertParams, key: &SigningKey) -> Result<Certificate, CertGenError> {
    build(params, key, None, Role::SelfSignedLeaf)
}

/// A self-signed root CA certificate (basicConstraints cA=true pathLen 0, critical; keyUsage
/// keyCertSign, critical; subjectKeyIdentifier).
pub fn ca(params: &CertParams, key: &SigningKey) -> Result<Certificate, CertGenError> {
    build(params, key, None, Role::Ca)
}

/// A code-signing leaf for `key`, issued by `issuer` (whose private key is `issuer_key`):
/// basicConstraints cA=false, keyUsage digitalSignature (critical), extendedKeyUsage
/// codeSigning, subject and authority key identifiers.
pub fn leaf(
    params: &CertParams,
    key: &SigningKey,
    issuer: &Certificate,
    issuer_key: &SigningKey,
) -> Result<Certificate, CertGenError> {
    if !issuer_key.matches(issuer) {
        return Err(CertGenError::Invalid(
            "the issuer key does not match the issuer certificate".to_string(),
        ));
    }
    if !issuer.is_ca() {
        return Err(CertGenError::Invalid(format!(
            "{:?} is not a CA certificate",
            issuer.subject.to_string()
        )));
    }
    build(params, key, Some((issuer, issuer_key)), Role::Leaf)
}

/// A test CA (its own new key of `key`'s kind when EC, P-256 otherwise) and a leaf for `key`
/// under it: (leaf, CA, CA key). The CA's subject is `CN=NAME CA,O=Notary,…`.
pub fn generate_test_ca(
    common_name: &str,
    key: &SigningKey,
    days: u32,
) -> Result<(Certificate, Certificate, SigningKey), CertGenError> {
    let ca_spec = match key.spec() {
        crate::keys::KeySpec::EcP384 => crate::keys::KeySpec::EcP384,
        _ => crate::keys::KeySpec::EcP256,
    };
    let ca_key = SigningKey::generate(ca_spec)?;
    let ca_cert = ca(
        &CertParams::test(&format!("{common_name} CA"), days),
        &ca_key,
    )?;
    let leaf_cert = leaf(&CertParams::test(common_name, days), key, &ca_cert, &ca_key)?;
    Ok((leaf_cert, ca_cert, ca_key))
}

fn attr_oid(short: &str) -> Option<&'static [u8]> {
    Some(match short {
        "CN" => &[0x55, 0x04, 0x03],
        "C" => &[0x55, 0x04, 0x06],
        "L" => &[0x55, 0x04, 0x07],
        "ST" => &[0x55, 0x04, 0x08],
        "O" => &[0x55, 0x04, 0x0a],
        "OU" => &[0x55, 0x04, 0x0b],
        _ => return None,
    })
}

fn encode_name(dn: &DistinguishedName) -> Result<Vec<u8>, CertGenError> {
    let mut rdns = Vec::new();
    for (k, v) in &dn.0 {
        let oid = attr_oid(k).ok_or_else(|| {
            CertGenError::Invalid(format!("name attribute {k:?} (C, ST, L, O, OU, CN only)"))
        })?;
        if v.is_empty() || v.len() > 64 {
            return Err(CertGenError::Invalid(format!(
                "name attribute {k} must have 1 to 64 characters"
            )));
        }
        if k == "C" && v.len() != 2 {
            return Err(CertGenError::Invalid(
                "country (C) must be a two-letter code".to_string(),
            ));
        }
        rdns.push(w::set_of_one(&w::sequence(&[
            &w::oid(oid),
            &w::directory_string(v),
        ])));
    }
    let refs: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    Ok(w::sequence(&refs))
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        w::sequence(&[&w::oid(oid), &w::boolean(true), &w::octet_string(value)])
    } else {
        w::sequence(&[&w::oid(oid), &w::octet_string(value)])
    }
}

/// subjectKeyIdentifier method 1 of RFC 5280: SHA-1 of the subjectPublicKey bits.
fn key_id(key: &SigningKey) -> Vec<u8> {
    let spki = key.public_key_spki_der();
    let bits = crate::der::parse_single(&spki, crate::der::SEQUENCE, "SubjectPublicKeyInfo")
        .and_then(|s| {
            let mut r = crate::der::Reader::new(s.value);
            r.read(crate::der::SEQUENCE, "AlgorithmIdentifier")?;
            r.read(crate::der::BIT_STRING, "subjectPublicKey")
        })
        .map(|b| b.value.get(1..).unwrap_or_default().to_vec())
        .unwrap_or(spki.clone());
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bits)
        .as_ref()
        .to_vec()
}

fn serial() -> Result<Vec<u8>, CertGenError> {
    let mut s = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut s)
        .map_err(|_| CertGenError::Invalid("no randomness for the serial number".to_string()))?;
    s[0] &= 0x7f; // positive
    s[0] |= 0x01; // never zero, never shortened
    Ok(s.to_vec())
}

fn build(
    params: &CertParams,
    key: &SigningKey,
    issuer: Option<(&Certificate, &SigningKey)>,
    role: Role,
) -> Result<Certificate, CertGenError> {
    if params.not_after <= params.not_before {
        return Err(CertGenError::Invalid(
            "notAfter must be after notBefore".to_string(),
        ));
    }
    // RFC 5280 times: UTCTime from 1950, GeneralizedTime with four-digit years
    let (earliest, latest) = (Timestamp(-631_152_000), Timestamp(253_402_300_799));
    if params.not_before < earliest || params.not_after > latest {
        return Err(CertGenError::Invalid(format!(
            "the validity {} .. {} is outside 1950 .. 9999 (a shorter period, please)",
            params.not_before, params.not_after
        )));
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    let sig_alg = signer.certificate_signature_algorithm();
    let subject = encode_name(&params.subject)?;
    let issuer_name = match issuer {
        // the issuer's subject, byte for byte
        Some((cert, _)) => issuer_subject_der(cert)?,
        None => subject.clone(),
    };
    let ski = key_id(key);
    let mut exts: Vec<Vec<u8>> = Vec::new();
    use crate::cert::oid;
    match role {
        Role::Ca => {
            let bc = w::sequence(&[&w::boolean(true), &w::small_integer(0)]);
            exts.push(extension(oid::BASIC_CONSTRAINTS, true, &bc));
            exts.push(extension(
                oid::KEY_USAGE,
                true,
                &w::named_bits(crate::cert::KeyUsage::KEY_CERT_SIGN | 1 << 6),
            ));
            exts.push(extension(
                oid::SUBJECT_KEY_ID,
                false,
                &w::octet_string(&ski),
            ));
        }
        Role::SelfSignedLeaf | Role::Leaf => {
            exts.push(extension(oid::BASIC_CONSTRAINTS, true, &w::sequence(&[])));
            exts.push(extension(
                oid::KEY_USAGE,
                true,
                &w::named_bits(crate::cert::KeyUsage::DIGITAL_SIGNATURE),
            ));
            exts.push(extension(
                oid::EXT_KEY_USAGE,
                false,
                &w::sequence(&[&w::oid(OID_CODE_SIGNING)]),
            ));
            exts.push(extension(
                oid::SUBJECT_KEY_ID,
                false,
                &w::octet_string(&ski),
            ));
            if let Some((_, issuer_key)) = issuer {
                let aki = w::sequence(&[&w::tlv(0x80, &key_id(issuer_key))]);
                exts.push(extension(oid::AUTHORITY_KEY_ID, false, &aki));
            }
        }
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let tbs = w::sequence(&[
        &w::explicit(0, &w::small_integer(2)),
        &w::unsigned_integer(&serial()?),
        &sig_alg,
        &issuer_name,
        &w::sequence(&[&w::time(params.not_before), &w::time(params.not_after)]),
        &subject,
        &key.public_key_spki_der(),
        &w::explicit(3, &w::sequence(&ext_refs)),
    ]);
    let sig = signer.sign_certificate(&tbs)?;
    let der = w::sequence(&[&tbs, &sig_alg, &w::bit_string(&sig)]);
    Certificate::from_der(&der).map_err(CertGenError::Parse)
}

/// The subject Name of a certificate, as encoded in it.
fn issuer_subject_der(cert: &Certificate) -> Result<Vec<u8>, CertGenError> {
    use crate::der::{self, Reader};
    let parse = || -> Result<Vec<u8>, der::DerError> {
        let c = der::parse_single(cert.der(), der::SEQUENCE, "Certificate")?;
        let tbs = Reader::new(c.value).read(der::SEQUENCE, "TBSCertificate")?;
        let mut t = Reader::new(tbs.value);
        t.read_optional(0xa0)?;
        t.read(der::INTEGER, "serialNumber")?;
        t.read(der::SEQUENCE, "signature")?;
        t.read(der::SEQUENCE, "issuer")?;
        t.read(der::SEQUENCE, "validity")?;
        Ok(t.read(der::SEQUENCE, "subject")?.raw.to_vec())
    };
    parse().map_err(|e| {
        CertGenError::Parse(CertError::Malformed {
            field: "subject",
            source: e,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySpec;
    use crate::verify::{ChainPurpose, validate_chain};

    #[test]
    fn test_certificates_pass_berths_own_chain_rules() {
        for spec in [KeySpec::EcP256, KeySpec::EcP384] {
            let key = SigningKey::generate(spec).expect("key");
            let cert = generate_test("wabbit-networks.io", &key).expect("cert");
            assert_eq!(
                cert.subject.to_string(),
                "CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US"
            );
            assert!(cert.is_self_issued());
            assert!(key.matches(&cert));
            validate_chain(std::slice::from_ref(&cert), ChainPurpose::CodeSigning)
                .expect("self-signed chain");
            let (leaf_cert, ca_cert, _) = generate_test_ca("signer", &key, 30).expect("ca");
            validate_chain(
                &[leaf_cert.clone(), ca_cert.clone()],
                ChainPurpose::CodeSigning,
            )
            .expect("CA chain");
            assert!(ca_cert.is_ca() && !leaf_cert.is_ca());
            // validity beyond year 9999 is refused, not encoded wrongly
            let err = self_signed(&CertParams::test("x", 4_000_000), &key).expect_err("too long");
            assert!(err.to_string().contains("9999"), "{err}");
            // the leaf alone does not chain to itself
            assert!(validate_chain(&[leaf_cert], ChainPurpose::CodeSigning).is_err());
        }
    }
}
