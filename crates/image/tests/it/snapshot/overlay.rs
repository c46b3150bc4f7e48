//! The overlay snapshotter through real overlayfs mounts.

use std::fs;
use std::os::unix::fs::MetadataExt;

use berth_image::snapshot::{
    Driver, ErrorKind, MOUNT_DATA_LIMIT, Opts, Snapshotter, Strategy, mount_all_with, unmount,
};

use super::helpers::{Scratch, layer, opaque_dir, require_root, upper, whiteout, write};

#[test]
fn chain_of_layers_merges_and_upper_layers_shadow_lower_ones() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    layer(&s, "l0", None, |d| {
        write(d, "etc/os", "base");
        write(d, "bin/a", "a0");
    });
    layer(&s, "l1", Some("l0"), |d| write(d, "bin/a", "a1"));
    layer(&s, "l2", Some("l1"), |d| write(d, "bin/b", "b2"));
    let m = s.prepare("ctr", Some("l2"), &Opts::default()).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].kind, "overlay");
    assert_eq!(m[0].lowerdirs().len(), 3, "{m:?}");
    // containerd's `index=off`, where the kernel has the option (this one does).
    if std::path::Path::new("/sys/module/overlay/parameters/index").exists() {
        assert_eq!(m[0].option("index"), Some("off"), "{m:?}");
    }
    let root = scratch.mount(&m, "ctr");
    assert_eq!(fs::read_to_string(root.join("etc/os")).unwrap(), "base");
    assert_eq!(fs::read_to_string(root.join("bin/a")).unwrap(), "a1");
    assert_eq!(fs::read_to_string(root.join("bin/b")).unwrap(), "b2");
    // Writes land in the container's upper only; the committed layers are untouched.
    write(&root, "bin/a", "changed");
    write(&root, "new", "n");
    let up = upper(&m);
    assert_eq!(fs::read_to_string(up.join("bin/a")).unwrap(), "changed");
    assert!(up.join("new").exists());
    let l1 = s.dir_of("l1").unwrap().join("fs");
    assert_eq!(fs::read_to_string(l1.join("bin/a")).unwrap(), "a1");
    // A committed layer cannot be mounted, a second key cannot reuse the name.
    assert_eq!(s.mounts("l1").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        s.prepare("ctr", Some("l2"), &Opts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    // Parents must be committed.
    let err = s
        .prepare("ctr2", Some("ctr"), &Opts::default())
        .unwrap_err();
    assert!(err.to_string().contains("not committed"), "{err}");
    unmount(&root).unwrap();
    assert_eq!(s.stat("l2").unwrap().parent.as_deref(), Some("l1"));
}

#[test]
fn whiteouts_and_opaque_directories_delete_through_the_mount() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    layer(&s, "base", None, |d| {
        write(d, "a/x", "x");
        write(d, "a/y", "y");
        write(d, "b/z", "z");
        write(d, "b/sub/deep", "deep");
        write(d, "gone", "g");
    });
    layer(&s, "del", Some("base"), |d| {
        whiteout(d, "a/x");
        whiteout(d, "gone");
        opaque_dir(d, "b");
        write(d, "b/new", "new");
    });
    // Through an active snapshot (overlay with an upper) and a view (read-only overlay of
    // two lower layers): the same tree.
    let active = s.prepare("ctr", Some("del"), &Opts::default()).unwrap();
    let view = s.view("v", Some("del"), &Opts::default()).unwrap();
    for (name, m) in [("active", &active), ("view", &view)] {
        let root = scratch.mount(m, name);
        assert!(!root.join("a/x").exists(), "{name}: whiteout a/x");
        assert!(!root.join("gone").exists(), "{name}: whiteout gone");
        assert_eq!(fs::read_to_string(root.join("a/y")).unwrap(), "y");
        assert!(!root.join("b/z").exists(), "{name}: opaque b hides b/z");
        assert!(!root.join("b/sub").exists(), "{name}: opaque b hides b/sub");
        assert_eq!(fs::read_to_string(root.join("b/new")).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(root.join("b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["new"], "{name}");
        unmount(&root).unwrap();
    }
}

/// Build `n` layers, each adding `f<i>` and replacing `top`.
fn many_layers(s: &dyn Snapshotter, n: usize) -> String {
    let mut parent: Option<String> = None;
    for i in 0..n {
        let name = format!("layer-{i}");
        layer(s, &name, parent.as_deref(), |d| {
            write(d, &format!("f{i}"), &i.to_string());
            write(d, "top", &i.to_string());
        });
        parent = Some(name);
    }
    parent.unwrap()
}

fn check_many(root: &std::path::Path, n: usize) {
    for i in 0..n {
        assert_eq!(
            fs::read_to_string(root.join(format!("f{i}"))).unwrap(),
            i.to_string()
        );
    }
    // The uppermost layer wins: the lower directories are in the right order.
    assert_eq!(
        fs::read_to_string(root.join("top")).unwrap(),
        (n - 1).to_string()
    );
}

#[test]
fn more_layers_than_one_mount_page_holds_mount_with_each_strategy() {
    if !require_root() {
        return;
    }
    const N: usize = 140;
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    let top = many_layers(&s, N);
    let m = s.prepare("ctr", Some(&top), &Opts::default()).unwrap();
    let data_len: usize = m[0].options.iter().map(|o| o.len() + 1).sum();
    assert!(
        data_len > MOUNT_DATA_LIMIT,
        "the test must exceed a page: {data_len}"
    );
    // One plain mount(2) with these options is what the defence is for: it fails.
    let plain = scratch.target("plain");
    let err = mount_all_with(&m, &plain, Strategy::Plain).unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    eprintln!("plain mount of {N} layers ({data_len} bytes of options): {err}: {cause:?}");
    for (name, strategy) in [
        ("auto", Strategy::Auto),
        ("lowerdir-plus", Strategy::LowerdirPlus),
        ("relative", Strategy::Relative),
    ] {
        let t = scratch.target(name);
        mount_all_with(&m, &t, strategy).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_many(&t, N);
        // However the options were passed, the mount is seen as using the snapshot.
        let err = s.remove("ctr").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{name}: {err}");
        write(&t, "written", name);
        unmount(&t).unwrap();
        assert_eq!(fs::read_to_string(upper(&m).join("written")).unwrap(), name);
    }
    // A read-only view of the same chain (a lower-only overlay) mounts too.
    let v = s.view("v", Some(&top), &Opts::default()).unwrap();
    let root = scratch.mount(&v, "view");
    check_many(&root, N);
    unmount(&root).unwrap();
}

/// A file under the mount held open for a moment (as by a child forked by another thread,
/// between its fork and its exec) makes the mount busy only for that moment: `unmount`
/// waits it out rather than failing the caller (the CI flake of the test above).
#[test]
fn unmount_waits_out_a_mount_that_is_busy_for_a_moment() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    layer(&s, "one", None, |d| write(d, "f", "1"));
    let m = s.prepare("ctr", Some("one"), &Opts::default()).unwrap();
    let root = scratch.mount(&m, "ctr");
    let held = fs::File::open(root.join("f")).unwrap();
    let release = std::time::Instant::now() + std::time::Duration::from_millis(200);
    let holder = std::thread::spawn(move || {
        berth_test_support::wait_until(std::time::Duration::from_secs(5), || {
            std::time::Instant::now() >= release
        });
        drop(held);
    });
    unmount(&root).unwrap();
    assert!(std::time::Instant::now() >= release, "unmounted while busy");
    holder.join().unwrap();
    // Busy for longer than the wait: the error names the mount and says what to do.
    let root = scratch.mount(&m, "ctr-again");
    let held = fs::File::open(root.join("f")).unwrap();
    let err = unmount(&root).unwrap_err();
    assert!(
        err.to_string().contains("stop the processes using it"),
        "{err}"
    );
    drop(held);
    unmount(&root).unwrap();
}

#[test]
fn views_are_read_only() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    layer(&s, "one", None, |d| write(d, "f", "1"));
    layer(&s, "two", Some("one"), |d| write(d, "g", "2"));
    // One parent: a read-only bind of it; two: a lower-only overlay; none: an empty ro bind.
    for (key, parent) in [("v1", Some("one")), ("v2", Some("two")), ("v0", None)] {
        let m = s.view(key, parent, &Opts::default()).unwrap();
        assert!(m.iter().all(|m| m.is_read_only()), "{m:?}");
        assert!(berth_image::snapshot::writable_dir(&m).is_none());
        let root = scratch.mount(&m, key);
        let rofs = Some(rustix::io::Errno::ROFS.raw_os_error());
        let err = fs::create_dir(root.join("d")).unwrap_err();
        assert_eq!(err.raw_os_error(), rofs, "{key}: mkdir");
        if parent.is_some() {
            let err = fs::OpenOptions::new()
                .write(true)
                .open(root.join("f"))
                .unwrap_err();
            assert_eq!(err.raw_os_error(), rofs, "{key}: open for writing");
        }
        unmount(&root).unwrap();
    }
    assert_eq!(
        s.commit("c", "v2", &Opts::default()).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn remove_is_refused_while_children_exist_or_while_mounted() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    layer(&s, "base", None, |d| write(d, "f", "1"));
    layer(&s, "mid", Some("base"), |d| write(d, "g", "2"));
    let m = s.prepare("ctr", Some("mid"), &Opts::default()).unwrap();
    let err = s.remove("mid").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("ctr"), "{err}");
    assert!(s.dir_of("mid").unwrap().join("fs/g").exists());
    // Mounted: neither removed nor committed.
    let root = scratch.mount(&m, "ctr");
    let err = s.remove("ctr").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("unmount"), "{err}");
    let err = s.commit("c", "ctr", &Opts::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(root.join("g").exists());
    unmount(&root).unwrap();
    // Unmounted, children first: all goes.
    let dir = s.dir_of("mid").unwrap();
    s.remove("ctr").unwrap();
    s.remove("mid").unwrap();
    s.remove("base").unwrap();
    assert!(!dir.exists());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn upper_directory_takes_the_parent_roots_owner() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    layer(&s, "base", None, |d| {
        rustix::fs::chown(
            d,
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(5678)),
        )
        .unwrap();
    });
    let m = s.prepare("ctr", Some("base"), &Opts::default()).unwrap();
    let root = scratch.mount(&m, "ctr");
    let md = fs::metadata(&root).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678));
    unmount(&root).unwrap();
}

