//! Unpacking while downloading (`berth_image::rootfs::ensure_layers_gated`): layers are
//! unpacked and committed as their blobs arrive, in any order of arrival, with the same
//! result as unpacking a complete image; a pull that fails midway leaves nothing committed.

use std::time::Duration;

use berth_image::rootfs::{
    Arrivals, EnsureOptions, ImageLayers, RootfsError, ensure_layers, ensure_layers_gated, resolve,
};
use berth_image::snapshot::{Driver, ErrorKind, Kind, SnapshotStore, Snapshotter};
use berth_test_support::wait_until;

use crate::rootfs::{
    amd64, assert_same, committed, container_tree, layers_of, layout_with, small_layers,
};
use crate::snapshot::helpers::{Scratch, require_root};

fn opts() -> EnsureOptions {
    EnsureOptions {
        workers: 2,
        image_name: Some("test/stream:1".to_owned()),
        ..EnsureOptions::default()
    }
}

/// Whether layer `chain`'s active snapshot (`unpack/<chain hex>/…`) has been unpacked into:
/// its tree is not empty. (Layers are committed in batches, so unpacked is what shows first.)
fn is_unpacked(snap: &SnapshotStore, chain: &berth_oci::Digest) -> bool {
    let prefix = format!("unpack/{}/", chain.hex());
    snap.list().unwrap().iter().any(|i| {
        i.kind == Kind::Active
            && i.key.starts_with(&prefix)
            && std::fs::read_dir(snap.dir_of(&i.key).unwrap().join("fs"))
                .is_ok_and(|mut d| d.next().is_some())
    })
}

/// The test image in an OCI layout under `s`, resolved.
fn image_in(s: &Scratch) -> (berth_store::OciLayout, ImageLayers) {
    let layers = layers_of(&small_layers(6));
    let (src, digest) = layout_with(&s.path().join("layout"), &layers, None);
    let image = resolve(&src, &digest, &amd64()).unwrap();
    (src, image)
}

#[test]
fn layers_are_unpacked_as_their_blobs_arrive_and_equal_a_complete_unpack() {
    if !require_root() {
        return;
    }
    let s = Scratch::new();
    let (src, image) = image_in(&s);
    let n = image.layers.len();
    let streamed = s.store(Driver::Overlay);
    let arrivals = Arrivals::new();
    let report = std::thread::scope(|sc| {
        let h = sc.spawn(|| ensure_layers_gated(&streamed, &src, &image, &opts(), &arrivals));
        // The bottom layer arrives first: it is unpacked while the others are still
        // "downloading" (on timeout the gate fails, so the unpack thread ends too).
        arrivals.ready(&image.layers[0].digest);
        let early = wait_until(Duration::from_secs(30), || {
            is_unpacked(&streamed, &image.layers[0].chain_id)
        });
        if !early {
            arrivals.fail("the test gave up");
        }
        assert!(
            early,
            "layer 0 was not unpacked while the rest were missing"
        );
        assert!(!is_unpacked(&streamed, &image.layers[1].chain_id));
        assert_eq!(
            streamed
                .stat(image.layers[0].chain_id.as_str())
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound,
            "nothing is committed before its batch is complete"
        );
        // The rest arrive top first: each waits for the ones below before its commit.
        for l in image.layers[1..].iter().rev() {
            arrivals.ready(&l.digest);
        }
        arrivals.finish();
        h.join().unwrap().unwrap()
    });
    assert_eq!(report.unpacked.len(), n);
    let whole = SnapshotStore::open(s.path().join("whole"), Driver::Overlay).unwrap();
    ensure_layers(&whole, &src, &image, &opts()).unwrap();
    assert_eq!(committed(&streamed), committed(&whole));
    let a = container_tree(&s, &streamed, &image, "streamed");
    let b = container_tree(&s, &whole, &image, "whole");
    assert_same("unpacked while arriving", &a, "unpacked complete", &b);
    assert!(a.contains_key(&b"layer5.txt"[..]) && !a.contains_key(&b"layer4.txt"[..]));
}

#[test]
fn a_pull_that_fails_midway_leaves_nothing_committed() {
    if !require_root() {
        return;
    }
    let s = Scratch::new();
    let (src, image) = image_in(&s);
    let snap = s.store(Driver::Overlay);
    let arrivals = Arrivals::new();
    let err = std::thread::scope(|sc| {
        let h = sc.spawn(|| ensure_layers_gated(&snap, &src, &image, &opts(), &arrivals));
        arrivals.ready(&image.layers[0].digest);
        arrivals.ready(&image.layers[1].digest);
        let early = wait_until(Duration::from_secs(30), || {
            is_unpacked(&snap, &image.layers[1].chain_id)
        });
        arrivals.fail("the download of layer 2 failed");
        assert!(early, "the layers that arrived were not unpacked");
        h.join().unwrap().unwrap_err()
    });
    assert!(
        matches!(&err, RootfsError::Download { index, reason, .. }
            if *index >= 2 && reason.contains("layer 2 failed")),
        "{err:?}"
    );
    assert!(snap.list().unwrap().is_empty(), "{:?}", snap.list());
    let dirs = std::fs::read_dir(snap.root().join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(dirs, 0, "no snapshot directory is left");
    // A pull that ends without a blob (not in the image it reported) fails the same way.
    let arrivals = Arrivals::new();
    arrivals.finish();
    let err = ensure_layers_gated(&snap, &src, &image, &opts(), &arrivals).unwrap_err();
    assert!(matches!(err, RootfsError::Download { .. }), "{err:?}");
    assert!(snap.list().unwrap().is_empty());
}
