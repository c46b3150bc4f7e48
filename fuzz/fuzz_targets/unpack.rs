//! `berth_image::unpack` on arbitrary bytes as a layer: never panics, and nothing outside
//! the target directory is created, changed or removed. The first byte picks the whiteout
//! mode (bit 0: apply/overlay) and the compression (bits 1-2: none, gzip, zstd); the rest is
//! the layer. The target and a sentinel directory beside it sit at fixed paths
//! (`$TMPDIR/berth-fuzz-unpack-<pid>/{root,outside}`), so that inputs naming
//! `/tmp/berth-fuzz-unpack-…/outside` absolutely are as reachable as `../outside`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_image::unpack::{
    Compression, DeviceNodes, Limits, UnpackOptions, WhiteoutMode, unpack_stream,
};
use libfuzzer_sys::fuzz_target;

struct Dirs {
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

fn dirs() -> &'static Dirs {
    static DIRS: OnceLock<Dirs> = OnceLock::new();
    DIRS.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("berth-fuzz-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let outside = base.join("outside");
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        std::fs::write(outside.join("secret"), b"original").unwrap();
        std::fs::write(outside.join("dir/child"), b"child").unwrap();
        Dirs { root: base.join("root"), outside, base }
    })
}

/// Names, types, sizes and contents of everything under `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p.clone());
            }
            let content = if md.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
            out.push(format!("{} {:?} {} {:?}", p.display(), md.file_type(), md.len(), content));
        }
    }
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, layer)) = data.split_first() else {
        return;
    };
    let d = dirs();
    let before = listing(&d.outside);
    let _ = std::fs::remove_dir_all(&d.root);
    std::fs::create_dir(&d.root).unwrap();
    let mode = if sel & 1 == 0 { WhiteoutMode::Apply } else { WhiteoutMode::Overlay };
    let compression = match (sel >> 1) % 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        _ => Compression::Zstd,
    };
    let mut opts = UnpackOptions::new(mode);
    opts.devices = DeviceNodes::Skip;
    opts.limits = Limits {
        max_uncompressed_bytes: 64 << 20,
        max_entries: 10_000,
        max_metadata_bytes: 1 << 20,
    };
    let _ = unpack_stream(layer, compression, &d.root, &opts);
    assert_eq!(before, listing(&d.outside), "the unpacker changed something outside its target");
    let mut names: Vec<_> = std::fs::read_dir(&d.base)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["outside", "root"], "the unpacker created or removed a sibling of its target");
});
