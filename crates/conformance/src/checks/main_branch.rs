//! The optional `main` group: what distribution-spec gained on its `main` branch after the
//! v1.1 releases, checked only when asked (`Workflow::Main`). Its failures are reported but
//! never make a run non-conformant: the branch is not a release, and may still change.
//!
//! Each check names the pull request that added its requirement to `spec.md` (diffed from
//! v1.1.0 and v1.1.1 to `main`; the other workflows follow v1.1.1):
//!
//! | check | requirement (level) | added by |
//! | --- | --- | --- |
//! | `main.manifest-digest-header` | GET of a manifest carries `Docker-Content-Digest` (MUST, was SHOULD) | #595 |
//! | `main.manifest-head-headers` | HEAD of a manifest carries `Docker-Content-Digest` and `Content-Length` (MUST) | #595 |
//! | `main.blob-digest-header` | GET of a blob carries `Docker-Content-Digest` (MUST) | #595 |
//! | `main.blob-head-headers` | HEAD of a blob carries both (MUST) | #595 |
//! | `main.put-chunk-out-of-order` | a final chunk out of order on the closing PUT is 416 (MUST) | #593 |
//! | `main.upload-cancel` | DELETE of an upload (end-14) answers 204 (SHOULD) | #594 |
//! | `main.digest-invalid` | an invalid digest, or one of an unsupported algorithm, is 400 (SHOULD) | #543 |
//! | `main.digest-algorithm` | `POST …/uploads/?digest-algorithm=sha512` (end-4c) then a sha512 blob (MAY) | #543 |
//! | `main.manifest-put-tags` | `PUT …/manifests/<digest>?tag=…`: an `OCI-Tag` for each tag accepted (MAY; MUST once offered) | #600 |
//! | `main.manifest-put-ten-tags` | at least ten `tag` parameters in one PUT (SHOULD, once offered) | #600 |
//! | `main.delete-manifest-untags` | after a manifest is deleted, its tags are 404 too ("will return a 404"; no keyword: SHOULD here) | #552 (in v1.1.1) |
//! | `main.proxy-namespace` | `?ns=` on a pull is used or ignored; `OCI-Namespace`, if sent, is its value (SHOULD) | #66 |
//!
//! Not checked, with the reason: the `Retry-After` a 429 SHOULD carry (#607: a check cannot
//! make a registry rate-limit it); redirects allowed on any request (#607: a client rule,
//! and our client follows them); the referrers tag schema's truncation (#563: a client
//! rule); "ASCIIbetical" tag order and fewer than `n` tags with a `Link` (#583, #470), which
//! relax rules the discovery checks already apply the relaxed way; the `Range` of a chunk's
//! response matching the end of its `Content-Range` (#581), which `push.blob-chunked` already
//! checks; editorial changes (headings, `<tag-or-digest>`, "repository": #602, #616, #325).

use bytes::Bytes;
use http::Method;

