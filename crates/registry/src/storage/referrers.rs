//! Referrers: for each subject digest, one record per manifest naming it as `subject`
//! (its descriptor JSON), written when the manifest is pushed.

use berth_oci::Digest;
use bytes::Bytes;
use serde_json::Value;

use super::{Driver, Repository, Result, paths};

/// The referrers index of one repository.
#[derive(Debug)]
pub struct Referrers<'a, D: Driver> {
    pub(super) repo: Repository<'a, D>,
}

impl<'a, D: Driver> Referrers<'a, D> {
    /// The descriptors of the manifests whose subject is `subject`, those of
    /// `artifact_type` only when given. Corrupt records are skipped (and logged).
    pub async fn list(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Vec<Value>> {
        let dir = paths::referrers_dir(self.repo.name, subject);
        let mut out = Vec::new();
        for entry in self.repo.list_or_empty(&dir).await? {
            let raw = match self
                .repo
                .driver()
                .get_content(&format!("{dir}/{entry}"))
                .await
            {
                Ok(r) => r,
                Err(e) if e.is_not_found() => continue, // deleted meanwhile
                Err(e) => return Err(e.into()),
            };
            let Ok(desc) = serde_json::from_slice::<Value>(&raw) else {
                tracing::warn!(
                    repo = self.repo.name,
                    entry,
                    "skipping corrupt referrer record"
                );
                continue;
            };
            if let Some(f) = artifact_type
                && desc.get("artifactType").and_then(Value::as_str) != Some(f)
            {
                continue;
            }
            out.push(desc);
        }
        Ok(out)
    }

    pub(super) async fn add(
        &self,
        subject: &Digest,
        referrer: &Digest,
        desc: &Value,
    ) -> Result<()> {
        self.repo
            .driver()
            .put_content(
                &paths::referrer_entry(self.repo.name, subject, referrer),
                Bytes::from(desc.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Best effort: a record left behind names a manifest that is gone, which a client
    /// answers with MANIFEST_UNKNOWN when it follows it.
    pub(super) async fn remove(&self, subject: &Digest, referrer: &Digest) {
        let _ = self
            .repo
            .driver()
            .delete(&paths::referrer_entry(self.repo.name, subject, referrer))
            .await;
    }
}
