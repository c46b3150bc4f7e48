//! The hostile-layer corpus: each layer is refused or contained, and nothing outside the
//! target is written (every test ends with `assert_outside_untouched`).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_image::unpack::{
    Compression, DeviceNodes, Limits, SkipReason, UnpackError, UnpackOptions, WhiteoutMode,
    unpack_stream,
};

use crate::Fixture;
use crate::tarball::{self, CHR, Hdr, REG, Tar};

fn refused(r: Result<berth_image::unpack::UnpackStats, UnpackError>, what: &str) -> String {
    match r {
        Err(e @ UnpackError::Refused { .. }) => e.to_string(),
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn dotdot_name_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"../outside/secret", b"pwned").finish();
    let msg = refused(f.apply(&tar), "../outside/secret");
    assert!(msg.contains("'..'"), "{msg}");
    f.assert_outside_untouched();
}

#[test]
fn dotdot_inside_name_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new()
        .dir(b"a/")
        .file(b"a/../../outside/secret", b"pwned")
        .finish();
    refused(f.apply(&tar), "a/../../outside/secret");
    f.assert_outside_untouched();
}

#[test]
fn absolute_name_is_contained() {
    let f = Fixture::new();
    let name = f.outside_abs("/secret");
    let tar = Tar::new().file(&name, b"pwned").finish();
    f.apply(&tar).unwrap();
    let inside = f
        .root
        .join(f.outside.strip_prefix("/").unwrap())
        .join("secret");
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
    f.assert_outside_untouched();
}

#[test]
fn write_through_absolute_symlink_is_contained() {
    let f = Fixture::new();
    let target = f.outside_abs("");
    let tar = Tar::new()
        .symlink(b"link", &target)
        .file(b"link/secret", b"pwned")
        .finish();
    // Resolved inside the root, `link` names root/<outside>, which does not exist: the
    // unpacker cannot create a directory where the symlink is, and says so.
    let r = f.apply(&tar);
    assert!(matches!(r, Err(UnpackError::Fs { .. })), "{r:?}");
    f.assert_outside_untouched();
}

#[test]
fn write_through_absolute_symlink_lands_inside_when_the_target_exists_there() {
    let f = Fixture::new();
    let target = f.outside_abs("");
    let inside_outside = f
        .outside
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let tar = Tar::new()
        .dir(format!("{inside_outside}/").as_bytes())
        .symlink(b"link", &target)
        .file(b"link/secret", b"pwned")
        .finish();
    f.apply(&tar).unwrap();
    assert_eq!(
        std::fs::read(f.root.join(&inside_outside).join("secret")).unwrap(),
        b"pwned"
    );
    f.assert_outside_untouched();
}

#[test]
fn write_through_relative_symlink_is_contained() {
    let f = Fixture::new();
    let tar = Tar::new()
        .symlink(b"link", b"../outside")
        .file(b"link/secret", b"pwned")
        .finish();
    let r = f.apply(&tar);
    assert!(r.is_err(), "{r:?}");
    f.assert_outside_untouched();
}

#[test]
fn write_through_symlink_chain_is_contained() {
    let f = Fixture::new();
    let tar = Tar::new()
        .dir(b"d/")
        .symlink(b"a", b"d/b")
        .symlink(b"d/b", b"../c")
        .symlink(b"c", b"../../../../outside")
        .file(b"a/secret", b"pwned")
        .finish();
    let r = f.apply(&tar);
    assert!(r.is_err(), "{r:?}");
    f.assert_outside_untouched();
}

#[test]
fn file_replacing_a_symlink_does_not_write_through_it() {
    let f = Fixture::new();
    let target = f.outside_abs("/secret");
    let tar = Tar::new()
        .symlink(b"link", &target)
        .file(b"link", b"pwned")
        .finish();
    f.apply(&tar).unwrap();
    let md = std::fs::symlink_metadata(f.root.join("link")).unwrap();
    assert!(md.is_file());
    assert_eq!(std::fs::read(f.root.join("link")).unwrap(), b"pwned");
    f.assert_outside_untouched();
}