use super::management::{deletion_enabled, fresh_manifest, unique_manifest};
use super::pull::{
    digest_header, get_blob, get_manifest, head_manifest, length_header, same_bytes,
};
use super::push::{patch, post, post_chunked, pull_blob, put_close};
use super::{ACCEPT_MANIFESTS, Check, CheckResult, check, ensure, need_setup};
use crate::data::{Blob, Manifest, random_bytes, random_hex};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req, Resp, with_query};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "main.manifest-digest-header",
            Main,
            Must,
            "pulling-manifests",
            "GET a manifest by tag and by digest: Docker-Content-Digest is required (was SHOULD)",
            manifest_digest_header
        ),
        check!(
            "main.manifest-head-headers",
            Main,
            Must,
            "checking-if-content-exists-in-the-registry",
            "HEAD a manifest by tag and by digest: Docker-Content-Digest and Content-Length are required",
            manifest_head_headers
        ),
        check!(
            "main.blob-digest-header",
            Main,
            Must,
            "pulling-blobs",
            "GET a blob: Docker-Content-Digest is required (was SHOULD)",
            blob_digest_header
        ),
        check!(
            "main.blob-head-headers",
            Main,
            Must,
            "checking-if-content-exists-in-the-registry",
            "HEAD a blob: Docker-Content-Digest and Content-Length are required",
            blob_head_headers
        ),
        check!(
            "main.put-chunk-out-of-order",
            Main,
            Must,
            "pushing-a-blob-in-chunks",
            "PUT closing an upload with a final chunk that does not continue it: 416",
            put_chunk_out_of_order
        ),
        check!(
            "main.upload-cancel",
            Main,
            Should,
            "cancel-a-blob-upload",
            "DELETE an upload's Location (cancel the upload): 204",
            upload_cancel
        ),
        check!(
            "main.digest-invalid",
            Main,
            Should,
            "pushing-blobs",
            "PUT closing an upload with an invalid digest, then with an unsupported algorithm: 400 each",
            digest_invalid
        ),
        check!(
            "main.digest-algorithm",
            Main,
            May,
            "pushing-a-blob-in-chunks",
            "POST ?digest-algorithm=sha512, PATCH, PUT ?digest=sha512:…: 201 and the blob pullable by that digest (or 400: not supported)",
            digest_algorithm
        ),
        check!(
            "main.manifest-put-tags",
            Main,
            May,
            "pushing-manifests",
            "PUT a manifest by digest with ?tag=…&tag=…: an OCI-Tag header names each tag created, and each resolves",
            manifest_put_tags
        ),
        check!(
            "main.manifest-put-ten-tags",
            Main,
            Should,
            "pushing-manifests",
            "PUT a manifest by digest with ten tag parameters: all ten accepted and named in OCI-Tag",
            manifest_put_ten_tags
        ),
        check!(
            "main.delete-manifest-untags",
            Main,
            Should,
            "deleting-manifests",
            "DELETE a tagged manifest by digest: 202, then the tag is 404 too",
            delete_manifest_untags
        ),
        check!(
            "main.proxy-namespace",
            Main,
            Should,
            "registry-proxying",
            "GET a manifest with ?ns=<registry>: 200 with the manifest; OCI-Namespace, if sent, is that value",
            proxy_namespace
        ),
    ]
}

async fn manifest_digest_header(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let digest = c.fx.image.digest().to_string();
    for reference in [c.fx.tag(), digest.clone()] {
        let r = get_manifest(c, &reference).await?;
        r.expect_status(&[200])?;
        digest_header(&r, &digest)?;
    }
    Ok(Verdict::Pass)
}

async fn manifest_head_headers(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let digest = c.fx.image.digest().to_string();
    let size = c.fx.image.blob.size();
    for reference in [c.fx.tag(), digest.clone()] {
        let r = head_manifest(c, &reference).await?;
        r.expect_status(&[200])?;
        digest_header(&r, &digest)?;
        length_header(&r, size)?;
    }
    Ok(Verdict::Pass)
}

async fn blob_digest_header(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let digest = c.fx.config.digest.to_string();
    let r = get_blob(c, Method::GET, &digest).await?;
    r.expect_status(&[200])?;
    digest_header(&r, &digest)?;
    Ok(Verdict::Pass)
}

async fn blob_head_headers(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let config = c.fx.config.clone();
    let r = get_blob(c, Method::HEAD, config.digest.as_str()).await?;
    r.expect_status(&[200])?;
    digest_header(&r, config.digest.as_str())?;
    length_header(&r, config.size())?;
    Ok(Verdict::Pass)
}

async fn put_chunk_out_of_order(c: &mut Ctx) -> CheckResult {
    let (loc, n) = post_chunked(c).await?;
    let blob = Blob::new(random_bytes(n * 3));
    let r = patch(c, &loc, &blob.data[..n], 0).await?;
    r.expect_status(&[202])?;
    let loc = r.location()?;
    // The final chunk skips bytes n..2n.
    let r = c
        .send(
            Req::new(
                Method::PUT,
                with_query(&loc, "digest", blob.digest.as_str()),
            )
            .header("content-type", "application/octet-stream")
            .header("content-range", &format!("{}-{}", 2 * n, 3 * n - 1))
            .body(blob.data.slice(2 * n..)),
        )
        .await?;
    r.expect_status(&[416])?;
    Ok(Verdict::Pass)
}

