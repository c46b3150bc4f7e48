//! `berth images [REPOSITORY[:TAG]]`: the images of the local store, with their size and
//! platform, as `docker images` lists them.

use std::collections::BTreeMap;

use berth_oci::{Digest, ManifestInfo, Reference, descriptor_digest};
use berth_store::{ImageRecord, Store};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::DataArgs;

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only the images of this repository (`busybox`, `127.0.0.1:5000/team/app`), and of
    /// this tag when one is given.
    #[arg(value_name = "REPOSITORY[:TAG]", value_parser = Filter::parse)]
    filter: Option<Filter>,
    /// Print only the image ids (short digests), each once.
    #[arg(long, short, conflicts_with = "format")]
    quiet: bool,
    /// Output format; `json` is a stable array of records.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    data: DataArgs,
}

/// The `REPOSITORY[:TAG]` argument: a repository, and a tag only when written.
#[derive(Debug, Clone)]
pub struct Filter {
    reference: Reference,
    tag: bool,
}

impl Filter {
    fn parse(s: &str) -> Result<Filter, String> {
        let reference = super::parse_reference(s)?;
        let last = s.rsplit('/').next().unwrap_or(s);
        Ok(Filter {
            tag: last.contains(':') || s.contains('@'),
            reference,
        })
    }

    fn matches(&self, record: &ImageRecord) -> bool {
        let Ok(name) = Reference::parse(&record.name) else {
            return false;
        };
        let r = &self.reference;
        name.registry() == r.registry()
            && name.repository() == r.repository()
            && (!self.tag || r.tag().is_none() || name.tag() == r.tag())
            && r.digest().is_none_or(|d| *d == record.digest)
    }
}

/// One line of the listing: the record, what its content weighs, and its platform.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    #[serde(flatten)]
    record: &'a ImageRecord,
    /// Config and layers (of every platform present, for an index), as the manifests say.
    content_size: Option<u64>,
    /// `os/arch[/variant]` of an image; `index` for a multi-platform image.
    image_platform: String,
}

pub fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let store = args.data.open()?;
    let images: Vec<ImageRecord> = store
        .images()?
        .into_iter()
        .filter(|r| args.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for i in &images {
            let id = short_id(&i.digest);
            if seen.insert(id) {
                out.push(id);
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        return super::print(&out.join("\n"));
    }
    let listed: Vec<Listed> = images
        .iter()
        .map(|record| {
            let (content_size, image_platform) = describe(&store, record);
            Listed {
                record,
                content_size,
                image_platform,
            }
        })
        .collect();
    match args.format {
        Format::Json => super::print(&serde_json::to_string_pretty(&listed)?),
        Format::Table => {
            let mut out = format!(
                "{:<50} {:<14} {:<22} {:>10}",
                "NAME", "IMAGE ID", "PLATFORM", "SIZE"
            );
            for l in &listed {
                out.push_str(&format!(
                    "\n{:<50} {:<14} {:<22} {:>10}",
                    l.record.name,
                    short_id(&l.record.digest),
                    l.image_platform,
                    l.content_size.map_or_else(|| "-".to_owned(), human_size)
                ));
            }
            super::print(&out)
        }
    }
}

/// The first 12 hex digits of the digest, as docker shows an image id.
fn short_id(d: &Digest) -> &str {
    let hex = d.as_str().split_once(':').map_or(d.as_str(), |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// The size of the image's content (config + layers, from its manifest; for an index, of
/// every platform present in the store, each blob once) and its platform (from the
/// config: `os/arch[/variant]`; for an index, `index: N platforms`, or the platform pulled
/// of it). Unreadable parts leave `None`/`-`.
fn describe(store: &Store, record: &ImageRecord) -> (Option<u64>, String) {
    let Some(info) = manifest(store, &record.digest, &record.media_type) else {
        return (None, record.platform.clone().unwrap_or_else(|| "-".into()));
    };
    if info.manifests.is_empty() {
        let platform = info
            .config
            .as_ref()
            .and_then(|c| config_platform(store, c))
            .or_else(|| record.platform.clone())
            .unwrap_or_else(|| "-".into());
        let mut blobs = BTreeMap::new();
        add_blobs(&info, &mut blobs);
        return (Some(blobs.values().sum()), platform);
    }
    let mut blobs = BTreeMap::new();
    let mut present = 0;
    for child in &info.manifests {
        let Ok(d) = descriptor_digest(child) else {
            continue;
        };
        if let Some(m) = manifest(store, &d, child.media_type().as_ref()) {
            present += 1;
            add_blobs(&m, &mut blobs);
        }
    }
    let total = info.manifests.len();
    let platform = match &record.platform {
        Some(p) if present < total => format!("{p} (index of {total})"),
        _ => format!("index: {total} platforms"),
    };
    (Some(blobs.values().sum()), platform)
}

fn manifest(store: &Store, digest: &Digest, media_type: &str) -> Option<ManifestInfo> {
    let bytes = store.read_blob(digest).ok()?;
    ManifestInfo::parse(&bytes, Some(media_type)).ok()
}

fn add_blobs(info: &ManifestInfo, blobs: &mut BTreeMap<String, u64>) {
    for d in info.config.iter().chain(&info.layers) {
        blobs.insert(d.digest().to_string(), d.size());
    }
}

/// `os/arch[/variant]` from an image config in the store.
fn config_platform(
    store: &Store,
    config: &berth_oci::oci_spec::image::Descriptor,
) -> Option<String> {
    let d = descriptor_digest(config).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&store.read_blob(&d).ok()?).ok()?;
    let field = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut p = format!("{}/{}", field("os")?, field("architecture")?);
    if let Some(variant) = field("variant") {
        p.push('/');
        p.push_str(variant);
    }
    Some(p)
}

/// Decimal units with three significant digits, as docker prints sizes: `912B`, `4.26kB`,
/// `12.3MB`, `1.05GB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes}B");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if v < 9.995 {
        2
    } else if v < 99.95 {
        1
    } else {
        0
    };
    format!("{v:.digits$}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1.00kB");
        assert_eq!(human_size(4263), "4.26kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(999_999), "1.00MB");
        assert_eq!(human_size(1_050_000_000), "1.05GB");
    }

    #[test]
    fn short_ids() {
        let d = Digest::sha256_of(b"");
        assert_eq!(short_id(&d), "e3b0c44298fc");
    }
}
