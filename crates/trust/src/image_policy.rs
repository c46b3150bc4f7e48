//! A role policy applied to an image in its registry: the rule for the image's repository
//! and namespace is selected, every signature found (up to the limit) is fetched and verified
//! under that rule's statement, and [`roles::evaluate`](crate::roles::evaluate) decides. What
//! `berth verify --policy`, `berth pull` and `berth run` call (the admission webhook will too).

use crate::envelope::TargetArtifact;
use crate::policy::TrustPolicy;
use crate::repository::{SignatureRepository, VerifyImageError, VerifyImageOptions, verify_image};
use crate::roles::{Decision, Policy, VerifiedSignature, evaluate};
use crate::truststore::TrustStore;

/// What was found and decided for one image.
#[derive(Debug, Clone)]
pub struct ImageDecision {
    pub decision: Decision,
    /// Signature manifests listed beyond the limit, not fetched.
    pub ignored: usize,
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
    let Some(rule) = policy.select(scope, namespace) else {
        return Ok(ImageDecision {
            decision: evaluate(policy, scope, namespace, &[]),
            ignored: 0,
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
        decision: evaluate(policy, scope, namespace, &signatures),
        ignored: found.ignored,
    })
}
