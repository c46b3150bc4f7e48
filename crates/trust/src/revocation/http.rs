//! The revocation fetch port and its one implementation: a blocking HTTP/1.1 client for
//! `http://` URLs only (trust-store-trust-policy.md, "CRLs": "support only HTTP CRL URLs";
//! notation refuses other OCSP schemes too). Responses are bounded in size and time: a CRL
//! or OCSP answer is signed data, so plain HTTP is what every CA publishes them over.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// One request a revocation check makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest<'a> {
    /// `http://host[:port]/path`.
    pub url: &'a str,
    /// `Some((content type, body))` for a POST, `None` for a GET.
    pub post: Option<(&'a str, &'a [u8])>,
    /// The most bytes of body accepted.
    pub limit: usize,
    /// The whole exchange's deadline, from connecting to the last byte.
    pub timeout: Duration,
}

/// The port a revocation check fetches CRLs and OCSP responses through. Each call is one
/// request: it returns the body of a `200` response, or why there is none (the message is
/// shown to the user with the URL).
pub trait Fetcher: Sync + std::fmt::Debug {
    /// Sends `req` and returns the body of a `200` answer.
    fn fetch(&self, req: &FetchRequest<'_>) -> Result<Vec<u8>, String>;
}

/// The blocking HTTP/1.1 [`Fetcher`] (`http://` only; no proxies; a GET follows up to five
/// redirects to other `http://` locations, a POST none).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFetcher;

/// The fetcher `berth verify` uses.
pub static HTTP: HttpFetcher = HttpFetcher;

/// Redirects a GET follows (Go's client, notation's, follows up to 10).
const MAX_REDIRECTS: usize = 5;

impl Fetcher for HttpFetcher {
    fn fetch(&self, req: &FetchRequest<'_>) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + req.timeout;
        let mut url = req.url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            match exchange(&url, req, deadline)? {
                Reply::Body(b) => return Ok(b),
                Reply::Redirect(_) if req.post.is_some() => {
                    return Err(
                        "the server redirected a POST; berth does not follow it".to_string()
                    );
                }
                Reply::Redirect(location) => url = resolve(&url, &location)?,
            }
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }
}

/// A redirect's `Location` against the URL that answered: an absolute `http://` URL or an
/// absolute path on the same host.
fn resolve(base: &str, location: &str) -> Result<String, String> {
    if location.starts_with('/') && !location.starts_with("//") {
        let (host, port, _) = split_url(base)?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        return Ok(format!("http://{host}:{port}{location}"));
    }
    split_url(location).map_err(|e| format!("redirected to {location:?}: {e}"))?;
    Ok(location.to_string())
}

/// One request to `url` as `req` says.
fn exchange(url: &str, req: &FetchRequest<'_>, deadline: Instant) -> Result<Reply, String> {
    let (host, port, path) = split_url(url)?;
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    let mut stream = None;
    for a in addrs {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let host_header = match (host.contains(':'), port) {
        (false, 80) => host.to_string(),
        (false, _) => format!("{host}:{port}"),
        (true, 80) => format!("[{host}]"),
        (true, _) => format!("[{host}]:{port}"),
    };
    let mut head = match req.post {
        Some((ct, body)) => format!(
            "POST {path} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n",
            body.len()
        ),
        None => format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\n"),
    };
    head.push_str("User-Agent: berth\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    let mut out = head.into_bytes();
    if let Some((_, body)) = req.post {
        out.extend_from_slice(body);
    }
    s.set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    s.write_all(&out)
        .map_err(|e| format!("cannot send the request: {e}"))?;
    // headers are at most 16 KiB on top of the body
    let raw = read_bounded(&mut s, deadline, req.limit + 16 * 1024)?;
    parse_response(&raw, req.limit)
}

/// A whole response: the body of a `200`, or where a redirect points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Body(Vec<u8>),
    Redirect(String),
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_string())
    } else {
        Ok(left)
    }
}

