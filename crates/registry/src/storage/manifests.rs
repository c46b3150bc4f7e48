//! Manifests: stored byte-exact as blobs, made visible in a repository by a revision
//! record; a push links what it references, its referrer record and its tags.

use std::time::{Duration, Instant};

use berth_oci::{Digest, ManifestInfo};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Driver, Repository, Result, StorageError, missing_ok, paths};

/// The longest a manifest push may take from marking its blobs referenced to recording the
/// manifest. Must stay well under `gc::MIN_GRACE`: see `gc.rs` for why.
pub const MAX_PUSH_WINDOW: Duration = Duration::from_secs(20);

/// What the registry records about a manifest in a repository (its revision link).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionMeta {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The manifests of one repository.
#[derive(Debug)]
pub struct Manifests<'a, D: Driver> {
    pub(super) repo: Repository<'a, D>,
}

fn check_size(what: &'static str, d: &Digest, declared: u64, stored: u64) -> Result<()> {
    if declared == stored {
        return Ok(());
    }
    Err(StorageError::DescriptorSizeMismatch {
        what,
        digest: d.clone(),
        declared,
        stored,
    })
}

impl<'a, D: Driver> Manifests<'a, D> {
    fn unknown(&self, reference: &str) -> StorageError {
        StorageError::ManifestUnknown {
            repo: self.repo.name.to_owned(),
            reference: reference.to_owned(),
        }
    }

