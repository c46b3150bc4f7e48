//! RFC 3161 timestamping when signing, as notation does (`notation sign --timestamp-url URL
//! --timestamp-root-cert FILE`, notation-core-go's `internal/timestamp` over tspclient-go):
//!
//! 1. a `TimeStampReq` (RFC 3161 2.4.1): version 1, messageImprint = the hash of the
//!    envelope's signature value with the hash of its signature algorithm (SHA-256 for
//!    PS256/ES256, SHA-384 for PS384/ES384, SHA-512 for PS512/ES512; parameters NULL), a
//!    random nonce below 2^159, certReq true;
//! 2. sent as an HTTP `POST` of `application/timestamp-query` to the TSA's URL (RFC 3161
//!    3.4), through the small [`TimestampTransport`] port (implemented over
//!    `berth-distribution`'s client: http and https, a bounded reply, the client's timeout);
//! 3. the reply must be `200` with `application/timestamp-reply`, at most [`MAX_REPLY`]
//!    bytes; its `TimeStampResp` status must be granted or grantedWithMods, else the TSA's
//!    status, text and failure info are the error;
//! 4. the token is checked before it is used: TSTInfo version 1, its messageImprint and nonce
//!    echo the request's, and [`crate::timestamp::verify_token`] (the verifier's own step)
//!    accepts it against the `--timestamp-root-cert` certificate — a token that does not
//!    verify is never attached.
//!
//! The token then goes into the unprotected `io.cncf.notary.timestampSignature` header of the
//! envelope ([`crate::sign::Unfinished::finish`]).

use crate::cert::{Certificate, oid};
use crate::der::{self, Reader};
use crate::der_writer as w;
use crate::envelope::SignatureAlgorithm;
use crate::sign::Unfinished;
use crate::timestamp::{TimeRange, tst_info_echo, verify_token};
use ring::digest;
use ring::rand::SecureRandom;

/// The request's content type (RFC 3161 3.4).
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
/// The reply's content type (RFC 3161 3.4).
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";
/// The largest reply read (tspclient-go's limit: 1 MiB).
pub const MAX_REPLY: usize = 1 << 20;

/// An HTTP reply from a TSA, read whole.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (at most the limit asked for).
    pub body: Vec<u8>,
}

/// The port timestamping reaches a TSA through: one `POST` of `body` (`content_type`) to the
/// absolute `url`, the reply read whole up to `limit` bytes (more is an error). Each call is
/// independent; implementations bound the time it takes. Errors are transport failures
/// (unreachable, TLS, timeout, too large), said in words.
pub trait TimestampTransport {
    fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Vec<u8>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<HttpReply, String>>;
}

impl TimestampTransport for berth_distribution::Client {
    async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Vec<u8>,
        limit: usize,
    ) -> Result<HttpReply, String> {
        let authority = authority(url)?;
        let mut req = berth_distribution::RawRequest::new(http::Method::POST, url);
        req.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        req.body = body.into();
        req.anonymous = true;
        let reply = self
            .exchange(authority, req, limit)
            .await
            .map_err(|e| crate::repository::error_chain(&e))?;
        Ok(HttpReply {
            status: reply.status,
            content_type: reply
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: reply.body.to_vec(),
        })
    }
}

/// The `host[:port]` of an `http://` or `https://` URL with a host, else why not.
fn authority(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "the scheme must be http or https".to_string())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err("the URL must name a host (and no user information)".to_string());
    }
    Ok(host)
}

/// Why a timestamp was not obtained (and nothing was signed).
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("invalid timestamp authority URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("the timestamp root certificate {what}: {reason}")]
    Root { what: String, reason: String },
    /// Unreachable, TLS, timeout, a reply over the limit.
    #[error("the request to the timestamp authority {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("the timestamp authority {url} answered HTTP {status}{}", body_note(.body))]
    HttpStatus {
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "the timestamp authority {url} answered with content type {got:?}, not {TIMESTAMP_REPLY}"
    )]
    ContentType { url: String, got: Option<String> },
    #[error("the timestamp authority {url} sent a malformed TimeStampResp: {reason}")]
    Malformed { url: String, reason: String },
    #[error("the timestamp authority {url} refused the request: {status}")]
    Refused { url: String, status: PkiStatusInfo },
    #[error("the timestamp from {url} does not answer berth's request: {reason}")]
    Mismatch { url: String, reason: String },
    #[error(
        "the timestamp from {url} does not verify against the timestamp root certificate: {reason}"
    )]
    Unverified { url: String, reason: String },
    #[error("failed to make the timestamp request: {0}")]
    Request(String),
}