async fn upload_cancel(c: &mut Ctx) -> CheckResult {
    let (loc, n) = post_chunked(c).await?;
    let r = patch(c, &loc, &random_bytes(n), 0).await?;
    r.expect_status(&[202])?;
    let loc = r.location()?;
    c.send(Req::new(Method::DELETE, loc).header("content-length", "0"))
        .await?
        .expect_status(&[204])?;
    Ok(Verdict::Pass)
}

async fn digest_invalid(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(300);
    let repo = c.repo.clone();
    for digest in [
        // sha256 with an encoded part that is not 64 hex digits.
        "sha256:not-hex".to_owned(),
        // Well-formed (image-spec's digest grammar), of an algorithm no registry has.
        format!("berth.unknown-alg:{}", random_hex(32)),
    ] {
        let loc = post(c, &repo).await?;
        let r = put_close(c, &loc, &digest, blob.data.clone()).await?;
        r.expect_status(&[400])?;
    }
    Ok(Verdict::Pass)
}

async fn digest_algorithm(c: &mut Ctx) -> CheckResult {
    let blob = Blob::sha512(random_bytes(1000));
    let repo = c.repo.clone();
    let r = c
        .send(
            Req::new(
                Method::POST,
                format!("/v2/{repo}/blobs/uploads/?digest-algorithm=sha512"),
            )
            .header("content-length", "0"),
        )
        .await?;
    if r.status() == 400 {
        return Ok(Verdict::Unsupported(format!(
            "{}: {}, sha512 uploads not supported",
            r.what,
            r.summary()
        )));
    }
    r.expect_status(&[202])?;
    let r = patch(c, &r.location()?, &blob.data, 0).await?;
    r.expect_status(&[202])?;
    let r = put_close(c, &r.location()?, blob.digest.as_str(), Bytes::new()).await?;
    if r.status() == 400 {
        return Ok(Verdict::Unsupported(format!(
            "{}: {} for a sha512 digest after ?digest-algorithm=sha512 was taken: sha512 not supported",
            r.what,
            r.summary()
        )));
    }
    r.expect_status(&[201])?;
    c.pushed_blobs.push((repo.clone(), blob.digest.to_string()));
    pull_blob(c, &repo, &blob).await?;
    Ok(Verdict::Pass)
}

