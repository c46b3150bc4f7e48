//! Push: blob uploads (POST then PUT, single POST, chunks and their order, status),
//! cross-repository mounts, manifests (tag, digest, exact bytes, size, invalid ones), and
//! the digests that must be refused.

use bytes::Bytes;
use http::Method;

use super::pull::{expect_code, get_manifest, same_bytes};
use super::{Check, CheckResult, check, ensure, need_setup};
use crate::data::{
    Blob, Manifest, OCI_CONFIG, OCI_MANIFEST, image_manifest, random_bytes, random_hex,
};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req, Resp, with_query};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "push.blob-post-put",
            Push,
            Must,
            "post-then-put",
            "POST then PUT a blob: 202 with Location, then 201 with Location",
            blob_post_put
        ),
        check!(
            "push.blob-location",
            Push,
            Must,
            "post-then-put",
            "the Location of an uploaded blob is pullable: 200 and the blob's bytes",
            blob_location
        ),
        check!(
            "push.blob-single-post",
            Push,
            May,
            "single-post",
            "POST a whole blob with ?digest=: 201 with Location (or 202 to fall back to POST then PUT)",
            blob_single_post
        ),
        check!(
            "push.blob-chunked",
            Push,
            Must,
            "pushing-a-blob-in-chunks",
            "PATCH chunks with Content-Range: 202 with Location and Range each, PUT closes with 201",
            blob_chunked
        ),
        check!(
            "push.chunk-out-of-order",
            Push,
            Must,
            "pushing-a-blob-in-chunks",
            "PATCH a chunk that does not start where the last ended: 416",
            chunk_out_of_order
        ),
        check!(
            "push.chunk-resent",
            Push,
            Must,
            "pushing-a-blob-in-chunks",
            "PATCH the previous chunk again: 416",
            chunk_resent
        ),
        check!(
            "push.upload-status",
            Push,
            Must,
            "pushing-a-blob-in-chunks",
            "GET an upload's Location: 204 with Location and Range 0-<end>",
            upload_status
        ),
        check!(
            "push.upload-unknown",
            Push,
            Must,
            "endpoints",
            "GET the status of an upload that does not exist: 404",
            upload_unknown
        ),
        check!(
            "push.upload-cancel",
            Push,
            May,
            "endpoints",
            "DELETE an upload session: 204, then its status is 404",
            upload_cancel
        ),
        check!(
            "push.digest-mismatch",
            Push,
            Must,
            "post-then-put",
            "PUT closing an upload with a digest that is not the content's: 400 DIGEST_INVALID",
            digest_mismatch
        ),
        check!(
            "push.blob-empty",
            Push,
            Should,
            "post-then-put",
            "upload an empty (0-byte) blob, then GET it: 200 with no bytes",
            blob_empty
        ),
        check!(
            "push.blob-sha512",
            Push,
            May,
            "post-then-put",
            "upload a blob under a sha512 digest and GET it back",
            blob_sha512
        ),
        check!(
            "push.mount",
            Push,
            May,
            "mounting-a-blob-from-another-repository",
            "POST ?mount=&from= of a blob in another repository: 201 with Location, blob pullable",
            mount
        ),
        check!(
            "push.mount-fallback",
            Push,
            Should,
            "mounting-a-blob-from-another-repository",
            "POST ?mount=&from= of a blob that does not exist: 202 with Location (an upload session)",
            mount_fallback
        ),
        check!(
            "push.manifest-put-tag",
            Push,
            Must,
            "pushing-manifests",
            "PUT a manifest by tag: 201 with Location; GET returns the exact bytes",
            manifest_put_tag
        ),
        check!(
            "push.manifest-put-digest",
            Push,
            Must,
            "pushing-manifests",
            "PUT a manifest by digest: 201 with Location",
            manifest_put_digest
        ),
        check!(
            "push.manifest-digest-header",
            Push,
            Should,
            "pushing-manifests",
            "PUT a manifest: Docker-Content-Digest is the manifest's digest",
            manifest_digest_header
        ),
        check!(
            "push.manifest-no-layers",
            Push,
            Must,
            "pushing-manifests",
            "PUT an image manifest with no layers: 201",
            manifest_no_layers
        ),
        check!(
            "push.manifest-4mib",
            Push,
            Should,
            "pushing-manifests",
            "PUT a manifest of 4 MiB: 201, and GET returns it",
            manifest_4mib
        ),
        check!(
            "push.manifest-invalid",
            Push,
            Should,
            "error-codes",
            "PUT a manifest that is not JSON: 400 MANIFEST_INVALID",
            manifest_invalid
        ),
        check!(
            "push.manifest-blob-unknown",
            Push,
            May,
            "pushing-manifests",
            "PUT a manifest whose layer does not exist: accepted, or 400 MANIFEST_BLOB_UNKNOWN",
            manifest_blob_unknown
        ),
        check!(
            "push.name-max-length",
            Push,
            Should,
            "pulling-manifests",
            "push to a repository whose <host>/<name> is 255 characters long",
            name_max_length
        ),
    ]
}

