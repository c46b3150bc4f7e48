//! RFC 3161 timestamp countersignatures (the `io.cncf.notary.timestampSignature` unprotected
//! header), verified as the workflow's "Validate Trusted Timestamp" step says: the token is a
//! CMS SignedData (RFC 5652) over a TSTInfo whose messageImprint is the hash of the envelope's
//! signature value; its signed attributes (content type, message digest, signing-certificate or
//! signing-certificate-v2) are checked; its signer's chain must satisfy the timestamping
//! certificate requirements and lead to a certificate of one of the policy's `tsa` stores, valid
//! at the timestamp; the result is the time range genTime ± accuracy.

use crate::cert::{CertSignatureAlgorithm, Certificate, PublicKey, oid};
use crate::der::{self, Reader};
use crate::time::Timestamp;
use crate::verify::{ChainPurpose, validate_chain};
use ring::digest;

const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const CT_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
const ATTR_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const ATTR_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const ATTR_SIGNING_CERT: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0c,
];
const ATTR_SIGNING_CERT_V2: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f,
];
/// ETSI baseline time-stamp policy 0.4.0.2023.1.1 (RFC 3628): accuracy of one second.
const BASELINE_POLICY: &[u8] = &[0x04, 0x00, 0x8f, 0x67, 0x01, 0x01];

/// A verified timestamp: the range the signature existed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub lower: Timestamp,
    pub upper: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_alg_id(value: &[u8]) -> Result<Hash, String> {
        let mut r = Reader::new(value);
        let id = r
            .read(der::OID, "hash algorithm")
            .map_err(|e| e.to_string())?;
        match id.value {
            oid::SHA256 => Ok(Hash::Sha256),
            oid::SHA384 => Ok(Hash::Sha384),
            oid::SHA512 => Ok(Hash::Sha512),
            [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Ok(Hash::Sha1),
            other => Err(format!(
                "unsupported hash algorithm {}",
                der::oid_to_string(other)
            )),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

fn e(what: &'static str) -> impl Fn(der::DerError) -> String {
    move |err| format!("malformed timestamp token ({what}): {err}")
}

/// The parts of a timestamp token (a CMS SignedData ContentInfo) that are read: its
/// certificates field, its SignerInfos and the DER of its TSTInfo.
struct Opened<'a> {
    certs_field: Option<der::Tlv<'a>>,
    signer_infos: der::Tlv<'a>,
    tst_der: &'a [u8],
}

fn open(token: &[u8]) -> Result<Opened<'_>, String> {
    // ContentInfo
    let ci = der::parse_single(token, der::SEQUENCE, "ContentInfo").map_err(e("ContentInfo"))?;
    let mut r = Reader::new(ci.value);
    let ct = r.read(der::OID, "contentType").map_err(e("contentType"))?;
    if ct.value != SIGNED_DATA {
        return Err("timestamp token is not a CMS SignedData".to_string());
    }
    let content = r.read(0xa0, "[0] content").map_err(e("content"))?;
    r.finish("ContentInfo").map_err(e("ContentInfo"))?;
    let sd =
        der::parse_single(content.value, der::SEQUENCE, "SignedData").map_err(e("SignedData"))?;
    let mut s = Reader::new(sd.value);
    s.read(der::INTEGER, "version").map_err(e("version"))?;
    s.read(der::SET, "digestAlgorithms")
        .map_err(e("digestAlgorithms"))?;
    let encap = s
        .read(der::SEQUENCE, "encapContentInfo")
        .map_err(e("encapContentInfo"))?;
    let certs_field = s.read_optional(0xa0).map_err(e("certificates"))?;
    s.read_optional(0xa1).map_err(e("crls"))?;
    let signer_infos = s.read(der::SET, "signerInfos").map_err(e("signerInfos"))?;
    s.finish("SignedData").map_err(e("SignedData"))?;

    let mut enc = Reader::new(encap.value);
    let ect = enc
        .read(der::OID, "eContentType")
        .map_err(e("eContentType"))?;
    if ect.value != CT_TST_INFO {
        return Err("timestamp token content is not a TSTInfo".to_string());
    }
    let econtent = enc.read(0xa0, "eContent").map_err(e("eContent"))?;
    let tst_der = der::parse_single(econtent.value, der::OCTET_STRING, "eContent")
        .map_err(e("eContent"))?
        .value;
    Ok(Opened {
        certs_field,
        signer_infos,
        tst_der,
    })
}

/// What a timestamp client compares with its request (RFC 3161 2.4.2): the TSTInfo's
/// messageImprint (hash algorithm OID and hashed message) and nonce, read without verifying
/// anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TstInfoEcho {
    pub(crate) version: u64,
    pub(crate) imprint_algorithm: Vec<u8>,
    pub(crate) imprint: Vec<u8>,
    /// The nonce's INTEGER content octets, when there is one.
    pub(crate) nonce: Option<Vec<u8>>,
}

