//! `berth save`, `load` and `import` against the real peers: archives berth writes load in
//! podman and skopeo with the same config digest and layers, and theirs (both formats)
//! load in berth; a busybox-static root filesystem imported by berth (a directory and a
//! tar) is usable from podman's store.
//!
//! podman runs with its own storage (vfs, under a temp dir), so the tests neither see nor
//! change the machine's images. `podman run` cannot start containers on the CI host
//! (crun's setrlimit is refused there), so runnability is checked by mounting the image
//! with `podman image mount` and running its busybox with `chroot`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{berth_bin, requires_root, requires_tool, run_with_timeout, write_file};
use serde_json::Value;

use crate::common::{Skopeo, stdout_of};

const BUSYBOX: &str = "/bin/busybox";

/// podman with a private store.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .unwrap();
        write_file(dir.path().join("registries.conf"), b"");
        Podman { dir }
    }

    fn try_run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("libpod"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("TMPDIR", d);
        run_with_timeout(&mut cmd, Duration::from_secs(600))
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        stdout_of("podman", args, &self.try_run(args))
    }

    /// The image id (config digest hex) and diff_ids podman sees.
    fn inspect(&self, image: &str) -> (String, Vec<String>) {
        let v: Value = serde_json::from_str(&self.run(&["image", "inspect", image])).unwrap();
        let id = v[0]["Id"].as_str().unwrap().to_owned();
        let layers = v[0]["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect();
        (id, layers)
    }

    /// Mount `image`, check its busybox is ours and runs (chroot), unmount.
    fn check_busybox(&self, image: &str) {
        let mnt = self.run(&["image", "mount", image]);
        let root = PathBuf::from(mnt.trim());
        assert_eq!(
            std::fs::read(root.join("bin/busybox")).unwrap(),
            std::fs::read(BUSYBOX).unwrap(),
            "{image}: bin/busybox differs"
        );
        let out = run_with_timeout(
            Command::new("chroot")
                .arg(&root)
                .args(["/bin/busybox", "true"]),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{image}: busybox true failed in the image"
        );
        self.run(&["image", "unmount", image]);
    }
}

/// `berth --data DATA args…`, panicking on failure; returns stdout.
#[track_caller]
fn berth(data: &Path, args: &[&str]) -> String {
    stdout_of("berth", args, &try_berth(data, args))
}

fn try_berth(data: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(berth_bin());
    cmd.args(args).arg("--data").arg(data).env("NO_COLOR", "1");
    run_with_timeout(&mut cmd, Duration::from_secs(600))
}

/// `berth save -q --format FORMAT -o ARCHIVE IMAGE`.
fn save(data: &Path, format: &str, archive: &Path, image: &str) {
    berth(
        data,
        &["save", "-q", "--format", format, "-o", s(archive), image],
    );
}

/// The config digest and diff_ids of `image` in berth's store.
fn berth_inspect(data: &Path, image: &str) -> (String, Vec<String>) {
    let v: Value = serde_json::from_str(&berth(data, &["inspect", image])).unwrap();
    let config = v["manifest"]["config"]["digest"].as_str().unwrap();
    let id = config.strip_prefix("sha256:").unwrap().to_owned();
    let diff_ids = v["config"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    (id, diff_ids)
}

/// A busybox-static root filesystem: /bin/busybox and a few links, /etc, /tmp.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    write_file(root.join("etc/hostname"), b"berth\n");
    root
}

fn tar_of(root: &Path, dest: &Path) {
    let out = run_with_timeout(
        Command::new("tar")
            .arg("-C")
            .arg(root)
            .arg("-cf")
            .arg(dest)
            .arg("."),
        Duration::from_secs(60),
    );
    assert!(out.status.success());
}

