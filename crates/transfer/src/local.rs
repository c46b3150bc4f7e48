//! The roles on this machine: the local store ([`Store`] reads; [`berth_store::Ingester`],
//! which holds a lease, writes) and OCI image layouts ([`OciLayout`]). Their APIs are
//! synchronous: reads of small manifests run on blocking threads, and a writer is a
//! blocking thread that pulls the bytes through a bounded pipe ([`PipeWriter`]).

use std::io::{self, Read};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use berth_distribution::Descriptor;
use berth_oci::{Digest, descriptor_digest};
use berth_store::{LayoutError, OciLayout, Store};
use tokio::io::{AsyncReadExt, AsyncWrite, DuplexStream};
use tokio::task::JoinHandle;

use crate::content::{BoxFuture, ContentWriter, Ingester, Provider, Put, Sink};
use crate::progress::BlobProgress;
use crate::{Result, TransferError};

/// Bytes buffered between a download and the blocking writer it feeds.
const PIPE_BYTES: usize = 1 << 20;

pub(crate) fn digest_of(desc: &Descriptor) -> Result<Digest> {
    descriptor_digest(desc).map_err(|source| TransferError::InvalidDescriptor {
        what: format!("descriptor of {}", desc.digest()),
        source,
    })
}

/// Run `f` on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| TransferError::Task { source })?
}

/// Copy the local file `path` into `sink`.
async fn fetch_file(path: PathBuf, sink: &mut Sink<'_>) -> Result<()> {
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|source| TransferError::Io {
            action: "open blob",
            path: path.clone(),
            source,
        })?;
    tokio::io::copy(&mut f, sink)
        .await
        .map_err(|source| TransferError::Io {
            action: "read blob",
            path,
            source,
        })?;
    Ok(())
}

/// Blobs in files on this machine, read with a synchronous API.
trait LocalBlobs: Clone + Send + Sync + 'static {
    /// Read a small blob whole and verify it.
    fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>>;
    /// Where blob `digest` lives.
    fn path_of(&self, digest: &Digest) -> PathBuf;
}

impl LocalBlobs for Store {
    fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>> {
        Ok(self.read_blob(digest)?)
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest)
    }
}

impl LocalBlobs for OciLayout {
    fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>> {
        Ok(self.read_blob(digest)?)
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest)
    }
}

/// The local store and OCI layouts as sources.
impl<T: LocalBlobs> Provider for T {
    fn manifest<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let (blobs, digest) = (self.clone(), digest_of(desc)?);
            blocking(move || blobs.read_verified(&digest)).await
        })
    }

    fn fetch<'a>(
        &'a self,
        desc: &'a Descriptor,
        sink: &'a mut Sink<'_>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { fetch_file(self.path_of(&digest_of(desc)?), sink).await })
    }

    fn local_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.path_of(digest))
    }
}

/// The store's writer side: every digest is leased before it is checked or written.
impl Ingester for berth_store::Ingester {
    fn exists<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let digest = digest_of(desc)?;
            self.lease().add(&digest)?;
            Ok(self.store().blob_size(&digest)? == Some(desc.size()))
        })
    }

    fn writer<'a>(
        &'a self,
        key: &'a str,
        desc: &'a Descriptor,
        _progress: &'a Arc<dyn BlobProgress>,
    ) -> BoxFuture<'a, Result<Box<dyn ContentWriter>>> {
        Box::pin(async move {
            let (ingester, key, digest, size) =
                (self.clone(), key.to_owned(), digest_of(desc)?, desc.size());
            let writer = PipeWriter::spawn(digest.clone(), size, move |mut r, aborted| {
                let mut w = ingester.writer(&key, &digest, Some(size))?;
                let copied = w.write_from(&mut r);
                if aborted.load(Ordering::Acquire) {
                    // the fetch failed: what arrived is not all of it
                    w.abort()?;
                    return copied
                        .map(drop)
                        .map_err(|source| write_err(&digest, source));
                }
                copied.map_err(|source| write_err(&digest, source))?;
                w.commit()?;
                Ok(())
            });
            Ok(Box::new(writer) as Box<dyn ContentWriter>)
        })
    }
}