    /// The revision record of manifest `d` in this repository, if it is there.
    pub async fn revision(&self, d: &Digest) -> Result<Option<RevisionMeta>> {
        let path = paths::revision_link(self.repo.name, d);
        let Some(raw) = missing_ok(self.repo.driver().get_content(&path).await)? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: format!("revision record for {d} in {}", self.repo.name),
                source: Box::new(e),
            })
    }

    /// Manifest `d`'s revision record and bytes from the read cache alone, for a GET by a
    /// tag the caller has just read from storage. The tag stands for the revision record: a
    /// push records the revision before it writes the tag, and a delete removes every tag
    /// naming the manifest before the revision (so a tag never names a missing manifest,
    /// and a delete through any replica is a 404 here at once). The record's fields follow
    /// from the content: its size, and its media type when the manifest declares
    /// `mediaType` (which is then what the push recorded). `None` — read the record from
    /// storage — when the content is not cached or declares no media type.
    pub fn tagged_from_cache(&self, d: &Digest) -> Option<(RevisionMeta, Bytes)> {
        let content = self.repo.reg.cache.content(d)?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Declared {
            media_type: Option<String>,
            subject: Option<Subject>,
        }
        #[derive(Deserialize)]
        struct Subject {
            digest: String,
        }
        let declared: Declared = serde_json::from_slice(&content).ok()?;
        let meta = RevisionMeta {
            digest: d.to_string(),
            media_type: declared.media_type.filter(|m| !m.is_empty())?,
            size: content.len() as u64,
            subject: declared.subject.map(|s| s.digest),
        };
        Some((meta, content))
    }

    /// The manifest's bytes, exactly as pushed, from the read cache when it has them (the
    /// caller read the revision record from storage first); `reference` names it in the
    /// error.
    pub async fn content(&self, d: &Digest, reference: &str) -> Result<Bytes> {
        let cache = &self.repo.reg.cache;
        if let Some(b) = cache.content(d) {
            return Ok(b);
        }
        match self.repo.driver().get_content(&paths::blob_data(d)).await {
            Ok(b) => {
                cache.insert_content(d, b.clone());
                Ok(b)
            }
            Err(e) if e.is_not_found() => {
                self.repo.reg.forget(d);
                Err(self.unknown(reference))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Store a manifest the caller has parsed (`info`) and whose digest it computed, then
    /// point `tags` at it. Every blob and child manifest it references must already be in
    /// this repository (except non-distributable layers with URLs, and its subject).
    /// Returns the subject's digest when it has one.
    pub async fn put(
        &self,
        bytes: Bytes,
        digest: &Digest,
        info: &ManifestInfo,
        tags: &[String],
    ) -> Result<Option<Digest>> {
        let name = self.repo.name;
        let reg = self.repo.reg;
        // From the first mark below to the revision record, at most MAX_PUSH_WINDOW may
        // pass: that bound is what makes a concurrent garbage collection safe (see gc.rs).
        let window = Instant::now();
        for desc in info.referenced_blobs() {
            let d = berth_oci::descriptor_digest(desc)
                .map_err(|source| StorageError::InvalidDescriptor { source })?;
            let foreign = desc.urls().as_ref().is_some_and(|u| !u.is_empty());
            let Some(stored) = self.repo.blobs().size(&d).await? else {
                if foreign {
                    continue; // non-distributable layer fetched from its URLs
                }
                return Err(StorageError::ManifestBlobUnknown {
                    message: format!(
                        "manifest references blob {d}, which is not in repository {name}; push it first"
                    ),
                    digest: d,
                });
            };
            check_size("blob", &d, desc.size(), stored)?;
            if !reg.mark_referenced(&d).await? {
                return Err(StorageError::ManifestBlobUnknown {
                    message: format!("blob {d} was removed"),
                    digest: d,
                });
            }
        }
        for desc in info.referenced_manifests() {
            let d = berth_oci::descriptor_digest(desc)
                .map_err(|source| StorageError::InvalidDescriptor { source })?;
            let Some(child) = self.revision(&d).await? else {
                return Err(StorageError::ManifestBlobUnknown {
                    message: format!(
                        "index references manifest {d}, which is not in repository {name}; push it first"
                    ),
                    digest: d,
                });
            };
            check_size("manifest", &d, desc.size(), child.size)?;
            // a child manifest is kept by its own revision record; the mark only refreshes
            let _ = reg.mark_referenced(&d).await;
        }
        let subject = match &info.subject {
            Some(s) => Some(
                berth_oci::descriptor_digest(s)
                    .map_err(|source| StorageError::InvalidSubject { source })?,
            ),
            None => None,
        };

        // Content first, then the links that make it visible.
        if !reg.mark_referenced(digest).await? {
            self.repo
                .driver()
                .put_content(&paths::blob_data(digest), bytes.clone())
                .await?;
        }
        self.repo.blobs().link(digest).await?;
        let meta = RevisionMeta {
            digest: digest.to_string(),
            media_type: info.media_type.clone(),
            size: bytes.len() as u64,
            subject: subject.as_ref().map(|s| s.to_string()),
        };
        let meta_json = serde_json::to_vec(&meta).map_err(|e| StorageError::Corrupt {
            what: "revision record to write".into(),
            source: Box::new(e),
        })?;
        if let Some(s) = &subject {
            let mut desc = json!({
                "mediaType": info.media_type,
                "digest": digest.to_string(),
                "size": bytes.len(),
            });
            if let Some(at) = &info.artifact_type {
                desc["artifactType"] = json!(at);
            }
            if let Some(a) = &info.annotations
                && !a.is_empty()
            {
                desc["annotations"] = json!(a);
            }
            self.repo.referrers().add(s, digest, &desc).await?;
        }
        if window.elapsed() > MAX_PUSH_WINDOW {
            return Err(StorageError::PushWindowExceeded {
                window: MAX_PUSH_WINDOW,
            });
        }
        self.repo
            .driver()
            .put_content(&paths::revision_link(name, digest), Bytes::from(meta_json))
            .await?;
        for t in tags {
            self.repo.tags().put(t, digest).await?;
        }
        tracing::debug!(repo = name, digest = %digest, tags = ?tags, "manifest stored");
        Ok(subject)
    }

    /// Delete manifest `d` from this repository: its tags first (so no tag ever points at
    /// a missing manifest), its referrer record, then its revision. `reference` names it in
    /// the error.
    pub async fn delete(&self, d: &Digest, reference: &str) -> Result<()> {
        let Some(meta) = self.revision(d).await? else {
            return Err(self.unknown(reference));
        };
        let tags = self.repo.tags();
        for t in tags.all().await? {
            if tags.get(&t).await?.as_ref() == Some(d) {
                let _ = self
                    .repo
                    .driver()
                    .delete(&paths::tag_dir(self.repo.name, &t))
                    .await;
            }
        }
        if let Some(s) = meta.subject.as_deref().and_then(|s| Digest::parse(s).ok()) {
            self.repo.referrers().remove(&s, d).await;
        }
        self.repo
            .driver()
            .delete(&paths::revision_link(self.repo.name, d))
            .await?;
        Ok(())
    }
}
