//! HTTP for tests: [`Http`], a small synchronous client (ureq; TLS through rustls with ring)
//! that returns every status as a value, with distribution-API helpers; and
//! [`raw_request`], which writes bytes to a socket verbatim for requests no well-behaved
//! client sends (unnormalised paths, bodies cut short).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use berth_oci::Digest;
use ureq::http;

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value as text (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body (status {}) is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The `code`s of a distribution-spec error body (`{"errors":[{"code":…}]}`); empty when
    /// the body is not one.
    pub fn error_codes(&self) -> Vec<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_owned))
            .collect()
    }

    /// Panic unless the status is `want`, showing the body.
    #[track_caller]
    pub fn expect_status(&self, want: u16, what: &str) -> &Resp {
        assert_eq!(
            self.status,
            want,
            "{what}: expected HTTP {want}, got {} with body {}",
            self.status,
            self.text()
        );
        self
    }
}

/// A client for one registry base URL (`http://127.0.0.1:PORT`), optionally with Basic or
/// Bearer credentials and a trusted CA. Statuses are never errors; transport failures are
/// returned as `Err` by the `try_` methods and panic in the others.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Http {
    /// A client for `base`, trusting `ca_pem` (PEM) when given.
    pub fn new(base: &str, ca_pem: Option<&[u8]>) -> Http {
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        if let Some(pem) = ca_pem {
            let certs: Vec<_> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            assert!(!certs.is_empty(), "no certificate in the CA PEM given");
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .tls_config(tls.build())
            .build()
            .new_agent();
        Http {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            authorization: None,
        }
    }

    /// The same client sending `Authorization: Basic …`.
    pub fn basic(&self, user: &str, password: &str) -> Http {
        let mut h = self.clone();
        h.authorization = Some(format!(
            "Basic {}",
            base64_encode(format!("{user}:{password}").as_bytes())
        ));
        h
    }

    /// The same client sending `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> Http {
        let mut h = self.clone();
        h.authorization = Some(format!("Bearer {token}"));
        h
    }

    /// The same client without credentials.
    pub fn anonymous(&self) -> Http {
        let mut h = self.clone();
        h.authorization = None;
        h
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` (starting with `/`) or an absolute URL, as a URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Send one request, returning the response with its body read, or the transport error.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, ureq::Error> {
        let mut resp = self.try_send(method, path, headers, body)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.body_mut().with_config().read_to_vec()?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Send one request and return the response with its body unread (for streaming).
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let mut b = http::Request::builder().method(method).uri(self.url(path));
        if let Some(a) = &self.authorization {
            b = b.header("authorization", a);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        match body {
            Some(data) => {
                let req = b.body(data).map_err(ureq::Error::from)?;
                self.agent.run(req)
            }
            None => {
                let req = b.body(()).map_err(ureq::Error::from)?;
                self.agent.run(req)
            }
        }
    }

    /// [`Http::try_request`], panicking on a transport error.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        match self.try_request(method, path, headers, body) {
            Ok(r) => r,
            Err(e) => panic!("{method} {} failed: {e}", self.url(path)),
        }
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    #[track_caller]
    pub fn head(&self, path: &str) -> Resp {
        self.request("HEAD", path, &[], None)
    }

    /// Fetch a token from the registry's `/token` endpoint for `scope` with the client's
    /// credentials (docker token spec).
    #[track_caller]
    pub fn token(&self, scope: &str) -> String {
        let r = self.get(&format!("/token?service=berth-registry&scope={scope}"));
        r.expect_status(200, &format!("token for {scope}"));
        let v = r.json();
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .unwrap_or_else(|| panic!("token response has no token: {}", r.text()))
            .to_owned()
    }

    /// Start an upload session; returns its `Location`.
    #[track_caller]
    pub fn start_upload(&self, repo: &str) -> String {
        let r = self.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            Some(b""),
        );
        r.expect_status(202, &format!("starting an upload in {repo}"));
        r.header("location")
            .unwrap_or_else(|| panic!("202 without Location"))
            .to_owned()
    }

    /// Push `data` as a blob (POST, then PUT `?digest=` with the whole body); returns its digest.
    #[track_caller]
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let loc = self.start_upload(repo);
        let r = self.request(
            "PUT",
            &with_query(&loc, &format!("digest={d}")),
            &[("content-type", "application/octet-stream")],
            Some(data),
        );
        r.expect_status(201, &format!("committing blob {d} in {repo}"));
        d
    }

    /// PUT a manifest; returns the response (the caller checks the status).
    #[track_caller]
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Resp {
        self.request(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            Some(body),
        )
    }

    /// GET a blob and panic unless it is there and its bytes hash to `digest`.
    #[track_caller]
    pub fn get_verified_blob(&self, repo: &str, digest: &Digest) -> Vec<u8> {
        let r = self.get(&format!("/v2/{repo}/blobs/{digest}"));
        r.expect_status(200, &format!("GET blob {digest} from {repo}"));
        let actual = Digest::sha256_of(&r.body);
        assert_eq!(
            &actual, digest,
            "blob {digest} in {repo} has content with digest {actual}"
        );
        r.body
    }
}

/// Append `query` to a URL or path that may already have one.
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A response read from a raw socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Write `request` verbatim to `addr` (the caller includes `Connection: close`), read until
/// the server closes (or resets after answering), and parse the status line and headers. The body is returned as sent
/// (chunked encoding is not decoded).
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    // A server may answer and close before taking the whole request; read what it said.
    let write_error = s.write_all(request).err();
    let mut raw = Vec::new();
    let read_error = s.read_to_end(&mut raw).err();
    assert!(
        !raw.is_empty(),
        "no response from {addr} (write: {write_error:?}, read: {read_error:?})"
    );
    parse_raw_response(&raw)
}

fn parse_raw_response(raw: &[u8]) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn raw_response_parses_status_and_headers() {
        let r =
            parse_raw_response(b"HTTP/1.1 404 Not Found\r\nContent-Type: x\r\nA: b\r\n\r\nbody");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("x"));
        assert_eq!(r.body, b"body");
    }
}
