//! The two sides of a copy, over the three kinds of [`Endpoint`].

use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::Context;
use berth_distribution::{Client, Descriptor, FileSource, Repository};
use berth_oci::oci_spec::image::MediaType;
use berth_oci::{Digest, Reference, descriptor_digest};
use berth_store::{ImageRecord, Lease, OciLayout, Store};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Endpoint, ManifestBlob};
use crate::progress::{BlobProgress, CountingSource, CountingWriter};

/// Bytes buffered between a download and the blocking writer it feeds.
const PIPE_BYTES: usize = 1 << 20;

fn need_store(store: Option<&Store>) -> anyhow::Result<&Store> {
    store.ok_or_else(|| anyhow::anyhow!("the local store is not open"))
}

/// The reference a registry manifest is read or written under: the tag, else the digest.
fn reference_of(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => berth_oci::DEFAULT_TAG.to_owned(),
    }
}

pub(crate) enum Src {
    Registry {
        client: Client,
        repo: Repository,
        reference: String,
    },
    Layout {
        layout: OciLayout,
        tag: Option<String>,
    },
    Store {
        store: Store,
        name: String,
    },
}

impl Src {
    pub async fn open(client: &Client, store: Option<&Store>, e: &Endpoint) -> anyhow::Result<Src> {
        Ok(match e {
            Endpoint::Registry(r) => Src::Registry {
                client: client.clone(),
                repo: Repository::from(r),
                reference: reference_of(r),
            },
            Endpoint::Layout { path, tag } => Src::Layout {
                layout: OciLayout::open(path)
                    .with_context(|| format!("failed to open the OCI layout {}", path.display()))?,
                tag: tag.clone(),
            },
            Endpoint::Store(name) => Src::Store {
                store: need_store(store)?.clone(),
                name: name.clone(),
            },
        })
    }

    /// The top manifest (or index).
    pub async fn top(&self) -> anyhow::Result<ManifestBlob> {
        match self {
            Src::Registry {
                client,
                repo,
                reference,
            } => {
                let m = client.get_manifest(repo, reference, &[]).await?;
                Ok(ManifestBlob {
                    bytes: m.bytes.to_vec(),
                    media_type: m.media_type,
                    digest: m.digest,
                })
            }
            Src::Layout { layout, tag } => {
                let (layout, tag) = (layout.clone(), tag.clone());
                blocking(move || {
                    let desc = layout.resolve(tag.as_deref())?;
                    let digest = descriptor_digest(&desc)?;
                    let bytes = layout.read_blob(&digest)?;
                    Ok(ManifestBlob {
                        bytes,
                        media_type: desc.media_type().to_string(),
                        digest,
                    })
                })
                .await
            }
            Src::Store { store, name } => {
                let (store, name) = (store.clone(), name.clone());
                blocking(move || {
                    let record = store.image(&name)?.ok_or_else(|| {
                        anyhow::anyhow!(
                            "no image {name} in the local store\nhint: `berth images` lists the images; `berth pull` fetches one"
                        )
                    })?;
                    let bytes = store.read_blob(&record.digest)?;
                    Ok(ManifestBlob {
                        bytes,
                        media_type: record.media_type,
                        digest: record.digest,
                    })
                })
                .await
            }
        }
    }

    /// A child manifest named by `desc`.
    pub async fn manifest(&self, desc: &Descriptor) -> anyhow::Result<ManifestBlob> {
        let digest = descriptor_digest(desc)?;
        let media_type = desc.media_type().to_string();
        let bytes = match self {
            Src::Registry { client, repo, .. } => client
                .get_manifest(repo, digest.as_str(), &[&media_type])
                .await?
                .bytes
                .to_vec(),
            Src::Layout { layout, .. } => {
                let (layout, d) = (layout.clone(), digest.clone());
                blocking(move || Ok(layout.read_blob(&d)?)).await?
            }
            Src::Store { store, .. } => {
                let (store, d) = (store.clone(), digest.clone());
                blocking(move || Ok(store.read_blob(&d)?)).await?
            }
        };
        Ok(ManifestBlob {
            bytes,
            media_type,
            digest,
        })
    }