pub(super) async fn post(c: &mut Ctx, repo: &str) -> Result<String, Verdict> {
    let r = c
        .send(Req::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")))
        .await?;
    r.expect_status(&[202])?;
    r.location()
}

pub(super) async fn put_close(
    c: &mut Ctx,
    loc: &str,
    digest: &str,
    body: Bytes,
) -> Result<Resp, Verdict> {
    let mut req = Req::new(Method::PUT, with_query(loc, "digest", digest));
    if !body.is_empty() {
        req = req
            .header("content-type", "application/octet-stream")
            .body(body);
    }
    c.send(req).await
}

pub(super) async fn patch(
    c: &mut Ctx,
    loc: &str,
    data: &[u8],
    start: usize,
) -> Result<Resp, Verdict> {
    let end = start + data.len() - 1;
    c.send(
        Req::new(Method::PATCH, loc.to_owned())
            .header("content-type", "application/octet-stream")
            .header("content-range", &format!("{start}-{end}"))
            .body(Bytes::copy_from_slice(data)),
    )
    .await
}

pub(super) async fn pull_blob(c: &mut Ctx, repo: &str, blob: &Blob) -> Result<(), Verdict> {
    let r = c
        .send(Req::new(
            Method::GET,
            format!("/v2/{repo}/blobs/{}", blob.digest),
        ))
        .await?;
    r.expect_status(&[200])?;
    ensure(r.body() == &blob.data, || {
        format!(
            "{}: {} bytes that are not the blob pushed ({} bytes)",
            r.what,
            r.body().len(),
            blob.size()
        )
    })
}

async fn blob_post_put(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(1500);
    let repo = c.repo.clone();
    let loc = post(c, &repo).await?;
    let r = put_close(c, &loc, blob.digest.as_str(), blob.data.clone()).await?;
    r.expect_status(&[201])?;
    c.pushed_blobs.push((repo.clone(), blob.digest.to_string()));
    r.require("location")?;
    pull_blob(c, &repo, &blob).await?;
    Ok(Verdict::Pass)
}

async fn blob_location(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(700);
    let repo = c.repo.clone();
    let loc = c.upload(&repo, &blob).await?;
    let r = c.send(Req::new(Method::GET, loc)).await?;
    r.expect_status(&[200])?;
    ensure(r.body() == &blob.data, || {
        format!("{}: not the blob's bytes", r.what)
    })?;
    Ok(Verdict::Pass)
}

async fn blob_single_post(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(900);
    let repo = c.repo.clone();
    let r = c
        .send(
            Req::new(
                Method::POST,
                format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest),
            )
            .header("content-type", "application/octet-stream")
            .body(blob.data.clone()),
        )
        .await?;
    if r.status() == 202 {
        r.require("location")?;
        return Ok(Verdict::Unsupported(format!(
            "{}: 202, single-POST uploads not supported (a session was started instead)",
            r.what
        )));
    }
    r.expect_status(&[201])?;
    c.pushed_blobs.push((repo.clone(), blob.digest.to_string()));
    r.require("location")?;
    pull_blob(c, &repo, &blob).await?;
    Ok(Verdict::Pass)
}

