//! Copying images between registries, OCI image layouts and the local store: what
//! `berth pull`, `push` and `copy` call, and what running, trust and admission build on.
//!
//! **Owns**
//! - the content roles ([`Provider`], [`Ingester`], [`ContentWriter`]; containerd's
//!   `core/content/content.go`) and their implementations: the local store
//!   ([`berth_store::Store`] reads; [`berth_store::Ingester`], which only exists under a
//!   lease, writes), OCI layouts ([`berth_store::OciLayout`]) and registry repositories
//!   ([`RegistryContent`]);
//! - the copy engine ([`copy`], [`copy_blob`]): platform selection from an index,
//!   concurrent blob copies, manifests after their content, referrers;
//! - image locations ([`Endpoint`]: `[docker://]REF`, `oci:PATH[:TAG]`, `store:NAME`,
//!   `docker-archive:PATH[:REF]`, `oci-archive:PATH[:TAG]`);
//! - image archives ([`archive`]: `berth save`, `load` and `import`).
//!
//! **Does not own**: HTTP (`berth-distribution`), the store's files and leases
//! (`berth-store`), platform matching (`berth-oci`), or showing progress: the caller
//! receives [`Progress`] events and renders them. The library never prints.
//!
//! **Design decision**: a copy reads the top manifest at the source, picks one platform of
//! an index (unless all platforms are wanted), copies configs and layers concurrently (at
//! most [`BLOB_CONCURRENCY`] at once) straight through digest verification — a layer is
//! never held in memory, and it is hashed once, by the destination's writer — skipping
//! blobs the destination already has, then child manifests, and last the top manifest and
//! its tag, so a destination never names incomplete content. A copy into the store holds a
//! lease of this process for its duration; the image record then keeps the content.

pub mod archive;
mod content;
mod endpoint;
mod error;
mod local;
mod progress;
mod registry;
mod side;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use berth_distribution::{Client, Descriptor};
use berth_oci::{Digest, ManifestInfo, Platform, media_type};
use berth_store::Store;
use futures_util::StreamExt;

pub use archive::{ArchiveFormat, ImportOptions, Imported, Loaded};
pub use content::{BoxFuture, ContentWriter, Ingester, Provider, Put, Sink};
pub use endpoint::Endpoint;
pub use error::{ErrorKind, Result, TransferError};
pub use progress::{BlobProgress, NoProgress, Progress};
pub use registry::RegistryContent;

use local::digest_of;
use progress::CountingWriter;
use side::{Dst, Src};

/// Blobs copied at once.
pub const BLOB_CONCURRENCY: usize = 6;

/// How deep referrers of referrers are followed (a signature on an SBOM of an image is 2).
pub const MAX_REFERRER_DEPTH: usize = 4;

