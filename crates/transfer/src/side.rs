//! The two sides of a copy over the three kinds of [`Endpoint`]: blobs go through their
//! content roles ([`Provider`], [`Ingester`]); resolving the top manifest, referrers, and
//! naming the result (a tag, an `index.json` entry, a store record) are each kind's own.

use berth_distribution::{Client, Descriptor, Repository};
use berth_oci::oci_spec::image::MediaType;
use berth_oci::{Digest, Reference, descriptor_digest};
use berth_store::{ImageRecord, OciLayout, Store};

use std::sync::Arc;

use crate::archive::{ArchiveFormat, ArchiveProvider, ArchiveSource};
use crate::content::{Ingester, Provider};
use crate::local::{blocking, digest_of};
use crate::registry::RegistryContent;
use crate::{Endpoint, ManifestBlob, Result, TransferError};

fn need_store(store: Option<&Store>) -> Result<&Store> {
    store.ok_or(TransferError::StoreNotOpen)
}

/// The repository `r` names, and the reference its manifest is read or written under: the
/// tag, else the digest.
fn registry(client: &Client, r: &Reference) -> (RegistryContent, String) {
    let reference = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => berth_oci::DEFAULT_TAG.to_owned(),
    };
    (
        RegistryContent::new(client.clone(), Repository::from(r)),
        reference,
    )
}

pub(crate) enum Src {
    Registry {
        content: RegistryContent,
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
    /// Image `image` of an indexed archive.
    Archive {
        provider: ArchiveProvider,
        image: usize,
    },
}

/// Index the archive at `path` and select the image `name` in it.
fn open_archive(path: &std::path::Path, name: Option<&str>, want: ArchiveFormat) -> Result<Src> {
    let source = ArchiveSource::open(path)?;
    if source.format() != want {
        return Err(TransferError::ArchiveFormatMismatch {
            path: path.to_owned(),
            expected: want,
            found: source.format(),
        });
    }
    let image = source.select(name)?;
    Ok(Src::Archive {
        provider: ArchiveProvider {
            source: Arc::new(source),
        },
        image,
    })
}

impl Src {
    pub fn open(client: &Client, store: Option<&Store>, e: &Endpoint) -> Result<Src> {
        Ok(match e {
            Endpoint::Registry(r) => {
                let (content, reference) = registry(client, r);
                Src::Registry { content, reference }
            }
            Endpoint::Layout { path, tag } => Src::Layout {
                layout: OciLayout::open(path).map_err(|source| TransferError::OpenLayout {
                    path: path.clone(),
                    source: Box::new(source),
                })?,
                tag: tag.clone(),
            },
            Endpoint::Store(name) => Src::Store {
                store: need_store(store)?.clone(),
                name: name.clone(),
            },
            Endpoint::DockerArchive { path, reference } => {
                open_archive(path, reference.as_deref(), ArchiveFormat::Docker)?
            }
            Endpoint::OciArchive { path, tag } => {
                open_archive(path, tag.as_deref(), ArchiveFormat::Oci)?
            }
        })
    }

    /// Where the blobs come from.
    pub fn provider(&self) -> &dyn Provider {
        match self {
            Src::Registry { content, .. } => content,
            Src::Layout { layout, .. } => layout,
            Src::Store { store, .. } => store,
            Src::Archive { provider, .. } => provider,
        }
    }

    /// The top manifest (or index).
    pub async fn top(&self) -> Result<ManifestBlob> {
        match self {
            Src::Registry { content, reference } => {
                let m = content
                    .client()
                    .get_manifest(content.repository(), reference, &[])
                    .await?;
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
                    let digest = digest_of(&desc)?;
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
                    let record = store
                        .image(&name)?
                        .ok_or(TransferError::NotInStore { name })?;
                    let bytes = store.read_blob(&record.digest)?;
                    Ok(ManifestBlob {
                        bytes,
                        media_type: record.media_type,
                        digest: record.digest,
                    })
                })
                .await
            }
            Src::Archive { provider, image } => provider
                .source
                .images()
                .get(*image)
                .map(|i| i.top.clone())
                .ok_or_else(|| TransferError::ArchiveEmpty {
                    path: provider.path(),
                }),
        }
    }

    /// A child manifest named by `desc`.
    pub async fn manifest(&self, desc: &Descriptor) -> Result<ManifestBlob> {
        let digest = digest_of(desc)?;
        let bytes = self.provider().manifest(desc).await?;
        Ok(ManifestBlob {
            bytes,
            media_type: desc.media_type().to_string(),
            digest,
        })
    }

    /// The descriptors of the manifests whose subject is `subject`.
    pub async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        match self {
            Src::Registry { content, .. } => Ok(content
                .client()
                .referrers(content.repository(), subject, None)
                .await?),
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
            Src::Store { store, .. } => {
                let (store, subject) = (store.clone(), subject.clone());
                blocking(move || Ok(store.referrers(&subject)?)).await
            }
            Src::Archive { provider, .. } => Ok(provider.source.referrers(subject)),
        }
    }
}

