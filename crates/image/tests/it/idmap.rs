//! A user namespace by default (`berth_image::idmap`): the id-range allocator (disjoint
//! ranges across threads and processes, release, exhaustion, the `containers` fallback) and
//! root filesystems shown in a range — id-mapped (nothing copied) or chowned (forced) — run
//! by berth-runtime, runc and crun with a user namespace, checked from inside and outside.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::idmap::{
    self, DEFAULT_RANGE_SIZE, IdAllocator, IdmapError, IdmapMode, Method, RangedRootfs,
};
use berth_image::rootfs::{disk_usage, image_label, release_image};
use berth_image::snapshot::{Driver, Opts, SnapshotStore, Snapshotter, unmount, writable_dir};
use berth_image::spec::IdRange;
use berth_oci::Digest;
use berth_test_support::{Bundle, Runtime, write_file};

use crate::snapshot::helpers::{Scratch, require_root};

const CHILD_ENV: &str = "BERTH_IDMAP_ALLOC_CHILD";

fn subids(dir: &Path, content: &str) -> IdAllocator {
    write_file(dir.join("subuid"), content.as_bytes());
    write_file(dir.join("subgid"), content.as_bytes());
    IdAllocator::with_subid_files(dir.join("state"), dir.join("subuid"), dir.join("subgid"))
}

fn assert_disjoint(ranges: &[IdRange]) {
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            assert!(!a.overlaps(*b), "{a:?} overlaps {b:?} in {ranges:?}");
        }
    }
}

#[test]
fn allocator_gives_disjoint_ranges_to_concurrent_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let alloc = subids(tmp.path(), "root:100000:2097152\n");
    let ranges: Vec<IdRange> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let alloc = alloc.clone();
                s.spawn(move || {
                    alloc
                        .allocate(&format!("c{i}"), DEFAULT_RANGE_SIZE)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_disjoint(&ranges);
    for r in &ranges {
        assert!(
            r.host_start >= 100000 && r.end() <= 100000 + 2097152,
            "{r:?}"
        );
        assert_eq!(r.size, DEFAULT_RANGE_SIZE);
    }
    // persistent and idempotent: a new allocator sees the same holders
    let again = subids(tmp.path(), "root:100000:2097152\n");
    assert_eq!(again.list().unwrap().len(), 16);
    assert_eq!(again.allocate("c3", 10).unwrap(), ranges[3]);
}

/// The child: allocates for `owner-<pid>-<n>` and prints each range (run by the parent).
#[test]
#[ignore = "run by allocator_gives_disjoint_ranges_to_concurrent_processes"]
fn allocator_child() {
    #[expect(clippy::disallowed_methods, reason = "the parent passes the directory")]
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let alloc =
        IdAllocator::with_subid_files(dir.join("state"), dir.join("subuid"), dir.join("subgid"));
    for n in 0..4 {
        let r = alloc
            .allocate(&format!("p{}-{n}", std::process::id()), 1000)
            .unwrap();
        println!("RANGE {} {}", r.host_start, r.size);
    }
}

#[test]
fn allocator_gives_disjoint_ranges_to_concurrent_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let _ = subids(tmp.path(), "root:100000:65536\n");
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "idmap::allocator_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD_ENV, tmp.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ranges = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for l in stdout.lines().filter_map(|l| l.strip_prefix("RANGE ")) {
            let (a, b) = l.split_once(' ').unwrap();
            ranges.push(IdRange {
                host_start: a.parse().unwrap(),
                size: b.parse().unwrap(),
            });
        }
    }
    assert_eq!(ranges.len(), 24, "every child allocated 4 ranges");
    assert_disjoint(&ranges);
}

