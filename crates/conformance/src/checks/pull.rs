//! Pull: manifests and blobs by tag and digest, `HEAD` and `GET`, their headers, `Range`,
//! and the `404`s (with error codes) for what does not exist.

use http::Method;

use super::{ACCEPT_MANIFESTS, Check, CheckResult, check, ensure, media_type, need_setup};
use crate::data::{Manifest, random_hex};
use crate::existing::{Content, PullTarget, RANGE_MIN};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req, Resp};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "pull.api-base",
            Pull,
            Must,
            "determining-support",
            "GET /v2/ answers 200: the registry implements the spec",
            api_base
        ),
        check!(
            "pull.manifest-get-tag",
            Pull,
            Must,
            "pulling-manifests",
            "GET a manifest by tag: 200 and the exact bytes pushed",
            manifest_get_tag
        ),
        check!(
            "pull.manifest-get-digest",
            Pull,
            Must,
            "pulling-manifests",
            "GET a manifest by digest: 200 and the exact bytes pushed",
            manifest_get_digest
        ),
        check!(
            "pull.manifest-head-tag",
            Pull,
            Must,
            "checking-if-content-exists-in-the-registry",
            "HEAD a manifest by tag: 200",
            manifest_head_tag
        ),
        check!(
            "pull.manifest-head-digest",
            Pull,
            Must,
            "checking-if-content-exists-in-the-registry",
            "HEAD a manifest by digest: 200",
            manifest_head_digest
        ),
        check!(
            "pull.manifest-digest-header",
            Pull,
            Should,
            "pulling-manifests",
            "GET a manifest: Docker-Content-Digest is the manifest's digest",
            manifest_digest_header
        ),
        check!(
            "pull.manifest-head-headers",
            Pull,
            Should,
            "checking-if-content-exists-in-the-registry",
            "HEAD a manifest: Docker-Content-Digest and Content-Length of the manifest",
            manifest_head_headers
        ),
        check!(
            "pull.manifest-content-type-image",
            Pull,
            Should,
            "pulling-manifests",
            "GET an image manifest: Content-Type is the media type it was pushed with",
            content_type_image
        ),
        check!(
            "pull.manifest-content-type-index",
            Pull,
            Should,
            "pulling-manifests",
            "GET an image index: Content-Type is the media type it was pushed with",
            content_type_index
        ),
        check!(
            "pull.manifest-unknown-tag",
            Pull,
            Must,
            "pulling-manifests",
            "GET a manifest by an unknown tag: 404",
            manifest_unknown_tag
        ),
        check!(
            "pull.manifest-unknown-code",
            Pull,
            Should,
            "error-codes",
            "GET a manifest by an unknown tag: the error code is MANIFEST_UNKNOWN",
            manifest_unknown_code
        ),
        check!(
            "pull.manifest-unknown-digest",
            Pull,
            Must,
            "pulling-manifests",
            "GET and HEAD a manifest by an unknown digest: 404",
            manifest_unknown_digest
        ),
        check!(
            "pull.repository-unknown",
            Pull,
            Must,
            "pushing-manifests",
            "GET a manifest of a repository that does not exist: 404",
            repository_unknown
        ),
        check!(
            "pull.repository-unknown-code",
            Pull,
            Should,
            "error-codes",
            "GET a manifest of a repository that does not exist: the error code is NAME_UNKNOWN or MANIFEST_UNKNOWN",
            repository_unknown_code
        ),
        check!(
            "pull.blob-get",
            Pull,
            Must,
            "pulling-blobs",
            "GET a blob: 200 and its exact bytes",
            blob_get
        ),
        check!(
            "pull.blob-digest-header",
            Pull,
            Should,
            "pulling-blobs",
            "GET a blob: Docker-Content-Digest is the blob's digest",
            blob_digest_header
        ),
        check!(
            "pull.blob-head",
            Pull,
            Must,
            "checking-if-content-exists-in-the-registry",
            "HEAD a blob: 200 and no body",
            blob_head
        ),
        check!(
            "pull.blob-head-headers",
            Pull,
            Should,
            "checking-if-content-exists-in-the-registry",
            "HEAD a blob: Content-Length and Docker-Content-Digest of the blob",
            blob_head_headers
        ),
        check!(
            "pull.blob-unknown",
            Pull,
            Must,
            "pulling-blobs",
            "GET and HEAD an unknown blob: 404",
            blob_unknown
        ),
        check!(
            "pull.blob-unknown-code",
            Pull,
            Should,
            "error-codes",
            "GET an unknown blob: the error code is BLOB_UNKNOWN",
            blob_unknown_code
        ),
        check!(
            "pull.blob-range",
            Pull,
            May,
            "pulling-blobs",
            "GET a blob with Range: 206 with the bytes asked for and Content-Range",
            blob_range
        ),
    ]
}

async fn api_base(c: &mut Ctx) -> CheckResult {
    c.send(Req::new(Method::GET, "/v2/"))
        .await?
        .expect_status(&[200])?;
    Ok(Verdict::Pass)
}

