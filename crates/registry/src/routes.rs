//! Parsing `/v2/…` request paths into API routes (distribution-spec v1.1, "Endpoints").
//!
//! Repository names contain `/`, so routes are recognised by their suffix (`/manifests/<ref>`,
//! `/blobs/<digest>`, …) and the name is everything before it; names are then validated by
//! the caller with the spec's grammar before any storage path is built from them.

/// One API endpoint with its path parameters, borrowed from the request path.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Route<'a> {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: &'a str },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: &'a str, reference: &'a str },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: &'a str, digest: &'a str },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: &'a str },
    /// `/v2/<name>/blobs/uploads/<session>`
    Upload { name: &'a str, session: &'a str },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: &'a str, digest: &'a str },
    /// Anything else.
    Unknown,
}

impl Route<'_> {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags { .. } => "tags",
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::UploadStart { .. } | Route::Upload { .. } => "upload",
            Route::Referrers { .. } => "referrers",
            Route::Unknown => "unknown",
        }
    }

    /// The repository the route addresses, if any.
    pub fn name(&self) -> Option<&str> {
        match *self {
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
            Route::Base | Route::Catalog | Route::Unknown => None,
        }
    }
}

fn split_last<'a>(rest: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let i = rest.rfind(marker)?;
    let name = &rest[..i];
    let param = &rest[i + marker.len()..];
    if name.is_empty() {
        return None;
    }
    Some((name, param))
}

/// Parse a request path (without query).
pub fn parse(path: &str) -> Route<'_> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return if path == "/v2" {
            Route::Base
        } else {
            Route::Unknown
        };
    };
    if rest.is_empty() {
        return Route::Base;
    }
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return if name.is_empty() {
            Route::Unknown
        } else {
            Route::Tags { name }
        };
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Route::UploadStart { name };
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Route::UploadStart { name };
    }
    if let Some((name, session)) = split_last(rest, "/blobs/uploads/")
        && !session.contains('/')
    {
        return Route::Upload { name, session };
    }
    if let Some((name, reference)) = split_last(rest, "/manifests/")
        && !reference.is_empty()
        && !reference.contains('/')
    {
        return Route::Manifest { name, reference };
    }
    if let Some((name, digest)) = split_last(rest, "/blobs/")
        && !digest.is_empty()
        && !digest.contains('/')
    {
        return Route::Blob { name, digest };
    }
    if let Some((name, digest)) = split_last(rest, "/referrers/")
        && !digest.is_empty()
        && !digest.contains('/')
    {
        return Route::Referrers { name, digest };
    }
    Route::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_endpoint() {
        let cases = [
            ("/v2/", Route::Base),
            ("/v2", Route::Base),
            ("/v2/_catalog", Route::Catalog),
            ("/v2/a/b/tags/list", Route::Tags { name: "a/b" }),
            (
                "/v2/a/b/manifests/latest",
                Route::Manifest {
                    name: "a/b",
                    reference: "latest",
                },
            ),
            (
                "/v2/a/manifests/b/manifests/x",
                Route::Manifest {
                    name: "a/manifests/b",
                    reference: "x",
                },
            ),
            (
                "/v2/a/blobs/sha256:ab",
                Route::Blob {
                    name: "a",
                    digest: "sha256:ab",
                },
            ),
            ("/v2/a/blobs/uploads/", Route::UploadStart { name: "a" }),
            ("/v2/a/blobs/uploads", Route::UploadStart { name: "a" }),
            (
                "/v2/a/blobs/uploads/123-abc",
                Route::Upload {
                    name: "a",
                    session: "123-abc",
                },
            ),
            (
                "/v2/a/referrers/sha256:ab",
                Route::Referrers {
                    name: "a",
                    digest: "sha256:ab",
                },
            ),
            ("/v2/manifests/latest", Route::Unknown),
            ("/v2/a/manifests/", Route::Unknown),
            ("/v3/a/manifests/x", Route::Unknown),
            ("/token", Route::Unknown),
            ("/v2/a/b", Route::Unknown),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path), want, "{path}");
        }
    }

    #[test]
    fn traversal_lands_in_the_name_for_validation() {
        // the name keeps `..`; validate_repository_name then refuses it
        assert_eq!(
            parse("/v2/../../etc/manifests/x"),
            Route::Manifest {
                name: "../../etc",
                reference: "x"
            }
        );
        assert_eq!(parse("/v2/%2e%2e/blobs/sha256:x").name(), Some("%2e%2e"));
    }
}
