//! Content discovery: the tags list (order, `n`, `last`, `Link`) and the referrers API
//! (`artifactType` filtering, `OCI-Filters-Applied`, `OCI-Subject` on push).

use http::Method;

use super::{Check, CheckResult, check, ensure, media_type, need_setup};
use crate::data::{
    ARTIFACT_A, ARTIFACT_B, Blob, Manifest, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, image_manifest,
    random_hex,
};
use crate::model::{Level, Verdict, Workflow};
use crate::session::{Ctx, Req, Resp, resolve};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "discovery.tags-list",
            Discovery,
            Must,
            "listing-tags",
            "GET tags/list: 200 with {name, tags} holding every tag pushed",
            tags_list
        ),
        check!(
            "discovery.tags-order",
            Discovery,
            Must,
            "listing-tags",
            "GET tags/list: tags in lexical order",
            tags_order
        ),
        check!(
            "discovery.tags-n",
            Discovery,
            Must,
            "listing-tags",
            "GET tags/list?n=2: exactly 2 tags (fewer only with a Link header)",
            tags_n
        ),
        check!(
            "discovery.tags-n-zero",
            Discovery,
            Must,
            "listing-tags",
            "GET tags/list?n=0: an empty list and no Link header",
            tags_n_zero
        ),
        check!(
            "discovery.tags-last",
            Discovery,
            Must,
            "listing-tags",
            "GET tags/list?n=2&last=<tag>: the 2 tags after <tag>",
            tags_last
        ),
        check!(
            "discovery.tags-link",
            Discovery,
            May,
            "listing-tags",
            "GET tags/list?n=2: a Link header with rel=\"next\" leading to the following tags",
            tags_link
        ),
        check!(
            "discovery.tags-unknown-repository",
            Discovery,
            Must,
            "endpoints",
            "GET tags/list of a repository that does not exist: 404",
            tags_unknown_repository
        ),
        check!(
            "discovery.referrers-api",
            Discovery,
            Should,
            "listing-referrers",
            "GET referrers/<digest>: the referrers API is available (200, not 404)",
            referrers_api
        ),
        check!(
            "discovery.referrers-list",
            Discovery,
            Must,
            "listing-referrers",
            "GET referrers/<digest>: an image index listing each referrer with artifactType and annotations",
            referrers_list
        ),
        check!(
            "discovery.referrers-filter",
            Discovery,
            Should,
            "listing-referrers",
            "GET referrers/<digest>?artifactType=: only that type, with OCI-Filters-Applied: artifactType",
            referrers_filter
        ),
        check!(
            "discovery.referrers-none",
            Discovery,
            Must,
            "listing-referrers",
            "GET referrers of a digest nothing refers to: 200 with an empty index",
            referrers_none
        ),
        check!(
            "discovery.referrers-invalid-digest",
            Discovery,
            Must,
            "listing-referrers",
            "GET referrers/<invalid digest>: 400",
            referrers_invalid_digest
        ),
        check!(
            "discovery.oci-subject",
            Discovery,
            Must,
            "pushing-manifests-with-subject",
            "PUT a manifest with a subject: OCI-Subject is the subject's digest",
            oci_subject
        ),
        check!(
            "discovery.subject-missing-accepted",
            Discovery,
            Must,
            "pushing-manifests",
            "PUT a manifest whose subject does not exist: 201",
            subject_missing_accepted
        ),
    ]
}