    /// The descriptors of the manifests whose subject is `subject`.
    pub async fn referrers(&self, subject: &Digest) -> anyhow::Result<Vec<Descriptor>> {
        match self {
            Src::Registry { client, repo, .. } => Ok(client.referrers(repo, subject, None).await?),
            Src::Layout { layout, .. } => {
                let (layout, subject) = (layout.clone(), subject.clone());
                blocking(move || {
                    let mut found = Vec::new();
                    for desc in layout.index()?.manifests() {
                        let Ok(digest) = descriptor_digest(desc) else {
                            continue;
                        };
                        let bytes = layout.read_blob(&digest)?;
                        let names_subject = serde_json::from_slice::<serde_json::Value>(&bytes)
                            .ok()
                            .and_then(|m| m["subject"]["digest"].as_str().map(str::to_owned))
                            .is_some_and(|d| d == subject.as_str());
                        if names_subject {
                            found.push(desc.clone());
                        }
                    }
                    Ok(found)
                })
                .await
            }
            Src::Store { .. } => anyhow::bail!(
                "the local store keeps no referrers\nhint: copy referrers between registries and OCI layouts"
            ),
        }
    }

    /// Where the blob is as a local file, for sources on this machine.
    fn local_path(&self, digest: &Digest) -> Option<PathBuf> {
        match self {
            Src::Registry { .. } => None,
            Src::Layout { layout, .. } => Some(layout.blob_path(digest)),
            Src::Store { store, .. } => Some(store.blob_path(digest)),
        }
    }

    /// Stream blob `digest` into `sink`, which **must verify the digest** before the content
    /// becomes visible (the layout and store writers behind [`piped`] do): a download is not
    /// hashed here too, a local file is copied as it is.
    async fn fetch_for_verifying_sink<W: AsyncWrite + Unpin + Send>(
        &self,
        digest: &Digest,
        size: u64,
        sink: &mut W,
    ) -> anyhow::Result<()> {
        match (self, self.local_path(digest)) {
            (Src::Registry { client, repo, .. }, _) => {
                client
                    .get_blob_sink_verifies(repo, digest, Some(size), sink)
                    .await?;
            }
            (_, Some(path)) => {
                let mut f = tokio::fs::File::open(&path)
                    .await
                    .with_context(|| format!("failed to open blob {}", path.display()))?;
                tokio::io::copy(&mut f, sink)
                    .await
                    .with_context(|| format!("failed to read blob {}", path.display()))?;
            }
            (_, None) => anyhow::bail!("blob {digest} has no source"),
        }
        sink.shutdown().await.context("failed to finish the copy")?;
        Ok(())
    }
}

/// How a blob reached the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    Copied,
    /// Linked from another repository of the same registry, without a transfer.
    Mounted,
    /// The registry found it present after all.
    Exists,
}

impl From<berth_distribution::BlobPush> for Put {
    fn from(p: berth_distribution::BlobPush) -> Put {
        match p {
            berth_distribution::BlobPush::AlreadyPresent => Put::Exists,
            berth_distribution::BlobPush::Uploaded => Put::Copied,
        }
    }
}

pub(crate) enum Dst {
    Registry {
        client: Client,
        repo: Repository,
        reference: String,
    },
    Layout {
        layout: OciLayout,
        tag: Option<String>,
    },
    Store {
        store: Store,
        name: String,
        lease: Lease,
    },
}

impl Dst {
    pub async fn open(
        client: &Client,
        store: Option<&Store>,
        e: &Endpoint,
        purpose: &str,
    ) -> anyhow::Result<Dst> {
        Ok(match e {
            Endpoint::Registry(r) => Dst::Registry {
                client: client.clone(),
                repo: Repository::from(r),
                reference: reference_of(r),
            },
            Endpoint::Layout { path, tag } => Dst::Layout {
                layout: OciLayout::open_or_create(path).with_context(|| {
                    format!("failed to open or create the OCI layout {}", path.display())
                })?,
                tag: tag.clone(),
            },
            Endpoint::Store(name) => {
                let store = need_store(store)?.clone();
                let lease = store
                    .lease(purpose)
                    .context("failed to take a lease on the local store")?;
                Dst::Store {
                    store,
                    name: name.clone(),
                    lease,
                }
            }
        })
    }

