//! What a report may show of an exchange: credentials removed from headers, URLs and JSON
//! bodies, bodies cut to their first bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

use crate::model::{BodyView, Header};

/// Bodies are kept up to this many bytes in a report.
pub const BODY_PREVIEW: usize = 4096;
/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-registry-auth",
];

/// Whether a JSON key or query parameter name holds a credential.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "signature",
        "credential",
        "passwd",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// `headers` as recorded, credentials replaced by [`REDACTED`].
pub fn headers(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_owned();
            let value = if SECRET_HEADERS.contains(&name.as_str()) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            Header { name, value }
        })
        .collect()
}

/// `url` with the values of secret query parameters (tokens, signatures) replaced, and any
/// `user:password@` removed.
pub fn url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_name(k) => format!("{k}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Replace the values of secret keys anywhere in a JSON value.
fn json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_name(k) && !v.is_object() && !v.is_array() {
                    *v = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(json),
        _ => {}
    }
}

/// `body` as recorded: `None` when empty; JSON objects with secret keys are re-serialized
/// with those values redacted; at most [`BODY_PREVIEW`] bytes kept.
pub fn body(body: &[u8]) -> Option<BodyView> {
    if body.is_empty() {
        return None;
    }
    let size = body.len() as u64;
    let redacted = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(has_secret)
        .map(|mut v| {
            json(&mut v);
            serde_json::to_vec(&v).unwrap_or_default()
        });
    let bytes = redacted.as_deref().unwrap_or(body);
    let mut cut = bytes.len().min(BODY_PREVIEW);
    let truncated = cut < bytes.len();
    // Cut on a character boundary when the body is text.
    let text = loop {
        match std::str::from_utf8(&bytes[..cut]) {
            Ok(t) => break Some(t),
            Err(e) if e.error_len().is_none() && truncated && e.valid_up_to() + 4 > cut => {
                cut = e.valid_up_to();
            }
            Err(_) => break None,
        }
    };
    Some(match text {
        Some(t) => BodyView {
            size,
            truncated,
            encoding: "utf-8".into(),
            content: t.to_owned(),
        },
        None => BodyView {
            size,
            truncated,
            encoding: "base64".into(),
            content: STANDARD.encode(&bytes[..cut]),
        },
    })
}

fn has_secret(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| is_secret_name(k) || has_secret(v))
        }
        serde_json::Value::Array(items) => items.iter().any(has_secret),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_redacted() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc.def".parse().unwrap());
        h.insert("cookie", "s=1".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        let got = headers(&h);
        let find = |n: &str| got.iter().find(|x| x.name == n).unwrap().value.clone();
        assert_eq!(find("authorization"), REDACTED);
        assert_eq!(find("cookie"), REDACTED);
        assert_eq!(find("content-type"), "application/json");
        assert!(!format!("{got:?}").contains("abc.def"));
    }

    #[test]
    fn urls_lose_userinfo_and_secret_parameters() {
        assert_eq!(
            url(
                "https://u:pw@r.example/v2/a/blobs/uploads/x?_state=s&X-Amz-Signature=zz&digest=sha256:1"
            ),
            "https://r.example/v2/a/blobs/uploads/x?_state=s&X-Amz-Signature=<redacted>&digest=sha256:1"
        );
        assert_eq!(
            url("https://auth.example/token?service=r&access_token=t"),
            "https://auth.example/token?service=r&access_token=<redacted>"
        );
        assert_eq!(url("/v2/"), "/v2/");
    }

    #[test]
    fn token_bodies_are_redacted_and_others_kept_byte_for_byte() {
        let b = body(br#"{"token":"s3cr3t","access_token":"s3cr3t","expires_in":60}"#).unwrap();
        assert!(!b.content.contains("s3cr3t"), "{}", b.content);
        assert!(b.content.contains("expires_in"));
        let raw = br#"{ "schemaVersion": 2 }"#;
        assert_eq!(body(raw).unwrap().content.as_bytes(), raw);
        assert!(body(b"").is_none());
    }

    #[test]
    fn bodies_are_truncated_and_binary_shown_as_base64() {
        let big = vec![b'a'; BODY_PREVIEW * 2];
        let b = body(&big).unwrap();
        assert!(b.truncated);
        assert_eq!(b.size, (BODY_PREVIEW * 2) as u64);
        assert_eq!(b.content.len(), BODY_PREVIEW);
        let bin = body(&[0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(bin.encoding, "base64");
        assert_eq!(bin.content, "//4A");
        // A multi-byte character cut at the preview limit stays text.
        let mut text = vec![b'a'; BODY_PREVIEW - 1];
        text.extend_from_slice("é and more".as_bytes());
        let t = body(&text).unwrap();
        assert_eq!(t.encoding, "utf-8");
        assert_eq!(t.content.len(), BODY_PREVIEW - 1);
    }
}
