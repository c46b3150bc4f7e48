//! Tags: `_manifests/tags/<tag>/current/link` holds the manifest digest.

use berth_oci::Digest;
use bytes::Bytes;

use super::{Driver, Repository, Result, StorageError, missing_ok, paths};

/// The tags of one repository.
#[derive(Debug)]
pub struct Tags<'a, D: Driver> {
    pub(super) repo: Repository<'a, D>,
}

impl<'a, D: Driver> Tags<'a, D> {
    /// The manifest `tag` points at, if any.
    pub async fn get(&self, tag: &str) -> Result<Option<Digest>> {
        let path = paths::tag_link(self.repo.name, tag);
        let Some(raw) = missing_ok(self.repo.driver().get_content(&path).await)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&raw);
        Digest::parse(text.trim())
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: format!("tag link {tag} in {}", self.repo.name),
                source: Box::new(e),
            })
    }

    pub(super) async fn put(&self, tag: &str, d: &Digest) -> Result<()> {
        self.repo
            .driver()
            .put_content(
                &paths::tag_link(self.repo.name, tag),
                Bytes::from(d.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Every tag, sorted; empty when the repository has none. Fails with
    /// [`StorageError::RepositoryUnknown`] when the repository does not exist.
    pub async fn list(&self) -> Result<Vec<String>> {
        if !self.repo.exists().await? {
            return Err(StorageError::RepositoryUnknown {
                repo: self.repo.name.to_owned(),
            });
        }
        self.all().await
    }

    pub(super) async fn all(&self) -> Result<Vec<String>> {
        self.repo
            .list_or_empty(&paths::tags_dir(self.repo.name))
            .await
    }

    /// Remove `tag` (not the manifest it points at).
    pub async fn delete(&self, tag: &str) -> Result<()> {
        if self.get(tag).await?.is_none() {
            return Err(StorageError::ManifestUnknown {
                repo: self.repo.name.to_owned(),
                reference: tag.to_owned(),
            });
        }
        self.repo
            .driver()
            .delete(&paths::tag_dir(self.repo.name, tag))
            .await?;
        Ok(())
    }
}
