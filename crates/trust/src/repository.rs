//! The port through which berth-trust reaches registries ([`SignatureRepository`]), its
//! implementation over `berth-distribution`'s [`Client`] ([`RegistrySignatures`]), and the
//! verification of an image in a registry against a trust policy ([`verify_image`]).
//!
//! Where signatures live (signature-specification.md, "Storage"; distribution-spec "Listing
//! Referrers", "Referrers Tag Schema", "Pushing Manifests with Subject"): each signature is an
//! OCI image manifest whose `config.mediaType` is `application/vnd.cncf.notary.signature`
//! (the specification's form, what notation writes; or, the OCI 1.1 artifact form, with that
//! type as `artifactType`), exactly one layer holding the envelope, and
//! `subject` naming the signed manifest. They are listed through the referrers API, or the
//! `sha256-<hex>` tag index on registries without it (docker-registry 2.8); a signature is
//! pushed through the referrers API when the registry answers with `OCI-Subject`, else the tag
//! index is updated (both done by [`Client::put_manifest`]).
//!
//! Nothing a registry serves is trusted: a signature manifest whose `subject` is not the
//! verified digest is refused whatever its envelope says; the envelope's `targetArtifact`
//! must equal the verified descriptor (digest, size and media type), so a signature copied
//! onto another image fails; envelopes larger than 4 MiB are refused from their descriptor,
//! before a byte is downloaded; and at most `max_signatures` signatures are evaluated (more
//! are ignored and counted, never fetched), as notation's `--max-signatures`.

use std::collections::BTreeMap;
use std::future::Future;

use berth_distribution::{BytesSource, Client, ErrorKind, Repository};
use berth_oci::{Digest, media_type};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;

use crate::envelope::{MAX_ENVELOPE_SIZE, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, TargetArtifact};
use crate::policy::{Level, PolicyError, TrustPolicy};
use crate::time::Timestamp;
use crate::truststore::TrustStore;
use crate::verify::{Verdict, VerifyOptions, verify};

/// The artifact type of Notary Project signature manifests.
pub const ARTIFACT_TYPE_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// The annotation naming the SHA-256 thumbprints of the signing certificate chain.
pub const ANNOTATION_THUMBPRINT: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// Signatures evaluated at most by default (notation's `--max-signatures` default).
pub const DEFAULT_MAX_SIGNATURES: usize = 100;
/// Signatures fetched at once by [`verify_image`].
const FETCH_CONCURRENCY: usize = 8;
/// Largest signature manifest read (a signature manifest is a few hundred bytes).
pub const MAX_SIGNATURE_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// What failed while talking to a registry about signatures.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The registry request failed (the distribution error says what, on what).
    #[error(transparent)]
    Registry(#[from] berth_distribution::Error),
    /// The reference names no manifest berth can sign or verify.
    #[error("{reference} cannot be signed or verified: {reason}")]
    UnsupportedTarget { reference: String, reason: String },
    /// A signature manifest breaks the specification's storage rules.
    #[error("signature manifest {digest} is invalid: {reason}")]
    InvalidSignatureManifest { digest: String, reason: String },
    /// The envelope descriptor is over the 4 MiB limit (nothing was downloaded).
    #[error(
        "the envelope of signature manifest {digest} is {size} bytes, more than the {max} bytes a signature may have"
    )]
    EnvelopeTooLarge { digest: String, size: u64, max: u64 },
    /// A signature to push is inconsistent with its own manifest.
    #[error("refusing to push signature manifest: {0}")]
    InvalidUpload(String),
}

