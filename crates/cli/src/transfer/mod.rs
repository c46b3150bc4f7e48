//! Copying images between registries, OCI layouts and the local store: what `berth pull`,
//! `push` and `copy` share.
//!
//! A copy reads the top manifest at the source, picks one platform of an index (unless all
//! platforms are wanted), copies configs and layers concurrently (at most
//! [`BLOB_CONCURRENCY`] at once) straight through digest verification — a layer is never
//! held in memory — skipping blobs the destination already has, then child manifests, and
//! last the top manifest and its tag, so a destination never names incomplete content.

mod endpoint;
mod side;

use anyhow::Context;
use berth_distribution::Client;
use berth_oci::{Digest, ManifestInfo, descriptor_digest, media_type};
use berth_store::Store;
use futures_util::StreamExt;

pub use berth_oci::Platform;

pub use endpoint::Endpoint;
use side::{Dst, Put, Src};

/// Blobs copied at once.
pub const BLOB_CONCURRENCY: usize = 6;

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Copy every manifest of an index instead of selecting [`CopyOptions::platform`].
    pub all_platforms: bool,
    /// The platform to select from an index.
    pub platform: Platform,
    /// How progress is shown on stderr.
    pub progress: crate::progress::Progress,
    /// Also copy the image's referrers (signatures, SBOMs, attestations), theirs too.
    pub referrers: bool,
}

/// How deep referrers of referrers are followed (a signature on an SBOM of an image is 2).
pub const MAX_REFERRER_DEPTH: usize = 4;

/// Referrers copied at most, all depths together: a bound on what a hostile source costs.
pub const MAX_REFERRERS: usize = 1000;

/// What was written at the destination's top.
#[derive(Debug, Clone)]
pub struct Copied {
    pub digest: Digest,
    /// The platform selected from an index, if one was.
    pub platform: Option<String>,
    /// Referrers copied (with `referrers`).
    pub referrers: usize,
}

/// A manifest and what identifies it.
#[derive(Debug, Clone)]
pub(crate) struct ManifestBlob {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// Copy the image at `src` to `dst`. `store` is needed when either side is the store.
pub async fn copy(
    client: &Client,
    store: Option<&Store>,
    src: &Endpoint,
    dst: &Endpoint,
    opts: &CopyOptions,
) -> anyhow::Result<Copied> {
    let src_side = Src::open(client, store, src).await?;
    let dst_side = Dst::open(client, store, dst, &format!("copy {src} to {dst}")).await?;
    let top = src_side
        .top()
        .await
        .with_context(|| format!("failed to read the image at {src}"))?;
    let copier = Copier {
        src: &src_side,
        dst: &dst_side,
        progress: &opts.progress,
    };
    let info = parse(&top)?;
    let (top, platform) = if is_index(&top, &info) && !opts.all_platforms {
        let p = &opts.platform;
        let desc = p.select(&top.bytes).ok_or_else(|| {
            anyhow::anyhow!(
                "the image at {src} has no manifest for platform {p}\nhint: choose another with --platform, or copy every platform with --all-platforms"
            )
        })?;
        let child = src_side
            .manifest(&desc)
            .await
            .with_context(|| format!("failed to read the {p} manifest of {src}"))?;
        (child, Some(p.to_string()))
    } else {
        (top, None)
    };
    let info = parse(&top)?;
    if is_index(&top, &info) {
        for child in &info.manifests {
            let m = src_side
                .manifest(child)
                .await
                .with_context(|| format!("failed to read a manifest of {src}"))?;
            let child_info = parse(&m)?;
            if is_index(&m, &child_info) {
                anyhow::bail!(
                    "{src}: index {} contains another index ({}); nested indexes are not supported",
                    top.digest,
                    m.digest
                );
            }
            copier.image(&m, &child_info, false).await?;
        }
        copier.manifest(&top, true).await?;
    } else {
        copier.image(&top, &info, true).await?;
    }
    dst_side
        .finish(&top, platform.clone())
        .await
        .with_context(|| format!("failed to record the image at {dst}"))?;
    let referrers = if opts.referrers {
        copier
            .referrers(&top.digest)
            .await
            .with_context(|| format!("failed to copy the referrers of {}", top.digest))?
    } else {
        0
    };
    Ok(Copied {
        digest: top.digest,
        platform,
        referrers,
    })
}

fn parse(m: &ManifestBlob) -> anyhow::Result<ManifestInfo> {
    ManifestInfo::parse(&m.bytes, Some(&m.media_type))
        .with_context(|| format!("manifest {} cannot be parsed", m.digest))
}

fn is_index(m: &ManifestBlob, info: &ManifestInfo) -> bool {
    media_type::is_index(&m.media_type) || (info.config.is_none() && !info.manifests.is_empty())
}

struct Copier<'a> {
    src: &'a Src,
    dst: &'a Dst,
    progress: &'a crate::progress::Progress,
}