#[test]
fn overlayfs_stacks_500_lower_layers_and_501_is_refused_by_name() {
    if !require_root() {
        return;
    }
    use berth_image::snapshot::{MountError, OVERLAY_MAX_LOWER, mount_all};
    let scratch = Scratch::new();
    let dirs: Vec<std::path::PathBuf> = (0..=OVERLAY_MAX_LOWER)
        .map(|i| {
            let d = scratch.path().join("layers").join(i.to_string());
            write(&d, &format!("f{i}"), "x");
            d
        })
        .collect();
    let overlay = |n: usize| berth_image::snapshot::Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![format!(
            "lowerdir={}",
            dirs[..n]
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        )],
    };
    let t = scratch.target("max");
    mount_all(&[overlay(OVERLAY_MAX_LOWER)], &t).unwrap();
    assert!(t.join("f0").exists() && t.join(format!("f{}", OVERLAY_MAX_LOWER - 1)).exists());
    unmount(&t).unwrap();
    let err = mount_all(&[overlay(OVERLAY_MAX_LOWER + 1)], &t).unwrap_err();
    assert!(
        matches!(err, MountError::TooManyLayers { layers: 501, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

/// Layer `i` of the parallel-unpack chain: files, a whiteout, an opaque directory.
fn parallel_layer(d: &std::path::Path, i: usize) {
    write(d, &format!("f{i}"), &i.to_string());
    write(d, "top", &i.to_string());
    if i == 0 {
        write(d, "dir/old", "old");
    }
    if i == 3 {
        opaque_dir(d, "dir");
        write(d, "dir/new3", "3");
    }
    if i > 0 && i.is_multiple_of(2) {
        whiteout(d, &format!("f{}", i - 1));
    }
}

#[test]
fn layers_unpacked_in_parallel_without_parents_are_chained_at_commit() {
    if !require_root() {
        return;
    }
    use berth_image::snapshot::chain_ids;
    use berth_oci::Digest;
    const N: usize = 8;
    let scratch = Scratch::new();
    let s = scratch.store(Driver::Overlay);
    assert!(s.driver().supports_rebase());
    let diff_ids: Vec<Digest> = (0..N)
        .map(|i| Digest::sha256_of(format!("layer {i}").as_bytes()))
        .collect();
    let chain = chain_ids(&diff_ids);
    // Every layer at once, each into its own parentless snapshot, in threads.
    std::thread::scope(|scope| {
        for i in 0..N {
            let s = &s;
            scope.spawn(move || {
                let m = s
                    .prepare(&format!("extract-{i}"), None, &Opts::default())
                    .unwrap();
                parallel_layer(&upper(&m), i);
            });
        }
    });
    // Then chained in order as each is committed under its chain ID.
    for i in 0..N {
        let mut opts = Opts::default();
        if i > 0 {
            opts = opts.onto(chain[i - 1].as_str());
        }
        s.commit(chain[i].as_str(), &format!("extract-{i}"), &opts)
            .unwrap();
    }
    assert_eq!(
        s.stat(chain[N - 1].as_str()).unwrap().parent.as_deref(),
        Some(chain[N - 2].as_str())
    );
    // The same layers unpacked one after the other, each on its parent.
    let sequential = berth_image::snapshot::SnapshotStore::open(
        scratch.path().join("sequential"),
        Driver::Overlay,
    )
    .unwrap();
    let mut parent: Option<String> = None;
    for i in 0..N {
        let name = format!("seq-{i}");
        layer(&sequential, &name, parent.as_deref(), |d| {
            parallel_layer(d, i)
        });
        parent = Some(name);
    }
    let a = scratch.mount(
        &s.prepare("ctr", Some(chain[N - 1].as_str()), &Opts::default())
            .unwrap(),
        "parallel",
    );
    let b = scratch.mount(
        &sequential
            .prepare("ctr", parent.as_deref(), &Opts::default())
            .unwrap(),
        "sequential",
    );
    assert_eq!(
        fs::read_to_string(a.join("top")).unwrap(),
        (N - 1).to_string()
    );
    for gone in ["f1", "f3", "f5", "dir/old"] {
        assert!(
            !a.join(gone).exists(),
            "{gone} was deleted by a later layer"
        );
    }
    assert!(a.join("f7").exists() && a.join("dir/new3").exists());
    let (ta, tb) = (super::helpers::tree(&a), super::helpers::tree(&b));
    let strip = |t: std::collections::BTreeMap<String, String>| {
        // Times differ between the two unpacks; everything else must not.
        t.into_iter()
            .map(|(k, v)| (k, v.split(" mtime ").next().unwrap_or_default().to_owned()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(strip(ta), strip(tb));
    unmount(&a).unwrap();
    unmount(&b).unwrap();
}

#[test]
fn rebase_at_commit_is_refused_where_it_cannot_be_right() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new();
    for driver in [Driver::Overlay, Driver::Native] {
        let s = scratch.store(driver);
        layer(&s, "base", None, |d| write(d, "f", "1"));
        layer(&s, "other", None, |d| write(d, "g", "2"));
        // Onto a parent other than the one it was prepared on.
        s.prepare("on-base", Some("base"), &Opts::default())
            .unwrap();
        let err = s
            .commit("c1", "on-base", &Opts::default().onto("other"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // Onto the same parent: allowed.
        s.commit("c1", "on-base", &Opts::default().onto("base"))
            .unwrap();
        // Onto an active snapshot or a missing one.
        s.prepare("active", None, &Opts::default()).unwrap();
        s.prepare("loose", None, &Opts::default()).unwrap();
        let err = s
            .commit("c2", "loose", &Opts::default().onto("active"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{driver:?}: {err}");
        let err = s
            .commit("c2", "loose", &Opts::default().onto("missing"))
            .unwrap_err();
        let expected = if driver.supports_rebase() {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidInput // native: no rebase at all
        };
        assert_eq!(err.kind(), expected, "{driver:?}: {err}");
        // The refused commits left the active snapshot as it was.
        assert_eq!(
            s.stat("loose").unwrap().kind,
            berth_image::snapshot::Kind::Active
        );
        let result = s.commit("c2", "loose", &Opts::default().onto("base"));
        assert_eq!(
            result.is_ok(),
            driver.supports_rebase(),
            "{driver:?}: {result:?}"
        );
    }
}
