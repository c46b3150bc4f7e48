//! The native snapshotter shows the same tree as overlay for the same chain of layers.

use std::fs;
use std::path::Path;

use berth_image::snapshot::{Driver, Opts, SnapshotStore, Snapshotter, unmount};

use super::helpers::{Scratch, opaque_dir, require_root, tree, upper, whiteout, write};

/// One change in a layer, applied in overlayfs's format (overlay) or directly (native).
enum Op {
    File(&'static str, &'static str, u32, u32, u32),
    Dir(&'static str, u32),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    Fifo(&'static str),
    CharDev(&'static str, u32, u32),
    Xattr(&'static str, &'static str, &'static [u8]),
    Delete(&'static str),
    Opaque(&'static str),
}

/// `security.capability` v2: CAP_NET_RAW permitted.
const CAP_NET_RAW: &[u8] = &[
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn layers() -> Vec<Vec<Op>> {
    use Op::*;
    vec![
        vec![
            Dir("tmp", 0o1777),
            File("bin/sh", "shell", 0o755, 0, 0),
            Hardlink("bin/busybox", "bin/sh"),
            Symlink("bin/ash", "sh"),
            File("bin/su", "su", 0o4755, 0, 0),
            File("bin/ping", "ping", 0o755, 0, 0),
            Xattr("bin/ping", "security.capability", CAP_NET_RAW),
            File("etc/passwd", "root:x:0:0", 0o644, 0, 0),
            Xattr("etc/passwd", "user.note", b"hello"),
            File("home/u/.profile", "export A=1", 0o600, 1000, 1000),
            Fifo("run/fifo"),
            CharDev("dev/null", 1, 3),
            File("a/1", "a1", 0o644, 0, 0),
            File("a/2", "a2", 0o644, 0, 0),
            File("b/1", "b1", 0o644, 0, 0),
            File("b/sub/x", "bx", 0o644, 0, 0),
        ],
        vec![
            Delete("a/1"),
            Delete("home/u"),
            Delete("run/fifo"),
            Opaque("b"),
            File("b/new", "bnew", 0o640, 7, 8),
            File("bin/sg", "sg", 0o2755, 0, 50),
            File("etc/passwd", "root:x:0:0\nu:x:1000", 0o644, 0, 0),
        ],
        vec![
            File("a/1", "a1 again", 0o600, 0, 0),
            Symlink("bin/sh2", "/bin/sh"),
            File("b/sub/y", "by", 0o644, 0, 0),
            Delete("bin/su"),
        ],
    ]
}

fn apply(d: &Path, op: &Op, overlay: bool, mtime: i64) {
    let set = |p: &Path, mode: u32, uid: u32, gid: u32| {
        rustix::fs::chown(
            p,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .unwrap();
        rustix::fs::chmod(p, rustix::fs::Mode::from_raw_mode(mode)).unwrap();
    };
    // As an unpacker does from the tar header: the same times in both drivers.
    let stamp = |p: &Path| {
        let t = rustix::fs::Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    };
    match *op {
        Op::File(p, content, mode, uid, gid) => {
            write(d, p, content);
            set(&d.join(p), mode, uid, gid);
            stamp(&d.join(p));
        }
        Op::Dir(p, mode) => {
            fs::create_dir_all(d.join(p)).unwrap();
            set(&d.join(p), mode, 0, 0);
        }
        Op::Symlink(p, target) => {
            fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            let _ = fs::remove_file(d.join(p));
            std::os::unix::fs::symlink(target, d.join(p)).unwrap();
            stamp(&d.join(p));
        }
        Op::Hardlink(p, target) => fs::hard_link(d.join(target), d.join(p)).unwrap(),
        Op::Fifo(p) => {
            fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            rustix::fs::mknodat(
                rustix::fs::CWD,
                d.join(p),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
            stamp(&d.join(p));
        }
        Op::CharDev(p, major, minor) => {
            fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            rustix::fs::mknodat(
                rustix::fs::CWD,
                d.join(p),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                rustix::fs::makedev(major, minor),
            )
            .unwrap();
            stamp(&d.join(p));
        }
        Op::Xattr(p, name, value) => {
            rustix::fs::lsetxattr(d.join(p), name, value, rustix::fs::XattrFlags::empty()).unwrap()
        }
        Op::Delete(p) if overlay => whiteout(d, p),
        Op::Delete(p) => {
            let path = d.join(p);
            if path.is_dir() {
                fs::remove_dir_all(path).unwrap();
            } else {
                fs::remove_file(path).unwrap();
            }
        }
        Op::Opaque(p) if overlay => opaque_dir(d, p),
        Op::Opaque(p) => {
            for e in fs::read_dir(d.join(p)).unwrap() {
                let e = e.unwrap().path();
                if e.is_dir() {
                    fs::remove_dir_all(e).unwrap();
                } else {
                    fs::remove_file(e).unwrap();
                }
            }
        }
    }
}

fn build(s: &SnapshotStore) -> String {
    let overlay = s.driver().uses_whiteouts();
    let mut parent: Option<String> = None;
    for (i, ops) in layers().iter().enumerate() {
        let name = format!("L{i}");
        let key = format!("extract-{name}");
        let m = s
            .prepare(&key, parent.as_deref(), &Opts::default())
            .unwrap();
        let d = upper(&m);
        for op in ops {
            apply(&d, op, overlay, 1_600_000_000 + i as i64);
        }
        s.commit(&name, &key, &Opts::default()).unwrap();
        parent = Some(name);
    }
    parent.unwrap()
}

#[test]
fn native_shows_the_same_tree_as_overlay_for_the_same_chain() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let overlay = scratch.store(Driver::Overlay);
    let native = scratch.store(Driver::Native);
    let top_o = build(&overlay);
    let top_n = build(&native);
    let vo = overlay.view("v", Some(&top_o), &Opts::default()).unwrap();
    let vn = native.view("v", Some(&top_n), &Opts::default()).unwrap();
    let ro = scratch.mount(&vo, "overlay");
    let rn = scratch.mount(&vn, "native");
    let (to, tn) = (tree(&ro), tree(&rn));
    // What the layers say must be there, is, in both.
    for (path, expect) in [
        (
            "a/1",
            "file [97, 49, 32, 97, 103, 97, 105, 110] nlink 1 mode 600",
        ),
        ("bin/busybox", "nlink 2 mode 755"),
        ("bin/su", ""),
        ("bin/sg", "mode 2755 owner 0:50"),
        ("bin/ping", "security.capability"),
        ("dev/null", "chr 259"),
        ("tmp", "mode 1777"),
        ("b/new", "mode 640 owner 7:8"),
        ("b/sub/y", "file"),
    ] {
        if expect.is_empty() {
            assert!(!to.contains_key(path), "overlay still has {path}");
        } else {
            let got = to
                .get(path)
                .unwrap_or_else(|| panic!("overlay lacks {path}: {to:#?}"));
            assert!(got.contains(expect), "{path}: {got} lacks {expect}");
        }
    }
    for gone in ["home/u", "run/fifo", "b/1", "b/sub/x"] {
        assert!(!to.contains_key(gone), "overlay still has {gone}");
    }
    assert_eq!(to, tn, "overlay and native trees differ");
    unmount(&ro).unwrap();
    unmount(&rn).unwrap();
    // A native snapshot is a full copy: the committed parents stay as they were.
    let m = native
        .prepare("ctr", Some(&top_n), &Opts::default())
        .unwrap();
    let rc = scratch.mount(&m, "ctr");
    fs::remove_file(rc.join("etc/passwd")).unwrap();
    unmount(&rc).unwrap();
    let v = native.view("v2", Some(&top_n), &Opts::default()).unwrap();
    let r2 = scratch.mount(&v, "v2");
    assert!(r2.join("etc/passwd").exists());
    unmount(&r2).unwrap();
}
