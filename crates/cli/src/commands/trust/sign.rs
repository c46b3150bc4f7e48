//! `berth sign IMAGE [--key NAME] [--envelope jws|cose] [--expiry DURATION]
//! [--timestamp-url URL --timestamp-root-cert FILE]`: signs the image's manifest digest with
//! a key of berth's key store and pushes the signature manifest to the image's repository
//! (the referrers API, else the `sha256-<hex>` tag index); prints the signature manifest's
//! digest. A tag is resolved to its digest first, with a warning, as notation does. With a
//! timestamp authority the signature is countersigned with an RFC 3161 timestamp that must
//! verify against the root certificate before anything is pushed (as `notation sign
//! --timestamp-url`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use berth_oci::Reference;
use berth_oci::oci_spec::image::{Descriptor, MediaType};
use berth_trust::keys::Signer;
use berth_trust::repository::{RegistrySignatures, SignatureRepository, SignatureUpload};
use berth_trust::tsa::Timestamper;
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
    /// An RFC 3161 timestamp authority (http or https): the signature gets a timestamp, so
    /// it still verifies after the signing certificate expires. Needs
    /// --timestamp-root-cert.
    #[arg(long, value_name = "URL", requires = "timestamp_root_cert")]
    timestamp_url: Option<String>,
    /// The root certificate (PEM or DER file) the timestamp authority's certificate must
    /// chain to; a timestamp that does not verify against it is refused.
    #[arg(long, value_name = "FILE", requires = "timestamp_url")]
    timestamp_root_cert: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// The timestamp authority at `url` whose tokens must chain to the one root certificate in
/// `root_file`.
pub fn timestamper(url: &str, root_file: &Path) -> anyhow::Result<Timestamper> {
    let what = || format!("timestamp root certificate {}", root_file.display());
    let bytes =
        std::fs::read(root_file).with_context(|| format!("failed to read the {}", what()))?;
    let mut certs = berth_trust::Certificate::parse_many(&bytes)
        .with_context(|| format!("invalid {}", what()))?;
    if certs.len() != 1 {
        anyhow::bail!(
            "the {} holds {} certificates; it must hold exactly one, the timestamp authority's root",
            what(),
            certs.len()
        );
    }
    let root = certs.remove(0);
    Timestamper::new(url, root).with_context(|| format!("cannot timestamp with {url}"))
}

/// The HTTP client timestamp requests go through: anonymous, one attempt, 30 s at the most.
fn tsa_client() -> anyhow::Result<berth_distribution::Client> {
    berth_distribution::Client::new(berth_distribution::ClientOptions {
        credentials: None,
        timeout: Duration::from_secs(30),
        retry: berth_distribution::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
        ..Default::default()
    })
    .context("failed to set up the timestamp authority's HTTP client")
}

/// The key `name`, else the key store's default key, with its chain checked to certify it.
pub fn load_signer(name: Option<&str>) -> anyhow::Result<Signer> {
    Ok(super::key::key_store()?.signer(name)?)
}

/// How signing and pushing a signature go.
pub trait SignAndPush {
    /// Signs `target` (a manifest of `sigs`' repository), timestamped by `stamp` when
    /// given, and pushes the signature manifest.
    fn sign_and_push(
        &self,
        sigs: &RegistrySignatures<'_>,
        target: &berth_trust::TargetArtifact,
        opts: &SignOptions,
        stamp: Option<&Timestamper>,
    ) -> impl std::future::Future<Output = anyhow::Result<berth_trust::repository::SignatureDescriptor>>;
}

impl SignAndPush for Signer {
    async fn sign_and_push(
        &self,
        sigs: &RegistrySignatures<'_>,
        target: &berth_trust::TargetArtifact,
        opts: &SignOptions,
        stamp: Option<&Timestamper>,
    ) -> anyhow::Result<berth_trust::repository::SignatureDescriptor> {
        let what = format!("{}@{}", sigs.repository().name(), target.digest);
        let unfinished = berth_trust::sign::prepare(target, &self.key, &self.chain, opts)
            .with_context(|| format!("failed to sign {what}"))?;
        let envelope = match stamp {
            None => unfinished.finish(None),
            Some(t) => t.finish(&tsa_client()?, unfinished).await,
        }
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

/// The signatures (and manifests) of `reference`'s repository.
pub fn signatures_in<'a>(
    client: &'a berth_distribution::Client,
    reference: &Reference,
) -> anyhow::Result<RegistrySignatures<'a>> {
    let repo = berth_distribution::Repository::new(reference.registry(), reference.repository())
        .with_context(|| format!("invalid image reference {reference}"))?;
    Ok(RegistrySignatures::new(client, repo))
}

/// A local image's top manifest as signatures name it.
pub fn record_target(record: &berth_store::ImageRecord) -> berth_trust::TargetArtifact {
    berth_trust::TargetArtifact {
        media_type: record.media_type.clone(),
        digest: record.digest.to_string(),
        size: record.size,
        annotations: Default::default(),
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
    let signer = load_signer(args.key.as_deref())?;
    let format = match args.envelope {
        EnvelopeArg::Jws => EnvelopeFormat::Jws,
        EnvelopeArg::Cose => EnvelopeFormat::Cose,
    };
    let mut opts = SignOptions::new(format);
    if let Some(d) = args.expiry {
        let secs = i64::try_from(d.as_secs()).context("--expiry is too long")?;
        opts.expiry = Some(Timestamp(opts.signing_time.0.saturating_add(secs)));
    }
    let stamp = match (&args.timestamp_url, &args.timestamp_root_cert) {
        (Some(url), Some(root)) => Some(timestamper(url, root)?),
        _ => None,
    };
    let client = args.registry.client()?;
    let scope = reference.name();
    let sigs = signatures_in(&client, &reference)?;
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
        let pushed = signer
            .sign_and_push(&sigs, &target, &opts, stamp.as_ref())
            .await?;
        anyhow::Ok((target, pushed))
    })?;
    let stamped = stamp
        .as_ref()
        .map(|t| format!(", timestamped by {}", t.url()))
        .unwrap_or_default();
    warn(&format!(
        "Successfully signed {scope}@{} with key {:?}{stamped}",
        target.digest, signer.name
    ));
    crate::commands::image::print(signature.digest.as_ref())
}

pub(crate) fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
