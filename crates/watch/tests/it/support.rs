//! Helpers shared by the modules: tar layers, fixtures, hard requirements.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_oci::Digest;
use berth_test_support::{Layer, MEDIA_LAYER_GZIP};
use berth_watch::profile::LayerBlob;

/// One tar entry: a file (content, mode), a directory, or a hardlink.
pub enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

/// An uncompressed tar of `entries`.
pub fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        match e {
            Entry::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
            Entry::Link(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                h.set_mode(0o644);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// `layers` as the blobs a profile reads.
pub fn blobs(layers: &[Layer]) -> impl Iterator<Item = LayerBlob<&[u8]>> {
    layers.iter().map(|l| LayerBlob {
        reader: l.data.as_slice(),
        media_type: MEDIA_LAYER_GZIP.to_owned(),
        diff_id: l.diff_id.clone(),
    })
}

pub fn sha256(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// Write `data` at `path` (parents created) with `mode`.
#[expect(clippy::disallowed_methods, reason = "test fixtures")]
pub fn put(path: &Path, data: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Fail (never skip) unless the test runs as root.
#[track_caller]
pub fn require_root(what: &str) {
    assert!(
        berth_test_support::is_root(),
        "{what} needs root (overlay mounts, containers, cgroups)\nhint: run the tests as root, as scripts/test does in CI"
    );
}

/// Fail (never skip) unless `tool` is on PATH.
#[track_caller]
pub fn require_tool(tool: &str, hint: &str) {
    assert!(
        berth_test_support::tool_available(tool),
        "the tool `{tool}` is not on PATH\nhint: {hint}"
    );
}
