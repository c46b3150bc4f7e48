//! CRLs (RFC 5280 5) as the Notary Project checks them: the CRL is signed by the
//! certificate's issuer, has a nextUpdate that has not passed, and lists the serial number or
//! not. Delta CRLs are refused with a message that says so (berth does not fetch them yet).

use crate::cert::{self, Certificate, KeyUsage};
use crate::der::{self, DerError, Reader};
use crate::time::Timestamp;

const REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
const INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];
const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
const ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
const FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];

/// RFC 5280 CRLReason certificateHold.
pub const CERTIFICATE_HOLD: u64 = 6;
/// RFC 5280 CRLReason removeFromCRL.
pub const REMOVE_FROM_CRL: u64 = 8;

/// One revoked certificate entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub serial: Vec<u8>,
    pub revocation_date: Timestamp,
    pub reason: Option<u64>,
    pub invalidity_date: Option<Timestamp>,
    /// A critical entry extension berth does not process (dotted OID).
    pub unhandled_critical: Option<String>,
}

/// A parsed CertificateList, not yet checked.
#[derive(Debug, Clone)]
pub struct Crl {
    tbs: Vec<u8>,
    sig_alg: Option<cert::CertSignatureAlgorithm>,
    sig_alg_name: String,
    signature: Vec<u8>,
    issuer_raw: Vec<u8>,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
    pub entries: Vec<Entry>,
    /// Whether it is a delta CRL (deltaCRLIndicator).
    pub is_delta: bool,
    /// Whether it points to a delta CRL (freshestCRL).
    pub has_freshest: bool,
    /// A critical CRL extension berth does not process (dotted OID).
    pub unhandled_critical: Option<String>,
}

fn e(what: &'static str) -> impl Fn(DerError) -> String {
    move |err| format!("malformed CRL ({what}): {err}")
}

fn read_time(r: &mut Reader<'_>, what: &'static str) -> Result<Timestamp, String> {
    let t = r.read_any().map_err(e(what))?;
    let parsed = match t.tag {
        der::UTC_TIME => Timestamp::parse_utc_time(t.value),
        der::GENERALIZED_TIME => Timestamp::parse_generalized_time(t.value),
        _ => None,
    };
    parsed.ok_or_else(|| format!("malformed CRL ({what}: not a time)"))
}

