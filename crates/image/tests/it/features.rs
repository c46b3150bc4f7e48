//! Everything real layers hold, both whiteout modes, the compressions, id maps.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_image::unpack::{
    Compression, IdMap, OpaqueXattr, Ownership, UnpackError, UnpackOptions, WhiteoutMode, unpack,
    unpack_stream,
};

use crate::Fixture;
use crate::tarball::{self, BLK, CHR, DIR, FIFO, Hdr, REG, SYM, Tar};

pub fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// An overlayfs mount (read-only, `lowerdir` = `lowers`, top first), unmounted on drop
/// (panics included) so the temporary directory can go.
pub struct OverlayMount(pub std::path::PathBuf);

impl OverlayMount {
    pub fn new(target: &Path, lowers: &[&Path]) -> OverlayMount {
        let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let data = std::ffi::CString::new(format!("lowerdir={}", lowerdir.join(":"))).unwrap();
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            Some(data.as_c_str()),
        )
        .unwrap_or_else(|e| panic!("failed to mount overlayfs on {}: {e}", target.display()));
        OverlayMount(target.to_owned())
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// `security.capability` for cap_net_bind_service+ep (VFS_CAP_REVISION_2).
const CAP_NET_BIND_SERVICE: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn md(root: &Path, p: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn every_entry_kind_with_owners_modes_mtimes_xattrs() {
    berth_test_support::requires_root!();
    let f = Fixture::new();
    let long_dir = "d".repeat(120);
    let long_name = format!("{long_dir}/{}", "f".repeat(150));
    let gnu_long = format!("{long_dir}/{}", "g".repeat(200));
    let long_target = format!("/{}", "t".repeat(300));
    let mut t = Tar::new();
    let mut d = Hdr::new(b"bin/", DIR);
    d.mtime = 1_000_000;
    t.add(d, b"");
    let mut suid = Hdr::new(b"bin/su", REG);
    (suid.mode, suid.uid, suid.gid) = (0o4755, 1000, 1000);
    t.add(suid, b"#!/bin/true\n");
    let mut sgid = Hdr::new(b"bin/wall", REG);
    (sgid.mode, sgid.uid, sgid.gid) = (0o2755, 0, 5);
    t.add(sgid, b"wall");
    let mut tmp = Hdr::new(b"tmp/", DIR);
    tmp.mode = 0o1777;
    tmp.mtime = 2_000_000;
    t.add(tmp, b"");
    t.file(b"tmp/child", b"makes tmp's mtime change, unless set after");
    let mut cap = Hdr::new(b"bin/ping", REG);
    cap.mode = 0o755;
    cap.uid = 1000;
    cap.pax.push((
        b"SCHILY.xattr.security.capability".to_vec(),
        CAP_NET_BIND_SERVICE.to_vec(),
    ));
    cap.pax
        .push((b"SCHILY.xattr.user.note".to_vec(), b"hello".to_vec()));
    cap.pax.push((b"mtime".to_vec(), b"1700000000.25".to_vec()));
    t.add(cap, b"ping");
    t.hardlink(b"bin/ping-hl", b"bin/ping");
    let mut s = Hdr::new(b"bin/sh", SYM);
    s.link = b"busybox";
    s.uid = 7;
    t.add(s, b"");
    let mut fifo = Hdr::new(b"run/fifo", FIFO);
    fifo.mode = 0o620;
    t.add(fifo, b"");
    let mut null = Hdr::new(b"dev/null", CHR);
    (null.dev, null.mode) = ((1, 3), 0o666);
    t.add(null, b"");
    let mut loop0 = Hdr::new(b"dev/loop0", BLK);
    (loop0.dev, loop0.mode, loop0.gid) = ((7, 0), 0o660, 6);
    t.add(loop0, b"");
    let mut pl = Hdr::new(b"placeholder", REG);
    pl.pax
        .push((b"path".to_vec(), long_name.clone().into_bytes()));
    t.add(pl, b"pax long name");
    t.gnu_longname(gnu_long.as_bytes())
        .file(b"ignored", b"gnu long name");
    let mut ll = Hdr::new(b"longlink", SYM);
    ll.pax
        .push((b"linkpath".to_vec(), long_target.clone().into_bytes()));
    t.add(ll, b"");
    let tar = t.finish();

    let stats = f.apply(&tar).unwrap();
    assert_eq!(stats.entries, 14);
    assert_eq!(stats.diff_id, berth_test_support::sha256(&tar));
    assert_eq!(stats.uncompressed_bytes, tar.len() as u64);
    let r = &f.root;

    let su = md(r, "bin/su");
    assert_eq!(
        (su.mode() & 0o7777, su.uid(), su.gid()),
        (0o4755, 1000, 1000)
    );
    let wall = md(r, "bin/wall");
    assert_eq!((wall.mode() & 0o7777, wall.gid()), (0o2755, 5));
    let tmp = md(r, "tmp");
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(
        tmp.mtime(),
        2_000_000,
        "directory mtimes are set after their children"
    );
    assert_eq!(md(r, "bin").mtime(), 1_000_000);
    let ping = md(r, "bin/ping");
    assert_eq!((ping.uid(), ping.mode() & 0o7777), (1000, 0o755));
    assert_eq!(
        (ping.mtime(), ping.mtime_nsec()),
        (1_700_000_000, 250_000_000)
    );
    assert_eq!(
        getxattr(&r.join("bin/ping"), "security.capability").as_deref(),
        Some(&CAP_NET_BIND_SERVICE[..]),
        "file capabilities survive the chown"
    );
    assert_eq!(
        getxattr(&r.join("bin/ping"), "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    let hl = md(r, "bin/ping-hl");
    assert_eq!((hl.ino(), hl.nlink()), (ping.ino(), 2));
    let sh = md(r, "bin/sh");
    assert!(sh.file_type().is_symlink());
    assert_eq!(sh.uid(), 7);
    assert_eq!(
        std::fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let fifo = md(r, "run/fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    let null = md(r, "dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    let lp = md(r, "dev/loop0");
    assert!(lp.file_type().is_block_device());
    assert_eq!((lp.rdev(), lp.gid()), (rustix::fs::makedev(7, 0), 6));
    assert_eq!(std::fs::read(r.join(&long_name)).unwrap(), b"pax long name");
    assert_eq!(std::fs::read(r.join(&gnu_long)).unwrap(), b"gnu long name");
    assert_eq!(
        std::fs::read_link(r.join("longlink")).unwrap(),
        Path::new(&long_target)
    );
    // implicitly created parents: root-owned 0755
    let run = md(r, "run");
    assert_eq!((run.mode() & 0o7777, run.uid()), (0o755, 0));
    f.assert_outside_untouched();
}

#[test]
fn gnu_sparse_files_keep_their_holes() {
    berth_test_support::requires_tool!("tar");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let sparse = src.join("sparse");
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&sparse)
        .unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(b"head", 0).unwrap();
    file.write_all_at(b"middle", 64 << 20).unwrap();
    file.set_len(256 << 20).unwrap();
    drop(file);
    let tar_path = tmp.path().join("layer.tar");
    let st = Command::new("tar")
        .args(["--format=gnu", "--sparse", "-cf"])
        .arg(&tar_path)
        .arg("-C")
        .arg(&src)
        .arg("sparse")
        .status()
        .unwrap();
    assert!(st.success());
    let tar = std::fs::read(&tar_path).unwrap();
    assert!(
        tar.len() < 1 << 20,
        "GNU tar wrote a sparse entry ({} bytes)",
        tar.len()
    );
    let f = Fixture::new();
    f.apply(&tar).unwrap();
    let out = f.root.join("sparse");
    let m = std::fs::metadata(&out).unwrap();
    assert_eq!(m.len(), 256 << 20);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "holes kept: {} blocks",
        m.blocks()
    );
    let data = std::fs::read(&out).unwrap();
    assert_eq!(&data[..4], b"head");
    assert_eq!(&data[64 << 20..(64 << 20) + 6], b"middle");
    assert!(data[4..64 << 20].iter().all(|b| *b == 0));
}

#[test]
fn overlay_mode_makes_overlayfs_whiteouts() {
    berth_test_support::requires_root!();
    let f = Fixture::new();
    let tar = Tar::new()
        .dir(b"etc/")
        .file(b"etc/.wh.gone", b"")
        .file(b"opaque/.wh..wh..opq", b"")
        .file(b"opaque/kept", b"new")
        .file(b".wh..wh.plnk", b"")
        .finish();
    let stats = f
        .unpack(&tar, &UnpackOptions::new(WhiteoutMode::Overlay))
        .unwrap();
    assert_eq!(stats.whiteouts, 3);
    let wh = md(&f.root, "etc/gone");
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!f.root.join("etc/.wh.gone").exists());
    assert_eq!(
        getxattr(&f.root.join("opaque"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!f.root.join("opaque/.wh..wh..opq").exists());
    assert_eq!(std::fs::read(f.root.join("opaque/kept")).unwrap(), b"new");

    // the user.* variant, for overlayfs mounted with userxattr
    let g = Fixture::new();
    let mut opts = UnpackOptions::new(WhiteoutMode::Overlay);
    opts.opaque_xattr = OpaqueXattr::User;
    g.unpack(&tar, &opts).unwrap();
    assert_eq!(
        getxattr(&g.root.join("opaque"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn overlay_lower_mounts_and_hides_what_it_whites_out() {
    berth_test_support::requires_root!();
    let f = Fixture::new();
    let lower1 = f.root.join("l1");
    let lower2 = f.root.join("l2");
    let merged = f.root.join("merged");
    for d in [&lower1, &lower2, &merged] {
        std::fs::create_dir(d).unwrap();
    }
    let l1 = Tar::new().file(b"a", b"a").file(b"o/old", b"old").finish();
    let l2 = Tar::new()
        .file(b".wh.a", b"")
        .file(b"o/.wh..wh..opq", b"")
        .file(b"o/new", b"new")
        .finish();
    let opts = UnpackOptions::new(WhiteoutMode::Overlay);
    unpack_stream(&l1[..], Compression::None, &lower1, &opts).unwrap();
    unpack_stream(&l2[..], Compression::None, &lower2, &opts).unwrap();
    let mount = OverlayMount::new(&merged, &[&lower2, &lower1]);
    let names = |p: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let top = names(&merged);
    let o = names(&merged.join("o"));
    drop(mount);
    assert_eq!(top, vec!["o"]);
    assert_eq!(o, vec!["new"]);
}

#[test]
fn apply_mode_deletes_and_clears_opaque_directories() {
    let f = Fixture::new();
    let l1 = Tar::new()
        .file(b"a", b"a")
        .file(b"d/x", b"x")
        .file(b"d/y", b"y")
        .file(b"o/old", b"old")
        .file(b"o/sub/old", b"old")
        .file(b"p/old", b"old")
        .finish();
    // o: opaque marker first (as docker writes it); p: after a new entry of the same layer
    let l2 = Tar::new()
        .file(b".wh.a", b"")
        .file(b"d/.wh.x", b"")
        .file(b"o/.wh..wh..opq", b"")
        .file(b"o/new", b"new")
        .file(b"p/new", b"new")
        .file(b"p/sub/new", b"new")
        .file(b"p/.wh..wh..opq", b"")
        .file(b"p/.wh.new", b"") // hides only lower layers' p/new: this layer's stays
        .file(b".wh.nothing-there", b"")
        .finish();
    f.apply(&l1).unwrap();
    let stats = f.apply(&l2).unwrap();
    assert_eq!(stats.whiteouts, 6);
    let list = |p: &str| {
        let mut v: Vec<_> = std::fs::read_dir(f.root.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(""), vec!["d", "o", "p"]);
    assert_eq!(list("d"), vec!["y"]);
    assert_eq!(list("o"), vec!["new"]);
    assert_eq!(list("p"), vec!["new", "sub"]);
    assert_eq!(list("p/sub"), vec!["new"]);
}

#[test]
fn apply_mode_replaces_across_types() {
    let f = Fixture::new();
    let l1 = Tar::new()
        .file(b"dir-to-file/x", b"x")
        .file(b"file-to-dir", b"f")
        .symlink(b"link-to-file", b"/etc")
        .finish();
    let l2 = Tar::new()
        .file(b"dir-to-file", b"now a file")
        .dir(b"file-to-dir/")
        .file(b"link-to-file", b"now a file")
        .finish();
    f.apply(&l1).unwrap();
    f.apply(&l2).unwrap();
    assert!(md(&f.root, "dir-to-file").is_file());
    assert!(md(&f.root, "file-to-dir").is_dir());
    assert!(md(&f.root, "link-to-file").is_file());
}

#[test]
fn compressions_and_media_types_give_one_diff_id() {
    let tar = Tar::new()
        .file(b"a", b"aaa")
        .dir(b"b/")
        .symlink(b"c", b"a")
        .finish();
    let want = berth_test_support::sha256(&tar);
    for (mt, blob) in [
        ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            tarball::gzip(&tar),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            tarball::zstd(&tar),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            tarball::zstd(&tar),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            tarball::gzip(&tar),
        ),
    ] {
        let f = Fixture::new();
        let stats = unpack(
            &blob[..],
            mt,
            &f.root,
            &UnpackOptions::new(WhiteoutMode::Apply),
        )
        .unwrap_or_else(|e| panic!("{mt}: {e}"));
        assert_eq!(stats.diff_id, want, "{mt}");
        assert_eq!(stats.entries, 3);
        assert_eq!(std::fs::read(f.root.join("a")).unwrap(), b"aaa");
    }
    let f = Fixture::new();
    for mt in [
        "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ] {
        let err = unpack(
            &tar[..],
            mt,
            &f.root,
            &UnpackOptions::new(WhiteoutMode::Apply),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                UnpackError::Encrypted { .. } | UnpackError::Foreign { .. }
            ),
            "{mt}: {err:?}"
        );
        assert!(err.to_string().contains(mt), "{err}");
    }
}

#[test]
fn id_map_shifts_owners_and_keeps_setuid() {
    berth_test_support::requires_root!();
    let f = Fixture::new();
    let mut su = Hdr::new(b"usr/bin/su", REG);
    (su.mode, su.uid, su.gid) = (0o4755, 0, 0);
    let mut user = Hdr::new(b"home/u/file", REG);
    (user.uid, user.gid) = (1000, 100);
    let mut l = Hdr::new(b"home/u/link", SYM);
    (l.link, l.uid) = (b"file", 1000);
    let tar = Tar::new()
        .add(su, b"su")
        .add(user, b"u")
        .add(l, b"")
        .finish();
    let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
    opts.ownership = Ownership::Map(IdMap::offset(100_000, 65_536));
    f.unpack(&tar, &opts).unwrap();
    let r = &f.root;
    let su = md(r, "usr/bin/su");
    assert_eq!(
        (su.uid(), su.gid(), su.mode() & 0o7777),
        (100_000, 100_000, 0o4755)
    );
    let u = md(r, "home/u/file");
    assert_eq!((u.uid(), u.gid()), (101_000, 100_100));
    assert_eq!(md(r, "home/u/link").uid(), 101_000);
    assert_eq!(
        md(r, "usr").uid(),
        100_000,
        "implicit parents belong to container root"
    );

    let mut big = Hdr::new(b"x", REG);
    big.uid = 70_000;
    let g = Fixture::new();
    let err = g
        .unpack(&Tar::new().add(big, b"").finish(), &opts)
        .unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::Unmapped {
                kind: "uid",
                id: 70_000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rootless_options_leave_owners_and_skip_devices() {
    let f = Fixture::new();
    let mut file = Hdr::new(b"f", REG);
    file.uid = 1234;
    let mut dev = Hdr::new(b"dev/null", CHR);
    dev.dev = (1, 3);
    let tar = Tar::new().add(file, b"").add(dev, b"").finish();
    let stats = f
        .unpack(&tar, &UnpackOptions::rootless(WhiteoutMode::Overlay))
        .unwrap();
    assert_eq!(md(&f.root, "f").uid(), rustix::process::getuid().as_raw());
    assert_eq!(stats.skipped.len(), 1);
    assert!(
        std::fs::metadata(f.root.join("dev"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
            == 0o755
    );
}
