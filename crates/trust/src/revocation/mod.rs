//! Certificate revocation as trust-store-trust-policy.md ("Certificate Revocation
//! Evaluation") and notation v1.3 (notation-core-go `revocation/`) do it: every certificate of
//! the chain but the root is checked; OCSP first when the certificate names a responder, CRLs
//! when it names only distribution points or when OCSP gave no answer (responder down, bad or
//! stale response, status `unknown`). A certificate that names neither is "non-revokable" and
//! counts as good. The chain's result is revoked if any certificate is revoked, else unknown if
//! any is unknown, else good; the verification step fails on revoked and on unknown, and the
//! policy's `revocation` action (enforce / log / skip) decides what that failure does.
//!
//! Network access goes through the [`Fetcher`] port ([`HTTP`] in `berth verify`): `http://`
//! only, 2 s per OCSP responder and 5 s per CRL as the specification's defaults, answers
//! bounded (20 KiB OCSP, 32 MiB CRL, notation's limits). [`CrlCache`] keeps current CRLs in a
//! directory as notation does (`berth verify` uses one under berth's cache directory).

pub mod cache;
pub mod crl;
mod http;
pub mod ocsp;

pub use cache::CrlCache;
pub use http::{FetchRequest, Fetcher, HTTP, HttpFetcher};

/// For the `http_response` fuzz target only: the revocation client's parse of a whole
/// HTTP/1.x response read from a server, `Ok(Some(body))` for a `200` (at most `limit`
/// bytes), `Ok(None)` for a redirect.
#[doc(hidden)]
pub fn fuzz_http_response(raw: &[u8], limit: usize) -> Result<Option<Vec<u8>>, String> {
    match http::parse_response(raw, limit)? {
        http::Reply::Body(b) => Ok(Some(b)),
        http::Reply::Redirect(_) => Ok(None),
    }
}

use crate::cert::Certificate;
use crate::time::Timestamp;
use std::time::Duration;

/// notation's limit on an OCSP response.
pub const OCSP_MAX_BYTES: usize = 20 * 1024;
/// notation's limit on a CRL.
pub const CRL_MAX_BYTES: usize = 32 * 1024 * 1024;

/// A certificate's revocation status (notation's `result.Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked,
    /// Could not be determined (unreachable, invalid answer, status unknown).
    Unknown,
    /// Names no OCSP responder or CRL (or is the root): nothing to check.
    NonRevokable,
}

/// How a status was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    Ocsp,
    Crl,
    /// OCSP gave no answer and the CRL decided.
    OcspFallbackCrl,
    None,
}

/// One responder's or distribution point's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerResult {
    pub method: Method,
    pub url: String,
    pub status: Status,
    /// Why not good: the error or the revocation details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One certificate's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertResult {
    pub subject: String,
    pub serial: String,
    pub status: Status,
    pub method: Method,
    pub servers: Vec<ServerResult>,
}

/// What a check runs with.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub fetcher: &'a dyn Fetcher,
    /// The verification time (freshness of CRLs and OCSP responses).
    pub now: Timestamp,
    /// The authentic signing time, for the `notary.x509.signingAuthority` scheme only (as
    /// notation): an invalidity date after it means the certificate was good when it signed.
    pub signing_time: Option<Timestamp>,
    pub ocsp_timeout: Duration,
    pub crl_timeout: Duration,
}

