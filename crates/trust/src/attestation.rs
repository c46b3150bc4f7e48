//! Provenance attestations in registries: a [`Statement`]
//! pushed as an OCI artifact whose `subject` is the image, signed like any manifest, and
//! found again through the referrers API or its tag fallback.
//!
//! The artifact is an OCI image manifest with `artifactType` [`MEDIA_TYPE`], the empty
//! config and one layer (the statement, media type [`MEDIA_TYPE`], annotated with its
//! predicate type as docker buildx annotates its attestations). Checking an image's source
//! walks image → its attestations → each attestation's Notary signatures (verified with
//! [`verify_image`] under the trust policy of the image's repository) → the statement, which
//! must be about the image and name the required source. Only a statement whose
//! attestation manifest passes signature verification counts: anyone with push rights can
//! attach an unsigned one.

use std::collections::BTreeMap;

use berth_distribution::{Client, Repository};
use berth_oci::{Digest, media_type};
use serde_json::json;

use crate::envelope::TargetArtifact;
use crate::policy::TrustPolicy;
use crate::provenance::{
    MAX_STATEMENT_BYTES, MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION, ProvenanceError,
    SLSA_PROVENANCE_V1, Source, SourceRequirement, Statement,
};
use crate::repository::{
    RegistrySignatures, RepositoryError, VerifyImageError, VerifyImageOptions, push_artifact,
    verify_image,
};
use crate::truststore::TrustStore;

/// Attestations looked at, at most, per image: more are ignored (a bound on what anyone
/// with push rights can make a verifier fetch).
pub const MAX_ATTESTATIONS: usize = 16;

/// The largest attestation manifest read.
const MAX_ATTESTATION_MANIFEST: u64 = 64 << 10;

/// The attestation manifest for `statement` about `subject`.
pub fn attestation_manifest(subject: &TargetArtifact, statement: &[u8]) -> Vec<u8> {
    let layer_digest = Digest::sha256_of(statement);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "artifactType": MEDIA_TYPE,
        "config": {
            "mediaType": media_type::OCI_EMPTY_JSON,
            "digest": media_type::OCI_EMPTY_JSON_DIGEST,
            "size": 2,
        },
        "layers": [{
            "mediaType": MEDIA_TYPE,
            "digest": layer_digest.as_str(),
            "size": statement.len(),
            "annotations": { PREDICATE_TYPE_ANNOTATION: SLSA_PROVENANCE_V1 },
        }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    });
    // A JSON value of strings and numbers: serialising it cannot fail.
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// Pushes the statement, the empty config and the attestation manifest `manifest` (made by
/// [`attestation_manifest`]) to `repo`; returns the attestation manifest's descriptor, the
/// target a signature over it signs. A registry without the referrers API gets the
/// `sha256-<hex>` tag index updated by the client.
pub async fn push_attestation(
    client: &Client,
    repo: &Repository,
    statement: &[u8],
    manifest: &[u8],
) -> Result<TargetArtifact, RepositoryError> {
    let empty = Digest::sha256_of(b"{}");
    let layer = Digest::sha256_of(statement);
    let digest = push_artifact(
        client,
        repo,
        &[(&empty, b"{}".as_slice()), (&layer, statement)],
        manifest,
    )
    .await?;
    Ok(TargetArtifact {
        media_type: media_type::OCI_MANIFEST.to_string(),
        digest: digest.to_string(),
        size: manifest.len() as u64,
        annotations: BTreeMap::new(),
    })
}

/// What became of one attestation of an image.
#[derive(Debug, Clone)]
pub struct AttestationOutcome {
    /// The attestation manifest.
    pub digest: String,
    /// Signatures of the attestation that passed verification, and how many were evaluated.
    pub signatures_passed: usize,
    pub signatures_evaluated: usize,
    /// The signer of the first passing signature.
    pub signer: Option<String>,
    /// The sources the statement names, when it was read.
    pub sources: Vec<Source>,
    /// Why it does not satisfy the requirement, when it does not.
    pub error: Option<String>,
}

impl AttestationOutcome {
    /// Whether this attestation is signed, valid, about the image and names the source.
    pub fn passed(&self) -> bool {
        self.error.is_none()
    }
}

/// The verdict on an image's source.
#[derive(Debug, Clone)]
pub struct SourceVerification {
    pub required: SourceRequirement,
    /// Each attestation looked at, in the registry's order.
    pub attestations: Vec<AttestationOutcome>,
    /// Attestations listed beyond [`MAX_ATTESTATIONS`], not looked at.
    pub ignored: usize,
    /// The source a passing attestation names.
    pub source: Option<Source>,
}

impl SourceVerification {
    pub fn passed(&self) -> bool {
        self.source.is_some()
    }

