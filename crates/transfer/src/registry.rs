//! The roles over a registry repository ([`RegistryContent`]): the client's blob and
//! manifest calls, and the upload paths that suit each source — a mount from another
//! repository of the same registry, a local file pushed as it is, or a download spooled to
//! a temporary file (which a chunked or retried upload can re-read from any offset).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_distribution::{Client, Descriptor, FileSource, Repository};
use berth_oci::{Digest, Digester};
use tokio::io::AsyncWrite;

use crate::content::{BoxFuture, ContentWriter, Ingester, Provider, Put, Sink};
use crate::local::digest_of;
use crate::progress::{BlobProgress, CountingSource};
use crate::{Result, TransferError};

/// A repository of a registry, through `client`.
#[derive(Debug, Clone)]
pub struct RegistryContent {
    client: Client,
    repo: Repository,
}

impl RegistryContent {
    pub fn new(client: Client, repo: Repository) -> RegistryContent {
        RegistryContent { client, repo }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }
}

impl Provider for RegistryContent {
    fn manifest<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let digest = digest_of(desc)?;
            let media_type = desc.media_type().to_string();
            let m = self
                .client
                .get_manifest(&self.repo, digest.as_str(), &[&media_type])
                .await?;
            Ok(m.bytes.to_vec())
        })
    }

    fn fetch<'a>(
        &'a self,
        desc: &'a Descriptor,
        mut sink: &'a mut Sink<'_>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let digest = digest_of(desc)?;
            self.client
                .get_blob_sink_verifies(&self.repo, &digest, Some(desc.size()), &mut sink)
                .await?;
            Ok(())
        })
    }

    fn repository(&self) -> Option<&Repository> {
        Some(&self.repo)
    }
}

impl Ingester for RegistryContent {
    fn exists<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let digest = digest_of(desc)?;
            Ok(self.client.head_blob(&self.repo, &digest).await?.is_some())
        })
    }

    fn mount<'a>(
        &'a self,
        desc: &'a Descriptor,
        from: &'a Repository,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if from.registry() != self.repo.registry() {
                return Ok(false);
            }
            let digest = digest_of(desc)?;
            Ok(self
                .client
                .mount_blob(&self.repo, &digest, from.name())
                .await?)
        })
    }

    fn put_file<'a>(
        &'a self,
        desc: &'a Descriptor,
        path: &'a Path,
        progress: &'a Arc<dyn BlobProgress>,
    ) -> Option<BoxFuture<'a, Result<Put>>> {
        Some(Box::pin(async move {
            let digest = digest_of(desc)?;
            let source = CountingSource {
                inner: FileSource::new(path),
                progress: progress.clone(),
            };
            let pushed = self
                .client
                .push_blob(&self.repo, &digest, desc.size(), source)
                .await?;
            Ok(Put::from(pushed))
        }))
    }

    fn writer<'a>(
        &'a self,
        _key: &'a str,
        desc: &'a Descriptor,
        progress: &'a Arc<dyn BlobProgress>,
    ) -> BoxFuture<'a, Result<Box<dyn ContentWriter>>> {
        Box::pin(async move {
            let digest = digest_of(desc)?;
            let tmp = tempfile::NamedTempFile::new().map_err(|source| TransferError::Io {
                action: "create a temporary file in",
                path: std::env::temp_dir(),
                source,
            })?;
            let file = tmp.reopen().map_err(|source| TransferError::Io {
                action: "open the temporary file",
                path: tmp.path().to_owned(),
                source,
            })?;
            Ok(Box::new(Spool {
                target: self.clone(),
                progress: progress.clone(),
                file: tokio::fs::File::from_std(file),
                digester: Digester::new(digest.algorithm()),
                tmp,
            }) as Box<dyn ContentWriter>)
        })
    }
}

/// A download on its way to another registry: spooled to a temporary file, hashed as it
/// arrives (the download itself is not), and pushed from the file at commit.
struct Spool {
    target: RegistryContent,
    progress: Arc<dyn BlobProgress>,
    file: tokio::fs::File,
    digester: Digester,
    tmp: tempfile::NamedTempFile,
}

impl AsyncWrite for Spool {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.file).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.digester.update(buf.get(..*n).unwrap_or_default());
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl ContentWriter for Spool {
    fn commit(self: Box<Self>, size: u64, expected: Digest) -> BoxFuture<'static, Result<Put>> {
        Box::pin(async move {
            let Spool {
                target,
                progress,
                mut file,
                digester,
                tmp,
            } = *self;
            let flushed = async {
                tokio::io::AsyncWriteExt::flush(&mut file).await?;
                file.sync_all().await
            };
            flushed.await.map_err(|source| TransferError::Io {
                action: "flush the temporary file",
                path: tmp.path().to_owned(),
                source,
            })?;
            let verdict = digester.verify(&expected, Some(size));
            if let Err(source) = verdict {
                return Err(TransferError::Verify {
                    digest: expected,
                    source,
                });
            }
            // the download filled the bar once; the upload fills it again
            let source = CountingSource {
                inner: FileSource::new(tmp.path()),
                progress,
            };
            let pushed = target
                .client
                .push_blob(&target.repo, &expected, size, source)
                .await?;
            drop(tmp);
            Ok(Put::from(pushed))
        })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        // the temporary file is removed on drop
        Box::pin(async move {
            drop(self);
            Ok(())
        })
    }
}
