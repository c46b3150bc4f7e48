//! What the pull checks pull: the test data the setup pushed, or — in a read-only run —
//! content that already exists in the registry, named by the user (a tag or a digest) and
//! resolved here with `GET`s only, as the OCI conformance suite's pull-only mode takes
//! `OCI_TAG_NAME`, `OCI_MANIFEST_DIGEST` and `OCI_BLOB_DIGEST` from its user.
//!
//! From the name: the manifest it names (an image manifest or an index); when an index, its
//! first image-manifest child; that image's config and layers, of which one blob (the
//! smallest layer of at least [`RANGE_MIN`] bytes that a check may read whole, else the
//! config) is the blob the blob checks pull; and the repository's tags, for the tags-list
//! checks.

use berth_oci::media_type::{DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST};
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use http::Method;

use crate::checks::{ACCEPT_MANIFESTS, ensure, media_type};
use crate::data::Fixtures;
use crate::model::Verdict;
use crate::session::{Ctx, Req, Resp};

/// Size of the blob range the Range check asks for needs a blob at least this large.
pub(crate) const RANGE_MIN: u64 = 100;
/// Largest blob a check reads whole.
const BLOB_MAX: u64 = 4 << 20;

/// A manifest or blob: its digest, size, media type, and bytes when known.
#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub digest: Digest,
    pub size: u64,
    /// The media type it declares (its `mediaType`, or its descriptor's); empty if none.
    pub media_type: String,
    /// The bytes (always known for manifests; for an existing blob, `None` until read).
    pub data: Option<Bytes>,
}

impl Content {
    fn known(data: Bytes, media_type: &str) -> Content {
        Content {
            digest: Digest::sha256_of(&data),
            size: data.len() as u64,
            media_type: media_type.to_owned(),
            data: Some(data),
        }
    }

    /// Err(violation) unless `body` is this content: its bytes when known, else its size and
    /// digest.
    pub(crate) fn same_as(&self, r: &Resp, body: &[u8]) -> Result<(), Verdict> {
        let ok = match &self.data {
            Some(d) => d.as_ref() == body,
            None => {
                body.len() as u64 == self.size
                    && Digest::of(self.digest.algorithm(), body) == self.digest
            }
        };
        ensure(ok, || {
            format!(
                "{}: the body ({} bytes) is not {} ({} bytes)",
                r.what,
                body.len(),
                self.digest,
                self.size
            )
        })
    }
}

/// The content the pull checks use.
#[derive(Debug, Clone)]
pub(crate) struct PullTarget {
    /// The tag it is pulled by (`None` when named by digest).
    pub tag: Option<String>,
    /// What the tag names: an image manifest or an index.
    pub tagged: Content,
    /// An image manifest: `tagged`, or the index's first image child.
    pub image: Content,
    /// An image index, when there is one.
    pub index: Option<Content>,
    /// The blob the blob checks pull (`None` when the image has none small enough).
    pub blob: Option<Content>,
    /// The repository's tags in lexical order (the run's tags when it pushed them).
    pub tags: Vec<String>,
}

impl PullTarget {
    /// The test data a pushing run puts in the registry.
    pub(crate) fn of_fixtures(fx: &Fixtures) -> PullTarget {
        let image = Content::known(fx.image.blob.data.clone(), fx.image.media_type);
        PullTarget {
            tag: Some(fx.tag()),
            tagged: image.clone(),
            image,
            index: Some(Content::known(
                fx.index.blob.data.clone(),
                fx.index.media_type,
            )),
            blob: Some(Content::known(fx.layer.data.clone(), "")),
            tags: fx.tags(),
        }
    }

    /// Err(not run) naming what the content lacks.
    pub(crate) fn need<'a, T>(&self, what: &'a Option<T>, lacking: &str) -> Result<&'a T, Verdict> {
        what.as_ref().ok_or_else(|| {
            Verdict::NotRun(format!(
                "the content checked has no {lacking} (read-only: nothing is pushed to fill the gap)"
            ))
        })
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

fn is_image(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST_V2
}

