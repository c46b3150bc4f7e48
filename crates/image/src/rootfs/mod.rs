//! Images become snapshots: every layer of an image a committed snapshot keyed by its chain
//! ID, unpacked once and shared, then an active snapshot (or a read-only view) per container.
//!
//! [`resolve`] reads an image's manifest (choosing from an index by platform), its config's
//! `rootfs.diff_ids` and its layers' media types from a [`BlobSource`] (the local store or
//! an OCI layout). [`ensure_layers`] makes sure each layer is a committed snapshot named by its
//! chain ID, skipping those present:
//!
//! - **overlay** ([`Driver::supports_rebase`]): the missing layers are unpacked **in parallel**
//!   by up to [`EnsureOptions::workers`] threads, each into its own parent-less active snapshot
//!   (all prepared in one metadata write, [`SnapshotStore::prepare_all`]) in
//!   [`WhiteoutMode::Overlay`] (whiteouts become overlay whiteouts and opaque xattrs, so a
//!   layer does not need its parents on disk), verified against its diff ID, and committed in
//!   order onto its parent chain with [`Opts::onto`], in batches
//!   ([`SnapshotStore::commit_all`]: 64 contiguous layers, or all that remain, per metadata
//!   write);
//! - **native**: sequentially, each layer applied ([`WhiteoutMode::Apply`]) onto a copy of its
//!   parent.
//!
//! Everything is held by a [`crate::snapshot::Lease`] while it is being made, so a concurrent
//! `gc` cannot take half-done snapshots; a killed process's active snapshots are removed at
//! the next open. The top snapshot gets the label [`image_label`]`(name)` so `gc` keeps the
//! whole chain while the image exists; [`release_image`] drops it (`rmi`). On any failure
//! (a corrupt blob, a diff ID mismatch) the active snapshots are removed and the snapshots
//! this call committed are removed again: nothing half-made is committed or left in use.

mod error;
mod gate;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use berth_oci::{Digest, ManifestInfo, ManifestKind, Platform, descriptor_digest};
use serde::Deserialize;

pub use error::RootfsError;
pub use gate::{AllPresent, Arrivals, LayerGate};
pub use source::BlobSource;

use crate::snapshot::{
    CommitOp, Driver, ErrorKind, LABEL_REF_PREFIX, Mount, Opts, SnapshotStore, Snapshotter,
    chain_ids, writable_dir,
};
use crate::unpack::{UnpackOptions, WhiteoutMode, unpack};

/// The label key that marks a snapshot as referenced by image `name`.
pub fn image_label(name: &str) -> String {
    format!("{LABEL_REF_PREFIX}image/{name}")
}

/// The label key that marks a snapshot as referenced by container `id`.
pub fn container_label(id: &str) -> String {
    format!("{LABEL_REF_PREFIX}container/{id}")
}

/// One layer of a resolved image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The blob's digest (compressed).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The uncompressed digest, from the config.
    pub diff_id: Digest,
    /// The chain ID of this layer and all below: the committed snapshot's name.
    pub chain_id: Digest,
}

/// An image's layers, bottom first, as [`resolve`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayers {
    /// The image manifest (not the index).
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<LayerInfo>,
}

