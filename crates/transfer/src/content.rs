//! The content roles a copy goes through, in containerd's manner (`core/content/content.go`):
//! a [`Provider`] reads content by descriptor, an [`Ingester`] writes it through a
//! [`ContentWriter`] that verifies and commits. The local store, OCI image layouts and
//! registries each implement both (`local.rs`, `registry.rs`).
//!
//! Lifecycle of a blob copy: [`Ingester::exists`] (the store leases the digest first, so a
//! prune cannot take it after the check) → if missing, [`Ingester::mount`] from a source
//! repository of the same registry, or [`Ingester::put_file`] from a source file on this
//! machine, or [`Ingester::writer`] ← [`Provider::fetch`] → [`ContentWriter::commit`],
//! which checks size and digest before the content becomes visible (or
//! [`ContentWriter::abort`] when the fetch failed).
//!
//! Two departures from containerd, both for `berth pull` speed: `fetch` pushes into the
//! writer instead of returning a reader (a download streams straight into the writer, with
//! no second pipe), and the download is not hashed on the way: the writer is the one place
//! that hashes, once. The store's writer needs a lease: it is made from a
//! [`berth_store::Ingester`], which only [`berth_store::Store::ingester`] gives, for a lease.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use berth_distribution::{Descriptor, Repository};
use berth_oci::Digest;
use tokio::io::AsyncWrite;

use crate::Result;
use crate::progress::BlobProgress;

/// A boxed, sendable future: the roles are used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A sink a [`Provider`] streams into.
pub type Sink<'a> = dyn AsyncWrite + Unpin + Send + 'a;

/// Reads content by descriptor.
pub trait Provider: Send + Sync {
    /// The manifest or index `desc` names, whole and verified against its digest.
    fn manifest<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<Vec<u8>>>;

    /// Stream the blob `desc` names into `sink`, which **must verify** it (every
    /// [`ContentWriter`] does at commit): the bytes are not hashed here.
    fn fetch<'a>(
        &'a self,
        desc: &'a Descriptor,
        sink: &'a mut Sink<'_>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Where blob `digest` is as a file on this machine, for sources that have one: a
    /// registry upload re-reads it from any offset instead of spooling a copy.
    fn local_path(&self, _digest: &Digest) -> Option<PathBuf> {
        None
    }

    /// The registry repository the content comes from, for cross-repository mounts.
    fn repository(&self) -> Option<&Repository> {
        None
    }
}

/// Writes content. Writers of the local store exist only under a lease.
pub trait Ingester: Send + Sync {
    /// Whether the blob `desc` names is already present (with its size, where the
    /// destination can tell).
    fn exists<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<bool>>;

    /// A writer for the blob `desc` names; `key` identifies the ingest where the destination
    /// keeps partial writes. `progress` is for writers that send the content on at commit.
    fn writer<'a>(
        &'a self,
        key: &'a str,
        desc: &'a Descriptor,
        progress: &'a Arc<dyn BlobProgress>,
    ) -> BoxFuture<'a, Result<Box<dyn ContentWriter>>>;

    /// Link the blob from repository `from` of the same registry without a transfer;
    /// `false` when this destination cannot (the default) or the registry declined.
    fn mount<'a>(
        &'a self,
        _desc: &'a Descriptor,
        _from: &'a Repository,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(false) })
    }

    /// Copy the blob from the file `path` directly, when this destination does that better
    /// than a writer (a registry upload, which may re-read from any offset); `None` (the
    /// default): use [`Ingester::writer`].
    fn put_file<'a>(
        &'a self,
        _desc: &'a Descriptor,
        _path: &'a Path,
        _progress: &'a Arc<dyn BlobProgress>,
    ) -> Option<BoxFuture<'a, Result<Put>>> {
        None
    }
}

/// Content being written: write it all, then [`ContentWriter::commit`].
pub trait ContentWriter: AsyncWrite + Unpin + Send {
    /// Check that exactly `size` bytes hashing to `expected` were written, and only then make
    /// them visible; says how the blob reached the destination.
    fn commit(self: Box<Self>, size: u64, expected: Digest) -> BoxFuture<'static, Result<Put>>;

    /// Give up (the fetch failed): nothing becomes visible. An error is the writer's own
    /// failure, which stopped the transfer (a full disk), not the missing bytes.
    fn abort(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

/// How a blob reached the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Its bytes were copied.
    Copied,
    /// Linked from another repository of the same registry, without a transfer.
    Mounted,
    /// The destination found it present after all.
    Exists,
}

impl Put {
    /// "done", "mounted", "exists": what a progress display shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Put::Copied => "done",
            Put::Mounted => "mounted",
            Put::Exists => "exists",
        }
    }
}

impl From<berth_distribution::BlobPush> for Put {
    fn from(p: berth_distribution::BlobPush) -> Put {
        match p {
            berth_distribution::BlobPush::AlreadyPresent => Put::Exists,
            berth_distribution::BlobPush::Uploaded => Put::Copied,
        }
    }
}
