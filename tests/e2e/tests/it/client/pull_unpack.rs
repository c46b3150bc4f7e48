//! `berth pull --unpack` unpacks each layer while the others download: the snapshots equal
//! those of `berth pull` then `berth image unpack`, and a pull that fails (a blob missing or
//! corrupt at the registry, a layer that does not match its diff ID) leaves no snapshot.

use std::collections::BTreeMap;

use berth_image::snapshot::{Driver, Kind, SnapshotStore, Snapshotter};
use berth_test_support::{
    Break, BrokenRegistry, Layer, Matcher, Node, OciLayout, Registry, RegistryOptions,
    image_config, tree,
};

use super::unpack::tar_layer;
use super::{Env, host_arch};

/// Five layers, the later ones deleting the earlier ones' files.
fn layers(env: &Env) -> Vec<Layer> {
    let mut out = vec![tar_layer(
        &env.path("l/0"),
        &[("etc-release", "base\n"), ("f0", "0\n")],
    )];
    for i in 1..5 {
        let prev = format!(".wh.f{}", i - 1);
        let name = format!("f{i}");
        let content = format!("{i}\n");
        out.push(tar_layer(
            &env.path(&format!("l/{i}")),
            &[(prev.as_str(), ""), (name.as_str(), content.as_str())],
        ));
    }
    out
}

/// Push `layers` (with `config`, default the real diff IDs) to `host` as `repo:v1`.
fn push(
    env: &Env,
    host: &str,
    repo: &str,
    layers: &[Layer],
    config: Option<serde_json::Value>,
) -> String {
    let dir = env.path(&format!("layout-{repo}"));
    let mut layout = OciLayout::new(&dir);
    let config = config.unwrap_or_else(|| image_config("linux", host_arch(), layers));
    let desc = layout.image(layers, &config);
    layout.tag(&desc, "v1");
    let reference = format!("{host}/{repo}:v1");
    env.berth(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", dir.display()),
        &reference,
    ]);
    reference
}

fn snapshots(env: &Env) -> SnapshotStore {
    let dir = env.path("data/berth/snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    SnapshotStore::open(&dir, Driver::detect(&dir)).unwrap()
}

/// Every snapshot: kind, parent, labels and its own tree.
type Snaps = BTreeMap<String, (Kind, Option<String>, Vec<String>, BTreeMap<Vec<u8>, Node>)>;

fn contents(s: &SnapshotStore) -> Snaps {
    s.list()
        .unwrap()
        .into_iter()
        .map(|i| {
            let fs = s.dir_of(&i.key).unwrap().join("fs");
            let labels = i.labels.into_keys().collect();
            (i.key, (i.kind, i.parent, labels, tree(&fs)))
        })
        .collect()
}

/// Nothing recorded, no snapshot directory, nothing temporary left.
fn assert_no_snapshots(env: &Env) {
    let s = snapshots(env);
    assert!(s.list().unwrap().is_empty(), "{:?}", s.list());
    for sub in ["snapshots", "tmp"] {
        let n = std::fs::read_dir(s.root().join(sub)).unwrap().count();
        assert_eq!(n, 0, "{sub}/ is not empty");
    }
}

#[test]
fn pull_unpack_while_downloading_equals_pull_then_unpack() {
    berth_test_support::requires_root!();
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let layers = layers(&env);
    let reference = push(&env, &registry.host(), "stream/equal", &layers, None);

    let streamed = Env::new();
    let out = streamed.try_berth(&["pull", "--unpack", &reference]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("while pulling: 5 layers new, 0 present"),
        "{err}"
    );

    let sequential = Env::new();
    sequential.berth(&["pull", "-q", &reference]);
    sequential.berth(&["image", "unpack", "-q", &reference]);

    let a = contents(&snapshots(&streamed));
    let b = contents(&snapshots(&sequential));
    assert_eq!(a.len(), 5);
    assert!(a.values().all(|v| v.0 == Kind::Committed));
    assert_eq!(a, b, "pull --unpack and pull + image unpack differ");
    // The same image either way: a second unpack finds every layer present.
    let top = streamed.berth(&["image", "unpack", "-q", &reference]);
    assert_eq!(
        top.trim(),
        b.keys()
            .find(|k| { b.values().all(|v| v.1.as_deref() != Some(k.as_str())) })
            .unwrap()
    );
}

#[test]
fn pull_unpack_that_fails_to_download_a_layer_leaves_no_snapshot() {
    berth_test_support::requires_root!();
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let layers = layers(&env);
    let reference = push(&env, &registry.host(), "stream/broken", &layers, None);
    let last = layers[4].digest();
    let hex = last.hex();
    for brk in [
        // the top layer is missing at the registry
        Break::Status {
            matcher: Matcher::new("GET blobs").path_contains(hex),
            from: 200,
            to: 404,
        },
        // the top layer arrives corrupt (its digest does not match)
        Break::CorruptBody {
            matcher: Matcher::new("GET blobs").path_contains(hex),
        },
    ] {
        let what = format!("{brk:?}");
        let proxy = BrokenRegistry::start(registry.addr(), brk);
        let via = reference.replacen(&registry.host(), &proxy.host(), 1);
        let fresh = Env::new();
        let out = fresh.try_berth(&["pull", "--unpack", &via]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: the pull succeeded:\n{err}");
        assert!(
            err.contains(&last.to_string()) || err.contains(hex),
            "{what}: {err}"
        );
        assert_no_snapshots(&fresh);
        let images = fresh.berth(&["images"]);
        assert!(!images.contains("stream/broken"), "{what}: {images}");
    }
}

#[test]
fn pull_unpack_of_a_layer_that_does_not_match_its_diff_id_leaves_no_snapshot() {
    berth_test_support::requires_root!();
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let layers = layers(&env);
    let mut lying = layers.clone();
    lying[2].diff_id = layers[3].diff_id.clone();
    let config = image_config("linux", host_arch(), &lying);
    let reference = push(
        &env,
        &registry.host(),
        "stream/lying",
        &layers,
        Some(config),
    );
    let fresh = Env::new();
    let out = fresh.try_berth(&["pull", "--unpack", &reference]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("failed to unpack image"), "{err}");
    assert!(err.contains(&layers[2].digest().to_string()), "{err}");
    assert_no_snapshots(&fresh);
}