impl RepositoryError {
    /// The classification callers branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RepositoryError::Registry(e) => e.kind(),
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// A signature manifest as a listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureDescriptor {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// A signature manifest read and checked against the storage rules, with its envelope.
#[derive(Debug, Clone)]
pub struct FetchedSignature {
    /// The signature manifest's digest.
    pub manifest_digest: Digest,
    /// Its `subject` (digest and size).
    pub subject_digest: String,
    pub subject_size: u64,
    /// The envelope layer's media type (`application/jose+json` or `application/cose`).
    pub envelope_media_type: String,
    /// The envelope bytes (digest and size verified).
    pub envelope: Vec<u8>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A signature to push: the envelope and the signature manifest made for it (config: the
/// empty descriptor; one layer: the envelope; `subject`: the signed manifest).
#[derive(Debug, Clone, Copy)]
pub struct SignatureUpload<'a> {
    pub envelope: &'a [u8],
    pub manifest: &'a [u8],
}

/// Where signatures are kept: one repository of one registry.
///
/// Lifecycle: a verifier calls [`resolve`](Self::resolve) once (a tag becomes a digest and
/// everything after works on that digest), then [`list_signatures`](Self::list_signatures)
/// and [`fetch_signature`](Self::fetch_signature) for each it evaluates; a signer calls
/// `resolve`, signs the descriptor, then [`push_signature`](Self::push_signature).
pub trait SignatureRepository {
    /// The descriptor (digest, size, media type) of the manifest `reference` (a tag or a
    /// digest) names.
    fn resolve(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<TargetArtifact, RepositoryError>> + Send;

    /// The signature manifests whose subject is `subject`, in the registry's order.
    fn list_signatures(
        &self,
        subject: &Digest,
    ) -> impl Future<Output = Result<Vec<SignatureDescriptor>, RepositoryError>> + Send;

    /// One signature manifest and its envelope, checked against the storage rules (not
    /// against the subject a caller expects: that is [`verify_image`]'s).
    fn fetch_signature(
        &self,
        signature: &SignatureDescriptor,
    ) -> impl Future<Output = Result<FetchedSignature, RepositoryError>> + Send;

    /// Push the envelope blob, the empty config blob and the signature manifest (by digest);
    /// returns the manifest's descriptor.
    fn push_signature(
        &self,
        upload: SignatureUpload<'_>,
    ) -> impl Future<Output = Result<SignatureDescriptor, RepositoryError>> + Send;
}

/// [`SignatureRepository`] over a registry client.
#[derive(Debug, Clone)]
pub struct RegistrySignatures<'a> {
    client: &'a Client,
    repo: Repository,
}

impl<'a> RegistrySignatures<'a> {
    pub fn new(client: &'a Client, repo: Repository) -> RegistrySignatures<'a> {
        RegistrySignatures { client, repo }
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }
}

const MANIFEST_ACCEPT: [&str; 4] = [
    media_type::OCI_MANIFEST,
    media_type::OCI_INDEX,
    media_type::DOCKER_MANIFEST_V2,
    media_type::DOCKER_MANIFEST_LIST,
];

impl SignatureRepository for RegistrySignatures<'_> {
    async fn resolve(&self, reference: &str) -> Result<TargetArtifact, RepositoryError> {
        let m = self
            .client
            .get_manifest(&self.repo, reference, &MANIFEST_ACCEPT)
            .await?;
        if !MANIFEST_ACCEPT.contains(&m.media_type.as_str()) {
            return Err(RepositoryError::UnsupportedTarget {
                reference: reference.to_string(),
                reason: format!("its media type is {:?}", m.media_type),
            });
        }
        Ok(TargetArtifact {
            media_type: m.media_type,
            digest: m.digest.to_string(),
            size: m.bytes.len() as u64,
            annotations: BTreeMap::new(),
        })
    }

    async fn list_signatures(
        &self,
        subject: &Digest,
    ) -> Result<Vec<SignatureDescriptor>, RepositoryError> {
        let found = self
            .client
            .referrers(&self.repo, subject, Some(ARTIFACT_TYPE_SIGNATURE))
            .await?;
        let mut out: Vec<SignatureDescriptor> = Vec::with_capacity(found.len());
        for d in found {
            // a descriptor with an unusable digest cannot be fetched; it is not ours to list
            let Ok(digest) = berth_oci::descriptor_digest(&d) else {
                continue;
            };
            if out.iter().any(|o| o.digest == digest) {
                continue;
            }
            out.push(SignatureDescriptor {
                digest,
                size: d.size(),
                media_type: d.media_type().to_string(),
            });
        }
        Ok(out)
    }

