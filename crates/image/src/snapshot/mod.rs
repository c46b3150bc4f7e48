//! Snapshots: the directories image layers are unpacked into and containers run on, in
//! containerd's model (`core/snapshots/snapshotter.go`, `plugins/snapshots/overlay`,
//! `plugins/snapshots/native`).
//!
//! A snapshot is *active* (writable; [`Snapshotter::prepare`]), a *view* (read-only;
//! [`Snapshotter::view`]) or *committed* (immutable, a parent for others;
//! [`Snapshotter::commit`]). Parents form chains: an image's layers are committed snapshots
//! named by their [`chain_id`], each the parent of the next; a container's root filesystem is
//! an active snapshot over the top one. The [`Mount`]s a snapshot returns are mounted with
//! [`mount_all`]: an overlay of the chain (the `overlay` driver) or a bind mount of a full copy
//! (the `native` driver, where overlayfs is unavailable: see [`check_overlay`]).
//!
//! **Lifecycle**: `prepare(key, parent)` → fill it (through its mounts, or directly in
//! [`writable_dir`]: deletions as overlayfs whiteouts when [`Driver::uses_whiteouts`]) →
//! `commit(name, key)`; or `remove(key)`. Hold a [`Lease`] while filling, and commit with a
//! reference label or the lease, so a collection in between cannot take the snapshot.
//! Metadata changes happen under an exclusive lock on the root and are written atomically, so
//! several processes may use one root at once. A snapshot is created in `tmp/` and renamed into
//! place before it is recorded; a process killed at any point leaves either nothing recorded
//! (removed at the next [`SnapshotStore::open`]) or a complete record.
//!
//! **Garbage collection** ([`Snapshotter::gc`]): a snapshot is kept when it is a root — it has
//! the label [`LABEL_GC_ROOT`] or a label starting with [`LABEL_REF_PREFIX`] (an image or a
//! container referencing it), a live [`Lease`], or is mounted — or is an ancestor of one.
//! Everything else is removed. A [`Lease`] protects snapshots while they are being unpacked;
//! when its process dies the active snapshots it held are removed at the next open.

mod collect;
pub(crate) mod copy;
mod error;
mod inuse;
pub(crate) mod layout;
mod meta;
mod mount;
mod store;

use std::collections::BTreeMap;

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

pub use error::{ErrorKind, MountError, SnapshotError};
pub use meta::Lease;
pub use mount::{
    MOUNT_DATA_LIMIT, Mount, OVERLAY_MAX_LOWER, Strategy, check_overlay, mount_all, mount_all_with,
    unmount, writable_dir,
};
pub use store::{CommitOp, CrashHook, CrashPoint, Driver, RemovedFiles, SnapshotStore};

/// A label that makes a snapshot (and its ancestors) a root of collection.
pub const LABEL_GC_ROOT: &str = "berth.gc.root";
/// Labels starting with this name a referrer: `berth.gc.ref.image/<name>`,
/// `berth.gc.ref.container/<id>`. A snapshot with one is kept, with its ancestors.
pub const LABEL_REF_PREFIX: &str = "berth.gc.ref.";

/// What a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable, made by `prepare`; may be committed.
    Active,
    /// Read-only, made by `view`; never committed.
    View,
    /// Immutable, made by `commit`; the only kind that can be a parent.
    Committed,
}

impl Kind {
    /// `"active"`, `"view"`, `"committed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Active => "active",
            Kind::View => "view",
            Kind::Committed => "committed",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot's metadata, as `stat` and `list` return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    pub key: String,
    pub kind: Kind,
    pub parent: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC.
    pub updated: String,
}

/// Disk usage of a snapshot's own files (for overlay: its layer only, not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Allocated bytes.
    pub size: u64,
    /// Files, directories and other inodes (hard links counted once).
    pub inodes: u64,
}

/// Options for `prepare`, `view` and `commit`.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Labels of the new snapshot.
    pub labels: BTreeMap<String, String>,
    /// The lease (by [`Lease::name`]) that holds the new snapshot until it is referenced.
    pub lease: Option<String>,
    /// `commit` only: the committed snapshot to stack this one on, for an active snapshot
    /// prepared without a parent (containerd's rebase, [`Driver::supports_rebase`]): layers
    /// are unpacked in parallel into parentless snapshots and chained as they are committed.
    pub parent: Option<String>,
}

impl Opts {
    /// Options holding the snapshot with `lease`.
    pub fn with_lease(lease: &Lease) -> Opts {
        Opts {
            labels: BTreeMap::new(),
            lease: Some(lease.name().to_owned()),
            parent: None,
        }
    }

    /// Commit onto `parent` (see [`Opts::parent`]).
    pub fn onto(mut self, parent: impl Into<String>) -> Opts {
        self.parent = Some(parent.into());
        self
    }

    /// Add a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Opts {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// The keys removed, leaves first.
    pub removed: Vec<String>,
    /// Bytes reclaimed (the recorded or measured usage of what was removed).
    pub reclaimed: u64,
}

/// containerd's snapshotter, synchronous. Implemented by [`SnapshotStore`] (the overlay and
/// native drivers); every method may be called from several processes on one root at once.
///
/// Lifecycle: `prepare`/`view` create; `mounts` gives the mounts again; `commit` turns an
/// active snapshot into a committed one under a new name (the active key is gone); `remove`
/// deletes one without children that is not mounted; `gc` removes what nothing references.
pub trait Snapshotter: std::fmt::Debug + Send + Sync {
    /// The metadata of `key`.
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;
    /// Set (`Some`) or delete (`None`) labels of `key`.
    fn update_labels(
        &self,
        key: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<Info, SnapshotError>;
    /// Disk usage of `key`'s own files.
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;
    /// The mounts of an active snapshot or a view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;
    /// Create an active (writable) snapshot `key` over the committed `parent`.
    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Opts,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// Create a read-only view `key` of the committed `parent`.
    fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Opts,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// Commit the active snapshot `key` as `name` (refused while it is mounted).
    fn commit(&self, name: &str, key: &str, opts: &Opts) -> Result<(), SnapshotError>;
    /// Remove `key` (refused while it has children or is mounted).
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;
    /// Every snapshot (containerd's `Walk`).
    fn list(&self) -> Result<Vec<Info>, SnapshotError>;
    /// Remove every snapshot that no root keeps (see the module documentation).
    fn gc(&self) -> Result<GcReport, SnapshotError>;
    /// A new lease held by this process until dropped.
    fn lease(&self) -> Result<Lease, SnapshotError>;
}

/// The chain ID of each layer of an image, per image-spec ("Layer ChainID"):
/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The chain ID of the whole stack `diff_ids` (`None` for no layers).
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_follows_image_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = Digest::sha256_of(b"c");
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        let ab = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(&[a.clone(), b.clone()]), Some(ab.clone()));
        let abc = Digest::sha256_of(format!("{ab} {c}").as_bytes());
        assert_eq!(chain_ids(&[a.clone(), b, c]), vec![a, ab, abc]);
    }

    #[test]
    fn chain_id_matches_an_independently_computed_value() {
        // `printf 'sha256:1…1 sha256:2…2' | sha256sum` (coreutils), not our digest code.
        let a = Digest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "2".repeat(64))).unwrap();
        assert_eq!(
            chain_id(&[a, b]).unwrap().as_str(),
            "sha256:9932074217c35353d2e03a3f5a86549f7c67bfeb0ba53e23d69f4d4c8f7958f5"
        );
    }
}
