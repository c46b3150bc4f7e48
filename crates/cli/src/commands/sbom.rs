//! `berth sbom IMAGE [--format spdx-json|cyclonedx-json|table] [-o FILE] [--attach [--key
//! NAME]] [--from-referrer]`: what packages an image holds, as an SPDX 2.3 or CycloneDX 1.6
//! JSON document (or syft's NAME VERSION TYPE table).
//!
//! IMAGE is, in this order: `dir:PATH` or an existing directory (a root filesystem),
//! `oci:DIR[:TAG]` (an OCI image layout), a name in the local store, else a registry
//! reference, pulled into the local store first as `berth pull` pulls it (trust gate
//! included). The layers are read from their blob files, bottom first, without unpacking;
//! whiteouts are honoured and each layer's diff ID is checked.
//!
//! The default format is `spdx-json`, as `syft -o spdx-json` and the order have it:
//! SPDX is the ISO/IEC 5962 standard most policy tools and registries accept first.
//!
//! `--attach` pushes the document to the image's repository as an OCI artifact whose
//! `subject` is the image manifest (`artifactType` the format's media type, one layer with
//! the document, annotated with its creation time), through the referrers API or its tag
//! fallback, and signs that artifact with the key store's key exactly as `berth attest`
//! signs an attestation; prints the artifact's digest.
//!
//! `--from-referrer` reads back the newest SBOM referrer of an image in its registry and
//! prints it, but only after its Notary signature passes the trust policy as `berth verify`
//! would check it: anyone with push rights can attach an unsigned document, so an unsigned
//! or unverified one is refused. There is deliberately no flag to skip that check — the
//! registry's own referrers listing (`berth inspect`, `oras discover`) shows unsigned ones.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use berth_image::rootfs::{BlobSource, ImageLayers, resolve};
use berth_oci::{Digest, Reference};
use berth_sbom::catalog::{catalog_dir, catalog_layers};
use berth_sbom::format::{self, Format, WriteOptions};
use berth_sbom::layers::{LayerBlob, ScanLimits};
use berth_sbom::package::{Ecosystem, Inventory};
use berth_trust::repository::{SignatureRepository, verify_image};
use berth_trust::{SignOptions, TargetArtifact, TrustPolicy, TrustStore};
use clap::{Args, ValueEnum};

use crate::commands::image::{DataArgs, RegistryFlags};
use crate::commands::trust::sign::{SignAndPush, load_signer, signatures_in, wanted};

/// The annotation saying when a referrer was made: the newest SBOM is the one with the
/// latest.
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The largest SBOM document read back from a registry.
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON (`application/spdx+json`).
    SpdxJson,
    /// CycloneDX 1.6 JSON (`application/vnd.cyclonedx+json`).
    CyclonedxJson,
    /// A NAME VERSION TYPE table, as syft's.
    Table,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The image: `dir:PATH` or a directory (a root filesystem), `oci:DIR[:TAG]`, a name in
    /// the local store, or a registry reference (pulled first).
    image: String,
    /// The document's format.
    #[arg(long, value_enum, default_value = "spdx-json")]
    format: SbomFormat,
    /// Write the document to FILE (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Push the document to the image's registry as a signed referrer of the image; prints
    /// the artifact's digest.
    #[arg(long, conflicts_with = "from_referrer")]
    attach: bool,
    /// The signing key for --attach (default: the key store's default key).
    #[arg(long, short, value_name = "NAME", requires = "attach")]
    key: Option<String>,
    /// Print the newest SBOM attached to the image in its registry, once its signature
    /// passes the trust policy (an unsigned or unverified one is refused).
    #[arg(long)]
    from_referrer: bool,
    #[command(flatten)]
    source: SourceArgs,
}

/// Where images come from: the local store, registries (pulled into the store first).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The platform of a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = crate::commands::image::parse_platform)]
    pub platform: Option<berth_oci::Platform>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub data: DataArgs,
}

/// An image's inventory, and where in a registry it lives (for `--attach`).
pub struct Catalogued {
    pub inventory: Inventory,
    /// The registry reference, when the image is (or came from) a registry image.
    pub registry: Option<Reference>,
    /// The digests the registry's image may have: the store record's (an index, perhaps)
    /// and the image manifest's.
    pub digests: Vec<Digest>,
}

