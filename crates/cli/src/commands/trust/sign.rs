//! `berth sign IMAGE [--key NAME] [--envelope jws|cose] [--expiry DURATION]`: signs the
//! image's manifest digest with a key of berth's key store and pushes the signature manifest
//! to the image's repository (the referrers API, else the `sha256-<hex>` tag index); prints
//! the signature manifest's digest. A tag is resolved to its digest first, with a warning,
//! as notation does.

use std::time::Duration;

use anyhow::Context;
use berth_oci::Reference;
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_trust::repository::{RegistrySignatures, SignatureRepository, SignatureUpload};
use berth_trust::{EnvelopeFormat, SignOptions, Timestamp};
use clap::{Args, ValueEnum};

use crate::commands::image::RegistryFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvelopeArg {
    /// JWS flattened JSON (`application/jose+json`), notation's default.
    Jws,
    /// COSE_Sign1 (`application/cose`).
    Cose,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image (`host:port/repo@sha256:…`, or a tag, which is resolved to its digest).
    #[arg(value_parser = crate::commands::image::parse_registry_reference)]
    reference: Reference,
    /// The signing key (default: the key store's default key).
    #[arg(long, short, value_name = "NAME")]
    key: Option<String>,
    /// The envelope format.
    #[arg(long, value_enum, default_value = "jws")]
    envelope: EnvelopeArg,
    /// After this long, verifiers refuse the signature (`io.cncf.notary.expiry`): 90s, 15m,
    /// 24h, 30d, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    expiry: Option<Duration>,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// A signing key of berth's key store and its certificate chain.
pub struct Signer {
    pub name: String,
    pub key: berth_trust::keys::SigningKey,
    pub chain: Vec<berth_trust::Certificate>,
}

impl Signer {
    /// The key `name`, else the key store's default key.
    pub fn load(name: Option<String>) -> anyhow::Result<Signer> {
        let store = super::key::key_store()?;
        let name = match name {
            Some(k) => k,
            None => store
                .default_key()
                .context("failed to read the default signing key")?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no signing key given and no default key\nhint: pass --key NAME, or make one with `berth cert generate-test NAME --default` or `berth key generate NAME --default`"
                    )
                })?,
        };
        let key = store
            .load(&name)
            .with_context(|| format!("failed to load signing key {name:?}"))?;
        let chain = store
            .chain(&name)
            .with_context(|| format!("failed to read the certificate chain of key {name:?}"))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "key {name:?} has no certificate chain\nhint: import one with `berth key import {name} --key KEYFILE --cert CHAIN.pem --force`"
                )
            })?;
        Ok(Signer { name, key, chain })
    }

    /// Signs `target` (a manifest of `sigs`' repository) and pushes the signature manifest.
    pub async fn sign_and_push(
        &self,
        sigs: &RegistrySignatures<'_>,
        target: &berth_trust::TargetArtifact,
        opts: &SignOptions,
    ) -> anyhow::Result<berth_trust::repository::SignatureDescriptor> {
        let what = format!("{}@{}", sigs.repository().name(), target.digest);
        let envelope = berth_trust::sign(target, &self.key, &self.chain, opts)
            .with_context(|| format!("failed to sign {what}"))?;
        let digest: berth_oci::oci_spec::image::Digest = target
            .digest
            .parse()
            .with_context(|| format!("invalid digest {}", target.digest))?;
        let subject = Descriptor::new(
            MediaType::from(target.media_type.as_str()),
            target.size,
            digest,
        );
        let manifest = berth_trust::manifest::signature_manifest(
            &subject,
            &envelope,
            opts.format,
            &self.chain,
            opts.signing_time,
        )
        .context("failed to make the signature manifest")?;
        sigs.push_signature(SignatureUpload {
            envelope: &envelope,
            manifest: &manifest.bytes,
        })
        .await
        .with_context(|| format!("failed to push the signature of {what}"))
    }
}

/// `(by_tag, tag or digest)` of an image reference: what to resolve.
pub fn wanted(reference: &Reference) -> (bool, String) {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => (false, d.to_string()),
        (None, t) => (true, t.unwrap_or(berth_oci::DEFAULT_TAG).to_string()),
    }
}

pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let reference = args.reference;
    let signer = Signer::load(args.key)?;
    let format = match args.envelope {
        EnvelopeArg::Jws => EnvelopeFormat::Jws,
        EnvelopeArg::Cose => EnvelopeFormat::Cose,
    };
    let mut opts = SignOptions::new(format);
    if let Some(d) = args.expiry {
        let secs = i64::try_from(d.as_secs()).context("--expiry is too long")?;
        opts.expiry = Some(Timestamp(opts.signing_time.0.saturating_add(secs)));
    }
    let client = args.registry.client()?;
    let repo = berth_distribution::Repository::new(reference.registry(), reference.repository())
        .with_context(|| format!("invalid image reference {reference}"))?;
    let scope = reference.name();
    let sigs = RegistrySignatures::new(&client, repo);
    let (by_tag, wanted) = wanted(&reference);
    let (target, signature) = crate::commands::image::runtime()?.block_on(async {
        let target = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference}"))?;
        if by_tag {
            warn(&format!(
                "Warning: always sign by digest ({scope}@{}) rather than by tag ({wanted}): a tag may be moved to another image; signing the image it names now",
                target.digest
            ));
        }
        let pushed = signer.sign_and_push(&sigs, &target, &opts).await?;
        anyhow::Ok((target, pushed))
    })?;
    warn(&format!(
        "Successfully signed {scope}@{} with key {:?}",
        target.digest, signer.name
    ));
    crate::commands::image::print(signature.digest.as_ref())
}

pub(crate) fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
