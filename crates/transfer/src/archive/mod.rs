//! Image archives, for machines without a registry: `docker-archive` (what `docker save`
//! and `podman save` write) and `oci-archive` (a tar of an OCI image layout), read and
//! written interchangeably with podman and skopeo; and `berth import` of a root
//! filesystem.
//!
//! **Design decisions**
//! - Reading never extracts: one pass over the tar headers records where each entry's
//!   bytes are (`tarindex.rs`), and blobs are then streamed from those offsets into the
//!   destination's verifying writer. Nothing from an archive is written anywhere but into
//!   content-addressed blobs, so hostile names cannot escape; they are refused anyway.
//!   An oci-archive is not unpacked into a temporary [`berth_store::OciLayout`]: that
//!   would write every byte twice and need the space twice.
//! - A docker-archive's layers are loaded as they are, uncompressed (as podman and docker
//!   keep them): loading is then a verified copy at disk speed, and saving the image
//!   again gives the same bytes and digests. Compressing would cost ~30 MiB/s per core for
//!   a smaller store; a push compresses nothing either, so such an image is pushed with
//!   uncompressed layers (the distribution-spec allows them).
//! - Writing is sequential into a temporary file renamed into place at the end: a failed
//!   save leaves no partial file.

mod import;
mod read;
mod tarindex;
mod write;

use std::path::Path;
use std::sync::Arc;

use berth_distribution::Client;
use berth_oci::Digest;
use berth_store::Store;

pub use import::{ImportOptions, Imported};
pub use read::{ArchiveSource, ArchivedImage};
pub use tarindex::MAX_ENTRIES;

pub(crate) use read::{ArchiveProvider, normalise};
pub(crate) use write::SaveImage;

use crate::side::{Dst, Src};
use crate::{CopyOptions, Endpoint, Progress, Result, TransferError};

/// Docker's media type for an uncompressed layer (what a docker-archive holds).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The annotation that names an image in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The largest manifest, config or index read from an archive.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// The two archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save`'s: `manifest.json`, configs and uncompressed layers.
    Docker,
    /// A tar of an OCI image layout.
    Oci,
}

impl ArchiveFormat {
    /// `docker-archive` or `oci-archive`, as skopeo and podman name them.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveFormat::Docker => "docker-archive",
            ArchiveFormat::Oci => "oci-archive",
        }
    }
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`load`] recorded: one entry per image name.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub name: String,
    pub digest: Digest,
}