pub(super) async fn get_manifest(c: &mut Ctx, reference: &str) -> Result<Resp, Verdict> {
    let path = c.path(&format!("manifests/{reference}"));
    c.send(Req::new(Method::GET, path).header("accept", ACCEPT_MANIFESTS))
        .await
}

pub(super) async fn head_manifest(c: &mut Ctx, reference: &str) -> Result<Resp, Verdict> {
    let path = c.path(&format!("manifests/{reference}"));
    c.send(Req::new(Method::HEAD, path).header("accept", ACCEPT_MANIFESTS))
        .await
}

pub(super) fn same_bytes(r: &Resp, m: &Manifest) -> Result<(), Verdict> {
    ensure(r.body() == &m.blob.data, || {
        format!(
            "{}: the body ({} bytes) is not the manifest pushed ({} bytes, {})",
            r.what,
            r.body().len(),
            m.blob.size(),
            m.digest()
        )
    })
}

/// The tag the target is pulled by; Err(not run) when it was named by digest.
fn need_tag(t: &PullTarget) -> Result<String, Verdict> {
    t.tag.clone().ok_or_else(|| {
        Verdict::NotRun("the content checked was named by digest: there is no tag to pull".into())
    })
}

async fn manifest_get_tag(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let r = get_manifest(c, &need_tag(&t)?).await?;
    r.expect_status(&[200])?;
    t.tagged.same_as(&r, r.body())?;
    Ok(Verdict::Pass)
}

async fn manifest_get_digest(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let r = get_manifest(c, t.image.digest.as_str()).await?;
    r.expect_status(&[200])?;
    t.image.same_as(&r, r.body())?;
    Ok(Verdict::Pass)
}

async fn manifest_head_tag(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let r = head_manifest(c, &need_tag(&t)?).await?;
    r.expect_status(&[200])?;
    Ok(Verdict::Pass)
}

async fn manifest_head_digest(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    head_manifest(c, t.image.digest.as_str())
        .await?
        .expect_status(&[200])?;
    Ok(Verdict::Pass)
}

pub(super) fn digest_header(r: &Resp, want: &str) -> Result<(), Verdict> {
    let got = r.require("docker-content-digest")?;
    ensure(got == want, || {
        format!(
            "{}: Docker-Content-Digest is {got}, expected {want}",
            r.what
        )
    })
}

/// The reference a manifest's headers are checked on (its tag, else its digest), and the
/// manifest it names.
fn named(t: &PullTarget) -> (String, &Content) {
    match &t.tag {
        Some(tag) => (tag.clone(), &t.tagged),
        None => (t.tagged.digest.to_string(), &t.tagged),
    }
}

async fn manifest_digest_header(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let (reference, m) = named(&t);
    let r = get_manifest(c, &reference).await?;
    r.expect_status(&[200])?;
    digest_header(&r, m.digest.as_str())?;
    Ok(Verdict::Pass)
}

pub(super) fn length_header(r: &Resp, want: u64) -> Result<(), Verdict> {
    let got = r.require("content-length")?;
    ensure(got == want.to_string(), || {
        format!("{}: Content-Length is {got}, expected {want}", r.what)
    })
}

async fn manifest_head_headers(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let (reference, m) = named(&t);
    let r = head_manifest(c, &reference).await?;
    r.expect_status(&[200])?;
    digest_header(&r, m.digest.as_str())?;
    length_header(&r, m.size)?;
    Ok(Verdict::Pass)
}

async fn content_type(c: &mut Ctx, m: &Content) -> CheckResult {
    let want = m.media_type.as_str();
    if want.is_empty() {
        return Err(Verdict::NotRun(format!(
            "the manifest {} declares no mediaType: nothing to compare Content-Type with",
            m.digest
        )));
    }
    let r = get_manifest(c, m.digest.as_str()).await?;
    r.expect_status(&[200])?;
    let got = r.require("content-type")?;
    ensure(media_type(got) == want, || {
        format!("{}: Content-Type is {got}, expected {want}", r.what)
    })?;
    Ok(Verdict::Pass)
}

async fn content_type_image(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    content_type(c, &t.image).await
}

async fn content_type_index(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let index = t.need(&t.index, "image index")?;
    content_type(c, index).await
}

/// `expected 404 CODE, got …` unless `r` carries `code` (or one of `codes`).
pub(super) fn expect_code(r: &Resp, codes: &[&str]) -> Result<(), Verdict> {
    let got = r.error_codes();
    ensure(got.iter().any(|g| codes.contains(&g.as_str())), || {
        format!(
            "{}: expected {} {}, got {}",
            r.what,
            r.status(),
            codes.join(" or "),
            r.summary()
        )
    })
}

fn unknown_tag() -> String {
    format!("conf-missing-{}", random_hex(6))
}

