//! The store's on-disk layout: the only place that builds store paths.
//!
//! ```text
//! <data_dir>/                          passed in by the caller ($XDG_DATA_HOME/berth or /var/lib/berth)
//!   store/                             created 0700: pulled images may be private
//!     v1/                              LAYOUT_VERSION
//!       lock                           flock: shared for index reads and lease writes,
//!                                      exclusive for index updates and prune
//!       index.json                     the metadata index: {"version":1,"images":[ImageRecord…]},
//!                                      replaced atomically (a stray .index.json.tmp.* is a crashed
//!                                      writer's temp, ignored and removed by prune)
//!       blobs/<alg>/<hex>              content, visible only once digest and size are verified;
//!                                      read-only (0444)
//!       ingest/<sha256(key)>/          one resumable download, keyed by the caller's ingest key
//!         lock                         flock held by the writer for as long as it is open
//!         ref                          {"key","expected","expectedSize","startedAt"} of the bytes in data
//!         data                         the bytes received so far (appended; renamed into blobs/)
//!       ingest/<sha256(key)>-<pid>-<n>/ a private ingest, used when the keyed one is busy;
//!                                      removed when its writer is dropped
//!       leases/<id>.json               a live lease: {"id","pid","pidStart","created","purpose","digests"}
//! ```
//!
//! Everything lives on one filesystem, so an ingest's `data` reaches `blobs/` by one
//! `rename(2)` ([`berth_fsutil::rename_durable`]).

use std::path::{Path, PathBuf};

use berth_oci::{Algorithm, Digest};

/// Bump when the layout changes incompatibly; a new version lives beside the old one.
pub const LAYOUT_VERSION: &str = "v1";

/// Directory under the data directory that holds every version of the store.
const STORE_DIR: &str = "store";

/// The paths of one store, rooted at `<data_dir>/store/v1`.
#[derive(Debug, Clone)]
pub(crate) struct StorePaths {
    root: PathBuf,
}

impl StorePaths {
    pub(crate) fn new(data_dir: &Path) -> StorePaths {
        StorePaths {
            root: data_dir.join(STORE_DIR).join(LAYOUT_VERSION),
        }
    }

    /// `<data_dir>/store`.
    pub(crate) fn store_dir(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    /// `<data_dir>/store/v1`.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub(crate) fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Prefix of the temporary files `berth_fsutil::atomic_write` leaves beside `index.json`
    /// when it is interrupted.
    pub(crate) const INDEX_TEMP_PREFIX: &'static str = ".index.json.tmp.";

    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub(crate) fn blob_dir(&self, alg: Algorithm) -> PathBuf {
        self.blobs().join(alg.as_str())
    }

    pub(crate) fn blob(&self, d: &Digest) -> PathBuf {
        self.blob_dir(d.algorithm()).join(d.hex())
    }

    pub(crate) fn ingests(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// The ingest directory of `key`: named by the key's sha256, so any string is a usable key.
    pub(crate) fn ingest(&self, key: &str) -> PathBuf {
        self.ingests().join(ingest_name(key))
    }

    /// A private ingest directory for `key`, unique to this process and `n`.
    pub(crate) fn private_ingest(&self, key: &str, n: u64) -> PathBuf {
        self.ingests()
            .join(format!("{}-{}-{n}", ingest_name(key), std::process::id()))
    }

    pub(crate) fn leases(&self) -> PathBuf {
        self.root.join("leases")
    }

    pub(crate) fn lease(&self, id: &str) -> PathBuf {
        self.leases().join(format!("{id}.json"))
    }
}

fn ingest_name(key: &str) -> String {
    Digest::sha256_of(key.as_bytes()).hex().to_owned()
}

/// Files inside one ingest directory.
pub(crate) mod ingest {
    use std::path::{Path, PathBuf};

    pub(crate) fn lock(dir: &Path) -> PathBuf {
        dir.join("lock")
    }

    pub(crate) fn reference(dir: &Path) -> PathBuf {
        dir.join("ref")
    }

    pub(crate) fn data(dir: &Path) -> PathBuf {
        dir.join("data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_tree() {
        let p = StorePaths::new(Path::new("/var/lib/berth"));
        let d = Digest::sha256_of(b"x");
        assert_eq!(p.root(), Path::new("/var/lib/berth/store/v1"));
        assert_eq!(p.store_dir(), Path::new("/var/lib/berth/store"));
        assert_eq!(
            p.blob(&d),
            PathBuf::from(format!("/var/lib/berth/store/v1/blobs/sha256/{}", d.hex()))
        );
        assert_eq!(p.lock(), Path::new("/var/lib/berth/store/v1/lock"));
        assert_eq!(
            p.lease("a"),
            Path::new("/var/lib/berth/store/v1/leases/a.json")
        );
        // any key is a safe single path component
        let dir = p.ingest("../../etc/passwd");
        assert_eq!(dir.parent(), Some(p.ingests().as_path()));
        assert_eq!(dir.file_name().map(|n| n.len()), Some(64));
        assert_ne!(p.private_ingest("k", 1), p.private_ingest("k", 2));
    }
}
