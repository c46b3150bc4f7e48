//! The trust gate of `berth pull` and `berth run`: when berth's configuration directory holds
//! a role policy (`policy.json`, `berth.policy/v1`: docs/policy.md) or a trust policy
//! (`trustpolicy.oci.json` or `trustpolicy.json`), with `truststore/`, an image is verified in
//! its registry before anything of it is fetched or unpacked, and refused when it fails (the
//! role policy wins when both exist; its rules without namespaces apply outside Kubernetes); what is then pulled is the digest that passed, not whatever the tag names a
//! moment later. A local image is verified again at every `run` (signatures may have been
//! revoked by removal, or the policy tightened). Without a policy, `pull` says the image was
//! not verified. notation's configuration is read by `berth verify`, not enforced here: a
//! user turns enforcement on in berth's own directory (`berth trust init`).

use anyhow::Context;
use berth_oci::Reference;
use berth_trust::repository::{
    ImageVerification, RegistrySignatures, SignatureRepository, verify_image,
};
use berth_trust::{TargetArtifact, TrustPolicy, TrustStore};

use super::verify::{TrustConfig, trust_config_in};

/// The role policy's file name in berth's configuration directory.
pub const ROLE_POLICY: &str = "policy.json";

/// berth's own policy, when one is configured.
pub enum Gate {
    Roles {
        path: std::path::PathBuf,
        policy: berth_trust::roles::Policy,
        store: TrustStore,
    },
    Trust {
        config: TrustConfig,
        policy: TrustPolicy,
        store: TrustStore,
    },
}

impl Gate {
    /// The gate of berth's configuration directory; `None` when it has no policy.
    pub fn configured() -> anyhow::Result<Option<Gate>> {
        let dir = crate::dirs::config_dir()?;
        let roles = dir.join(ROLE_POLICY);
        if roles.is_file() {
            let policy = super::verify::load_role_policy(&roles).with_context(|| {
                "images cannot be verified, so none is pulled or run\nhint: fix the role policy, or remove it to turn verification off"
            })?;
            return Ok(Some(Gate::Roles {
                path: roles,
                policy,
                store: TrustStore::new(dir.join("truststore")),
            }));
        }
        let Some(config) = trust_config_in(&dir) else {
            return Ok(None);
        };
        let bytes = std::fs::read(&config.policy_path)
            .with_context(|| format!("failed to read {}", config.policy_path.display()))?;
        let policy = TrustPolicy::parse(&bytes).with_context(|| {
            format!(
                "invalid trust policy {}: images cannot be verified, so none is pulled or run\nhint: fix it, or remove it to turn verification off",
                config.policy_path.display()
            )
        })?;
        let store = TrustStore::new(&config.truststore);
        Ok(Some(Gate::Trust {
            config,
            policy,
            store,
        }))
    }