/// The TSTInfo fields of `token` a client checks against its request.
pub(crate) fn tst_info_echo(token: &[u8]) -> Result<TstInfoEcho, String> {
    let opened = open(token)?;
    let tst = der::parse_single(opened.tst_der, der::SEQUENCE, "TSTInfo").map_err(e("TSTInfo"))?;
    let mut t = Reader::new(tst.value);
    let version = t
        .read(der::INTEGER, "version")
        .map_err(e("TSTInfo version"))?;
    let version = der::small_uint(version.value).map_err(e("TSTInfo version"))?;
    t.read(der::OID, "policy").map_err(e("policy"))?;
    let imprint = t
        .read(der::SEQUENCE, "messageImprint")
        .map_err(e("messageImprint"))?;
    t.read(der::INTEGER, "serialNumber")
        .map_err(e("serialNumber"))?;
    t.read(der::GENERALIZED_TIME, "genTime")
        .map_err(e("genTime"))?;
    t.read_optional(der::SEQUENCE).map_err(e("accuracy"))?;
    t.read_optional(der::BOOLEAN).map_err(e("ordering"))?;
    let nonce = t.read_optional(der::INTEGER).map_err(e("nonce"))?;
    let mut ir = Reader::new(imprint.value);
    let alg = ir
        .read(der::SEQUENCE, "hashAlgorithm")
        .map_err(e("messageImprint"))?;
    let hashed = ir
        .read(der::OCTET_STRING, "hashedMessage")
        .map_err(e("messageImprint"))?;
    let alg_oid = Reader::new(alg.value)
        .read(der::OID, "hash algorithm")
        .map_err(e("messageImprint"))?;
    Ok(TstInfoEcho {
        version,
        imprint_algorithm: alg_oid.value.to_vec(),
        imprint: hashed.value.to_vec(),
        nonce: nonce.map(|n| n.value.to_vec()),
    })
}

