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
//!
//! Also TLS serving certificates ([`server_leaf`]: serverAuth, subjectAltName DNS names and IP
//! addresses, as RFC 6125 clients such as the Kubernetes API server check them) under a
//! [`ca`], for `berth admission certs`.

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
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

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
    /// A leaf issued by a CA whose extendedKeyUsage is serverAuth only: not a code-signing
    /// certificate (what a conformance corpus presents to a verifier, which must refuse it).
    ServerAuthLeaf,
    /// A TLS server certificate issued by a CA: serverAuth, with subjectAltName.
    TlsServer,
}

/// A name a TLS server certificate is valid for: an entry of its subjectAltName (RFC 5280
/// 4.2.1.6). Clients match the DNS name they connect to (the SNI) or the IP address against
/// these, never against the subject's CN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// dNSName: letters, digits, `-` and `.` (a leading `*.` for a wildcard), at most 253
    /// characters.
    Dns(String),
    /// iPAddress: four octets for IPv4, sixteen for IPv6.
    Ip(std::net::IpAddr),
}

impl std::fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubjectAltName::Dns(d) => write!(f, "DNS:{d}"),
            SubjectAltName::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

impl SubjectAltName {
    /// An IP address when `s` is one, else a DNS name (checked when the certificate is made).
    pub fn parse(s: &str) -> SubjectAltName {
        match s.parse::<std::net::IpAddr>() {
            Ok(ip) => SubjectAltName::Ip(ip),
            Err(_) => SubjectAltName::Dns(s.to_string()),
        }
    }

    fn encode(&self) -> Result<Vec<u8>, CertGenError> {
        match self {
            SubjectAltName::Dns(name) => {
                if !is_valid_dns_name(name) {
                    return Err(CertGenError::Invalid(format!(
                        "{name:?} is not a DNS name (letters, digits, '-' and '.', labels of 1 to 63 characters, at most 253 in all)"
                    )));
                }
                // [2] IMPLICIT IA5String
                Ok(w::tlv(0x82, name.as_bytes()))
            }
            // [7] IMPLICIT OCTET STRING
            SubjectAltName::Ip(std::net::IpAddr::V4(ip)) => Ok(w::tlv(0x87, &ip.octets())),
            SubjectAltName::Ip(std::net::IpAddr::V6(ip)) => Ok(w::tlv(0x87, &ip.octets())),
        }
    }
}

