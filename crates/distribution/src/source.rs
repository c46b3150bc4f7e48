//! [`BlobSource`]: content to upload that can be read again from any offset.

use std::future::Future;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncSeekExt};

/// Content to upload that can be read again from any offset, so a failed chunk can be
/// resent and an interrupted upload resumed.
///
/// `open` is called once per request that carries content (one for a monolithic upload,
/// one per chunk, again after a failure); the reader it returns is read for at most the
/// bytes that request needs and then dropped.
pub trait BlobSource: Send + Sync + 'static {
    /// The reader `open` returns.
    type Reader: AsyncRead + Send + Unpin + 'static;

    /// The content from byte `offset` on.
    fn open(&self, offset: u64) -> impl Future<Output = io::Result<Self::Reader>> + Send;
}

/// A file as a [`BlobSource`].
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>) -> FileSource {
        FileSource { path: path.into() }
    }
}

impl BlobSource for FileSource {
    type Reader = tokio::fs::File;

    async fn open(&self, offset: u64) -> io::Result<tokio::fs::File> {
        let mut f = tokio::fs::File::open(&self.path).await?;
        if offset > 0 {
            f.seek(io::SeekFrom::Start(offset)).await?;
        }
        Ok(f)
    }
}

/// Bytes in memory as a [`BlobSource`] (configs, small blobs, tests).
#[derive(Debug, Clone)]
pub struct BytesSource(pub Bytes);

impl BlobSource for BytesSource {
    type Reader = io::Cursor<Bytes>;

    async fn open(&self, offset: u64) -> io::Result<io::Cursor<Bytes>> {
        let mut c = io::Cursor::new(self.0.clone());
        c.set_position(offset);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sources_reopen_at_offsets() {
        use tokio::io::AsyncReadExt;
        let s = BytesSource(Bytes::from_static(b"0123456789"));
        let mut r = s.open(4).await.unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "456789");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        berth_fsutil::atomic_write(&p, b"abcdef").unwrap();
        let mut r = FileSource::new(&p).open(2).await.unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "cdef");
    }
}