    async fn fetch_signature(
        &self,
        sig: &SignatureDescriptor,
    ) -> Result<FetchedSignature, RepositoryError> {
        let invalid = |reason: String| RepositoryError::InvalidSignatureManifest {
            digest: sig.digest.to_string(),
            reason,
        };
        if sig.size > MAX_SIGNATURE_MANIFEST_SIZE {
            return Err(invalid(format!(
                "its descriptor says {} bytes, more than the {MAX_SIGNATURE_MANIFEST_SIZE} bytes a signature manifest may have",
                sig.size
            )));
        }
        let m = self
            .client
            .get_manifest(&self.repo, sig.digest.as_ref(), &[media_type::OCI_MANIFEST])
            .await?;
        let parsed = parse_signature_manifest(&m.bytes).map_err(invalid)?;
        if parsed.envelope_size > MAX_ENVELOPE_SIZE as u64 {
            return Err(RepositoryError::EnvelopeTooLarge {
                digest: sig.digest.to_string(),
                size: parsed.envelope_size,
                max: MAX_ENVELOPE_SIZE as u64,
            });
        }
        let mut envelope = Vec::with_capacity(parsed.envelope_size as usize);
        self.client
            .get_blob(
                &self.repo,
                &parsed.envelope_digest,
                Some(parsed.envelope_size),
                &mut envelope,
            )
            .await?;
        Ok(FetchedSignature {
            manifest_digest: m.digest,
            subject_digest: parsed.subject_digest,
            subject_size: parsed.subject_size,
            envelope_media_type: parsed.envelope_media_type,
            envelope,
            annotations: parsed.annotations,
        })
    }