pub(crate) enum Dst {
    Registry {
        content: RegistryContent,
        reference: String,
    },
    Layout {
        layout: OciLayout,
        tag: Option<String>,
    },
    /// The store's ingester holds the copy's lease: it lasts as long as this side.
    Store {
        ingester: berth_store::Ingester,
        name: String,
    },
}

impl Dst {
    pub fn open(
        client: &Client,
        store: Option<&Store>,
        e: &Endpoint,
        purpose: &str,
    ) -> Result<Dst> {
        Ok(match e {
            Endpoint::Registry(r) => {
                let (content, reference) = registry(client, r);
                Dst::Registry { content, reference }
            }
            Endpoint::Layout { path, tag } => Dst::Layout {
                layout: OciLayout::open_or_create(path).map_err(|source| {
                    TransferError::CreateLayout {
                        path: path.clone(),
                        source: Box::new(source),
                    }
                })?,
                tag: tag.clone(),
            },
            Endpoint::Store(name) => {
                let store = need_store(store)?;
                let lease = store
                    .lease(purpose)
                    .map_err(|source| TransferError::Lease {
                        source: Box::new(source),
                    })?;
                Dst::Store {
                    ingester: store.ingester(&lease),
                    name: name.clone(),
                }
            }
            // archives are written sequentially by `archive::copy_to_archive`
            Endpoint::DockerArchive { .. } | Endpoint::OciArchive { .. } => {
                return Err(TransferError::ArchiveNotADestination {
                    location: e.to_string(),
                });
            }
        })
    }

    /// Where the blobs go.
    pub fn ingester(&self) -> &dyn Ingester {
        match self {
            Dst::Registry { content, .. } => content,
            Dst::Layout { layout, .. } => layout,
            Dst::Store { ingester, .. } => ingester,
        }
    }

    /// Write a manifest; the top one is also tagged (registry, layout). The store records
    /// its image in [`Dst::finish`].
    pub async fn put_manifest(&self, m: &ManifestBlob, top: bool) -> Result<()> {
        match self {
            Dst::Registry { content, reference } => {
                let r = if top {
                    reference.clone()
                } else {
                    m.digest.to_string()
                };
                content
                    .client()
                    .put_manifest(content.repository(), &r, &m.bytes, &m.media_type)
                    .await?;
            }
            Dst::Layout { layout, tag } => {
                let (layout, tag, m) = (layout.clone(), tag.clone(), m.clone());
                blocking(move || {
                    layout.write_blob(&m.bytes[..], &m.digest, Some(m.bytes.len() as u64))?;
                    if top {
                        layout.add_manifest(&descriptor(&m)?, tag.as_deref())?;
                    }
                    Ok(())
                })
                .await?;
            }
            Dst::Store { ingester, .. } => {
                ingester.put_bytes(&m.bytes, Some(&m.digest))?;
            }
        }
        Ok(())
    }

    /// Make referrer `m` (already written by [`Dst::put_manifest`]) findable from its
    /// subject: a registry does it on the push (or the client updates its tag fallback); a
    /// layout lists it, untagged, in `index.json`; the store finds stored manifests by their
    /// `subject` and keeps them as long as it keeps the subject.
    pub async fn list_referrer(&self, m: &ManifestBlob, desc: &Descriptor) -> Result<()> {
        match self {
            Dst::Registry { .. } => Ok(()),
            Dst::Layout { layout, .. } => {
                let (layout, mut entry) = (layout.clone(), desc.clone());
                entry.set_size(m.bytes.len() as u64);
                blocking(move || Ok(layout.add_manifest(&entry, None)?)).await
            }
            Dst::Store { .. } => Ok(()),
        }
    }

    /// Record the copied image (store) once all its content is present.
    pub async fn finish(&self, top: &ManifestBlob, platform: Option<String>) -> Result<()> {
        if let Dst::Store { ingester, name } = self {
            ingester.store().put_image(ImageRecord {
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

/// The descriptor of manifest `m`.
fn descriptor(m: &ManifestBlob) -> Result<Descriptor> {
    let digest = berth_oci::oci_spec::image::Digest::try_from(&m.digest).map_err(|source| {
        TransferError::OciDigest {
            digest: m.digest.clone(),
            source,
        }
    })?;
    Ok(Descriptor::new(
        MediaType::from(m.media_type.as_str()),
        m.bytes.len() as u64,
        digest,
    ))
}