/// Save the images of the local store named `names` (normalised references) into the
/// archive `dest`, each under its name; returns each one's top manifest digest. Needs the
/// multi-threaded runtime (the archive is written from a blocking section).
pub async fn save(
    store: &Store,
    names: &[String],
    dest: &Path,
    format: ArchiveFormat,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Vec<Digest>> {
    let images = names
        .iter()
        .map(|n| SaveImage {
            src: Src::Store {
                store: store.clone(),
                name: n.clone(),
            },
            names: vec![n.clone()],
            label: format!("store:{n}"),
        })
        .collect::<Vec<_>>();
    write_blocking(&images, dest, format, opts, progress)
}

/// Copy `src` into the archive `dst` (`docker-archive:` or `oci-archive:`; the engine
/// behind `berth copy SRC ARCHIVE`), under the name the location gives, if any. `None`
/// when `dst` is not an archive.
pub(crate) async fn copy_to_archive(
    client: &Client,
    store: Option<&Store>,
    src: &Endpoint,
    dst: &Endpoint,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Option<Digest>> {
    let (dest, format, name) = match dst {
        Endpoint::DockerArchive { path, reference } => {
            (path, ArchiveFormat::Docker, reference.clone())
        }
        Endpoint::OciArchive { path, tag } => (path, ArchiveFormat::Oci, tag.clone()),
        _ => return Ok(None),
    };
    let image = SaveImage {
        src: Src::open(client, store, src)?,
        names: name.into_iter().collect(),
        label: src.to_string(),
    };
    let digests = write_blocking(std::slice::from_ref(&image), dest, format, opts, progress)?;
    Ok(digests.into_iter().next())
}

fn write_blocking(
    images: &[SaveImage],
    dest: &Path,
    format: ArchiveFormat,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Vec<Digest>> {
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(TransferError::NeedsMultiThread);
    }
    tokio::task::block_in_place(|| write::save(handle, images, dest, format, opts, progress))
}

/// Load every named image of the archive at `path` (format detected) into the store,
/// under each of its names (normalised). An image without a name is refused: name it
/// with `berth copy docker-archive:PATH store:NAME` (or `oci-archive:`).
pub async fn load(
    client: &Client,
    store: &Store,
    path: &Path,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    let p = path.to_owned();
    let source = Arc::new(crate::local::blocking(move || ArchiveSource::open(&p)).await?);
    if source.images().is_empty() {
        return Err(TransferError::ArchiveEmpty {
            path: path.to_owned(),
        });
    }
    // Referrers the archive holds (signatures, SBOMs) are loaded with their image.
    let mut opts = opts.clone();
    opts.referrers |= source.has_referrers();
    let opts = &opts;
    let mut loaded = Vec::new();
    for (i, image) in source.images().iter().enumerate() {
        if image.names.is_empty() {
            return Err(TransferError::ArchiveUnnamed {
                path: path.to_owned(),
                format: source.format(),
                digest: image.digest().clone(),
            });
        }
        for raw in &image.names {
            let name = store_name(path, raw)?;
            let src = Src::Archive {
                provider: ArchiveProvider {
                    source: source.clone(),
                },
                image: i,
            };
            let dst_endpoint = Endpoint::Store(name.clone());
            let dst = Dst::open(
                client,
                Some(store),
                &dst_endpoint,
                &format!("load {} as {name}", path.display()),
            )?;
            let copied = crate::copy_sides(
                &src,
                &dst,
                &format!("{}:{}", source.format(), path.display()),
                &dst_endpoint,
                opts,
                progress,
            )
            .await
            .map_err(|e| TransferError::LoadImage {
                path: path.to_owned(),
                name: name.clone(),
                entry: source.failed_entry(&e),
                source: Box::new(e),
            })?;
            loaded.push(Loaded {
                name,
                digest: copied.digest,
            });
        }
    }
    Ok(loaded)
}

/// As [`load`], for an archive read from `input` (a pipe: `podman save IMAGE | berth
/// load`): it is first copied into an unnamed temporary file beside the store, since
/// blobs are read by offset.
pub async fn load_stream(
    client: &Client,
    store: &Store,
    input: impl std::io::Read + Send + 'static,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    let root = store.root().to_owned();
    let spooled = crate::local::blocking(move || {
        let mut input = input;
        let io_err = |source| TransferError::Io {
            action: "copy the archive read from standard input into a temporary file in",
            path: root.clone(),
            source,
        };
        let mut temp = tempfile::NamedTempFile::new_in(&root).map_err(io_err)?;
        let n = std::io::copy(&mut input, temp.as_file_mut()).map_err(io_err)?;
        if n == 0 {
            return Err(TransferError::EmptyInput);
        }
        Ok(temp)
    })
    .await?;
    load(client, store, spooled.path(), opts, progress).await
}

/// The store name of an archived image's name: a full reference as it is normalised; a
/// bare OCI tag (`v1`, as `skopeo copy … oci-archive:F:v1` writes) as `localhost/v1`,
/// as podman names short names (`localhost/` first).
fn store_name(path: &Path, raw: &str) -> Result<String> {
    let name = if raw.contains('/') || raw.contains(':') || raw.contains('@') {
        raw.to_owned()
    } else {
        format!("localhost/{raw}")
    };
    normalise(&name).ok_or_else(|| TransferError::ArchiveBadName {
        path: path.to_owned(),
        name: raw.to_owned(),
    })
}

/// Import the root filesystem at `source` (tar, tar.gz or directory) as `name`.
pub async fn import(
    store: &Store,
    source: &Path,
    name: &str,
    opts: &ImportOptions,
) -> Result<Imported> {
    let name = normalise(name).ok_or_else(|| TransferError::ArchiveBadName {
        path: source.to_owned(),
        name: name.to_owned(),
    })?;
    let (store, source, opts) = (store.clone(), source.to_owned(), opts.clone());
    crate::local::blocking(move || import::import_blocking(&store, &source, &name, &opts)).await
}
