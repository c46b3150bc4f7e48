//! Blobs as a repository sees them: content shared by the whole registry, visible in a
//! repository only through its `_layers` link (distribution's `linkedblobstore.go`).

use berth_oci::Digest;
use bytes::Bytes;

use super::{BoxReader, Driver, Repository, Result, StorageError, missing_ok, paths};

/// The blobs of one repository.
#[derive(Debug)]
pub struct Blobs<'a, D: Driver> {
    pub(super) repo: Repository<'a, D>,
}

impl<'a, D: Driver> Blobs<'a, D> {
    fn unknown(&self, d: &Digest) -> StorageError {
        StorageError::BlobUnknown {
            repo: self.repo.name.to_owned(),
            digest: d.clone(),
        }
    }

    /// Size of the blob if it is linked into this repository and its content exists.
    pub async fn size(&self, d: &Digest) -> Result<Option<u64>> {
        let driver = self.repo.driver();
        if missing_ok(driver.stat(&paths::layer_link(self.repo.name, d)).await)?.is_none() {
            return Ok(None);
        }
        self.repo.reg.blob_size(d).await
    }

    /// Stream the blob's content from `offset` (the caller checked it is linked).
    pub async fn open(&self, d: &Digest, offset: u64) -> Result<(BoxReader, u64)> {
        match self
            .repo
            .driver()
            .reader(&paths::blob_data(d), offset)
            .await
        {
            Ok(r) => Ok(r),
            Err(e) if e.is_not_found() => Err(self.unknown(d)),
            Err(e) => Err(e.into()),
        }
    }

    /// Where the client may download the blob directly (the caller checked it is linked),
    /// when the driver hands out such URLs.
    pub async fn redirect(&self, d: &Digest) -> Result<Option<String>> {
        Ok(self
            .repo
            .driver()
            .redirect_url(&paths::blob_data(d))
            .await?)
    }

    /// Make `d` visible in this repository.
    pub(super) async fn link(&self, d: &Digest) -> Result<()> {
        self.repo
            .driver()
            .put_content(
                &paths::layer_link(self.repo.name, d),
                Bytes::from(d.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Remove this repository's link; the content is shared and collected by `gc`.
    pub async fn unlink(&self, d: &Digest) -> Result<()> {
        match self
            .repo
            .driver()
            .delete(&paths::layer_link(self.repo.name, d))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Err(self.unknown(d)),
            Err(e) => Err(e.into()),
        }
    }

    /// Mount `d` from repository `from` (already authorised and validated by the caller):
    /// `Ok(false)` when it is not linked there (the spec's fallback is a new upload).
    pub async fn mount(&self, from: &str, d: &Digest) -> Result<bool> {
        if self
            .repo
            .reg
            .repository(from)
            .blobs()
            .size(d)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        if !self.repo.reg.mark_referenced(d).await? {
            return Err(self.unknown(d));
        }
        self.link(d).await?;
        Ok(true)
    }
}
