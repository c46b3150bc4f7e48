//! The profile of an image: executables by path and content hash from tar layers (whiteouts,
//! opaque directories, hardlinks, diff IDs), from overlay lower directories (whiteouts made
//! by the kernel itself), the Debian image measured, and the JSON cache round trip.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use berth_image::unpack::Limits;
use berth_test_support::Layer;
use berth_watch::profile::{ImageConfig, ImageFacts, Port, Profile, ProfileError};

use crate::support::{Entry, blobs, put, require_root, require_tool, sha256, tar_of};

const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0rest of an elf file";

fn paths(p: &Profile) -> Vec<&str> {
    p.executables.keys().map(String::as_str).collect()
}

#[test]
fn layers_with_whiteouts_opaque_dirs_and_hardlinks_leave_the_squashed_executables() {
    let l1 = tar_of(&[
        Entry::Dir("bin/"),
        Entry::File("bin/a", b"a v1", 0o755),
        Entry::File("bin/elf", ELF, 0o644),
        Entry::File("etc/conf", b"x=1", 0o644),
        Entry::File("opt/x/run.sh", b"#!/bin/sh\necho", 0o644),
        Entry::File("opt/x/tool", b"tool", 0o700),
        Entry::File("lib/l", b"lib", 0o755),
        Entry::File("sbin/setuid", b"su", 0o4755),
    ]);
    let l2 = tar_of(&[
        Entry::File("bin/.wh.a", b"", 0o644),
        Entry::File("opt/x/.wh..wh..opq", b"", 0o644),
        Entry::File("opt/x/new", b"new", 0o755),
        Entry::Link("usr/bin/elf2", "bin/elf"),
        // a regular file replacing a directory hides what was under it
        Entry::File("lib", b"not a dir", 0o644),
    ]);
    let l3 = tar_of(&[Entry::File("bin/a", b"a v2", 0o750)]);
    let layers: Vec<Layer> = [&l1, &l2, &l3].iter().map(|t| Layer::from_tar(t)).collect();
    let facts = ImageFacts {
        entrypoint: vec!["/bin/a".into()],
        ..ImageFacts::default()
    };
    let p = Profile::from_layers(&facts, blobs(&layers), &Limits::default()).unwrap();

    assert_eq!(
        paths(&p),
        [
            "/bin/a",
            "/bin/elf",
            "/opt/x/new",
            "/sbin/setuid",
            "/usr/bin/elf2"
        ]
    );
    let a = p.executable("/bin/a").unwrap();
    assert_eq!((a.mode, a.size), (0o750, 4));
    assert_eq!(a.sha256, sha256(b"a v2"));
    assert_eq!(a.layer.as_ref(), Some(&layers[2].diff_id));
    assert_eq!(
        p.executable("/bin/elf").unwrap().mode,
        0o644,
        "ELF magic, no x bit"
    );
    assert_eq!(p.executable("/sbin/setuid").unwrap().mode, 0o4755);
    let link = p.executable("/usr/bin/elf2").unwrap();
    assert_eq!(link.sha256, sha256(ELF));
    assert_eq!(
        link.layer.as_ref(),
        Some(&layers[0].diff_id),
        "a hardlink is its target's content"
    );
    assert_eq!(
        p.layers,
        layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(p.config, facts);

    // content answers "is this an image binary": the old /bin/a is gone, a copy of elf is found
    assert_eq!(p.find_hash(&sha256(ELF)), Some("/bin/elf"));
    assert_eq!(p.find_hash(&sha256(b"a v1")), None);
    assert_eq!(
        p.find_hash(&sha256(b"#!/bin/sh\necho")),
        None,
        "whited out by the opaque dir"
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let mut layer = Layer::from_tar(&tar_of(&[Entry::File("bin/a", b"a", 0o755)]));
    let other = Layer::from_tar(&tar_of(&[Entry::File("bin/b", b"b", 0o755)]));
    layer.diff_id = other.diff_id.clone();
    let err = Profile::from_layers(&ImageFacts::default(), blobs(&[layer]), &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, ProfileError::DiffId { index: 0, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("does not match the image"),
        "{err}"
    );
}

#[test]
fn image_config_facts_and_diff_ids_are_read() {
    let d = sha256(b"layer");
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}},
            "User": "101:101",
            "WorkingDir": "/srv"
        },
        "rootfs": {"type": "layers", "diff_ids": [d.as_str()]}
    });
    let c = ImageConfig::from_json(&serde_json::to_vec(&config).unwrap()).unwrap();
    assert_eq!(c.facts.entrypoint, ["/docker-entrypoint.sh"]);
    assert_eq!(c.facts.cmd, ["nginx", "-g", "daemon off;"]);
    let port = |port, protocol: &str| Port {
        port,
        protocol: protocol.into(),
    };
    assert_eq!(
        c.facts.exposed_ports,
        [port(53, "udp"), port(80, "tcp"), port(8080, "tcp")]
    );
    assert_eq!(
        (c.facts.user.as_str(), c.facts.working_dir.as_str()),
        ("101:101", "/srv")
    );
    assert_eq!(c.diff_ids, [d]);
    // null Entrypoint/Cmd (as docker writes them) are empty
    let c = ImageConfig::from_json(br#"{"config":{"Entrypoint":null,"Cmd":null}}"#).unwrap();
    assert!(c.facts.entrypoint.is_empty() && c.facts.cmd.is_empty());
    let err = ImageConfig::from_json(br#"{"config":{"ExposedPorts":{"http":{}}}}"#).unwrap_err();
    assert!(err.to_string().contains("\"http\""), "{err}");
}

#[test]
fn a_profile_round_trips_through_json_and_refuses_another_schema() {
    let layer = Layer::from_tar(&tar_of(&[Entry::File("bin/a", b"a", 0o755)]));
    let p =
        Profile::from_layers(&ImageFacts::default(), blobs(&[layer]), &Limits::default()).unwrap();
    let json = p.to_json();
    let back = Profile::from_json(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        back.find_hash(&sha256(b"a")),
        Some("/bin/a"),
        "the hash index is rebuilt"
    );
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["schema"], "berth.watch.profile/v1");
    assert_eq!(v["executables"]["/bin/a"]["mode"], 0o755);
    let other = String::from_utf8(json)
        .unwrap()
        .replace("profile/v1", "profile/v9");
    let err = Profile::from_json(other.as_bytes()).unwrap_err();
    assert!(matches!(err, ProfileError::Schema { .. }), "{err}");
}

