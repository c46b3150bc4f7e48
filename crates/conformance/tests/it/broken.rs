//! Against deliberately broken registries: berth's registry behind a proxy that breaks one
//! thing ([`Break`]). Each break must be caught by the right checks and by no other: the
//! checks whose outcome changes, compared with a clean run through the same proxy, are
//! exactly the ones the table names, with the status it names. A break the proxy never
//! applied proves nothing, so each case also asserts that it did.
//!
//! Some breaks change several checks: those are the checks that all rely on the broken
//! behaviour (e.g. every check that reads the `Location` of a chunk). Where a break must not
//! disturb the run's setup, its matcher is armed only after the setup (`after_setup`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use berth_conformance::{Options, Report, Status, Workflow};
use berth_test_support::{
    Break, BrokenRegistry, Matcher, RefKind, Registry, RegistryOptions, requires_tool,
};

use Status::{Fail, Skip, Warn};

/// A break and the checks it must change, with their new status.
struct Case {
    name: &'static str,
    brk: Break,
    expect: &'static [(&'static str, Status)],
}

fn m(spec: &str) -> Matcher {
    Matcher::new(spec)
}

fn status(matcher: Matcher, from: u16, to: u16) -> Break {
    Break::Status { matcher, from, to }
}

fn drop_header(matcher: Matcher, header: &'static str) -> Break {
    Break::DropHeader { matcher, header }
}

fn set_header(matcher: Matcher, header: &'static str, value: &str, add: bool) -> Break {
    Break::SetHeader {
        matcher,
        header,
        value: value.to_owned(),
        add,
    }
}

fn code(matcher: Matcher, from: &'static str, to: &'static str) -> Break {
    Break::WrongErrorCode { matcher, from, to }
}

fn edit(matcher: Matcher, edit: fn(&mut serde_json::Value)) -> Break {
    Break::EditJson { matcher, edit }
}

fn tags_of(v: &mut serde_json::Value) -> Option<&mut Vec<serde_json::Value>> {
    v.get_mut("tags").and_then(|t| t.as_array_mut())
}

fn referrers_of(v: &mut serde_json::Value) -> Option<&mut Vec<serde_json::Value>> {
    v.get_mut("manifests").and_then(|t| t.as_array_mut())
}

