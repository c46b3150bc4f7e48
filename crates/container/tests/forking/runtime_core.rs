//! The library API end to end: create → start → kill → delete, status derivation from
//! the init and the fifo, cleanup of a failed create, list and state JSON.
//!
//! `Container::create` forks the calling process: these run in the single-threaded
//! `forking` test binary (see main.rs), which hands each the proof.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_container::{
    Container, ContainerError, CreateOptions, ErrorKind, SingleThreaded, Status,
};

pub(crate) struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    pub(crate) fn new(args: &[&str]) -> Bundle {
        assert!(
            rustix::process::geteuid().is_root(),
            "these tests need root"
        );
        assert!(
            Path::new("/bin/busybox").exists(),
            "these tests need busybox-static"
        );
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in ["sh", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        let mut config =
            serde_json::to_value(berth_runtime_spec::defaults::default_spec(None, false)).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(args);
        berth_fsutil::atomic_write(
            dir.path().join("config.json"),
            &serde_json::to_vec(&config).unwrap(),
        )
        .unwrap();
        Bundle { dir }
    }
}

/// Force-deletes the container on drop.
struct Guard {
    root: PathBuf,
    id: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(c) = Container::load(&self.root, self.id) {
            let _ = c.delete(true);
        }
    }
}

pub(crate) fn opts(root: &Path, id: &str, bundle: &Bundle) -> CreateOptions {
    CreateOptions {
        root: root.to_owned(),
        id: id.to_owned(),
        bundle: bundle.dir.path().to_owned(),
        ..Default::default()
    }
}

fn wait_status(root: &Path, id: &str, want: Status) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = Container::load(root, id).unwrap();
        if c.status() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became {want}, is {}",
            c.status()
        );
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 5_000_000,
        });
    }
}

pub(crate) fn library_lifecycle_with_status_derived_from_the_init(proof: SingleThreaded) {
    let root = tempfile::tempdir().unwrap();
    let b = Bundle::new(&["sleep", "300"]);
    let _g = Guard {
        root: root.path().to_owned(),
        id: "lib1",
    };
    let (c, pty) = Container::create(&opts(root.path(), "lib1", &b), proof).unwrap();
    assert!(pty.is_none());
    assert_eq!(c.status(), Status::Created);
    assert!(berth_container::paths::exec_fifo(root.path(), "lib1").exists());
    let st = c.state_json();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], c.state.pid);
    // the recorded state is the one on disk, written atomically
    let disk = berth_container::State::load(root.path(), "lib1").unwrap();
    assert_eq!(disk.pid, c.state.pid);
    assert_eq!(disk.status, Status::Created);
    assert!(disk.init_start_time > 0);

    // a second create with the same id is refused and does not disturb the first
    let err = Container::create(&opts(root.path(), "lib1", &b), proof).unwrap_err();
    assert!(matches!(err, ContainerError::AlreadyExists { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    let mut c = Container::load(root.path(), "lib1").unwrap();
    c.start().unwrap();
    assert_eq!(c.status(), Status::Running);
    assert!(!berth_container::paths::exec_fifo(root.path(), "lib1").exists());
    let pids = c.pids().unwrap();
    assert!(pids.contains(&c.state.pid), "{pids:?}");

    let listed = berth_container::list(root.path()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].as_ref().unwrap().id(), "lib1");

    c.kill(libc::SIGKILL, false).unwrap();
    wait_status(root.path(), "lib1", Status::Stopped);
    let c = Container::load(root.path(), "lib1").unwrap();
    assert_eq!(c.state_json()["pid"], 0);
    c.delete(false).unwrap();
    assert!(!root.path().join("lib1").exists());
    let err = Container::load(root.path(), "lib1").unwrap_err();
    assert!(matches!(err, ContainerError::NotFound { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub(crate) fn library_failed_create_reports_the_init_errno_and_leaves_nothing(
    proof: SingleThreaded,
) {
    let root = tempfile::tempdir().unwrap();
    let b = Bundle::new(&["/does/not/exist"]);
    let err = Container::create(&opts(root.path(), "lib2", &b), proof).unwrap_err();
    // the init's failure crossed the channel as a structured value with its errno
    match &err {
        ContainerError::ChildFailed { message, source } => {
            assert!(message.contains("/does/not/exist"), "{message}");
            assert_eq!(
                source.as_ref().and_then(|e| e.raw_os_error()),
                Some(libc::ENOENT)
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(!root.path().join("lib2").exists(), "state dir left behind");
    assert!(berth_container::list(root.path()).unwrap().is_empty());
}

pub(crate) fn library_refuses_invalid_ids_and_bundles(proof: SingleThreaded) {
    let root = tempfile::tempdir().unwrap();
    let b = Bundle::new(&["true"]);
    let err = Container::create(&opts(root.path(), "../escape", &b), proof).unwrap_err();
    assert!(matches!(err, ContainerError::InvalidId { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut o = opts(root.path(), "lib3", &b);
    o.bundle = root.path().join("missing");
    let err = Container::create(&o, proof).unwrap_err();
    assert!(matches!(err, ContainerError::Bundle { .. }), "{err}");
    assert!(!root.path().join("lib3").exists());
}