/// An overlay mount, unmounted on drop.
struct Overlay {
    merged: PathBuf,
}

impl Overlay {
    fn mount(lower: &[&Path], upper: &Path, work: &Path, merged: &Path) -> Overlay {
        let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            upper.display(),
            work.display()
        );
        let data = CString::new(data).unwrap();
        rustix::mount::mount(
            "overlay",
            merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .unwrap_or_else(|e| panic!("mount overlay on {}: {e}", merged.display()));
        Overlay {
            merged: merged.to_owned(),
        }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn lower_dirs_with_the_kernels_own_whiteouts_give_the_merged_view() {
    require_root("mounting an overlay");
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| {
        let p = t.path().join(n);
        fs::create_dir_all(&p).unwrap();
        p
    };
    let (bottom, middle, upper, work, merged) =
        (d("bottom"), d("middle"), d("upper"), d("work"), d("merged"));
    put(&bottom.join("bin/sh"), b"sh", 0o755);
    put(&bottom.join("bin/gone"), b"gone", 0o755);
    put(&bottom.join("opt/app/old"), b"old", 0o755);
    put(&bottom.join("etc/passwd"), b"root", 0o644);
    put(&middle.join("bin/tool"), ELF, 0o644);
    put(&middle.join("opt/app/mid"), b"mid", 0o755);
    {
        let _m = Overlay::mount(&[&middle, &bottom], &upper, &work, &merged);
        // the kernel writes a whiteout (a 0/0 char device) and an opaque directory
        fs::remove_file(merged.join("bin/gone")).unwrap();
        fs::remove_dir_all(merged.join("opt/app")).unwrap();
        fs::create_dir(merged.join("opt/app")).unwrap();
        put(&merged.join("opt/app/new"), b"new", 0o755);
        put(
            &merged.join("usr/local/bin/miner"),
            b"#!/bin/sh\nmine",
            0o644,
        );
        let seen =
            Profile::from_dirs(std::slice::from_ref(&merged), ImageFacts::default()).unwrap();
        drop(_m);
        let wh = fs::symlink_metadata(upper.join("bin/gone")).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()) && wh.rdev() == 0,
            "the kernel made a 0/0 whiteout"
        );
        let from_layers = Profile::from_dirs(
            &[upper.clone(), middle.clone(), bottom.clone()],
            ImageFacts::default(),
        )
        .unwrap();
        assert_eq!(
            paths(&from_layers),
            [
                "/bin/sh",
                "/bin/tool",
                "/opt/app/new",
                "/usr/local/bin/miner"
            ]
        );
        assert_eq!(
            from_layers.executables, seen.executables,
            "the lower dirs squash to what the mount shows"
        );
        assert_eq!(
            from_layers.lower_dirs,
            [upper.clone(), middle.clone(), bottom.clone()]
        );
    }
}

