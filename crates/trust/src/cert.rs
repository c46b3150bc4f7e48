//! X.509 certificates as the Notary Project needs them (RFC 5280): the fields of the
//! TBSCertificate that chain validation reads, parsed by a strict in-crate DER reader, and
//! signature checks through `ring`. No path building: the envelope carries the chain in order.

use crate::der::{self, DerError, Reader};
use crate::time::Timestamp;
use std::fmt;

pub(crate) mod oid {
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const CERT_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    pub const AUTHORITY_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
    pub const OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    pub const FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
    pub const OCSP_NO_CHECK: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("malformed certificate: {field}")]
    Malformed {
        field: &'static str,
        #[source]
        source: DerError,
    },
    #[error("unsupported certificate: {0}")]
    Unsupported(String),
    #[error("invalid PEM: {0}")]
    Pem(String),
}

fn field(field: &'static str) -> impl Fn(DerError) -> CertError {
    move |source| CertError::Malformed { field, source }
}

/// A certificate's public key, as far as berth can use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: the `RSAPublicKey` DER and the modulus size in bits.
    Rsa { der: Vec<u8>, bits: usize },
    /// EC on a named curve: the uncompressed point.
    Ec { curve: Curve, point: Vec<u8> },
    /// Any other algorithm (never usable for verification).
    Other { algorithm: String },
}

/// The EC curves the Notary Project names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl PublicKey {
    /// "RSA 3072", "EC P-256": for messages.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("RSA {bits}"),
            PublicKey::Ec { curve, .. } => format!("EC {curve:?}"),
            PublicKey::Other { algorithm } => format!("key algorithm {algorithm}"),
        }
    }
}

/// A certificate's signature algorithm (the outer `signatureAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSignatureAlgorithm {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
}

/// basicConstraints (RFC 5280 4.2.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicConstraints {
    pub ca: bool,
    pub path_len: Option<u64>,
}

/// keyUsage bits (RFC 5280 4.2.1.3), bit 0 = digitalSignature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    pub bits: u16,
    pub critical: bool,
}

impl KeyUsage {
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
    pub const CRL_SIGN: u16 = 1 << 6;

    pub fn has(&self, bit: u16) -> bool {
        self.bits & bit != 0
    }
}

/// A distinguished name as an ordered list of (short attribute name, value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistinguishedName(pub Vec<(String, String)>);

