//! Attribution of cgroup ids to containers: real containers started by runc, crun and
//! berth-runtime (as root) are found in their runtimes' state directories with the right
//! pid and cgroup id (the inode `stat` reports for their cgroup2 directory); one under a
//! containerd-style namespace directory; an engine record names its container; a pid whose
//! start time differs is not taken; a deleted container disappears on rescan.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_test_support::{Bundle, ContainerGuard, Runtime};
use berth_watch::containers::{
    Containers, RuntimeKind, Sources, StateDir, cgroup2_mount, root_overlay,
};

use crate::support::{require_root, require_tool};

fn cgroup2() -> PathBuf {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    cgroup2_mount(&mi).expect("a cgroup2 mount (this host is unified or hybrid)")
}

fn sources(dirs: Vec<StateDir>) -> Sources {
    Sources {
        state_dirs: dirs,
        proc: PathBuf::from("/proc"),
        cgroup2: cgroup2(),
    }
}

/// The inode of a directory as `stat(1)` reports it (an independent reading).
fn stat_inode(dir: &Path) -> u64 {
    let out = Command::new("stat")
        .args(["-c", "%i"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stat {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn find_runtime(name: &str) -> Runtime {
    match name {
        "berth-runtime" => Runtime::find(name).unwrap_or_else(|| {
            panic!("berth-runtime is not built\nhint: cargo build -p berth-runtime-cli (scripts/test builds the workspace)")
        }),
        _ => {
            require_tool(name, &format!("apt-get install -y {name}"));
            Runtime::find(name).unwrap()
        }
    }
}

fn sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.args(&["/bin/sleep", "600"]);
    b
}

fn kind_of(name: &str) -> RuntimeKind {
    match name {
        "runc" => RuntimeKind::Runc,
        "crun" => RuntimeKind::Crun,
        _ => RuntimeKind::BerthRuntime,
    }
}

/// Start a container with `name`, find it, delete it, see it gone.
fn found_with_its_cgroup_id_and_forgotten_when_deleted(name: &str) {
    require_root("starting containers");
    let rt = find_runtime(name);
    let bundle = sleeper();
    let src = sources(vec![StateDir {
        runtime: kind_of(name),
        path: rt.root().to_owned(),
        namespaced: false,
    }]);
    // watch started before the container: nothing yet
    let (mut all, problems) = Containers::scan(&src);
    assert!(
        problems.is_empty() && all.is_empty(),
        "{problems:?} {all:?}"
    );
    let guard = ContainerGuard::create(&rt, &bundle);
    guard.start();
    let pid = u32::try_from(guard.pid()).unwrap();
    // its first event (an unknown cgroup id) rescans and finds it
    let cgroup_dir = src
        .cgroup2
        .join(bundle.cgroups_path().unwrap().trim_start_matches('/'));
    let (found, changes) = all.resolve(stat_inode(&cgroup_dir), &src, Duration::ZERO);
    assert_eq!(found.map(|c| c.id.as_str()), Some(bundle.id()), "{name}");
    let changes = changes.expect("an unknown cgroup id rescans");
    assert_eq!(changes.added.len(), 1, "{changes:?}");
    assert!(changes.problems.is_empty(), "{:?}", changes.problems);
    // an id of no container rescans at most once per interval
    let (none, again) = all.resolve(1, &src, Duration::from_secs(3600));
    assert!(
        none.is_none() && again.is_none(),
        "no rescan within the interval"
    );
    let c = all
        .by_id(bundle.id(), None)
        .unwrap_or_else(|| panic!("{name}: {} not found in {all:?}", bundle.id()))
        .clone();
    assert_eq!(c.runtime, kind_of(name));
    assert_eq!(c.pid, pid);
    assert_eq!(c.bundle.as_deref(), Some(bundle.path()), "{name}");
    assert_eq!(
        c.declared_ports, None,
        "{name}: no exposedPorts annotation, no declared ports"
    );
    let dir = src.cgroup2.join(c.cgroup_path.trim_start_matches('/'));
    assert_eq!(
        c.cgroup_id,
        stat_inode(&dir),
        "{name}: cgroup id of {}",
        dir.display()
    );
    assert_eq!(all.by_cgroup(c.cgroup_id), Some(&c));
    assert_eq!(
        c.cgroup_path,
        bundle.cgroups_path().unwrap(),
        "{name} put the container in its own cgroup2 directory"
    );

    // a rescan with nothing changed changes nothing
    let same = all.rescan(&src);
    assert!(same.added.is_empty() && same.removed.is_empty(), "{same:?}");

    guard.kill("KILL").assert_success();
    assert!(
        guard.wait_for_status("stopped", Duration::from_secs(30)),
        "{name}: never stopped"
    );
    let gone = all.rescan(&src);
    assert_eq!(
        gone.removed
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        [bundle.id()],
        "a stopped container is not running"
    );
    rt.delete(bundle.id()).assert_success();
    let again = all.rescan(&src);
    assert!(
        again.added.is_empty() && again.removed.is_empty() && all.is_empty(),
        "{again:?} {all:?}"
    );
}

#[test]
fn runc_container_is_attributed_and_forgotten_when_deleted() {
    found_with_its_cgroup_id_and_forgotten_when_deleted("runc");
}

#[test]
fn crun_container_is_attributed_and_forgotten_when_deleted() {
    found_with_its_cgroup_id_and_forgotten_when_deleted("crun");
}

#[test]
fn berth_runtime_container_is_attributed_and_forgotten_when_deleted() {
    found_with_its_cgroup_id_and_forgotten_when_deleted("berth-runtime");
}

/// An overlay mount, unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn runc_under_a_containerd_namespace_on_an_overlay_named_by_an_engine_record() {
    require_root("starting containers");
    let rt = find_runtime("runc");
    let t = tempfile::tempdir().unwrap();
    // the container's root: an overlay over the bundle's rootfs
    let mut bundle = sleeper();
    let (upper, work, merged) = (
        t.path().join("upper"),
        t.path().join("work"),
        t.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        bundle.rootfs().display(),
        upper.display(),
        work.display()
    );
    let data = std::ffi::CString::new(data).unwrap();
    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::empty(),
        data.as_c_str(),
    )
    .unwrap();
    let _m = Mounted(merged.clone());
    bundle.config_mut()["root"]["path"] = serde_json::json!(merged);
    bundle.config_mut()["annotations"] = serde_json::json!({"io.kubernetes.cri.container-name": "web", "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.27", "org.opencontainers.image.exposedPorts": "8080/tcp,53/udp,80,junk"});
    let guard = ContainerGuard::create(&rt, &bundle);
    guard.start();
    let pid = guard.pid();

    // containerd keeps one runc root per namespace: /run/containerd/runc/<namespace>
    let ns_root = t.path().join("containerd-runc");
    fs::create_dir(&ns_root).unwrap();
    std::os::unix::fs::symlink(rt.root(), ns_root.join("k8s.io")).unwrap();
    let runc_dir = StateDir {
        runtime: RuntimeKind::Runc,
        path: ns_root.clone(),
        namespaced: true,
    };
    let (all, problems) = Containers::scan(&sources(vec![runc_dir.clone()]));
    assert!(problems.is_empty(), "{problems:?}");
    let c = all.by_id(bundle.id(), Some(RuntimeKind::Runc)).unwrap();
    assert_eq!(c.namespace.as_deref(), Some("k8s.io"));
    assert_eq!(
        (c.name.as_str(), c.image.as_str()),
        ("web", "docker.io/library/nginx:1.27"),
        "from the CRI annotations"
    );
    // the image's ExposedPorts, as conversion.md's annotation carries them (a key that is no
    // port left out)
    let port = |port: u16, protocol: &str| berth_watch::profile::Port {
        port,
        protocol: protocol.into(),
    };
    assert_eq!(
        c.declared_ports,
        Some(vec![port(53, "udp"), port(80, "tcp"), port(8080, "tcp")])
    );
    let o = c.overlay.as_ref().expect("its root is an overlay");
    assert_eq!(o.lower, [bundle.rootfs()]);
    assert_eq!(o.upper.as_deref(), Some(upper.as_path()));
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert_eq!(root_overlay(&mountinfo).as_ref(), Some(o));

    // an engine record of the same container: one container, the engine's name and image
    let engine = t.path().join("engine");
    let start: u64 = {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    let record = |init_start: u64| {
        serde_json::json!({
            "id": bundle.id(), "name": "payments", "image": "registry.example/payments:2",
            "created": "2026-12-05T00:00:00Z", "bundle": bundle.path(), "runtime": "/usr/sbin/runc",
            "runtime_root": rt.root(), "status": "running", "log_path": "/dev/null",
            "auto_remove": false, "init_pid": pid, "init_start": init_start
        })
    };
    crate::support::put(
        &engine
            .join("containers")
            .join(bundle.id())
            .join("container.json"),
        &serde_json::to_vec(&record(start)).unwrap(),
        0o644,
    );
    let berth_dir = StateDir {
        runtime: RuntimeKind::Berth,
        path: engine.clone(),
        namespaced: false,
    };
    let src = sources(vec![berth_dir, runc_dir]);
    let (both, problems) = Containers::scan(&src);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(both.len(), 1, "{both:?}");
    let c2 = both.by_cgroup(c.cgroup_id).unwrap();
    assert_eq!(
        (c2.runtime, c2.name.as_str(), c2.image.as_str()),
        (
            RuntimeKind::Berth,
            "payments",
            "registry.example/payments:2"
        )
    );
    assert_eq!(c2.overlay, c.overlay);

    // a record whose init start time is not the process' is a reused pid: not this container
    crate::support::put(
        &engine
            .join("containers")
            .join(bundle.id())
            .join("container.json"),
        &serde_json::to_vec(&record(start + 1)).unwrap(),
        0o644,
    );
    let (stale, _) = Containers::scan(&sources(vec![StateDir {
        runtime: RuntimeKind::Berth,
        path: engine,
        namespaced: false,
    }]));
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn host_sources_find_the_cgroup2_mount_and_list_every_runtime() {
    let s = Sources::host(Path::new("/proc")).unwrap();
    assert!(
        s.cgroup2 == Path::new("/sys/fs/cgroup")
            || s.cgroup2 == Path::new("/sys/fs/cgroup/unified"),
        "{:?}",
        s.cgroup2
    );
    let statfs = rustix::fs::statfs(&s.cgroup2).unwrap();
    assert_eq!(
        statfs.f_type as u64,
        0x6367_7270,
        "CGROUP2_SUPER_MAGIC at {}",
        s.cgroup2.display()
    );
    let dirs: Vec<(RuntimeKind, &Path)> = s
        .state_dirs
        .iter()
        .map(|d| (d.runtime, d.path.as_path()))
        .collect();
    for want in [
        (RuntimeKind::Berth, Path::new("/var/lib/berth")),
        (RuntimeKind::BerthRuntime, Path::new("/run/berth-runtime")),
        (RuntimeKind::Runc, Path::new("/run/runc")),
        (RuntimeKind::Runc, Path::new("/run/containerd/runc")),
        (RuntimeKind::Crun, Path::new("/run/crun")),
    ] {
        assert!(dirs.contains(&want), "{want:?} in {dirs:?}");
    }
    assert!(
        s.watch_dirs()
            .contains(&PathBuf::from("/var/lib/berth/containers"))
    );
}