impl ImageLayers {
    /// The top layer's chain ID (`None` for an image without layers).
    pub fn top(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

#[derive(Deserialize)]
struct ConfigRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigDoc {
    rootfs: ConfigRootfs,
}

fn read_blob(
    source: &dyn BlobSource,
    digest: &Digest,
    what: &'static str,
) -> Result<Vec<u8>, RootfsError> {
    source.read(digest).map_err(|source| RootfsError::Blob {
        digest: digest.clone(),
        what,
        source,
    })
}

fn invalid(digest: &Digest, what: &'static str, reason: String) -> RootfsError {
    RootfsError::Invalid {
        digest: digest.clone(),
        what,
        reason,
    }
}

/// Read image `digest` (a manifest, or an index from which `platform`'s manifest is chosen)
/// from `source`: its layers, their media types, diff IDs and chain IDs.
pub fn resolve(
    source: &dyn BlobSource,
    digest: &Digest,
    platform: &Platform,
) -> Result<ImageLayers, RootfsError> {
    let read = |d: &Digest, what: &'static str| read_blob(source, d, what);
    let mut manifest_digest = digest.clone();
    let top = read(digest, "manifest")?;
    let info =
        ManifestInfo::parse(&top, None).map_err(|e| invalid(digest, "manifest", e.to_string()))?;
    if info.kind == ManifestKind::Index {
        let child = info
            .manifests
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == platform.os
                        && p.architecture().to_string() == platform.architecture
                })
            })
            .ok_or_else(|| RootfsError::NoPlatform {
                digest: digest.clone(),
                platform: format!("{}/{}", platform.os, platform.architecture),
            })?;
        manifest_digest =
            descriptor_digest(child).map_err(|e| invalid(digest, "index", e.to_string()))?;
    }
    let bytes = if manifest_digest == *digest {
        top
    } else {
        read(&manifest_digest, "manifest")?
    };
    resolve_manifest(source, &manifest_digest, &bytes)
}