const ZERO_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
const EMPTY_BLOB: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The table: one break per row.
fn cases() -> Vec<Case> {
    vec![
        // --- status codes ---
        Case {
            name: "GET /v2/ answers 404",
            brk: status(m("GET /v2/"), 200, 404),
            expect: &[("auth.challenge", Fail), ("pull.api-base", Fail)],
        },
        Case {
            name: "an unknown tag is 403",
            brk: status(m("GET manifests").path_contains("conf-missing-"), 404, 403),
            expect: &[
                ("pull.manifest-unknown-tag", Fail),
                ("pull.manifest-unknown-code", Warn),
            ],
        },
        Case {
            name: "HEAD of an unknown manifest is 403",
            brk: status(m("HEAD manifests"), 404, 403),
            expect: &[("pull.manifest-unknown-digest", Fail)],
        },
        Case {
            name: "a manifest in an unknown repository is 403",
            brk: status(m("GET manifests").path_contains("/missing-"), 404, 403),
            expect: &[
                ("pull.repository-unknown", Fail),
                ("pull.repository-unknown-code", Warn),
            ],
        },
        Case {
            name: "HEAD of a manifest by tag is 404",
            brk: status(m("HEAD manifests").reference(RefKind::Tag), 200, 404),
            expect: &[
                ("pull.manifest-head-tag", Fail),
                ("pull.manifest-head-headers", Warn),
            ],
        },
        Case {
            name: "HEAD of a manifest by digest is 404",
            brk: status(m("HEAD manifests").reference(RefKind::Digest), 200, 404),
            expect: &[
                ("pull.manifest-head-digest", Fail),
                ("management.delete-tag", Fail),
            ],
        },
        Case {
            name: "GET of a manifest by digest is 500",
            brk: status(m("GET manifests").reference(RefKind::Digest), 200, 500),
            expect: &[
                ("pull.manifest-get-digest", Fail),
                ("pull.manifest-content-type-image", Warn),
                ("pull.manifest-content-type-index", Warn),
                ("push.manifest-4mib", Warn),
            ],
        },
        Case {
            name: "HEAD of a blob is 404",
            brk: status(m("HEAD blobs"), 200, 404),
            expect: &[("pull.blob-head", Fail), ("pull.blob-head-headers", Warn)],
        },
        Case {
            name: "HEAD of an unknown blob is 403",
            brk: status(m("HEAD blobs"), 404, 403),
            expect: &[("pull.blob-unknown", Fail)],
        },
        Case {
            name: "the status of an unknown upload is 403",
            brk: status(m("GET blobs/uploads"), 404, 403),
            expect: &[("push.upload-unknown", Fail), ("push.upload-cancel", Fail)],
        },
        Case {
            name: "cancelling an upload is 500",
            brk: status(m("DELETE blobs/uploads"), 204, 500),
            expect: &[("push.upload-cancel", Fail)],
        },
        Case {
            name: "a blob under the wrong digest is accepted",
            brk: status(m("PUT blobs/uploads"), 400, 201),
            expect: &[("push.digest-mismatch", Fail)],
        },
        Case {
            name: "an out-of-order chunk is accepted (202, not 416)",
            brk: Break::AcceptOutOfOrderChunk,
            expect: &[
                ("push.chunk-out-of-order", Fail),
                ("push.chunk-resent", Fail),
            ],
        },
        Case {
            name: "a single-POST upload is 500",
            brk: status(m("POST blobs/uploads").query_contains("digest="), 201, 500),
            expect: &[("push.blob-single-post", Fail)],
        },
        Case {
            name: "a sha512 blob is refused with 500",
            brk: status(m("PUT blobs/uploads").query_contains("sha512:"), 201, 500),
            expect: &[("push.blob-sha512", Fail)],
        },
        Case {
            name: "the empty blob cannot be pulled",
            brk: status(m("GET blobs").path_contains(EMPTY_BLOB), 200, 404),
            expect: &[("push.blob-empty", Warn)],
        },
        Case {
            name: "a mount of a missing blob is 201",
            brk: status(m("POST blobs/uploads").query_contains("mount="), 202, 201),
            expect: &[("push.mount-fallback", Warn)],
        },
        Case {
            name: "an invalid manifest is accepted",
            brk: status(m("PUT manifests").path_contains("-invalid"), 400, 201),
            expect: &[("push.manifest-invalid", Warn)],
        },
        Case {
            name: "a manifest under a 255-character name is refused",
            brk: status(
                m("PUT manifests").path_contains("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"),
                201,
                400,
            ),
            expect: &[("push.name-max-length", Warn)],
        },
        Case {
            name: "manifests pushed by digest after the setup are refused",
            brk: status(
                m("PUT manifests").reference(RefKind::Digest).after_setup(),
                201,
                500,
            ),
            expect: &[
                ("push.manifest-put-digest", Fail),
                ("push.manifest-digest-header", Warn),
                ("push.manifest-no-layers", Fail),
                ("push.manifest-4mib", Warn),
                ("push.name-max-length", Warn),
                ("discovery.subject-missing-accepted", Fail),
                ("management.delete-manifest", Fail),
            ],
        },
        Case {
            name: "a manifest whose subject is missing is refused",
            brk: status(
                m("PUT manifests").after(m("GET referrers")).limit(1),
                201,
                400,
            ),
            expect: &[("discovery.subject-missing-accepted", Fail)],
        },
        Case {
            name: "the tags of an unknown repository are 403",
            brk: status(m("GET tags/list").path_contains("/missing-"), 404, 403),
            expect: &[("discovery.tags-unknown-repository", Fail)],
        },
        Case {
            name: "referrers of an invalid digest are 200",
            brk: status(m("GET referrers").path_contains("not-a-digest"), 400, 200),
            expect: &[("discovery.referrers-invalid-digest", Fail)],
        },
        Case {
            name: "deleting an unknown blob is 403",
            brk: status(m("DELETE blobs"), 404, 403),
            expect: &[("management.delete-blob-unknown", Fail)],
        },
        Case {
            name: "deleting a manifest in an unknown repository is 403",
            brk: status(m("DELETE manifests").path_contains("/missing-"), 404, 403),
            expect: &[("management.delete-manifest-unknown-repository", Fail)],
        },
        Case {
            name: "deleting a manifest by digest is 500",
            brk: status(m("DELETE manifests").reference(RefKind::Digest), 202, 500),
            expect: &[("management.delete-manifest", Fail)],
        },
        Case {
            name: "deleting a tag is 500",
            brk: status(m("DELETE manifests").reference(RefKind::Tag), 202, 500),
            expect: &[("management.delete-tag", Fail)],
        },
        Case {
            name: "deleting a blob is 500",
            brk: status(m("DELETE blobs"), 202, 500),
            expect: &[("management.delete-blob", Fail)],
        },
        // --- headers ---
        Case {
            name: "GET of a manifest without Docker-Content-Digest",
            brk: drop_header(m("GET manifests"), "docker-content-digest"),
            expect: &[("pull.manifest-digest-header", Warn)],
        },
        Case {
            name: "HEAD of a manifest with a wrong Docker-Content-Digest",
            brk: Break::WrongDigest {
                matcher: m("HEAD manifests"),
            },
            expect: &[("pull.manifest-head-headers", Warn)],
        },
        Case {
            name: "GET of a manifest without Content-Type",
            brk: drop_header(m("GET manifests"), "content-type"),
            expect: &[
                ("pull.manifest-content-type-image", Warn),
                ("pull.manifest-content-type-index", Warn),
            ],
        },
        Case {
            name: "GET of a blob with a wrong Docker-Content-Digest",
            brk: Break::WrongDigest {
                matcher: m("GET blobs"),
            },
            expect: &[("pull.blob-digest-header", Warn)],
        },
        Case {
            name: "HEAD of a blob without Docker-Content-Digest",
            brk: drop_header(m("HEAD blobs"), "docker-content-digest"),
            expect: &[("pull.blob-head-headers", Warn)],
        },
        Case {
            name: "a partial blob without Content-Range",
            brk: drop_header(m("GET blobs"), "content-range"),
            expect: &[("pull.blob-range", Fail)],
        },
        Case {
            name: "a partial blob is answered 200",
            brk: status(m("GET blobs"), 206, 200),
            expect: &[("pull.blob-range", Fail)],
        },
        Case {
            name: "HEAD of a manifest with a wrong Content-Length",
            brk: set_header(m("HEAD manifests"), "content-length", "1", false),
            expect: &[("pull.manifest-head-headers", Warn)],
        },
        Case {
            name: "HEAD of a blob with a wrong Content-Length",
            brk: set_header(m("HEAD blobs"), "content-length", "1", false),
            expect: &[("pull.blob-head-headers", Warn)],
        },
        Case {
            name: "an upload's status with a wrong Range",
            brk: set_header(m("GET blobs/uploads"), "range", "0-0", false),
            expect: &[("push.upload-status", Fail)],
        },
        Case {
            name: "a chunk with a wrong Range",
            brk: set_header(m("PATCH blobs/uploads"), "range", "0-1", false),
            expect: &[("push.blob-chunked", Fail)],
        },
        Case {
            name: "a mount whose Location is another repository's",
            brk: set_header(
                m("POST blobs/uploads").query_contains("mount="),
                "location",
                &format!("/v2/nowhere/blobs/{ZERO_DIGEST}"),
                false,
            ),
            expect: &[("push.mount", Fail)],
        },
        Case {
            name: "an upload's status without Location",
            brk: drop_header(m("GET blobs/uploads"), "location"),
            expect: &[("push.upload-status", Fail)],
        },
        Case {
            name: "Range is ignored",
            brk: Break::IgnoreRange,
            expect: &[("pull.blob-range", Skip)],
        },
        Case {
            name: "a mount without Location",
            brk: drop_header(m("POST blobs/uploads").query_contains("mount="), "location"),
            expect: &[("push.mount", Fail), ("push.mount-fallback", Warn)],
        },
        Case {
            name: "a blob's Location leads elsewhere",
            brk: set_header(
                m("PUT blobs/uploads").after_setup(),
                "location",
                &format!("/v2/nowhere/blobs/{ZERO_DIGEST}"),
                false,
            ),
            expect: &[("push.blob-location", Fail)],
        },
        Case {
            name: "a blob commit is 200, not 201",
            brk: status(m("PUT blobs/uploads").after_setup(), 201, 200),
            expect: &[
                ("push.blob-post-put", Fail),
                ("push.blob-location", Fail),
                ("push.blob-chunked", Fail),
                ("push.blob-empty", Warn),
                ("push.blob-sha512", Fail),
                ("push.mount", Fail),
                ("push.name-max-length", Warn),
                ("management.delete-blob", Fail),
            ],
        },
        Case {
            name: "a chunk without Location",
            brk: drop_header(m("PATCH blobs/uploads"), "location"),
            expect: &[
                ("push.blob-chunked", Fail),
                ("push.chunk-out-of-order", Fail),
                ("push.chunk-resent", Fail),
                ("push.upload-status", Fail),
            ],
        },
        Case {
            name: "a chunk without Range",
            brk: drop_header(m("PATCH blobs/uploads"), "range"),
            expect: &[("push.blob-chunked", Fail)],
        },
        Case {
            name: "an upload's status without Range",
            brk: drop_header(m("GET blobs/uploads"), "range"),
            expect: &[("push.upload-status", Fail)],
        },
        Case {
            name: "a manifest push without Location",
            brk: drop_header(m("PUT manifests"), "location"),
            expect: &[
                ("push.manifest-put-tag", Fail),
                ("push.manifest-put-digest", Fail),
            ],
        },
        Case {
            name: "a manifest push with a wrong Docker-Content-Digest",
            brk: Break::WrongDigest {
                matcher: m("PUT manifests"),
            },
            expect: &[("push.manifest-digest-header", Warn)],
        },
        Case {
            name: "a manifest push without OCI-Subject",
            brk: drop_header(m("PUT manifests"), "oci-subject"),
            expect: &[("discovery.oci-subject", Fail)],
        },
        Case {
            name: "a manifest push with a wrong OCI-Subject",
            brk: set_header(m("PUT manifests"), "oci-subject", ZERO_DIGEST, false),
            expect: &[("discovery.oci-subject", Fail)],
        },
        Case {
            name: "a tags page whose Link leads nowhere",
            brk: set_header(
                m("GET tags/list"),
                "link",
                "</v2/nowhere/tags/list?n=2&last=zzz>; rel=\"next\"",
                false,
            ),
            expect: &[("discovery.tags-link", Fail)],
        },
        Case {
            name: "a Link header for n=0",
            brk: set_header(
                m("GET tags/list").query_contains("n=0"),
                "link",
                "</v2/x/tags/list?n=0>; rel=\"next\"",
                true,
            ),
            expect: &[("discovery.tags-n-zero", Fail)],
        },
        Case {
            name: "referrers without Content-Type",
            brk: drop_header(m("GET referrers"), "content-type"),
            expect: &[
                ("discovery.referrers-list", Fail),
                ("discovery.referrers-filter", Warn),
                ("discovery.referrers-none", Fail),
            ],
        },
        Case {
            name: "filtered referrers without OCI-Filters-Applied",
            brk: drop_header(m("GET referrers"), "oci-filters-applied"),
            expect: &[("discovery.referrers-filter", Warn)],
        },
        Case {
            name: "no referrers API",
            brk: Break::NoReferrers,
            expect: &[
                ("discovery.referrers-api", Warn),
                ("discovery.referrers-list", Skip),
                ("discovery.referrers-filter", Skip),
                ("discovery.referrers-none", Skip),
                ("discovery.referrers-invalid-digest", Skip),
                ("discovery.oci-subject", Skip),
            ],
        },
        // --- digests and bodies ---
        Case {
            name: "a manifest pulled by tag has a flipped byte",
            brk: Break::CorruptBody {
                matcher: m("GET manifests").reference(RefKind::Tag),
            },
            expect: &[
                ("pull.manifest-get-tag", Fail),
                ("push.manifest-put-tag", Fail),
            ],
        },
        Case {
            name: "a manifest pulled by digest has a flipped byte",
            brk: Break::CorruptBody {
                matcher: m("GET manifests").reference(RefKind::Digest),
            },
            expect: &[
                ("pull.manifest-get-digest", Fail),
                ("push.manifest-4mib", Warn),
            ],
        },
        Case {
            name: "a blob has a flipped byte",
            brk: Break::CorruptBody {
                matcher: m("GET blobs"),
            },
            expect: &[
                ("pull.blob-get", Fail),
                ("pull.blob-range", Fail),
                ("push.blob-post-put", Fail),
                ("push.blob-location", Fail),
                ("push.blob-single-post", Fail),
                ("push.blob-chunked", Fail),
                ("push.blob-sha512", Fail),
                ("push.mount", Fail),
            ],
        },
        Case {
            name: "the full tags list misses a tag",
            brk: edit(m("GET tags/list"), |v| {
                if let Some(t) = tags_of(v)
                    && t.len() > 2
                {
                    t.remove(0);
                }
            }),
            expect: &[("discovery.tags-list", Fail)],
        },
        Case {
            name: "tags are listed in reverse order",
            brk: edit(m("GET tags/list"), |v| {
                if let Some(t) = tags_of(v) {
                    t.reverse();
                }
            }),
            expect: &[
                ("discovery.tags-order", Fail),
                ("discovery.tags-last", Fail),
                ("discovery.tags-link", Fail),
            ],
        },
        Case {
            name: "n=2 gives 3 tags",
            brk: edit(m("GET tags/list").query_contains("n=2"), |v| {
                if let Some(t) = tags_of(v) {
                    t.push(serde_json::json!("zzz-extra"));
                }
            }),
            expect: &[
                ("discovery.tags-n", Fail),
                ("discovery.tags-last", Fail),
                ("discovery.tags-link", Fail),
            ],
        },
        Case {
            name: "referrers without artifactType",
            brk: edit(m("GET referrers"), |v| {
                for d in referrers_of(v).into_iter().flatten() {
                    if let Some(o) = d.as_object_mut() {
                        o.remove("artifactType");
                    }
                }
            }),
            expect: &[
                ("discovery.referrers-list", Fail),
                ("discovery.referrers-filter", Warn),
            ],
        },
        Case {
            name: "the tags list is of another repository",
            brk: edit(m("GET tags/list"), |v| {
                v["name"] = serde_json::json!("someone/else");
            }),
            expect: &[
                ("discovery.tags-list", Fail),
                ("discovery.tags-order", Fail),
                ("discovery.tags-n", Fail),
                ("discovery.tags-n-zero", Fail),
                ("discovery.tags-last", Fail),
                ("discovery.tags-link", Fail),
            ],
        },
        Case {
            name: "referrers without their annotations",
            brk: edit(m("GET referrers"), |v| {
                for d in referrers_of(v).into_iter().flatten() {
                    if let Some(o) = d.as_object_mut() {
                        o.remove("annotations");
                    }
                }
            }),
            expect: &[("discovery.referrers-list", Fail)],
        },
        Case {
            name: "the artifactType filter claimed but not applied",
            brk: edit(m("GET referrers").query_contains("artifactType="), |v| {
                if let Some(list) = referrers_of(v) {
                    list.push(serde_json::json!({
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": ZERO_DIGEST,
                        "size": 1,
                        "artifactType": "application/vnd.example.other",
                    }));
                }
            }),
            expect: &[("discovery.referrers-filter", Warn)],
        },
        Case {
            name: "referrers of nothing list one",
            brk: edit(m("GET referrers"), |v| {
                if let Some(list) = referrers_of(v)
                    && list.is_empty()
                {
                    list.push(serde_json::json!({
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": ZERO_DIGEST,
                        "size": 1,
                    }));
                }
            }),
            expect: &[("discovery.referrers-none", Fail)],
        },
        // --- error codes ---
        Case {
            name: "an unknown tag is BLOB_UNKNOWN",
            brk: code(
                m("GET manifests").path_contains("conf-missing-"),
                "MANIFEST_UNKNOWN",
                "BLOB_UNKNOWN",
            ),
            expect: &[("pull.manifest-unknown-code", Warn)],
        },
        Case {
            name: "an unknown repository is BLOB_UNKNOWN",
            brk: code(
                m("GET manifests").path_contains("/missing-"),
                "MANIFEST_UNKNOWN",
                "BLOB_UNKNOWN",
            ),
            expect: &[("pull.repository-unknown-code", Warn)],
        },
        Case {
            name: "an unknown blob is MANIFEST_UNKNOWN",
            brk: code(m("GET blobs"), "BLOB_UNKNOWN", "MANIFEST_UNKNOWN"),
            expect: &[("pull.blob-unknown-code", Warn)],
        },
        Case {
            name: "a digest mismatch is SIZE_INVALID",
            brk: code(m("PUT blobs/uploads"), "DIGEST_INVALID", "SIZE_INVALID"),
            expect: &[("push.digest-mismatch", Fail)],
        },
        Case {
            name: "an invalid manifest is UNSUPPORTED",
            brk: code(m("PUT manifests"), "MANIFEST_INVALID", "UNSUPPORTED"),
            expect: &[("push.manifest-invalid", Warn)],
        },
        Case {
            name: "a manifest with a missing layer is MANIFEST_INVALID",
            brk: code(
                m("PUT manifests"),
                "MANIFEST_BLOB_UNKNOWN",
                "MANIFEST_INVALID",
            ),
            expect: &[("push.manifest-blob-unknown", Fail)],
        },
    ]
}

