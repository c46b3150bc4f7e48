//! Signature handling: what Notary Project signing needs of a registry (distribution-spec
//! v1.1: "Pushing Manifests with Subject", "Listing Referrers", "Referrers Tag Schema",
//! "Deleting Manifests"). Each check pushes a fresh image and a real Notary Project
//! signature manifest over it (`config.mediaType` `application/vnd.cncf.notary.signature`,
//! one JWS envelope layer, `subject`), as `berth sign` and notation push them. Where the
//! registry has no referrers API, the checks maintain the `sha256-<hex>` referrers tag
//! index as a client must, and judge that.
//!
//! What the spec says of a deleted subject: the manifest and every tag of it answer `404`;
//! nothing requires the registry to delete the manifests that refer to it, and the referrers
//! API must still answer `200` for its digest. `signatures.subject-deleted` checks those,
//! and that no listed referrer is dangling; whether the registry kept or removed the
//! signature shows in its recorded exchanges.

use berth_trust::keys::{KeySpec, SigningKey};
use berth_trust::manifest::{ARTIFACT_TYPE, signature_manifest};
use berth_trust::{EnvelopeFormat, SignOptions, TargetArtifact, Timestamp};
use http::Method;
use serde_json::{Value, json};

use super::management::{deletion_enabled, fresh_manifest};
use super::{Check, CheckResult, check, ensure, need_setup};
use crate::data::{ARTIFACT_A, Blob, Manifest, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, image_manifest};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "signatures.referrers-list",
            Signatures,
            Must,
            "listing-referrers",
            "a pushed Notary signature is listed in its subject's referrers with artifactType application/vnd.cncf.notary.signature (from config.mediaType) and its annotations",
            referrers_list
        ),
        check!(
            "signatures.artifact-type-filter",
            Signatures,
            Should,
            "listing-referrers",
            "GET referrers/<digest>?artifactType=application/vnd.cncf.notary.signature: only the signatures, with OCI-Filters-Applied: artifactType",
            artifact_type_filter
        ),
        check!(
            "signatures.tag-fallback",
            Signatures,
            Must,
            "referrers-tag-schema",
            "an image index pushed under the sha256-<hex> referrers tag of a signed image reads back listing its signature",
            tag_fallback
        ),
        check!(
            "signatures.tag-move",
            Signatures,
            Must,
            "listing-referrers",
            "after the signed image's tag moves to another image, the signature is still listed for the signed digest and not for the new one",
            tag_move
        ),
        check!(
            "signatures.subject-deleted",
            Signatures,
            May,
            "deleting-manifests",
            "DELETE the signed image: it answers 404, its referrers 200 with no dangling entry (the spec does not say whether its signatures go)",
            subject_deleted
        ),
    ]
}

/// A signature pushed over a subject: its manifest and whether the registry processed the
/// `subject` (`OCI-Subject`).
struct Pushed {
    manifest: Manifest,
    oci_subject: bool,
}

/// A Notary Project signature manifest over `subject` (JWS, signed with a fresh key and a
/// self-signed test certificate) and its envelope.
fn make_signature(subject: &Manifest) -> Result<(Manifest, Blob), Verdict> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Verdict::NotRun(format!("could not make a test signature ({what}): {e}"))
    };
    let key = SigningKey::generate(KeySpec::EcP256).map_err(|e| fail("key", &e))?;
    let cert = berth_trust::certgen::generate_test("berth conformance", &key)
        .map_err(|e| fail("certificate", &e))?;
    let target = TargetArtifact {
        media_type: subject.media_type.to_owned(),
        digest: subject.digest().to_string(),
        size: subject.blob.size(),
        annotations: Default::default(),
    };
    let chain = [cert];
    let opts = SignOptions::new(EnvelopeFormat::Jws);
    let envelope =
        berth_trust::sign(&target, &key, &chain, &opts).map_err(|e| fail("envelope", &e))?;
    let digest: berth_oci::oci_spec::image::Digest = subject
        .digest()
        .as_str()
        .parse()
        .map_err(|e| fail("subject digest", &e))?;
    let desc = berth_oci::oci_spec::image::Descriptor::new(
        berth_oci::oci_spec::image::MediaType::from(subject.media_type),
        subject.blob.size(),
        digest,
    );
    let m = signature_manifest(
        &desc,
        &envelope,
        EnvelopeFormat::Jws,
        &chain,
        Timestamp::now(),
    )
    .map_err(|e| fail("manifest", &e))?;
    Ok((
        Manifest {
            blob: Blob::new(m.bytes),
            media_type: OCI_MANIFEST,
        },
        Blob::new(envelope),
    ))
}