    /// Whether the destination already has blob `digest`. For the store this first
    /// leases the digest, so a concurrent prune cannot remove it after the check.
    pub async fn has_blob(&self, digest: &Digest, size: u64) -> anyhow::Result<bool> {
        Ok(match self {
            Dst::Registry { client, repo, .. } => client.head_blob(repo, digest).await?.is_some(),
            Dst::Layout { layout, .. } => layout.has_blob(digest),
            Dst::Store { store, lease, .. } => {
                lease.add(digest)?;
                store.blob_size(digest)? == Some(size)
            }
        })
    }

    /// Copy blob `digest` of `size` bytes from `src`; says how.
    pub async fn put_blob(
        &self,
        src: &Src,
        digest: &Digest,
        size: u64,
        bar: &BlobProgress,
    ) -> anyhow::Result<Put> {
        match self {
            Dst::Registry { client, repo, .. } => {
                if let Some(path) = src.local_path(digest) {
                    let source = CountingSource {
                        inner: FileSource::new(path),
                        progress: bar.clone(),
                    };
                    let pushed = client.push_blob(repo, digest, size, source).await?;
                    return Ok(Put::from(pushed));
                }
                if let Src::Registry {
                    repo: from,
                    client: src_client,
                    ..
                } = src
                {
                    if from.registry() == repo.registry()
                        && client.mount_blob(repo, digest, from.name()).await?
                    {
                        return Ok(Put::Mounted);
                    }
                    // Another registry: spool to a temporary file, which can be re-read
                    // from any offset for a chunked or retried upload.
                    let tmp = tempfile::NamedTempFile::new()
                        .context("failed to create a temporary file")?;
                    let mut f = CountingWriter {
                        inner: tokio::fs::File::from_std(
                            tmp.reopen().context("failed to open a temporary file")?,
                        ),
                        progress: bar.clone(),
                    };
                    src_client
                        .get_blob(from, digest, Some(size), &mut f)
                        .await?;
                    f.inner
                        .sync_all()
                        .await
                        .context("failed to flush a temporary file")?;
                    // The download filled the bar once; the upload fills it again.
                    let source = CountingSource {
                        inner: FileSource::new(tmp.path()),
                        progress: bar.clone(),
                    };
                    let pushed = client.push_blob(repo, digest, size, source).await?;
                    return Ok(Put::from(pushed));
                }
                anyhow::bail!("blob {digest} has no source")
            }
            Dst::Layout { layout, .. } => {
                let layout = layout.clone();
                let d = digest.clone();
                piped(src, digest, size, bar, move |r| {
                    layout.write_blob(r, &d, Some(size))?;
                    Ok(())
                })
                .await?;
                Ok(Put::Copied)
            }
            Dst::Store { store, lease, .. } => {
                let ingester = store.ingester(lease);
                let d = digest.clone();
                piped(src, digest, size, bar, move |mut r| {
                    let key = format!("copy-{}", d.as_str().replace(':', "-"));
                    let mut w = ingester.writer(&key, &d, Some(size))?;
                    w.write_from(&mut r)
                        .context("failed to write into the store")?;
                    w.commit()?;
                    Ok(())
                })
                .await?;
                Ok(Put::Copied)
            }
        }
    }

