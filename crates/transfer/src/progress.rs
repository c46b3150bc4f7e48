//! What a copy reports while it runs. The library never prints: the caller renders these
//! events (the `berth` binary as bars or lines on stderr).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_distribution::BlobSource;
use berth_oci::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Put;

/// The events of one copy. Called from the copy's tasks, concurrently for different blobs.
pub trait Progress: Send + Sync {
    /// A manifest is about to be written.
    fn manifest(&self, digest: &Digest);
    /// Blob `digest` needs no transfer: the destination has it (readable there).
    fn exists(&self, digest: &Digest);
    /// The transfer of blob `digest` of `size` bytes starts; the returned handle receives
    /// its byte counts and its end.
    fn blob(&self, digest: &Digest, size: u64) -> Arc<dyn BlobProgress>;
    /// The blobs of image manifest `digest` (`bytes`) are about to be copied; the manifest
    /// itself is written after them. What lets a caller start on the image (unpack its
    /// layers as each blob arrives, see [`BlobProgress::done`]) before the copy ends.
    fn image(&self, digest: &Digest, bytes: &[u8]) {
        let _ = (digest, bytes);
    }
}

/// The transfer of one blob.
pub trait BlobProgress: Send + Sync {
    /// `n` more bytes arrived (or were sent).
    fn inc(&self, n: u64);
    /// The transfer (re)starts from byte `offset` (a retry, a resumed upload, or the upload
    /// after a download was spooled).
    fn restart_at(&self, offset: u64);
    /// The blob is at the destination, complete and verified (readable there from now on);
    /// `how` says how.
    fn done(&self, how: Put);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn manifest(&self, _: &Digest) {}
    fn exists(&self, _: &Digest) {}
    fn blob(&self, _: &Digest, _: u64) -> Arc<dyn BlobProgress> {
        Arc::new(NoProgress)
    }
}

impl BlobProgress for NoProgress {
    fn inc(&self, _: u64) {}
    fn restart_at(&self, _: u64) {}
    fn done(&self, _: Put) {}
}

/// An [`AsyncWrite`] that counts what passes through into a [`BlobProgress`].
pub(crate) struct CountingWriter<W> {
    pub(crate) inner: W,
    pub(crate) progress: Arc<dyn BlobProgress>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.progress.inc(*n as u64);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A [`BlobSource`] whose reads are counted into a [`BlobProgress`]: an upload's progress.
pub(crate) struct CountingSource<S> {
    pub(crate) inner: S,
    pub(crate) progress: Arc<dyn BlobProgress>,
}

impl<S: BlobSource> BlobSource for CountingSource<S> {
    type Reader = CountingReader<S::Reader>;

    async fn open(&self, offset: u64) -> std::io::Result<Self::Reader> {
        let inner = self.inner.open(offset).await?;
        self.progress.restart_at(offset);
        Ok(CountingReader {
            inner,
            progress: self.progress.clone(),
        })
    }
}

/// An [`AsyncRead`] that counts what is read into a [`BlobProgress`].
pub(crate) struct CountingReader<R> {
    inner: R,
    progress: Arc<dyn BlobProgress>,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            self.progress.inc((buf.filled().len() - before) as u64);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records the position a bar would show.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl BlobProgress for Recorder {
        fn inc(&self, n: u64) {
            self.0.lock().unwrap().push(format!("inc {n}"));
        }
        fn restart_at(&self, offset: u64) {
            self.0.lock().unwrap().push(format!("restart {offset}"));
        }
        fn done(&self, how: Put) {
            self.0
                .lock()
                .unwrap()
                .push(format!("done {}", how.as_str()));
        }
    }

    #[tokio::test]
    async fn counting_source_restarts_at_the_offset_and_counts_reads() {
        use tokio::io::AsyncReadExt;
        let recorder = Arc::new(Recorder::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        berth_fsutil::atomic_write(&path, b"0123456789").unwrap();
        let src = CountingSource {
            inner: berth_distribution::FileSource::new(&path),
            progress: recorder.clone(),
        };
        let mut r = src.open(4).await.unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"456789");
        let events = recorder.0.lock().unwrap().clone();
        assert_eq!(events.first().map(String::as_str), Some("restart 4"));
        let counted: u64 = events
            .iter()
            .filter_map(|e| e.strip_prefix("inc ")?.parse::<u64>().ok())
            .sum();
        assert_eq!(counted, 6);
    }
}