async fn manifest_unknown_tag(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    get_manifest(c, &unknown_tag())
        .await?
        .expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn manifest_unknown_code(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let r = get_manifest(c, &unknown_tag()).await?;
    r.expect_status(&[404])?;
    expect_code(&r, &["MANIFEST_UNKNOWN"])?;
    Ok(Verdict::Pass)
}

fn unknown_digest() -> String {
    format!("sha256:{}", random_hex(32))
}

async fn manifest_unknown_digest(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let d = unknown_digest();
    get_manifest(c, &d).await?.expect_status(&[404])?;
    head_manifest(c, &d).await?.expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn get_in_unknown_repo(c: &mut Ctx) -> Result<Resp, Verdict> {
    let path = format!("/v2/{}/missing-{}/manifests/latest", c.repo, random_hex(6));
    c.send(Req::new(Method::GET, path).header("accept", ACCEPT_MANIFESTS))
        .await
}

async fn repository_unknown(c: &mut Ctx) -> CheckResult {
    get_in_unknown_repo(c).await?.expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn repository_unknown_code(c: &mut Ctx) -> CheckResult {
    let r = get_in_unknown_repo(c).await?;
    r.expect_status(&[404])?;
    expect_code(&r, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"])?;
    Ok(Verdict::Pass)
}

pub(super) async fn get_blob(c: &mut Ctx, method: Method, digest: &str) -> Result<Resp, Verdict> {
    let path = c.path(&format!("blobs/{digest}"));
    c.send(Req::new(method, path)).await
}

/// The blob the blob checks pull; Err(not run) when the content has none small enough.
fn need_blob(t: &PullTarget) -> Result<Content, Verdict> {
    t.need(&t.blob, "blob of at most 4 MiB").cloned()
}

async fn blob_get(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let blob = need_blob(&t)?;
    let r = get_blob(c, Method::GET, blob.digest.as_str()).await?;
    r.expect_status(&[200])?;
    blob.same_as(&r, r.body())?;
    Ok(Verdict::Pass)
}

async fn blob_digest_header(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let d = need_blob(&t)?.digest.to_string();
    let r = get_blob(c, Method::GET, &d).await?;
    r.expect_status(&[200])?;
    digest_header(&r, &d)?;
    Ok(Verdict::Pass)
}

async fn blob_head(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let d = need_blob(&t)?.digest.to_string();
    let r = get_blob(c, Method::HEAD, &d).await?;
    r.expect_status(&[200])?;
    ensure(r.body().is_empty(), || {
        format!("{}: a HEAD response with a body", r.what)
    })?;
    Ok(Verdict::Pass)
}

async fn blob_head_headers(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let blob = need_blob(&t)?;
    let r = get_blob(c, Method::HEAD, blob.digest.as_str()).await?;
    r.expect_status(&[200])?;
    length_header(&r, blob.size)?;
    digest_header(&r, blob.digest.as_str())?;
    Ok(Verdict::Pass)
}

async fn blob_unknown(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let d = unknown_digest();
    get_blob(c, Method::GET, &d).await?.expect_status(&[404])?;
    get_blob(c, Method::HEAD, &d).await?.expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn blob_unknown_code(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let r = get_blob(c, Method::GET, &unknown_digest()).await?;
    r.expect_status(&[404])?;
    expect_code(&r, &["BLOB_UNKNOWN"])?;
    Ok(Verdict::Pass)
}

async fn blob_range(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let blob = need_blob(&t)?;
    if blob.size < RANGE_MIN {
        return Err(Verdict::NotRun(format!(
            "the blob {} has {} bytes: too small for a range of bytes 10-99",
            blob.digest, blob.size
        )));
    }
    let data = match &blob.data {
        Some(d) => d.clone(),
        None => {
            // An existing blob: read it whole first, to compare the range with.
            let r = get_blob(c, Method::GET, blob.digest.as_str()).await?;
            r.expect_status(&[200])?;
            blob.same_as(&r, r.body())?;
            r.body().clone()
        }
    };
    let path = c.path(&format!("blobs/{}", blob.digest));
    let r = c
        .send(Req::new(Method::GET, path).header("range", "bytes=10-99"))
        .await?;
    if r.status() == 200 {
        // Ignoring Range is allowed, but a 200 is the whole blob: a part of it under 200
        // is a wrong answer, not an unsupported feature.
        ensure(r.body() == &data, || {
            format!(
                "{}: 200 with {} bytes that are not the whole blob ({} bytes)",
                r.what,
                r.body().len(),
                blob.size
            )
        })?;
        return Ok(Verdict::Unsupported(format!(
            "{}: Range ignored (200 with the whole blob)",
            r.what
        )));
    }
    r.expect_status(&[206])?;
    let want_range = format!("bytes 10-99/{}", blob.size);
    let got = r.require("content-range")?;
    ensure(got == want_range, || {
        format!("{}: Content-Range is {got}, expected {want_range}", r.what)
    })?;
    ensure(r.body().as_ref() == &data[10..100], || {
        format!(
            "{}: the body ({} bytes) is not bytes 10-99 of the blob",
            r.what,
            r.body().len()
        )
    })?;
    Ok(Verdict::Pass)
}