    /// Verifies `target` (a manifest of `reference`'s repository); an error says why it
    /// failed. Returns what to tell the user when it passed, and the SBOM the rule's
    /// `requireSbom` accepted.
    async fn check(
        &self,
        client: &berth_distribution::Client,
        sigs: &RegistrySignatures<'_>,
        reference: &Reference,
        target: &TargetArtifact,
    ) -> anyhow::Result<Passed> {
        let scope = reference.name();
        let (config, policy, store) = match self {
            Gate::Trust {
                config,
                policy,
                store,
            } => (config, policy, store),
            Gate::Roles {
                path,
                policy,
                store,
            } => {
                let d = berth_trust::image_policy::evaluate_image(
                    sigs,
                    policy,
                    &scope,
                    None,
                    target,
                    store,
                    &super::verify::verify_image_options()?,
                )
                .await
                .with_context(|| {
                    format!(
                        "failed to verify {scope}@{} against the role policy {}",
                        target.digest,
                        path.display()
                    )
                })?;
                let evidence =
                    super::verify::required_evidence(client, sigs, &scope, target, &d, store)
                        .await?;
                if let Some(v) = &evidence
                    && !v.passed()
                {
                    anyhow::bail!(
                        "{scope}@{} is signed as rule {:?} of {} requires, but the rule also {}",
                        target.digest,
                        d.decision.rule.as_deref().unwrap_or("-"),
                        path.display(),
                        v.failures().join("\nand ")
                    );
                }
                let d = d.decision;
                if d.allowed {
                    return Ok(Passed {
                        said: format!(
                            "trust: {scope}@{} allowed by rule {:?} of {}",
                            target.digest,
                            d.rule.as_deref().unwrap_or("-"),
                            path.display()
                        ),
                        sbom: evidence.and_then(verified_sbom),
                    });
                }
                anyhow::bail!(
                    "{scope}@{} is denied by the role policy {}:\n{d}\nhint: `berth verify --policy {} {scope}@{}` explains it; the missing roles sign with `berth sign`",
                    target.digest,
                    path.display(),
                    path.display(),
                    target.digest
                );
            }
        };
        let v = verify_image(
            sigs,
            &scope,
            target,
            policy,
            store,
            &super::verify::verify_image_options()?,
        )
        .await
        .with_context(|| {
            format!(
                "failed to verify {scope}@{} against the trust policy {}",
                target.digest,
                config.policy_path.display()
            )
        })?;
        if v.passed {
            if super::config::load()?.trust.pin_signers {
                pin_signer(&scope, &v)?;
            }
            return Ok(Passed {
                said: passed(&v),
                sbom: None,
            });
        }
        let why = if v.signatures.is_empty() {
            "no signature found".to_string()
        } else {
            v.signatures
                .iter()
                .filter_map(|s| s.failure().map(|f| format!("{}: {f}", s.digest)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        anyhow::bail!(
            "{scope}@{} fails the trust policy (statement {:?} of {}): {why}\nhint: `berth verify {scope}@{}` shows each signature and step; sign it with `berth sign`",
            target.digest,
            v.statement,
            config.policy_path.display(),
            target.digest
        )
    }
}

/// An image that passed the gate.
struct Passed {
    /// What to tell the user.
    said: String,
    /// The SBOM the rule's `requireSbom` accepted, with its content.
    sbom: Option<berth_engine::VerifiedSbom>,
}

/// The SBOM `requireSbom` accepted, when the rule had one (its document moved, not copied).
fn verified_sbom(e: berth_trust::evidence::Evidence) -> Option<berth_engine::VerifiedSbom> {
    let v = e.sbom?;
    let manifest = v.accepted?;
    let referrer = v.referrers.into_iter().find(|r| r.digest == manifest)?;
    Some(berth_engine::VerifiedSbom {
        manifest,
        artifact_type: referrer.artifact_type,
        signer: referrer.signer.unwrap_or_default(),
        content: v.accepted_content?,
    })
}

/// Trust on first use: the first trusted signer of a repository is pinned, and an image
/// signed by anyone else is refused (`berth trust accept` takes the new one).
fn pin_signer(scope: &str, v: &ImageVerification) -> anyhow::Result<()> {
    use berth_trust::roles::VerifiedSignature;
    use berth_trust::tofu::{PinStore, TofuError, TofuOutcome};
    let path = crate::dirs::config_dir()?.join("trust/pins.json");
    let mut pins = PinStore::load(&path)?;
    let signatures: Vec<VerifiedSignature> = v
        .signatures
        .iter()
        .filter_map(|s| {
            s.verdict
                .clone()
                .map(|d| VerifiedSignature::new(s.digest.to_string(), d))
        })
        .collect();
    match pins.check(scope, &signatures, berth_trust::Timestamp::now()) {
        Ok(TofuOutcome::Match(_)) => Ok(()),
        Ok(TofuOutcome::FirstUse(_)) => Ok(pins.save(&path)?),
        Err(e @ TofuError::Changed(_)) => {
            pins.save(&path)?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn note(quiet: bool, line: &str) {
    if !quiet {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn passed(v: &ImageVerification) -> String {
    let signer = v
        .signatures
        .iter()
        .find(|s| s.passed())
        .and_then(|s| s.signer())
        .unwrap_or_else(|| "(verification level skip)".to_string());
    format!(
        "trust: {}@{} passed trust policy statement {:?}, signed by {signer}",
        v.scope, v.target.digest, v.statement
    )
}

/// What the gate let through: the reference to fetch (by digest when a policy verified it)
/// and the SBOM the policy's `requireSbom` accepted.
pub struct Allowed {
    pub fetch: Reference,
    pub sbom: Option<berth_engine::VerifiedSbom>,
}

/// Before `reference` is pulled: with a trust policy, resolves it, verifies that digest and
/// returns it as the reference to fetch; without one, says so and returns `reference`.
pub fn before_pull(
    client: &berth_distribution::Client,
    reference: &Reference,
    quiet: bool,
) -> anyhow::Result<Allowed> {
    let Some(gate) = Gate::configured()? else {
        note(
            quiet,
            &format!(
                "trust: no trust policy configured, so {reference} is not verified (`berth trust init` turns signing and verification on)"
            ),
        );
        return Ok(Allowed {
            fetch: reference.clone(),
            sbom: None,
        });
    };
    let sigs = super::sign::signatures_in(client, reference)?;
    let (_, wanted) = super::sign::wanted(reference);
    let (target, passed) = crate::commands::image::runtime()?.block_on(async {
        let target = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference} to verify it"))?;
        let passed = gate.check(client, &sigs, reference, &target).await?;
        anyhow::Ok((target, passed))
    })?;
    note(quiet, &passed.said);
    let fetch = Reference::parse(&format!("{}@{}", reference.name(), target.digest))
        .with_context(|| format!("invalid digest {} of {reference}", target.digest))?;
    Ok(Allowed {
        fetch,
        sbom: passed.sbom,
    })
}

/// Before the local image `record` (named `reference`) is run: with a trust policy, its
/// digest is verified in its registry; returns the SBOM the policy's `requireSbom` accepted.
/// The client is made only when a policy is configured: a run without one pays nothing.
pub fn before_run(
    client: impl FnOnce() -> anyhow::Result<berth_distribution::Client>,
    reference: &Reference,
    record: &berth_store::ImageRecord,
    quiet: bool,
) -> anyhow::Result<Option<berth_engine::VerifiedSbom>> {
    let Some(gate) = Gate::configured()? else {
        return Ok(None);
    };
    let client = &client()?;
    let sigs = super::sign::signatures_in(client, reference)?;
    let target = super::sign::record_target(record);
    let passed = crate::commands::image::runtime()?
        .block_on(gate.check(client, &sigs, reference, &target))
        .with_context(|| format!("refusing to run {reference}"))?;
    note(quiet, &passed.said);
    Ok(passed.sbom)
}
