//! A role policy applied to an image in its registry: the rule for the image's repository
//! and namespace is selected, every signature found (up to the limit) is fetched and verified
//! under that rule's statement, and [`roles::evaluate`](crate::roles::evaluate) decides. What
//! `berth verify --policy`, `berth pull` and `berth run` call (the admission webhook will too).

use crate::envelope::TargetArtifact;
use crate::evidence::{SbomRequirement, ScanRequirement};
use crate::policy::TrustPolicy;
use crate::provenance::SourceRequirement;
use crate::repository::{SignatureRepository, VerifyImageError, VerifyImageOptions, verify_image};
use crate::roles::{Decision, Policy, Role, VerifiedSignature, evaluate_with_labels};
use crate::truststore::TrustStore;

/// What was found and decided for one image.
#[derive(Debug, Clone)]
pub struct ImageDecision {
    pub decision: Decision,
    /// Signature manifests listed beyond the limit, not fetched.
    pub ignored: usize,
    /// The rule's `requireSource`, still to be checked against the image's attestations
    /// ([`crate::attestation::verify_source`]) under [`ImageDecision::rule_policy`].
    pub require_source: Option<SourceRequirement>,
    /// The rule's `requireSbom` and `requireScan`, checked with the rest by
    /// [`crate::evidence::check`].
    pub require_sbom: Option<SbomRequirement>,
    pub require_scan: Option<ScanRequirement>,
    /// The roles those name (with their identities).
    pub evidence_roles: Vec<Role>,
    /// The rule's statement as a one-statement trust policy for the image's scope: what the
    /// attestations' own signatures are verified with.
    pub rule_policy: Option<TrustPolicy>,
}

impl ImageDecision {
    /// A role named by `requireSbom` or `requireScan`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.evidence_roles.iter().find(|r| r.name == name)
    }

    /// Whether the rule requires anything beside signatures ([`crate::evidence::check`]).
    pub fn requires_evidence(&self) -> bool {
        self.require_source.is_some() || self.require_sbom.is_some() || self.require_scan.is_some()
    }
}

/// Evaluates `policy` for `target` of repository `scope` (`registry/repository`) used in
/// `namespace` (`None` outside Kubernetes).
pub async fn evaluate_image<R: SignatureRepository>(
    repo: &R,
    policy: &Policy,
    scope: &str,
    namespace: Option<&str>,
    target: &TargetArtifact,
    store: &TrustStore,
    opts: &VerifyImageOptions,
) -> Result<ImageDecision, VerifyImageError> {
    evaluate_image_with_labels(repo, policy, scope, namespace, None, target, store, opts).await
}

/// [`evaluate_image`] in a namespace whose labels are known, for rules with a
/// `namespaceSelector` (the admission webhook).
#[expect(
    clippy::too_many_arguments,
    reason = "the registry, the policy, where the image is used and the trust store are each needed"
)]
pub async fn evaluate_image_with_labels<R: SignatureRepository>(
    repo: &R,
    policy: &Policy,
    scope: &str,
    namespace: Option<&str>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
    target: &TargetArtifact,
    store: &TrustStore,
    opts: &VerifyImageOptions,
) -> Result<ImageDecision, VerifyImageError> {
    let Some(rule) = policy.select_with_labels(scope, namespace, labels) else {
        return Ok(ImageDecision {
            decision: evaluate_with_labels(policy, scope, namespace, labels, &[]),
            ignored: 0,
            require_source: None,
            require_sbom: None,
            require_scan: None,
            evidence_roles: Vec::new(),
            rule_policy: None,
        });
    };
    // The rule's statement, for this scope only: every signature is verified under it.
    let mut statement = rule.statement.clone();
    statement.registry_scopes = vec![scope.to_string()];
    let single = TrustPolicy {
        statements: vec![statement],
    };
    let found = verify_image(repo, scope, target, &single, store, opts).await?;
    let signatures: Vec<VerifiedSignature> = found
        .signatures
        .into_iter()
        .filter_map(|s| {
            s.verdict
                .map(|v| VerifiedSignature::new(s.digest.to_string(), v))
        })
        .collect();
    Ok(ImageDecision {
        decision: evaluate_with_labels(policy, scope, namespace, labels, &signatures),
        ignored: found.ignored,
        require_source: rule.require_source.clone(),
        require_sbom: rule.require_sbom.clone(),
        require_scan: rule.require_scan.clone(),
        evidence_roles: policy
            .roles
            .iter()
            .filter(|r| {
                rule.require_sbom
                    .as_ref()
                    .is_some_and(|q| q.signed_by == r.name)
                    || rule
                        .require_scan
                        .as_ref()
                        .is_some_and(|q| q.signed_by == r.name)
            })
            .cloned()
            .collect(),
        rule_policy: Some(single),
    })
}
