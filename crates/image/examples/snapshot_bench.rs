//! Time the snapshotter's bookkeeping for a chain of small layers (root, by hand):
//! `cargo run --release -p berth-image --example snapshot_bench -- /var/tmp/x 200`.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a by-hand benchmark"
)]

use berth_image::snapshot::{Driver, Opts, SnapshotStore, Snapshotter, writable_dir};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root =
        std::path::PathBuf::from(args.get(1).cloned().unwrap_or("/var/tmp/snap-bench".into()));
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let _ = std::fs::remove_dir_all(&root);
    let s = SnapshotStore::open(&root, Driver::Overlay).unwrap();
    let t = Instant::now();
    let mut parent: Option<String> = None;
    for i in 0..n {
        let key = format!("extract-{i}");
        let m = s
            .prepare(&key, parent.as_deref(), &Opts::default())
            .unwrap();
        berth_fsutil::atomic_write(writable_dir(&m).unwrap().join("f"), b"x").unwrap();
        let name = format!("layer-{i}");
        s.commit(&name, &key, &Opts::default()).unwrap();
        parent = Some(name);
    }
    let el = t.elapsed();
    println!("{n} layers: {el:?} ({:?} per layer)", el / n as u32);
    let _ = std::fs::remove_dir_all(&root);
}