/// Chunk length of chunked uploads: 1 KiB, or the registry's minimum.
fn chunk_len(min: Option<&str>) -> usize {
    min.and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(1024)
        .clamp(1024, 8 << 20)
}

/// POST for a chunked upload; the session's Location and the chunk length to use.
pub(super) async fn post_chunked(c: &mut Ctx) -> Result<(String, usize), Verdict> {
    let repo = c.repo.clone();
    let r = c
        .send(
            Req::new(Method::POST, format!("/v2/{repo}/blobs/uploads/"))
                .header("content-length", "0"),
        )
        .await?;
    r.expect_status(&[202])?;
    Ok((r.location()?, chunk_len(r.header("oci-chunk-min-length"))))
}

fn expect_range(r: &Resp, end: usize) -> Result<(), Verdict> {
    let got = r.require("range")?;
    let want = format!("0-{end}");
    ensure(got == want || got == format!("bytes={want}"), || {
        format!("{}: Range is {got}, expected {want}", r.what)
    })
}

async fn blob_chunked(c: &mut Ctx) -> CheckResult {
    let (mut loc, n) = post_chunked(c).await?;
    let blob = Blob::new(random_bytes(n * 2 + 100));
    for i in 0..2 {
        let r = patch(c, &loc, &blob.data[i * n..(i + 1) * n], i * n).await?;
        r.expect_status(&[202])?;
        expect_range(&r, (i + 1) * n - 1)?;
        loc = r.location()?;
    }
    let r = put_close(c, &loc, blob.digest.as_str(), blob.data.slice(2 * n..)).await?;
    r.expect_status(&[201])?;
    let repo = c.repo.clone();
    c.pushed_blobs.push((repo.clone(), blob.digest.to_string()));
    r.require("location")?;
    pull_blob(c, &repo, &blob).await?;
    Ok(Verdict::Pass)
}

async fn chunk_out_of_order(c: &mut Ctx) -> CheckResult {
    let (loc, n) = post_chunked(c).await?;
    let data = random_bytes(n * 3);
    let r = patch(c, &loc, &data[..n], 0).await?;
    r.expect_status(&[202])?;
    let loc = r.location()?;
    let r = patch(c, &loc, &data[2 * n..], 2 * n).await?;
    r.expect_status(&[416])?;
    Ok(Verdict::Pass)
}

async fn chunk_resent(c: &mut Ctx) -> CheckResult {
    let (loc, n) = post_chunked(c).await?;
    let data = random_bytes(n * 2);
    let r = patch(c, &loc, &data[..n], 0).await?;
    r.expect_status(&[202])?;
    let loc = r.location()?;
    patch(c, &loc, &data[..n], 0).await?.expect_status(&[416])?;
    Ok(Verdict::Pass)
}

async fn upload_status(c: &mut Ctx) -> CheckResult {
    let (loc, n) = post_chunked(c).await?;
    let data = random_bytes(n);
    let r = patch(c, &loc, &data, 0).await?;
    r.expect_status(&[202])?;
    let loc = r.location()?;
    let r = c.send(Req::new(Method::GET, loc)).await?;
    r.expect_status(&[204])?;
    r.require("location")?;
    expect_range(&r, n - 1)?;
    Ok(Verdict::Pass)
}

