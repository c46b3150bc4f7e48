//! berth's apply-mode root filesystem equals `umoci unpack`'s, file by file (type, mode,
//! owner, size, content, link target, device number, xattrs), for a real-shaped busybox
//! image of several layers with deletions, an opaque directory and type changes.

use std::path::Path;
use std::process::Command;

use berth_image::unpack::{UnpackOptions, WhiteoutMode, unpack};
use berth_test_support::{Layer, OciLayout, diff_trees, image_config, tree};

use crate::tarball::{self, BLK, CHR, DIR, FIFO, Hdr, REG, SYM, Tar};

const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn dir(t: &mut Tar, name: &str, mode: u32, uid: u32, gid: u32) {
    let mut h = Hdr::new(name.as_bytes(), DIR);
    (h.mode, h.uid, h.gid) = (mode, uid, gid);
    t.add(h, b"");
}

fn file(t: &mut Tar, name: &str, mode: u32, uid: u32, gid: u32, data: &[u8]) {
    let mut h = Hdr::new(name.as_bytes(), REG);
    (h.mode, h.uid, h.gid) = (mode, uid, gid);
    t.add(h, data);
}

/// Three layers over busybox-static, shaped like a real image's history.
pub(crate) fn busybox_layers() -> Vec<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    let applets: Vec<String> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .filter(|a| *a != "busybox" && !a.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        applets.len() > 100,
        "busybox --list: {} applets",
        applets.len()
    );

    // 1: the base: busybox and its applets, /etc, devices, special modes, xattrs
    let mut t = Tar::new();
    for (d, mode, uid, gid) in [
        ("bin/", 0o755, 0, 0),
        ("dev/", 0o755, 0, 0),
        ("etc/", 0o755, 0, 0),
        ("home/", 0o755, 0, 0),
        ("opt/", 0o755, 0, 0),
        ("opt/app/", 0o750, 0, 10),
        ("opt/app/conf.d/", 0o755, 0, 0),
        ("root/", 0o700, 0, 0),
        ("tmp/", 0o1777, 0, 0),
        ("usr/", 0o755, 0, 0),
        ("usr/bin/", 0o755, 0, 0),
        ("var/", 0o755, 0, 0),
        ("var/log/", 0o755, 0, 0),
        ("var/spool/", 0o2775, 0, 50),
        ("var/spool/mail/", 0o3775, 8, 8),
    ] {
        dir(&mut t, d, mode, uid, gid);
    }
    file(&mut t, "bin/busybox", 0o755, 0, 0, &busybox);
    for a in &applets {
        let mut h = Hdr::new(b"", SYM);
        let name = format!("bin/{a}");
        h.name = name.as_bytes();
        h.link = b"busybox";
        t.add(h, b"");
    }
    t.hardlink(b"usr/bin/busybox-hardlink", b"bin/busybox");
    let mut su = Hdr::new(b"usr/bin/su", REG);
    (su.mode, su.uid, su.gid) = (0o4755, 0, 0);
    t.add(su, b"setuid");
    let mut ping = Hdr::new(b"usr/bin/ping", REG);
    ping.pax.push((
        b"SCHILY.xattr.security.capability".to_vec(),
        CAP_NET_RAW.to_vec(),
    ));
    t.add(ping, b"ping");
    file(
        &mut t,
        "etc/passwd",
        0o644,
        0,
        0,
        b"root:x:0:0:root:/root:/bin/sh\n",
    );
    file(&mut t, "etc/group", 0o644, 0, 0, b"root:x:0:\n");
    file(
        &mut t,
        "etc/shadow",
        0o640,
        0,
        42,
        b"root:*:19000:0:99999:7:::\n",
    );
    let mut motd = Hdr::new(b"etc/motd", REG);
    motd.pax
        .push((b"SCHILY.xattr.user.origin".to_vec(), b"layer-1".to_vec()));
    t.add(motd, b"welcome\n");
    file(&mut t, "opt/app/old.conf", 0o600, 0, 10, b"old");
    file(&mut t, "opt/app/conf.d/a.conf", 0o644, 0, 0, b"a");
    file(&mut t, "var/log/messages", 0o640, 0, 4, b"log\n");
    file(&mut t, "var/spool/mail/root", 0o660, 0, 8, b"");
    let mut null = Hdr::new(b"dev/null", CHR);
    (null.mode, null.dev) = (0o666, (1, 3));
    t.add(null, b"");
    let mut sda = Hdr::new(b"dev/sda", BLK);
    (sda.mode, sda.gid, sda.dev) = (0o660, 6, (8, 0));
    t.add(sda, b"");
    let mut fifo = Hdr::new(b"dev/initctl", FIFO);
    fifo.mode = 0o600;
    t.add(fifo, b"");
    let long = format!(
        "usr/{}/{}",
        "long-directory-name".repeat(6),
        "x".repeat(120)
    );
    dir(
        &mut t,
        &format!("usr/{}/", "long-directory-name".repeat(6)),
        0o755,
        0,
        0,
    );
    let mut lh = Hdr::new(b"placeholder", REG);
    lh.pax.push((b"path".to_vec(), long.into_bytes()));
    t.add(lh, b"a long name");
    let l1 = t.finish();

    // 2: deletions, an opaque directory, changed modes and owners, a new user
    let mut t = Tar::new();
    dir(&mut t, "bin/", 0o755, 0, 0);
    t.file(b"bin/.wh.vi", b"");
    t.file(b"bin/.wh.telnet", b"");
    dir(&mut t, "etc/", 0o755, 0, 0);
    t.file(b"etc/.wh.motd", b"");
    file(
        &mut t,
        "etc/passwd",
        0o600,
        0,
        0,
        b"root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n",
    );
    dir(&mut t, "opt/app/", 0o755, 0, 0);
    t.file(b"opt/app/.wh..wh..opq", b"");
    file(&mut t, "opt/app/new.conf", 0o644, 0, 0, b"new");
    dir(&mut t, "var/", 0o755, 0, 0);
    t.file(b"var/.wh.log", b"");
    dir(&mut t, "home/u/", 0o700, 1000, 1000);
    file(
        &mut t,
        "home/u/.profile",
        0o644,
        1000,
        1000,
        b"export PS1='$ '\n",
    );
    dir(&mut t, "usr/", 0o755, 0, 0);
    dir(&mut t, "usr/bin/", 0o755, 0, 0);
    let mut bb = Hdr::new(b"usr/bin/busybox-hardlink", SYM);
    bb.link = b"/bin/busybox";
    t.add(bb, b"");
    let l2 = t.finish();

    // 3: type changes both ways, a symlink replaced by a file, a re-added deleted path
    let mut t = Tar::new();
    dir(&mut t, "etc/", 0o755, 0, 0);
    dir(&mut t, "etc/motd/", 0o755, 0, 0); // deleted file comes back as a directory
    file(&mut t, "etc/motd/10-hello", 0o644, 0, 0, b"hello");
    file(&mut t, "etc/shadow", 0o000, 0, 42, b"root:!:19000::::::\n");
    dir(&mut t, "opt/", 0o755, 0, 0);
    file(&mut t, "opt/app", 0o755, 0, 0, b"#!/bin/sh\n"); // a directory becomes a file
    dir(&mut t, "bin/", 0o755, 0, 0);
    file(&mut t, "bin/sh", 0o755, 0, 0, b"not a symlink any more"); // symlink -> file
    let l3 = t.finish();

    vec![l1, l2, l3]
}

