//! `berth inspect REF`: a container's record (when REF names a container), else an image's
//! manifest, config, layers and platforms, from the local store, else from its registry.

use anyhow::Context;
use berth_distribution::Repository;
use berth_oci::{ManifestInfo, Reference, descriptor_digest};
use berth_store::Store;
use clap::Args;
use serde_json::{Value, json};

use super::{DataArgs, RegistryFlags};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The container (name, id or unique id prefix) or image.
    reference: String,
    /// Print the top manifest exactly as stored.
    #[arg(long)]
    raw: bool,
    /// Output format (JSON only, for now).
    #[arg(long, value_parser = ["json"], default_value = "json")]
    format: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let containers = crate::commands::container::DataArgs {
        data: args.data.data.clone(),
    };
    if !args.raw && containers.dir()?.join("containers").is_dir() {
        let engine = containers.engine()?;
        if engine.resolve(&args.reference).is_ok() {
            let v = crate::commands::container::inspect_one(&engine, &args.reference)?;
            return super::print(&serde_json::to_string_pretty(&v)?);
        }
    }
    let reference = match Reference::parse(&args.reference) {
        Ok(r) => r,
        // neither a container nor an image reference: a usage error (exit 2), as clap
        // reports an invalid reference for the image commands
        Err(e) => {
            use clap::CommandFactory;
            #[derive(clap::Parser)]
            #[command(name = "berth inspect")]
            struct Inspect {
                #[command(flatten)]
                args: InspectArgs,
            }
            Inspect::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!(
                        "invalid value '{0}' for '<REFERENCE>': no container {0}, and not an \
                         image reference: {e}",
                        args.reference
                    ),
                )
                .exit()
        }
    };
    let store = args.data.open()?;
    let name = reference.to_string();
    let (source, manifest, media_type, digest, config) = match store.image(&name)? {
        Some(record) => {
            let bytes = store.read_blob(&record.digest)?;
            let config = config_from_store(&store, &bytes, &record.media_type)?;
            ("store", bytes, record.media_type, record.digest, config)
        }
        None => {
            let client = args.registry.client()?;
            let repo = Repository::from(&reference);
            let r = match (reference.digest(), reference.tag()) {
                (Some(d), _) => d.to_string(),
                (None, t) => t.unwrap_or(berth_oci::DEFAULT_TAG).to_owned(),
            };
            super::runtime()?.block_on(async {
                let m = client.get_manifest(&repo, &r, &[]).await?;
                let info = ManifestInfo::parse(&m.bytes, Some(&m.media_type))?;
                let config = match &info.config {
                    Some(c)
                        if info.manifests.is_empty()
                            && c.size() <= berth_store::MAX_IN_MEMORY_BLOB =>
                    {
                        let d = descriptor_digest(c)?;
                        let mut buf = Vec::new();
                        client.get_blob(&repo, &d, Some(c.size()), &mut buf).await?;
                        serde_json::from_slice(&buf).ok()
                    }
                    _ => None,
                };
                anyhow::Ok(("registry", m.bytes.to_vec(), m.media_type, m.digest, config))
            })?
        }
    };
    if args.raw {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(&manifest)?;
        return Ok(out.flush()?);
    }
    let manifest: Value = serde_json::from_slice(&manifest).context("the manifest is not JSON")?;
    let platforms: Vec<Value> = manifest
        .get("manifests")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("platform").cloned())
                .collect()
        })
        .unwrap_or_default();
    let out = json!({
        "name": name,
        "source": source,
        "digest": digest,
        "mediaType": media_type,
        "layers": manifest.get("layers").cloned().unwrap_or(Value::Null),
        "platforms": platforms,
        "config": config,
        "manifest": manifest,
    });
    super::print(&serde_json::to_string_pretty(&out)?)
}

fn config_from_store(
    store: &Store,
    manifest: &[u8],
    media_type: &str,
) -> anyhow::Result<Option<Value>> {
    let info = ManifestInfo::parse(manifest, Some(media_type))?;
    let Some(c) = info.config.filter(|_| info.manifests.is_empty()) else {
        return Ok(None);
    };
    let d = descriptor_digest(&c)?;
    Ok(store
        .read_blob(&d)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok()))
}