    async fn push_signature(
        &self,
        upload: SignatureUpload<'_>,
    ) -> Result<SignatureDescriptor, RepositoryError> {
        let parsed = parse_signature_manifest(upload.manifest).map_err(|reason| {
            RepositoryError::InvalidUpload(format!("the manifest is invalid: {reason}"))
        })?;
        let envelope_digest = Digest::of(parsed.envelope_digest.algorithm(), upload.envelope);
        if envelope_digest != parsed.envelope_digest
            || upload.envelope.len() as u64 != parsed.envelope_size
        {
            return Err(RepositoryError::InvalidUpload(format!(
                "its layer names {} ({} bytes), the envelope is {envelope_digest} ({} bytes)",
                parsed.envelope_digest,
                parsed.envelope_size,
                upload.envelope.len()
            )));
        }
        let config = parsed.config_blob();
        let mut blobs = Vec::with_capacity(2);
        if let Some((digest, bytes)) = &config {
            blobs.push((digest, *bytes));
        }
        blobs.push((&envelope_digest, upload.envelope));
        let digest = push_artifact(self.client, &self.repo, &blobs, upload.manifest).await?;
        Ok(SignatureDescriptor {
            digest,
            size: upload.manifest.len() as u64,
            media_type: media_type::OCI_MANIFEST.to_string(),
        })
    }
}

/// What the storage rules require of a signature manifest, read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedSignatureManifest {
    pub subject_digest: String,
    pub subject_size: u64,
    pub envelope_media_type: String,
    pub envelope_digest: Digest,
    pub envelope_size: u64,
    pub config_media_type: String,
    pub config_digest: String,
    pub annotations: BTreeMap<String, String>,
}

/// The empty JSON blob `{}` (image-spec "Guidance for an Empty Descriptor").
const EMPTY_JSON: &[u8] = b"{}";

impl ParsedSignatureManifest {
    /// The config blob to push with the manifest, when it is one berth can produce: the
    /// empty JSON `{}` (in both forms).
    fn config_blob(&self) -> Option<(Digest, &'static [u8])> {
        let d = Digest::sha256_of(EMPTY_JSON);
        (self.config_digest == d.as_ref()).then_some((d, EMPTY_JSON))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: RawDescriptor,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Checks a signature manifest against signature-specification.md "Storage": an OCI image
/// manifest; the config's media type the signature type (the specification's form), or
/// `artifactType` the signature type (the OCI 1.1 artifact form); exactly one layer, a JWS or COSE envelope; a
/// `subject`.
pub(crate) fn parse_signature_manifest(bytes: &[u8]) -> Result<ParsedSignatureManifest, String> {
    let m: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("it is not an OCI image manifest: {e}"))?;
    if m.schema_version != Some(2) {
        return Err("schemaVersion is not 2".to_string());
    }
    if m.media_type.as_deref() != Some(media_type::OCI_MANIFEST) {
        return Err(format!(
            "mediaType is {:?}, not {:?}",
            m.media_type.unwrap_or_default(),
            media_type::OCI_MANIFEST
        ));
    }
    match m.artifact_type.as_deref() {
        Some(ARTIFACT_TYPE_SIGNATURE) => {}
        None if m.config.media_type == ARTIFACT_TYPE_SIGNATURE => {}
        Some(other) => {
            return Err(format!(
                "artifactType is {other:?}, not {ARTIFACT_TYPE_SIGNATURE:?}"
            ));
        }
        None => {
            return Err(format!(
                "it has no artifactType and its config media type is {:?}, not {ARTIFACT_TYPE_SIGNATURE:?}",
                m.config.media_type
            ));
        }
    }
    let [layer] = m.layers.as_slice() else {
        return Err(format!(
            "it has {} layers; a signature manifest has exactly one, the envelope",
            m.layers.len()
        ));
    };
    if layer.media_type != MEDIA_TYPE_JWS && layer.media_type != MEDIA_TYPE_COSE {
        return Err(format!(
            "its layer's media type {:?} is not a signature envelope ({MEDIA_TYPE_JWS} or {MEDIA_TYPE_COSE})",
            layer.media_type
        ));
    }
    let envelope_digest = Digest::parse(&layer.digest)
        .map_err(|e| format!("its layer's digest {:?}: {e}", layer.digest))?;
    let subject = m.subject.ok_or("it has no subject")?;
    Digest::parse(&subject.digest)
        .map_err(|e| format!("its subject's digest {:?}: {e}", subject.digest))?;
    Ok(ParsedSignatureManifest {
        subject_digest: subject.digest,
        subject_size: subject.size,
        envelope_media_type: layer.media_type.clone(),
        envelope_digest,
        envelope_size: layer.size,
        config_media_type: m.config.media_type,
        config_digest: m.config.digest,
        annotations: m.annotations,
    })
}

/// How [`verify_image`] runs.
#[derive(Debug, Clone, Copy)]
pub struct VerifyImageOptions {
    /// Signatures evaluated at most; more are ignored (counted, never fetched).
    pub max_signatures: usize,
    /// The verification time.
    pub now: Timestamp,
    /// Where CRLs and OCSP responses come from.
    pub revocation: &'static dyn crate::revocation::Fetcher,
}

impl Default for VerifyImageOptions {
    fn default() -> VerifyImageOptions {
        VerifyImageOptions {
            max_signatures: DEFAULT_MAX_SIGNATURES,
            now: Timestamp::now(),
            revocation: &crate::revocation::HTTP,
        }
    }
}

/// The outcome of one signature of an image.
#[derive(Debug, Clone)]
pub struct SignatureOutcome {
    /// The signature manifest's digest.
    pub digest: Digest,
    /// The envelope's media type, when the manifest was read.
    pub envelope_media_type: Option<String>,
    /// The verification workflow's verdict, when the envelope was fetched and its manifest
    /// names the verified image as subject.
    pub verdict: Option<Verdict>,
    /// Why the signature was not verified at all (fetch, storage rules, wrong subject).
    pub error: Option<String>,
}

impl SignatureOutcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.verdict.as_ref().is_some_and(|v| v.passed)
    }

    /// The signing certificate's subject DN, when the envelope parsed.
    pub fn signer(&self) -> Option<String> {
        self.verdict
            .as_ref()?
            .envelope
            .as_ref()?
            .signing_certificate()
            .map(|c| c.subject.to_string())
    }

    /// Why it did not pass, if it did not.
    pub fn failure(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        match &self.verdict {
            Some(v) if !v.passed => Some(
                v.failure()
                    .unwrap_or_else(|| "verification failed".to_string()),
            ),
            _ => None,
        }
    }
}

