//! Referrers kept in the store: the stored manifests whose `subject` is a given manifest
//! (signatures, SBOMs, attestations copied with `berth copy --referrers`, `load`ed from an
//! OCI archive, or pulled with their image).
//!
//! They need no index of their own: a referrer is a manifest blob naming its subject, and
//! garbage collection already keeps the stored manifests whose subject it keeps (see
//! [`Store::prune`]). Finding them scans the blobs that may be manifests — small JSON
//! files — as the collector does; a store holds hundreds of blobs, not millions.

use std::collections::HashMap;
use std::io;

use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_oci::{Algorithm, Digest, ManifestInfo, descriptor_digest};

use crate::gc::{MAX_REFERRER_MANIFEST, looks_like_json};
use crate::{Result, Store, StoreError};

impl Store {
    /// The descriptors of the stored manifests whose `subject` is `subject`, as the
    /// distribution spec's referrers API lists them (media type, digest, size,
    /// `artifactType`, annotations), sorted by digest.
    pub fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.paths.blob_dir(alg);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(StoreError::Referrers { path: dir, source }),
            };
            for entry in entries {
                let entry = entry.map_err(|source| StoreError::Referrers {
                    path: dir.clone(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = Digest::parse(&format!("{alg}:{name}")) else {
                    continue; // a writer's temporary file
                };
                let path = entry.path();
                let small_file = std::fs::symlink_metadata(&path)
                    .is_ok_and(|m| m.is_file() && m.len() <= MAX_REFERRER_MANIFEST);
                if !small_file || !looks_like_json(&path) {
                    continue;
                }
                let Ok(bytes) = self.read_blob(&digest) else {
                    continue; // removed by a concurrent prune
                };
                let Ok(info) = ManifestInfo::parse(&bytes, None) else {
                    continue; // a config, or JSON that is no manifest
                };
                let names_subject = info
                    .subject
                    .as_ref()
                    .and_then(|s| descriptor_digest(s).ok())
                    .is_some_and(|d| d == *subject);
                if names_subject && let Some(d) = referrer_descriptor(&digest, bytes.len(), info) {
                    found.push(d);
                }
            }
        }
        found.sort_by_key(|d| d.digest().to_string());
        Ok(found)
    }
}

fn referrer_descriptor(digest: &Digest, size: usize, info: ManifestInfo) -> Option<Descriptor> {
    // berth's digests are valid OCI digests; one that is not is skipped, not listed.
    let oci_digest = berth_oci::oci_spec::image::Digest::try_from(digest).ok()?;
    let mut desc = Descriptor::new(
        MediaType::from(info.media_type.as_str()),
        size as u64,
        oci_digest,
    );
    if let Some(t) = info.artifact_type {
        desc.set_artifact_type(Some(MediaType::from(t.as_str())));
    }
    if let Some(a) = info.annotations {
        desc.set_annotations(Some(a.into_iter().collect::<HashMap<_, _>>()));
    }
    Some(desc)
}