#[test]
fn symlink_replaced_by_a_directory_is_a_real_directory() {
    let f = Fixture::new();
    let target = f.outside_abs("");
    let tar = Tar::new()
        .symlink(b"d", &target)
        .dir(b"d/")
        .file(b"d/secret", b"pwned")
        .finish();
    f.apply(&tar).unwrap();
    assert!(
        std::fs::symlink_metadata(f.root.join("d"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(std::fs::read(f.root.join("d/secret")).unwrap(), b"pwned");
    f.assert_outside_untouched();
}

#[test]
fn entry_under_symlinked_parent_resolves_as_in_the_container() {
    let f = Fixture::new();
    // "etc" -> "/real-etc" means <root>/real-etc inside the container, never the host's.
    let tar = Tar::new()
        .dir(b"real-etc/")
        .symlink(b"etc", b"/real-etc")
        .file(b"etc/passwd", b"root:x:0:0")
        .finish();
    f.apply(&tar).unwrap();
    assert_eq!(
        std::fs::read(f.root.join("real-etc/passwd")).unwrap(),
        b"root:x:0:0"
    );
    f.assert_outside_untouched();
}

#[test]
fn hardlink_to_absolute_outside_path_is_contained() {
    let f = Fixture::new();
    let target = f.outside_abs("/secret");
    let tar = Tar::new().hardlink(b"h", &target).finish();
    refused(f.apply(&tar), "hardlink to an absolute outside path");
    f.assert_outside_untouched();
}

#[test]
fn hardlink_with_dotdot_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new().hardlink(b"h", b"../outside/secret").finish();
    refused(f.apply(&tar), "hardlink ../outside/secret");
    f.assert_outside_untouched();
}

#[test]
fn hardlink_through_symlinked_parent_is_contained() {
    let f = Fixture::new();
    let target = f.outside_abs("");
    let tar = Tar::new()
        .symlink(b"l", &target)
        .hardlink(b"h", b"l/secret")
        .finish();
    assert!(f.apply(&tar).is_err());
    assert!(!f.root.join("h").exists());
    f.assert_outside_untouched();
}

#[test]
fn hardlink_through_relative_symlinked_parent_is_contained() {
    let f = Fixture::new();
    let tar = Tar::new()
        .symlink(b"l", b"../../outside")
        .hardlink(b"h", b"l/secret")
        .finish();
    assert!(f.apply(&tar).is_err());
    f.assert_outside_untouched();
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_not_its_target() {
    let f = Fixture::new();
    let target = f.outside_abs("/secret");
    let tar = Tar::new()
        .symlink(b"s", &target)
        .hardlink(b"h", b"s")
        .finish();
    f.apply(&tar).unwrap();
    let md = std::fs::symlink_metadata(f.root.join("h")).unwrap();
    assert!(md.file_type().is_symlink(), "h must be the symlink itself");
    assert_eq!(md.nlink(), 2);
    f.assert_outside_untouched();
}

#[test]
fn hardlink_to_a_directory_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new().dir(b"d/").hardlink(b"h", b"d").finish();
    refused(f.apply(&tar), "hardlink to a directory");
    f.assert_outside_untouched();
}

#[test]
fn whiteout_of_dotdot_is_refused() {
    for name in [&b".wh..."[..], b"a/.wh...", b".wh..", b".wh."] {
        let f = Fixture::new();
        let tar = Tar::new().dir(b"a/").file(name, b"").finish();
        for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
            let r = f.unpack(&tar, &UnpackOptions::new(mode));
            refused(r, &String::from_utf8_lossy(name));
        }
        f.assert_outside_untouched();
    }
}

#[test]
fn whiteout_with_dotdot_path_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"../outside/.wh.secret", b"").finish();
    refused(f.apply(&tar), "../outside/.wh.secret");
    f.assert_outside_untouched();
}

#[test]
fn whiteout_under_symlinked_parent_is_contained() {
    let f = Fixture::new();
    let target = f.outside_abs("");
    let tar = Tar::new()
        .symlink(b"l", &target)
        .file(b"l/.wh.secret", b"")
        .symlink(b"r", b"../outside")
        .file(b"r/.wh.secret", b"")
        .finish();
    f.apply(&tar).unwrap();
    f.assert_outside_untouched();
}

#[test]
fn opaque_whiteout_under_symlinked_parent_is_contained() {
    let f = Fixture::new();
    let target = f.outside_abs("");
    let tar = Tar::new()
        .symlink(b"l", &target)
        .file(b"l/.wh..wh..opq", b"")
        .symlink(b"r", b"../outside/dir")
        .file(b"r/.wh..wh..opq", b"")
        .finish();
    f.apply(&tar).unwrap();
    f.assert_outside_untouched();
}

#[test]
fn nul_in_pax_path_is_refused() {
    let f = Fixture::new();
    let mut h = Hdr::new(b"placeholder", REG);
    h.pax.push((b"path".to_vec(), b"a\0b".to_vec()));
    let tar = Tar::new().add(h, b"x").finish();
    let msg = refused(f.apply(&tar), "NUL in path");
    assert!(msg.contains("NUL"), "{msg}");
    f.assert_outside_untouched();
}