fn apply_all(layers: &[Layer], tars: &[Vec<u8>], root: &Path) {
    for (layer, tar) in layers.iter().zip(tars) {
        let mut opts = UnpackOptions::new(WhiteoutMode::Apply);
        opts.expected_diff_id = Some(layer.diff_id.clone());
        let stats = unpack(
            &layer.data[..],
            "application/vnd.oci.image.layer.v1.tar+gzip",
            root,
            &opts,
        )
        .unwrap();
        assert_eq!(stats.uncompressed_bytes, tar.len() as u64);
    }
}

/// `umoci unpack --image LAYOUT:test BUNDLE`, which must succeed.
pub(crate) fn umoci_unpack(layout: &Path, bundle: &Path) {
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:test", layout.display()))
        .arg(bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write `tars` as a gzip OCI image, unpack it with `umoci unpack` and with berth (apply
/// mode, diff IDs checked); assert the two root filesystems are equal and return berth's tree
/// and its directory (inside `tmp`).
fn compare_with_umoci(
    tmp: &Path,
    tars: &[Vec<u8>],
) -> (
    std::collections::BTreeMap<Vec<u8>, berth_test_support::Node>,
    std::path::PathBuf,
) {
    let layers: Vec<Layer> = tars
        .iter()
        .map(|t| Layer {
            data: tarball::gzip(t),
            diff_id: berth_test_support::sha256(t),
        })
        .collect();
    let mut layout = OciLayout::new(tmp.join("layout"));
    let manifest = layout.image(&layers, &image_config("linux", "amd64", &layers));
    layout.tag(&manifest, "test");

    let bundle = tmp.join("bundle");
    umoci_unpack(layout.dir(), &bundle);

    let ours = tmp.join("berth");
    std::fs::create_dir(&ours).unwrap();
    apply_all(&layers, tars, &ours);

    let theirs = tree(&bundle.join("rootfs"));
    let mine = tree(&ours);
    let diffs = diff_trees("berth", &mine, "umoci", &theirs);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    (mine, ours)
}

#[test]
fn busybox_image_equals_umoci_unpack() {
    berth_test_support::requires_root!();
    berth_test_support::requires_tool!("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let (mine, ours) = compare_with_umoci(tmp.path(), &busybox_layers());
    assert!(mine.len() > 250, "{} paths", mine.len());

    // and the layers really did what they say (not two unpackers equally wrong)
    assert!(!ours.join("bin/vi").exists());
    assert!(!ours.join("var/log").exists());
    assert!(ours.join("etc/motd/10-hello").exists());
    assert!(
        std::fs::symlink_metadata(ours.join("bin/sh"))
            .unwrap()
            .is_file()
    );
    assert!(
        std::fs::symlink_metadata(ours.join("opt/app"))
            .unwrap()
            .is_file()
    );
    let su = &mine[&b"usr/bin/su"[..]];
    assert_eq!(su.mode, 0o4755);
    let ping = &mine[&b"usr/bin/ping"[..]];
    assert!(ping.xattrs.iter().any(|(n, _)| n == b"security.capability"));
}

#[test]
fn debian_layers_equal_umoci_unpack() {
    berth_test_support::requires_root!();
    berth_test_support::requires_tool!("umoci", "tar");
    let Some(rootfs) = berth_test_support::debian_rootfs() else {
        // fails the test instead when BERTH_TEST_REQUIRE_TOOLS=1
        berth_test_support::skip_or_fail(
            "no Debian root filesystem; hint: run scripts/make-debian-rootfs (debootstrap)",
        );
        return;
    };
    // 1a, 1b: the debootstrap tree as GNU tar writes it (PAX, xattrs, hardlinks, devices),
    // split in two layers: everything but /usr/share, then /usr/share
    let gnu_tar = |args: &[&str]| {
        let out = Command::new("tar")
            .args([
                "--format=posix",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--pax-option=delete=atime,delete=ctime",
                "-C",
            ])
            .arg(&rootfs)
            .args(["-cf", "-"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let l1a = gnu_tar(&["--exclude=./usr/share", "."]);
    let l1b = gnu_tar(&["./usr/share"]);
    assert!(
        l1a.len() > 50 << 20 && l1b.len() > 10 << 20,
        "the split gave two real layers"
    );

    // 2: an image's later history: docs and apt lists cleared (opaque), files deleted (one
    // of a hardlinked pair among them), users added, a file's mode and owner changed
    let mut t = Tar::new();
    dir(&mut t, "usr/", 0o755, 0, 0);
    dir(&mut t, "usr/share/", 0o755, 0, 0);
    dir(&mut t, "usr/share/doc/", 0o755, 0, 0);
    t.file(b"usr/share/doc/.wh..wh..opq", b"");
    file(
        &mut t,
        "usr/share/doc/README",
        0o644,
        0,
        0,
        b"docs removed to save space\n",
    );
    dir(&mut t, "var/", 0o755, 0, 0);
    dir(&mut t, "var/lib/", 0o755, 0, 0);
    dir(&mut t, "var/lib/apt/", 0o755, 0, 0);
    dir(&mut t, "var/lib/apt/lists/", 0o755, 0, 0);
    t.file(b"var/lib/apt/lists/.wh..wh..opq", b"");
    dir(&mut t, "usr/bin/", 0o755, 0, 0);
    t.file(b"usr/bin/.wh.perl5.36.0", b"");
    t.file(b"usr/bin/.wh.uncompress", b"");
    dir(&mut t, "etc/", 0o755, 0, 0);
    t.file(b"etc/.wh.motd", b"");
    let passwd = std::fs::read(rootfs.join("etc/passwd")).unwrap();
    let mut passwd2 = passwd.clone();
    passwd2.extend_from_slice(b"app:x:1000:1000::/home/app:/bin/sh\n");
    file(&mut t, "etc/passwd", 0o644, 0, 0, &passwd2);
    file(
        &mut t,
        "etc/shadow",
        0o600,
        0,
        0,
        b"root:*:19000:0:99999:7:::\n",
    );
    dir(&mut t, "home/", 0o755, 0, 0);
    dir(&mut t, "home/app/", 0o750, 1000, 1000);
    file(
        &mut t,
        "home/app/.profile",
        0o644,
        1000,
        1000,
        b"umask 027\n",
    );
    let l2 = t.finish();

    // 3: an application layer: a setgid tool, a symlink over a deleted path
    let mut t = Tar::new();
    dir(&mut t, "opt/", 0o755, 0, 0);
    dir(&mut t, "opt/app/", 0o755, 0, 0);
    dir(&mut t, "opt/app/bin/", 0o755, 0, 0);
    file(
        &mut t,
        "opt/app/bin/tool",
        0o2755,
        0,
        50,
        b"#!/bin/sh\necho tool\n",
    );
    dir(&mut t, "etc/", 0o755, 0, 0);
    let mut motd = Hdr::new(b"etc/motd", SYM);
    motd.link = b"/opt/app/motd";
    t.add(motd, b"");
    let l3 = t.finish();

    let tmp = tempfile::tempdir().unwrap();
    let (mine, ours) = compare_with_umoci(tmp.path(), &[l1a, l1b, l2, l3]);
    assert!(mine.len() > 5000, "{} paths", mine.len());
    assert!(!ours.join("usr/bin/perl5.36.0").exists());
    assert_eq!(mine[&b"usr/bin/perl"[..]].kind, 'f');
    assert_eq!(mine[&b"usr/bin/passwd"[..]].mode, 0o4755);
    assert_eq!(mine[&b"dev/null"[..]].kind, 'c');
    assert_eq!(
        std::fs::read_dir(ours.join("usr/share/doc"))
            .unwrap()
            .count(),
        1,
        "the opaque directory holds only its own layer's file"
    );
}

/// Removes the podman images a test made (by name) when dropped, panics included.
struct PodmanImages(Vec<String>);

impl Drop for PodmanImages {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "-f"])
            .args(&self.0)
            .output();
    }
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An image `podman build` made from the Debian tree (whiteouts, an opaque directory, a
/// setuid change, a fifo, exactly as buildah writes them), read from an OCI layout: berth's
/// apply-mode root filesystem, and the overlayfs mount of its overlay-mode layers, both equal
/// `umoci unpack`'s.
#[test]
fn podman_built_image_equals_umoci_unpack_in_both_modes() {
    berth_test_support::requires_root!();
    berth_test_support::requires_tool!("podman", "skopeo", "umoci", "tar");
    let Some(rootfs) = berth_test_support::debian_rootfs() else {
        berth_test_support::skip_or_fail(
            "no Debian root filesystem; hint: run scripts/make-debian-rootfs (debootstrap)",
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("localhost/berth-test/unpack-{}:base", std::process::id());
    let built = format!("localhost/berth-test/unpack-{}:built", std::process::id());
    let _images = PodmanImages(vec![built.clone(), base.clone()]);
    let tarball = tmp.path().join("rootfs.tar");
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
    run_ok(
        Command::new("podman")
            .arg("import")
            .arg(&tarball)
            .arg(&base),
    );
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    berth_test_support::write_file(
        ctx.join("Containerfile"),
        format!(
            "FROM {base}\n\
             RUN rm -rf /usr/share/doc/* /etc/motd && useradd -m -u 1000 app && chmod 4755 /usr/bin/true\n\
             RUN rm -rf /var/lib/apt/lists && mkdir -p /var/lib/apt/lists/partial && \
                 echo new > /var/lib/apt/lists/marker && ln -sf /bin/bash /usr/local/bin/sh2 && \
                 mkfifo /run/fifo && mkdir /data && chown 1000:1000 /data && chmod 2770 /data\n"
        )
        .as_bytes(),
    );
    run_ok(
        Command::new("podman")
            .args(["build", "--network=none", "-t", &built])
            .arg(&ctx),
    );
    let layout = tmp.path().join("layout");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("containers-storage:{built}"))
            .arg(format!("oci:{}:built", layout.display())),
    );

    // berth, from the layout: the manifest's layers with the config's diff IDs
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        layout.join("blobs/sha256").join(hex)
    };
    let json = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let config = json(blob(manifest["config"]["digest"].as_str().unwrap()));
    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "base + two RUN layers");
    let apply_root = tmp.path().join("apply");
    std::fs::create_dir(&apply_root).unwrap();
    let mut lowers = Vec::new();
    for (i, (layer, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let mt = layer["mediaType"].as_str().unwrap();
        let expected = berth_test_support::Digest::parse(diff_id.as_str().unwrap()).unwrap();
        for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
            let target = if mode == WhiteoutMode::Apply {
                apply_root.clone()
            } else {
                let d = tmp.path().join(format!("lower{i}"));
                std::fs::create_dir(&d).unwrap();
                lowers.push(d.clone());
                d
            };
            let mut opts = UnpackOptions::new(mode);
            opts.expected_diff_id = Some(expected.clone());
            let file = std::fs::File::open(blob(layer["digest"].as_str().unwrap())).unwrap();
            unpack(file, mt, &target, &opts).unwrap_or_else(|e| panic!("layer {i} {mode:?}: {e}"));
        }
    }

    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:built", layout.display()))
            .arg(&bundle),
    );
    let theirs = tree(&bundle.join("rootfs"));
    let applied = tree(&apply_root);
    let diffs = diff_trees("berth-apply", &applied, "umoci", &theirs);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert_eq!(applied[&b"usr/bin/true"[..]].mode, 0o4755);
    assert_eq!(applied[&b"run/fifo"[..]].kind, 'p');
    assert!(!apply_root.join("etc/motd").exists());

    // the overlay-mode layers, mounted as overlayfs does for a container
    let merged = tmp.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let top_first: Vec<&Path> = lowers.iter().rev().map(|p| p.as_path()).collect();
    let mount = crate::features::OverlayMount::new(&merged, &top_first);
    let overlaid = tree(&merged);
    drop(mount);
    let diffs = diff_trees("berth-overlay", &overlaid, "umoci", &theirs);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// The runtime config's annotations are what image-spec "conversion.md" says, as `umoci
/// unpack` writes them: `org.opencontainers.image.{os,architecture,author,created,
/// stopSignal,exposedPorts}` from the image config, then `Config.Labels`, which win over the
/// implicit ones (the `author` label here: umoci 0.4.7 lets the image's `author` win, against
/// the spec). berth also writes `variant`, `os.version` and
/// `os.features` (the spec's MUST; umoci 0.4 leaves them out) and leaves out the labels a
/// runtime acts on (`run.oci.handler` would make crun run the container with another
/// handler), saying so in the notes.
#[test]
fn image_config_annotations_equal_umoci_unpack() {
    berth_test_support::requires_tool!("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let mut t = Tar::new();
    dir(&mut t, "etc/", 0o755, 0, 0);
    file(
        &mut t,
        "etc/passwd",
        0o644,
        0,
        0,
        b"root:x:0:0:root:/:/bin/sh\n",
    );
    let tar = t.finish();
    let layers = [Layer {
        data: tarball::gzip(&tar),
        diff_id: berth_test_support::sha256(&tar),
    }];
    let mut config = image_config("linux", "arm64", &layers);
    config["variant"] = "v8".into();
    config["os.version"] = "6.1".into();
    config["os.features"] = serde_json::json!(["a", "b"]);
    config["author"] = "Jane <jane@example.com>".into();
    config["config"]["ExposedPorts"] = serde_json::json!({"8080/tcp": {}, "53/udp": {}});
    config["config"]["StopSignal"] = "SIGQUIT".into();
    config["config"]["Cmd"] = serde_json::json!(["/bin/sh"]);
    config["config"]["Labels"] = serde_json::json!({
        "org.opencontainers.image.author": "the label's author",
        "com.example.team": "payments",
        "run.oci.handler": "krun",
    });
    let mut layout = OciLayout::new(tmp.path().join("layout"));
    let manifest = layout.image(&layers, &config);
    layout.tag(&manifest, "test");
    let bundle = tmp.path().join("bundle");
    umoci_unpack(layout.dir(), &bundle);
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let theirs = theirs["annotations"].as_object().unwrap().clone();

    let build = |config: &serde_json::Value| {
        let image = berth_image::spec::ImageConfig::parse(config.to_string().as_bytes()).unwrap();
        berth_image::spec::build_spec(
            &image,
            &bundle.join("rootfs"),
            &berth_image::spec::RunOptions {
                image: "example/app:1".into(),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (spec, notes) = build(&config);
    let ours = spec.annotations.unwrap_or_default();
    for (k, v) in &theirs {
        if k.starts_with("run.oci.") {
            assert!(!ours.contains_key(k), "{k} passed to the runtime");
            continue;
        }
        if k == "org.opencontainers.image.author" {
            // umoci 0.4.7 writes the image's `author` over the label of the same key, where
            // conversion.md says the label MUST win (asserted below)
            assert_eq!(v, "Jane <jane@example.com>", "umoci's choice changed");
            continue;
        }
        let v = v.as_str().unwrap();
        if k == "org.opencontainers.image.exposedPorts" {
            // a comma-separated set: umoci lists the ports in map order
            let set = |s: &str| -> std::collections::BTreeSet<String> {
                s.split(',').map(str::to_owned).collect()
            };
            assert_eq!(set(&ours[k]), set(v), "{k}");
            continue;
        }
        assert_eq!(ours.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(
        ours["org.opencontainers.image.author"],
        "the label's author"
    );
    assert_eq!(ours["org.opencontainers.image.stopSignal"], "SIGQUIT");
    assert_eq!(ours["org.opencontainers.image.variant"], "v8");
    assert_eq!(ours["org.opencontainers.image.os.version"], "6.1");
    assert_eq!(ours["org.opencontainers.image.os.features"], "a,b");
    assert_eq!(notes.ignored_labels, ["run.oci.handler"]);
    assert!(
        theirs.len() >= 7,
        "umoci wrote the annotations compared: {theirs:?}"
    );

    // an image that declares no port: the annotation says so (empty), as umoci's
    let mut bare = config.clone();
    bare["config"] = serde_json::json!({"Cmd": ["/bin/sh"]});
    let (spec, _) = build(&bare);
    assert_eq!(
        spec.annotations.unwrap()["org.opencontainers.image.exposedPorts"],
        ""
    );
}