    /// Write a manifest; the top one is also tagged (registry, layout). The store records
    /// its image in [`Dst::finish`].
    pub async fn put_manifest(&self, m: &ManifestBlob, top: bool) -> anyhow::Result<()> {
        match self {
            Dst::Registry {
                client,
                repo,
                reference,
            } => {
                let r = if top {
                    reference.clone()
                } else {
                    m.digest.to_string()
                };
                client
                    .put_manifest(repo, &r, &m.bytes, &m.media_type)
                    .await?;
            }
            Dst::Layout { layout, tag } => {
                let (layout, tag, m) = (layout.clone(), tag.clone(), m.clone());
                blocking(move || {
                    layout.write_blob(&m.bytes[..], &m.digest, Some(m.bytes.len() as u64))?;
                    if top {
                        let desc = descriptor(&m)?;
                        layout.add_manifest(&desc, tag.as_deref())?;
                    }
                    Ok(())
                })
                .await?;
            }
            Dst::Store { store, lease, .. } => {
                store.ingester(lease).put_bytes(&m.bytes, Some(&m.digest))?;
            }
        }
        Ok(())
    }

    /// Make referrer `m` (already written by [`Dst::put_manifest`]) findable from its
    /// subject: a registry does it on the push (or the client updates its tag fallback); a
    /// layout lists it, untagged, in `index.json`.
    pub async fn list_referrer(&self, m: &ManifestBlob, desc: &Descriptor) -> anyhow::Result<()> {
        match self {
            Dst::Registry { .. } => Ok(()),
            Dst::Layout { layout, .. } => {
                let (layout, mut entry) = (layout.clone(), desc.clone());
                entry.set_size(m.bytes.len() as u64);
                blocking(move || Ok(layout.add_manifest(&entry, None)?)).await
            }
            Dst::Store { .. } => anyhow::bail!(
                "the local store keeps no referrers\nhint: copy referrers between registries and OCI layouts"
            ),
        }
    }

    /// Record the copied image (store) once all its content is present.
    pub async fn finish(&self, top: &ManifestBlob, platform: Option<String>) -> anyhow::Result<()> {
        if let Dst::Store { store, name, .. } = self {
            store.put_image(ImageRecord {
                name: name.clone(),
                digest: top.digest.clone(),
                media_type: top.media_type.clone(),
                size: top.bytes.len() as u64,
                platform,
                pulled_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            })?;
        }
        Ok(())
    }
}

fn descriptor(m: &ManifestBlob) -> anyhow::Result<Descriptor> {
    let digest: berth_oci::oci_spec::image::Digest = m
        .digest
        .as_str()
        .parse()
        .with_context(|| format!("digest {} is not valid for an OCI descriptor", m.digest))?;
    Ok(Descriptor::new(
        MediaType::from(m.media_type.as_str()),
        m.bytes.len() as u64,
        digest,
    ))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a blocking task failed")?
}

/// Stream blob `digest` from `src` into `write`, a blocking writer that reads its input
/// through a bounded pipe and **must verify the digest** before the blob becomes visible:
/// the download itself is not hashed (see [`Src::fetch_for_verifying_sink`]).
async fn piped(
    src: &Src,
    digest: &Digest,
    size: u64,
    bar: &BlobProgress,
    write: impl FnOnce(BlockingReader) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::io::duplex(PIPE_BYTES);
    let mut tx = CountingWriter {
        inner: tx,
        progress: bar.clone(),
    };
    let reader = BlockingReader {
        handle: tokio::runtime::Handle::current(),
        inner: rx,
    };
    let writer = tokio::task::spawn_blocking(move || write(reader));
    let fetched = src.fetch_for_verifying_sink(digest, size, &mut tx).await;
    drop(tx);
    let written = writer.await.context("a blocking task failed")?;
    match (fetched, written) {
        (Ok(()), written) => written,
        (Err(f), Ok(())) => Err(f),
        // The writer stopping first breaks the pipe: its error is the cause.
        (Err(f), Err(w)) => Err(w.context(format!("the transfer stopped ({f:#})"))),
    }
}

/// A synchronous reader over an async one, for use on a blocking thread.
pub(crate) struct BlockingReader {
    handle: tokio::runtime::Handle,
    inner: tokio::io::DuplexStream,
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.handle.block_on(self.inner.read(buf))
    }
}
