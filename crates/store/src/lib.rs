//! berth's local content store: what `berth pull`, `push`, `copy`, `images`, `rmi` and
//! `image prune` read and write on this machine.
//!
//! **Owns**
//! - content-addressed blobs under `<data_dir>/store/v1/blobs/<alg>/<hex>`, written through
//!   resumable ingests ([`Store::ingester`] → [`Ingester::writer`] → [`BlobWriter`]) that
//!   verify size and digest before a blob becomes visible;
//! - the metadata index of named images ([`ImageRecord`]: reference → top-level manifest);
//! - leases ([`Lease`]) that protect content a holder (a `berth pull`, a running container) is
//!   writing or using for as long as the holder runs, and garbage collection
//!   ([`Store::prune`]);
//! - reading and writing OCI image layouts on disk ([`OciLayout`], image-spec
//!   "image-layout.md"), the format `skopeo` and `umoci` exchange as `oci:DIR:TAG`.
//!
//! The on-disk layout, with every path the store builds, is in `paths.rs`.
//!
//! **Does not own**: HTTP (that is `berth-distribution`), unpacking layers into root
//! filesystems (`berth-image`), reference parsing (`berth-oci`: the store treats an image
//! name as an opaque key), choosing the data directory (the caller passes it in). The API is
//! synchronous and never prints; async callers wrap it in `spawn_blocking`.
//!
//! **Design decision**: the store is plain files coordinated by `flock(2)`, with no
//! database and no daemon. Every file that can be read while it changes is replaced
//! atomically through `berth-fsutil` (temp → fsync → rename → fsync dir), so a crash leaves
//! the old version or the new one; every read-modify-write of the index holds an exclusive
//! lock on `store/v1/lock`, so concurrent `berth` processes never lose each other's updates;
//! and garbage collection takes that same lock, while writers protect their in-flight blobs
//! with leases (and, as a second guard, a grace period on fresh blobs).
//!
//! # Protocol for writers
//!
//! To add an image: take a [`Lease`], [`Lease::add`] every digest *before* checking whether
//! it is present, write what is missing through [`Store::ingester`] (which needs the lease,
//! and leases each digest before writing it), [`Store::put_image`], then drop the lease. A
//! prune that runs at any point of this sees the blobs either as leased or as reachable
//! from the record.
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use berth_oci::Digest;
//! use berth_store::{ImageRecord, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
//! let digest = Digest::sha256_of(manifest);
//!
//! let lease = store.lease("example pull")?;
//! let mut w = store
//!     .ingester(&lease)
//!     .writer("example", &digest, Some(manifest.len() as u64))?;
//! w.write_all(manifest)?;
//! w.commit()?;
//! store.put_image(ImageRecord {
//!     name: "docker.io/library/example:latest".into(),
//!     digest: digest.clone(),
//!     media_type: "application/vnd.oci.image.index.v1+json".into(),
//!     size: manifest.len() as u64,
//!     platform: None,
//!     pulled_at: 0,
//! })?;
//! drop(lease);
//! assert_eq!(store.read_blob(&digest)?, manifest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod content;
mod error;
mod gc;
mod index;
mod ingest;
mod layout;
mod lease;
mod paths;
mod referrers;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub use content::MAX_IN_MEMORY_BLOB;
pub use error::{ErrorKind, Result, StoreError};
pub use gc::{DEFAULT_GRACE, INGEST_EXPIRY, PruneOptions, PruneReport};
pub use index::ImageRecord;
pub use ingest::{BlobWriter, Ingester};
pub use layout::{LayoutError, OciLayout, REF_NAME_ANNOTATION};
pub use lease::{Lease, LeaseHolder};
pub use paths::LAYOUT_VERSION;

use crate::paths::StorePaths;
use berth_fsutil::FileLock;

/// Bytes per `read` and `write` when a blob streams into the store or a layout. `io::copy`'s
/// 8 KiB made 32 768 `write`s (and as many hand-offs from the download) for 256 MiB.
const COPY_BUF: usize = 1 << 20;

/// Copy `r` to `w` through one buffer of [`COPY_BUF`] bytes, or of `size` (at least 8 KiB)
/// when the content is known to be smaller: a 4 KiB layer does not allocate 1 MiB. Returns
/// the number of bytes copied.
fn copy_large(
    r: &mut impl std::io::Read,
    w: &mut impl std::io::Write,
    size: Option<u64>,
) -> std::io::Result<u64> {
    let len = size.map_or(COPY_BUF, |s| {
        usize::try_from(s).map_or(COPY_BUF, |s| s.clamp(8 << 10, COPY_BUF))
    });
    let mut buf = vec![0u8; len];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(buf.get(..n).unwrap_or_default())?;
        total = total.saturating_add(n as u64);
    }
}

/// A local content store rooted at `<data_dir>/store/v1`.
///
/// Cheap to clone; clones and separately opened `Store`s on the same directory (in this
/// process or others) coordinate through file locks, so each may be used from any thread.
#[derive(Debug, Clone)]
pub struct Store {
    paths: StorePaths,
}

impl Store {
    /// Open the store under `data_dir`, creating its directories on first use (`store/` with
    /// mode 0700: pulled images may be private).
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Store> {
        let paths = StorePaths::new(data_dir.as_ref());
        let store_dir = paths.store_dir().to_owned();
        let open_err = |source| StoreError::Open {
            path: store_dir.clone(),
            source,
        };
        if !store_dir.is_dir() {
            berth_fsutil::create_dir_all_durable(&store_dir).map_err(open_err)?;
            std::fs::set_permissions(&store_dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| {
                    open_err(berth_fsutil::FsError::CreateDir {
                        path: store_dir.clone(),
                        source,
                    })
                },
            )?;
        }
        for dir in [paths.blobs(), paths.ingests(), paths.leases()] {
            berth_fsutil::create_dir_all_durable(&dir).map_err(open_err)?;
        }
        let store = Store { paths };
        // creates the lock file, and checks that this filesystem supports flock
        drop(store.lock_shared()?);
        Ok(store)
    }

    /// `<data_dir>/store/v1`, for messages and diagnostics.
    pub fn root(&self) -> &Path {
        self.paths.root()
    }

    pub(crate) fn lock_shared(&self) -> Result<FileLock> {
        let path = self.paths.lock();
        FileLock::shared(&path).map_err(|source| StoreError::Lock { path, source })
    }

    pub(crate) fn lock_exclusive(&self) -> Result<FileLock> {
        let path = self.paths.lock();
        FileLock::exclusive(&path).map_err(|source| StoreError::Lock { path, source })
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        // callers move these into spawn_blocking
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Store>();
        send_sync::<Lease>();
        send_sync::<OciLayout>();
        send::<BlobWriter>();
        send_sync::<StoreError>();
        send_sync::<LayoutError>();
    }
}