    /// One line per attestation on why it did not count, or that there is none.
    pub fn explain(&self) -> String {
        if self.attestations.is_empty() {
            return format!(
                "no provenance attestation is attached to the image, so nothing says it was built from {}\nhint: `berth attest IMAGE` in a checkout of the source (signed with your signing key)",
                self.required
            );
        }
        self.attestations
            .iter()
            .map(|a| match &a.error {
                Some(e) => format!("attestation {}: {e}", a.digest),
                None => format!(
                    "attestation {}: names {}",
                    a.digest,
                    a.sources
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Why the source of an image could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceCheckError {
    #[error("failed to list the attestations of {scope}@{digest}")]
    List {
        scope: String,
        digest: String,
        #[source]
        source: RepositoryError,
    },
    #[error(transparent)]
    Verify(#[from] VerifyImageError),
}

/// Checks that the image `image` of repository `scope` (`registry/repository`) in `repo`
/// carries a signed provenance attestation naming `required`.
#[expect(
    clippy::too_many_arguments,
    reason = "the registry, the image and the trust configuration are each needed"
)]
pub async fn verify_source(
    client: &Client,
    repo: &Repository,
    scope: &str,
    image: &TargetArtifact,
    required: &SourceRequirement,
    policy: &TrustPolicy,
    store: &TrustStore,
    opts: &VerifyImageOptions,
) -> Result<SourceVerification, SourceCheckError> {
    let image_digest = Digest::parse(&image.digest).map_err(|e| SourceCheckError::List {
        scope: scope.to_string(),
        digest: image.digest.clone(),
        source: RepositoryError::UnsupportedTarget {
            reference: image.digest.clone(),
            reason: e.to_string(),
        },
    })?;
    let listed = client
        .referrers(repo, &image_digest, Some(MEDIA_TYPE))
        .await
        .map_err(|e| SourceCheckError::List {
            scope: scope.to_string(),
            digest: image.digest.clone(),
            source: e.into(),
        })?;
    let mut out = SourceVerification {
        required: required.clone(),
        attestations: Vec::new(),
        ignored: listed.len().saturating_sub(MAX_ATTESTATIONS),
        source: None,
    };
    let sigs = RegistrySignatures::new(client, repo.clone());
    for desc in listed.iter().take(MAX_ATTESTATIONS) {
        let Ok(digest) = berth_oci::descriptor_digest(desc) else {
            continue;
        };
        let mut outcome = AttestationOutcome {
            digest: digest.to_string(),
            signatures_passed: 0,
            signatures_evaluated: 0,
            signer: None,
            sources: Vec::new(),
            error: None,
        };
        match read_statement(client, repo, &digest, desc.size(), &image_digest).await {
            Err(e) => outcome.error = Some(e),
            Ok((target, statement)) => {
                outcome.sources = statement.sources();
                let v = verify_image(&sigs, scope, &target, policy, store, opts).await?;
                outcome.signatures_evaluated = v.signatures.len();
                outcome.signatures_passed = v.signatures.iter().filter(|s| s.passed()).count();
                outcome.signer = v
                    .signatures
                    .iter()
                    .find(|s| s.passed())
                    .and_then(|s| s.signer());
                if outcome.signatures_passed == 0 {
                    outcome.error = Some(if v.signatures.is_empty() {
                        "not signed: anyone with push rights can attach an unsigned statement, so it does not count".to_string()
                    } else {
                        format!(
                            "none of its {} signature(s) passed: {}",
                            v.signatures.len(),
                            v.signatures
                                .iter()
                                .filter_map(|s| s.failure())
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    });
                } else {
                    match statement.check(&image_digest, required) {
                        Ok(src) => {
                            out.source.get_or_insert(src);
                        }
                        Err(e) => outcome.error = Some(e.to_string()),
                    }
                }
            }
        }
        out.attestations.push(outcome);
    }
    Ok(out)
}

/// Reads attestation manifest `digest` and its statement; refuses one whose subject is not
/// `image`, with no statement layer, or larger than the limits.
async fn read_statement(
    client: &Client,
    repo: &Repository,
    digest: &Digest,
    size: u64,
    image: &Digest,
) -> Result<(TargetArtifact, Statement), String> {
    if size > MAX_ATTESTATION_MANIFEST {
        return Err(format!(
            "its manifest is {size} bytes, more than the {MAX_ATTESTATION_MANIFEST} read"
        ));
    }
    let m = client
        .get_manifest(repo, digest.as_ref(), &[media_type::OCI_MANIFEST])
        .await
        .map_err(|e| format!("cannot read its manifest: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&m.bytes).map_err(|e| format!("its manifest is not JSON: {e}"))?;
    if v["subject"]["digest"].as_str() != Some(image.as_str()) {
        return Err(format!(
            "its manifest's subject is {}, not the image",
            v["subject"]["digest"]
        ));
    }
    let layer = v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["mediaType"] == MEDIA_TYPE)
        .ok_or("its manifest has no layer of type application/vnd.in-toto+json")?;
    let layer_digest = layer["digest"]
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
        .ok_or("its statement layer has no valid digest")?;
    let layer_size = layer["size"].as_u64().unwrap_or(u64::MAX);
    if layer_size > MAX_STATEMENT_BYTES as u64 {
        return Err(
            ProvenanceError::TooLarge(usize::try_from(layer_size).unwrap_or(usize::MAX))
                .to_string(),
        );
    }
    let mut bytes = Vec::with_capacity(layer_size as usize);
    client
        .get_blob(repo, &layer_digest, Some(layer_size), &mut bytes)
        .await
        .map_err(|e| format!("cannot read its statement: {e}"))?;
    let statement = Statement::parse(&bytes).map_err(|e| e.to_string())?;
    let target = TargetArtifact {
        media_type: media_type::OCI_MANIFEST.to_string(),
        digest: m.digest.to_string(),
        size: m.bytes.len() as u64,
        annotations: BTreeMap::new(),
    };
    Ok((target, statement))
}