/// The referrers tag of `subject`.
fn referrers_tag(subject: &Manifest) -> String {
    berth_distribution::referrers_tag(subject.digest())
}

/// The descriptor a referrers list gives `m` (artifactType from the config's media type).
fn listed(m: &Manifest) -> Value {
    let v: Value = serde_json::from_slice(&m.blob.data).unwrap_or_default();
    let artifact_type = v
        .get("artifactType")
        .or_else(|| v["config"].get("mediaType"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "mediaType": m.media_type,
        "digest": m.digest().as_str(),
        "size": m.blob.size(),
        "artifactType": artifact_type,
        "annotations": v.get("annotations").cloned().unwrap_or(Value::Null),
    })
}

/// Whether the registry has the referrers API (anything but 404 for `subject`).
async fn has_referrers_api(c: &mut Ctx, subject: &Manifest) -> Result<bool, Verdict> {
    let r = c
        .send(Req::new(
            Method::GET,
            c.path(&format!("referrers/{}", subject.digest())),
        ))
        .await?;
    Ok(r.status() != 404)
}

/// The referrers of `subject`: from the API, or (404) from its referrers tag index.
async fn referrers(c: &mut Ctx, subject: &Manifest, query: &str) -> Result<Vec<Value>, Verdict> {
    let r = c
        .send(Req::new(
            Method::GET,
            c.path(&format!("referrers/{}{query}", subject.digest())),
        ))
        .await?;
    let r = if r.status() == 404 {
        let tag = referrers_tag(subject);
        let t = c
            .send(
                Req::new(Method::GET, c.path(&format!("manifests/{tag}")))
                    .header("accept", OCI_INDEX),
            )
            .await?;
        if t.status() == 404 {
            return Ok(Vec::new());
        }
        t
    } else {
        r
    };
    r.expect_status(&[200])?;
    let v: Value = serde_json::from_slice(r.body())
        .map_err(|e| Verdict::violation(format!("{}: not a JSON image index: {e}", r.what)))?;
    v.get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| Verdict::violation(format!("{}: no manifests array", r.what)))
}

/// Push `index` (a referrers list) under the referrers tag of `subject`.
async fn put_referrers_tag(
    c: &mut Ctx,
    subject: &Manifest,
    list: Vec<Value>,
) -> Result<(), Verdict> {
    let index = Manifest {
        blob: Blob::new(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": list,
            }))
            .unwrap_or_default(),
        ),
        media_type: OCI_INDEX,
    };
    let repo = c.repo.clone();
    c.put_manifest(&repo, &referrers_tag(subject), &index)
        .await?
        .expect_status(&[201])?;
    Ok(())
}

/// Push `m` (whose subject is `subject`) by digest; without `OCI-Subject` in the answer,
/// add it to the subject's referrers tag index, as distribution-spec "Pushing Manifests
/// with Subject" tells a client to.
async fn push_referrer(c: &mut Ctx, subject: &Manifest, m: &Manifest) -> Result<bool, Verdict> {
    let repo = c.repo.clone();
    let r = c.put_manifest(&repo, m.digest().as_str(), m).await?;
    r.expect_status(&[201])?;
    let oci_subject = r.header("oci-subject") == Some(subject.digest().as_str());
    if !oci_subject {
        let mut list = referrers(c, subject, "").await?;
        list.retain(|d| d["digest"] != m.digest().as_str());
        list.push(listed(m));
        put_referrers_tag(c, subject, list).await?;
    }
    Ok(oci_subject)
}

/// A fresh image (under `tag`, else by digest) and a signature pushed over it.
async fn signed_image(c: &mut Ctx, tag: Option<&str>) -> Result<(Manifest, Pushed), Verdict> {
    c.need_writes()?;
    need_setup(c)?;
    let subject = fresh_manifest(c, tag).await?;
    let (sig, envelope) = make_signature(&subject)?;
    let repo = c.repo.clone();
    c.upload(&repo, &envelope).await?;
    // the config, `{}`, is the shared empty JSON blob the setup pushed
    let oci_subject = push_referrer(c, &subject, &sig).await?;
    Ok((
        subject,
        Pushed {
            manifest: sig,
            oci_subject,
        },
    ))
}

