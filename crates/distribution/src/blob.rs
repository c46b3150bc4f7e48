//! Blobs: `HEAD`, streaming verified download with `Range` resume, upload (monolithic or
//! chunked, resumable), and cross-repository mount (distribution-spec "Pulling blobs",
//! "Pushing blobs", "Pushing a blob in chunks", "Mounting a blob from another repository").

use std::sync::Arc;

use berth_oci::{Digest, Digester};
use futures_util::FutureExt;
use http::Method;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::auth::Scopes;
use crate::body::{Body, Exact, next_chunk, stream_body};
use crate::client::{Client, Repository};
use crate::error::Error;
use crate::source::BlobSource;
use crate::transport::{Endpoint, Op, Outgoing, Reply};
use crate::url::{resolve, with_query};

/// What [`Client::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry already had the blob in the repository.
    AlreadyPresent,
    /// The blob was uploaded.
    Uploaded,
}

/// Why an upload attempt stopped.
enum UploadFailure {
    /// The registry forgot the session (`404`): start a new one.
    SessionLost,
    Failed(Error),
}

impl From<Error> for UploadFailure {
    fn from(e: Error) -> UploadFailure {
        UploadFailure::Failed(e)
    }
}

/// `end` of a `Range: 0-<end>` (or `bytes=0-<end>`) upload-progress header: the bytes
/// received are `end + 1` (`0-0` is read as none, as distribution sends for empty uploads).
fn received(range: &str) -> Option<u64> {
    let r = range.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (start, end) = r.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let end: u64 = end.trim().parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// `(start, total)` of a `Content-Range: bytes <start>-<end>/<total|*>` response header.
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

/// A body of `len` bytes of `source` from `offset`.
fn source_body<S: BlobSource>(source: &Arc<S>, offset: u64, len: u64) -> Body {
    if len == 0 {
        return Body::Empty;
    }
    let source = source.clone();
    Body::Reopen {
        len,
        open: Arc::new(move || {
            let source = source.clone();
            async move {
                let r = source.open(offset).await?;
                Ok(stream_body(Exact::new(r, len)))
            }
            .boxed()
        }),
    }
}

impl Client {
    /// The size of a blob in `repo`, or `None` when the registry does not have it there.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), digest = %digest))]
    pub async fn head_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        let op = Op {
            name: "check blob",
            target: repo.target(Some(digest)),
        };
        let out = Outgoing::new(
            Method::HEAD,
            Endpoint::Path(repo.path(&format!("blobs/{digest}"))),
        );
        let Some(reply) = self.pull_if_found(&op, repo, out).await? else {
            return Ok(None);
        };
        Ok(Some(
            reply
                .header(CONTENT_LENGTH)
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Download a blob into `sink`, verifying its digest (and `size`, when given) as it
    /// streams; never holds the blob in memory. A connection broken mid-body is resumed
    /// with `Range` (bounded by the retry policy). Returns the number of bytes written. On
    /// any error, what was written to `sink` must be discarded.
    pub async fn get_blob<W: AsyncWrite + Unpin + Send>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
        sink: &mut W,
    ) -> Result<u64, Error> {
        self.get_blob_resume(repo, digest, size, Digester::new(digest.algorithm()), sink)
            .await
    }

    /// [`Client::get_blob`] for a sink that verifies the digest itself before anything it
    /// writes becomes visible (berth's OCI layout and store writers hash every byte they are
    /// given and refuse to commit on a mismatch): the bytes are not hashed a second time
    /// here, which on a large pull is a third of the client's CPU. The size, resumption and
    /// transport handling are [`Client::get_blob`]'s; **a digest mismatch is not detected
    /// here**, so a sink that does not verify must use [`Client::get_blob`].
    pub async fn get_blob_sink_verifies<W: AsyncWrite + Unpin + Send>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
        sink: &mut W,
    ) -> Result<u64, Error> {
        self.fetch_blob(repo, digest, size, None, sink).await
    }

    /// [`Client::get_blob`] continuing a partial download: `prefix` has hashed the bytes
    /// already in `sink` (their count is where the download resumes).
    pub async fn get_blob_resume<W: AsyncWrite + Unpin + Send>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
        prefix: Digester,
        sink: &mut W,
    ) -> Result<u64, Error> {
        if prefix.algorithm() != digest.algorithm() {
            return Err(Error::InvalidInput {
                what: "resume hasher",
                value: prefix.algorithm().to_string(),
                reason: format!("{digest} needs {}", digest.algorithm()),
            });
        }
        self.fetch_blob(repo, digest, size, Some(prefix), sink)
            .await
    }

    /// The download behind the `get_blob` variants; verifies the digest when given a hasher.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), digest = %digest))]
    async fn fetch_blob<W: AsyncWrite + Unpin + Send>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: Option<u64>,
        mut hasher: Option<Digester>,
        sink: &mut W,
    ) -> Result<u64, Error> {
        let target = repo.target(Some(digest));
        let _permit = self.permit().await;
        let op = Op {
            name: "get blob",
            target: target.clone(),
        };
        let mut offset = hasher.as_ref().map_or(0, Digester::bytes_hashed);
        let mut resumes = 0u32;
        let size_error = |actual| Error::SizeMismatch {
            target: target.clone(),
            expected: size.unwrap_or(0),
            actual,
        };
        loop {
            if size.is_some_and(|s| offset > s) {
                return Err(size_error(offset));
            }
            let mut out = Outgoing::new(
                Method::GET,
                Endpoint::Path(repo.path(&format!("blobs/{digest}"))),
            );
            if offset > 0 {
                out = out.header(RANGE, &format!("bytes={offset}-"));
            }
            let reply = self
                .call(&op, repo.registry(), Scopes::pull(repo.name()), out)
                .await?;
            let mut skip = 0u64;
            match reply.status() {
                200 => skip = offset,
                206 if offset > 0 => {
                    let range = reply.header(CONTENT_RANGE).and_then(content_range);
                    let ok = range.is_some_and(|(start, total)| {
                        start == offset && size.is_none_or(|s| total.is_none_or(|t| t == s))
                    });
                    if !ok {
                        return Err(Error::InvalidResponse {
                            operation: op.name,
                            target,
                            reason: format!(
                                "Content-Range {:?} does not continue at byte {offset}",
                                reply.header(CONTENT_RANGE).unwrap_or("")
                            ),
                        });
                    }
                }
                416 if offset > 0 && size == Some(offset) => {
                    drop(reply);
                    break;
                }
                _ => return Err(self.error(&op, repo.registry(), reply).await),
            }
            let mut body = reply.resp.into_body();
            let broken = loop {
                match next_chunk(&mut body, self.idle()).await {
                    Ok(Some(mut chunk)) => {
                        if skip > 0 {
                            let n = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
                            let _ = chunk.split_to(n);
                            skip -= n as u64;
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        let next = offset + chunk.len() as u64;
                        if size.is_some_and(|s| next > s) {
                            return Err(size_error(next));
                        }
                        if let Some(hasher) = hasher.as_mut() {
                            hasher.update(&chunk);
                        }
                        sink.write_all(&chunk).await.map_err(|source| Error::Sink {
                            target: target.clone(),
                            source,
                        })?;
                        offset = next;
                    }
                    Ok(None) if size.is_some_and(|s| offset < s) => {
                        break Some("the body ended early".into());
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            let Some(cause) = broken else { break };
            resumes += 1;
            if resumes >= self.opts().retry.max_attempts {
                return Err(Error::Transport {
                    operation: op.name,
                    target,
                    source: cause,
                });
            }
            let wait = self.opts().retry.backoff(resumes);
            tracing::warn!(%digest, offset, resumes, ?wait, error = %cause, "blob download interrupted; resuming");
            tokio::time::sleep(wait).await;
        }
        sink.flush().await.map_err(|source| Error::Sink {
            target: target.clone(),
            source,
        })?;
        if let Some(s) = size.filter(|s| *s != offset) {
            return Err(Error::SizeMismatch {
                target,
                expected: s,
                actual: offset,
            });
        }
        if let Some(actual) = hasher.map(Digester::finalize)
            && &actual != digest
        {
            return Err(Error::DigestMismatch { target, actual });
        }
        Ok(offset)
    }

    /// Upload a blob of `size` bytes unless `repo` already has it (`HEAD` first). Blobs up
    /// to `monolithic_max` go in one `PUT`; larger ones in `chunk_size` `PATCH`es with
    /// `Content-Range`, resuming from the registry's `Range` after a `416` or a lost
    /// response, then a closing `PUT ?digest=`. The registry verifies the digest.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), digest = %digest, size))]
    pub async fn push_blob<S: BlobSource>(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: S,
    ) -> Result<BlobPush, Error> {
        let _permit = self.permit().await;
        if self.head_blob(repo, digest).await?.is_some() {
            return Ok(BlobPush::AlreadyPresent);
        }
        let source = Arc::new(source);
        let op = Op {
            name: "push blob",
            target: repo.target(Some(digest)),
        };
        let mut restarts = 0;
        loop {
            let location = self.start_upload(&op, repo).await?;
            match self
                .upload(&op, repo, digest, size, &source, location)
                .await
            {
                Ok(()) => return Ok(BlobPush::Uploaded),
                Err(UploadFailure::SessionLost) if restarts < 1 => {
                    tracing::debug!("upload session lost; starting again");
                    restarts += 1;
                }
                Err(UploadFailure::SessionLost) => {
                    return Err(Error::InvalidResponse {
                        operation: op.name,
                        target: op.target,
                        reason: "the registry lost the upload session twice".into(),
                    });
                }
                Err(UploadFailure::Failed(e)) => return Err(e),
            }
        }
    }

    /// `POST /v2/<name>/blobs/uploads/` → the session's absolute URL.
    async fn start_upload(&self, op: &Op, repo: &Repository) -> Result<String, Error> {
        let out = Outgoing::new(Method::POST, Endpoint::Path(repo.path("blobs/uploads/")))
            .header(CONTENT_LENGTH, "0");
        let reply = self
            .expect(op, repo.registry(), Scopes::push(repo.name()), out, &[202])
            .await?;
        location(op, &reply)
    }

    async fn upload<S: BlobSource>(
        &self,
        op: &Op,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: &Arc<S>,
        mut location: String,
    ) -> Result<(), UploadFailure> {
        let scopes = || Scopes::push(repo.name());
        let mut offset = 0u64;
        if size > self.opts().monolithic_max {
            let chunk = self.opts().chunk_size.max(1);
            let mut stalls = 0u32;
            while offset < size {
                let len = chunk.min(size - offset);
                let out = Outgoing::new(Method::PATCH, Endpoint::Url(location.clone()))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, &format!("{offset}-{}", offset + len - 1))
                    .header(CONTENT_LENGTH, &len.to_string())
                    .body(source_body(source, offset, len));
                let reply = self.call(op, repo.registry(), scopes(), out).await?;
                match reply.status() {
                    202 => {
                        let got = reply
                            .header(RANGE)
                            .and_then(received)
                            .unwrap_or(offset + len);
                        location = location_or(op, &reply, location)?;
                        if got <= offset {
                            stalls += 1;
                        }
                        offset = got.min(size);
                    }
                    416 => {
                        stalls += 1;
                        drop(reply);
                        (offset, location) = self.upload_status(op, repo, location).await?;
                        tracing::debug!(
                            offset,
                            "chunk refused (416); resuming where the registry is"
                        );
                    }
                    404 => return Err(UploadFailure::SessionLost),
                    _ => return Err(self.error(op, repo.registry(), reply).await.into()),
                }
                if stalls >= self.opts().retry.max_attempts {
                    return Err(Error::InvalidResponse {
                        operation: op.name,
                        target: op.target.clone(),
                        reason: format!("the upload makes no progress at byte {offset}"),
                    }
                    .into());
                }
            }
        }
        let body = if offset < size {
            source_body(source, offset, size - offset)
        } else {
            Body::Empty
        };
        let out = Outgoing::new(
            Method::PUT,
            Endpoint::Url(with_query(&location, "digest", digest.as_str())),
        )
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, &(size - offset).to_string())
        .body(body);
        let reply = self.call(op, repo.registry(), scopes(), out).await?;
        match reply.status() {
            201 | 204 => {}
            // The commit may have succeeded with its answer lost; a retried PUT then finds
            // no session. The blob being there settles it.
            404 => {
                drop(reply);
                if self.head_blob(repo, digest).await?.is_some() {
                    return Ok(());
                }
                return Err(UploadFailure::SessionLost);
            }
            _ => return Err(self.error(op, repo.registry(), reply).await.into()),
        }
        if let Some(d) = reply
            .header(crate::DOCKER_CONTENT_DIGEST)
            .and_then(|d| Digest::parse(d).ok())
            && d.algorithm() == digest.algorithm()
            && &d != digest
        {
            return Err(Error::InvalidResponse {
                operation: op.name,
                target: op.target.clone(),
                reason: format!("the registry stored the blob as {d}"),
            }
            .into());
        }
        Ok(())
    }

    /// `GET` an upload session: how many bytes the registry has, and the session URL.
    async fn upload_status(
        &self,
        op: &Op,
        repo: &Repository,
        location: String,
    ) -> Result<(u64, String), UploadFailure> {
        let out = Outgoing::new(Method::GET, Endpoint::Url(location.clone()));
        let reply = self
            .call(op, repo.registry(), Scopes::push(repo.name()), out)
            .await?;
        match reply.status() {
            204 | 200 => {
                let got = reply.header(RANGE).and_then(received).unwrap_or(0);
                let location = location_or(op, &reply, location)?;
                Ok((got, location))
            }
            404 => Err(UploadFailure::SessionLost),
            _ => Err(self.error(op, repo.registry(), reply).await.into()),
        }
    }

    /// Mount `digest` from `from` into `repo` without uploading it. `true` when mounted
    /// (`201`); `false` when the registry declined (`202`): the session it opened instead is
    /// cancelled, and the caller pushes the blob.
    #[tracing::instrument(level = "debug", skip_all, fields(registry = %repo.registry(), repository = %repo.name(), digest = %digest, from = %from))]
    pub async fn mount_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, Error> {
        let from_repo = Repository::new(repo.registry(), from)?;
        let op = Op {
            name: "mount blob",
            target: repo.target(Some(digest)),
        };
        let path = with_query(
            &with_query(&repo.path("blobs/uploads/"), "mount", digest.as_str()),
            "from",
            from_repo.name(),
        );
        let scopes =
            Scopes::push(repo.name()).with(format!("repository:{}:pull", from_repo.name()));
        let out = Outgoing::new(Method::POST, Endpoint::Path(path)).header(CONTENT_LENGTH, "0");
        let reply = self
            .expect(&op, repo.registry(), scopes, out, &[201, 202])
            .await?;
        if reply.status() == 201 {
            return Ok(true);
        }
        if let Ok(session) = location(&op, &reply) {
            drop(reply);
            let cancel = Outgoing::new(Method::DELETE, Endpoint::Url(session));
            // Best effort: an abandoned session expires on the registry anyway.
            if let Err(e) = self
                .call(&op, repo.registry(), Scopes::push(repo.name()), cancel)
                .await
            {
                tracing::debug!(error = %e, "failed to cancel the upload session a declined mount opened");
            }
        }
        Ok(false)
    }
}

/// The absolute URL of a reply's `Location`.
fn location(op: &Op, reply: &Reply) -> Result<String, Error> {
    reply
        .header(LOCATION)
        .and_then(|l| resolve(&reply.url, l))
        .ok_or_else(|| Error::InvalidResponse {
            operation: op.name,
            target: op.target.clone(),
            reason: format!("{} without a usable Location header", reply.status()),
        })
}

/// The reply's `Location`, else the URL the session had.
fn location_or(op: &Op, reply: &Reply, current: String) -> Result<String, Error> {
    if reply.header(LOCATION).is_none() {
        return Ok(current);
    }
    location(op, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_ranges() {
        assert_eq!(received("0-1023"), Some(1024));
        assert_eq!(received("bytes=0-9"), Some(10));
        assert_eq!(received("0-0"), Some(0));
        assert_eq!(received("5-9"), None);
        assert_eq!(received("x"), None);
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 100-199/*"), Some((100, None)));
        assert_eq!(content_range("bytes 200-100/300"), None);
        assert_eq!(content_range("100-199/200"), None);
    }
}