fn body_note(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// The TSA's `PKIStatusInfo` (RFC 3161 2.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiStatusInfo {
    /// `PKIStatus`: 0 granted, 1 grantedWithMods, 2 rejection, 3 waiting,
    /// 4 revocationWarning, 5 revocationNotification.
    pub status: u64,
    /// `statusString` (PKIFreeText), joined with "; ".
    pub text: Option<String>,
    /// `failInfo` bits set (PKIFailureInfo bit numbers).
    pub failure_bits: Vec<u32>,
}

impl PkiStatusInfo {
    /// granted or grantedWithMods: a token is there.
    pub fn granted(&self) -> bool {
        self.status <= 1
    }
}

fn status_name(s: u64) -> String {
    match s {
        0 => "granted".into(),
        1 => "grantedWithMods".into(),
        2 => "rejection".into(),
        3 => "waiting".into(),
        4 => "revocationWarning".into(),
        5 => "revocationNotification".into(),
        n => format!("unknown PKIStatus {n}"),
    }
}

fn failure_name(bit: u32) -> String {
    match bit {
        0 => "badAlg (unrecognized or unsupported algorithm)".into(),
        2 => "badRequest (transaction not permitted or supported)".into(),
        5 => "badDataFormat (the data submitted has the wrong format)".into(),
        14 => "timeNotAvailable (the TSA's time source is not available)".into(),
        15 => "unacceptedPolicy (the requested policy is not supported)".into(),
        16 => "unacceptedExtension (the requested extension is not supported)".into(),
        17 => "addInfoNotAvailable".into(),
        25 => "systemFailure".into(),
        n => format!("failure bit {n}"),
    }
}

impl std::fmt::Display for PkiStatusInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {}", status_name(self.status))?;
        if let Some(t) = &self.text {
            write!(f, " ({t:?})")?;
        }
        if !self.failure_bits.is_empty() {
            let names: Vec<String> = self.failure_bits.iter().map(|b| failure_name(*b)).collect();
            write!(f, ", failure: {}", names.join(", "))?;
        }
        Ok(())
    }
}

/// A parsed `TimeStampResp` (RFC 3161 2.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampResp {
    pub status: PkiStatusInfo,
    /// The `TimeStampToken` (a CMS ContentInfo), DER, as sent.
    pub token: Option<Vec<u8>>,
}

fn malformed(what: &'static str) -> impl Fn(der::DerError) -> String {
    move |err| format!("{what}: {err}")
}

/// Parses a `TimeStampResp` strictly (DER, nothing trailing). Outside input: fuzzed
/// (`fuzz/fuzz_targets/timestamp_resp.rs`).
pub fn parse_response(bytes: &[u8]) -> Result<TimeStampResp, String> {
    let top = der::parse_single(bytes, der::SEQUENCE, "TimeStampResp")
        .map_err(malformed("TimeStampResp"))?;
    let mut r = Reader::new(top.value);
    let si = r
        .read(der::SEQUENCE, "PKIStatusInfo")
        .map_err(malformed("PKIStatusInfo"))?;
    let token = r
        .read_optional(der::SEQUENCE)
        .map_err(malformed("timeStampToken"))?;
    r.finish("TimeStampResp")
        .map_err(malformed("TimeStampResp"))?;
    let mut s = Reader::new(si.value);
    let status = s
        .read(der::INTEGER, "status")
        .map_err(malformed("status"))?;
    let status = der::small_uint(status.value).map_err(malformed("status"))?;
    let mut text = None;
    if let Some(free) = s
        .read_optional(der::SEQUENCE)
        .map_err(malformed("statusString"))?
    {
        let mut parts = Vec::new();
        let mut f = Reader::new(free.value);
        while !f.is_empty() {
            let t = f
                .read(UTF8_STRING, "UTF8String")
                .map_err(malformed("statusString"))?;
            parts.push(String::from_utf8_lossy(t.value).into_owned());
        }
        text = Some(parts.join("; "));
    }
    let mut failure_bits = Vec::new();
    if let Some(bits) = s
        .read_optional(der::BIT_STRING)
        .map_err(malformed("failInfo"))?
    {
        let (unused, data) = bits
            .value
            .split_first()
            .ok_or("failInfo: an empty BIT STRING")?;
        if *unused > 7 || (data.is_empty() && *unused != 0) {
            return Err("failInfo: malformed BIT STRING".to_string());
        }
        // PKIFailureInfo's bits end at 25 (systemFailure): four bytes at the most
        if data.len() > 4 {
            return Err(format!("failInfo: {} bytes, over 4", data.len()));
        }
        for (byte, first) in data.iter().zip((0u32..).step_by(8)) {
            for bit in 0..8u32 {
                if byte & (0x80 >> bit) != 0 {
                    failure_bits.push(first + bit);
                }
            }
        }
    }
    s.finish("PKIStatusInfo")
        .map_err(malformed("PKIStatusInfo"))?;
    Ok(TimeStampResp {
        status: PkiStatusInfo {
            status,
            text,
            failure_bits,
        },
        token: token.map(|t| t.raw.to_vec()),
    })
}