/// GET the manifest `reference`: its content (media type from its `mediaType`, else from
/// `descriptor_type`) and JSON.
async fn manifest(
    c: &mut Ctx,
    reference: &str,
    descriptor_type: &str,
) -> Result<(Content, serde_json::Value), Verdict> {
    let path = c.path(&format!("manifests/{reference}"));
    let r = c
        .send(Req::new(Method::GET, path).header("accept", ACCEPT_MANIFESTS))
        .await?;
    r.expect_status(&[200])?;
    let json: serde_json::Value = serde_json::from_slice(r.body())
        .map_err(|e| Verdict::violation(format!("{}: the manifest is not JSON: {e}", r.what)))?;
    let declared = json["mediaType"].as_str().unwrap_or(descriptor_type);
    let mut content = Content::known(r.body().clone(), declared);
    if let Ok(d) = Digest::parse(reference) {
        // Named by a digest of another algorithm: keep that one.
        if d.algorithm() != Algorithm::Sha256 {
            content.digest = Digest::of(d.algorithm(), r.body());
        }
    }
    // Nothing declared: the Content-Type served tells an image from an index; the
    // Content-Type checks skip (there is nothing of the manifest's own to compare with).
    let served = r.header("content-type").map(media_type).unwrap_or("");
    Ok((content, with_kind(json, served)))
}

/// `json` with `mediaType` set to `kind` when it has none (only to tell images from indexes).
fn with_kind(mut json: serde_json::Value, kind: &str) -> serde_json::Value {
    if json.get("mediaType").is_none() && json.is_object() {
        json["mediaType"] = serde_json::json!(kind);
    }
    json
}

/// A blob descriptor's content (bytes unknown).
fn descriptor(d: &serde_json::Value) -> Option<Content> {
    Some(Content {
        digest: Digest::parse(d["digest"].as_str()?).ok()?,
        size: d["size"].as_u64()?,
        media_type: d["mediaType"].as_str().unwrap_or("").to_owned(),
        data: None,
    })
}

/// Resolve `reference` (tag or digest) in the repository under test, with `GET`s only.
pub(crate) async fn resolve(c: &mut Ctx, reference: &str) -> Result<(), Verdict> {
    let (tagged, json) = manifest(c, reference, "").await?;
    let kind = json["mediaType"].as_str().unwrap_or("").to_owned();
    let (image, image_json, index) = if is_index(&kind) {
        let child = json["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["mediaType"].as_str().is_some_and(is_image))
            .cloned()
            .ok_or_else(|| {
                Verdict::NotRun(format!(
                    "{reference} is an index without an image manifest in it"
                ))
            })?;
        let digest = child["digest"].as_str().unwrap_or("").to_owned();
        let child_type = child["mediaType"].as_str().unwrap_or("").to_owned();
        let (image, image_json) = manifest(c, &digest, &child_type).await?;
        (image, image_json, Some(tagged.clone()))
    } else if is_image(&kind) || json.get("layers").is_some() {
        (tagged.clone(), json, None)
    } else {
        return Err(Verdict::NotRun(format!(
            "{reference} is neither an image manifest nor an index (mediaType {kind:?})"
        )));
    };
    let config = descriptor(&image_json["config"]);
    let layers: Vec<Content> = image_json["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(descriptor)
        .collect();
    let blob = layers
        .iter()
        .filter(|l| (RANGE_MIN..=BLOB_MAX).contains(&l.size))
        .min_by_key(|l| l.size)
        .cloned()
        .or(config.filter(|c| c.size <= BLOB_MAX));
    let tags = existing_tags(c).await;
    let is_digest = Digest::parse(reference).is_ok();
    c.target = Some(PullTarget {
        tag: (!is_digest).then(|| reference.to_owned()),
        tagged,
        image,
        index,
        blob,
        tags,
    });
    Ok(())
}

/// The repository's tags, sorted (empty when they cannot be listed: the tags-list checks
/// then find out why on their own).
async fn existing_tags(c: &mut Ctx) -> Vec<String> {
    let path = c.path("tags/list");
    let Ok(r) = c.send(Req::new(Method::GET, path)).await else {
        return Vec::new();
    };
    if r.status() != 200 {
        return Vec::new();
    }
    let mut tags: Vec<String> = serde_json::from_slice::<serde_json::Value>(r.body())
        .ok()
        .and_then(|v| {
            v["tags"].as_array().map(|t| {
                t.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    tags.sort();
    tags.dedup();
    tags
}
