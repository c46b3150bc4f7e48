//! Blobs as a repository sees them: content shared by the whole registry, visible in a
//! repository only through its `_layers` link (distribution's `linkedblobstore.go`).

use berth_oci::Digest;
use bytes::Bytes;

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio_util::io::{ReaderStream, StreamReader};

use super::{
    BoxReader, ByteStream, Driver, DriverError, Repository, Result, StorageError, missing_ok, paths,
};

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
pub type BlobStream = ByteStream;

/// What [`Blobs::open_from`] found: a reader, or storage's stream, and where from; or a
/// stream of a file the disk tier keeps.
enum Opened {
    Reader(BoxReader, u64, Source),
    Stream(BlobStream, u64),
    Kept(BlobStream),
}

/// The first `len` bytes of `s`.
fn take_bytes(s: BlobStream, len: u64) -> BlobStream {
    Box::pin(futures_util::stream::unfold(
        (s, len),
        |(mut s, left)| async move {
            if left == 0 {
                return None;
            }
            match s.next().await? {
                Ok(mut b) => {
                    if b.len() as u64 > left {
                        b.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                    }
                    let n = b.len() as u64;
                    Some((Ok(b), (s, left - n)))
                }
                Err(e) => Some((Err(e), (s, 0))),
            }
        },
    ))
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
            Opened::Stream(s, size) => Ok((Box::pin(StreamReader::new(s)), size)),
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
        let (stream, size, from) = match self.open_from(d, offset, Some((len, chunk))).await? {
            Opened::Kept(stream) => return Ok(stream),
            Opened::Stream(stream, size) => (take_bytes(stream, len), size, Source::Storage),
            Opened::Reader(reader, size, from) => {
                let s: BlobStream = Box::pin(ReaderStream::with_capacity(reader.take(len), chunk));
                (s, size, from)
            }
        };
        match &self.repo.reg.disk {
            Some(disk) if from == Source::Storage && offset == 0 && len == size => {
                Ok(disk.fill(d, size, stream))
            }
            _ => Ok(stream),
        }
    }

    /// The blob's bytes from `offset`: from memory, the disk tier (as a stream of `len`
    /// bytes when `stream_len` asks for one) or storage.
    async fn open_from(
        &self,
        d: &Digest,
        offset: u64,
        stream: Option<(u64, usize)>,
    ) -> Result<Opened> {
        let reg = self.repo.reg;
        let cache = &reg.cache;
        if let Some(content) = cache.content(d) {
            let (r, size) = from_memory(content, offset);
            return Ok(Opened::Reader(r, size, Source::Memory));
        }
        if let Some(disk) = &reg.disk {
            match stream {
                Some((len, _)) => {
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
        // a body streams storage's own chunks (no copy where the driver has them); a
        // reader's caller gets a reader
        let opened = match stream {
            Some((_, chunk)) => self
                .repo
                .driver()
                .stream(&path, offset, chunk)
                .await
                .map(|(s, size)| (Opened::Stream(s, size), size)),
            None => self
                .repo
                .driver()
                .reader(&path, offset)
                .await
                .map(|(r, size)| (Opened::Reader(r, size, Source::Storage), size)),
        };
        let (opened, size) = match opened {
            Ok(o) => o,
            Err(e) if e.is_not_found() => {
                reg.forget(d);
                return Err(self.unknown(d));
            }
            Err(e) => return Err(e.into()),
        };
        if offset != 0 || size > GET_FILL_MAX || !cache.keeps_content_of(size) {
            return Ok(opened);
        }
        let mut reader: BoxReader = match opened {
            Opened::Reader(r, ..) => r,
            Opened::Stream(s, _) => Box::pin(StreamReader::new(s)),
            Opened::Kept(s) => return Ok(Opened::Kept(s)),
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> BlobStream {
        let items: Vec<std::io::Result<Bytes>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Ok(Bytes::from(vec![i as u8; n])))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn lens(s: BlobStream) -> Vec<usize> {
        s.map(|b| b.map(|b| b.len()).unwrap_or(usize::MAX))
            .collect()
            .await
    }

    #[tokio::test]
    async fn take_bytes_cuts_the_chunk_it_ends_in_and_stops_there() {
        assert_eq!(lens(take_bytes(chunks(&[3, 4, 5]), 5)).await, [3, 2]);
        assert_eq!(lens(take_bytes(chunks(&[3, 4, 5]), 7)).await, [3, 4]);
        assert_eq!(lens(take_bytes(chunks(&[3, 4, 5]), 100)).await, [3, 4, 5]);
        assert!(lens(take_bytes(chunks(&[3]), 0)).await.is_empty());
        let failing: BlobStream = Box::pin(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("gone")),
            Ok(Bytes::from_static(b"cd")),
        ]));
        assert_eq!(lens(take_bytes(failing, 10)).await, [2, usize::MAX]);
    }
}