const UTF8_STRING: u8 = 0x0c;

/// The hash the timestamp request uses for a signature algorithm (notation: the hash of the
/// key spec's signature algorithm).
fn hash_of(alg: SignatureAlgorithm) -> (&'static digest::Algorithm, &'static [u8]) {
    match alg {
        SignatureAlgorithm::Ps256 | SignatureAlgorithm::Es256 => (&digest::SHA256, oid::SHA256),
        SignatureAlgorithm::Ps384 | SignatureAlgorithm::Es384 => (&digest::SHA384, oid::SHA384),
        SignatureAlgorithm::Ps512 | SignatureAlgorithm::Es512 => (&digest::SHA512, oid::SHA512),
    }
}

/// A `TimeStampReq` ready to send, and what its reply must echo.
#[derive(Debug, Clone)]
pub struct TimeStampReq {
    /// The DER request.
    pub der: Vec<u8>,
    hash_oid: &'static [u8],
    imprint: Vec<u8>,
    /// The nonce's magnitude, big-endian, no leading zeros.
    nonce: Vec<u8>,
}

impl TimeStampReq {
    /// A request over `signature_value` signed with `alg`: the imprint hash of the
    /// algorithm, a random 159-bit nonce, certReq true.
    pub fn new(signature_value: &[u8], alg: SignatureAlgorithm) -> Result<TimeStampReq, TsaError> {
        let (hash, hash_oid) = hash_of(alg);
        let imprint = digest::digest(hash, signature_value).as_ref().to_vec();
        let mut nonce = [0u8; 20];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| TsaError::Request("no randomness for the nonce".to_string()))?;
        nonce[0] &= 0x7f; // below 2^159, as tspclient-go
        let nonce = strip_zeros(&nonce).to_vec();
        let message_imprint = w::sequence(&[
            &w::sequence(&[&w::oid(hash_oid), &w::null()]),
            &w::octet_string(&imprint),
        ]);
        let der = w::sequence(&[
            &w::small_integer(1),
            &message_imprint,
            &w::unsigned_integer(&nonce),
            &w::boolean(true),
        ]);
        Ok(TimeStampReq {
            der,
            hash_oid,
            imprint,
            nonce,
        })
    }

    /// Checks that `token`'s TSTInfo answers this request: version 1, the same
    /// messageImprint (hash algorithm and value), the same nonce.
    pub fn check_echo(&self, token: &[u8]) -> Result<(), String> {
        let echo = tst_info_echo(token)?;
        if echo.version != 1 {
            return Err(format!("TSTInfo version {} is not 1", echo.version));
        }
        if echo.imprint_algorithm != self.hash_oid || echo.imprint != self.imprint {
            return Err(
                "its messageImprint is not the hash of this signature (it timestamps other bytes)"
                    .to_string(),
            );
        }
        match echo.nonce {
            None => Err("it carries no nonce (berth sent one)".to_string()),
            Some(n) if strip_zeros(&n) != self.nonce.as_slice() => Err(
                "its nonce is not the nonce berth sent (a replayed or foreign reply)".to_string(),
            ),
            Some(_) => Ok(()),
        }
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let skip = b.iter().take_while(|x| **x == 0).count();
    &b[skip..]
}

/// Where timestamps come from: the TSA's URL and the root certificate its tokens must chain
/// to (`--timestamp-url`, `--timestamp-root-cert`).
#[derive(Debug, Clone)]
pub struct Timestamper {
    url: String,
    root: Certificate,
}

impl Timestamper {
    /// A TSA at `url` (http or https) whose tokens chain to `root`, a self-signed CA
    /// certificate (notation refuses a `--timestamp-root-cert` that is not a root too).
    pub fn new(url: &str, root: Certificate) -> Result<Timestamper, TsaError> {
        authority(url).map_err(|reason| TsaError::Url {
            url: url.to_string(),
            reason,
        })?;
        let what = format!("{:?}", root.subject.to_string());
        if !root.is_self_issued() || root.verify_signed_by(&root).is_err() {
            return Err(TsaError::Root {
                what,
                reason: "is not a root certificate (not self-signed)".to_string(),
            });
        }
        if !root.is_ca() {
            return Err(TsaError::Root {
                what,
                reason: "is not a CA certificate (basicConstraints cA is not true)".to_string(),
            });
        }
        Ok(Timestamper {
            url: url.to_string(),
            root,
        })
    }