#[test]
fn nul_in_symlink_target_is_refused() {
    let f = Fixture::new();
    let mut h = Hdr::new(b"s", crate::tarball::SYM);
    h.pax
        .push((b"linkpath".to_vec(), b"/etc\0/passwd".to_vec()));
    let tar = Tar::new().add(h, b"").finish();
    refused(f.apply(&tar), "NUL in linkpath");
    f.assert_outside_untouched();
}

#[test]
fn non_utf8_names_are_unpacked_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    let tar = Tar::new()
        .file(b"caf\xe9", b"latin-1")
        .symlink(b"l\xff", b"caf\xe9")
        .finish();
    f.apply(&tar).unwrap();
    let p = f.root.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    assert_eq!(std::fs::read(&p).unwrap(), b"latin-1");
    let l = f.root.join(std::ffi::OsStr::from_bytes(b"l\xff"));
    assert_eq!(
        std::fs::read_link(l).unwrap().as_os_str().as_bytes(),
        b"caf\xe9"
    );
    f.assert_outside_untouched();
}

#[test]
fn device_nodes_are_skipped_and_reported_when_rootless() {
    let f = Fixture::new();
    let mut h = Hdr::new(b"dev/mem", CHR);
    h.dev = (1, 1);
    let mut b = Hdr::new(b"dev/sda", crate::tarball::BLK);
    b.dev = (8, 0);
    let tar = Tar::new().add(h, b"").add(b, b"").finish();
    let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
    opts.devices = DeviceNodes::Skip;
    let stats = f.unpack(&tar, &opts).unwrap();
    assert!(!f.root.join("dev/mem").exists());
    assert!(!f.root.join("dev/sda").exists());
    let skipped: Vec<_> = stats
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), &s.reason))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                "dev/mem",
                &SkipReason::Device {
                    kind: 'c',
                    major: 1,
                    minor: 1
                }
            ),
            (
                "dev/sda",
                &SkipReason::Device {
                    kind: 'b',
                    major: 8,
                    minor: 0
                }
            )
        ]
    );
    f.assert_outside_untouched();
}

#[test]
fn bomb_uncompressed_size_limit() {
    let f = Fixture::new();
    let big = vec![0u8; 8 << 20];
    let tar = Tar::new().file(b"zeros", &big).finish();
    let gz = tarball::gzip(&tar);
    assert!(
        gz.len() * 50 < tar.len(),
        "a bomb: {} compressed bytes",
        gz.len()
    );
    let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
    opts.limits = Limits {
        max_uncompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = unpack_stream(&gz[..], Compression::Gzip, &f.root, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, UnpackError::Limit { limit: "max_uncompressed_bytes", value } if value == 1 << 20),
        "{msg}"
    );
    assert!(
        msg.contains("limits.max_uncompressed_bytes"),
        "the error says how to raise it: {msg}"
    );
    let written = std::fs::metadata(f.root.join("zeros"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written <= 1 << 20, "wrote {written} bytes past the limit");
    f.assert_outside_untouched();
}

#[test]
fn bomb_entry_count_limit() {
    let f = Fixture::new();
    let mut t = Tar::new();
    for i in 0..200 {
        t.file(format!("f{i}").as_bytes(), b"");
    }
    let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
    opts.limits.max_entries = 100;
    let err = f.unpack(&t.finish(), &opts).unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::Limit {
                limit: "max_entries",
                value: 100
            }
        ),
        "{err:?}"
    );
    assert!(!f.root.join("f100").exists());
    f.assert_outside_untouched();
}

#[test]
fn bomb_long_name_metadata_limit() {
    let f = Fixture::new();
    // A GNU long name of 32 MiB: compresses to almost nothing, would be held in memory.
    let name = vec![b'a'; 32 << 20];
    let tar = Tar::new().gnu_longname(&name).file(b"x", b"").finish();
    let gz = tarball::gzip(&tar);
    let err = unpack_stream(
        &gz[..],
        Compression::Gzip,
        &f.root,
        &UnpackOptions::new(WhiteoutMode::Apply),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::Limit {
                limit: "max_metadata_bytes",
                ..
            }
        ),
        "{err:?}"
    );
    f.assert_outside_untouched();
}

#[test]
fn tar_ending_inside_a_file_is_an_error() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"a", &[7u8; 5000]).finish();
    let cut = &tar[..512 + 3000];
    let err = f.apply(cut).unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::Truncated {
                expected: 5000,
                actual: 3000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("discard"), "{err}");
    f.assert_outside_untouched();
}

#[test]
fn tar_ending_inside_a_header_is_an_error() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"a", b"1").file(b"b", b"2").finish();
    let err = f.apply(&tar[..1024 + 100]).unwrap_err();
    assert!(matches!(err, UnpackError::Read { .. }), "{err:?}");
    f.assert_outside_untouched();
}

