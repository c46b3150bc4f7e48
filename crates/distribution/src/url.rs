//! The few URL operations the client needs, without a URL crate: percent-encoding query
//! values, resolving `Location` headers, adding query parameters, reading `Link` headers.

use crate::transport::origin;

/// Percent-encode everything but RFC 3986 unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with `key=value` appended to its query.
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let base = url.split('#').next().unwrap_or(url);
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{base}{sep}{}={}", encode(key), encode(value))
}

/// Resolve a `Location` (or `Link`) reference against the absolute URL of the request
/// (RFC 3986 §5.2, for the forms registries send: absolute, scheme-relative,
/// absolute-path, query-only and relative-path).
pub(crate) fn resolve(base: &str, reference: &str) -> Option<String> {
    let reference = reference.trim();
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return Some(reference.to_owned());
    }
    let (scheme, authority) = origin(base)?;
    if let Some(rest) = reference.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if reference.starts_with('/') {
        return Some(format!("{scheme}://{authority}{reference}"));
    }
    let path_and_query = base.get(scheme.len() + 3 + authority.len()..).unwrap_or("");
    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    if reference.starts_with('?') {
        return Some(format!("{scheme}://{authority}{path}{reference}"));
    }
    if reference.is_empty() {
        return Some(base.to_owned());
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Some(format!("{scheme}://{authority}{dir}{reference}"))
}

/// The target of the `rel="next"` link in a `Link` header (RFC 8288), if any.
pub(crate) fn next_link(header: &str) -> Option<&str> {
    for link in header.split(',') {
        let link = link.trim();
        let Some(rest) = link.strip_prefix('<') else {
            continue;
        };
        let Some((target, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(encode("a b~"), "a%20b~");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn queries() {
        assert_eq!(
            with_query("http://h/u", "digest", "sha256:x"),
            "http://h/u?digest=sha256%3Ax"
        );
        assert_eq!(
            with_query("http://h/u?_state=a", "digest", "d"),
            "http://h/u?_state=a&digest=d"
        );
        assert_eq!(with_query("http://h/u?", "n", "1"), "http://h/u?n=1");
    }

    #[test]
    fn resolving() {
        let base = "https://r.example:5000/v2/a/b/blobs/uploads/?x=1";
        let cases = [
            ("http://other/x", "http://other/x"),
            ("//cdn.example/blob", "https://cdn.example/blob"),
            (
                "/v2/a/b/blobs/uploads/uuid?_state=s",
                "https://r.example:5000/v2/a/b/blobs/uploads/uuid?_state=s",
            ),
            ("uuid", "https://r.example:5000/v2/a/b/blobs/uploads/uuid"),
            ("?n=2", "https://r.example:5000/v2/a/b/blobs/uploads/?n=2"),
            ("", base),
        ];
        for (reference, want) in cases {
            assert_eq!(
                resolve(base, reference).as_deref(),
                Some(want),
                "{reference}"
            );
        }
        assert_eq!(resolve("not a url", "/x"), None);
        assert_eq!(resolve("http://h", "x"), Some("http://h/x".into()));
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#),
            Some("https://x/next")
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<unterminated; rel=next"), None);
    }
}
