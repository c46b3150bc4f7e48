//! Faults from a scripted server: wrong content, cut connections, redirects, rate limits,
//! token scopes, refused chunks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_distribution::{BytesSource, ConnectCause, Error, ErrorKind, PlainHttp};
use berth_oci::Digest;

use crate::common::{blob, block_on, client, options, repo, with_user};
use crate::fake_server::{Answer, FakeServer, Request};

const V2: &str = "/v2/";

fn ok_v2(r: &Request) -> Option<Answer> {
    (r.path == V2).then(|| Answer::new(200, &[], b"{}"))
}

#[test]
fn blob_whose_bytes_do_not_match_is_refused() {
    let (digest, data) = blob(1, 64 * 1024);
    let mut wrong = data.clone();
    wrong[1000] ^= 1;
    let blob_path = format!("/v2/app/blobs/{digest}");
    let longer = [data.clone(), b"extra".to_vec()].concat();
    let server = FakeServer::start(move |r, _| {
        if let Some(a) = ok_v2(r) {
            return a;
        }
        if r.path == blob_path && r.header("range").is_none() {
            return Answer::new(200, &[], &wrong);
        }
        Answer::new(404, &[], b"")
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    let mut sink = Vec::new();
    let e = block_on(c.get_blob(&r, &digest, Some(data.len() as u64), &mut sink)).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains(&digest.to_string()), "{e}");
    assert!(e.to_string().contains("does not match its digest"), "{e}");

    // too many bytes: refused as soon as they exceed the expected size
    let server =
        FakeServer::start(move |r, _| ok_v2(r).unwrap_or_else(|| Answer::new(200, &[], &longer)));
    let r = repo(&server.host(), "app");
    let e =
        block_on(c.get_blob(&r, &digest, Some(data.len() as u64), &mut Vec::new())).unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected, .. } if expected == data.len() as u64),
        "{e:?}"
    );
}

/// `get_blob_sink_verifies` hands the bytes over unhashed (the sink verifies: berth's layout
/// and store writers), but keeps `get_blob`'s size check.
#[test]
fn blob_for_a_verifying_sink_is_not_hashed_but_its_size_is_checked() {
    let (digest, data) = blob(2, 64 * 1024);
    let mut wrong = data.clone();
    wrong[1000] ^= 1;
    let longer = [data.clone(), b"extra".to_vec()].concat();
    let served = wrong.clone();
    let server =
        FakeServer::start(move |r, _| ok_v2(r).unwrap_or_else(|| Answer::new(200, &[], &served)));
    let c = client(options());
    let r = repo(&server.host(), "app");
    let mut sink = Vec::new();
    let n = block_on(c.get_blob_sink_verifies(&r, &digest, Some(data.len() as u64), &mut sink))
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(sink, wrong, "the bytes reach the sink as served");
    assert_ne!(
        Digest::sha256_of(&sink),
        digest,
        "the sink's check is what refuses them"
    );

    let server =
        FakeServer::start(move |r, _| ok_v2(r).unwrap_or_else(|| Answer::new(200, &[], &longer)));
    let r = repo(&server.host(), "app");
    let e =
        block_on(c.get_blob_sink_verifies(&r, &digest, Some(data.len() as u64), &mut Vec::new()))
            .unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected, .. } if expected == data.len() as u64),
        "{e:?}"
    );
}

#[test]
fn manifest_whose_bytes_do_not_match_is_refused() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let other =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":1}"#;
    let digest = Digest::sha256_of(body);
    let header_digest = digest.to_string();
    let server = FakeServer::start(move |r, _| {
        ok_v2(r).unwrap_or_else(|| {
            Answer::new(
                200,
                &[
                    ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                    ("docker-content-digest", &header_digest),
                ],
                other,
            )
        })
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    // by digest
    let e = block_on(c.get_manifest(&r, digest.as_str(), &[])).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
    // by tag, against Docker-Content-Digest
    let e = block_on(c.get_manifest(&r, "latest", &[])).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
    // the default Accept lists OCI and Docker types
    let accept = server
        .requests()
        .last()
        .unwrap()
        .header("accept")
        .unwrap()
        .to_owned();
    for t in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ] {
        assert!(accept.contains(t), "{accept}");
    }
}

