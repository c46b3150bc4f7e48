//! A user namespace by default: each container's root is an unprivileged range of host ids
//! (podman's `--userns=auto`), and its root filesystem shows the image's files owned by that
//! range **without copying the image per container**.
//!
//! Two parts:
//!
//! - [`IdAllocator`]: a free, non-overlapping range of host ids per container, from
//!   `/etc/subuid` and `/etc/subgid` (root's entries, else those of the user `containers`
//!   as podman does), persistent under a lock, released when the container is removed.
//! - [`prepare`] + [`mount`]: a container's snapshot over an image for a range, mounted
//!   with the image's layers shifted into the range, by one of two [`Method`]s chosen by
//!   probing the kernel once ([`IdmapMode::Auto`]):
//!   - [`Method::IdMapped`] (kernel ≥ 5.19, whose overlayfs accepts id-mapped lower layers):
//!     each lower layer is mounted id-mapped (`open_tree(OPEN_TREE_CLONE)` +
//!     `mount_setattr(MOUNT_ATTR_IDMAP)` with a user namespace for the range) and handed
//!     to overlayfs as `/proc/self/fd/N`; the upper directory's root belongs to the range's
//!     root. Nothing is copied: the layers are shared with every other container and range.
//!   - [`Method::Chowned`] (no id-mapped mounts, or the native snapshotter): a copy of each
//!     layer with its owners shifted (containerd's `remap`), committed as snapshot
//!     `remap/<start>-<size>/<chain key>` and reused by every container given the same
//!     range. The remapped top carries its base's image references, so it lives as long as
//!     the image (released by [`crate::rootfs::release_image`]) and is then collected with
//!     it by `gc`.
//!
//! Either way a file owned by root in the image is owned by root inside the container and by
//! `host_start` outside; what the container creates is owned by `host_start + id` on the
//! host; setuid bits and `security.capability` (with its root id) keep working.
//!
//! **For `berth run`**: `IdAllocator::new(state_root).allocate(container_id,
//! DEFAULT_RANGE_SIZE)` → [`prepare`]`(snap, container_id, top, range, IdmapMode::Auto)` →
//! [`mount`]`(&rootfs, target)`; the range goes into [`crate::spec::RunOptions::id_range`].
//! On removal: [`crate::snapshot::unmount`]`(target)`, `snap.remove(container_id)`,
//! `allocator.release(container_id)`.

mod alloc;
mod chown;
mod error;
mod userns;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_oci::Digest;

pub use alloc::{DEFAULT_RANGE_SIZE, FALLBACK_USER, IdAllocator};
pub use error::IdmapError;

use crate::rootfs::container_label;
use crate::snapshot::{
    Driver, ErrorKind, LABEL_REF_PREFIX, Mount, Opts, SnapshotStore, Snapshotter, mount_all,
    writable_dir,
};
use crate::spec::IdRange;

/// How [`prepare`] shifts the image into a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdmapMode {
    /// Id-mapped mounts when the kernel has them (probed once per process), else chowned
    /// copies.
    #[default]
    Auto,
    /// Id-mapped mounts; an error where the kernel cannot.
    IdMapped,
    /// Chowned copies, always (the fallback, forced).
    Chown,
}

/// How a container's root filesystem was shifted into its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Id-mapped lower layers: nothing copied.
    IdMapped,
    /// Over a chowned copy of the image's layers for this range.
    Chowned,
}

/// A container's snapshot prepared for an id range: what [`mount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangedRootfs {
    /// The container's active snapshot (labelled as referenced by the container).
    pub key: String,
    pub range: IdRange,
    pub method: Method,
    /// The snapshot's mounts (for [`Method::IdMapped`], its lower directories are mounted
    /// id-mapped by [`mount`]; do not mount them with [`mount_all`] directly).
    pub mounts: Vec<Mount>,
}

/// Whether id-mapped lower layers work for overlay snapshots under `snap`'s root (the
/// probe [`IdmapMode::Auto`] uses; its result is kept for the process). `Err` says why not.
pub fn idmap_supported(snap: &SnapshotStore) -> Result<(), String> {
    if snap.driver() != Driver::Overlay {
        return Err(format!(
            "the {} snapshotter has no overlay lower layers",
            snap.driver().name()
        ));
    }
    userns::probe(snap.root())
}