#[derive(serde::Deserialize)]
struct TagList {
    name: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

async fn tags(c: &mut Ctx, query: &str) -> Result<(Resp, Vec<String>), Verdict> {
    let path = c.path(&format!("tags/list{query}"));
    let r = c.send(Req::new(Method::GET, path)).await?;
    r.expect_status(&[200])?;
    let list: TagList = serde_json::from_slice(r.body())
        .map_err(|e| Verdict::violation(format!("{}: the body is not a tag list: {e}", r.what)))?;
    ensure(list.name == c.repo, || {
        format!("{}: name is {:?}, expected {:?}", r.what, list.name, c.repo)
    })?;
    Ok((r, list.tags.unwrap_or_default()))
}

/// The tags the tags-list checks page through (the run's, or in a read-only run the
/// repository's); Err(not run) when a read-only repository has fewer than `n`.
fn need_tags(c: &Ctx, n: usize) -> Result<Vec<String>, Verdict> {
    let t = c.pull_target()?;
    if t.tags.len() < n {
        return Err(Verdict::NotRun(format!(
            "the repository has {} tag(s), this check needs at least {n} (read-only: no tags are pushed)",
            t.tags.len()
        )));
    }
    Ok(t.tags)
}

async fn tags_list(c: &mut Ctx) -> CheckResult {
    let t = c.pull_target()?;
    let want: Vec<String> = match &c.read_only {
        None => t.tags,
        Some(_) => t.tag.into_iter().collect(),
    };
    let (r, got) = tags(c, "").await?;
    let missing: Vec<String> = want.into_iter().filter(|t| !got.contains(t)).collect();
    ensure(missing.is_empty(), || {
        format!("{}: tags missing: {}", r.what, missing.join(", "))
    })?;
    Ok(Verdict::Pass)
}

async fn tags_order(c: &mut Ctx) -> CheckResult {
    need_tags(c, 2)?;
    let (r, got) = tags(c, "").await?;
    let sorted = got.windows(2).all(|w| w[0] <= w[1])
        || got
            .windows(2)
            .all(|w| w[0].to_lowercase() <= w[1].to_lowercase());
    ensure(sorted, || {
        format!("{}: tags not in lexical order: {}", r.what, got.join(", "))
    })?;
    Ok(Verdict::Pass)
}

async fn tags_n(c: &mut Ctx) -> CheckResult {
    need_tags(c, 2)?;
    let (r, got) = tags(c, "?n=2").await?;
    ensure(got.len() <= 2, || {
        format!("{}: {} tags for n=2", r.what, got.len())
    })?;
    ensure(got.len() == 2 || r.header("link").is_some(), || {
        format!(
            "{}: {} tags for n=2 without a Link header (the repository has more)",
            r.what,
            got.len()
        )
    })?;
    Ok(Verdict::Pass)
}

async fn tags_n_zero(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    let (r, got) = tags(c, "?n=0").await?;
    ensure(got.is_empty(), || {
        format!("{}: {} tags for n=0", r.what, got.len())
    })?;
    ensure(r.header("link").is_none(), || {
        format!("{}: a Link header for n=0", r.what)
    })?;
    Ok(Verdict::Pass)
}

async fn tags_last(c: &mut Ctx) -> CheckResult {
    let t = need_tags(c, 4)?;
    let (r, got) = tags(c, &format!("?n=2&last={}", t[1])).await?;
    let want = vec![t[2].clone(), t[3].clone()];
    ensure(got == want, || {
        format!(
            "{}: got [{}], expected [{}]",
            r.what,
            got.join(", "),
            want.join(", ")
        )
    })?;
    Ok(Verdict::Pass)
}

/// The target of a `Link: <url>; rel="next"` header.
fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let rel_next = params.split(';').any(|p| {
            matches!(
                p.trim().replace(' ', "").as_str(),
                "rel=\"next\"" | "rel=next"
            )
        });
        rel_next.then(|| url.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

async fn tags_link(c: &mut Ctx) -> CheckResult {
    let t = need_tags(c, 5)?;
    let (r, first) = tags(c, &format!("?n=2&last={}", t[1])).await?;
    let Some(link) = r.header("link") else {
        return Ok(Verdict::Unsupported(format!("{}: no Link header", r.what)));
    };
    let Some(next) = next_link(link) else {
        return Err(Verdict::violation(format!(
            "{}: Link header without rel=\"next\": {link}",
            r.what
        )));
    };
    let url = resolve(&r.raw.url, next);
    let r2 = c.send(Req::new(Method::GET, url)).await?;
    r2.expect_status(&[200])?;
    let list: TagList = serde_json::from_slice(r2.body())
        .map_err(|e| Verdict::violation(format!("{}: not a tag list: {e}", r2.what)))?;
    let got = list.tags.unwrap_or_default();
    let want = [t[4].clone()];
    ensure(first == t[2..4] && got.starts_with(&want), || {
        format!(
            "{}: after [{}] the next page is [{}], expected it to start with [{}]",
            r2.what,
            first.join(", "),
            got.join(", "),
            want.join(", ")
        )
    })?;
    Ok(Verdict::Pass)
}

async fn tags_unknown_repository(c: &mut Ctx) -> CheckResult {
    let path = format!("/v2/{}/missing-{}/tags/list", c.repo, random_hex(6));
    c.send(Req::new(Method::GET, path))
        .await?
        .expect_status(&[404])?;
    Ok(Verdict::Pass)
}

async fn referrers(c: &mut Ctx, digest: &str, query: &str) -> Result<Resp, Verdict> {
    let path = c.path(&format!("referrers/{digest}{query}"));
    c.send(Req::new(Method::GET, path)).await
}

/// Err(unsupported) when the registry has no referrers API (404).
async fn need_referrers(c: &mut Ctx) -> Result<(), Verdict> {
    let d = c.pull_target()?.image.digest.to_string();
    let r = referrers(c, &d, "").await?;
    if r.status() == 404 {
        return Err(Verdict::Unsupported(format!(
            "{}: 404, no referrers API",
            r.what
        )));
    }
    Ok(())
}

/// The index of a referrers response, checked for status and Content-Type.
fn referrers_index(r: &Resp) -> Result<Vec<serde_json::Value>, Verdict> {
    r.expect_status(&[200])?;
    let ct = r.require("content-type")?;
    ensure(media_type(ct) == OCI_INDEX, || {
        format!("{}: Content-Type is {ct}, expected {OCI_INDEX}", r.what)
    })?;
    let v: serde_json::Value = serde_json::from_slice(r.body())
        .map_err(|e| Verdict::violation(format!("{}: not JSON: {e}", r.what)))?;
    v.get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .ok_or_else(|| Verdict::violation(format!("{}: no manifests array", r.what)))
}

fn find<'a>(list: &'a [serde_json::Value], m: &Manifest) -> Option<&'a serde_json::Value> {
    list.iter().find(|d| d["digest"] == m.digest().as_str())
}

