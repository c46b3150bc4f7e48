//! Anonymous volumes seeded from the image, as docker does: `-v /data` over a directory of
//! the image starts with its files, owners and modes (shifted into the container's id range
//! on the host when it has one: the same ids inside), and the container's user can use it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use berth_test_support::{
    Layer, OciLayout, image_config, requires_root, requires_tool, write_file,
};

use super::{APPLETS, Berth, runtimes};

const VOL_IMAGE: &str = "localhost/busybox:volumes";

/// Import a busybox image whose `/data` (1000:1001, 0750) holds `seed.txt` (0640), a setgid
/// subdirectory and a symlink, all owned by the image's `app` user.
fn import_image_with_data(b: &Berth) {
    let root = b.dir.path().join("vol-rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "data/sub"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in APPLETS.iter().chain(&["readlink"]) {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    write_file(
        root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/data:/bin/sh\n",
    );
    write_file(root.join("etc/group"), b"root:x:0:\napps:x:1001:app\n");
    write_file(root.join("data/seed.txt"), b"from the image\n");
    std::os::unix::fs::symlink("seed.txt", root.join("data/link")).unwrap();
    for (p, mode) in [
        ("data", 0o750),
        ("data/seed.txt", 0o640),
        ("data/sub", 0o2770),
    ] {
        let p = root.join(p);
        std::os::unix::fs::chown(&p, Some(1000), Some(1001)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::lchown(root.join("data/link"), Some(1000), Some(1001)).unwrap();
    b.ok(&["import", root.to_str().unwrap(), VOL_IMAGE]);
}

/// `-v /data` over the image's `/data`: its content, owners and modes inside the container
/// (under each runtime, with the default user namespace and with `--userns=host`), writable
/// by the image's `app` user; on the host the volume's owner is the image's shifted into the
/// container's range. A `-v /empty` where the image has nothing starts empty.
#[test]
fn anonymous_volumes_start_with_the_images_content_owners_and_modes() {
    requires_root!();
    requires_tool!("runc", "crun");
    let b = Berth::new();
    import_image_with_data(&b);
    let script = "ls -lnd /data /data/seed.txt /data/sub | tr -s ' ' | cut -d' ' -f1,3,4; \
                  readlink /data/link; cat /data/seed.txt; ls -A /empty";
    let want = "drwxr-x--- 1000 1001\n-rw-r----- 1000 1001\ndrwxrws--- 1000 1001\nseed.txt\nfrom the image\n";
    let mut cases: Vec<(&str, &[&str])> = runtimes().into_iter().map(|rt| (rt, &[][..])).collect();
    cases.push(("berth-runtime", &["--userns=host"][..]));
    for (rt, extra) in cases {
        let mut args = vec!["run", "-d", "--runtime", rt];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-v", "/data", "-v", "/empty", VOL_IMAGE, "sleep", "100"]);
        let id = b.ok(&args);
        let id = id.trim();
        let out = b.ok(&["exec", "-u", "app", id, "sh", "-c", script]);
        assert_eq!(
            out, want,
            "{rt} {extra:?}: the volume holds the image's /data"
        );
        b.ok(&["exec", "-u", "app", id, "touch", "/data/sub/by-app"]);
        // the image's device nodes copied into a volume on a host filesystem open nothing
        let mountinfo = b.ok(&["exec", id, "cat", "/proc/self/mountinfo"]);
        let data = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/data"))
            .unwrap_or_else(|| panic!("{rt}: no /data mount:\n{mountinfo}"));
        let nodev = data
            .split(' ')
            .nth(5)
            .is_some_and(|o| o.split(',').any(|o| o == "nodev"));
        // crun (1.8) drops nodev from a bind mount in a user namespace (ro it keeps): there
        // the device cgroup alone keeps the nodes closed
        let crun_in_userns = rt == "crun" && extra.is_empty();
        assert!(
            nodev || crun_in_userns,
            "{rt} {extra:?}: the volume is mounted nodev: {data}"
        );
        // on the host: the volume directory, owned by the image's 1000:1001 as the
        // container's user namespace maps it
        let v: serde_json::Value =
            serde_json::from_str(&b.ok(&["container", "inspect", id])).unwrap();
        let start = v[0]["HostIds"]["host_start"]
            .as_u64()
            .map_or(0, |s| s as u32);
        let vols = b.data().join("volumes").join(id);
        let seeded = std::fs::read_dir(&vols)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("seed.txt").exists())
            .unwrap_or_else(|| panic!("{rt}: no seeded volume in {}", vols.display()));
        let m = std::fs::metadata(&seeded).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (start + 1000, start + 1001, 0o750),
            "{rt} {extra:?}: the volume's owner on the host"
        );
        b.ok(&["rm", "-f", id]);
    }
    b.assert_clean();
}

/// The image's own `Volumes` (an OCI image whose config declares `/data`, loaded with
/// `berth load`): with no `-v` at all, the container's `/data` is an anonymous volume seeded
/// with the image's files, and what the container writes there lands in the volume, not the
/// container's root filesystem.
#[test]
fn image_volumes_are_seeded_anonymous_volumes() {
    requires_root!();
    let b = Berth::new();
    let root = b.dir.path().join("vol-rootfs");
    import_image_with_data(&b);
    let tar = std::process::Command::new("tar")
        .args([
            "--numeric-owner",
            "-C",
            root.to_str().unwrap(),
            "-cf",
            "-",
            ".",
        ])
        .output()
        .unwrap();
    assert!(tar.status.success(), "tar: {tar:?}");
    let layer = Layer::from_tar(&tar.stdout);
    let mut config = image_config("linux", "amd64", std::slice::from_ref(&layer));
    config["config"]["Volumes"] = serde_json::json!({ "/data": {} });
    config["config"]["Cmd"] = serde_json::json!(["sleep", "100"]);
    let dir = b.dir.path().join("layout");
    let mut layout = OciLayout::new(&dir);
    let desc = layout.image(&[layer], &config);
    layout.tag(&desc, "localhost/busybox:declares-volumes");
    let archive = b.dir.path().join("image.tar");
    let st = std::process::Command::new("tar")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            archive.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    b.ok(&["load", "-i", archive.to_str().unwrap()]);
    let images = b.ok(&["images"]);
    assert!(images.contains("declares-volumes"), "{images}");
    let id = b.ok(&["run", "-d", "localhost/busybox:declares-volumes"]);
    let id = id.trim();
    let out = b.ok(&["exec", "-u", "app", id, "cat", "/data/seed.txt"]);
    assert_eq!(out, "from the image\n");
    b.ok(&["exec", "-u", "app", id, "touch", "/data/written"]);
    let vols = b.data().join("volumes").join(id);
    let written = std::fs::read_dir(&vols)
        .unwrap()
        .flatten()
        .any(|e| e.path().join("written").exists() && e.path().join("seed.txt").exists());
    assert!(
        written,
        "the image's /data is a seeded volume in {}",
        vols.display()
    );
    b.ok(&["rm", "-f", id]);
    b.assert_clean();
}