/// Verifies `token` over `signature_value` against the TSA roots `tsa_roots`.
pub fn verify_token(
    token: &[u8],
    signature_value: &[u8],
    tsa_roots: &[Certificate],
) -> Result<TimeRange, String> {
    let Opened {
        certs_field,
        signer_infos,
        tst_der,
    } = open(token)?;

    let mut certs = Vec::new();
    if let Some(cf) = certs_field {
        let mut c = Reader::new(cf.value);
        while !c.is_empty() {
            let cert = c
                .read(der::SEQUENCE, "certificate")
                .map_err(e("certificate"))?;
            certs.push(
                Certificate::from_der(cert.raw)
                    .map_err(|err| format!("timestamp token certificate: {err}"))?,
            );
        }
    }

    // exactly one SignerInfo
    let mut si_reader = Reader::new(signer_infos.value);
    let si = si_reader
        .read(der::SEQUENCE, "SignerInfo")
        .map_err(e("SignerInfo"))?;
    if !si_reader.is_empty() {
        return Err("timestamp token has more than one signer".to_string());
    }
    let mut si = Reader::new(si.value);
    si.read(der::INTEGER, "version")
        .map_err(e("SignerInfo version"))?;
    let sid = si.read_any().map_err(e("sid"))?;
    let digest_alg = si
        .read(der::SEQUENCE, "digestAlgorithm")
        .map_err(e("digestAlgorithm"))?;
    let signed_attrs = si
        .read(0xa0, "signedAttrs")
        .map_err(|_| "timestamp token has no signed attributes".to_string())?;
    let sig_alg = si
        .read(der::SEQUENCE, "signatureAlgorithm")
        .map_err(e("signatureAlgorithm"))?;
    let signature = si
        .read(der::OCTET_STRING, "signature")
        .map_err(e("signature"))?;
    si.read_optional(0xa1).map_err(e("unsignedAttrs"))?;
    si.finish("SignerInfo").map_err(e("SignerInfo"))?;

    // the signer certificate: IssuerAndSerialNumber (subjectKeyIdentifier is not supported)
    if sid.tag != der::SEQUENCE {
        return Err("timestamp signer identified by key identifier: not supported".to_string());
    }
    let mut ias = Reader::new(sid.value);
    let issuer = ias.read(der::SEQUENCE, "issuer").map_err(e("issuer"))?;
    let serial = ias
        .read(der::INTEGER, "serialNumber")
        .map_err(e("serialNumber"))?;
    let signer = certs
        .iter()
        .find(|c| c.is_issuer_and_serial(issuer.raw, serial.value))
        .ok_or("the timestamp token does not carry its signer's certificate")?;

    // signed attributes
    let hash = Hash::from_alg_id(digest_alg.value)?;
    let mut content_type_ok = false;
    let mut message_digest = None;
    let mut signing_cert: Option<(Hash, Vec<u8>)> = None;
    let mut a = Reader::new(signed_attrs.value);
    while !a.is_empty() {
        let attr = a.read(der::SEQUENCE, "Attribute").map_err(e("attribute"))?;
        let mut ar = Reader::new(attr.value);
        let ty = ar.read(der::OID, "attrType").map_err(e("attribute"))?;
        let values = ar.read(der::SET, "attrValues").map_err(e("attribute"))?;
        let mut vr = Reader::new(values.value);
        let first = vr.read_any().map_err(e("attribute value"))?;
        match ty.value {
            ATTR_CONTENT_TYPE => {
                content_type_ok = first.tag == der::OID && first.value == CT_TST_INFO
            }
            ATTR_MESSAGE_DIGEST if first.tag == der::OCTET_STRING => {
                message_digest = Some(first.value.to_vec())
            }
            ATTR_SIGNING_CERT | ATTR_SIGNING_CERT_V2 => {
                let v2 = ty.value == ATTR_SIGNING_CERT_V2;
                let sc = der::parse_single(first.raw, der::SEQUENCE, "SigningCertificate")
                    .map_err(e("signing certificate"))?;
                let mut scr = Reader::new(sc.value);
                let ids = scr
                    .read(der::SEQUENCE, "certs")
                    .map_err(e("signing certificate"))?;
                let mut idr = Reader::new(ids.value);
                let id = idr
                    .read(der::SEQUENCE, "ESSCertID")
                    .map_err(e("signing certificate"))?;
                let mut f = Reader::new(id.value);
                let h = if v2 {
                    match f
                        .read_optional(der::SEQUENCE)
                        .map_err(e("signing certificate"))?
                    {
                        Some(alg) => Hash::from_alg_id(alg.value)?,
                        None => Hash::Sha256,
                    }
                } else {
                    Hash::Sha1
                };
                let cert_hash = f
                    .read(der::OCTET_STRING, "certHash")
                    .map_err(e("signing certificate"))?;
                signing_cert = Some((h, cert_hash.value.to_vec()));
            }
            _ => {}
        }
    }
    if !content_type_ok {
        return Err("the timestamp's content-type attribute is missing or not TSTInfo".to_string());
    }
    if message_digest.as_deref() != Some(hash.digest(tst_der).as_slice()) {
        return Err(
            "the timestamp's message-digest attribute does not match its TSTInfo".to_string(),
        );
    }
    let (h, cert_hash) =
        signing_cert.ok_or("the timestamp has no signing-certificate(-v2) attribute")?;
    if h.digest(signer.der()) != cert_hash {
        return Err(
            "the timestamp's signing-certificate attribute does not name its signer".to_string(),
        );
    }
    // the signature over the DER SET OF signed attributes
    let mut set = Vec::with_capacity(signed_attrs.raw.len());
    set.push(der::SET);
    set.extend_from_slice(&signed_attrs.raw[1..]);
    let alg = cms_signature_algorithm(hash, sig_alg.value, &signer.public_key)?;
    crate::crypto::verify_cert_signature(alg, &signer.public_key, &set, signature.value)
        .map_err(|err| format!("timestamp signature: {err}"))?;

    // TSTInfo
    let tst = der::parse_single(tst_der, der::SEQUENCE, "TSTInfo").map_err(e("TSTInfo"))?;
    let mut t = Reader::new(tst.value);
    t.read(der::INTEGER, "version")
        .map_err(e("TSTInfo version"))?;
    let policy = t.read(der::OID, "policy").map_err(e("policy"))?;
    let imprint = t
        .read(der::SEQUENCE, "messageImprint")
        .map_err(e("messageImprint"))?;
    t.read(der::INTEGER, "serialNumber")
        .map_err(e("serialNumber"))?;
    let gen_time = t
        .read(der::GENERALIZED_TIME, "genTime")
        .map_err(e("genTime"))?;
    let accuracy = t.read_optional(der::SEQUENCE).map_err(e("accuracy"))?;
    let mut ir = Reader::new(imprint.value);
    let imprint_alg = ir
        .read(der::SEQUENCE, "hashAlgorithm")
        .map_err(e("messageImprint"))?;
    let hashed = ir
        .read(der::OCTET_STRING, "hashedMessage")
        .map_err(e("messageImprint"))?;
    let imprint_hash = Hash::from_alg_id(imprint_alg.value)?;
    if imprint_hash == Hash::Sha1 {
        return Err("the timestamp's message imprint uses SHA-1".to_string());
    }
    if imprint_hash.digest(signature_value) != hashed.value {
        return Err(
            "the timestamp is not over this signature (messageImprint mismatch)".to_string(),
        );
    }
    let generated = Timestamp::parse_generalized_time(gen_time.value)
        .ok_or("the timestamp's genTime is malformed")?;
    let has_fraction = gen_time.value.contains(&b'.');
    let mut acc_ms: u64 = 0;
    match accuracy {
        Some(acc) => {
            let mut ar = Reader::new(acc.value);
            while !ar.is_empty() {
                let f = ar.read_any().map_err(e("accuracy"))?;
                let n = der::small_uint(f.value).map_err(e("accuracy"))?;
                acc_ms = acc_ms.saturating_add(match f.tag {
                    der::INTEGER => n.saturating_mul(1000),
                    0x80 => n,
                    0x81 => n.div_ceil(1000),
                    _ => return Err("malformed timestamp accuracy".to_string()),
                });
            }
        }
        None if policy.value == BASELINE_POLICY => acc_ms = 1000,
        None => {}
    }
    let acc_s = i64::try_from(acc_ms.div_ceil(1000)).unwrap_or(i64::MAX);
    let range = TimeRange {
        lower: Timestamp(generated.0.saturating_sub(acc_s)),
        upper: Timestamp(
            generated
                .0
                .saturating_add(acc_s)
                .saturating_add(i64::from(has_fraction)),
        ),
    };

    // the TSA chain: signer → issuers (from the token, then the roots), ending in a TSA root
    let mut chain = vec![signer.clone()];
    while let Some(last) = chain.last() {
        if last.is_self_issued() || chain.len() > crate::envelope::MAX_CHAIN_LEN {
            break;
        }
        let next = certs
            .iter()
            .chain(tsa_roots.iter())
            .find(|c| last.names_issuer(c) && last.verify_signed_by(c).is_ok())
            .cloned();
        match next {
            Some(c) => chain.push(c),
            None => break,
        }
    }
    if let Some(last) = chain.last().filter(|c| !c.is_self_issued()) {
        return Err(format!(
            "the timestamp's certificate chain does not lead to a certificate of the policy's tsa stores \
             (no issuer of {:?} among the token's certificates and the tsa roots)",
            last.subject.to_string()
        ));
    }
    validate_chain(&chain, ChainPurpose::TimeStamping)
        .map_err(|err| format!("timestamp certificate chain: {err}"))?;
    if !chain
        .iter()
        .any(|c| tsa_roots.iter().any(|r| r.der() == c.der()))
    {
        return Err("the timestamp's certificate chain does not lead to a certificate of the policy's tsa stores".to_string());
    }
    if let Some(c) = chain.iter().find(|c| !c.valid_at(generated)) {
        return Err(format!(
            "timestamp certificate {:?} is not valid at the timestamp {generated}",
            c.subject.to_string()
        ));
    }
    Ok(range)
}