async fn referrers_api(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    need_referrers(c).await.map_err(|v| match v {
        Verdict::Unsupported(reason) => Verdict::Violation(reason),
        v => v,
    })?;
    Ok(Verdict::Pass)
}

/// Err(not run) in a read-only run: the check needs the artifacts a pushing run refers
/// to its image.
fn need_test_referrers(c: &Ctx) -> Result<(), Verdict> {
    c.need_writes().map_err(|_| {
        Verdict::NotRun(
            "read-only run: no artifacts of known types were pushed to refer to the image".into(),
        )
    })
}

async fn referrers_list(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    need_test_referrers(c)?;
    need_referrers(c).await?;
    let d = c.fx.image.digest().to_string();
    let r = referrers(c, &d, "").await?;
    let list = referrers_index(&r)?;
    for (m, ty) in [
        (&c.fx.artifact_a, ARTIFACT_A),
        (&c.fx.artifact_b, ARTIFACT_B),
    ] {
        let desc = find(&list, m).ok_or_else(|| {
            Verdict::violation(format!(
                "{}: the referrer {} is not listed",
                r.what,
                m.digest()
            ))
        })?;
        ensure(desc["artifactType"] == ty, || {
            format!(
                "{}: artifactType of {} is {}, expected {ty}",
                r.what,
                m.digest(),
                desc["artifactType"]
            )
        })?;
        ensure(
            desc["annotations"]["org.berth.conformance.run"] == c.fx.run.as_str(),
            || {
                format!(
                    "{}: the annotations of {} are not the manifest's",
                    r.what,
                    m.digest()
                )
            },
        )?;
        ensure(
            desc["mediaType"] == OCI_MANIFEST && desc["size"] == m.blob.size(),
            || {
                format!(
                    "{}: the descriptor of {} has the wrong mediaType or size",
                    r.what,
                    m.digest()
                )
            },
        )?;
    }
    Ok(Verdict::Pass)
}

async fn referrers_filter(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    need_test_referrers(c)?;
    need_referrers(c).await?;
    let d = c.fx.image.digest().to_string();
    let r = referrers(c, &d, &format!("?artifactType={ARTIFACT_A}")).await?;
    let list = referrers_index(&r)?;
    let applied = r
        .header("oci-filters-applied")
        .is_some_and(|h| h.split(',').any(|f| f.trim() == "artifactType"));
    let only_a = list.iter().all(|d| d["artifactType"] == ARTIFACT_A);
    ensure(find(&list, &c.fx.artifact_a).is_some(), || {
        format!("{}: the referrer of type {ARTIFACT_A} is missing", r.what)
    })?;
    ensure(applied && only_a, || {
        if only_a {
            format!(
                "{}: filtered without OCI-Filters-Applied: artifactType",
                r.what
            )
        } else if applied {
            format!("{}: OCI-Filters-Applied but other types listed", r.what)
        } else {
            format!("{}: artifactType filter not applied", r.what)
        }
    })?;
    Ok(Verdict::Pass)
}

async fn referrers_none(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    need_referrers(c).await?;
    let r = referrers(c, &format!("sha256:{}", random_hex(32)), "").await?;
    let list = referrers_index(&r)?;
    ensure(list.is_empty(), || {
        format!("{}: {} referrers of an unknown digest", r.what, list.len())
    })?;
    Ok(Verdict::Pass)
}

async fn referrers_invalid_digest(c: &mut Ctx) -> CheckResult {
    need_setup(c)?;
    need_referrers(c).await?;
    referrers(c, "sha256:not-a-digest", "")
        .await?
        .expect_status(&[400])?;
    Ok(Verdict::Pass)
}

async fn oci_subject(c: &mut Ctx) -> CheckResult {
    c.need_writes()?;
    need_setup(c)?;
    need_referrers(c).await?;
    let want = c.fx.image.digest().to_string();
    match &c.setup_oci_subject {
        Some(got) if *got == want => Ok(Verdict::Pass),
        Some(got) => Err(Verdict::violation(format!(
            "PUT of the artifact (setup): OCI-Subject is {got}, expected {want}"
        ))),
        None => Err(Verdict::violation(
            "PUT of the artifact (setup): no OCI-Subject header, though the referrers API is available".to_owned(),
        )),
    }
}

async fn subject_missing_accepted(c: &mut Ctx) -> CheckResult {
    c.need_writes()?;
    need_setup(c)?;
    let empty = c.fx.empty_json.clone();
    let mut m = image_manifest(&empty, OCI_EMPTY, &[&empty]);
    m["layers"][0]["mediaType"] = serde_json::json!(OCI_EMPTY);
    m["artifactType"] = serde_json::json!(ARTIFACT_A);
    let absent = Blob::random(64);
    m["subject"] = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": absent.digest.as_str(), "size": 64});
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

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link("</v2/a/tags/list?n=2&last=b>; rel=\"next\""),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link("<https://x/y>; rel=prev, <https://x/z>; rel=\"next\""),
            Some("https://x/z")
        );
        assert_eq!(next_link("<https://x/y>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }
}