/// Every tag an `OCI-Tag` header names (the header may repeat, each a comma-separated list).
fn oci_tags(r: &Resp) -> Vec<String> {
    r.raw
        .headers
        .get_all("oci-tag")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// What a PUT of a fresh manifest by digest with `n` `tag` parameters did: the response,
/// and for each tag whether the response named it and whether it resolves to the manifest.
struct TagPush {
    put: Resp,
    named: Vec<String>,
    tags: Vec<(String, bool)>,
}

async fn push_with_tags(c: &mut Ctx, n: usize) -> Result<TagPush, Verdict> {
    need_setup(c)?;
    let m: Manifest = unique_manifest(c);
    let base = format!("conf-tags-{}", random_hex(3));
    let names: Vec<String> = (0..n).map(|i| format!("{base}-{i}")).collect();
    let query: Vec<String> = names.iter().map(|t| format!("tag={t}")).collect();
    let repo = c.repo.clone();
    let put = c
        .put_manifest(&repo, &format!("{}?{}", m.digest(), query.join("&")), &m)
        .await?;
    if matches!(put.status(), 400 | 414 | 431) {
        return Ok(TagPush {
            named: Vec::new(),
            tags: names.into_iter().map(|t| (t, false)).collect(),
            put,
        });
    }
    put.expect_status(&[201])?;
    let named = oci_tags(&put);
    let mut tags = Vec::new();
    for t in names {
        let r = get_manifest(c, &t).await?;
        r.expect_status(&[200, 404])?;
        if r.status() == 200 {
            same_bytes(&r, &m)?;
        }
        tags.push((t, r.status() == 200));
    }
    Ok(TagPush { put, named, tags })
}

impl TagPush {
    /// Unsupported when the registry neither named nor created any tag (it ignored the
    /// parameters, or refused the request).
    fn offered(&self) -> Result<(), Verdict> {
        if self.named.is_empty() && self.tags.iter().all(|(_, created)| !created) {
            return Err(Verdict::Unsupported(format!(
                "{}: {} with no OCI-Tag header and no tag created: tag parameters not supported",
                self.put.what,
                self.put.summary()
            )));
        }
        Ok(())
    }

    /// Err(violation) unless each tag is named exactly when it was created.
    fn consistent(&self) -> Result<(), Verdict> {
        for (t, created) in &self.tags {
            let is_named = self.named.contains(t);
            ensure(is_named == *created, || {
                if *created {
                    format!(
                        "{}: tag {t} was created but no OCI-Tag header names it (OCI-Tag: {})",
                        self.put.what,
                        self.named.join(", ")
                    )
                } else {
                    format!("{}: OCI-Tag names {t}, but GET of it is 404", self.put.what)
                }
            })?;
        }
        Ok(())
    }
}

async fn manifest_put_tags(c: &mut Ctx) -> CheckResult {
    let p = push_with_tags(c, 2).await?;
    p.offered()?;
    p.consistent()?;
    Ok(Verdict::Pass)
}

async fn manifest_put_ten_tags(c: &mut Ctx) -> CheckResult {
    let p = push_with_tags(c, 10).await?;
    if matches!(p.put.status(), 414 | 431) {
        // Only tag pushes can make a manifest PUT too long: refusing ten is the violation.
        return Err(Verdict::violation(format!(
            "{}: {} for ten tags (at least ten should be accepted)",
            p.put.what,
            p.put.summary()
        )));
    }
    p.offered()?;
    p.consistent()?;
    let accepted = p.tags.iter().filter(|(_, created)| *created).count();
    ensure(accepted == 10, || {
        format!(
            "{}: {accepted} of ten tags accepted (OCI-Tag: {})",
            p.put.what,
            p.named.join(", ")
        )
    })?;
    Ok(Verdict::Pass)
}

async fn delete_manifest_untags(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let tag = format!("conf-untag-{}", random_hex(4));
    let m = fresh_manifest(c, Some(&tag)).await?;
    let by_digest = c.path(&format!("manifests/{}", m.digest()));
    let r = c.send(Req::new(Method::DELETE, by_digest.clone())).await?;
    deletion_enabled(&r)?;
    r.expect_status(&[202])?;
    let r = get_manifest(c, &tag).await?;
    ensure(r.status() == 404, || {
        format!(
            "{}: {} after its manifest {} was deleted, expected 404",
            r.what,
            r.summary(),
            m.digest()
        )
    })?;
    c.send(Req::new(Method::GET, by_digest).header("accept", ACCEPT_MANIFESTS))
        .await?
        .expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn proxy_namespace(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let ns = c.registry.clone();
    let image = c.fx.image.clone();
    let path = c.path(&format!("manifests/{}?ns={ns}", image.digest()));
    let r = c
        .send(Req::new(Method::GET, path).header("accept", ACCEPT_MANIFESTS))
        .await?;
    r.expect_status(&[200])?;
    same_bytes(&r, &image)?;
    if let Some(got) = r.header("oci-namespace") {
        ensure(got == ns, || {
            format!("{}: OCI-Namespace is {got}, expected {ns}", r.what)
        })?;
    }
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_checks_are_optional_and_link_to_the_main_branch() {
        for c in checks() {
            let info = c.info();
            assert!(info.optional, "{}", info.id);
            assert!(
                info.spec_url.starts_with(crate::model::MAIN_SPEC_URL),
                "{}",
                info.spec_url
            );
            assert!(info.id.starts_with("main."), "{}", info.id);
        }
        let levels: Vec<Level> = checks().iter().map(|c| c.level).collect();
        assert!(levels.contains(&Level::Must) && levels.contains(&Level::May));
        let _ = Workflow::Main;
    }
}