/// Create the container's active snapshot `key` over `top` (the image's top chain ID, as
/// [`crate::rootfs::prepare`]) for `range` (see the module documentation). A failure leaves
/// no container snapshot behind; a remapped layer it committed is kept as a cache.
pub fn prepare(
    snap: &SnapshotStore,
    key: &str,
    top: Option<&Digest>,
    range: IdRange,
    mode: IdmapMode,
) -> Result<RangedRootfs, IdmapError> {
    let method = match mode {
        IdmapMode::Chown => Method::Chowned,
        IdmapMode::Auto => match idmap_supported(snap) {
            Ok(()) => Method::IdMapped,
            Err(reason) => {
                tracing::debug!(reason, "id-mapped mounts unavailable: chowned snapshots");
                Method::Chowned
            }
        },
        IdmapMode::IdMapped => {
            idmap_supported(snap).map_err(|reason| IdmapError::IdmapUnsupported { reason })?;
            Method::IdMapped
        }
    };
    let container_opts = || Opts::default().label(container_label(key), "");
    let mounts = match (method, snap.driver()) {
        (Method::IdMapped, _) => snap
            .prepare(key, top.map(Digest::as_str), &container_opts())
            .map_err(IdmapError::snapshot(key))?,
        (Method::Chowned, Driver::Native) => {
            // The native snapshotter copies the image per container anyway: copy it once,
            // shifted, into a parentless snapshot.
            let mounts = snap
                .prepare(key, None, &container_opts())
                .map_err(IdmapError::snapshot(key))?;
            let filled = match (top, writable_dir(&mounts)) {
                (None, _) => Ok(()),
                (Some(t), Some(dir)) => snap
                    .fs_dir_of(t.as_str())
                    .map_err(IdmapError::snapshot(t.as_str()))
                    .and_then(|d| chown::copy_shifted(&d, &dir, range)),
                (Some(_), None) => Err(no_writable(key)),
            };
            if let Err(e) = filled {
                let _ = snap.remove(key);
                return Err(e);
            }
            mounts
        }
        (Method::Chowned, Driver::Overlay) => {
            // the lease keeps the remapped chain until the container's snapshot references it
            let lease = snap.lease().map_err(IdmapError::snapshot(key))?;
            let remapped = match top {
                Some(t) => Some(remap_chain(snap, t.as_str(), range, &lease)?),
                None => None,
            };
            let mounts = snap
                .prepare(key, remapped.as_deref(), &container_opts())
                .map_err(IdmapError::snapshot(key))?;
            drop(lease);
            mounts
        }
    };
    // The container's own layer: its root directory takes the image root's owner, shifted
    // (the snapshotter gave it the parent's; what the container creates is owned by the
    // range anyway, as it writes with its own ids).
    let upper = writable_dir(&mounts).ok_or_else(|| no_writable(key));
    if let Err(e) = upper.and_then(|u| chown::shift_into(&u, range)) {
        let _ = snap.remove(key);
        return Err(e);
    }
    Ok(RangedRootfs {
        key: key.to_owned(),
        range,
        method,
        mounts,
    })
}

fn no_writable(key: &str) -> IdmapError {
    IdmapError::Shift {
        action: "find the writable directory of snapshot",
        path: PathBuf::from(key),
        source: std::io::Error::other("its mounts have none"),
    }
}

