//! Blobs as a repository sees them: content shared by the whole registry, visible in a
//! repository only through its `_layers` link (distribution's `linkedblobstore.go`).

use berth_oci::Digest;
use bytes::Bytes;

use std::pin::Pin;

use futures_util::Stream;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::{BoxReader, Driver, DriverError, Repository, Result, StorageError, missing_ok, paths};

/// The largest blob a GET reads whole to fill the read cache: no more than the buffer a
/// streamed response holds anyway, so many concurrent GETs of distinct blobs cost no more
/// memory than before. (Manifests are read whole in any case, up to the entry limit.)
pub const GET_FILL_MAX: u64 = 256 * 1024;

/// A reader over cached content from `offset`, with the content's total size.
fn from_memory(content: Bytes, offset: u64) -> (BoxReader, u64) {
    let size = content.len() as u64;
    let start = usize::try_from(offset.min(size)).unwrap_or(content.len());
    (Box::pin(std::io::Cursor::new(content.slice(start..))), size)
}

/// A blob's bytes as a response body streams them.
pub type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// What [`Blobs::open_from`] found: a reader and where from, or a stream of a file the
/// disk tier keeps.
enum Opened {
    Reader(BoxReader, u64, Source),
    Kept(BlobStream),
}

/// Where [`Blobs::open_from`] found a blob's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Memory,
    Disk,
    Storage,
}

/// The blobs of one repository.
#[derive(Debug)]
pub struct Blobs<'a, D: Driver> {
    pub(super) repo: Repository<'a, D>,
}

impl<'a, D: Driver> Blobs<'a, D> {
    fn unknown(&self, d: &Digest) -> StorageError {
        StorageError::BlobUnknown {
            repo: self.repo.name.to_owned(),
            digest: d.clone(),
        }
    }

    /// Size of the blob if it is linked into this repository and its content exists.
    pub async fn size(&self, d: &Digest) -> Result<Option<u64>> {
        let driver = self.repo.driver();
        // the link read whole: one GET on object storage whether it is there or not
        if missing_ok(
            driver
                .get_content(&paths::layer_link(self.repo.name, d))
                .await,
        )?
        .is_none()
        {
            return Ok(None);
        }
        self.repo.reg.blob_size(d).await
    }

    /// Read the blob's content from `offset` (the caller checked it is linked). Content in
    /// the read cache is served from memory; a small blob (up to [`GET_FILL_MAX`] and the
    /// cache's entry limit) read from the start is read whole, kept, and served from there.
    /// With a disk tier (object storage), a larger blob kept there is read from its file.
    pub async fn open(&self, d: &Digest, offset: u64) -> Result<(BoxReader, u64)> {
        match self.open_from(d, offset, None).await? {
            Opened::Reader(reader, size, _) => Ok((reader, size)),
            Opened::Kept(..) => Err(StorageError::Corrupt {
                what: format!("read of blob {d}"),
                source: "the disk tier answered a reader's request with a stream".into(),
            }),
        }
    }

    /// [`Blobs::open`] as a stream of `len` bytes in chunks of at most `chunk` (a GET's
    /// body). With a disk tier, a whole blob read from storage is copied to the tier as the
    /// stream is read: its chunks are shared with the writer, not copied.
    pub async fn stream(
        &self,
        d: &Digest,
        offset: u64,
        len: u64,
        chunk: usize,
    ) -> Result<BlobStream> {
        let (reader, size, from) = match self.open_from(d, offset, Some(len)).await? {
            Opened::Kept(stream) => return Ok(stream),
            Opened::Reader(reader, size, from) => (reader, size, from),
        };
        let stream: BlobStream = Box::pin(ReaderStream::with_capacity(reader.take(len), chunk));
        match &self.repo.reg.disk {
            Some(disk) if from == Source::Storage && offset == 0 && len == size => {
                Ok(disk.fill(d, size, stream))
            }
            _ => Ok(stream),
        }
    }

    /// The blob's bytes from `offset`: from memory, the disk tier (as a stream of `len`
    /// bytes when `stream_len` asks for one) or storage.
    async fn open_from(&self, d: &Digest, offset: u64, stream_len: Option<u64>) -> Result<Opened> {
        let reg = self.repo.reg;
        let cache = &reg.cache;
        if let Some(content) = cache.content(d) {
            let (r, size) = from_memory(content, offset);
            return Ok(Opened::Reader(r, size, Source::Memory));
        }
        if let Some(disk) = &reg.disk {
            match stream_len {
                Some(len) => {
                    if let Some(stream) = disk.stream_blob(d, offset, len).await {
                        return Ok(Opened::Kept(stream));
                    }
                }
                None => {
                    if let Some((r, size)) = disk.open_blob(d, offset).await {
                        return Ok(Opened::Reader(r, size, Source::Disk));
                    }
                }
            }
        }
        let path = paths::blob_data(d);
        let (mut reader, size) = match self.repo.driver().reader(&path, offset).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                reg.forget(d);
                return Err(self.unknown(d));
            }
            Err(e) => return Err(e.into()),
        };
        if offset != 0 || size > GET_FILL_MAX || !cache.keeps_content_of(size) {
            return Ok(Opened::Reader(reader, size, Source::Storage));
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut reader)
            .take(size)
            .read_to_end(&mut buf)
            .await
            .map_err(|source| DriverError::Io {
                path: path.clone(),
                source,
            })?;
        if buf.len() as u64 != size {
            return Err(StorageError::Corrupt {
                what: format!("content of blob {d}"),
                source: format!("storage said {size} bytes, {} were read", buf.len()).into(),
            });
        }
        let content = Bytes::from(buf);
        cache.insert_content(d, content.clone());
        let (r, size) = from_memory(content, 0);
        Ok(Opened::Reader(r, size, Source::Memory))
    }

    /// Where the client may download the blob directly (the caller checked it is linked),
    /// when the driver hands out such URLs.
    pub async fn redirect(&self, d: &Digest) -> Result<Option<String>> {
        Ok(self
            .repo
            .driver()
            .redirect_url(&paths::blob_data(d))
            .await?)
    }

    /// Make `d` visible in this repository.
    pub(super) async fn link(&self, d: &Digest) -> Result<()> {
        self.repo
            .driver()
            .put_content(
                &paths::layer_link(self.repo.name, d),
                Bytes::from(d.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Remove this repository's link; the content is shared and collected by `gc`.
    pub async fn unlink(&self, d: &Digest) -> Result<()> {
        match self
            .repo
            .driver()
            .delete(&paths::layer_link(self.repo.name, d))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Err(self.unknown(d)),
            Err(e) => Err(e.into()),
        }
    }

    /// Mount `d` from repository `from` (already authorised and validated by the caller):
    /// `Ok(false)` when it is not linked there (the spec's fallback is a new upload).
    pub async fn mount(&self, from: &str, d: &Digest) -> Result<bool> {
        if self
            .repo
            .reg
            .repository(from)
            .blobs()
            .size(d)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        if !self.repo.reg.mark_referenced(d).await? {
            return Err(self.unknown(d));
        }
        self.link(d).await?;
        Ok(true)
    }
}