/// `berth save --format oci-archive -o ARCHIVE IMAGE`.
fn save_oci(data: &Path, image: &str, archive: &Path) {
    berth(
        data,
        &[
            "save",
            "-q",
            "--format",
            "oci-archive",
            "-o",
            s(archive),
            image,
        ],
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn berth_import_of_busybox_dir_and_tar_then_save_loads_in_podman_both_formats() {
    requires_tool!("podman", "tar", "chroot");
    requires_root!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("berth");
    let root = busybox_rootfs(dir.path());
    let tar = dir.path().join("rootfs.tar");
    tar_of(&root, &tar);
    berth(
        &data,
        &["import", s(&root), "localhost/bb:dir", "-m", "from a dir"],
    );
    berth(&data, &["import", s(&tar), "localhost/bb:tar"]);
    let podman = Podman::new();
    let images = ["localhost/bb:dir", "localhost/bb:tar"];
    // one docker-archive of both images; an oci-archive per image (podman loads one
    // image of an oci-archive)
    let docker = dir.path().join("both.tar");
    berth(
        &data,
        &["save", "-q", "-o", s(&docker), images[0], images[1]],
    );
    let mut archives = vec![(docker, images.to_vec())];
    for (i, image) in images.iter().enumerate() {
        let oci = dir.path().join(format!("oci-{i}.tar"));
        save_oci(&data, image, &oci);
        archives.push((oci, vec![*image]));
    }
    for (archive, names) in archives {
        let out = podman.run(&["load", "-i", s(&archive)]);
        for image in names {
            assert!(out.contains(image), "{}: {out}", archive.display());
            assert_eq!(
                podman.inspect(image),
                berth_inspect(&data, image),
                "{}: podman sees another config or other layers for {image}",
                archive.display()
            );
            podman.check_busybox(image);
            podman.run(&["rmi", image]);
        }
    }
}

#[test]
fn podman_save_both_formats_loads_in_berth_with_the_same_config() {
    requires_tool!("podman", "tar");
    let dir = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(dir.path());
    let tar = dir.path().join("rootfs.tar");
    tar_of(&root, &tar);
    let podman = Podman::new();
    podman.run(&["import", "-q", s(&tar), "localhost/frompodman:1"]);
    let want = podman.inspect("localhost/frompodman:1");
    for format in ["docker-archive", "oci-archive"] {
        let archive = dir.path().join(format!("{format}.tar"));
        podman.run(&[
            "save",
            "--format",
            format,
            "-o",
            s(&archive),
            "localhost/frompodman:1",
        ]);
        let data = dir.path().join(format!("berth-{format}"));
        let out = berth(&data, &["load", "-q", "-i", s(&archive)]);
        assert_eq!(
            out.trim(),
            "Loaded image: localhost/frompodman:1",
            "{format}"
        );
        assert!(berth(&data, &["images"]).contains("localhost/frompodman:1"));
        assert_eq!(
            berth_inspect(&data, "localhost/frompodman:1"),
            want,
            "{format}"
        );
        // `podman save IMAGE | berth load`: the archive on standard input
        let piped = dir.path().join(format!("piped-{format}"));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#""$0" load -q --data "$1" < "$2""#)
            .arg(berth_bin())
            .arg(&piped)
            .arg(&archive);
        let out = stdout_of(
            "berth load <",
            &[s(&archive)],
            &run_with_timeout(&mut cmd, Duration::from_secs(600)),
        );
        assert_eq!(
            out.trim(),
            "Loaded image: localhost/frompodman:1",
            "{format} piped"
        );
        assert_eq!(
            berth_inspect(&piped, "localhost/frompodman:1"),
            want,
            "{format} piped"
        );
        if format == "docker-archive" {
            // saved again by berth, the archive is podman's, byte for byte
            let again = dir.path().join("again.tar");
            save(&data, format, &again, "localhost/frompodman:1");
            assert!(
                std::fs::read(&again).unwrap() == std::fs::read(&archive).unwrap(),
                "berth save differs from podman save"
            );
        }
    }
}

#[test]
fn skopeo_reads_what_berth_saves_and_berth_loads_what_skopeo_writes() {
    requires_tool!("skopeo", "tar");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("berth");
    let root = busybox_rootfs(dir.path());
    berth(&data, &["import", s(&root), "localhost/sk:1"]);
    let want = berth_inspect(&data, "localhost/sk:1");
    let skopeo = Skopeo::new();
    for format in ["docker-archive", "oci-archive"] {
        // berth → skopeo
        let archive = dir.path().join(format!("{format}.tar"));
        save(&data, format, &archive, "localhost/sk:1");
        let layout = dir.path().join(format!("layout-{format}"));
        let src = if format == "docker-archive" {
            format!("docker-archive:{}:localhost/sk:1", archive.display())
        } else {
            format!("oci-archive:{}:localhost/sk:1", archive.display())
        };
        assert_eq!(
            skopeo_config(&skopeo, &src),
            want.0,
            "{format}: skopeo reads another config from berth's archive"
        );
        skopeo.run(&["copy", &src, &format!("oci:{}:x", layout.display())]);
        let raw: Value = serde_json::from_slice(&skopeo.run(&[
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:x", layout.display()),
        ]))
        .unwrap();
        assert_eq!(
            raw["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
            want.1,
            "{format}: skopeo reads other diff_ids"
        );
        // skopeo → berth, both formats skopeo writes
        let back = dir.path().join(format!("back-{format}.tar"));
        let dst = format!(
            "{format}:{}:localhost/back:{}",
            back.display(),
            &format[..3]
        );
        skopeo.run(&["copy", &format!("oci:{}:x", layout.display()), &dst]);
        let data2 = dir.path().join(format!("berth2-{format}"));
        let out = berth(&data2, &["load", "-q", "-i", s(&back)]);
        let name = format!("localhost/back:{}", &format[..3]);
        assert_eq!(out.trim(), format!("Loaded image: {name}"), "{format}");
        // skopeo may rewrite the config on the way (OCI → docker): compare with what
        // skopeo says its archive holds
        let got = berth_inspect(&data2, &name);
        assert_eq!(
            got.0,
            skopeo_config(&skopeo, &dst),
            "{format}: berth reads another config"
        );
        assert_eq!(got.1, want.1, "{format}: the layers changed on the way");
        // and berth copy reads skopeo's archive as a copy source too
        let layout2 = dir.path().join(format!("layout2-{format}"));
        berth(
            &data2,
            &[
                "copy",
                "-q",
                &format!("{format}:{}", back.display()),
                &format!("oci:{}:y", layout2.display()),
            ],
        );
    }
}

/// The config digest (hex) of the manifest skopeo reads at `location`.
fn skopeo_config(skopeo: &Skopeo, location: &str) -> String {
    let m: Value = serde_json::from_slice(&skopeo.run(&["inspect", "--raw", location])).unwrap();
    let d = m["config"]["digest"].as_str().unwrap();
    d.strip_prefix("sha256:").unwrap().to_owned()
}

#[test]
fn berth_save_then_load_gives_identical_digests_and_refuses_a_missing_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("berth");
    let root = busybox_rootfs(dir.path());
    let imported = berth(&data, &["import", s(&root), "localhost/rt:1"]);
    let manifest = |d: &Path| -> String {
        let v: Value = serde_json::from_str(&berth(d, &["inspect", "localhost/rt:1"])).unwrap();
        v["digest"].as_str().unwrap().to_owned()
    };
    for format in ["docker-archive", "oci-archive"] {
        let a1 = dir.path().join(format!("1-{format}.tar"));
        save(&data, format, &a1, "localhost/rt:1");
        let d2 = dir.path().join(format!("d2-{format}"));
        berth(&d2, &["load", "-q", "-i", s(&a1)]);
        assert_eq!(
            format!("sha256:{}", berth_inspect(&d2, "localhost/rt:1").0),
            imported.trim()
        );
        if format == "oci-archive" {
            assert_eq!(
                manifest(&d2),
                manifest(&data),
                "oci-archive keeps the manifest"
            );
        } else {
            // a docker-archive holds uncompressed layers: its load is a fixed point
            let a2 = dir.path().join("2-docker.tar");
            berth(&d2, &["save", "-q", "-o", s(&a2), "localhost/rt:1"]);
            let d3 = dir.path().join("d3");
            berth(&d3, &["load", "-q", "-i", s(&a2)]);
            assert_eq!(manifest(&d3), manifest(&d2));
            assert_eq!(std::fs::read(&a1).unwrap(), std::fs::read(&a2).unwrap());
        }
    }
    let missing = dir.path().join("missing.tar");
    let out = try_berth(&data, &["save", "-o", s(&missing), "localhost/nope:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no image docker.io")
            || String::from_utf8_lossy(&out.stderr).contains("no image localhost/nope:1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!missing.exists(), "a failed save left a file");
}

/// `berth import --change` makes the image config `podman import --change` makes from the
/// same instructions (as podman reads both images: berth's through an oci-archive).
#[test]
fn berth_import_changes_make_the_config_podman_import_makes() {
    requires_tool!("podman", "tar");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("berth");
    let root = busybox_rootfs(dir.path());
    let tar = dir.path().join("rootfs.tar");
    tar_of(&root, &tar);
    let sets: [&[&str]; 2] = [
        &[
            r#"ENTRYPOINT ["/bin/busybox", "sh"]"#,
            r#"CMD ["-c", "true"]"#,
            "USER 65532:65532",
            "WORKDIR /tmp",
            "ENV A=1",
            // (a key set twice: docker replaces it, as berth does; podman keeps both)
            "ENV B=2",
            "LABEL org.opencontainers.image.source=https://example.com/x",
            r#"LABEL quoted="b c""#,
            "EXPOSE 8443/tcp",
            "EXPOSE 53/udp",
            "STOPSIGNAL 15",
            "VOLUME /data",
        ],
        &["CMD echo hi", "entrypoint /bin/busybox", "user 1000"],
    ];
    let podman = Podman::new();
    for (i, changes) in sets.iter().enumerate() {
        let (p_name, b_name) = (format!("localhost/p:{i}"), format!("localhost/b:{i}"));
        let mut p_args = vec!["import", "-q"];
        let mut b_args = vec!["import", s(&tar), &b_name];
        for c in *changes {
            p_args.extend(["--change", c]);
            b_args.extend(["--change", c]);
        }
        p_args.extend([s(&tar), &p_name]);
        podman.run(&p_args);
        berth(&data, &b_args);
        let archive = dir.path().join(format!("b{i}.tar"));
        save_oci(&data, &b_name, &archive);
        podman.run(&["load", "-i", s(&archive)]);
        let config = |image: &str| -> Value {
            let v: Value = serde_json::from_str(&podman.run(&["image", "inspect", image])).unwrap();
            v[0]["Config"].clone()
        };
        let want = config(&p_name);
        assert!(want["Cmd"].is_array(), "podman applied no changes: {want}");
        assert_eq!(config(&b_name), want, "{changes:?}");
    }
}
