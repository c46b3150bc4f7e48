//! OCSP (RFC 6960) as notation asks it: one CertID (SHA-1, as notation and most responders
//! use) per request, no nonce (notation sends none; freshness comes from thisUpdate /
//! nextUpdate), the response's signature checked against the issuer or a responder the issuer
//! delegated to with `id-kp-OCSPSigning` (RFC 6960 4.2.2.2).

use crate::cert::{self, Certificate};
use crate::der::{self, DerError, Reader};
use crate::der_writer as w;
use crate::time::Timestamp;

const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
const INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];
/// How far in the future a thisUpdate may be (clock skew).
const SKEW: i64 = 5 * 60;

/// The DER OCSPRequest for `cert` issued by `issuer`.
pub(crate) fn request(cert: &Certificate, issuer: &Certificate) -> Vec<u8> {
    let alg = w::sequence(&[&w::oid(SHA1), &w::null()]);
    let name_hash = sha1(issuer.subject_raw());
    let key_hash = sha1(issuer.public_key_bits());
    let cert_id = w::sequence(&[
        &alg,
        &w::octet_string(&name_hash),
        &w::octet_string(&key_hash),
        &w::tlv(der::INTEGER, cert.serial()),
    ]);
    let one = w::sequence(&[&cert_id]);
    let list = w::sequence(&[&one]);
    let tbs = w::sequence(&[&list]);
    w::sequence(&[&tbs])
}

fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// A certificate's status in one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked {
        time: Timestamp,
        reason: Option<u64>,
        invalidity_date: Option<Timestamp>,
    },
    Unknown,
}

/// One SingleResponse, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleResponse {
    hash_alg: Vec<u8>,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    serial: Vec<u8>,
    pub status: Status,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
}

/// A successful BasicOCSPResponse, parsed but not yet checked.
#[derive(Debug, Clone)]
pub struct Response {
    tbs: Vec<u8>,
    sig_alg: Option<cert::CertSignatureAlgorithm>,
    sig_alg_name: String,
    signature: Vec<u8>,
    pub responses: Vec<SingleResponse>,
    pub certs: Vec<Certificate>,
}

fn e(what: &'static str) -> impl Fn(DerError) -> String {
    move |err| format!("malformed OCSP response ({what}): {err}")
}

/// Parses an OCSPResponse (RFC 6960 4.2.1); a non-successful responseStatus is an error that
/// names it.
pub fn parse(data: &[u8]) -> Result<Response, String> {
    let top = der::parse_single(data, der::SEQUENCE, "OCSPResponse").map_err(e("OCSPResponse"))?;
    let mut r = Reader::new(top.value);
    let status = r
        .read(0x0a, "responseStatus")
        .map_err(e("responseStatus"))?;
    match status.value {
        [0] => {}
        [n] => {
            let name = match n {
                1 => "malformedRequest",
                2 => "internalError",
                3 => "tryLater",
                5 => "sigRequired",
                6 => "unauthorized",
                _ => "unknown status",
            };
            return Err(format!("the OCSP responder answered {name} ({n})"));
        }
        _ => return Err("malformed OCSP response (responseStatus)".to_string()),
    }
    let bytes = r.read(0xa0, "responseBytes").map_err(e("responseBytes"))?;
    r.finish("OCSPResponse").map_err(e("OCSPResponse"))?;
    let rb = der::parse_single(bytes.value, der::SEQUENCE, "ResponseBytes")
        .map_err(e("ResponseBytes"))?;
    let mut b = Reader::new(rb.value);
    let ty = b
        .read(der::OID, "responseType")
        .map_err(e("responseType"))?;
    let inner = b
        .read(der::OCTET_STRING, "response")
        .map_err(e("response"))?;
    b.finish("ResponseBytes").map_err(e("ResponseBytes"))?;
    if ty.value != BASIC {
        return Err(format!(
            "unsupported OCSP response type {}",
            der::oid_to_string(ty.value)
        ));
    }
    let basic = der::parse_single(inner.value, der::SEQUENCE, "BasicOCSPResponse")
        .map_err(e("BasicOCSPResponse"))?;
    let mut b = Reader::new(basic.value);
    let tbs = b
        .read(der::SEQUENCE, "ResponseData")
        .map_err(e("ResponseData"))?;
    let alg = b
        .read(der::SEQUENCE, "signatureAlgorithm")
        .map_err(e("signatureAlgorithm"))?;
    let sig = b
        .read(der::BIT_STRING, "signature")
        .map_err(e("signature"))?;
    let mut certs = Vec::new();
    if let Some(c) = b.read_optional(0xa0).map_err(e("certs"))? {
        let seq = der::parse_single(c.value, der::SEQUENCE, "certs").map_err(e("certs"))?;
        let mut cr = Reader::new(seq.value);
        while !cr.is_empty() {
            let one = cr.read(der::SEQUENCE, "Certificate").map_err(e("certs"))?;
            certs.push(
                Certificate::from_der(one.raw)
                    .map_err(|err| format!("malformed OCSP responder certificate: {err}"))?,
            );
        }
    }
    b.finish("BasicOCSPResponse")
        .map_err(e("BasicOCSPResponse"))?;
    let (sig_alg, sig_alg_name) =
        cert::parse_sig_alg(alg.value).map_err(|err| format!("OCSP response: {err}"))?;
    let signature = der::bit_string_bytes(sig.value)
        .map_err(e("signature"))?
        .to_vec();

    let mut t = Reader::new(tbs.value);
    if let Some(v) = t.read_optional(0xa0).map_err(e("version"))? {
        let int = der::parse_single(v.value, der::INTEGER, "version").map_err(e("version"))?;
        if der::small_uint(int.value).map_err(e("version"))? != 0 {
            return Err("unsupported OCSP response version".to_string());
        }
    }
    // responderID: byName [1] or byKey [2]; the signature decides who signed
    let rid = t.read_any().map_err(e("responderID"))?;
    if rid.tag != 0xa1 && rid.tag != 0xa2 {
        return Err("malformed OCSP response (responderID)".to_string());
    }
    let produced = t
        .read(der::GENERALIZED_TIME, "producedAt")
        .map_err(e("producedAt"))?;
    time(produced.value, "producedAt")?;
    let list = t.read(der::SEQUENCE, "responses").map_err(e("responses"))?;
    t.read_optional(0xa1).map_err(e("responseExtensions"))?;
    t.finish("ResponseData").map_err(e("ResponseData"))?;
    let mut responses = Vec::new();
    let mut l = Reader::new(list.value);
    while !l.is_empty() {
        responses.push(single(
            l.read(der::SEQUENCE, "SingleResponse")
                .map_err(e("SingleResponse"))?
                .value,
        )?);
    }
    Ok(Response {
        tbs: tbs.raw.to_vec(),
        sig_alg,
        sig_alg_name,
        signature,
        responses,
        certs,
    })
}

