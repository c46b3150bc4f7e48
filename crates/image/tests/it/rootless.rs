//! Rootless unpacking, for real: this test binary re-runs itself as `nobody` (uid 65534, no
//! capabilities) and unpacks a layer with device nodes, foreign owners, setuid bits,
//! whiteouts and an opaque directory into a directory that user owns.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::unpack::{Compression, SkipReason, UnpackOptions, WhiteoutMode, unpack_stream};

use crate::features::getxattr;
use crate::tarball::{BLK, CHR, Hdr, REG, Tar};

const NOBODY: u32 = 65534;
const CHILD_ENV: &str = "BERTH_IMAGE_ROOTLESS_CHILD";

fn layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir(b"etc/");
    let mut su = Hdr::new(b"usr/bin/su", REG);
    (su.mode, su.uid) = (0o4755, 0);
    t.add(su, b"su");
    let mut f = Hdr::new(b"home/u/file", REG);
    (f.uid, f.gid) = (1000, 1000);
    t.add(f, b"u");
    let mut null = Hdr::new(b"dev/null", CHR);
    null.dev = (1, 3);
    t.add(null, b"");
    let mut sda = Hdr::new(b"dev/sda", BLK);
    sda.dev = (8, 0);
    t.add(sda, b"");
    t.file(b"etc/.wh.motd", b"");
    t.file(b"opt/.wh..wh..opq", b"");
    t.file(b"opt/new", b"new");
    t.finish()
}

/// The child: runs only when the parent set the environment (it is `#[ignore]`d otherwise).
#[test]
#[ignore = "run by rootless_overlay_unpack_as_nobody as uid 65534"]
fn rootless_child() {
    #[expect(
        clippy::disallowed_methods,
        reason = "the parent passes the directory to the child"
    )]
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
    let root = PathBuf::from(dir).join("root");
    let tar = layer();
    let stats = unpack_stream(
        &tar[..],
        Compression::None,
        &root,
        &UnpackOptions::rootless(WhiteoutMode::Overlay),
    )
    .unwrap_or_else(|e| panic!("rootless unpack failed: {e:?}"));
    let skipped: Vec<_> = stats.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(skipped, ["dev/null", "dev/sda"]);
    assert!(
        stats
            .skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::Device { .. }))
    );
}

#[test]
fn rootless_overlay_unpack_as_nobody() {
    berth_test_support::requires_root!();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = base.join("root");
    std::fs::create_dir(&root).unwrap();
    rustix::fs::chown(
        &root,
        Some(rustix::fs::Uid::from_raw(NOBODY)),
        Some(rustix::fs::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rootless::rootless_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, base)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child as nobody failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child did not run: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    check_rootless_tree(&root);
}

fn check_rootless_tree(root: &Path) {
    let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    // owned by the unpacking user, modes kept (setuid on a file nobody owns is harmless)
    let su = md("usr/bin/su");
    assert_eq!((su.uid(), su.mode() & 0o7777), (NOBODY, 0o4755));
    assert_eq!(md("home/u/file").uid(), NOBODY);
    assert!(!root.join("dev/null").exists());
    assert!(!root.join("dev/sda").exists());
    // whiteouts: unprivileged 0/0 character devices (Linux >= 5.8), user.overlay.opaque
    let wh = md("etc/motd");
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        getxattr(&root.join("opt"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}