/// The inventory of `arg` (see the module's documentation for what it may name).
pub fn catalogue(arg: &str, src: &SourceArgs) -> anyhow::Result<Catalogued> {
    let limits = ScanLimits::default();
    let dir = arg
        .strip_prefix("dir:")
        .map(PathBuf::from)
        .or_else(|| Path::new(arg).is_dir().then(|| PathBuf::from(arg)));
    if let Some(dir) = dir {
        let inventory = catalog_dir(&dir, &limits).with_context(|| {
            format!("failed to catalogue the root filesystem {}", dir.display())
        })?;
        return Ok(Catalogued {
            inventory,
            registry: None,
            digests: Vec::new(),
        });
    }
    let platform = src
        .platform
        .clone()
        .unwrap_or_else(berth_oci::Platform::host);
    if let Some(rest) = arg.strip_prefix("oci:") {
        let (path, tag) = split_layout(rest);
        let layout = berth_store::OciLayout::open(path)
            .with_context(|| format!("failed to open the OCI layout {path}"))?;
        let desc = layout
            .resolve(tag)
            .with_context(|| format!("no image {arg}"))?;
        let digest = berth_oci::descriptor_digest(&desc)
            .with_context(|| format!("the OCI layout {path} names an invalid digest"))?;
        let image = resolve(&layout, &digest, &platform)
            .with_context(|| format!("failed to read image {arg}"))?;
        let inventory = catalogue_image(&layout, arg, &image, &limits)?;
        return Ok(Catalogued {
            inventory,
            registry: None,
            digests: vec![digest, image.manifest],
        });
    }
    let reference = Reference::parse(arg).with_context(|| {
        format!("{arg} is not an image reference, a directory, dir:PATH or oci:DIR[:TAG]")
    })?;
    let name = reference.to_string();
    let store = src.data.open()?;
    if store.image(&name)?.is_none() {
        pull(&reference, src, &store)?;
    }
    let record = store.image(&name)?.with_context(|| {
        format!("no image {name} in the local store\nhint: `berth pull {name}` first")
    })?;
    let platform = match (&src.platform, &record.platform) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => berth_oci::Platform::parse(p)
            .with_context(|| format!("image {name} records an invalid platform {p:?}"))?,
        (None, None) => platform,
    };
    let image = resolve(&store, &record.digest, &platform)
        .with_context(|| format!("failed to read image {name}"))?;
    let inventory = catalogue_image(&store, &name, &image, &limits)?;
    Ok(Catalogued {
        inventory,
        registry: Some(reference),
        digests: vec![record.digest.clone(), image.manifest],
    })
}

/// `DIR[:TAG]` of an `oci:` argument (a colon after the last `/` starts the tag).
fn split_layout(rest: &str) -> (&str, Option<&str>) {
    match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    }
}

/// Pull `reference` into `store` as `berth pull` does (the trust gate decides the digest).
fn pull(reference: &Reference, src: &SourceArgs, store: &berth_store::Store) -> anyhow::Result<()> {
    let client = src.registry.client()?;
    let fetch = crate::commands::trust::gate::before_pull(&client, reference, src.quiet)?.fetch;
    let opts = berth_transfer::CopyOptions {
        all_platforms: false,
        platform: src
            .platform
            .clone()
            .unwrap_or_else(berth_oci::Platform::host),
        referrers: false,
    };
    let from = berth_transfer::Endpoint::Registry(fetch);
    let to = berth_transfer::Endpoint::Store(reference.to_string());
    crate::commands::image::copy(&client, Some(store), &from, &to, &opts, src.quiet)
        .with_context(|| format!("failed to pull {reference}"))?;
    if !src.quiet {
        note(&format!("pulled {reference}"));
    }
    Ok(())
}

/// The inventory of `image`'s layers, read from `source`'s blob files bottom first.
fn catalogue_image(
    source: &dyn BlobSource,
    name: &str,
    image: &ImageLayers,
    limits: &ScanLimits,
) -> anyhow::Result<Inventory> {
    let mut blobs: Vec<LayerBlob<Box<dyn Read + Send + '_>>> = Vec::new();
    for layer in &image.layers {
        let reader = source
            .open(&layer.digest)
            .with_context(|| format!("failed to open layer {} of {name}", layer.digest))?;
        blobs.push(LayerBlob {
            reader,
            media_type: layer.media_type.clone(),
            diff_id: layer.diff_id.clone(),
        });
    }
    catalog_layers(name, Some(image.manifest.clone()), blobs, limits)
        .with_context(|| format!("failed to catalogue image {name}"))
}

/// syft's package type names (its table's TYPE column).
fn syft_type(e: Ecosystem) -> &'static str {
    match e {
        Ecosystem::Debian => "deb",
        Ecosystem::Alpine => "apk",
        Ecosystem::Rpm => "rpm",
        Ecosystem::CratesIo => "rust-crate",
        Ecosystem::Go => "go-module",
        Ecosystem::Npm => "npm",
        Ecosystem::PyPI => "python",
        Ecosystem::Maven => "java-archive",
    }
}

