//! `berth load`'s reader on arbitrary bytes as an archive: `ArchiveSource::open` indexes the
//! tar, detects docker-archive or oci-archive, reads `manifest.json` / `index.json`, the
//! configs and their diff IDs, and hashes the layer spans — never panics, and refuses what
//! it cannot use with an error. The archive is written to a fixed file per process.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use berth_transfer::archive::ArchiveSource;
use libfuzzer_sys::fuzz_target;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("berth-fuzz-archive-{}.tar", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).unwrap();
    let Ok(archive) = ArchiveSource::open(path) else { return };
    let _ = archive.select(None);
    for image in archive.images() {
        let _ = image.digest();
        for name in &image.names {
            let _ = archive.select(Some(name));
        }
    }
});
