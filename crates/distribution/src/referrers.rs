//! Referrers: the API (`GET /v2/<name>/referrers/<digest>`) and, for registries without it,
//! the tag schema fallback (distribution-spec "Listing Referrers", "Referrers Tag Schema",
//! "Pushing Manifests with Subject").

use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_oci::{Digest, ManifestInfo, media_type};
use http::Method;
use http::header::{ACCEPT, LINK};
use serde_json::{Value, json};

use crate::auth::Scopes;
use crate::body::read_body;
use crate::client::{Client, Repository};
use crate::error::{Error, ErrorKind};
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::transport::{Endpoint, Op, Outgoing};
use crate::url::{next_link, resolve, with_query};

/// Referrer pages followed at most.
const MAX_PAGES: usize = 1000;

/// The tag under which registries without the referrers API keep the referrers index of
/// `subject`: `<alg>-<hex>`, the algorithm cut to 32 and the hex to 64 characters.
pub fn referrers_tag(subject: &Digest) -> String {
    let alg = subject.algorithm().as_str();
    let hex = subject.hex();
    format!(
        "{}-{}",
        &alg[..alg.len().min(32)],
        &hex[..hex.len().min(64)]
    )
}

#[derive(serde::Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn filter(mut descriptors: Vec<Descriptor>, artifact_type: Option<&str>) -> Vec<Descriptor> {
    if let Some(t) = artifact_type {
        descriptors.retain(|d| {
            d.artifact_type()
                .as_ref()
                .is_some_and(|a| a.to_string() == t)
        });
    }
    descriptors
}