fn time(v: &[u8], what: &'static str) -> Result<Timestamp, String> {
    Timestamp::parse_generalized_time(v)
        .ok_or_else(|| format!("malformed OCSP response ({what}: not a GeneralizedTime)"))
}

fn single(v: &[u8]) -> Result<SingleResponse, String> {
    let mut r = Reader::new(v);
    let id = r.read(der::SEQUENCE, "CertID").map_err(e("CertID"))?;
    let mut c = Reader::new(id.value);
    let alg = c
        .read(der::SEQUENCE, "hashAlgorithm")
        .map_err(e("hashAlgorithm"))?;
    let mut a = Reader::new(alg.value);
    let hash_alg = a
        .read(der::OID, "hashAlgorithm")
        .map_err(e("hashAlgorithm"))?;
    let name_hash = c
        .read(der::OCTET_STRING, "issuerNameHash")
        .map_err(e("issuerNameHash"))?;
    let key_hash = c
        .read(der::OCTET_STRING, "issuerKeyHash")
        .map_err(e("issuerKeyHash"))?;
    let serial = c
        .read(der::INTEGER, "serialNumber")
        .map_err(e("serialNumber"))?;
    c.finish("CertID").map_err(e("CertID"))?;
    let st = r.read_any().map_err(e("certStatus"))?;
    let mut status = match st.tag {
        0x80 if st.value.is_empty() => Status::Good,
        0xa1 => {
            let mut ri = Reader::new(st.value);
            let t = ri
                .read(der::GENERALIZED_TIME, "revocationTime")
                .map_err(e("revocationTime"))?;
            let reason = match ri.read_optional(0xa0).map_err(e("revocationReason"))? {
                Some(x) => {
                    let en = der::parse_single(x.value, 0x0a, "CRLReason")
                        .map_err(e("revocationReason"))?;
                    Some(der::small_uint(en.value).map_err(e("revocationReason"))?)
                }
                None => None,
            };
            ri.finish("RevokedInfo").map_err(e("RevokedInfo"))?;
            Status::Revoked {
                time: time(t.value, "revocationTime")?,
                reason,
                invalidity_date: None,
            }
        }
        0x82 if st.value.is_empty() => Status::Unknown,
        _ => return Err("malformed OCSP response (certStatus)".to_string()),
    };
    let this = r
        .read(der::GENERALIZED_TIME, "thisUpdate")
        .map_err(e("thisUpdate"))?;
    let next_update = match r.read_optional(0xa0).map_err(e("nextUpdate"))? {
        Some(n) => {
            let g = der::parse_single(n.value, der::GENERALIZED_TIME, "nextUpdate")
                .map_err(e("nextUpdate"))?;
            Some(time(g.value, "nextUpdate")?)
        }
        None => None,
    };
    if let Some(x) = r.read_optional(0xa1).map_err(e("singleExtensions"))? {
        let inv = extensions_invalidity_date(x.value)?;
        if let Status::Revoked {
            invalidity_date, ..
        } = &mut status
        {
            *invalidity_date = inv;
        }
    }
    r.finish("SingleResponse").map_err(e("SingleResponse"))?;
    Ok(SingleResponse {
        hash_alg: hash_alg.value.to_vec(),
        name_hash: name_hash.value.to_vec(),
        key_hash: key_hash.value.to_vec(),
        serial: serial.value.to_vec(),
        status,
        this_update: time(this.value, "thisUpdate")?,
        next_update,
    })
}