/// NAME VERSION TYPE, as syft's table (one row per package, columns padded).
pub fn table(inventory: &Inventory) -> String {
    let mut rows = vec![["NAME", "VERSION", "TYPE"].map(str::to_owned)];
    for p in &inventory.packages {
        rows.push([
            p.name.clone(),
            p.version.clone(),
            syft_type(p.ecosystem).to_owned(),
        ]);
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in &rows {
        out.push_str(&format!("{:w0$}  {:w1$}  {}\n", r[0], r[1], r[2]));
    }
    out
}

/// Write `bytes` to `output` (atomically), else to stdout.
pub fn emit(output: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match output {
        Some(path) => berth_fsutil::atomic_replace(path, bytes)
            .with_context(|| format!("failed to write {}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| {
                    if bytes.last() == Some(&b'\n') {
                        Ok(())
                    } else {
                        out.write_all(b"\n")
                    }
                })
                .context("failed to write to stdout")
        }
    }
}

/// Push `content` as an artifact of `artifact_type` whose subject is `catalogued`'s image
/// in its registry, and sign it with key `key`; returns the artifact's digest.
pub fn attach(
    catalogued: &Catalogued,
    registry: &RegistryFlags,
    key: Option<&str>,
    artifact_type: &str,
    content: &[u8],
) -> anyhow::Result<String> {
    let Some(reference) = &catalogued.registry else {
        bail!(
            "--attach needs an image in a registry; {} is a directory or an OCI layout\nhint: push the image (`berth push`, `berth copy`) and name it by its registry reference",
            catalogued.inventory.subject.name
        );
    };
    let signer = load_signer(key)?;
    let opts = SignOptions::new(berth_trust::EnvelopeFormat::Jws);
    let client = registry.client()?;
    let scope = reference.name();
    let sigs = signatures_in(&client, reference)?;
    let (_, wanted) = wanted(reference);
    let created = berth_oci::timefmt::rfc3339_nano(SystemTime::now());
    let artifact = crate::commands::image::runtime()?.block_on(async {
        let image = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference} in its registry"))?;
        if !catalogued.digests.iter().any(|d| d.as_str() == image.digest) {
            bail!(
                "{reference} names {} in its registry, not the image catalogued ({})\nhint: push the local image first, or name the registry's image by digest",
                image.digest,
                catalogued
                    .digests
                    .iter()
                    .map(Digest::as_str)
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
        }
        let annotations = BTreeMap::from([(CREATED_ANNOTATION.to_owned(), created)]);
        let manifest = berth_trust::attestation::referrer_manifest(
            &image,
            artifact_type,
            content,
            &BTreeMap::new(),
            &annotations,
        );
        let artifact =
            berth_trust::attestation::push_referrer(&client, sigs.repository(), content, &manifest)
                .await
                .with_context(|| {
                    format!("failed to push the {artifact_type} artifact of {scope}@{}", image.digest)
                })?;
        signer.sign_and_push(&sigs, &artifact, &opts, None).await?;
        note(&format!(
            "Attached {artifact_type} {} to {scope}@{}, signed with key {:?}",
            artifact.digest, image.digest, signer.name
        ));
        anyhow::Ok(artifact)
    })?;
    Ok(artifact.digest)
}