/// Read image manifest `manifest_digest` (its `bytes` already at hand: a pull that has not
/// stored it yet) and its config from `source`: its layers, media types, diff and chain IDs.
pub fn resolve_manifest(
    source: &dyn BlobSource,
    manifest_digest: &Digest,
    bytes: &[u8],
) -> Result<ImageLayers, RootfsError> {
    let read = |d: &Digest, what: &'static str| read_blob(source, d, what);
    let manifest_digest = manifest_digest.clone();
    let info = ManifestInfo::parse(bytes, None)
        .map_err(|e| invalid(&manifest_digest, "manifest", e.to_string()))?;
    if info.kind != ManifestKind::Image {
        return Err(invalid(
            &manifest_digest,
            "manifest",
            format!("media type {} is not an image manifest", info.media_type),
        ));
    }
    let config_desc = info
        .config
        .as_ref()
        .ok_or_else(|| invalid(&manifest_digest, "manifest", "it has no config".to_owned()))?;
    let config = descriptor_digest(config_desc)
        .map_err(|e| invalid(&manifest_digest, "manifest", e.to_string()))?;
    let doc: ConfigDoc = serde_json::from_slice(&read(&config, "config")?)
        .map_err(|e| invalid(&config, "config", e.to_string()))?;
    let diff_ids = doc
        .rootfs
        .diff_ids
        .iter()
        .map(|s| Digest::parse(s).map_err(|e| invalid(&config, "config", e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if diff_ids.len() != info.layers.len() {
        return Err(RootfsError::LayerCount {
            digest: manifest_digest,
            layers: info.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chains = chain_ids(&diff_ids);
    let mut layers = Vec::with_capacity(diff_ids.len());
    for ((desc, diff_id), chain_id) in info.layers.iter().zip(diff_ids).zip(chains) {
        layers.push(LayerInfo {
            digest: descriptor_digest(desc)
                .map_err(|e| invalid(&manifest_digest, "manifest", e.to_string()))?,
            media_type: desc.media_type().to_string(),
            size: desc.size(),
            diff_id,
            chain_id,
        });
    }
    Ok(ImageLayers {
        manifest: manifest_digest,
        config,
        layers,
    })
}

/// How [`ensure_layers`] works.
#[derive(Debug, Clone)]
pub struct EnsureOptions {
    /// Parallel unpackers (overlay only; at least 1). Default: the CPUs, at most 8.
    pub workers: usize,
    /// The image name to label the top snapshot with ([`image_label`]); `None`: no label
    /// (the caller references it itself).
    pub image_name: Option<String>,
    /// Unpack settings (whiteout mode and expected diff ID are set per layer).
    pub unpack: UnpackOptions,
}

impl Default for EnsureOptions {
    fn default() -> EnsureOptions {
        EnsureOptions {
            workers: std::thread::available_parallelism()
                .map(|n| n.get().min(8))
                .unwrap_or(2),
            image_name: None,
            unpack: UnpackOptions::for_this_process(WhiteoutMode::Overlay),
        }
    }
}

/// What [`ensure_layers`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureReport {
    /// The top snapshot (`None` for an image without layers).
    pub top: Option<Digest>,
    /// Layers unpacked by this call (chain IDs, bottom first).
    pub unpacked: Vec<Digest>,
    /// Layers already present.
    pub reused: usize,
    /// Uncompressed bytes unpacked.
    pub bytes: u64,
}

/// Make every layer of `image` a committed snapshot in `snap` (see the module docs).
pub fn ensure_layers(
    snap: &SnapshotStore,
    source: &dyn BlobSource,
    image: &ImageLayers,
    opts: &EnsureOptions,
) -> Result<EnsureReport, RootfsError> {
    ensure_layers_gated(snap, source, image, opts, &AllPresent)
}

/// [`ensure_layers`] while the blobs are still arriving: each layer is unpacked once `gate`
/// says its blob is complete in `source` (unpacking while downloading; see [`Arrivals`]).
/// A gate that fails makes this fail like a corrupt layer: nothing is left committed.
pub fn ensure_layers_gated(
    snap: &SnapshotStore,
    source: &dyn BlobSource,
    image: &ImageLayers,
    opts: &EnsureOptions,
    gate: &dyn LayerGate,
) -> Result<EnsureReport, RootfsError> {
    let lease = snap.lease()?;
    // Committed chains are complete, so the missing layers are a suffix.
    let mut first_missing = image.layers.len();
    for (i, l) in image.layers.iter().enumerate().rev() {
        match snap.stat(l.chain_id.as_str()) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::NotFound => first_missing = i,
            Err(e) => {
                return Err(RootfsError::Snapshot {
                    index: i,
                    chain_id: l.chain_id.clone(),
                    source: Box::new(e),
                });
            }
        }
    }
    let mut report = EnsureReport {
        top: image.top().cloned(),
        reused: first_missing,
        ..EnsureReport::default()
    };
    let mut committed: Vec<Digest> = Vec::new();
    let run = Run {
        snap,
        source,
        image,
        first: first_missing,
        opts,
        lease: &lease,
        gate,
    };
    let result = if snap.driver().supports_rebase() {
        unpack_parallel(&run, &mut committed, &mut report)
    } else {
        unpack_sequential(&run, &mut committed, &mut report)
    };
    let result = result.and_then(|()| {
        if let (Some(top), Some(name)) = (&report.top, &opts.image_name) {
            let (label, value) = (image_label(name), image.manifest.to_string());
            // a warm `run` finds the label already there: no metadata rewrite (and its two
            // fsyncs) for a change that changes nothing
            let labelled = snap
                .stat(top.as_str())
                .is_ok_and(|i| i.labels.get(&label) == Some(&value));
            if !labelled {
                let mut changes = BTreeMap::new();
                changes.insert(label, Some(value));
                snap.update_labels(top.as_str(), &changes)?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        // Leave nothing committed by this call: top first (children before parents).
        for c in committed.iter().rev() {
            let _ = snap.remove(c.as_str());
        }
        return Err(e);
    }
    report.unpacked = committed;
    drop(lease);
    Ok(report)
}

fn active_key(chain: &Digest) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "unpack/{}/{}-{}",
        chain.hex(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn unpack_into(
    source: &dyn BlobSource,
    gate: &dyn LayerGate,
    index: usize,
    layer: &LayerInfo,
    mounts: &[Mount],
    opts: &UnpackOptions,
) -> Result<u64, RootfsError> {
    let dir = writable_dir(mounts).ok_or_else(|| RootfsError::Invalid {
        digest: layer.chain_id.clone(),
        what: "snapshot",
        reason: "its mounts have no writable directory".to_owned(),
    })?;
    gate.wait(&layer.digest)
        .map_err(|reason| RootfsError::Download {
            index,
            digest: layer.digest.clone(),
            reason,
        })?;
    let reader = source.open(&layer.digest).map_err(|e| RootfsError::Blob {
        digest: layer.digest.clone(),
        what: "layer",
        source: e,
    })?;
    let mut o = opts.clone();
    o.expected_diff_id = Some(layer.diff_id.clone());
    let stats = unpack(reader, &layer.media_type, &dir, &o).map_err(|e| RootfsError::Unpack {
        index,
        digest: layer.digest.clone(),
        diff_id: layer.diff_id.clone(),
        source: Box::new(e),
    })?;
    Ok(stats.uncompressed_bytes)
}

/// Commit `key` as `layer.chain_id`; another process that committed the same chain first is
/// fine (ours is dropped). Returns whether this call committed it.
fn commit(
    snap: &SnapshotStore,
    index: usize,
    key: &str,
    layer: &LayerInfo,
    opts: &Opts,
) -> Result<bool, RootfsError> {
    match snap.commit(layer.chain_id.as_str(), key, opts) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let _ = snap.remove(key);
            Ok(false)
        }
        Err(e) => Err(RootfsError::Snapshot {
            index,
            chain_id: layer.chain_id.clone(),
            source: Box::new(e),
        }),
    }
}

/// One [`ensure_layers`] call: what both strategies need.
struct Run<'a> {
    snap: &'a SnapshotStore,
    source: &'a dyn BlobSource,
    image: &'a ImageLayers,
    /// The first missing layer.
    first: usize,
    opts: &'a EnsureOptions,
    lease: &'a crate::snapshot::Lease,
    gate: &'a dyn LayerGate,
}

fn unpack_sequential(
    run: &Run<'_>,
    committed: &mut Vec<Digest>,
    report: &mut EnsureReport,
) -> Result<(), RootfsError> {
    let (snap, lease) = (run.snap, run.lease);
    let mut uo = run.opts.unpack.clone();
    uo.whiteouts = WhiteoutMode::Apply;
    for (i, layer) in run.image.layers.iter().enumerate().skip(run.first) {
        let parent = i
            .checked_sub(1)
            .map(|p| run.image.layers[p].chain_id.as_str());
        let key = active_key(&layer.chain_id);
        let snap_err = |source| RootfsError::Snapshot {
            index: i,
            chain_id: layer.chain_id.clone(),
            source: Box::new(source),
        };
        let mounts = snap
            .prepare(&key, parent, &Opts::with_lease(lease))
            .map_err(snap_err)?;
        let done = unpack_into(run.source, run.gate, i, layer, &mounts, &uo)
            .and_then(|n| commit(snap, i, &key, layer, &Opts::with_lease(lease)).map(|c| (n, c)));
        match done {
            Ok((n, true)) => {
                report.bytes += n;
                committed.push(layer.chain_id.clone());
            }
            Ok((_, false)) => {}
            Err(e) => {
                let _ = snap.remove(&key);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Layers committed at once by the parallel path (the last batch may be smaller).
const COMMIT_BATCH: usize = 64;

fn unpack_parallel(
    run: &Run<'_>,
    committed: &mut Vec<Digest>,
    report: &mut EnsureReport,
) -> Result<(), RootfsError> {
    let Run {
        snap,
        source,
        image,
        first,
        opts,
        lease,
        gate,
    } = *run;
    let todo = &image.layers[first..];
    if todo.is_empty() {
        return Ok(());
    }
    let mut uo = opts.unpack.clone();
    uo.whiteouts = WhiteoutMode::Overlay;
    // Every missing layer's parent-less active snapshot at once: one metadata write.
    let keys: Vec<String> = todo.iter().map(|l| active_key(&l.chain_id)).collect();
    let mounts = snap
        .prepare_all(&keys, &Opts::with_lease(lease))
        .map_err(|source| RootfsError::Snapshot {
            index: first,
            chain_id: todo[0].chain_id.clone(),
            source: Box::new(source),
        })?;
    let next = AtomicUsize::new(first);
    let stop = AtomicBool::new(false);
    let workers = opts.workers.clamp(1, todo.len());
    let (tx, rx) = mpsc::channel::<(usize, Result<u64, RootfsError>)>();
    let mut failure: Option<RootfsError> = None;
    // Active keys not yet committed (or dropped for another process's commit).
    let mut active: Vec<Option<&str>> = keys.iter().map(|k| Some(k.as_str())).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, stop, uo, mounts) = (&next, &stop, &uo, &mounts);
            s.spawn(move || {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(layer), Some(m)) = (image.layers.get(i), mounts.get(i - first))
                    else {
                        return;
                    };
                    let r = unpack_into(source, gate, i, layer, m, uo);
                    let failed = r.is_err();
                    if tx.send((i, r)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Commit in order, each onto the one below, in batches of at least COMMIT_BATCH
        // contiguous ready layers (or all that remain), each batch one metadata write.
        let mut ready: HashMap<usize, u64> = HashMap::new();
        let mut want = first;
        while let Ok(msg) = rx.recv() {
            for (i, r) in std::iter::once(msg).chain(rx.try_iter()) {
                if failure.is_some() {
                    continue;
                }
                match r {
                    Ok(n) => {
                        ready.insert(i, n);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        failure = Some(e);
                    }
                }
            }
            if failure.is_some() {
                continue;
            }
            // Wait for a whole batch (or the last layers): layers arriving one by one from a
            // download would otherwise make a batch each, one metadata write per layer.
            let run_len = (want..image.layers.len())
                .take_while(|i| ready.contains_key(i))
                .count();
            if run_len < COMMIT_BATCH && want + run_len < image.layers.len() {
                continue;
            }
            let mut batch = Vec::new();
            let mut bytes = Vec::new();
            while let Some(n) = ready.remove(&(want + batch.len())) {
                let i = want + batch.len();
                let mut o = Opts::with_lease(lease);
                if let Some(p) = i.checked_sub(1) {
                    o = o.onto(image.layers[p].chain_id.as_str());
                }
                batch.push(CommitOp {
                    name: image.layers[i].chain_id.to_string(),
                    key: keys[i - first].clone(),
                    opts: o,
                });
                bytes.push(n);
            }
            if batch.is_empty() {
                continue;
            }
            match snap.commit_all(&batch) {
                Ok(made) => {
                    for (k, made) in made.into_iter().enumerate() {
                        let i = want + k;
                        active[i - first] = None;
                        if made {
                            report.bytes += bytes[k];
                            committed.push(image.layers[i].chain_id.clone());
                        } else {
                            // Another process committed this layer first: ours goes.
                            let _ = snap.remove(&keys[i - first]);
                        }
                    }
                    want += batch.len();
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure = Some(RootfsError::Snapshot {
                        index: want,
                        chain_id: image.layers[want].chain_id.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        if failure.is_none() && want != image.layers.len() {
            // A worker ended without reporting (it panicked): scope re-raises panics, but be
            // explicit about the missing layer rather than commit a short chain.
            failure = Some(RootfsError::WorkerPanicked { index: want });
        }
    });
    if let Some(e) = failure {
        // Remove what is still active (committed keys are gone from the active set).
        for k in active.into_iter().flatten() {
            let _ = snap.remove(k);
        }
        return Err(e);
    }
    Ok(())
}

/// An active snapshot `key` for a container over `top` (the image's top chain ID), labelled
/// as referenced by the container so `gc` keeps it and the image's layers.
pub fn prepare(
    snap: &SnapshotStore,
    key: &str,
    top: Option<&Digest>,
) -> Result<Vec<Mount>, RootfsError> {
    let opts = Opts::default().label(container_label(key), "");
    Ok(snap.prepare(key, top.map(Digest::as_str), &opts)?)
}

/// A read-only view `key` of `top` (inspection, `berth save` of a root filesystem).
pub fn view(
    snap: &SnapshotStore,
    key: &str,
    top: Option<&Digest>,
) -> Result<Vec<Mount>, RootfsError> {
    let opts = Opts::default().label(container_label(key), "");
    Ok(snap.view(key, top.map(Digest::as_str), &opts)?)
}

/// Drop image `name`'s reference from every snapshot (after `rmi`): its layers become
/// collectable unless another image or a container references them. Returns how many
/// snapshots were relabelled.
pub fn release_image(snap: &SnapshotStore, name: &str) -> Result<usize, RootfsError> {
    let label = image_label(name);
    let mut n = 0;
    for info in snap.list()? {
        if info.labels.contains_key(&label) {
            let mut changes = BTreeMap::new();
            changes.insert(label.clone(), None);
            snap.update_labels(&info.key, &changes)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Drop the image reference of every image for which `exists(name)` is false (images removed
/// by a process that did not release them); returns the names released.
pub fn release_missing_images(
    snap: &SnapshotStore,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<String>, RootfsError> {
    let prefix = image_label("");
    let mut released = Vec::new();
    for info in snap.list()? {
        let stale: BTreeMap<String, Option<String>> = info
            .labels
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(|n| (k, n)))
            .filter(|(_, n)| !exists(n))
            .map(|(k, n)| {
                released.push(n.to_owned());
                (k.clone(), None)
            })
            .collect();
        if !stale.is_empty() {
            snap.update_labels(&info.key, &stale)?;
        }
    }
    Ok(released)
}

/// One snapshot in [`disk_usage`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotUsage {
    pub key: String,
    pub kind: crate::snapshot::Kind,
    /// Its own files' allocated bytes.
    pub size: u64,
    /// The images and containers that reference it (label names without the prefix).
    pub referenced_by: Vec<String>,
    /// Whether something keeps it: a reference, a `berth.gc.root` label, being an active
    /// snapshot or view, or being an ancestor of one that is kept. The others are what
    /// `berth system prune` (a `gc`) reclaims.
    pub kept: bool,
}

/// Every snapshot with its size and whether a collection would keep it.
pub fn disk_usage(snap: &SnapshotStore) -> Result<Vec<SnapshotUsage>, RootfsError> {
    use crate::snapshot::{Kind, LABEL_GC_ROOT};
    let infos = snap.list()?;
    let parents: HashMap<&str, Option<&str>> = infos
        .iter()
        .map(|i| (i.key.as_str(), i.parent.as_deref()))
        .collect();
    let mut kept: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for i in &infos {
        let root = i.kind != Kind::Committed
            || i.labels
                .keys()
                .any(|k| k == LABEL_GC_ROOT || k.starts_with(LABEL_REF_PREFIX));
        let mut next = root.then_some(i.key.as_str());
        while let Some(k) = next {
            if !kept.insert(k) {
                break;
            }
            next = parents.get(k).copied().flatten();
        }
    }
    let mut out = Vec::with_capacity(infos.len());
    for i in &infos {
        out.push(SnapshotUsage {
            key: i.key.clone(),
            kind: i.kind,
            size: snap.usage(&i.key)?.size,
            referenced_by: i
                .labels
                .keys()
                .filter_map(|k| k.strip_prefix(LABEL_REF_PREFIX).map(str::to_owned))
                .collect(),
            kept: kept.contains(i.key.as_str()),
        });
    }
    Ok(out)
}

/// Whether `driver` unpacks layers in parallel.
pub fn parallel(driver: Driver) -> bool {
    driver.supports_rebase()
}