impl Client {
    /// The manifests whose `subject` is `subject`, optionally only those of
    /// `artifact_type`. Uses the referrers API; when the registry answers `404` there, reads
    /// the referrers tag index instead. Filters on the client when the registry did not
    /// (`OCI-Filters-Applied`).
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), digest = %subject))]
    pub async fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, Error> {
        let op = Op {
            name: "list referrers of",
            target: repo.target(Some(subject)),
        };
        let mut path = repo.path(&format!("referrers/{subject}"));
        if let Some(t) = artifact_type {
            path = with_query(&path, "artifactType", t);
        }
        let mut endpoint = Endpoint::Path(path);
        let mut found = Vec::new();
        for page in 0..MAX_PAGES {
            let out = Outgoing::new(Method::GET, endpoint).header(ACCEPT, media_type::OCI_INDEX);
            let reply = self
                .expect(
                    &op,
                    repo.registry(),
                    Scopes::pull(repo.name()),
                    out,
                    &[200, 404],
                )
                .await?;
            if reply.status() == 404 {
                if page > 0 {
                    return Err(self.error(&op, repo.registry(), reply).await);
                }
                drop(reply);
                tracing::debug!("no referrers API; reading the referrers tag");
                return self.referrers_from_tag(repo, subject, artifact_type).await;
            }
            let filtered = reply
                .header(crate::OCI_FILTERS_APPLIED)
                .is_some_and(|f| f.split(',').any(|f| f.trim() == "artifactType"));
            let next = reply
                .header(LINK)
                .and_then(next_link)
                .and_then(|l| resolve(&reply.url, l));
            let body = read_body(&op, reply.resp, MAX_MANIFEST_BYTES, self.idle()).await?;
            let index: Index =
                serde_json::from_slice(&body).map_err(|source| Error::InvalidDocument {
                    what: "referrers index",
                    target: op.target.clone(),
                    source,
                })?;
            found.extend(if filtered {
                index.manifests
            } else {
                filter(index.manifests, artifact_type)
            });
            match next {
                Some(url) => endpoint = Endpoint::Url(url),
                None => break,
            }
        }
        Ok(found)
    }

    async fn referrers_from_tag(
        &self,
        repo: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, Error> {
        let tag = referrers_tag(subject);
        let m = match self
            .get_manifest(repo, &tag, &[media_type::OCI_INDEX])
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let index: Index =
            serde_json::from_slice(&m.bytes).map_err(|source| Error::InvalidDocument {
                what: "referrers tag index",
                target: repo.target(Some(&tag)),
                source,
            })?;
        Ok(filter(index.manifests, artifact_type))
    }

    /// Add `referrer` (the descriptor of a manifest whose subject is `subject`) to the
    /// referrers tag index of `subject`, creating it when missing: what a registry without
    /// the referrers API needs after such a push. Does nothing when it is listed already.
    /// Concurrent updates of one index can lose an entry (the schema has no locking).
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), digest = %subject))]
    pub async fn push_referrer_fallback(
        &self,
        repo: &Repository,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<(), Error> {
        let tag = referrers_tag(subject);
        let target = repo.target(Some(&tag));
        let mut index = match self
            .get_manifest(repo, &tag, &[media_type::OCI_INDEX])
            .await
        {
            Ok(m) => serde_json::from_slice::<Value>(&m.bytes).map_err(|source| {
                Error::InvalidDocument {
                    what: "referrers tag index",
                    target: target.clone(),
                    source,
                }
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => json!({
                "schemaVersion": 2,
                "mediaType": media_type::OCI_INDEX,
                "manifests": [],
            }),
            Err(e) => return Err(e),
        };
        let entry = serde_json::to_value(referrer).map_err(|source| Error::InvalidDocument {
            what: "referrer descriptor",
            target: target.clone(),
            source,
        })?;
        let Some(list) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
            return Err(Error::InvalidResponse {
                operation: "update referrers tag",
                target,
                reason: "the index has no manifests list".into(),
            });
        };
        let digest = referrer.digest().to_string();
        if list
            .iter()
            .any(|d| d.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
        {
            return Ok(());
        }
        list.push(entry);
        let bytes = serde_json::to_vec(&index).map_err(|source| Error::InvalidDocument {
            what: "referrers tag index",
            target,
            source,
        })?;
        self.put_manifest(repo, &tag, &bytes, media_type::OCI_INDEX)
            .await?;
        Ok(())
    }

    /// After pushing `bytes` (digest `digest`) to a registry that did not answer with
    /// `OCI-Subject`: if the manifest has a subject, update the referrers tag index.
    pub(crate) async fn referrers_fallback_after_push(
        &self,
        repo: &Repository,
        digest: &Digest,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<(), Error> {
        let Ok(info) = ManifestInfo::parse(bytes, Some(content_type)) else {
            return Ok(());
        };
        let Some(subject) = info.subject.as_ref() else {
            return Ok(());
        };
        let Ok(subject) = berth_oci::descriptor_digest(subject) else {
            return Ok(());
        };
        let Ok(oci_digest) = berth_oci::oci_spec::image::Digest::try_from(digest) else {
            return Ok(());
        };
        let mut d = Descriptor::new(
            MediaType::from(info.media_type.as_str()),
            bytes.len() as u64,
            oci_digest,
        );
        d.set_artifact_type(info.artifact_type.as_deref().map(MediaType::from));
        d.set_annotations(info.annotations.clone());
        tracing::debug!(subject = %subject, "registry did not process the subject; updating the referrers tag");
        Box::pin(self.push_referrer_fallback(repo, &subject, &d)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_schema() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(referrers_tag(&d), format!("sha256-{}", d.hex()));
        let d = Digest::of(berth_oci::Algorithm::Sha512, b"x");
        let t = referrers_tag(&d);
        assert_eq!(t.len(), "sha512-".len() + 64);
        assert!(berth_oci::validate_tag(&t).is_ok());
    }

    #[test]
    fn client_side_filter() {
        let index: Index = serde_json::from_value(json!({"manifests": [
            {"mediaType": media_type::OCI_MANIFEST, "digest": Digest::sha256_of(b"a").to_string(), "size": 1, "artifactType": "application/x.sig"},
            {"mediaType": media_type::OCI_MANIFEST, "digest": Digest::sha256_of(b"b").to_string(), "size": 1, "artifactType": "application/x.sbom"},
            {"mediaType": media_type::OCI_MANIFEST, "digest": Digest::sha256_of(b"c").to_string(), "size": 1},
        ]}))
        .unwrap();
        assert_eq!(filter(index.manifests.clone(), None).len(), 3);
        let sigs = filter(index.manifests, Some("application/x.sig"));
        assert_eq!(sigs.len(), 1);
        assert_eq!(
            sigs[0].digest().to_string(),
            Digest::sha256_of(b"a").to_string()
        );
    }
}