/// Mount a [`RangedRootfs`] on `target` (an existing directory). Undo with
/// [`crate::snapshot::unmount`].
pub fn mount(rootfs: &RangedRootfs, target: &Path) -> Result<(), IdmapError> {
    if rootfs.method == Method::Chowned {
        return Ok(mount_all(&rootfs.mounts, target)?);
    }
    let mut ns = None;
    let mut trees = Vec::new();
    let mut mounts = Vec::with_capacity(rootfs.mounts.len());
    for m in &rootfs.mounts {
        let lowers = m.lowerdirs();
        if m.kind != "overlay" || lowers.is_empty() {
            mounts.push(m.clone());
            continue;
        }
        let ns = match &ns {
            Some(ns) => ns,
            None => ns.insert(userns::userns_fd(rootfs.range)?),
        };
        let mut paths = Vec::with_capacity(lowers.len());
        for l in &lowers {
            let tree = userns::idmapped_tree(l, ns)?;
            paths.push(userns::fd_path(&tree).display().to_string());
            trees.push(tree);
        }
        let mut m = m.clone();
        for o in &mut m.options {
            if o.starts_with("lowerdir=") {
                *o = format!("lowerdir={}", paths.join(":"));
            }
        }
        mounts.push(m);
    }
    // overlayfs holds its own references to the layers: the descriptors can go after this
    let r = mount_all(&mounts, target);
    drop(trees);
    Ok(r?)
}

/// Bind `src` (a directory) on `target` (an existing directory) id-mapped for `range`: an
/// owner `n` on disk appears as host id `host_start + n`, and what a process of the range
/// creates there is stored as its id inside the range. A named volume so keeps the ids its
/// containers see, whatever range each one has. Undo by unmounting `target`.
pub fn bind_idmapped(src: &Path, target: &Path, range: IdRange) -> Result<(), IdmapError> {
    use std::os::fd::AsFd;
    let ns = userns::userns_fd(range)?;
    let tree = userns::idmapped_tree(src, &ns)?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| IdmapError::IdmapMount {
        path: target.to_owned(),
        source: e.into(),
    })
}

/// The remapped copy of the chain ending at `top` for `range`, made where missing (bottom
/// first); returns the remapped top's key.
fn remap_chain(
    snap: &SnapshotStore,
    top: &str,
    range: IdRange,
    lease: &crate::snapshot::Lease,
) -> Result<String, IdmapError> {
    let mut chain = vec![top.to_owned()];
    loop {
        let last = chain.last().map(String::as_str).unwrap_or(top);
        let info = snap.stat(last).map_err(IdmapError::snapshot(last))?;
        match info.parent {
            Some(p) => chain.push(p),
            None => break,
        }
    }
    chain.reverse();
    let mut parent: Option<String> = None;
    for base in &chain {
        let key = remap_key(base, range);
        match snap.stat(&key) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                remap_one(snap, base, &key, parent.as_deref(), range, lease)?
            }
            Err(e) => return Err(IdmapError::snapshot(&key)(e)),
        }
        parent = Some(key);
    }
    let remapped_top = parent.unwrap_or_else(|| remap_key(top, range));
    // The remapped top is kept while the base's images exist, and released with them.
    let base = snap.stat(top).map_err(IdmapError::snapshot(top))?;
    let refs: BTreeMap<String, Option<String>> = base
        .labels
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{LABEL_REF_PREFIX}image/")))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    if !refs.is_empty() {
        snap.update_labels(&remapped_top, &refs)
            .map_err(IdmapError::snapshot(&remapped_top))?;
    }
    Ok(remapped_top)
}

/// The key of `base`'s copy shifted into `range`.
pub fn remap_key(base: &str, range: IdRange) -> String {
    format!("remap/{}-{}/{base}", range.host_start, range.size)
}

fn remap_one(
    snap: &SnapshotStore,
    base: &str,
    key: &str,
    parent: Option<&str>,
    range: IdRange,
    lease: &crate::snapshot::Lease,
) -> Result<(), IdmapError> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let active = format!(
        "remap-active/{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mounts = snap
        .prepare(&active, parent, &Opts::with_lease(lease))
        .map_err(IdmapError::snapshot(&active))?;
    let done = (|| {
        let dir = writable_dir(&mounts).ok_or_else(|| no_writable(&active))?;
        let src = snap.fs_dir_of(base).map_err(IdmapError::snapshot(base))?;
        chown::copy_shifted(&src, &dir, range)?;
        match snap.commit(key, &active, &Opts::with_lease(lease)) {
            Ok(()) => Ok(()),
            // another process remapped it first: use theirs
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let _ = snap.remove(&active);
                Ok(())
            }
            Err(e) => Err(IdmapError::snapshot(key)(e)),
        }
    })();
    if done.is_err() {
        let _ = snap.remove(&active);
    }
    done
}