/// Parses a DER CertificateList (RFC 5280 5.1).
pub fn parse(data: &[u8]) -> Result<Crl, String> {
    let top =
        der::parse_single(data, der::SEQUENCE, "CertificateList").map_err(e("CertificateList"))?;
    let mut r = Reader::new(top.value);
    let tbs = r
        .read(der::SEQUENCE, "TBSCertList")
        .map_err(e("tbsCertList"))?;
    let alg = r
        .read(der::SEQUENCE, "signatureAlgorithm")
        .map_err(e("signatureAlgorithm"))?;
    let sig = r
        .read(der::BIT_STRING, "signatureValue")
        .map_err(e("signatureValue"))?;
    r.finish("CertificateList").map_err(e("CertificateList"))?;
    let (sig_alg, sig_alg_name) =
        cert::parse_sig_alg(alg.value).map_err(|err| format!("CRL: {err}"))?;
    let signature = der::bit_string_bytes(sig.value)
        .map_err(e("signatureValue"))?
        .to_vec();

    let mut t = Reader::new(tbs.value);
    if let Some(v) = t.read_optional(der::INTEGER).map_err(e("version"))?
        && der::small_uint(v.value).map_err(e("version"))? != 1
    {
        return Err("unsupported CRL version".to_string());
    }
    let inner_alg = t.read(der::SEQUENCE, "signature").map_err(e("signature"))?;
    if inner_alg.value != alg.value {
        return Err("the CRL's inner and outer signature algorithms differ".to_string());
    }
    let issuer = t.read(der::SEQUENCE, "issuer").map_err(e("issuer"))?;
    let this_update = read_time(&mut t, "thisUpdate")?;
    let next_update = match t.peek_tag() {
        Some(der::UTC_TIME | der::GENERALIZED_TIME) => Some(read_time(&mut t, "nextUpdate")?),
        _ => None,
    };
    let mut entries = Vec::new();
    if let Some(list) = t
        .read_optional(der::SEQUENCE)
        .map_err(e("revokedCertificates"))?
    {
        let mut l = Reader::new(list.value);
        while !l.is_empty() {
            let ent = l
                .read(der::SEQUENCE, "revokedCertificate")
                .map_err(e("revokedCertificate"))?;
            entries.push(entry(ent.value)?);
        }
    }
    let mut crl = Crl {
        tbs: tbs.raw.to_vec(),
        sig_alg,
        sig_alg_name,
        signature,
        issuer_raw: issuer.raw.to_vec(),
        this_update,
        next_update,
        entries,
        is_delta: false,
        has_freshest: false,
        unhandled_critical: None,
    };
    if let Some(x) = t.read_optional(0xa0).map_err(e("crlExtensions"))? {
        for (id, critical, _) in extensions(x.value)? {
            match id {
                DELTA_CRL_INDICATOR => crl.is_delta = true,
                FRESHEST_CRL => crl.has_freshest = true,
                ISSUING_DISTRIBUTION_POINT | CRL_NUMBER | AUTHORITY_KEY_ID => {}
                other if critical => {
                    crl.unhandled_critical
                        .get_or_insert_with(|| der::oid_to_string(other));
                }
                _ => {}
            }
        }
    }
    t.finish("TBSCertList").map_err(e("tbsCertList"))?;
    Ok(crl)
}

/// An extension: its OID contents, criticality and extnValue contents.
pub(crate) type Extension<'a> = (&'a [u8], bool, &'a [u8]);

/// The extensions of a DER `Extensions` SEQUENCE.
pub(crate) fn extensions(v: &[u8]) -> Result<Vec<Extension<'_>>, String> {
    let seq = der::parse_single(v, der::SEQUENCE, "Extensions").map_err(e("extensions"))?;
    let mut r = Reader::new(seq.value);
    let mut out = Vec::new();
    while !r.is_empty() {
        let ext = r.read(der::SEQUENCE, "Extension").map_err(e("extension"))?;
        let mut x = Reader::new(ext.value);
        let id = x.read(der::OID, "extnID").map_err(e("extnID"))?;
        let critical = match x.read_optional(der::BOOLEAN).map_err(e("critical"))? {
            Some(b) => der::boolean(b.value).map_err(e("critical"))?,
            None => false,
        };
        let val = x
            .read(der::OCTET_STRING, "extnValue")
            .map_err(e("extnValue"))?;
        x.finish("Extension").map_err(e("extension"))?;
        out.push((id.value, critical, val.value));
    }
    Ok(out)
}

fn entry(v: &[u8]) -> Result<Entry, String> {
    let mut r = Reader::new(v);
    let serial = r
        .read(der::INTEGER, "userCertificate")
        .map_err(e("userCertificate"))?;
    let revocation_date = read_time(&mut r, "revocationDate")?;
    let mut out = Entry {
        serial: serial.value.to_vec(),
        revocation_date,
        reason: None,
        invalidity_date: None,
        unhandled_critical: None,
    };
    if let Some(x) = r
        .read_optional(der::SEQUENCE)
        .map_err(e("crlEntryExtensions"))?
    {
        for (id, critical, val) in extensions(x.raw)? {
            match id {
                REASON_CODE => {
                    let en = der::parse_single(val, 0x0a, "CRLReason").map_err(e("reasonCode"))?;
                    out.reason = Some(der::small_uint(en.value).map_err(e("reasonCode"))?);
                }
                INVALIDITY_DATE => {
                    let g = der::parse_single(val, der::GENERALIZED_TIME, "invalidityDate")
                        .map_err(e("invalidityDate"))?;
                    out.invalidity_date = Some(
                        Timestamp::parse_generalized_time(g.value)
                            .ok_or("malformed CRL (invalidityDate)")?,
                    );
                }
                other if critical => {
                    out.unhandled_critical
                        .get_or_insert_with(|| der::oid_to_string(other));
                }
                _ => {}
            }
        }
    }
    r.finish("revokedCertificate")
        .map_err(e("revokedCertificate"))?;
    Ok(out)
}