fn cms_signature_algorithm(
    hash: Hash,
    sig_alg: &[u8],
    key: &PublicKey,
) -> Result<CertSignatureAlgorithm, String> {
    use CertSignatureAlgorithm as A;
    let mut r = Reader::new(sig_alg);
    let id = r
        .read(der::OID, "signatureAlgorithm")
        .map_err(|err| err.to_string())?;
    Ok(match (id.value, hash, key) {
        (oid::RSA_ENCRYPTION, Hash::Sha256, _) | (oid::SHA256_WITH_RSA, _, _) => A::RsaPkcs1Sha256,
        (oid::RSA_ENCRYPTION, Hash::Sha384, _) | (oid::SHA384_WITH_RSA, _, _) => A::RsaPkcs1Sha384,
        (oid::RSA_ENCRYPTION, Hash::Sha512, _) | (oid::SHA512_WITH_RSA, _, _) => A::RsaPkcs1Sha512,
        (oid::ECDSA_SHA256, _, _) => A::EcdsaSha256,
        (oid::ECDSA_SHA384, _, _) => A::EcdsaSha384,
        (oid::ECDSA_SHA512, _, _) => A::EcdsaSha512,
        (oid::EC_PUBLIC_KEY, Hash::Sha256, _) => A::EcdsaSha256,
        (oid::EC_PUBLIC_KEY, Hash::Sha384, _) => A::EcdsaSha384,
        (other, h, _) => {
            return Err(format!(
                "unsupported timestamp signature algorithm {} with {h:?}",
                der::oid_to_string(other)
            ));
        }
    })
}