impl<'a> Options<'a> {
    /// The specification's default timeouts (2 s OCSP, 5 s CRL).
    pub fn new(fetcher: &'a dyn Fetcher, now: Timestamp) -> Options<'a> {
        Options {
            fetcher,
            now,
            signing_time: None,
            ocsp_timeout: Duration::from_secs(2),
            crl_timeout: Duration::from_secs(5),
        }
    }
}

/// Checks each certificate of an ordered chain (leaf first; the chain was validated
/// already: each certificate is issued by the next), all at once as notation does (one thread
/// per certificate, so an offline chain costs one timeout, not one per certificate). The root
/// is non-revokable.
pub fn check_chain(chain: &[Certificate], opts: &Options<'_>) -> Vec<CertResult> {
    let mut out: Vec<CertResult> = std::thread::scope(|s| {
        let running: Vec<_> = chain
            .windows(2)
            .map(|pair| s.spawn(move || check_cert(&pair[0], &pair[1], opts)))
            .collect();
        running
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    if let Some(root) = chain.last() {
        out.push(CertResult {
            subject: root.subject.to_string(),
            serial: root.serial_hex(),
            status: Status::NonRevokable,
            method: Method::None,
            servers: Vec::new(),
        });
    }
    out
}

fn check_cert(cert: &Certificate, issuer: &Certificate, opts: &Options<'_>) -> CertResult {
    let mut r = CertResult {
        subject: cert.subject.to_string(),
        serial: cert.serial_hex(),
        status: Status::NonRevokable,
        method: Method::None,
        servers: Vec::new(),
    };
    if !cert.ocsp_urls.is_empty() {
        let servers = check_ocsp(cert, issuer, opts);
        r.status = servers.last().map_or(Status::Unknown, |s| s.status);
        r.method = Method::Ocsp;
        r.servers = servers;
        if r.status == Status::Unknown && !cert.crl_urls.is_empty() {
            let (status, crl_servers) = check_crl(cert, issuer, opts);
            r.status = status;
            r.method = Method::OcspFallbackCrl;
            r.servers.extend(crl_servers);
        }
    } else if !cert.crl_urls.is_empty() {
        let (status, servers) = check_crl(cert, issuer, opts);
        r.status = status;
        r.method = Method::Crl;
        r.servers = servers;
    }
    r
}

/// Each responder in turn until one answers good, revoked or unknown (notation stops there);
/// errors are kept and the next responder asked.
fn check_ocsp(cert: &Certificate, issuer: &Certificate, opts: &Options<'_>) -> Vec<ServerResult> {
    let mut out = Vec::new();
    for url in &cert.ocsp_urls {
        let res = ocsp_one(cert, issuer, url, opts);
        let decisive = res.is_ok();
        let sr = match res {
            Ok((status, detail)) => ServerResult {
                method: Method::Ocsp,
                url: url.clone(),
                status,
                detail,
            },
            Err(err) => ServerResult {
                method: Method::Ocsp,
                url: url.clone(),
                status: Status::Unknown,
                detail: Some(err),
            },
        };
        if decisive {
            return vec![sr];
        }
        out.push(sr);
    }
    out
}

fn ocsp_one(
    cert: &Certificate,
    issuer: &Certificate,
    url: &str,
    opts: &Options<'_>,
) -> Result<(Status, Option<String>), String> {
    let req = ocsp::request(cert, issuer);
    let body = opts.fetcher.fetch(&FetchRequest {
        url,
        post: Some(("application/ocsp-request", &req)),
        limit: OCSP_MAX_BYTES,
        timeout: opts.ocsp_timeout,
    })?;
    let resp = ocsp::parse(&body)?;
    match resp.check(cert, issuer, opts.now)? {
        ocsp::Status::Good => Ok((Status::Good, None)),
        ocsp::Status::Unknown => Ok((
            Status::Unknown,
            Some("the OCSP responder does not know the certificate (status unknown)".to_string()),
        )),
        ocsp::Status::Revoked {
            time,
            reason,
            invalidity_date,
        } => {
            if let (Some(s), Some(inv)) = (opts.signing_time, invalidity_date)
                && s < inv
            {
                return Ok((Status::Good, None));
            }
            Ok((Status::Revoked, Some(revoked_detail(time, reason))))
        }
    }
}

fn revoked_detail(time: Timestamp, reason: Option<u64>) -> String {
    match reason {
        Some(r) => format!("revoked at {time}, reason {}", crl::reason_name(r)),
        None => format!("revoked at {time}"),
    }
}

/// Each distribution point in turn, as notation: the first error stops with unknown; a
/// revocation stops with revoked; otherwise every point must say good.
fn check_crl(
    cert: &Certificate,
    issuer: &Certificate,
    opts: &Options<'_>,
) -> (Status, Vec<ServerResult>) {
    let unknown = |url: &str, detail: String| {
        (
            Status::Unknown,
            vec![ServerResult {
                method: Method::Crl,
                url: url.to_string(),
                status: Status::Unknown,
                detail: Some(detail),
            }],
        )
    };
    if cert.has_freshest_crl {
        let url = cert.crl_urls.first().map_or("", String::as_str);
        return unknown(
            url,
            "the certificate names a delta CRL (Freshest CRL extension), which notation and berth do not support"
                .to_string(),
        );
    }
    let mut out = Vec::new();
    for url in &cert.crl_urls {
        let body = match opts.fetcher.fetch(&FetchRequest {
            url,
            post: None,
            limit: CRL_MAX_BYTES,
            timeout: opts.crl_timeout,
        }) {
            Ok(b) => b,
            Err(err) => return unknown(url, format!("cannot download the CRL: {err}")),
        };
        let list = match crl::parse(&body) {
            Ok(l) => l,
            Err(err) => return unknown(url, err),
        };
        if let Err(err) = list.validate(issuer, opts.now) {
            return unknown(url, format!("invalid CRL: {err}"));
        }
        match list.lookup(cert, opts.signing_time) {
            Err(err) => return unknown(url, err),
            Ok(crl::Listing::Revoked { date, reason }) => {
                return (
                    Status::Revoked,
                    vec![ServerResult {
                        method: Method::Crl,
                        url: url.clone(),
                        status: Status::Revoked,
                        detail: Some(revoked_detail(date, reason)),
                    }],
                );
            }
            Ok(crl::Listing::NotListed) => out.push(ServerResult {
                method: Method::Crl,
                url: url.clone(),
                status: Status::Good,
                detail: None,
            }),
        }
    }
    (Status::Good, out)
}

/// The chain's result as notation's `revocationFinalResult`: `Ok` when every certificate is
/// good or non-revokable; else the failure, naming the revoked certificate (or the last one,
/// from the root, whose status is unknown) and every responder's error.
pub fn summarize(results: &[CertResult]) -> Result<(), String> {
    if results
        .iter()
        .all(|r| matches!(r.status, Status::Good | Status::NonRevokable))
    {
        return Ok(());
    }
    // notation walks from the root and keeps the last problem, a revocation first
    let bad = results
        .iter()
        .find(|r| r.status == Status::Revoked)
        .or_else(|| {
            results
                .iter()
                .find(|r| r.status != Status::Good && r.status != Status::NonRevokable)
        });
    let Some(bad) = bad else {
        return Ok(());
    };
    let what = if bad.status == Status::Revoked {
        "is revoked"
    } else {
        "revocation status is unknown"
    };
    let details: Vec<String> = bad
        .servers
        .iter()
        .filter_map(|s| {
            s.detail.as_ref().map(|d| {
                let m = match s.method {
                    Method::Ocsp => "OCSP",
                    _ => "CRL",
                };
                format!("{m} {}: {d}", s.url)
            })
        })
        .collect();
    let mut msg = format!("certificate with subject {:?} {what}", bad.subject);
    if !details.is_empty() {
        msg.push_str(" (");
        msg.push_str(&details.join("; "));
        msg.push(')');
    }
    Err(msg)
}