/// Referrers copied at most, all depths together: a bound on what a hostile source costs.
pub const MAX_REFERRERS: usize = 1000;

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Copy every manifest of an index instead of selecting [`CopyOptions::platform`].
    pub all_platforms: bool,
    /// The platform to select from an index.
    pub platform: Platform,
    /// Also copy the image's referrers (signatures, SBOMs, attestations), theirs too.
    pub referrers: bool,
}

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
/// Writing an archive needs the multi-threaded runtime.
pub async fn copy(
    client: &Client,
    store: Option<&Store>,
    src: &Endpoint,
    dst: &Endpoint,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Copied> {
    if let Some(digest) = archive::copy_to_archive(client, store, src, dst, opts, progress).await? {
        return Ok(Copied {
            digest,
            platform: None,
            referrers: 0,
        });
    }
    let src_side = Src::open(client, store, src)?;
    let dst_side = Dst::open(client, store, dst, &format!("copy {src} to {dst}"))?;
    copy_sides(&src_side, &dst_side, &src.to_string(), dst, opts, progress).await
}

/// The copy between two opened sides.
pub(crate) async fn copy_sides(
    src_side: &Src,
    dst_side: &Dst,
    src: &str,
    dst: &Endpoint,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Copied> {
    let top = src_side.top().await.map_err(|e| TransferError::ReadImage {
        image: src.to_string(),
        source: Box::new(e),
    })?;
    let copier = Copier {
        src: src_side,
        dst: dst_side,
        progress,
    };
    let info = parse(&top)?;
    let (top, platform) =
        if is_index(&top, &info) && !opts.all_platforms {
            let p = &opts.platform;
            let desc = p
                .select(&top.bytes)
                .ok_or_else(|| TransferError::NoPlatform {
                    image: src.to_string(),
                    platform: p.clone(),
                })?;
            let child = src_side.manifest(&desc).await.map_err(|e| {
                TransferError::ReadPlatformManifest {
                    image: src.to_string(),
                    platform: p.clone(),
                    source: Box::new(e),
                }
            })?;
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
                .map_err(|e| TransferError::ReadManifest {
                    image: src.to_string(),
                    source: Box::new(e),
                })?;
            let child_info = parse(&m)?;
            if is_index(&m, &child_info) {
                return Err(TransferError::NestedIndex {
                    image: src.to_string(),
                    index: top.digest,
                    child: m.digest,
                });
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
        .map_err(|e| TransferError::RecordImage {
            image: dst.to_string(),
            source: Box::new(e),
        })?;
    let referrers = if opts.referrers {
        copier
            .referrers(&top.digest)
            .await
            .map_err(|e| TransferError::CopyReferrers {
                subject: top.digest.clone(),
                source: Box::new(e),
            })?
    } else {
        0
    };
    Ok(Copied {
        digest: top.digest,
        platform,
        referrers,
    })
}

/// Copy the blob `desc` names from `src` to `dst`, unless `dst` has it: mounted from a
/// repository of the same registry, pushed from a local file, or streamed through a
/// writer that verifies it. Says how it got there.
pub async fn copy_blob(
    src: &dyn Provider,
    dst: &dyn Ingester,
    desc: &Descriptor,
    progress: &dyn Progress,
) -> Result<Put> {
    let digest = digest_of(desc)?;
    if dst.exists(desc).await? {
        progress.exists(&digest);
        return Ok(Put::Exists);
    }
    let bar = progress.blob(&digest, desc.size());
    let put = transfer_blob(src, dst, desc, &digest, &bar)
        .await
        .map_err(|e| TransferError::CopyBlob {
            digest: digest.clone(),
            source: Box::new(e),
        })?;
    bar.done(put);
    Ok(put)
}

async fn transfer_blob(
    src: &dyn Provider,
    dst: &dyn Ingester,
    desc: &Descriptor,
    digest: &Digest,
    bar: &Arc<dyn BlobProgress>,
) -> Result<Put> {
    if let Some(from) = src.repository()
        && dst.mount(desc, from).await?
    {
        return Ok(Put::Mounted);
    }
    if let Some(path) = src.local_path(digest)
        && let Some(put) = dst.put_file(desc, &path, bar)
    {
        return put.await;
    }
    let key = format!("copy-{}", digest.as_str().replace(':', "-"));
    let writer = dst.writer(&key, desc, bar).await?;
    let mut sink = CountingWriter {
        inner: writer,
        progress: bar.clone(),
    };
    match src.fetch(desc, &mut sink).await {
        Ok(()) => sink.inner.commit(desc.size(), digest.clone()).await,
        Err(fetch) => match sink.inner.abort().await {
            Ok(()) => Err(fetch),
            // the writer stopping first broke the pipe: its error is the cause
            Err(written) => Err(TransferError::WriterFailed {
                digest: digest.clone(),
                fetch: Box::new(fetch),
                source: Box::new(written),
            }),
        },
    }
}

fn parse(m: &ManifestBlob) -> Result<ManifestInfo> {
    ManifestInfo::parse(&m.bytes, Some(&m.media_type)).map_err(|source| TransferError::Manifest {
        digest: m.digest.clone(),
        source,
    })
}

fn is_index(m: &ManifestBlob, info: &ManifestInfo) -> bool {
    media_type::is_index(&m.media_type) || (info.config.is_none() && !info.manifests.is_empty())
}

struct Copier<'a> {
    src: &'a Src,
    dst: &'a Dst,
    progress: &'a dyn Progress,
}

impl Copier<'_> {
    /// An image manifest: its blobs, then itself.
    async fn image(&self, m: &ManifestBlob, info: &ManifestInfo, top: bool) -> Result<()> {
        let mut blobs: Vec<(Digest, &Descriptor)> = Vec::new();
        for d in info.referenced_blobs() {
            let digest = berth_oci::descriptor_digest(d).map_err(|source| {
                TransferError::InvalidDescriptor {
                    what: format!("manifest {}", m.digest),
                    source,
                }
            })?;
            if !blobs.iter().any(|(b, _)| *b == digest) {
                blobs.push((digest, d));
            }
        }
        self.progress.image(&m.digest, &m.bytes);
        let (provider, ingester) = (self.src.provider(), self.dst.ingester());
        let mut results = futures_util::stream::iter(blobs)
            .map(|(_, desc)| copy_blob(provider, ingester, desc, self.progress))
            .buffer_unordered(BLOB_CONCURRENCY);
        while let Some(r) = results.next().await {
            r?;
        }
        self.manifest(m, top).await
    }

    /// The referrers of `subject` and theirs, breadth first, each after its content: the
    /// referrers API (or its tag fallback) at a registry, `index.json` in a layout.
    async fn referrers(&self, subject: &Digest) -> Result<usize> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([(subject.clone(), 0usize)]);
        while let Some((subject, depth)) = queue.pop_front() {
            if depth >= MAX_REFERRER_DEPTH {
                continue;
            }
            for desc in self.src.referrers(&subject).await? {
                let digest = berth_oci::descriptor_digest(&desc).map_err(|source| {
                    TransferError::InvalidDescriptor {
                        what: format!("a referrer of {subject}"),
                        source,
                    }
                })?;
                if !seen.insert(digest.clone()) {
                    continue;
                }
                if seen.len() > MAX_REFERRERS {
                    return Err(TransferError::TooManyReferrers {
                        subject,
                        limit: MAX_REFERRERS,
                    });
                }
                let m =
                    self.src
                        .manifest(&desc)
                        .await
                        .map_err(|e| TransferError::ReadReferrer {
                            digest: digest.clone(),
                            source: Box::new(e),
                        })?;
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
                self.dst.list_referrer(&m, &desc).await.map_err(|e| {
                    TransferError::ListReferrer {
                        digest: digest.clone(),
                        source: Box::new(e),
                    }
                })?;
                queue.push_back((digest, depth + 1));
            }
        }
        Ok(seen.len())
    }

    async fn manifest(&self, m: &ManifestBlob, top: bool) -> Result<()> {
        self.progress.manifest(&m.digest);
        self.dst
            .put_manifest(m, top)
            .await
            .map_err(|e| TransferError::WriteManifest {
                digest: m.digest.clone(),
                source: Box::new(e),
            })
    }
}