#[test]
fn allocator_release_exhaustion_and_the_containers_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    // no entry for root: the `containers` user's ids, as podman does
    let alloc = subids(
        tmp.path(),
        "berth-rootless:200000:65536\ncontainers:300000:131072\n",
    );
    let a = alloc.allocate("a", DEFAULT_RANGE_SIZE).unwrap();
    let b = alloc.allocate("b", DEFAULT_RANGE_SIZE).unwrap();
    assert_eq!((a.host_start, b.host_start), (300000, 365536));
    // exhausted: a clear error naming the remedy
    let e = alloc.allocate("c", DEFAULT_RANGE_SIZE).unwrap_err();
    assert!(
        matches!(e, IdmapError::Exhausted { in_use: 2, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("no free range of 65536 ids") && msg.contains("containers"),
        "{msg}"
    );
    // released on remove: the range is free again
    assert_eq!(alloc.release("a").unwrap(), Some(a));
    assert_eq!(alloc.release("a").unwrap(), None);
    assert_eq!(alloc.allocate("c", DEFAULT_RANGE_SIZE).unwrap(), a);
    // containers removed by a killed process are released too
    assert_eq!(
        alloc.release_missing(|id| id == "c").unwrap(),
        vec!["b".to_owned()]
    );
    assert_eq!(alloc.list().unwrap().keys().collect::<Vec<_>>(), ["c"]);
    // no entry for root nor containers: what line to add
    let none = subids(&tmp.path().join("none"), "berth-rootless:200000:65536\n");
    let msg = none.allocate("x", 10).unwrap_err().to_string();
    assert!(msg.contains("containers:2147483647:2147483648"), "{msg}");
    // subuid and subgid must both grant the ids
    let dir = tmp.path().join("mixed");
    write_file(dir.join("subuid"), b"root:100000:65536\n");
    write_file(dir.join("subgid"), b"root:500000:65536\n");
    let mixed =
        IdAllocator::with_subid_files(dir.join("state"), dir.join("subuid"), dir.join("subgid"));
    assert!(matches!(
        mixed.allocate("x", 10),
        Err(IdmapError::NoSubids { .. })
    ));
}

/// An image as committed snapshots, built from the test rootfs (busybox): layer 0 is the
/// rootfs plus `/owned` (1000:1000, 0640), `/suid` (a setuid root copy of busybox) and
/// `/capdir/grep` (busybox with `cap_net_raw+ep`); layer 1 adds `/etc/layer1`.
struct Image {
    scratch: Scratch,
    snap: SnapshotStore,
    top: Digest,
}

fn image(driver: Driver) -> Image {
    let scratch = Scratch::new();
    std::fs::set_permissions(scratch.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let snap = SnapshotStore::open(scratch.dir.path().join("snap"), driver).unwrap();
    let src = Bundle::new();
    let l0 = Digest::sha256_of(b"idmap layer 0");
    let m = snap.prepare("build0", None, &Opts::default()).unwrap();
    let dir = writable_dir(&m).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.rootfs().display()))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    write_file(dir.join("owned"), b"app's");
    std::os::unix::fs::chown(dir.join("owned"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(dir.join("owned"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::copy(dir.join("bin/busybox"), dir.join("suid")).unwrap();
    std::fs::set_permissions(dir.join("suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::create_dir(dir.join("capdir")).unwrap();
    std::fs::copy(dir.join("bin/busybox"), dir.join("capdir/grep")).unwrap();
    let st = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(dir.join("capdir/grep"))
        .status()
        .unwrap();
    assert!(st.success(), "setcap failed");
    snap.commit(l0.as_str(), "build0", &Opts::default())
        .unwrap();
    let l1 = Digest::sha256_of(b"idmap layer 1");
    let m = snap
        .prepare("build1", Some(l0.as_str()), &Opts::default())
        .unwrap();
    let dir = writable_dir(&m).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    write_file(dir.join("etc/layer1"), b"one");
    snap.commit(
        l1.as_str(),
        "build1",
        &Opts::default().label(image_label("idmap/test:1"), "x"),
    )
    .unwrap();
    Image {
        scratch,
        snap,
        top: l1,
    }
}

fn img_l0(img: &Image) -> String {
    img.snap.stat(img.top.as_str()).unwrap().parent.unwrap()
}

/// Unmounts its target on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

const SCRIPT: &str = "stat -c '%u:%g %a %n' /bin/busybox /owned /suid /etc/layer1 /; \
                      touch /tmp/new /made && stat -c '%u:%g %n' /tmp/new; cat /proc/self/uid_map";

/// Run `rootfs` in `runtime` with its range as the user namespace: the script above as root,
/// then `/capdir/grep CapEff /proc/self/status` as uid 1000. Returns both outputs.
fn run(runtime: &str, rootfs: &RangedRootfs) -> (String, String) {
    let rt = Runtime::find(runtime)
        .unwrap_or_else(|| panic!("{runtime} not found (build -p berth-runtime-cli first)"));
    let r = rootfs.range;
    let mut outs = Vec::new();
    for as_user in [false, true] {
        let mut bundle = Bundle::new();
        idmap::mount(rootfs, &bundle.rootfs()).unwrap();
        let _m = Mounted(bundle.rootfs());
        bundle
            .user_namespace(r.host_start, r.size)
            .no_new_privileges(false)
            .capabilities(&["CAP_NET_RAW", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]);
        if as_user {
            bundle
                .user(1000, 1000, &[])
                .args(&["/capdir/grep", "CapEff", "/proc/self/status"]);
        } else {
            bundle.args(&["/bin/sh", "-c", SCRIPT]);
        }
        let out = rt.run(&bundle);
        assert!(
            out.success(),
            "{runtime}: {}\n{}",
            out.stdout_str(),
            out.stderr_str()
        );
        if !as_user {
            // from the host, through the mount: the image's root is the range's root
            let md = std::fs::metadata(bundle.rootfs().join("bin/busybox")).unwrap();
            assert_eq!(
                (md.uid(), md.gid()),
                (r.host_start, r.host_start),
                "{runtime}"
            );
            let md = std::fs::metadata(bundle.rootfs().join("owned")).unwrap();
            assert_eq!(md.uid(), r.host_start + 1000, "{runtime}");
        }
        outs.push(out.stdout_str());
    }
    (outs.remove(0), outs.remove(0))
}

/// What every method must show, inside and outside.
fn check_ownership(runtime: &str, rootfs: &RangedRootfs, inside: &str, as_user: &str) {
    let r = rootfs.range;
    for want in [
        "0:0 755 /bin/busybox",
        "1000:1000 640 /owned",
        "0:0 4755 /suid",
        "0:0 644 /etc/layer1",
        "0:0 755 /\n",
        "0:0 /tmp/new",
    ] {
        assert!(
            inside.contains(want),
            "{runtime}: want {want:?} in\n{inside}"
        );
    }
    let map: Vec<&str> = inside.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", &r.host_start.to_string(), &r.size.to_string()]);
    // security.capability's root id follows the range: the file's capability is effective
    assert!(
        as_user.contains("CapEff:\t0000000000002000"),
        "{runtime}: {as_user}"
    );
    // from the host: what the container created is owned by the range
    let upper = writable_dir(&rootfs.mounts).unwrap();
    for f in ["tmp/new", "made"] {
        let md = std::fs::metadata(upper.join(f)).unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (r.host_start, r.host_start),
            "{runtime}: {f}"
        );
    }
}

/// Root, runc, crun and setcap, or return (fail under `BERTH_TEST_REQUIRE_TOOLS=1`).
macro_rules! require_runtimes {
    () => {
        if !require_root() {
            return;
        }
        berth_test_support::requires_tool!("runc");
        berth_test_support::requires_tool!("crun");
        berth_test_support::requires_tool!("setcap");
    };
}

const RUNTIMES: [&str; 3] = ["berth-runtime", "runc", "crun"];

fn total_usage(snap: &SnapshotStore) -> u64 {
    disk_usage(snap).unwrap().iter().map(|u| u.size).sum()
}

#[test]
fn idmapped_rootfs_owned_by_the_range_without_copying_the_image() {
    require_runtimes!();
    let img = image(Driver::Overlay);
    let snap = &img.snap;
    idmap::idmap_supported(snap).expect("kernel 6.18: id-mapped overlay layers work");
    let layers_before = total_usage(snap);
    let tmp = img.scratch.dir.path();
    let alloc = subids(tmp, "root:100000:1000000\n");
    let mut ranges = Vec::new();
    for (i, runtime) in RUNTIMES.iter().enumerate() {
        let id = format!("ctr-{i}");
        let range = alloc.allocate(&id, DEFAULT_RANGE_SIZE).unwrap();
        let rootfs = idmap::prepare(snap, &id, Some(&img.top), range, IdmapMode::Auto).unwrap();
        assert_eq!(rootfs.method, Method::IdMapped);
        let (inside, as_user) = run(runtime, &rootfs);
        check_ownership(runtime, &rootfs, &inside, &as_user);
        ranges.push(range);
    }
    // each container its own range
    assert_disjoint(&ranges);
    // nothing copied: the only new snapshots are the three containers' (a few empty files
    // and directories each), far below one copy of the image
    let infos = snap.list().unwrap();
    assert_eq!(infos.len(), 2 + 3, "{infos:?}");
    let grown = total_usage(snap) - layers_before;
    eprintln!("measured: image layers {layers_before} bytes; 3 id-mapped containers added {grown}");
    assert!(
        grown < layers_before / 10,
        "id-mapped containers used {grown} bytes; the image is {layers_before}"
    );
    // release on remove: snapshot and range
    for (i, range) in ranges.iter().enumerate() {
        let id = format!("ctr-{i}");
        snap.remove(&id).unwrap();
        assert_eq!(alloc.release(&id).unwrap(), Some(*range));
    }
    assert!(alloc.list().unwrap().is_empty());
    assert_eq!(snap.list().unwrap().len(), 2);
}

#[test]
fn chowned_fallback_forced_works_too_and_is_shared_per_range() {
    require_runtimes!();
    let img = image(Driver::Overlay);
    let snap = &img.snap;
    let layers_before = total_usage(snap);
    let range = IdRange {
        host_start: 300000,
        size: DEFAULT_RANGE_SIZE,
    };
    for (i, runtime) in RUNTIMES.iter().enumerate() {
        let id = format!("chown-{i}");
        let rootfs = idmap::prepare(snap, &id, Some(&img.top), range, IdmapMode::Chown).unwrap();
        assert_eq!(rootfs.method, Method::Chowned);
        let (inside, as_user) = run(runtime, &rootfs);
        check_ownership(runtime, &rootfs, &inside, &as_user);
        snap.remove(&id).unwrap();
        // the copy's file capability is scoped to the range (version 3, root id = the
        // range's root), as the kernel shows it through an id-mapped mount: a version-2 one
        // would apply in every user namespace below the host's
        let grep = snap
            .dir_of(&idmap::remap_key(&img_l0(&img), range))
            .unwrap()
            .join("fs/capdir/grep");
        let mut v = [0u8; 64];
        let n = rustix::fs::lgetxattr(&grep, "security.capability", &mut v[..]).unwrap();
        assert_eq!((n, v[3]), (24, 3), "{:?}", &v[..n]);
        assert_eq!(
            u32::from_le_bytes(v[20..24].try_into().unwrap()),
            range.host_start
        );
    }
    // one remapped copy of each layer for the range, made once and reused
    let remapped: Vec<String> = snap
        .list()
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .filter(|k| k.starts_with("remap/"))
        .collect();
    assert_eq!(remapped.len(), 2, "{remapped:?}");
    let after = total_usage(snap);
    eprintln!("measured: image layers {layers_before} bytes; with one chowned range {after}");
    assert!(after >= 2 * layers_before - layers_before / 10);
    // the remaps live with their base image: kept by gc while it exists, collected with it
    assert!(snap.gc().unwrap().removed.is_empty());
    assert_eq!(release_image(snap, "idmap/test:1").unwrap(), 2);
    let removed = snap.gc().unwrap().removed;
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert!(snap.list().unwrap().is_empty());
}

#[test]
fn idmapped_mode_forced_and_native_snapshotter_chowns() {
    require_runtimes!();
    let img = image(Driver::Native);
    let range = IdRange {
        host_start: 400000,
        size: DEFAULT_RANGE_SIZE,
    };
    // the native snapshotter has no lower layers to map: forcing id-mapped is an error
    let e =
        idmap::prepare(&img.snap, "n0", Some(&img.top), range, IdmapMode::IdMapped).unwrap_err();
    assert!(matches!(e, IdmapError::IdmapUnsupported { .. }), "{e:?}");
    assert!(img.snap.stat("n0").is_err(), "nothing left behind");
    let rootfs = idmap::prepare(&img.snap, "n1", Some(&img.top), range, IdmapMode::Auto).unwrap();
    assert_eq!(rootfs.method, Method::Chowned);
    let (inside, as_user) = run("berth-runtime", &rootfs);
    check_ownership("berth-runtime", &rootfs, &inside, &as_user);
}

/// A real image (busybox in three layers with deletions, an opaque directory and type
/// changes, unpacked by `ensure_layers`): the tree a container sees through either method is
/// the plain container's with every owner moved up by the range's start — whiteouts, opaque
/// directories, modes, links, devices and xattrs all kept.
#[test]
fn real_image_through_both_methods_equals_the_plain_tree_shifted() {
    use berth_image::rootfs::prepare;
    use berth_test_support::{diff_trees, tree};

    if !require_root() {
        return;
    }
    let s = Scratch::new();
    let (snap, image) = crate::rootfs::busybox_in_overlay(&s);
    let plain = s.mount(&prepare(&snap, "plain", image.top()).unwrap(), "plain");
    let plain = tree(&plain);
    assert!(plain.len() > 250, "{} paths", plain.len());
    let range = IdRange {
        host_start: 500000,
        size: DEFAULT_RANGE_SIZE,
    };
    // the kernel shows a file capability through an id-mapped mount as version 3 with the
    // range's root as root id (busybox's /usr/bin/ping has cap_net_raw): the chowned copy
    // must write the same
    let mut want = plain.clone();
    let mut caps = 0;
    for n in want.values_mut() {
        n.uid += range.host_start;
        n.gid += range.host_start;
        for (name, value) in &mut n.xattrs {
            if name == b"security.capability" && value.len() == 20 && value[3] == 2 {
                value[3] = 3;
                value.extend_from_slice(&range.host_start.to_le_bytes());
                caps += 1;
            }
        }
    }
    assert!(caps > 0, "the image has a file capability to check");
    let t = std::time::Instant::now();
    idmap::idmap_supported(&snap).unwrap();
    eprintln!("measured: probe {:?} (or its kept result)", t.elapsed());
    for (mode, method) in [
        (IdmapMode::Auto, Method::IdMapped),
        (IdmapMode::Chown, Method::Chowned),
    ] {
        let key = format!("c-{method:?}");
        let t0 = std::time::Instant::now();
        let rootfs = idmap::prepare(&snap, &key, image.top(), range, mode).unwrap();
        let t1 = std::time::Instant::now();
        assert_eq!(rootfs.method, method);
        let target = s.target(&key);
        idmap::mount(&rootfs, &target).unwrap();
        eprintln!(
            "measured: {method:?}: prepare {:?} (remap included), mount {:?}",
            t1 - t0,
            t1.elapsed()
        );
        let _m = Mounted(target.clone());
        let got = tree(&target);
        let diffs = diff_trees("shifted plain", &want, &format!("{method:?}"), &got);
        assert!(
            diffs.is_empty(),
            "{} differences:\n{}",
            diffs.len(),
            diffs.join("\n")
        );
    }
}

/// Containers of one range prepared at once (threads) in the chowned mode: every one gets a
/// root filesystem, and the range's remapped layers are made once (a second remapper's
/// commit loses the race and uses the winner's).
#[test]
fn concurrent_chowned_prepares_share_one_remap() {
    if !require_root() {
        return;
    }
    let img = image(Driver::Overlay);
    let range = IdRange {
        host_start: 600000,
        size: DEFAULT_RANGE_SIZE,
    };
    let snap = &img.snap;
    let top = &img.top;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                s.spawn(move || {
                    idmap::prepare(snap, &format!("t{i}"), Some(top), range, IdmapMode::Chown)
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            assert_eq!(r.method, Method::Chowned);
        }
    });
    let keys: Vec<String> = snap.list().unwrap().into_iter().map(|i| i.key).collect();
    let remaps = keys.iter().filter(|k| k.starts_with("remap/")).count();
    assert_eq!(remaps, 2, "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.starts_with("remap-active/")),
        "{keys:?}"
    );
    // each container's snapshot sits on the remapped top
    for i in 0..4 {
        let info = snap.stat(&format!("t{i}")).unwrap();
        assert_eq!(
            info.parent.as_deref(),
            Some(idmap::remap_key(top.as_str(), range).as_str())
        );
    }
}
