//! Repository-scoped operations over the driver, shared by the handlers: blob links,
//! manifest revisions, tags. All state is read from and written to storage.

use berth_oci::Digest;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{RegistryError, Result};
use crate::paths;
use crate::storage::{DResult, Driver};

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

fn missing_ok<T>(r: DResult<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl<D: Driver> App<D> {
    /// Size of the blob if it is linked into `name` and its content exists.
    pub(crate) async fn linked_blob_size(&self, name: &str, d: &Digest) -> Result<Option<u64>> {
        if missing_ok(self.driver.stat(&paths::layer_link(name, d)).await)?.is_none() {
            return Ok(None);
        }
        Ok(missing_ok(self.driver.stat(&paths::blob_data(d)).await)?.map(|i| i.size))
    }

    /// Size of the blob's content if it exists anywhere in the registry.
    pub(crate) async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        Ok(missing_ok(self.driver.stat(&paths::blob_data(d)).await)?.map(|i| i.size))
    }

    pub(crate) async fn link_blob(&self, name: &str, d: &Digest) -> Result<()> {
        self.driver
            .put_content(&paths::layer_link(name, d), Bytes::from(d.to_string()))
            .await?;
        Ok(())
    }

    /// Refresh a blob's modification time so a concurrent garbage collection keeps it.
    /// Fails with BLOB_UNKNOWN when the content is gone.
    pub(crate) async fn touch_blob(&self, d: &Digest) -> Result<()> {
        match self.driver.touch(&paths::blob_data(d)).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Err(RegistryError::blob_unknown(d)),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn revision(&self, name: &str, d: &Digest) -> Result<Option<RevisionMeta>> {
        let Some(raw) = missing_ok(
            self.driver
                .get_content(&paths::revision_link(name, d))
                .await,
        )?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw).map(Some).map_err(|e| {
            RegistryError::internal(format!("corrupt revision record for {d} in {name}"), e)
        })
    }

    pub(crate) async fn tag_target(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        let Some(raw) = missing_ok(self.driver.get_content(&paths::tag_link(name, tag)).await)?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&raw);
        Digest::parse(text.trim())
            .map(Some)
            .map_err(|e| RegistryError::internal(format!("corrupt tag link {tag} in {name}"), e))
    }

    pub(crate) async fn repo_exists(&self, name: &str) -> Result<bool> {
        Ok(missing_ok(self.driver.stat(&paths::repo(name)).await)?.is_some())
    }

    pub(crate) async fn list_or_empty(&self, path: &str) -> Result<Vec<String>> {
        Ok(missing_ok(self.driver.list(path).await)?.unwrap_or_default())
    }
}

/// Every repository in storage, sorted. A directory holding `_manifests` or `_layers` (and,
/// with `with_uploads_only`, one holding only `_uploads`: a first push still in progress or
/// abandoned) is a repository; directories starting with `_` are registry data, never names.
pub(crate) async fn walk_repositories<D: Driver>(
    driver: &D,
    with_uploads_only: bool,
) -> DResult<Vec<String>> {
    let root = paths::repositories_root();
    let mut out = Vec::new();
    let mut queue = vec![String::new()];
    while let Some(prefix) = queue.pop() {
        let dir = if prefix.is_empty() {
            root.clone()
        } else {
            format!("{root}/{prefix}")
        };
        let children = match driver.list(&dir).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        if children
            .iter()
            .any(|c| c == "_manifests" || c == "_layers" || (with_uploads_only && c == "_uploads"))
        {
            out.push(prefix.clone());
        }
        for c in children {
            if c.starts_with('_') {
                continue;
            }
            queue.push(if prefix.is_empty() {
                c
            } else {
                format!("{prefix}/{c}")
            });
        }
    }
    out.sort();
    Ok(out)
}