async fn upload_unknown(c: &mut Ctx) -> CheckResult {
    let path = c.path(&format!("blobs/uploads/{}", random_hex(16)));
    c.send(Req::new(Method::GET, path))
        .await?
        .expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn upload_cancel(c: &mut Ctx) -> CheckResult {
    let (loc, _) = post_chunked(c).await?;
    let r = c.send(Req::new(Method::DELETE, loc.clone())).await?;
    if matches!(r.status(), 404 | 405 | 400) {
        return Ok(Verdict::Unsupported(format!(
            "{}: {}, cancelling uploads not supported",
            r.what,
            r.summary()
        )));
    }
    r.expect_status(&[204, 202, 200])?;
    c.send(Req::new(Method::GET, loc))
        .await?
        .expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn digest_mismatch(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(600);
    let other = Blob::random(600);
    let repo = c.repo.clone();
    let loc = post(c, &repo).await?;
    let r = put_close(c, &loc, other.digest.as_str(), blob.data.clone()).await?;
    if r.status() == 201 {
        c.pushed_blobs.push((repo, other.digest.to_string()));
    }
    r.expect_status(&[400])?;
    expect_code(&r, &["DIGEST_INVALID"])?;
    Ok(Verdict::Pass)
}

async fn blob_empty(c: &mut Ctx) -> CheckResult {
    let blob = Blob::new(Bytes::new());
    let repo = c.repo.clone();
    c.upload(&repo, &blob).await?;
    pull_blob(c, &repo, &blob).await?;
    Ok(Verdict::Pass)
}

async fn blob_sha512(c: &mut Ctx) -> CheckResult {
    let blob = Blob::sha512(random_bytes(1000));
    let repo = c.repo.clone();
    let loc = post(c, &repo).await?;
    let r = put_close(c, &loc, blob.digest.as_str(), blob.data.clone()).await?;
    if r.status() == 400 {
        return Ok(Verdict::Unsupported(format!(
            "{}: {}, sha512 digests not supported",
            r.what,
            r.summary()
        )));
    }
    r.expect_status(&[201])?;
    c.pushed_blobs.push((repo.clone(), blob.digest.to_string()));
    pull_blob(c, &repo, &blob).await?;
    Ok(Verdict::Pass)
}

async fn mount(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(800);
    let (repo, other) = (c.repo.clone(), c.other_repo.clone());
    c.upload(&repo, &blob).await?;
    let r = c
        .send(Req::new(
            Method::POST,
            format!(
                "/v2/{other}/blobs/uploads/?mount={}&from={repo}",
                blob.digest
            ),
        ))
        .await?;
    if r.status() == 202 {
        r.require("location")?;
        return Ok(Verdict::Unsupported(format!(
            "{}: 202, the registry did not mount (an upload session instead)",
            r.what
        )));
    }
    r.expect_status(&[201])?;
    c.pushed_blobs
        .push((other.clone(), blob.digest.to_string()));
    let loc = r.location()?;
    let want = format!("/v2/{other}/blobs/{}", blob.digest);
    ensure(crate::session::path_of(&loc).starts_with(&want), || {
        format!("{}: Location {loc} is not the blob in {other}", r.what)
    })?;
    pull_blob(c, &other, &blob).await?;
    Ok(Verdict::Pass)
}

async fn mount_fallback(c: &mut Ctx) -> CheckResult {
    let (repo, other) = (c.repo.clone(), c.other_repo.clone());
    let missing = format!("sha256:{}", random_hex(32));
    let r = c
        .send(Req::new(
            Method::POST,
            format!("/v2/{other}/blobs/uploads/?mount={missing}&from={repo}"),
        ))
        .await?;
    r.expect_status(&[202])?;
    r.require("location")?;
    Ok(Verdict::Pass)
}

/// A fresh image manifest over the shared config and layer.
fn fresh_manifest(c: &Ctx) -> Manifest {
    let mut m = image_manifest(&c.fx.config, OCI_CONFIG, &[&c.fx.layer]);
    m["annotations"] = serde_json::json!({"org.berth.conformance.nonce": random_hex(8)});
    Manifest {
        blob: Blob::new(serde_json::to_vec(&m).unwrap_or_default()),
        media_type: OCI_MANIFEST,
    }
}

async fn manifest_put_tag(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let m = fresh_manifest(c);
    let (repo, tag) = (c.repo.clone(), format!("{}-put", c.fx.tag()));
    let r = c.put_manifest(&repo, &tag, &m).await?;
    r.expect_status(&[201])?;
    r.require("location")?;
    let r = get_manifest(c, &tag).await?;
    r.expect_status(&[200])?;
    same_bytes(&r, &m)?;
    Ok(Verdict::Pass)
}

async fn manifest_put_digest(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let m = fresh_manifest(c);
    let repo = c.repo.clone();
    let r = c.put_manifest(&repo, m.digest().as_str(), &m).await?;
    r.expect_status(&[201])?;
    r.require("location")?;
    Ok(Verdict::Pass)
}

async fn manifest_digest_header(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let m = fresh_manifest(c);
    let repo = c.repo.clone();
    let r = c.put_manifest(&repo, m.digest().as_str(), &m).await?;
    r.expect_status(&[201])?;
    let got = r.require("docker-content-digest")?;
    ensure(got == m.digest().as_str(), || {
        format!(
            "{}: Docker-Content-Digest is {got}, expected {}",
            r.what,
            m.digest()
        )
    })?;
    Ok(Verdict::Pass)
}

async fn manifest_no_layers(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let mut m = image_manifest(&c.fx.config, OCI_CONFIG, &[]);
    m["annotations"] = serde_json::json!({"org.berth.conformance.nonce": random_hex(8)});
    let m = Manifest {
        blob: Blob::new(serde_json::to_vec(&m).unwrap_or_default()),
        media_type: OCI_MANIFEST,
    };
    let repo = c.repo.clone();
    c.put_manifest(&repo, m.digest().as_str(), &m)
        .await?
        .expect_status(&[201])?;
    Ok(Verdict::Pass)
}

async fn manifest_4mib(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let m = c.fx.big_manifest();
    let repo = c.repo.clone();
    c.put_manifest(&repo, m.digest().as_str(), &m)
        .await?
        .expect_status(&[201])?;
    let r = get_manifest(c, m.digest().as_str()).await?;
    r.expect_status(&[200])?;
    same_bytes(&r, &m)?;
    Ok(Verdict::Pass)
}

async fn manifest_invalid(c: &mut Ctx) -> CheckResult {
    let m = Manifest {
        blob: Blob::new(&b"{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", "[..]),
        media_type: OCI_MANIFEST,
    };
    let repo = c.repo.clone();
    let r = c
        .put_manifest(&repo, &format!("{}-invalid", c.fx.tag()), &m)
        .await?;
    r.expect_status(&[400])?;
    expect_code(&r, &["MANIFEST_INVALID"])?;
    Ok(Verdict::Pass)
}

async fn manifest_blob_unknown(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let missing = Blob::random(300);
    let m = image_manifest(&c.fx.config, OCI_CONFIG, &[&missing]);
    let m = Manifest {
        blob: Blob::new(serde_json::to_vec(&m).unwrap_or_default()),
        media_type: OCI_MANIFEST,
    };
    let repo = c.repo.clone();
    let r = c.put_manifest(&repo, m.digest().as_str(), &m).await?;
    if r.status() == 201 {
        return Ok(Verdict::Unsupported(format!(
            "{}: 201, manifests referencing missing blobs are accepted (allowed)",
            r.what
        )));
    }
    r.expect_status(&[400])?;
    expect_code(&r, &["MANIFEST_BLOB_UNKNOWN"])?;
    Ok(Verdict::Pass)
}

async fn name_max_length(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let budget = 255usize.saturating_sub(c.registry.len() + 1 + c.repo.len() + 1);
    if budget == 0 {
        return Ok(Verdict::NotRun(format!(
            "{}/{} leaves no room for a longer name",
            c.registry, c.repo
        )));
    }
    let repo = format!("{}/{}", c.repo, "n".repeat(budget));
    let blob = c.fx.config.clone();
    let layer = c.fx.layer.clone();
    let scope = format!("repository:{repo}:pull,push,delete");
    c.add_scope(scope);
    c.upload(&repo, &blob).await?;
    c.upload(&repo, &layer).await?;
    let image = c.fx.image.clone();
    c.put_manifest(&repo, image.digest().as_str(), &image)
        .await?
        .expect_status(&[201])?;
    Ok(Verdict::Pass)
}