#[test]
fn corrupt_and_truncated_gzip_are_errors() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"a", &[1u8; 100_000]).finish();
    let gz = tarball::gzip(&tar);
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    corrupt[mid + 1] ^= 0xff;
    let opts = UnpackOptions::new(WhiteoutMode::Apply);
    let e1 = unpack_stream(&corrupt[..], Compression::Gzip, &f.root, &opts).unwrap_err();
    assert!(
        matches!(e1, UnpackError::Read { .. } | UnpackError::Truncated { .. }),
        "{e1:?}"
    );
    let cut = &gz[..gz.len() - 20];
    let e2 = unpack_stream(cut, Compression::Gzip, &f.root, &opts).unwrap_err();
    assert!(matches!(e2, UnpackError::Read { .. }), "{e2:?}");
    let zs = tarball::zstd(&tar);
    let e3 = unpack_stream(&zs[..zs.len() - 10], Compression::Zstd, &f.root, &opts).unwrap_err();
    assert!(matches!(e3, UnpackError::Read { .. }), "{e3:?}");
    f.assert_outside_untouched();
}

#[test]
fn diff_id_mismatch_is_an_error() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"a", b"content").finish();
    let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
    opts.expected_diff_id = Some(berth_test_support::sha256(b"another layer"));
    let err = f.unpack(&tar, &opts).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err:?}");
    opts.expected_diff_id = Some(berth_test_support::sha256(&tar));
    f.unpack(&tar, &opts).unwrap();
}

#[test]
fn overlay_xattrs_from_the_layer_are_not_applied() {
    let f = Fixture::new();
    let mut h = Hdr::new(b"d/", crate::tarball::DIR);
    h.pax.push((
        b"SCHILY.xattr.trusted.overlay.opaque".to_vec(),
        b"y".to_vec(),
    ));
    h.pax.push((
        b"SCHILY.xattr.trusted.overlay.redirect".to_vec(),
        b"/etc".to_vec(),
    ));
    let tar = Tar::new().add(h, b"").finish();
    let stats = f
        .unpack(&tar, &UnpackOptions::new(WhiteoutMode::Overlay))
        .unwrap();
    assert_eq!(
        stats
            .skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::ReservedXattr { .. }))
            .count(),
        2
    );
    let got = crate::features::getxattr(&f.root.join("d"), "trusted.overlay.opaque");
    assert_eq!(
        got, None,
        "a layer must not make its own directories opaque"
    );
    f.assert_outside_untouched();
}

#[test]
fn non_directory_root_entry_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new().symlink(b"./", b"/").finish();
    refused(f.apply(&tar), "a symlink named ./");
    f.assert_outside_untouched();
}

#[test]
fn overlong_name_is_refused() {
    let f = Fixture::new();
    let name = vec![b'n'; 5000];
    let tar = Tar::new().gnu_longname(&name).file(b"x", b"").finish();
    refused(f.apply(&tar), "a 5000-byte name");
    f.assert_outside_untouched();
}

#[test]
fn device_node_in_layer_is_only_created_inside() {
    // As root: the node is created (mknod permitted), inside the root only.
    let f = Fixture::new();
    let mut h = Hdr::new(b"../outside/null", CHR);
    h.dev = (1, 3);
    let tar = Tar::new().add(h, b"").finish();
    refused(f.apply(&tar), "../outside/null");
    let mut h = Hdr::new(b"dev/null", CHR);
    h.dev = (1, 3);
    let tar = Tar::new().add(h, b"").finish();
    f.apply(&tar).unwrap();
    let md = std::fs::symlink_metadata(f.root.join("dev/null")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
    f.assert_outside_untouched();
}

/// A reader that yields `n` bytes of garbage then fails: never panics, never escapes.
#[test]
fn garbage_streams_are_errors() {
    let f = Fixture::new();
    let mut rng = berth_test_support::XorShift::new(7);
    for _ in 0..50 {
        let mut data = vec![0u8; 4096];
        rng.fill(&mut data);
        let _ = f.apply(&data);
        let mut w = Vec::new();
        w.write_all(&data).unwrap();
        let _ = unpack_stream(
            &w[..],
            Compression::Gzip,
            &f.root,
            &UnpackOptions::new(WhiteoutMode::Overlay),
        );
    }
    f.assert_outside_untouched();
}

#[test]
fn tar_cut_between_entries_is_caught_by_the_diff_id() {
    let f = Fixture::new();
    let tar = Tar::new().file(b"a", b"1").file(b"b", b"2").finish();
    let cut = &tar[..1024]; // entry "a" whole, no end-of-archive blocks
    let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
    opts.expected_diff_id = Some(berth_test_support::sha256(&tar));
    let err = f.unpack(cut, &opts).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("discard"), "{err}");
    f.assert_outside_untouched();
}
