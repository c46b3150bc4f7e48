//! Content management: deleting tags, manifests and blobs (`202`, then `404`), or refusing
//! to (`400`/`405`: deletion disabled, which the spec allows).

use http::Method;

use super::{Check, CheckResult, check, ensure, need_setup};
use crate::data::{Blob, Manifest, OCI_CONFIG, OCI_MANIFEST, image_manifest, random_hex};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req, Resp};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "management.delete-tag",
            Management,
            May,
            "deleting-tags",
            "DELETE a manifest by tag: 202, then the tag is 404 and the manifest still there",
            delete_tag
        ),
        check!(
            "management.delete-manifest",
            Management,
            May,
            "deleting-manifests",
            "DELETE a manifest by digest: 202, then 404",
            delete_manifest
        ),
        check!(
            "management.delete-blob",
            Management,
            May,
            "deleting-blobs",
            "DELETE a blob: 202, then 404",
            delete_blob
        ),
        check!(
            "management.delete-blob-unknown",
            Management,
            Must,
            "deleting-blobs",
            "DELETE a blob that does not exist: 404 (or 405 when deletion is disabled)",
            delete_blob_unknown
        ),
        check!(
            "management.delete-manifest-unknown-repository",
            Management,
            Must,
            "deleting-manifests",
            "DELETE a manifest in a repository that does not exist: 404 (or 405 when deletion is disabled)",
            delete_manifest_unknown_repository
        ),
    ]
}

/// Err(unsupported) when `r` says deletion is disabled (400 or 405).
pub(super) fn deletion_enabled(r: &Resp) -> Result<(), Verdict> {
    if matches!(r.status(), 400 | 405) {
        return Err(Verdict::Unsupported(format!(
            "{}: {}, deletion disabled",
            r.what,
            r.summary()
        )));
    }
    Ok(())
}

/// An image manifest over the shared config and layer that no other check pushes (a nonce
/// annotation makes its digest unique), not pushed yet.
pub(super) fn unique_manifest(c: &Ctx) -> Manifest {
    let mut m = image_manifest(&c.fx.config, OCI_CONFIG, &[&c.fx.layer]);
    m["annotations"] = serde_json::json!({"org.berth.conformance.nonce": random_hex(8)});
    Manifest {
        blob: Blob::new(serde_json::to_vec(&m).unwrap_or_default()),
        media_type: OCI_MANIFEST,
    }
}

/// A [`unique_manifest`] pushed under `reference` (its digest when `None`).
pub(super) async fn fresh_manifest(
    c: &mut Ctx,
    reference: Option<&str>,
) -> Result<Manifest, Verdict> {
    let m = unique_manifest(c);
    let repo = c.repo.clone();
    let reference = reference.map_or_else(|| m.digest().to_string(), str::to_owned);
    c.put_manifest(&repo, &reference, &m)
        .await?
        .expect_status(&[201])?;
    Ok(m)
}

async fn status_of(c: &mut Ctx, method: Method, path: String) -> Result<Resp, Verdict> {
    c.send(Req::new(method, path)).await
}

async fn delete_tag(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let tag = format!("{}-delete", c.fx.tag());
    let m = fresh_manifest(c, Some(&tag)).await?;
    let r = status_of(c, Method::DELETE, c.path(&format!("manifests/{tag}"))).await?;
    deletion_enabled(&r)?;
    r.expect_status(&[202])?;
    status_of(c, Method::GET, c.path(&format!("manifests/{tag}")))
        .await?
        .expect_status(&[404])?;
    let r = status_of(
        c,
        Method::HEAD,
        c.path(&format!("manifests/{}", m.digest())),
    )
    .await?;
    ensure(r.status() == 200, || {
        format!(
            "{}: {} after deleting only its tag {tag}",
            r.what,
            r.summary()
        )
    })?;
    Ok(Verdict::Pass)
}

async fn delete_manifest(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let m = fresh_manifest(c, None).await?;
    delete_then_gone(c, c.path(&format!("manifests/{}", m.digest()))).await
}

async fn delete_blob(c: &mut Ctx) -> CheckResult {
    let blob = Blob::random(500);
    let repo = c.repo.clone();
    c.upload(&repo, &blob).await?;
    delete_then_gone(c, c.path(&format!("blobs/{}", blob.digest))).await
}

/// DELETE `path`: 202 (or deletion disabled), then a GET of it is 404.
async fn delete_then_gone(c: &mut Ctx, path: String) -> CheckResult {
    let r = status_of(c, Method::DELETE, path.clone()).await?;
    deletion_enabled(&r)?;
    r.expect_status(&[202])?;
    status_of(c, Method::GET, path)
        .await?
        .expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn delete_blob_unknown(c: &mut Ctx) -> CheckResult {
    let path = c.path(&format!("blobs/sha256:{}", random_hex(32)));
    let r = status_of(c, Method::DELETE, path).await?;
    if r.status() == 405 {
        return Ok(Verdict::Unsupported(format!(
            "{}: 405, deletion disabled",
            r.what
        )));
    }
    r.expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn delete_manifest_unknown_repository(c: &mut Ctx) -> CheckResult {
    let path = format!(
        "/v2/{}/missing-{}/manifests/sha256:{}",
        c.repo,
        random_hex(6),
        random_hex(32)
    );
    let r = status_of(c, Method::DELETE, path).await?;
    if r.status() == 405 {
        return Ok(Verdict::Unsupported(format!(
            "{}: 405, deletion disabled",
            r.what
        )));
    }
    r.expect_status(&[404])?;
    Ok(Verdict::Pass)
}