/// `http://host[:port]/path?query` → (host, port, path-and-query).
fn split_url(url: &str) -> Result<(&str, u16, &str), String> {
    let rest = match url.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &url[7..],
        _ => {
            return Err(
                "only http:// URLs are used for CRLs and OCSP (Notary Project specification)"
                    .to_string(),
            );
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || authority.is_empty() {
        return Err("the URL has no host or has user information".to_string());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("bad IPv6 host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port")?,
            None if after.is_empty() => 80,
            None => return Err("bad host".to_string()),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| "bad port")?),
            None => (authority, 80),
        }
    };
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("the URL path has spaces or control characters".to_string());
    }
    Ok((host, port, path))
}

fn read_bounded(s: &mut TcpStream, deadline: Instant, max: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        s.set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| e.to_string())?;
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out reading the response".to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read the response: {e}")),
        };
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > max {
            return Err(format!("the response is larger than {max} bytes"));
        }
        // a server that keeps the connection open: stop once Content-Length bytes are in
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
            && let Some(len) = content_length(&buf[..end])
            && buf.len() >= end + 4 + len
        {
            return Ok(buf);
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    std::str::from_utf8(head).ok()?.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Status, headers and body of a whole HTTP/1.x response read until the server closed.
pub(crate) fn parse_response(raw: &[u8], limit: usize) -> Result<Reply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no complete header")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the response header is not text")?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {status_line:?}"));
    }
    if matches!(status, "301" | "302" | "303" | "307" | "308") {
        let location = lines
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("location")
                    .then(|| v.trim().to_string())
            })
            .ok_or_else(|| format!("the server answered {status_line:?} without a Location"))?;
        return Ok(Reply::Redirect(location));
    }
    if status != "200" {
        return Err(format!("the server answered {status_line:?}"));
    }
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let (k, v) = l.split_once(':').ok_or("malformed response header")?;
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.eq_ignore_ascii_case("chunked");
            if !chunked {
                return Err(format!("unsupported Transfer-Encoding {v:?}"));
            }
        }
    }
    let out = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        if body.len() < n {
            return Err(format!(
                "the response ended after {} of {n} bytes",
                body.len()
            ));
        }
        body[..n].to_vec()
    } else {
        body.to_vec()
    };
    if out.len() > limit {
        return Err(format!("the response is larger than {limit} bytes"));
    }
    Ok(Reply::Body(out))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunked body")?;
        let size_text = std::str::from_utf8(&body[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size.checked_add(2).is_none_or(|n| body.len() < n) {
            return Err("truncated chunked body".to_string());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_only() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/a.crl"),
            Ok(("127.0.0.1", 8080, "/a.crl"))
        );
        assert_eq!(split_url("http://ca.example"), Ok(("ca.example", 80, "/")));
        assert!(split_url("https://ca.example/a.crl").is_err());
        assert!(split_url("ldap://ca.example/a.crl").is_err());
        assert!(split_url("http://u@ca.example/").is_err());
    }

    #[test]
    fn responses_are_bounded_and_must_be_200() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(ok, 10), Ok(Reply::Body(b"abc".to_vec())));
        assert!(parse_response(ok, 2).is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, 10),
            Ok(Reply::Body(b"abcde".to_vec()))
        );
        let moved = b"HTTP/1.1 302 Found\r\nLocation: /b.crl\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_response(moved, 10),
            Ok(Reply::Redirect("/b.crl".to_string()))
        );
        assert_eq!(
            resolve("http://127.0.0.1:8/a.crl", "/b.crl"),
            Ok("http://127.0.0.1:8/b.crl".to_string())
        );
        assert!(resolve("http://127.0.0.1:8/a.crl", "https://ca.example/b.crl").is_err());
        // a chunk size near usize::MAX is a truncated body, not an overflow
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
        assert!(parse_response(huge, 10).is_err_and(|e| e.contains("truncated")));
        let nf = b"HTTP/1.0 404 Not Found\r\n\r\n";
        assert!(parse_response(nf, 10).is_err_and(|e| e.contains("404")));
    }
}