/// Requests to berth's token realm (`<base URL>/token`: the proxy's, as the client reached
/// the registry through it), once the setup's own token requests are done.
fn token_requests() -> Matcher {
    m("GET *").path_contains("/token").after_setup()
}

/// The checks with credentials, against a registry that requires them.
fn auth_cases() -> Vec<Case> {
    vec![
        Case {
            name: "a 401 without WWW-Authenticate",
            brk: drop_header(m("GET /v2/"), "www-authenticate"),
            // The client answers later requests with the token the setup got.
            expect: &[("auth.challenge", Fail)],
        },
        Case {
            name: "a Bearer challenge with a relative realm",
            brk: set_header(
                m("GET /v2/"),
                "www-authenticate",
                "Bearer realm=\"/token\",service=\"berth-registry\"",
                false,
            ),
            expect: &[("auth.challenge", Fail)],
        },
        Case {
            name: "a challenge of an unknown scheme",
            brk: set_header(m("GET /v2/"), "www-authenticate", "Negotiate", false),
            expect: &[("auth.challenge", Fail)],
        },
        Case {
            name: "a repository's 401 without WWW-Authenticate",
            // The four auth checks' anonymous requests (a client answering a later 401 has
            // no challenge to follow either: that is another check's break).
            brk: drop_header(
                m("GET tags/list").after_setup().limit(4),
                "www-authenticate",
            ),
            // Nothing to follow: the token checks cannot run.
            expect: &[
                ("auth.challenge-repository", Warn),
                ("auth.token", Skip),
                ("auth.token-retry", Skip),
                ("auth.wrong-credentials", Skip),
            ],
        },
        Case {
            name: "the token endpoint answers 500 (the checks' own requests)",
            brk: status(token_requests().limit(2), 200, 500),
            expect: &[("auth.token", Fail), ("auth.token-retry", Skip)],
        },
        Case {
            name: "the token endpoint answers 200 without a token",
            brk: edit(token_requests().limit(2), |v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("token");
                    o.remove("access_token");
                }
            }),
            expect: &[("auth.token", Fail), ("auth.token-retry", Skip)],
        },
        Case {
            // The fourth tags-list request after the setup is the retry with the token
            // (three anonymous ones come first: one per token check's challenge).
            name: "the request retried with a valid token is 401",
            brk: status(m("GET tags/list").after_setup().limit(4), 200, 401),
            expect: &[("auth.token-retry", Fail)],
        },
        Case {
            name: "a wrong password is answered 200 by the token endpoint",
            brk: status(token_requests(), 401, 200),
            expect: &[("auth.wrong-credentials", Fail)],
        },
        Case {
            name: "valid credentials are refused on /v2/",
            brk: status(m("GET /v2/"), 200, 403),
            expect: &[("auth.credentials", Fail), ("pull.api-base", Fail)],
        },
    ]
}

