//! `berth pull --unpack`, `berth image unpack`, `berth rmi`, `berth system df`/`prune`,
//! `berth image prune` and the
//! snapshots under the data directory: layers shared between images are unpacked once, a
//! removed image's snapshots are collected, a used one's are not.

use std::path::Path;
use std::process::Command;

use berth_image::snapshot::{Driver, Kind, SnapshotStore, Snapshotter};
use berth_test_support::{Digest, Layer, OciLayout, Registry, RegistryOptions, image_config};

use super::{Env, host_arch};

/// A gzip tar layer holding `files` (name, content).
pub(super) fn tar_layer(dir: &Path, files: &[(&str, &str)]) -> Layer {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        berth_test_support::write_file(dir.join(name), content.as_bytes());
    }
    let out = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar failed");
    Layer {
        diff_id: Digest::sha256_of(&out.stdout),
        data: berth_test_support::gzip_stored(&out.stdout),
    }
}

/// The committed snapshots' keys.
fn committed(store: &SnapshotStore) -> Vec<String> {
    let all = store.list().unwrap();
    all.into_iter()
        .filter_map(|i| (i.kind == Kind::Committed).then_some(i.key))
        .collect()
}

#[test]
fn pull_unpack_shares_layers_and_prune_collects_released_ones() {
    berth_test_support::requires_root!();
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let base = tar_layer(&env.path("l/base"), &[("etc-release", "base\n")]);
    let app1 = tar_layer(&env.path("l/app1"), &[("app", "one\n")]);
    let app2 = tar_layer(&env.path("l/app2"), &[("app", "two\n")]);
    let mut refs = Vec::new();
    for (name, layers) in [("one", [&base, &app1]), ("two", [&base, &app2])] {
        let dir = env.path(name);
        let mut layout = OciLayout::new(&dir);
        let layers = [layers[0].clone(), layers[1].clone()];
        let desc = layout.image(&layers, &image_config("linux", host_arch(), &layers));
        layout.tag(&desc, "v1");
        let reference = format!("{}/unpack/{name}:v1", registry.host());
        env.berth(&[
            "copy",
            "-q",
            &format!("oci:{}:v1", dir.display()),
            &reference,
        ]);
        refs.push(reference);
    }

    let out = env.try_berth(&["pull", "--unpack", &refs[0]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 layers new, 0 present"), "{err}");
    let out = env.try_berth(&["pull", "--unpack", &refs[1]]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 layers new, 1 present"), "{err}");
    // unpacking again is a no-op that prints the top chain ID
    let top = env.berth(&["image", "unpack", "-q", &refs[1]]);
    assert!(top.trim().starts_with("sha256:"), "{top}");

    let dir = env.path("data/berth/snapshots");
    let driver = Driver::detect(&dir);
    let snaps = SnapshotStore::open(&dir, driver).unwrap();
    assert_eq!(committed(&snaps).len(), 3, "the base layer is shared");

    // a container over image two keeps its layers after `rmi`
    snaps
        .prepare(
            "ctr",
            Some(top.trim()),
            &berth_image::snapshot::Opts::default().label("berth.gc.ref.container/ctr", ""),
        )
        .unwrap();
    let df = env.berth(&["system", "df"]);
    assert!(
        df.contains("(0 snapshots)"),
        "nothing reclaimable yet:\n{df}"
    );
    env.berth(&["rmi", &refs[0]]);
    env.berth(&["rmi", &refs[1]]);
    let df = env.berth(&["system", "df", "-v"]);
    assert!(df.contains("(1 snapshots)"), "image one's top layer:\n{df}");
    let out = env.berth(&["system", "prune", "--grace", "0s"]);
    assert!(out.contains("removed 1 snapshots"), "{out}");
    let left = committed(&snaps);
    assert_eq!(
        left.len(),
        2,
        "image two's chain stays under the container: {left:?}"
    );
    assert!(left.contains(&top.trim().to_owned()));
    snaps.remove("ctr").unwrap();
    let out = env.berth(&["image", "prune", "--grace", "0s"]);
    assert!(out.contains("removed 2 snapshots"), "{out}");
    assert!(snaps.list().unwrap().is_empty());
}