#[test]
fn xattr_whiteouts_and_opaque_dirs_are_honoured() {
    require_root("setting trusted.* xattrs");
    let t = tempfile::tempdir().unwrap();
    let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
    put(&lower.join("bin/x"), b"x", 0o755);
    put(&lower.join("d/y"), b"y", 0o755);
    put(&lower.join("u/v"), b"v", 0o755);
    // an xattr whiteout: a zero-size file with overlay.whiteout (trusted. and user. names)
    put(&upper.join("bin/x"), b"", 0o644);
    rustix::fs::setxattr(
        upper.join("bin/x"),
        "trusted.overlay.whiteout",
        b"",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    put(&upper.join("d/z"), b"z", 0o755);
    rustix::fs::setxattr(
        upper.join("d"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    put(&upper.join("u/w"), b"w", 0o755);
    rustix::fs::setxattr(
        upper.join("u"),
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let p = Profile::from_dirs(&[upper, lower], ImageFacts::default()).unwrap();
    assert_eq!(paths(&p), ["/d/z", "/u/w"]);
}

/// Every executable of a root file system as `find` sees it: regular files with an x bit,
/// or starting with ELF or `#!` magic, path → sha256 (through sha256sum).
fn find_executables(root: &Path) -> BTreeMap<String, String> {
    let out = Command::new("find")
        .arg(root)
        .args(["-type", "f", "-print0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut m = BTreeMap::new();
    for p in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let p = Path::new(std::str::from_utf8(p).unwrap());
        let meta = fs::symlink_metadata(p).unwrap();
        let data = fs::read(p).unwrap();
        if meta.mode() & 0o111 != 0 || data.starts_with(b"\x7fELF") || data.starts_with(b"#!") {
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            m.insert(rel, sha256(&data).to_string());
        }
    }
    m
}

#[test]
fn debian_image_profile_equals_a_walk_of_its_root_and_is_measured() {
    require_tool("tar", "apt-get install tar");
    let root = berth_test_support::debian_rootfs().unwrap_or_else(|| {
        panic!("no Debian root filesystem\nhint: run scripts/make-debian-rootfs (debootstrap; scripts/test runs it)")
    });
    let gnu_tar = |args: &[&str]| {
        let out = Command::new("tar")
            .args(["--format=posix", "--numeric-owner", "-C"])
            .arg(&root)
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
    let layers = [
        Layer::from_tar(&gnu_tar(&["--exclude=./usr/share", "."])),
        Layer::from_tar(&gnu_tar(&["./usr/share"])),
    ];
    let size: usize = layers.iter().map(|l| l.data.len()).sum();
    let started = Instant::now();
    let p =
        Profile::from_layers(&ImageFacts::default(), blobs(&layers), &Limits::default()).unwrap();
    let took = started.elapsed();
    let json = p.to_json();
    eprintln!(
        "debian profile: {} executables ({} distinct contents) from {} MB of layers in {took:?}; JSON {} KiB",
        p.executables.len(),
        p.executables
            .values()
            .map(|e| &e.sha256)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        size >> 20,
        json.len() >> 10
    );
    let expected = find_executables(&root);
    let ours: BTreeMap<String, String> = p
        .executables
        .iter()
        .map(|(k, v)| (k.clone(), v.sha256.to_string()))
        .collect();
    assert_eq!(
        ours, expected,
        "the profile holds exactly the executables of the tree"
    );
    assert!(
        p.executable("/usr/bin/dpkg").is_some(),
        "dpkg is in the image"
    );
    let dirs = Profile::from_dirs(std::slice::from_ref(&root), ImageFacts::default()).unwrap();
    let dir_hashes: BTreeMap<String, String> = dirs
        .executables
        .iter()
        .map(|(k, v)| (k.clone(), v.sha256.to_string()))
        .collect();
    assert_eq!(
        dir_hashes, ours,
        "the tree read as a directory is the same profile"
    );
}