fn find<'a>(list: &'a [Value], m: &Manifest) -> Option<&'a Value> {
    list.iter().find(|d| d["digest"] == m.digest().as_str())
}

async fn referrers_list(c: &mut Ctx) -> CheckResult {
    let (subject, sig) = signed_image(c, None).await?;
    if !has_referrers_api(c, &subject).await? {
        return Err(Verdict::Unsupported(
            "no referrers API (404): see signatures.tag-fallback".into(),
        ));
    }
    let list = referrers(c, &subject, "").await?;
    let what = format!("GET referrers/{}", subject.digest());
    let d = find(&list, &sig.manifest).ok_or_else(|| {
        Verdict::violation(format!(
            "{what}: the signature {} is not listed ({} referrers)",
            sig.manifest.digest(),
            list.len()
        ))
    })?;
    ensure(d["artifactType"] == ARTIFACT_TYPE, || {
        format!(
            "{what}: the signature's artifactType is {}, expected {ARTIFACT_TYPE} (its config.mediaType: the manifest has no artifactType)",
            d["artifactType"]
        )
    })?;
    let want = listed(&sig.manifest);
    ensure(d["annotations"] == want["annotations"], || {
        format!(
            "{what}: the signature's annotations are {}, expected the manifest's {}",
            d["annotations"], want["annotations"]
        )
    })?;
    ensure(
        d["mediaType"] == OCI_MANIFEST && d["size"] == sig.manifest.blob.size(),
        || format!("{what}: the signature's descriptor has the wrong mediaType or size: {d}"),
    )?;
    ensure(sig.oci_subject, || {
        format!(
            "PUT of the signature: no OCI-Subject: {}, though the referrers API lists it",
            subject.digest()
        )
    })?;
    Ok(Verdict::Pass)
}

async fn artifact_type_filter(c: &mut Ctx) -> CheckResult {
    let (subject, sig) = signed_image(c, None).await?;
    if !has_referrers_api(c, &subject).await? {
        return Err(Verdict::Unsupported(
            "no referrers API (404): nothing to filter".into(),
        ));
    }
    // a referrer of another type beside the signature
    let empty = c.fx.empty_json.clone();
    let mut other = image_manifest(&empty, OCI_EMPTY, &[&empty]);
    other["layers"][0]["mediaType"] = json!(OCI_EMPTY);
    other["artifactType"] = json!(ARTIFACT_A);
    other["subject"] = subject.descriptor();
    let other = Manifest {
        blob: Blob::new(serde_json::to_vec(&other).unwrap_or_default()),
        media_type: OCI_MANIFEST,
    };
    push_referrer(c, &subject, &other).await?;
    let path = c.path(&format!(
        "referrers/{}?artifactType={ARTIFACT_TYPE}",
        subject.digest()
    ));
    let r = c.send(Req::new(Method::GET, path)).await?;
    r.expect_status(&[200])?;
    let v: Value = serde_json::from_slice(r.body())
        .map_err(|e| Verdict::violation(format!("{}: not JSON: {e}", r.what)))?;
    let list = v["manifests"].as_array().cloned().unwrap_or_default();
    let applied = r
        .header("oci-filters-applied")
        .is_some_and(|h| h.split(',').any(|f| f.trim() == "artifactType"));
    ensure(find(&list, &sig.manifest).is_some(), || {
        format!("{}: the signature is not listed", r.what)
    })?;
    let only = list.iter().all(|d| d["artifactType"] == ARTIFACT_TYPE);
    ensure(applied && only, || match (applied, only) {
        (false, true) => format!(
            "{}: filtered, but without OCI-Filters-Applied: artifactType",
            r.what
        ),
        (true, false) => format!(
            "{}: OCI-Filters-Applied: artifactType, but a referrer of another type is listed",
            r.what
        ),
        _ => format!(
            "{}: the artifactType filter was not applied ({} referrers)",
            r.what,
            list.len()
        ),
    })?;
    Ok(Verdict::Pass)
}

