//! The trust gate of `berth pull` and `berth run`: when berth's configuration directory holds
//! a trust policy (`trustpolicy.oci.json` or `trustpolicy.json`, with `truststore/`), an image
//! is verified in its registry before anything of it is fetched or unpacked, and refused when
//! it fails; what is then pulled is the digest that passed, not whatever the tag names a
//! moment later. A local image is verified again at every `run` (signatures may have been
//! revoked by removal, or the policy tightened). Without a policy, `pull` says the image was
//! not verified. notation's configuration is read by `berth verify`, not enforced here: a
//! user turns enforcement on in berth's own directory (`berth trust init`).

use anyhow::Context;
use berth_oci::Reference;
use berth_trust::repository::{
    ImageVerification, RegistrySignatures, SignatureRepository, VerifyImageOptions, verify_image,
};
use berth_trust::{TargetArtifact, TrustPolicy, TrustStore};

use super::verify::{TrustConfig, trust_config_in};

/// berth's own trust policy, when one is configured.
pub struct Gate {
    config: TrustConfig,
    policy: TrustPolicy,
    store: TrustStore,
}

impl Gate {
    /// The gate of berth's configuration directory; `None` when it has no trust policy.
    pub fn configured() -> anyhow::Result<Option<Gate>> {
        let Some(config) = trust_config_in(&crate::dirs::config_dir()?) else {
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
        Ok(Some(Gate {
            config,
            policy,
            store,
        }))
    }

    /// Verifies `target` (a manifest of `reference`'s repository); an error says why it failed.
    async fn check(
        &self,
        sigs: &RegistrySignatures<'_>,
        reference: &Reference,
        target: &TargetArtifact,
    ) -> anyhow::Result<ImageVerification> {
        let scope = reference.name();
        let v = verify_image(
            sigs,
            &scope,
            target,
            &self.policy,
            &self.store,
            &VerifyImageOptions::default(),
        )
        .await
        .with_context(|| {
            format!(
                "failed to verify {scope}@{} against the trust policy {}",
                target.digest,
                self.config.policy_path.display()
            )
        })?;
        if v.passed {
            return Ok(v);
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
            self.config.policy_path.display(),
            target.digest
        )
    }
}

fn note(quiet: bool, line: &str) {
    if !quiet {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn passed(quiet: bool, v: &ImageVerification) {
    let signer = v
        .signatures
        .iter()
        .find(|s| s.passed())
        .and_then(|s| s.signer())
        .unwrap_or_else(|| "(verification level skip)".to_string());
    note(
        quiet,
        &format!(
            "trust: {}@{} passed trust policy statement {:?}, signed by {signer}",
            v.scope, v.target.digest, v.statement
        ),
    );
}

/// Before `reference` is pulled: with a trust policy, resolves it, verifies that digest and
/// returns it as the reference to fetch; without one, says so and returns `reference`.
pub fn before_pull(
    client: &berth_distribution::Client,
    reference: &Reference,
    quiet: bool,
) -> anyhow::Result<Reference> {
    let Some(gate) = Gate::configured()? else {
        note(
            quiet,
            &format!(
                "trust: no trust policy configured, so {reference} is not verified (`berth trust init` turns signing and verification on)"
            ),
        );
        return Ok(reference.clone());
    };
    let repo = berth_distribution::Repository::new(reference.registry(), reference.repository())
        .with_context(|| format!("invalid image reference {reference}"))?;
    let sigs = RegistrySignatures::new(client, repo);
    let (_, wanted) = super::sign::wanted(reference);
    let v = crate::commands::image::runtime()?.block_on(async {
        let target = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference} to verify it"))?;
        gate.check(&sigs, reference, &target).await
    })?;
    passed(quiet, &v);
    Reference::parse(&format!("{}@{}", reference.name(), v.target.digest))
        .with_context(|| format!("invalid digest {} of {reference}", v.target.digest))
}

/// Before the local image `record` (named `reference`) is run: with a trust policy, its
/// digest is verified in its registry.
pub fn before_run(
    client: &berth_distribution::Client,
    reference: &Reference,
    record: &berth_store::ImageRecord,
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(gate) = Gate::configured()? else {
        return Ok(());
    };
    let repo = berth_distribution::Repository::new(reference.registry(), reference.repository())
        .with_context(|| format!("invalid image reference {reference}"))?;
    let sigs = RegistrySignatures::new(client, repo);
    let target = TargetArtifact {
        media_type: record.media_type.clone(),
        digest: record.digest.to_string(),
        size: record.size,
        annotations: Default::default(),
    };
    let v = crate::commands::image::runtime()?
        .block_on(gate.check(&sigs, reference, &target))
        .with_context(|| format!("refusing to run {reference}"))?;
    passed(quiet, &v);
    Ok(())
}