/// The newest referrer of `reference` whose `artifactType` is one of `types`, verified
/// against the trust policy: its artifact type and content.
pub fn from_referrer(
    reference: &Reference,
    registry: &RegistryFlags,
    types: &[&str],
) -> anyhow::Result<(String, Vec<u8>)> {
    let config = crate::commands::trust::verify::trust_config()?;
    let policy_bytes = std::fs::read(&config.policy_path)
        .with_context(|| format!("failed to read {}", config.policy_path.display()))?;
    let policy = TrustPolicy::parse(&policy_bytes)
        .with_context(|| format!("invalid trust policy {}", config.policy_path.display()))?;
    let store = TrustStore::new(&config.truststore);
    let opts = crate::commands::trust::verify::verify_image_options()?;
    let client = registry.client()?;
    let scope = reference.name();
    let sigs = signatures_in(&client, reference)?;
    let (_, wanted) = wanted(reference);
    crate::commands::image::runtime()?.block_on(async {
        let image: TargetArtifact = sigs
            .resolve(&wanted)
            .await
            .with_context(|| format!("failed to resolve {reference}"))?;
        let image_digest = Digest::parse(&image.digest)
            .with_context(|| format!("invalid digest {}", image.digest))?;
        let mut listed = Vec::new();
        for t in types {
            let found = client
                .referrers(sigs.repository(), &image_digest, Some(t))
                .await
                .with_context(|| format!("failed to list the referrers of {scope}@{image_digest}"))?;
            listed.extend(found.into_iter().filter(|d| {
                d.artifact_type().as_ref().map(ToString::to_string).as_deref() == Some(*t)
            }));
        }
        // newest first: by the creation annotation; the registry's order breaks ties
        let created = |d: &berth_oci::oci_spec::image::Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(CREATED_ANNOTATION))
                .and_then(|c| berth_oci::timefmt::parse_rfc3339(c))
        };
        let mut order: Vec<usize> = (0..listed.len()).collect();
        order.sort_by(|&a, &b| created(&listed[b]).cmp(&created(&listed[a])).then(b.cmp(&a)));
        let Some(&newest) = order.first() else {
            bail!(
                "no SBOM ({}) is attached to {scope}@{image_digest}\nhint: `berth sbom --attach {reference}`",
                types.join(" or ")
            );
        };
        let desc = &listed[newest];
        let artifact_type = desc
            .artifact_type()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let digest = berth_oci::descriptor_digest(desc)
            .with_context(|| format!("the registry lists an invalid referrer of {scope}@{image_digest}"))?;
        let (target, content) = berth_trust::attestation::fetch_referrer(
            &client,
            sigs.repository(),
            &digest,
            desc.size(),
            &image_digest,
            &artifact_type,
            MAX_DOCUMENT_BYTES,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the SBOM {digest} of {scope}@{image_digest}: {e}"))?;
        let v = verify_image(&sigs, &scope, &target, &policy, &store, &opts)
            .await
            .with_context(|| format!("failed to verify the SBOM {digest} of {scope}"))?;
        if !v.passed {
            let why = v.refusal();
            bail!(
                "the newest SBOM of {scope}@{image_digest} ({digest}) failed verification against the trust policy {}: {why}\nhint: attach a signed one with `berth sbom --attach --key NAME {reference}`",
                config.policy_path.display()
            );
        }
        note(&format!(
            "SBOM {digest} of {scope}@{image_digest} ({artifact_type}) verified: trust policy statement {:?}",
            v.statement
        ));
        anyhow::Ok((artifact_type, content))
    })
}

pub fn run(args: SbomArgs) -> anyhow::Result<()> {
    if args.from_referrer {
        let reference = crate::commands::image::parse_registry_reference(&args.image)
            .map_err(|e| anyhow::anyhow!("--from-referrer needs a registry image: {e}"))?;
        let (artifact_type, content) = from_referrer(
            &reference,
            &args.source.registry,
            &[
                format::SPDX_JSON_MEDIA_TYPE,
                format::CYCLONEDX_JSON_MEDIA_TYPE,
            ],
        )?;
        let wanted = match args.format {
            SbomFormat::SpdxJson => Some(Format::SpdxJson),
            SbomFormat::CyclonedxJson => Some(Format::CycloneDxJson),
            SbomFormat::Table => None,
        };
        let bytes = match wanted {
            None => {
                let parsed = format::parse(&content)
                    .with_context(|| format!("the attached {artifact_type} document is invalid"))?;
                table(&parsed.inventory).into_bytes()
            }
            Some(f) => {
                if Format::from_media_type(&artifact_type) != Some(f) && !args.source.quiet {
                    note(&format!(
                        "note: the attached SBOM is {artifact_type}, printed as it was signed"
                    ));
                }
                content
            }
        };
        return emit(args.output.as_deref(), &bytes);
    }
    let catalogued = catalogue(&args.image, &args.source)?;
    let inv = &catalogued.inventory;
    for u in &inv.unsupported {
        note(&format!(
            "warning: {} was not read: {}",
            u.location.path, u.reason
        ));
    }
    let doc = match args.format {
        SbomFormat::Table => {
            if args.attach {
                bail!(
                    "--attach needs a document format\nhint: --format spdx-json or cyclonedx-json"
                );
            }
            table(inv).into_bytes()
        }
        SbomFormat::SpdxJson | SbomFormat::CyclonedxJson => {
            let f = if args.format == SbomFormat::SpdxJson {
                Format::SpdxJson
            } else {
                Format::CycloneDxJson
            };
            format::write(
                f,
                inv,
                &WriteOptions {
                    created: SystemTime::now(),
                },
            )
            .with_context(|| format!("failed to write the {} document", f.name()))?
        }
    };
    if !args.source.quiet {
        note(&format!(
            "catalogued {}: {} packages",
            inv.subject.name,
            inv.packages.len()
        ));
    }
    if args.attach {
        let media_type = match args.format {
            SbomFormat::CyclonedxJson => format::CYCLONEDX_JSON_MEDIA_TYPE,
            _ => format::SPDX_JSON_MEDIA_TYPE,
        };
        let digest = attach(
            &catalogued,
            &args.source.registry,
            args.key.as_deref(),
            media_type,
            &doc,
        )?;
        if let Some(path) = &args.output {
            emit(Some(path), &doc)?;
        }
        return crate::commands::image::print(&digest);
    }
    emit(args.output.as_deref(), &doc)
}

pub(crate) fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