fn write_err(digest: &Digest, source: io::Error) -> TransferError {
    TransferError::Io {
        action: "write into the store blob",
        path: PathBuf::from(digest.as_str()),
        source,
    }
}

impl Ingester for OciLayout {
    fn exists<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(self.has_blob(&digest_of(desc)?)) })
    }

    fn writer<'a>(
        &'a self,
        _key: &'a str,
        desc: &'a Descriptor,
        _progress: &'a Arc<dyn BlobProgress>,
    ) -> BoxFuture<'a, Result<Box<dyn ContentWriter>>> {
        Box::pin(async move {
            let (layout, digest, size) = (self.clone(), digest_of(desc)?, desc.size());
            let writer = PipeWriter::spawn(digest.clone(), size, move |r, aborted| {
                match layout.write_blob(r, &digest, Some(size)) {
                    Ok(_) => Ok(()),
                    // the fetch failed and the content is short: nothing was written
                    Err(LayoutError::Verify { .. }) if aborted.load(Ordering::Acquire) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            });
            Ok(Box::new(writer) as Box<dyn ContentWriter>)
        })
    }
}

/// A [`ContentWriter`] whose bytes a blocking thread reads through a bounded pipe and
/// writes with a synchronous writer that **verifies the digest** before the blob becomes
/// visible (the store's `BlobWriter`, `OciLayout::write_blob`): the one place the content
/// is hashed.
struct PipeWriter {
    digest: Digest,
    size: u64,
    tx: Option<DuplexStream>,
    task: JoinHandle<Result<()>>,
    aborted: Arc<AtomicBool>,
}

impl PipeWriter {
    fn spawn(
        digest: Digest,
        size: u64,
        write: impl FnOnce(BlockingReader, &AtomicBool) -> Result<()> + Send + 'static,
    ) -> PipeWriter {
        let (tx, rx) = tokio::io::duplex(PIPE_BYTES);
        let reader = BlockingReader {
            handle: tokio::runtime::Handle::current(),
            inner: rx,
        };
        let aborted = Arc::new(AtomicBool::new(false));
        let flag = aborted.clone();
        let task = tokio::task::spawn_blocking(move || write(reader, &flag));
        PipeWriter {
            digest,
            size,
            tx: Some(tx),
            task,
            aborted,
        }
    }

    /// End the input and wait for the writer's verdict.
    async fn finish(mut self) -> Result<()> {
        drop(self.tx.take());
        (&mut self.task)
            .await
            .map_err(|source| TransferError::Task { source })?
    }
}

fn pipe_closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the blob writer has finished")
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.tx.as_mut() {
            Some(tx) => Pin::new(tx).poll_write(cx, buf),
            None => Poll::Ready(Err(pipe_closed())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tx.as_mut() {
            Some(tx) => Pin::new(tx).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tx.as_mut() {
            Some(tx) => Pin::new(tx).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl ContentWriter for PipeWriter {
    fn commit(self: Box<Self>, size: u64, expected: Digest) -> BoxFuture<'static, Result<Put>> {
        Box::pin(async move {
            if size != self.size || expected != self.digest {
                let err = TransferError::CommitMismatch {
                    opened: self.digest.clone(),
                    opened_size: self.size,
                    committed: expected,
                    committed_size: size,
                };
                self.abort().await?;
                return Err(err);
            }
            self.finish().await?;
            Ok(Put::Copied)
        })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            self.aborted.store(true, Ordering::Release);
            self.finish().await
        })
    }
}

/// A synchronous reader over the pipe, for the blocking thread.
pub(crate) struct BlockingReader {
    handle: tokio::runtime::Handle,
    inner: DuplexStream,
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.handle.block_on(self.inner.read(buf))
    }
}