/// A run of `workflows` through `host`: with generated test data, or with `existing`, a
/// read-only run over the image [`super::read_only::seed`] pushed.
fn run(
    host: &str,
    namespace: &str,
    user: Option<(&str, &str)>,
    existing: Option<&str>,
    workflows: &[Workflow],
) -> Report {
    let namespace = match existing {
        None => namespace,
        Some(_) => super::read_only::REPO,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(berth_conformance::run(Options {
        client: super::client(host, user),
        registry: host.into(),
        namespace: namespace.into(),
        workflows: workflows.to_vec(),
        has_credentials: user.is_some(),
        existing: existing.map(str::to_owned),
    }))
    .unwrap()
}

fn outcomes(report: &Report) -> BTreeMap<String, (Status, String)> {
    report
        .checks
        .iter()
        .map(|c| {
            (
                c.info.id.clone(),
                (c.outcome.status, c.outcome.reason.clone()),
            )
        })
        .collect()
}

/// Run every case through its own proxy in front of `upstream` (up to `parallel` at once)
/// and return the mismatches, one paragraph each, and the table of what each break changed.
fn run_table(
    upstream: SocketAddr,
    user: Option<(&str, &str)>,
    cases: Vec<Case>,
    parallel: usize,
    existing: Option<&str>,
) -> (Vec<String>, String) {
    let workflows = match existing {
        None => Workflow::ALL.to_vec(),
        Some(_) => vec![Workflow::Pull, Workflow::Discovery],
    };
    run_table_of(upstream, user, cases, parallel, existing, &workflows)
}

/// [`run_table`] of the `workflows` given.
fn run_table_of(
    upstream: SocketAddr,
    user: Option<(&str, &str)>,
    cases: Vec<Case>,
    parallel: usize,
    existing: Option<&str>,
    workflows: &[Workflow],
) -> (Vec<String>, String) {
    // The baseline: the same proxy, breaking nothing.
    let clean = BrokenRegistry::start(upstream, Break::None);
    let baseline = outcomes(&run(
        &clean.host(),
        "broken/baseline",
        user,
        existing,
        workflows,
    ));
    drop(clean);
    let direct = outcomes(&run(
        &upstream.to_string(),
        "broken/direct",
        user,
        existing,
        workflows,
    ));
    let mut problems = Vec::new();
    for (id, (st, why)) in &baseline {
        if direct.get(id).map(|d| d.0) != Some(*st) {
            problems.push(format!(
                "the clean proxy changed {id}: {st} ({why}) instead of {:?}",
                direct.get(id)
            ));
        }
    }
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| {
                loop {
                    let Some((i, case)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let proxy = BrokenRegistry::start(upstream, case.brk.clone());
                    let got = outcomes(&run(
                        &proxy.host(),
                        &format!("broken/case{i}"),
                        user,
                        existing,
                        workflows,
                    ));
                    let hits = proxy.hits();
                    drop(proxy);
                    results
                        .lock()
                        .unwrap()
                        .push((i, case, got, hits, t.elapsed()));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut table = String::new();
    for (_, case, got, hits, took) in results {
        let changed: BTreeMap<&str, Status> = got
            .iter()
            .filter(|(id, (st, _))| baseline.get(*id).map(|b| b.0) != Some(*st))
            .map(|(id, (st, _))| (id.as_str(), *st))
            .collect();
        let want: BTreeMap<&str, Status> = case.expect.iter().copied().collect();
        table.push_str(&format!(
            "{:<60} {:>5.1}s  {}\n",
            case.name,
            took.as_secs_f32(),
            changed
                .iter()
                .map(|(id, st)| format!("{id}={st}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        if hits == 0 {
            problems.push(format!(
                "{}: the break never applied ({:?})",
                case.name, case.brk
            ));
        }
        if changed != want {
            let detail: String = changed
                .keys()
                .chain(want.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|id| {
                    let (st, why) = got.get(*id).cloned().unwrap_or((Skip, "?".into()));
                    format!(
                        "    {id}: expected {:?}, got {st} ({why})\n",
                        want.get(id).map(ToString::to_string)
                    )
                })
                .collect();
            problems.push(format!(
                "{}: the checks that changed are not the expected ones\n{detail}",
                case.name
            ));
        }
    }
    (problems, table)
}

#[test]
fn each_break_is_caught_by_the_right_checks_and_no_other() {
    let reg = Registry::start(RegistryOptions::new());
    let cases = cases();
    let (problems, table) = run_table(reg.addr(), None, cases, 6, None);
    eprintln!("{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn broken_authentication_is_caught_by_the_auth_checks() {
    requires_tool!("htpasswd");
    let reg = Registry::start(RegistryOptions::new().user("alice", "pw-broken"));
    let (problems, table) = run_table(
        reg.addr(),
        Some(("alice", "pw-broken")),
        auth_cases(),
        2,
        None,
    );
    eprintln!("{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Breaks of the pull and tags-list answers, caught in a read-only run of an existing image
/// (an index over an image; its layer is pulled by digest, its bytes unknown beforehand).
fn read_only_cases() -> Vec<Case> {
    vec![
        Case {
            name: "read-only: an unknown tag is 403",
            brk: status(m("GET manifests").path_contains("conf-missing-"), 404, 403),
            expect: &[
                ("pull.manifest-unknown-tag", Fail),
                ("pull.manifest-unknown-code", Warn),
            ],
        },
        Case {
            name: "read-only: HEAD of a manifest by tag is 404",
            brk: status(m("HEAD manifests").reference(RefKind::Tag), 200, 404),
            expect: &[
                ("pull.manifest-head-tag", Fail),
                ("pull.manifest-head-headers", Warn),
            ],
        },
        Case {
            name: "read-only: GET of a manifest by digest is 500 after the setup",
            brk: status(
                m("GET manifests").reference(RefKind::Digest).after_setup(),
                200,
                500,
            ),
            expect: &[
                ("pull.manifest-get-digest", Fail),
                ("pull.manifest-content-type-image", Warn),
                ("pull.manifest-content-type-index", Warn),
            ],
        },
        Case {
            name: "read-only: manifests come with a flipped byte after the setup",
            brk: Break::CorruptBody {
                matcher: m("GET manifests").after_setup(),
            },
            expect: &[
                ("pull.manifest-get-tag", Fail),
                ("pull.manifest-get-digest", Fail),
            ],
        },
        Case {
            name: "read-only: blobs come with a flipped byte",
            brk: Break::CorruptBody {
                matcher: m("GET blobs"),
            },
            expect: &[("pull.blob-get", Fail), ("pull.blob-range", Fail)],
        },
        Case {
            name: "read-only: GET of a blob with a wrong Docker-Content-Digest",
            brk: Break::WrongDigest {
                matcher: m("GET blobs"),
            },
            expect: &[("pull.blob-digest-header", Warn)],
        },
        Case {
            name: "read-only: HEAD of a blob is 404",
            brk: status(m("HEAD blobs"), 200, 404),
            expect: &[("pull.blob-head", Fail), ("pull.blob-head-headers", Warn)],
        },
        Case {
            name: "read-only: a partial blob is answered 200",
            brk: status(m("GET blobs"), 206, 200),
            expect: &[("pull.blob-range", Fail)],
        },
        Case {
            name: "read-only: GET of a manifest without Content-Type",
            brk: drop_header(m("GET manifests").after_setup(), "content-type"),
            expect: &[
                ("pull.manifest-content-type-image", Warn),
                ("pull.manifest-content-type-index", Warn),
            ],
        },
        Case {
            name: "read-only: the tag named is missing from the tags list",
            brk: edit(m("GET tags/list").after_setup(), |v| {
                if let Some(t) = tags_of(v) {
                    t.retain(|t| t != "multi");
                }
            }),
            expect: &[("discovery.tags-list", Fail)],
        },
    ]
}

#[test]
fn read_only_breaks_are_caught_by_the_right_pull_checks() {
    let reg = Registry::start(RegistryOptions::new());
    super::read_only::seed(&reg.host(), None);
    let (problems, table) = run_table(reg.addr(), None, read_only_cases(), 4, Some("multi"));
    eprintln!("{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_check_is_proven_able_to_fail() {
    // A check is proven when some break makes it fail or warn (a skip proves nothing).
    let cases: Vec<Case> = cases()
        .into_iter()
        .chain(auth_cases())
        .chain(main_cases())
        .chain(signature_cases())
        .collect();
    let proven: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.expect.iter())
        .filter(|(_, st)| *st != Skip)
        .map(|(id, _)| *id)
        .collect();
    let all: BTreeSet<&str> = berth_conformance::checks::all()
        .iter()
        .map(|c| c.id)
        .collect();
    let unproven: Vec<&&str> = all.difference(&proven).collect();
    assert!(
        unproven.is_empty(),
        "checks no break makes fail: {unproven:?}"
    );
    let unknown: Vec<&&str> = proven.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "the table names unknown checks: {unknown:?}"
    );
}

/// The optional `main` group (run alone): one break per requirement it adds.
fn main_cases() -> Vec<Case> {
    vec![
        Case {
            name: "main: GET of a manifest by digest without Docker-Content-Digest",
            brk: drop_header(
                m("GET manifests").reference(RefKind::Digest),
                "docker-content-digest",
            ),
            expect: &[("main.manifest-digest-header", Fail)],
        },
        Case {
            name: "main: HEAD of a manifest by tag without Docker-Content-Digest",
            brk: drop_header(
                m("HEAD manifests").reference(RefKind::Tag),
                "docker-content-digest",
            ),
            expect: &[("main.manifest-head-headers", Fail)],
        },
        Case {
            name: "main: GET of a blob without Docker-Content-Digest",
            brk: drop_header(m("GET blobs"), "docker-content-digest"),
            expect: &[("main.blob-digest-header", Fail)],
        },
        Case {
            name: "main: HEAD of a blob with a wrong Docker-Content-Digest",
            brk: Break::WrongDigest {
                matcher: m("HEAD blobs"),
            },
            expect: &[("main.blob-head-headers", Fail)],
        },
        Case {
            name: "main: a final chunk out of order on PUT is taken (201)",
            brk: status(m("PUT blobs/uploads"), 416, 201),
            expect: &[("main.put-chunk-out-of-order", Fail)],
        },
        Case {
            name: "main: cancelling an upload answers 202",
            brk: status(m("DELETE blobs/uploads"), 204, 202),
            expect: &[("main.upload-cancel", Warn)],
        },
        Case {
            name: "main: a digest of an unsupported algorithm is taken (201)",
            brk: status(
                m("PUT blobs/uploads").query_contains("digest=berth.unknown-alg:"),
                400,
                201,
            ),
            expect: &[("main.digest-invalid", Warn)],
        },
        Case {
            name: "main: POST ?digest-algorithm=sha512 answers 500",
            brk: status(
                m("POST blobs/uploads").query_contains("digest-algorithm="),
                202,
                500,
            ),
            expect: &[("main.digest-algorithm", Fail)],
        },
        Case {
            name: "main: tags pushed with ?tag= get no OCI-Tag",
            brk: drop_header(m("PUT manifests").query_contains("tag="), "oci-tag"),
            expect: &[
                ("main.manifest-put-tags", Fail),
                ("main.manifest-put-ten-tags", Warn),
            ],
        },
        Case {
            name: "main: ten tag parameters are refused (414)",
            // Only the ten-tag PUT has a ninth tag followed by a tenth.
            brk: status(m("PUT manifests").query_contains("-8&tag="), 201, 414),
            expect: &[("main.manifest-put-ten-tags", Warn)],
        },
        Case {
            name: "main: a tag outlives its deleted manifest",
            brk: status(m("GET manifests").path_contains("conf-untag-"), 404, 200),
            expect: &[("main.delete-manifest-untags", Warn)],
        },
        Case {
            name: "main: OCI-Namespace is not the ns= sent",
            brk: set_header(
                m("GET manifests").query_contains("ns="),
                "oci-namespace",
                "mirror.example",
                true,
            ),
            expect: &[("main.proxy-namespace", Warn)],
        },
    ]
}

#[test]
fn each_main_group_break_is_caught_by_the_right_check() {
    let reg = Registry::start(RegistryOptions::new());
    let (problems, table) =
        run_table_of(reg.addr(), None, main_cases(), 4, None, &[Workflow::Main]);
    eprintln!("{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One break per check of the signatures workflow.
fn signature_cases() -> Vec<Case> {
    vec![
        Case {
            name: "signatures: referrers are listed without artifactType",
            brk: edit(m("GET referrers").query_lacks("artifactType="), |v| {
                for d in referrers_of(v).into_iter().flatten() {
                    if let Some(o) = d.as_object_mut() {
                        o.remove("artifactType");
                    }
                }
            }),
            expect: &[("signatures.referrers-list", Fail)],
        },
        Case {
            name: "signatures: the artifactType filter comes without OCI-Filters-Applied",
            brk: drop_header(
                m("GET referrers").query_contains("artifactType="),
                "oci-filters-applied",
            ),
            expect: &[("signatures.artifact-type-filter", Warn)],
        },
        Case {
            name: "signatures: the sha256-<hex> referrers tag is lost",
            brk: status(
                m("GET manifests").path_contains("/manifests/sha256-"),
                200,
                404,
            ),
            expect: &[("signatures.tag-fallback", Fail)],
        },
        Case {
            name: "signatures: a tag move drops the signature from its image's referrers",
            brk: edit(
                m("GET referrers").after(m("PUT manifests").path_contains("-move")),
                |v| {
                    if let Some(list) = referrers_of(v) {
                        list.clear();
                    }
                },
            ),
            expect: &[("signatures.tag-move", Fail)],
        },
        Case {
            name: "signatures: a deleted signed image still answers 200",
            brk: status(
                m("GET manifests")
                    .reference(RefKind::Digest)
                    .after(m("DELETE manifests")),
                404,
                200,
            ),
            expect: &[("signatures.subject-deleted", Fail)],
        },
    ]
}

#[test]
fn each_signature_break_is_caught_by_the_right_check() {
    let reg = Registry::start(RegistryOptions::new());
    let (problems, table) = run_table_of(
        reg.addr(),
        None,
        signature_cases(),
        3,
        None,
        &[Workflow::Signatures],
    );
    eprintln!("{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