    /// The TSA's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Obtains and checks a token over `signature_value` (signed with `alg`); returns its
    /// DER and the time range it proves.
    pub async fn timestamp<T: TimestampTransport>(
        &self,
        transport: &T,
        signature_value: &[u8],
        alg: SignatureAlgorithm,
    ) -> Result<(Vec<u8>, TimeRange), TsaError> {
        let url = self.url.clone();
        let req = TimeStampReq::new(signature_value, alg)?;
        let reply = transport
            .post(&url, TIMESTAMP_QUERY, req.der.clone(), MAX_REPLY)
            .await
            .map_err(|reason| TsaError::Transport {
                url: url.clone(),
                reason,
            })?;
        if reply.status != 200 {
            let body: String = String::from_utf8_lossy(&reply.body)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            return Err(TsaError::HttpStatus {
                url,
                status: reply.status,
                body,
            });
        }
        let ct = reply
            .content_type
            .as_deref()
            .map(|c| c.split(';').next().unwrap_or_default().trim());
        if ct != Some(TIMESTAMP_REPLY) {
            return Err(TsaError::ContentType {
                url,
                got: reply.content_type,
            });
        }
        let resp = parse_response(&reply.body).map_err(|reason| TsaError::Malformed {
            url: url.clone(),
            reason,
        })?;
        if !resp.status.granted() {
            return Err(TsaError::Refused {
                url,
                status: resp.status,
            });
        }
        let token = resp.token.ok_or_else(|| TsaError::Malformed {
            url: url.clone(),
            reason: format!("{} but no timeStampToken", status_name(resp.status.status)),
        })?;
        req.check_echo(&token)
            .map_err(|reason| TsaError::Mismatch {
                url: url.clone(),
                reason,
            })?;
        let range = verify_token(&token, signature_value, std::slice::from_ref(&self.root))
            .map_err(|reason| TsaError::Unverified { url, reason })?;
        Ok((token, range))
    }

    /// Timestamps `unfinished`'s signature and returns the envelope with the token in its
    /// unprotected header.
    pub async fn finish<T: TimestampTransport>(
        &self,
        transport: &T,
        unfinished: Unfinished,
    ) -> Result<Vec<u8>, crate::sign::SignError> {
        let (token, _) = self
            .timestamp(
                transport,
                unfinished.signature_value(),
                unfinished.algorithm(),
            )
            .await?;
        unfinished.finish(Some(&token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_der_with_imprint_nonce_and_cert_req() {
        let req = TimeStampReq::new(b"sig", SignatureAlgorithm::Es384).unwrap();
        let top = der::parse_single(&req.der, der::SEQUENCE, "req").unwrap();
        let mut r = Reader::new(top.value);
        assert_eq!(r.read(der::INTEGER, "v").unwrap().value, &[1]);
        let mi = r.read(der::SEQUENCE, "mi").unwrap();
        let mut m = Reader::new(mi.value);
        let alg = m.read(der::SEQUENCE, "alg").unwrap();
        assert_eq!(
            Reader::new(alg.value).read(der::OID, "oid").unwrap().value,
            oid::SHA384
        );
        assert_eq!(
            m.read(der::OCTET_STRING, "h").unwrap().value,
            digest::digest(&digest::SHA384, b"sig").as_ref()
        );
        let nonce = r.read(der::INTEGER, "nonce").unwrap();
        assert!(nonce.value.len() <= 21 && nonce.value[0] & 0x80 == 0);
        assert_eq!(r.read(der::BOOLEAN, "certReq").unwrap().value, &[0xff]);
        r.finish("req").unwrap();
        let other = TimeStampReq::new(b"sig", SignatureAlgorithm::Es384).unwrap();
        assert_ne!(req.nonce, other.nonce, "a fresh nonce each time");
    }

    #[test]
    fn a_rejection_is_read_with_its_text_and_failure() {
        // status 2, statusString "bad", failInfo badDataFormat (bit 5)
        let resp = w::sequence(&[&w::sequence(&[
            &w::small_integer(2),
            &w::sequence(&[&w::tlv(UTF8_STRING, b"bad")]),
            &w::tlv(der::BIT_STRING, &[2, 0x04]),
        ])]);
        let parsed = parse_response(&resp).unwrap();
        assert!(!parsed.status.granted());
        assert_eq!(parsed.token, None);
        assert_eq!(
            parsed.status.to_string(),
            "status rejection (\"bad\"), failure: badDataFormat (the data submitted has the wrong format)"
        );
        let mut trailing = resp.clone();
        trailing.push(0);
        assert!(parse_response(&trailing).is_err());
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert_eq!(authority("http://127.0.0.1:80/tsa"), Ok("127.0.0.1:80"));
        assert_eq!(authority("https://tsa.example"), Ok("tsa.example"));
        assert!(authority("ftp://tsa.example").is_err());
        assert!(authority("http:///x").is_err());
        assert!(authority("http://u:p@h/").is_err());
    }
}