/// The invalidityDate (2.5.29.24) among DER `Extensions`, if any.
fn extensions_invalidity_date(v: &[u8]) -> Result<Option<Timestamp>, String> {
    let mut out = None;
    for (id, _, val) in super::crl::extensions(v).map_err(|err| format!("OCSP response: {err}"))? {
        if id == INVALIDITY_DATE {
            let g = der::parse_single(val, der::GENERALIZED_TIME, "invalidityDate")
                .map_err(e("invalidityDate"))?;
            out = Some(time(g.value, "invalidityDate")?);
        }
    }
    Ok(out)
}

impl Response {
    /// Checks the response for `cert` issued by `issuer` at `now`: its signature (by the
    /// issuer, or by a certificate in the response that the issuer issued with
    /// `id-kp-OCSPSigning` and that is valid at `now`), the SingleResponse for this CertID,
    /// and its freshness. Returns that SingleResponse's status.
    pub fn check(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        now: Timestamp,
    ) -> Result<Status, String> {
        self.check_signature(issuer, now)?;
        let single = self
            .responses
            .iter()
            .find(|s| s.serial == cert.serial())
            .ok_or_else(|| {
                format!(
                    "the OCSP response has no status for serial number {}",
                    cert.serial_hex()
                )
            })?;
        let (name_hash, key_hash) = match single.hash_alg.as_slice() {
            SHA1 => (sha1(issuer.subject_raw()), sha1(issuer.public_key_bits())),
            cert::oid::SHA256 => (
                sha256(issuer.subject_raw()),
                sha256(issuer.public_key_bits()),
            ),
            other => {
                return Err(format!(
                    "unsupported OCSP CertID hash algorithm {}",
                    der::oid_to_string(other)
                ));
            }
        };
        if single.name_hash != name_hash || single.key_hash != key_hash {
            return Err("the OCSP response is about a certificate of another issuer".to_string());
        }
        if single.this_update.0 > now.0 + SKEW {
            return Err(format!(
                "the OCSP response's thisUpdate {} is in the future",
                single.this_update
            ));
        }
        match single.next_update {
            // notation treats a response without nextUpdate as expired
            None => return Err("the OCSP response has no nextUpdate".to_string()),
            Some(n) if now > n => {
                return Err(format!("expired OCSP response (nextUpdate {n})"));
            }
            Some(_) => {}
        }
        Ok(single.status.clone())
    }

    fn verify_with(&self, key_holder: &Certificate) -> Result<(), String> {
        let alg = self.sig_alg.ok_or_else(|| {
            format!(
                "unsupported OCSP response signature algorithm {}",
                self.sig_alg_name
            )
        })?;
        crate::crypto::verify_cert_signature(
            alg,
            &key_holder.public_key,
            &self.tbs,
            &self.signature,
        )
    }

    fn check_signature(&self, issuer: &Certificate, now: Timestamp) -> Result<(), String> {
        if self.verify_with(issuer).is_ok() {
            return Ok(());
        }
        for responder in &self.certs {
            if self.verify_with(responder).is_err() {
                continue;
            }
            let who = format!("OCSP responder {:?}", responder.subject.to_string());
            if !responder.names_issuer(issuer) || responder.verify_signed_by(issuer).is_err() {
                return Err(format!(
                    "the OCSP response is signed by {who}, which the certificate's issuer did not issue (unauthorised responder)"
                ));
            }
            if !responder
                .ext_key_usage
                .as_ref()
                .is_some_and(|k| k.iter().any(|o| o == OCSP_SIGNING))
            {
                return Err(format!(
                    "the OCSP response is signed by {who}, which lacks the id-kp-OCSPSigning extended key usage (unauthorised responder)"
                ));
            }
            if !responder.valid_at(now) {
                return Err(format!(
                    "the OCSP response is signed by {who}, which is not valid now ({} to {})",
                    responder.not_before, responder.not_after
                ));
            }
            return Ok(());
        }
        Err(
            "the OCSP response's signature verifies neither with the issuer's key nor with a responder certificate in the response"
                .to_string(),
        )
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}