impl DistinguishedName {
    /// The value of an attribute (`"CN"`, `"O"`…), first occurrence.
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == attr)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for DistinguishedName {
    /// RFC 4514 order (most specific first), as Go prints `pkix.Name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=")?;
            for (j, c) in v.chars().enumerate() {
                let first_or_last = j == 0 || j + 1 == v.chars().count();
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (first_or_last && c == ' ')
                    || (j == 0 && c == '#')
                {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One parsed X.509 certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: std::ops::Range<usize>,
    signature_algorithm: Option<CertSignatureAlgorithm>,
    signature_algorithm_oid: String,
    signature: Vec<u8>,
    issuer_raw: Vec<u8>,
    subject_raw: Vec<u8>,
    serial: Vec<u8>,
    /// The subject DN.
    pub subject: DistinguishedName,
    /// The issuer DN.
    pub issuer: DistinguishedName,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// The subject public key.
    pub public_key: PublicKey,
    /// basicConstraints, if present.
    pub basic_constraints: Option<BasicConstraints>,
    /// keyUsage, if present.
    pub key_usage: Option<KeyUsage>,
    /// extendedKeyUsage OIDs (dotted), if present.
    pub ext_key_usage: Option<Vec<String>>,
    /// Whether the certificate names a CRL distribution point or an OCSP responder.
    pub has_revocation_info: bool,
    /// The URIs of its CRL distribution points (`fullName` URIs, in order).
    pub crl_urls: Vec<String>,
    /// The URIs of its OCSP responders (authorityInfoAccess `id-ad-ocsp`, in order).
    pub ocsp_urls: Vec<String>,
    /// Whether it has a Freshest CRL (delta CRL) extension.
    pub has_freshest_crl: bool,
    /// Whether it has the `id-pkix-ocsp-nocheck` extension (an OCSP responder's certificate).
    pub ocsp_no_check: bool,
    /// The subjectPublicKey BIT STRING contents (what an OCSP `issuerKeyHash` hashes).
    public_key_bits: Vec<u8>,
    /// Critical extensions berth does not process (dotted OIDs).
    pub unhandled_critical_extensions: Vec<String>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject.to_string())
            .field("issuer", &self.issuer.to_string())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key", &self.public_key.describe())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses one DER certificate (the whole input must be the certificate).
    pub fn from_der(der_bytes: &[u8]) -> Result<Certificate, CertError> {
        let cert = der::parse_single(der_bytes, der::SEQUENCE, "Certificate")
            .map_err(field("Certificate"))?;
        let mut r = Reader::new(cert.value);
        let tbs = r
            .read(der::SEQUENCE, "TBSCertificate")
            .map_err(field("tbsCertificate"))?;
        let sig_alg = r
            .read(der::SEQUENCE, "AlgorithmIdentifier")
            .map_err(field("signatureAlgorithm"))?;
        let sig = r
            .read(der::BIT_STRING, "signatureValue")
            .map_err(field("signatureValue"))?;
        r.finish("Certificate").map_err(field("Certificate"))?;
        let signature = der::bit_string_bytes(sig.value)
            .map_err(field("signatureValue"))?
            .to_vec();
        let (signature_algorithm, signature_algorithm_oid) = parse_sig_alg(sig_alg.value)?;

        let tbs_start = tbs.raw.as_ptr() as usize - der_bytes.as_ptr() as usize;
        let mut t = Reader::new(tbs.value);
        let version = match t.read_optional(0xa0).map_err(field("version"))? {
            Some(v) => {
                let int = der::parse_single(v.value, der::INTEGER, "version")
                    .map_err(field("version"))?;
                der::small_uint(int.value).map_err(field("version"))?
            }
            None => 0,
        };
        if version > 2 {
            return Err(CertError::Unsupported(format!("version {}", version + 1)));
        }
        let serial = t
            .read(der::INTEGER, "serialNumber")
            .map_err(field("serialNumber"))?;
        let inner_alg = t
            .read(der::SEQUENCE, "signature")
            .map_err(field("signature"))?;
        if inner_alg.value != sig_alg.value {
            return Err(CertError::Unsupported(
                "signature algorithm in TBSCertificate differs from the outer one".to_string(),
            ));
        }
        let issuer = t.read(der::SEQUENCE, "issuer").map_err(field("issuer"))?;
        let validity = t
            .read(der::SEQUENCE, "validity")
            .map_err(field("validity"))?;
        let subject = t.read(der::SEQUENCE, "subject").map_err(field("subject"))?;
        let spki = t
            .read(der::SEQUENCE, "subjectPublicKeyInfo")
            .map_err(field("subjectPublicKeyInfo"))?;
        // issuerUniqueID [1], subjectUniqueID [2]: skipped
        t.read_optional(0x81).map_err(field("issuerUniqueID"))?;
        t.read_optional(0x82).map_err(field("subjectUniqueID"))?;
        let exts = t.read_optional(0xa3).map_err(field("extensions"))?;
        t.finish("TBSCertificate")
            .map_err(field("tbsCertificate"))?;

        let mut v = Reader::new(validity.value);
        let not_before = read_time(&mut v)?;
        let not_after = read_time(&mut v)?;
        v.finish("validity").map_err(field("validity"))?;

        let mut cert = Certificate {
            der: der_bytes.to_vec(),
            tbs: tbs_start..tbs_start + tbs.raw.len(),
            signature_algorithm,
            signature_algorithm_oid,
            signature,
            issuer_raw: issuer.raw.to_vec(),
            subject_raw: subject.raw.to_vec(),
            serial: serial.value.to_vec(),
            subject: parse_name(subject.value)?,
            issuer: parse_name(issuer.value)?,
            not_before,
            not_after,
            public_key: parse_spki(spki.value)?,
            public_key_bits: spki_key_bits(spki.value)?,
            basic_constraints: None,
            key_usage: None,
            ext_key_usage: None,
            has_revocation_info: false,
            crl_urls: Vec::new(),
            ocsp_urls: Vec::new(),
            has_freshest_crl: false,
            ocsp_no_check: false,
            unhandled_critical_extensions: Vec::new(),
        };
        if let Some(exts) = exts {
            if version != 2 {
                return Err(CertError::Unsupported(
                    "extensions in a certificate older than v3".to_string(),
                ));
            }
            cert.parse_extensions(exts.value)?;
        }
        cert.has_revocation_info = !cert.crl_urls.is_empty() || !cert.ocsp_urls.is_empty();
        Ok(cert)
    }

    /// Every certificate in a file: PEM (`-----BEGIN CERTIFICATE-----` blocks) or one DER.
    pub fn parse_many(data: &[u8]) -> Result<Vec<Certificate>, CertError> {
        if data.first() == Some(&der::SEQUENCE) {
            return Ok(vec![Certificate::from_der(data)?]);
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| CertError::Pem("neither DER nor UTF-8 PEM".to_string()))?;
        let mut certs = Vec::new();
        let mut rest = text;
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        while let Some(start) = rest.find(BEGIN) {
            let body_start = start + BEGIN.len();
            let end = rest[body_start..]
                .find(END)
                .ok_or_else(|| CertError::Pem("BEGIN CERTIFICATE without END".to_string()))?;
            let body: String = rest[body_start..body_start + end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der_bytes =
                base64_std(&body).map_err(|e| CertError::Pem(format!("bad base64: {e}")))?;
            certs.push(Certificate::from_der(&der_bytes)?);
            rest = &rest[body_start + end + END.len()..];
        }
        if certs.is_empty() {
            return Err(CertError::Pem("no certificate found".to_string()));
        }
        Ok(certs)
    }

    /// The certificate's DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Whether this certificate has this issuer name (DER) and serial number (INTEGER contents).
    pub(crate) fn is_issuer_and_serial(&self, issuer_der: &[u8], serial: &[u8]) -> bool {
        self.issuer_raw == issuer_der && self.serial == serial
    }

    /// The serial number (INTEGER contents).
    pub(crate) fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number in hex, for messages.
    pub fn serial_hex(&self) -> String {
        self.serial.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The subject name's DER encoding.
    pub(crate) fn subject_raw(&self) -> &[u8] {
        &self.subject_raw
    }

    /// The subjectPublicKey BIT STRING contents.
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }

    /// Whether subject and issuer names are byte-equal.
    pub fn is_self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }

    /// Whether `issuer`'s subject is this certificate's issuer name.
    pub fn names_issuer(&self, issuer: &Certificate) -> bool {
        self.issuer_raw == issuer.subject_raw
    }

    /// Whether this certificate is a CA (basicConstraints cA = true).
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|b| b.ca)
    }

    /// Checks this certificate's signature with `issuer`'s public key.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), String> {
        let alg = self.signature_algorithm.ok_or_else(|| {
            format!(
                "unsupported certificate signature algorithm {}",
                self.signature_algorithm_oid
            )
        })?;
        crate::crypto::verify_cert_signature(
            alg,
            &issuer.public_key,
            &self.der[self.tbs.clone()],
            &self.signature,
        )
    }

    /// Whether `at` lies within [notBefore, notAfter].
    pub fn valid_at(&self, at: Timestamp) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    fn parse_extensions(&mut self, data: &[u8]) -> Result<(), CertError> {
        let seq =
            der::parse_single(data, der::SEQUENCE, "Extensions").map_err(field("extensions"))?;
        let mut r = Reader::new(seq.value);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        while !r.is_empty() {
            let ext = r
                .read(der::SEQUENCE, "Extension")
                .map_err(field("extension"))?;
            let mut e = Reader::new(ext.value);
            let id = e.read(der::OID, "extnID").map_err(field("extnID"))?;
            let critical = match e.read_optional(der::BOOLEAN).map_err(field("critical"))? {
                Some(b) => der::boolean(b.value).map_err(field("critical"))?,
                None => false,
            };
            let value = e
                .read(der::OCTET_STRING, "extnValue")
                .map_err(field("extnValue"))?;
            e.finish("Extension").map_err(field("extension"))?;
            if seen.iter().any(|s| s == id.value) {
                return Err(CertError::Unsupported(format!(
                    "duplicate extension {}",
                    der::oid_to_string(id.value)
                )));
            }
            seen.push(id.value.to_vec());
            let v = value.value;
            match id.value {
                oid::BASIC_CONSTRAINTS => {
                    let s = der::parse_single(v, der::SEQUENCE, "BasicConstraints")
                        .map_err(field("basicConstraints"))?;
                    let mut b = Reader::new(s.value);
                    let ca = match b
                        .read_optional(der::BOOLEAN)
                        .map_err(field("basicConstraints"))?
                    {
                        Some(t) => der::boolean(t.value).map_err(field("basicConstraints"))?,
                        None => false,
                    };
                    let path_len = match b
                        .read_optional(der::INTEGER)
                        .map_err(field("basicConstraints"))?
                    {
                        Some(t) => {
                            Some(der::small_uint(t.value).map_err(field("pathLenConstraint"))?)
                        }
                        None => None,
                    };
                    b.finish("BasicConstraints")
                        .map_err(field("basicConstraints"))?;
                    self.basic_constraints = Some(BasicConstraints { ca, path_len });
                }
                oid::KEY_USAGE => {
                    let s = der::parse_single(v, der::BIT_STRING, "KeyUsage")
                        .map_err(field("keyUsage"))?;
                    let (unused, bytes) = s.value.split_first().ok_or(CertError::Malformed {
                        field: "keyUsage",
                        source: DerError::Invalid { what: "bit string" },
                    })?;
                    if *unused > 7 || bytes.len() > 2 {
                        return Err(CertError::Malformed {
                            field: "keyUsage",
                            source: DerError::Invalid { what: "bit string" },
                        });
                    }
                    // bit n of the ASN.1 BIT STRING is bit (7 - n%8) of byte n/8
                    let mut bits = 0u16;
                    for (i, byte) in bytes.iter().enumerate() {
                        for j in 0..8 {
                            if byte & (0x80 >> j) != 0 {
                                bits |= 1 << (i * 8 + j);
                            }
                        }
                    }
                    self.key_usage = Some(KeyUsage { bits, critical });
                }
                oid::EXT_KEY_USAGE => {
                    let s = der::parse_single(v, der::SEQUENCE, "ExtKeyUsageSyntax")
                        .map_err(field("extKeyUsage"))?;
                    let mut k = Reader::new(s.value);
                    let mut list = Vec::new();
                    while !k.is_empty() {
                        let o = k
                            .read(der::OID, "KeyPurposeId")
                            .map_err(field("extKeyUsage"))?;
                        list.push(der::oid_to_string(o.value));
                    }
                    self.ext_key_usage = Some(list);
                }
                oid::CRL_DISTRIBUTION_POINTS => self.crl_urls = parse_crl_distribution_points(v)?,
                oid::AUTHORITY_INFO_ACCESS => self.ocsp_urls = parse_ocsp_urls(v)?,
                oid::FRESHEST_CRL => self.has_freshest_crl = true,
                oid::OCSP_NO_CHECK => self.ocsp_no_check = true,
                oid::SUBJECT_KEY_ID
                | oid::AUTHORITY_KEY_ID
                | oid::SUBJECT_ALT_NAME
                | oid::CERT_POLICIES => {}
                other => {
                    if critical {
                        self.unhandled_critical_extensions
                            .push(der::oid_to_string(other));
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn base64_std(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s)
}

fn read_time(r: &mut Reader<'_>) -> Result<Timestamp, CertError> {
    let t = r.read_any().map_err(field("validity"))?;
    let parsed = match t.tag {
        der::UTC_TIME => Timestamp::parse_utc_time(t.value),
        der::GENERALIZED_TIME => Timestamp::parse_generalized_time(t.value),
        _ => None,
    };
    parsed.ok_or(CertError::Malformed {
        field: "validity",
        source: DerError::Invalid { what: "time" },
    })
}

/// The URIs of a CRLDistributionPoints extension value (RFC 5280 4.2.1.13): each
/// DistributionPoint's `fullName` URIs; other name forms are not fetchable and are ignored.
fn parse_crl_distribution_points(v: &[u8]) -> Result<Vec<String>, CertError> {
    let f = field("cRLDistributionPoints");
    let seq = der::parse_single(v, der::SEQUENCE, "CRLDistributionPoints").map_err(&f)?;
    let mut r = Reader::new(seq.value);
    let mut urls = Vec::new();
    while !r.is_empty() {
        let dp = r.read(der::SEQUENCE, "DistributionPoint").map_err(&f)?;
        let mut d = Reader::new(dp.value);
        // distributionPoint [0] { fullName [0] GeneralNames | nameRelativeToCRLIssuer [1] }
        if let Some(name) = d.read_optional(0xa0).map_err(&f)? {
            let mut n = Reader::new(name.value);
            if let Some(full) = n.read_optional(0xa0).map_err(&f)? {
                urls.extend(general_name_uris(full.value)?);
            }
        }
    }
    Ok(urls)
}

/// The `id-ad-ocsp` URIs of an AuthorityInfoAccessSyntax extension value (RFC 5280 4.2.2.1).
fn parse_ocsp_urls(v: &[u8]) -> Result<Vec<String>, CertError> {
    let f = field("authorityInfoAccess");
    let seq = der::parse_single(v, der::SEQUENCE, "AuthorityInfoAccessSyntax").map_err(&f)?;
    let mut r = Reader::new(seq.value);
    let mut urls = Vec::new();
    while !r.is_empty() {
        let ad = r.read(der::SEQUENCE, "AccessDescription").map_err(&f)?;
        let mut a = Reader::new(ad.value);
        let method = a.read(der::OID, "accessMethod").map_err(&f)?;
        let location = a.read_any().map_err(&f)?;
        a.finish("AccessDescription").map_err(&f)?;
        if method.value == oid::OCSP {
            urls.extend(general_name_uris(location.raw)?);
        }
    }
    Ok(urls)
}

/// The uniformResourceIdentifier ([6] IA5String) entries among DER GeneralName elements.
fn general_name_uris(names: &[u8]) -> Result<Vec<String>, CertError> {
    let mut r = Reader::new(names);
    let mut out = Vec::new();
    while !r.is_empty() {
        let n = r.read_any().map_err(field("GeneralName"))?;
        if n.tag == 0x86 {
            let s = std::str::from_utf8(n.value)
                .ok()
                .filter(|s| s.is_ascii())
                .ok_or(CertError::Malformed {
                    field: "GeneralName",
                    source: DerError::Invalid { what: "URI" },
                })?;
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// The subjectPublicKey BIT STRING contents of a SubjectPublicKeyInfo's contents.
fn spki_key_bits(value: &[u8]) -> Result<Vec<u8>, CertError> {
    let mut r = Reader::new(value);
    r.read(der::SEQUENCE, "AlgorithmIdentifier")
        .map_err(field("subjectPublicKeyInfo"))?;
    let key = r
        .read(der::BIT_STRING, "subjectPublicKey")
        .map_err(field("subjectPublicKeyInfo"))?;
    Ok(der::bit_string_bytes(key.value)
        .map_err(field("subjectPublicKey"))?
        .to_vec())
}

pub(crate) fn parse_sig_alg(
    value: &[u8],
) -> Result<(Option<CertSignatureAlgorithm>, String), CertError> {
    let mut r = Reader::new(value);
    let id = r
        .read(der::OID, "algorithm")
        .map_err(field("signatureAlgorithm"))?;
    let name = der::oid_to_string(id.value);
    let alg = match id.value {
        oid::SHA256_WITH_RSA => Some(CertSignatureAlgorithm::RsaPkcs1Sha256),
        oid::SHA384_WITH_RSA => Some(CertSignatureAlgorithm::RsaPkcs1Sha384),
        oid::SHA512_WITH_RSA => Some(CertSignatureAlgorithm::RsaPkcs1Sha512),
        oid::ECDSA_SHA256 => Some(CertSignatureAlgorithm::EcdsaSha256),
        oid::ECDSA_SHA384 => Some(CertSignatureAlgorithm::EcdsaSha384),
        oid::ECDSA_SHA512 => Some(CertSignatureAlgorithm::EcdsaSha512),
        oid::RSASSA_PSS => {
            // RSASSA-PSS-params: only the hash is read; ring verifies MGF1 with the same hash
            // and a salt of the hash's length, which is what every PSS certificate we accept uses
            let params = r
                .read(der::SEQUENCE, "RSASSA-PSS-params")
                .map_err(field("signatureAlgorithm"))?;
            let p = params.value;
            if p.windows(oid::SHA512.len()).any(|w| w == oid::SHA512) {
                Some(CertSignatureAlgorithm::RsaPssSha512)
            } else if p.windows(oid::SHA384.len()).any(|w| w == oid::SHA384) {
                Some(CertSignatureAlgorithm::RsaPssSha384)
            } else if p.windows(oid::SHA256.len()).any(|w| w == oid::SHA256) {
                Some(CertSignatureAlgorithm::RsaPssSha256)
            } else {
                None
            }
        }
        _ => None,
    };
    Ok((alg, name))
}

fn parse_spki(value: &[u8]) -> Result<PublicKey, CertError> {
    let mut r = Reader::new(value);
    let alg = r
        .read(der::SEQUENCE, "AlgorithmIdentifier")
        .map_err(field("subjectPublicKeyInfo"))?;
    let key = r
        .read(der::BIT_STRING, "subjectPublicKey")
        .map_err(field("subjectPublicKeyInfo"))?;
    r.finish("SubjectPublicKeyInfo")
        .map_err(field("subjectPublicKeyInfo"))?;
    let key = der::bit_string_bytes(key.value).map_err(field("subjectPublicKey"))?;
    let mut a = Reader::new(alg.value);
    let id = a
        .read(der::OID, "algorithm")
        .map_err(field("subjectPublicKeyInfo"))?;
    match id.value {
        oid::RSA_ENCRYPTION => {
            let seq = der::parse_single(key, der::SEQUENCE, "RSAPublicKey")
                .map_err(field("RSAPublicKey"))?;
            let mut k = Reader::new(seq.value);
            let n = k
                .read(der::INTEGER, "modulus")
                .map_err(field("RSAPublicKey"))?;
            k.read(der::INTEGER, "publicExponent")
                .map_err(field("RSAPublicKey"))?;
            k.finish("RSAPublicKey").map_err(field("RSAPublicKey"))?;
            let m = n.value;
            let m = match m.split_first() {
                Some((0, rest)) => rest,
                _ => m,
            };
            let bits = match m.first() {
                Some(b) => m.len() * 8 - b.leading_zeros() as usize,
                None => 0,
            };
            Ok(PublicKey::Rsa {
                der: key.to_vec(),
                bits,
            })
        }
        oid::EC_PUBLIC_KEY => {
            let curve = a
                .read(der::OID, "namedCurve")
                .map_err(field("EC parameters"))?;
            let curve = match curve.value {
                oid::P256 => Curve::P256,
                oid::P384 => Curve::P384,
                oid::P521 => Curve::P521,
                other => {
                    return Err(CertError::Unsupported(format!(
                        "EC curve {}",
                        der::oid_to_string(other)
                    )));
                }
            };
            Ok(PublicKey::Ec {
                curve,
                point: key.to_vec(),
            })
        }
        other => Ok(PublicKey::Other {
            algorithm: der::oid_to_string(other),
        }),
    }
}

fn attr_name(oid_bytes: &[u8]) -> String {
    match oid_bytes {
        [0x55, 0x04, 0x03] => "CN".to_string(),
        [0x55, 0x04, 0x05] => "SERIALNUMBER".to_string(),
        [0x55, 0x04, 0x06] => "C".to_string(),
        [0x55, 0x04, 0x07] => "L".to_string(),
        [0x55, 0x04, 0x08] => "ST".to_string(),
        [0x55, 0x04, 0x09] => "STREET".to_string(),
        [0x55, 0x04, 0x0a] => "O".to_string(),
        [0x55, 0x04, 0x0b] => "OU".to_string(),
        [0x55, 0x04, 0x11] => "POSTALCODE".to_string(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "E".to_string(),
        other => der::oid_to_string(other),
    }
}

fn parse_name(value: &[u8]) -> Result<DistinguishedName, CertError> {
    let mut out = Vec::new();
    let mut r = Reader::new(value);
    while !r.is_empty() {
        let rdn = r
            .read(der::SET, "RelativeDistinguishedName")
            .map_err(field("name"))?;
        let mut s = Reader::new(rdn.value);
        while !s.is_empty() {
            let atv = s
                .read(der::SEQUENCE, "AttributeTypeAndValue")
                .map_err(field("name"))?;
            let mut a = Reader::new(atv.value);
            let ty = a.read(der::OID, "AttributeType").map_err(field("name"))?;
            let val = a.read_any().map_err(field("name"))?;
            a.finish("AttributeTypeAndValue").map_err(field("name"))?;
            let text = match val.tag {
                // UTF8String, PrintableString, IA5String, NumericString
                0x0c | 0x13 | 0x16 | 0x12 => {
                    String::from_utf8(val.value.to_vec()).map_err(|_| CertError::Malformed {
                        field: "name",
                        source: DerError::Invalid { what: "string" },
                    })?
                }
                // TeletexString: latin-1 in practice
                0x14 => val.value.iter().map(|b| char::from(*b)).collect(),
                // BMPString: UCS-2
                0x1e => {
                    if val.value.len() % 2 != 0 {
                        return Err(CertError::Malformed {
                            field: "name",
                            source: DerError::Invalid { what: "BMPString" },
                        });
                    }
                    let units: Vec<u16> = val
                        .value
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => {
                    return Err(CertError::Unsupported(format!(
                        "name attribute string type 0x{:02x}",
                        val.tag
                    )));
                }
            };
            out.push((attr_name(ty.value), text));
        }
    }
    Ok(DistinguishedName(out))
}