/// The verdict on an image: every signature evaluated, and the policy statement used.
#[derive(Debug, Clone)]
pub struct ImageVerification {
    /// The verified descriptor (a tag was resolved to it first).
    pub target: TargetArtifact,
    /// The repository scope the statement was chosen for (`registry/repository`).
    pub scope: String,
    /// The policy statement's name and level.
    pub statement: String,
    pub level: Level,
    /// The signatures evaluated, in the registry's order.
    pub signatures: Vec<SignatureOutcome>,
    /// Signature manifests listed beyond `max_signatures` (not fetched, not evaluated).
    pub ignored: usize,
    /// True when the level is skip or at least one signature passed.
    pub passed: bool,
}

impl ImageVerification {
    /// Why an artifact about an image (an attestation, an SBOM, a scan report) whose
    /// verification did not pass does not count: unsigned, or [`ImageVerification::failures`].
    pub fn refusal(&self) -> String {
        if self.signatures.is_empty() {
            "not signed: anyone with push rights can attach an unsigned artifact, so it does not count".to_string()
        } else {
            self.failures()
        }
    }

    /// "none of its N signature(s) passed: why; why": for a verdict with signatures of
    /// which none passed.
    pub fn failures(&self) -> String {
        format!(
            "none of its {} signature(s) passed: {}",
            self.signatures.len(),
            self.signatures
                .iter()
                .filter_map(|s| s.failure())
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// Why an image could not be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyImageError {
    #[error("no trust policy statement applies to {scope}")]
    Policy {
        scope: String,
        #[source]
        source: PolicyError,
    },
    #[error("failed to list the signatures of {scope}@{digest}")]
    List {
        scope: String,
        digest: String,
        #[source]
        source: RepositoryError,
    },
}

/// Verifies the image `target` (already resolved through `repo`) of repository `scope`
/// (`registry/repository`, as trust policies name them) against the statement of `policy`
/// for that scope: each signature up to `max_signatures` is fetched, its manifest's subject
/// checked to be `target`, and its envelope verified (the envelope's `targetArtifact` must be
/// `target` too). The image passes when one signature passes (the Notary Project rule; the
/// role policies build on the per-signature outcomes), or when the level is skip.
pub async fn verify_image<R: SignatureRepository>(
    repo: &R,
    scope: &str,
    target: &TargetArtifact,
    policy: &TrustPolicy,
    store: &TrustStore,
    opts: &VerifyImageOptions,
) -> Result<ImageVerification, VerifyImageError> {
    let statement = policy
        .statement_for(scope)
        .map_err(|source| VerifyImageError::Policy {
            scope: scope.to_string(),
            source,
        })?;
    let mut out = ImageVerification {
        target: target.clone(),
        scope: scope.to_string(),
        statement: statement.name.clone(),
        level: statement.verification.level,
        signatures: Vec::new(),
        ignored: 0,
        passed: false,
    };
    if statement.verification.level == Level::Skip {
        out.passed = true;
        return Ok(out);
    }
    let list_err = |source| VerifyImageError::List {
        scope: scope.to_string(),
        digest: target.digest.clone(),
        source,
    };
    let subject = Digest::parse(&target.digest).map_err(|e| {
        list_err(RepositoryError::UnsupportedTarget {
            reference: target.digest.clone(),
            reason: e.to_string(),
        })
    })?;
    let listed = repo.list_signatures(&subject).await.map_err(list_err)?;
    out.ignored = listed.len().saturating_sub(opts.max_signatures);
    let vopts = VerifyOptions {
        statement,
        artifact: Some(target),
        now: opts.now,
        revocation: opts.revocation,
    };
    // fetched concurrently (a few at a time, in the registry's order), verified in order;
    // owned descriptors, so that the future is `Send` wherever it is awaited (a closure over
    // borrowed ones is not general enough for an axum handler, as the webhook's are)
    let fetched: Vec<_> = stream::iter(listed.iter().take(opts.max_signatures).cloned())
        .map(|sig| async move {
            let r = repo.fetch_signature(&sig).await;
            (sig, r)
        })
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await;
    for (sig, result) in fetched {
        let mut outcome = SignatureOutcome {
            digest: sig.digest.clone(),
            envelope_media_type: None,
            verdict: None,
            error: None,
        };
        match result {
            Err(e) => outcome.error = Some(error_chain(&e)),
            Ok(f) => {
                outcome.envelope_media_type = Some(f.envelope_media_type.clone());
                if f.subject_digest != target.digest || f.subject_size != target.size {
                    outcome.error = Some(format!(
                        "the signature manifest's subject is {} ({} bytes), not the verified image {} ({} bytes)",
                        f.subject_digest, f.subject_size, target.digest, target.size
                    ));
                } else {
                    outcome.verdict =
                        Some(verify(&f.envelope, &f.envelope_media_type, store, &vopts));
                }
            }
        }
        out.signatures.push(outcome);
    }
    out.passed = out.signatures.iter().any(SignatureOutcome::passed);
    Ok(out)
}

/// `e` and its sources, joined with ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Push a small artifact — a signature, an attestation — to `repo`: each of its blobs
/// (config and layers, small enough to be held in memory), then its image manifest by digest.
/// A manifest with a `subject` the registry does not process (no `OCI-Subject` in the reply)
/// updates the referrers tag (the client's tag fallback). Returns the manifest's digest.
pub(crate) async fn push_artifact(
    client: &Client,
    repo: &Repository,
    blobs: &[(&Digest, &[u8])],
    manifest: &[u8],
) -> Result<Digest, RepositoryError> {
    for (digest, bytes) in blobs {
        client
            .push_blob(
                repo,
                digest,
                bytes.len() as u64,
                BytesSource(bytes::Bytes::copy_from_slice(bytes)),
            )
            .await?;
    }
    let digest = Digest::sha256_of(manifest);
    client
        .put_manifest(repo, digest.as_ref(), manifest, media_type::OCI_MANIFEST)
        .await?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn good() -> serde_json::Value {
        json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE_SIGNATURE,
            "config": {"mediaType": media_type::OCI_EMPTY_JSON, "digest": Digest::sha256_of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": MEDIA_TYPE_JWS, "digest": Digest::sha256_of(b"env").to_string(), "size": 3}],
            "subject": {"mediaType": media_type::OCI_MANIFEST, "digest": Digest::sha256_of(b"img").to_string(), "size": 3},
            "annotations": {ANNOTATION_THUMBPRINT: "[\"ab\"]"}
        })
    }

    #[test]
    fn both_forms_are_read() {
        let p = parse_signature_manifest(&manifest(good())).unwrap();
        assert_eq!(p.subject_digest, Digest::sha256_of(b"img").to_string());
        assert_eq!(p.envelope_media_type, MEDIA_TYPE_JWS);
        assert_eq!(p.envelope_size, 3);
        assert!(p.config_blob().is_some());
        let mut old = good();
        old.as_object_mut().unwrap().remove("artifactType");
        old["config"]["mediaType"] = json!(ARTIFACT_TYPE_SIGNATURE);
        assert!(parse_signature_manifest(&manifest(old)).is_ok());
    }

    type Change = Box<dyn Fn(&mut serde_json::Value)>;

    #[test]
    fn storage_rules_are_enforced() {
        let cases: Vec<(&str, Change)> = vec![
            (
                "artifactType",
                Box::new(|m| m["artifactType"] = json!("application/x.sbom")),
            ),
            (
                "no artifactType",
                Box::new(|m| {
                    m.as_object_mut().unwrap().remove("artifactType");
                }),
            ),
            (
                "exactly one",
                Box::new(|m| {
                    let l = m["layers"][0].clone();
                    m["layers"] = json!([l.clone(), l]);
                }),
            ),
            ("exactly one", Box::new(|m| m["layers"] = json!([]))),
            (
                "not a signature envelope",
                Box::new(|m| m["layers"][0]["mediaType"] = json!("application/octet-stream")),
            ),
            (
                "no subject",
                Box::new(|m| {
                    m.as_object_mut().unwrap().remove("subject");
                }),
            ),
            (
                "mediaType",
                Box::new(|m| m["mediaType"] = json!(media_type::DOCKER_MANIFEST_V2)),
            ),
            (
                "subject's digest",
                Box::new(|m| m["subject"]["digest"] = json!("sha256:zz")),
            ),
        ];
        for (want, change) in cases {
            let mut m = good();
            change(&mut m);
            let err = parse_signature_manifest(&manifest(m)).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
        assert!(parse_signature_manifest(b"[]").is_err());
    }
}
