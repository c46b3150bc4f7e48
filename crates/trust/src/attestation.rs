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
    MAX_STATEMENT_BYTES, MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION, SLSA_PROVENANCE_V1, Source,
    SourceRequirement, Statement,
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
    let layer_annotations = BTreeMap::from([(
        PREDICATE_TYPE_ANNOTATION.to_string(),
        SLSA_PROVENANCE_V1.to_string(),
    )]);
    referrer_manifest(
        subject,
        MEDIA_TYPE,
        statement,
        &layer_annotations,
        &BTreeMap::new(),
    )
}

/// The manifest of an artifact about `subject` (an attestation, an SBOM, a scan report):
/// an OCI image manifest with `artifactType` `artifact_type`, the empty config and one
/// layer, `content`, of media type `artifact_type`. `annotations` are the manifest's (the
/// referrers API lists them, so `org.opencontainers.image.created` orders referrers without
/// fetching them).
pub fn referrer_manifest(
    subject: &TargetArtifact,
    artifact_type: &str,
    content: &[u8],
    layer_annotations: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let layer_digest = Digest::sha256_of(content);
    let mut layer = json!({
        "mediaType": artifact_type,
        "digest": layer_digest.as_str(),
        "size": content.len(),
    });
    if !layer_annotations.is_empty() {
        layer["annotations"] = json!(layer_annotations);
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": media_type::OCI_EMPTY_JSON,
            "digest": media_type::OCI_EMPTY_JSON_DIGEST,
            "size": 2,
        },
        "layers": [layer],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
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
    push_referrer(client, repo, statement, manifest).await
}

/// Pushes an artifact made by [`referrer_manifest`]: its one layer `content`, the empty
/// config, then `manifest`; returns the manifest's descriptor (what a signature over the
/// artifact signs). A registry without the referrers API gets the `sha256-<hex>` tag index
/// updated by the client.
pub async fn push_referrer(
    client: &Client,
    repo: &Repository,
    content: &[u8],
    manifest: &[u8],
) -> Result<TargetArtifact, RepositoryError> {
    let empty = Digest::sha256_of(b"{}");
    let layer = Digest::sha256_of(content);
    let digest = push_artifact(
        client,
        repo,
        &[(&empty, b"{}".as_slice()), (&layer, content)],
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

/// Reads artifact manifest `digest` (listed with `size`) and the content of its layer of
/// media type `layer_type`; refuses one whose subject is not `image`, with no such layer, or
/// whose manifest or content is larger than the limits (`max_content` bytes for the
/// content). The error says why, for a verdict line.
pub async fn fetch_referrer(
    client: &Client,
    repo: &Repository,
    digest: &Digest,
    size: u64,
    image: &Digest,
    layer_type: &str,
    max_content: u64,
) -> Result<(TargetArtifact, Vec<u8>), String> {
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
        .find(|l| l["mediaType"] == layer_type)
        .ok_or_else(|| format!("its manifest has no layer of type {layer_type}"))?;
    let layer_digest = layer["digest"]
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
        .ok_or("its content layer has no valid digest")?;
    let layer_size = layer["size"].as_u64().unwrap_or(u64::MAX);
    if layer_size > max_content {
        return Err(format!(
            "its content is {layer_size} bytes, more than the {max_content} read"
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(layer_size).unwrap_or(0));
    client
        .get_blob(repo, &layer_digest, Some(layer_size), &mut bytes)
        .await
        .map_err(|e| format!("cannot read its content: {e}"))?;
    let target = TargetArtifact {
        media_type: media_type::OCI_MANIFEST.to_string(),
        digest: m.digest.to_string(),
        size: m.bytes.len() as u64,
        annotations: BTreeMap::new(),
    };
    Ok((target, bytes))
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
                    outcome.error = Some(v.refusal());
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
    let (target, bytes) = fetch_referrer(
        client,
        repo,
        digest,
        size,
        image,
        MEDIA_TYPE,
        MAX_STATEMENT_BYTES as u64,
    )
    .await?;
    let statement = Statement::parse(&bytes).map_err(|e| e.to_string())?;
    Ok((target, statement))
}