#[test]
fn authorization_is_not_forwarded_on_a_redirect_to_another_host() {
    let (digest, data) = blob(2, 10_000);
    let storage = FakeServer::start(move |_, _| Answer::new(200, &[], &data));
    // `localhost` is another host than `127.0.0.1`, though both are this machine.
    let location = format!(
        "http://localhost:{}/bucket/blob?sig=abc",
        storage.addr.port()
    );
    let registry = FakeServer::start(move |r, _| {
        if r.header("authorization").is_none() {
            return Answer::new(401, &[("www-authenticate", r#"Basic realm="test""#)], b"");
        }
        ok_v2(r).unwrap_or_else(|| Answer::new(307, &[("location", &location)], b""))
    });
    let c = client(with_user(options(), &registry.host(), "alice", "secret"));
    let r = repo(&registry.host(), "app");
    let mut out = Vec::new();
    block_on(c.get_blob(&r, &digest, Some(10_000), &mut out)).unwrap();
    assert_eq!(Digest::sha256_of(&out), digest);
    let reg = registry.requests();
    assert!(reg.iter().any(|q| {
        q.header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    }));
    let st = storage.requests();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].path, "/bucket/blob?sig=abc");
    assert_eq!(
        st[0].header("authorization"),
        None,
        "credentials leaked to the storage host"
    );
}

#[test]
fn rate_limits_and_unavailability_are_retried_other_4xx_are_not() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let server = FakeServer::start(move |r, _| {
        if let Some(a) = ok_v2(r) {
            return a;
        }
        let n = r.path.as_str();
        if n.ends_with("/manifests/flaky") {
            // count the manifest requests seen so far via a header the client never sends
            return Answer::new(
                200,
                &[("content-type", "application/vnd.oci.image.index.v1+json")],
                body,
            );
        }
        if n.ends_with("/manifests/missing") {
            return Answer::new(
                404,
                &[],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            );
        }
        if n.ends_with("/manifests/limited") {
            return Answer::new(429, &[("retry-after", "3600")], b"");
        }
        Answer::new(400, &[], b"")
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    let m = block_on(c.get_manifest(&r, "flaky", &[])).unwrap();
    assert_eq!(m.media_type, "application/vnd.oci.image.index.v1+json");

    let e = block_on(c.get_manifest(&r, "missing", &[])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.codes()[0].code, "MANIFEST_UNKNOWN");
    assert!(
        e.to_string().contains("MANIFEST_UNKNOWN: manifest unknown"),
        "{e}"
    );
    let count = |suffix: &str| {
        server
            .requests()
            .iter()
            .filter(|q| q.path.ends_with(suffix))
            .count()
    };
    assert_eq!(count("/manifests/missing"), 1, "a 404 is not retried");

    let e = block_on(c.get_manifest(&r, "limited", &[])).unwrap_err();
    assert!(
        matches!(e, Error::TooManyRequests { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{e:?}"
    );
    assert_eq!(
        count("/manifests/limited"),
        1,
        "a Retry-After beyond the limit is not waited for"
    );
    assert!(e.hint().is_some());
}

#[test]
fn retry_after_and_5xx_are_retried_with_backoff() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let server = FakeServer::start(move |r, _| {
        if let Some(a) = ok_v2(r) {
            return a;
        }
        match s.fetch_add(1, Ordering::SeqCst) {
            0 => Answer::new(429, &[("retry-after", "0")], b""),
            1 => Answer::new(503, &[], b""),
            2 => Answer::new(502, &[], b""),
            _ => Answer::new(
                200,
                &[("content-type", "application/vnd.oci.image.index.v1+json")],
                body,
            ),
        }
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    block_on(c.get_manifest(&r, "v1", &[])).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 4);

    // the attempts are bounded
    let server = FakeServer::start(|r, _| ok_v2(r).unwrap_or_else(|| Answer::new(503, &[], b"")));
    let r = repo(&server.host(), "app");
    let e = block_on(c.get_manifest(&r, "v1", &[])).unwrap_err();
    assert_eq!(e.status(), Some(503));
    let manifest_requests = server.requests().iter().filter(|q| q.path != V2).count();
    assert_eq!(manifest_requests, options().retry.max_attempts as usize);
}

#[test]
fn a_cut_download_resumes_with_range() {
    let (digest, data) = blob(3, 1 << 20);
    let total = data.len();
    let half = 300 * 1024;
    let d2 = data.clone();
    let server = FakeServer::start(move |r, _| {
        if let Some(a) = ok_v2(r) {
            return a;
        }
        match r.header("range") {
            None => Answer::cut(200, &[], total, &d2[..half]),
            Some(range) => {
                let start: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                let cr = format!("bytes {start}-{}/{total}", total - 1);
                Answer::new(206, &[("content-range", &cr)], &d2[start..])
            }
        }
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    let mut out = Vec::new();
    let n = block_on(c.get_blob(&r, &digest, Some(total as u64), &mut out)).unwrap();
    assert_eq!(n, total as u64);
    assert_eq!(out, data);
    let ranges: Vec<Option<String>> = server
        .requests()
        .iter()
        .filter(|q| q.path.contains("/blobs/"))
        .map(|q| q.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    let resumed_at: usize = ranges[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(resumed_at > 0 && resumed_at <= half, "{resumed_at}");
}

#[test]
fn a_resume_answered_with_the_wrong_range_is_refused() {
    let (digest, data) = blob(4, 200_000);
    let d2 = data.clone();
    let server = FakeServer::start(move |r, _| {
        if let Some(a) = ok_v2(r) {
            return a;
        }
        match r.header("range") {
            None => Answer::cut(200, &[], 200_000, &d2[..50_000]),
            Some(_) => Answer::new(206, &[("content-range", "bytes 0-199999/200000")], &d2),
        }
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    let e = block_on(c.get_blob(&r, &digest, Some(200_000), &mut Vec::new())).unwrap_err();
    assert!(matches!(e, Error::InvalidResponse { .. }), "{e:?}");
    assert!(e.to_string().contains("does not continue"), "{e}");

    // a server that ignores Range (200 from the start) is fine: the prefix is skipped
    let d3 = data.clone();
    let server = FakeServer::start(move |r, i| {
        ok_v2(r).unwrap_or_else(|| {
            if i <= 1 {
                Answer::cut(200, &[], 200_000, &d3[..70_000])
            } else {
                Answer::new(200, &[], &d3)
            }
        })
    });
    let r = repo(&server.host(), "app");
    let mut out = Vec::new();
    block_on(c.get_blob(&r, &digest, Some(200_000), &mut out)).unwrap();
    assert_eq!(out, data);
}

#[test]
fn mount_tokens_cover_both_repositories_and_are_cached() {
    let realm_host = Arc::new(std::sync::OnceLock::<String>::new());
    let rh = realm_host.clone();
    let server = FakeServer::start(move |r, _| {
        let realm = format!("http://{}/token", rh.get().unwrap());
        if r.path.starts_with("/token") {
            let both = r.path.contains("repository%3Aapp%3Apull%2Cpush")
                && r.path.contains("repository%3Asrc%3Apull");
            let token = if both { "wide" } else { "narrow" };
            return Answer::new(
                200,
                &[],
                format!(r#"{{"token":"{token}","expires_in":300}}"#).as_bytes(),
            );
        }
        let challenge = |extra: &str| format!(r#"Bearer realm="{realm}",service="fake"{extra}"#);
        match r.header("authorization") {
            None => Answer::new(401, &[("www-authenticate", &challenge(""))], b""),
            Some("Bearer narrow") => Answer::new(
                401,
                &[(
                    "www-authenticate",
                    &challenge(
                        r#",scope="repository:app:pull,push repository:src:pull",error="insufficient_scope""#,
                    ),
                )],
                b"",
            ),
            Some("Bearer wide") => Answer::new(201, &[], b""),
            Some(_) => Answer::new(
                401,
                &[("www-authenticate", &challenge(r#",error="invalid_token""#))],
                b"",
            ),
        }
    });
    realm_host.set(server.host()).unwrap();
    let c = client(options());
    let r = repo(&server.host(), "app");
    let d = Digest::sha256_of(b"x");
    block_on(async {
        for _ in 0..3 {
            assert!(c.mount_blob(&r, &d, "src").await.unwrap());
        }
    });
    // a mount asks for push on the target and pull on the source at once, and the token is
    // fetched once and reused
    let tokens: Vec<String> = server
        .requests()
        .iter()
        .filter(|q| q.path.starts_with("/token"))
        .map(|q| q.path.clone())
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens[0].contains("service=fake"), "{tokens:?}");
    let unauthenticated = server
        .requests()
        .iter()
        .filter(|q| q.header("authorization").is_none())
        .count();
    assert_eq!(
        unauthenticated, 2,
        "only the first mount and the token request go without a token"
    );
}

#[test]
fn insufficient_scope_from_the_registry_widens_a_narrow_token() {
    let realm_host = Arc::new(std::sync::OnceLock::<String>::new());
    let rh = realm_host.clone();
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let server = FakeServer::start(move |r, _| {
        let realm = format!("http://{}/token", rh.get().unwrap());
        if r.path.starts_with("/token") {
            let wide = r.path.contains("repository%3Aextra%3Apull");
            let token = if wide { "wide" } else { "narrow" };
            return Answer::new(
                200,
                &[],
                format!(r#"{{"access_token":"{token}"}}"#).as_bytes(),
            );
        }
        let challenge = |extra: &str| format!(r#"Bearer realm="{realm}",service="fake"{extra}"#);
        match r.header("authorization") {
            None => Answer::new(
                401,
                &[(
                    "www-authenticate",
                    &challenge(r#",scope="repository:app:pull""#),
                )],
                b"",
            ),
            Some("Bearer narrow") => Answer::new(
                401,
                &[(
                    "www-authenticate",
                    &challenge(
                        r#",scope="repository:app:pull repository:extra:pull",error="insufficient_scope""#,
                    ),
                )],
                b"",
            ),
            Some(_) => Answer::new(
                200,
                &[("content-type", "application/vnd.oci.image.index.v1+json")],
                body,
            ),
        }
    });
    realm_host.set(server.host()).unwrap();
    let c = client(options());
    let r = repo(&server.host(), "app");
    block_on(c.get_manifest(&r, "v1", &[])).unwrap();
    let tokens: Vec<String> = server
        .requests()
        .iter()
        .filter(|q| q.path.starts_with("/token"))
        .map(|q| q.path.clone())
        .collect();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert!(!tokens[0].contains("extra"));
    assert!(
        tokens[1].contains("scope=repository%3Aextra%3Apull"),
        "{tokens:?}"
    );
}

#[test]
fn a_refused_chunk_resumes_where_the_registry_is() {
    let (digest, data) = blob(5, 100 * 1024);
    let d2 = data.clone();
    let patches = Arc::new(AtomicUsize::new(0));
    let p2 = patches.clone();
    let server = FakeServer::start(move |r, _| {
        if let Some(a) = ok_v2(r) {
            return a;
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("HEAD", _) => Answer::new(404, &[], b""),
            ("POST", _) => Answer::new(202, &[("location", "/upload/1?state=0")], b""),
            ("PATCH", _) => {
                let cr = r.header("content-range").unwrap();
                let (s, e) = cr.split_once('-').unwrap();
                let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
                assert_eq!(r.body, d2[s..=e], "chunk {cr} carries the right bytes");
                if p2.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Answer::new(416, &[], b"");
                }
                Answer::new(
                    202,
                    &[
                        ("location", "/upload/1?state=2"),
                        ("range", &format!("0-{e}")),
                    ],
                    b"",
                )
            }
            // the registry kept only the first 32 KiB of the refused chunk
            ("GET", p) if p.starts_with("/upload/1") => Answer::new(
                204,
                &[("location", "/upload/1?state=1"), ("range", "0-32767")],
                b"",
            ),
            ("PUT", p) => {
                assert!(p.starts_with("/upload/1?state=2&digest=sha256%3A"), "{p}");
                assert!(r.body.is_empty());
                Answer::new(201, &[], b"")
            }
            _ => Answer::new(400, &[], b""),
        }
    });
    let mut opts = options();
    opts.monolithic_max = 1024;
    opts.chunk_size = 64 * 1024;
    let c = client(opts);
    let r = repo(&server.host(), "app");
    let pushed = block_on(c.push_blob(
        &r,
        &digest,
        data.len() as u64,
        BytesSource(data.clone().into()),
    ))
    .unwrap();
    assert_eq!(pushed, berth_distribution::BlobPush::Uploaded);
    let ranges: Vec<String> = server
        .requests()
        .iter()
        .filter(|q| q.method == "PATCH")
        .map(|q| q.header("content-range").unwrap().to_owned())
        .collect();
    assert_eq!(ranges, ["0-65535", "32768-98303", "98304-102399"]);
}

#[test]
fn a_source_shorter_than_its_size_fails_without_retrying() {
    let (digest, data) = blob(6, 4096);
    let server = FakeServer::start(move |r, _| {
        ok_v2(r).unwrap_or_else(|| match r.method.as_str() {
            "HEAD" => Answer::new(404, &[], b""),
            "POST" => Answer::new(202, &[("location", "/upload/1")], b""),
            _ => Answer::new(201, &[], b""),
        })
    });
    let c = client(options());
    let r = repo(&server.host(), "app");
    let e = block_on(c.push_blob(&r, &digest, 10_000, BytesSource(data.into()))).unwrap_err();
    assert!(matches!(e, Error::Source { .. }), "{e:?}");
}

#[test]
fn https_only_against_a_plain_server_gives_the_plain_http_hint() {
    let server = FakeServer::start(|_, _| Answer::new(200, &[], b"{}"));
    let c = client(berth_distribution::ClientOptions {
        plain_http: PlainHttp::Never,
        ..options()
    });
    let e = block_on(c.ping(&server.host())).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Connect {
                cause: ConnectCause::PlainHttpServer,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.hint().unwrap(),
        "hint: the registry speaks plain HTTP; add --plain-http"
    );
    assert!(server.requests().is_empty());
    // Auto falls back to plain HTTP on loopback
    block_on(client(options()).ping(&server.host())).unwrap();
}
