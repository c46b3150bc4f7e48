//! One module per API resource (distribution-spec v1.1 endpoints end-1 … end-13): each
//! turns a request into calls on the storage layer ([`crate::storage`]) and its answer
//! into a response. No handler touches the storage driver.

pub mod blobs;
pub mod catalog;
pub mod http;
pub mod manifests;
pub mod referrers;
pub mod tags;
pub mod uploads;

use berth_oci::Digest;

use crate::error::{ErrorKind, RegistryError, Result};

/// Parse a digest from a request, answering DIGEST_INVALID (or UNSUPPORTED algorithm) as the
/// spec says.
pub(crate) fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| {
        RegistryError::new(ErrorKind::DigestInvalid, e.to_string())
            .detail(serde_json::json!({ "digest": s }))
    })
}

/// `<n>` pagination parameter (tags list, catalog).
pub(crate) fn parse_n(query: &str) -> Result<Option<usize>> {
    match http::query_get(query, "n") {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
            RegistryError::new(
                ErrorKind::PaginationNumberInvalid,
                format!("invalid pagination parameter n={v:?}: expected a non-negative integer"),
            )
            .detail(serde_json::json!({ "n": v }))
        }),
    }
}

/// Apply `n`/`last` to a sorted list; returns the page and whether more follow.
pub(crate) fn paginate(
    all: Vec<String>,
    n: Option<usize>,
    last: Option<&str>,
) -> (Vec<String>, bool) {
    let start = match last {
        Some(l) if !l.is_empty() => all.partition_point(|t| t.as_str() <= l),
        _ => 0,
    };
    let rest = &all[start..];
    match n {
        Some(n) if n < rest.len() => (rest[..n].to_vec(), n > 0),
        _ => (rest.to_vec(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            paginate(all.clone(), Some(2), None),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            paginate(all.clone(), Some(2), Some("b")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(
            paginate(all.clone(), None, Some("bb")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(paginate(all.clone(), Some(0), None), (vec![], false));
        assert_eq!(paginate(all, Some(10), Some("z")), (vec![], false));
    }
}