/// A DNS name as RFC 1035 (preferred syntax, digits allowed first as RFC 1123) and RFC 6125
/// (a wildcard only as the whole leftmost label) allow it.
fn is_valid_dns_name(name: &str) -> bool {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    !rest.is_empty()
        && name.len() <= 253
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
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

/// A leaf for `key` issued by `issuer` like [`leaf`], but whose extendedKeyUsage is
/// serverAuth instead of codeSigning: a certificate the Notary Project signature
/// specification forbids as a signing certificate ("Certificate Requirements"). For
/// conformance corpora that check that a verifier refuses it.
pub fn leaf_without_code_signing(
    params: &CertParams,
    key: &SigningKey,
    issuer: &Certificate,
    issuer_key: &SigningKey,
) -> Result<Certificate, CertGenError> {
    if !issuer_key.matches(issuer) || !issuer.is_ca() {
        return Err(CertGenError::Invalid(
            "the issuer must be a CA certificate with the issuer key's public key".to_string(),
        ));
    }
    build(
        params,
        key,
        Some((issuer, issuer_key)),
        Role::ServerAuthLeaf,
    )
}

/// A TLS server certificate for `key`, issued by the CA `issuer` (whose private key is
/// `issuer_key`), valid for `names`: basicConstraints cA=false (critical), keyUsage
/// digitalSignature (critical), extendedKeyUsage serverAuth, subjectAltName, subject and
/// authority key identifiers. What webpki (rustls) and Go's crypto/tls (the Kubernetes API
/// server calling a webhook) require of a server's end-entity certificate.
pub fn server_leaf(
    params: &CertParams,
    key: &SigningKey,
    issuer: &Certificate,
    issuer_key: &SigningKey,
    names: &[SubjectAltName],
) -> Result<Certificate, CertGenError> {
    if !issuer_key.matches(issuer) || !issuer.is_ca() {
        return Err(CertGenError::Invalid(
            "the issuer must be a CA certificate with the issuer key's public key".to_string(),
        ));
    }
    if names.is_empty() {
        return Err(CertGenError::Invalid(
            "a server certificate needs at least one DNS name or IP address".to_string(),
        ));
    }
    let encoded = names
        .iter()
        .map(SubjectAltName::encode)
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    build_with(
        params,
        key,
        Some((issuer, issuer_key)),
        Role::TlsServer,
        Some(&w::sequence(&refs)),
    )
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
    build_with(params, key, issuer, role, None)
}

/// [`build`], with the subjectAltName extension's value (GeneralNames) when given.
fn build_with(
    params: &CertParams,
    key: &SigningKey,
    issuer: Option<(&Certificate, &SigningKey)>,
    role: Role,
    alt_names: Option<&[u8]>,
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
        Role::SelfSignedLeaf | Role::Leaf | Role::ServerAuthLeaf | Role::TlsServer => {
            let eku = if matches!(role, Role::ServerAuthLeaf | Role::TlsServer) {
                OID_SERVER_AUTH
            } else {
                OID_CODE_SIGNING
            };
            exts.push(extension(oid::BASIC_CONSTRAINTS, true, &w::sequence(&[])));
            exts.push(extension(
                oid::KEY_USAGE,
                true,
                &w::named_bits(crate::cert::KeyUsage::DIGITAL_SIGNATURE),
            ));
            exts.push(extension(
                oid::EXT_KEY_USAGE,
                false,
                &w::sequence(&[&w::oid(eku)]),
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
            if let Some(names) = alt_names {
                // not critical: the subject is not empty (RFC 5280 4.2.1.6)
                exts.push(extension(oid::SUBJECT_ALT_NAME, false, names));
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
    fn a_server_auth_leaf_is_refused_for_code_signing() {
        let root_key = SigningKey::generate(KeySpec::EcP256).expect("key");
        let root = ca(&CertParams::test("root", 1), &root_key).expect("ca");
        let key = SigningKey::generate(KeySpec::EcP256).expect("key");
        let params = CertParams::test("server", 1);
        let good = leaf(&params, &key, &root, &root_key).expect("leaf");
        validate_chain(&[good, root.clone()], ChainPurpose::CodeSigning).expect("code signing");
        let server = leaf_without_code_signing(&params, &key, &root, &root_key).expect("leaf");
        assert_eq!(
            server.ext_key_usage.as_deref(),
            Some(&["1.3.6.1.5.5.7.3.1".to_string()][..])
        );
        let e = validate_chain(&[server, root.clone()], ChainPurpose::CodeSigning).unwrap_err();
        assert!(
            e.to_lowercase().contains("codesigning")
                || e.contains("code signing")
                || e.contains("extended key usage"),
            "{e}"
        );
        // Only a CA issues it.
        assert!(leaf_without_code_signing(&params, &key, &good_self(&key), &key).is_err());
    }

    #[test]
    fn a_server_certificate_needs_a_ca_issuer_and_valid_names() {
        let root_key = SigningKey::generate(KeySpec::EcP256).expect("key");
        let root = ca(&CertParams::test("root", 1), &root_key).expect("ca");
        let key = SigningKey::generate(KeySpec::EcP256).expect("key");
        let params = CertParams::test("svc", 1);
        let names = [
            SubjectAltName::parse("svc.ns.svc"),
            SubjectAltName::parse("127.0.0.1"),
            SubjectAltName::parse("::1"),
        ];
        assert_eq!(names[1].to_string(), "IP:127.0.0.1");
        let cert = server_leaf(&params, &key, &root, &root_key, &names).expect("leaf");
        assert_eq!(
            cert.ext_key_usage.as_deref(),
            Some(&["1.3.6.1.5.5.7.3.1".to_string()][..])
        );
        assert!(!cert.is_ca());
        cert.verify_signed_by(&root).expect("signed by the CA");
        // the names are in the DER, encoded as GeneralNames
        let der = cert.der();
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"\x82\x0asvc.ns.svc"));
        assert!(has(&[0x87, 4, 127, 0, 0, 1]));
        // refused: no names, a bad name, an issuer that is not a CA
        assert!(server_leaf(&params, &key, &root, &root_key, &[]).is_err());
        for bad in ["", "a..b", "-a.b", "a b", "x.*.y", &"a".repeat(64)] {
            let e = server_leaf(
                &params,
                &key,
                &root,
                &root_key,
                &[SubjectAltName::parse(bad)],
            )
            .expect_err(bad);
            assert!(e.to_string().contains("is not a DNS name"), "{bad}: {e}");
        }
        assert!(
            server_leaf(
                &params,
                &key,
                &root,
                &root_key,
                &[SubjectAltName::parse("*.ns.svc")]
            )
            .is_ok()
        );
        let not_ca = good_self(&key);
        assert!(server_leaf(&params, &key, &not_ca, &key, &names).is_err());
    }

    fn good_self(key: &SigningKey) -> Certificate {
        generate_test("self", key).expect("self-signed")
    }

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