/// What a CRL says about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    NotListed,
    /// Revoked: the entry's revocation date and reason.
    Revoked {
        date: Timestamp,
        reason: Option<u64>,
    },
}

impl Crl {
    /// Checks the CRL as issued by `issuer` and current at `now` (trust-store-trust-policy.md,
    /// "Revocation Checking with CRL" steps 1-2): issuer name, signature, nextUpdate present and
    /// not past, no delta CRL, no critical extension berth does not process.
    pub fn validate(&self, issuer: &Certificate, now: Timestamp) -> Result<(), String> {
        let who = format!("{:?}", issuer.subject.to_string());
        if self.issuer_raw != issuer.subject_raw() {
            return Err(format!("the CRL was not issued by {who}"));
        }
        if let Some(ku) = issuer.key_usage
            && !ku.has(KeyUsage::CRL_SIGN)
        {
            return Err(format!("{who} lacks the cRLSign key usage"));
        }
        let alg = self
            .sig_alg
            .ok_or_else(|| format!("unsupported CRL signature algorithm {}", self.sig_alg_name))?;
        crate::crypto::verify_cert_signature(alg, &issuer.public_key, &self.tbs, &self.signature)
            .map_err(|_| format!("the CRL's signature does not verify with the key of {who}"))?;
        if self.is_delta {
            return Err("it is a delta CRL; berth does not support delta CRLs".to_string());
        }
        if self.has_freshest {
            return Err(
                "it names a delta CRL (Freshest CRL extension); berth does not support delta CRLs"
                    .to_string(),
            );
        }
        if let Some(oid) = &self.unhandled_critical {
            return Err(format!("unsupported critical extension {oid} in the CRL"));
        }
        let next = self.next_update.ok_or("the CRL has no nextUpdate")?;
        if now > next {
            return Err(format!("expired CRL (nextUpdate {next} has passed)"));
        }
        Ok(())
    }

    /// Looks `cert` up, as notation does: an entry whose invalidity date is after
    /// `signing_time` does not count; certificateHold counts unless a later removeFromCRL
    /// lifts it; any other reason is revoked.
    pub fn lookup(
        &self,
        cert: &Certificate,
        signing_time: Option<Timestamp>,
    ) -> Result<Listing, String> {
        let mut latest_hold: Option<&Entry> = None;
        for ent in self.entries.iter().filter(|x| x.serial == cert.serial()) {
            if let Some(oid) = &ent.unhandled_critical {
                return Err(format!(
                    "unsupported critical extension {oid} in the CRL entry"
                ));
            }
            if let (Some(s), Some(inv)) = (signing_time, ent.invalidity_date)
                && s < inv
            {
                return Ok(Listing::NotListed);
            }
            match ent.reason {
                Some(CERTIFICATE_HOLD | REMOVE_FROM_CRL) => {
                    if latest_hold.is_none_or(|h| h.revocation_date < ent.revocation_date) {
                        latest_hold = Some(ent);
                    }
                }
                reason => {
                    return Ok(Listing::Revoked {
                        date: ent.revocation_date,
                        reason,
                    });
                }
            }
        }
        Ok(match latest_hold {
            Some(h) if h.reason == Some(CERTIFICATE_HOLD) => Listing::Revoked {
                date: h.revocation_date,
                reason: h.reason,
            },
            _ => Listing::NotListed,
        })
    }
}

/// RFC 5280 CRLReason names, for messages.
pub fn reason_name(code: u64) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}