impl Copier<'_> {
    /// An image manifest: its blobs, then itself.
    async fn image(&self, m: &ManifestBlob, info: &ManifestInfo, top: bool) -> anyhow::Result<()> {
        let mut blobs = Vec::new();
        for d in info.referenced_blobs() {
            let digest = descriptor_digest(d)
                .with_context(|| format!("manifest {} has an invalid descriptor", m.digest))?;
            if !blobs.iter().any(|(b, _)| *b == digest) {
                blobs.push((digest, d.size()));
            }
        }
        let mut results = futures_util::stream::iter(blobs)
            .map(|(digest, size)| async move {
                if self.dst.has_blob(&digest, size).await? {
                    self.progress.skipped(&digest, "exists");
                    return anyhow::Ok(());
                }
                let bar = self.progress.blob(&digest, size);
                let put = self
                    .dst
                    .put_blob(self.src, &digest, size, &bar)
                    .await
                    .with_context(|| format!("failed to copy blob {digest}"))?;
                bar.done(match put {
                    Put::Copied => "done",
                    Put::Mounted => "mounted",
                    Put::Exists => "exists",
                });
                Ok(())
            })
            .buffer_unordered(BLOB_CONCURRENCY);
        while let Some(r) = results.next().await {
            r?;
        }
        self.manifest(m, top).await
    }

    /// The referrers of `subject` and theirs, breadth first, each after its content: the
    /// referrers API (or its tag fallback) at a registry, `index.json` in a layout.
    async fn referrers(&self, subject: &Digest) -> anyhow::Result<usize> {
        let mut seen = std::collections::HashSet::new();
        let mut queue = std::collections::VecDeque::from([(subject.clone(), 0usize)]);
        while let Some((subject, depth)) = queue.pop_front() {
            if depth >= MAX_REFERRER_DEPTH {
                continue;
            }
            for desc in self.src.referrers(&subject).await? {
                let digest = descriptor_digest(&desc).with_context(|| {
                    format!("a referrer of {subject} has an invalid descriptor")
                })?;
                if !seen.insert(digest.clone()) {
                    continue;
                }
                if seen.len() > MAX_REFERRERS {
                    anyhow::bail!("{subject} has more than {MAX_REFERRERS} referrers in all");
                }
                let m = self
                    .src
                    .manifest(&desc)
                    .await
                    .with_context(|| format!("failed to read referrer {digest}"))?;
                let info = parse(&m)?;
                if is_index(&m, &info) {
                    for child in &info.manifests {
                        let c = self.src.manifest(child).await?;
                        let child_info = parse(&c)?;
                        self.image(&c, &child_info, false).await?;
                    }
                    self.manifest(&m, false).await?;
                } else {
                    self.image(&m, &info, false).await?;
                }
                self.dst
                    .list_referrer(&m, &desc)
                    .await
                    .with_context(|| format!("failed to list referrer {digest}"))?;
                queue.push_back((digest, depth + 1));
            }
        }
        Ok(seen.len())
    }

    async fn manifest(&self, m: &ManifestBlob, top: bool) -> anyhow::Result<()> {
        self.progress
            .line(format_args!("writing manifest {}", m.digest));
        self.dst
            .put_manifest(m, top)
            .await
            .with_context(|| format!("failed to write manifest {}", m.digest))
    }
}