async fn tag_fallback(c: &mut Ctx) -> CheckResult {
    let (subject, sig) = signed_image(c, None).await?;
    // the index a client without the referrers API maintains (pushed again here when the
    // registry has the API: the tag schema must work on any registry)
    if sig.oci_subject {
        put_referrers_tag(c, &subject, vec![listed(&sig.manifest)]).await?;
    }
    let tag = referrers_tag(&subject);
    let r = c
        .send(
            Req::new(Method::GET, c.path(&format!("manifests/{tag}"))).header("accept", OCI_INDEX),
        )
        .await?;
    r.expect_status(&[200])?;
    let v: Value = serde_json::from_slice(r.body())
        .map_err(|e| Verdict::violation(format!("{}: not JSON: {e}", r.what)))?;
    let list = v["manifests"].as_array().cloned().unwrap_or_default();
    let d = find(&list, &sig.manifest).ok_or_else(|| {
        Verdict::violation(format!(
            "{}: the signature is not in the referrers tag index",
            r.what
        ))
    })?;
    ensure(d["artifactType"] == ARTIFACT_TYPE, || {
        format!(
            "{}: the signature's artifactType is {}",
            r.what, d["artifactType"]
        )
    })?;
    Ok(Verdict::Pass)
}

async fn tag_move(c: &mut Ctx) -> CheckResult {
    let tag = format!("{}-move", c.fx.tag());
    let (a, sig) = signed_image(c, Some(&tag)).await?;
    // the tag moves to another image
    let b = fresh_manifest(c, Some(&tag)).await?;
    let r = c
        .send(
            Req::new(Method::HEAD, c.path(&format!("manifests/{tag}")))
                .header("accept", OCI_MANIFEST),
        )
        .await?;
    r.expect_status(&[200])?;
    ensure(
        r.header("docker-content-digest") == Some(b.digest().as_str()),
        || format!("{}: the tag did not move to {}", r.what, b.digest()),
    )?;
    let r = c
        .send(
            Req::new(Method::HEAD, c.path(&format!("manifests/{}", a.digest())))
                .header("accept", OCI_MANIFEST),
        )
        .await?;
    r.expect_status(&[200])?;
    let list = referrers(c, &a, "").await?;
    ensure(find(&list, &sig.manifest).is_some(), || {
        format!(
            "after the tag {tag} moved, the signature {} is no longer listed for the signed image {} ({} referrers)",
            sig.manifest.digest(),
            a.digest(),
            list.len()
        )
    })?;
    let list_b = referrers(c, &b, "").await?;
    ensure(find(&list_b, &sig.manifest).is_none(), || {
        format!(
            "the signature of {} is listed for {}, the image the tag moved to",
            a.digest(),
            b.digest()
        )
    })?;
    Ok(Verdict::Pass)
}

async fn subject_deleted(c: &mut Ctx) -> CheckResult {
    let (subject, sig) = signed_image(c, None).await?;
    let r = c
        .send(Req::new(
            Method::DELETE,
            c.path(&format!("manifests/{}", subject.digest())),
        ))
        .await?;
    deletion_enabled(&r)?;
    r.expect_status(&[202])?;
    c.send(
        Req::new(
            Method::GET,
            c.path(&format!("manifests/{}", subject.digest())),
        )
        .header("accept", OCI_MANIFEST),
    )
    .await?
    .expect_status(&[404])?;
    if sig.oci_subject {
        // the referrers API must still answer for the deleted digest
        let r = c
            .send(Req::new(
                Method::GET,
                c.path(&format!("referrers/{}", subject.digest())),
            ))
            .await?;
        r.expect_status(&[200])?;
    }
    let list = referrers(c, &subject, "").await?;
    for d in &list {
        let Some(digest) = d["digest"].as_str() else {
            continue;
        };
        let r = c
            .send(
                Req::new(Method::HEAD, c.path(&format!("manifests/{digest}")))
                    .header("accept", OCI_MANIFEST),
            )
            .await?;
        ensure(r.status() == 200 || !sig.oci_subject, || {
            format!(
                "{}: {} for a referrer the referrers API still lists for the deleted {}",
                r.what,
                r.summary(),
                subject.digest()
            )
        })?;
    }
    Ok(Verdict::Pass)
}
