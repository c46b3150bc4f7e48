//! Hostile neighbours of a container, as root (user namespace by default, each container its
//! own host id range): a second container of another range sharing a named volume (bound
//! id-mapped, so the volume keeps the ids containers see and both see the same owners), and
//! berth's own helpers around a container (the `cat` that made the id-mapped mounts' user
//! namespace). Each defence is shown to hold, and — where a flag or a runtime wrapper can
//! take it away — shown to be what holds: the same attack with the defence removed succeeds
//! (a control, so that a check that cannot fail fails the test instead).
//!
//! The rootless pasta process is attacked in `rootless_run.rs` (it needs the unprivileged
//! user's berth).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    berth_bin, probe_bin, requires_root, requires_tool, run_with_timeout, wait_until, write_file,
};
use serde_json::Value;

const IMAGE: &str = "localhost/busybox:neighbours";
/// Files under the image's `/data/sub`: enough that filling a volume from it takes a while.
const SEED_FILES: usize = 2000;

/// A data directory with a busybox image holding the probe, a device node (`/seed/null`,
/// the host's /dev/null: 1:3, which the runtime's device cgroup lets through, so only
/// `nodev` stands between a container and it) and a directory of many files (`/data/sub`).
struct Data(tempfile::TempDir);

impl Data {
    fn new() -> Data {
        let d = Data(
            tempfile::Builder::new()
                .prefix("berth-neighbours-")
                .tempdir()
                .unwrap(),
        );
        // others may traverse it: the containers' roots are host ids of their ranges
        std::fs::set_permissions(d.0.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let root = d.0.path().join("rootfs");
        for dir in ["bin", "etc", "seed", "data/sub", "tmp"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in [
            "sh", "cat", "ls", "stat", "echo", "touch", "chown", "chmod", "cp", "mknod", "ln",
            "sleep", "readlink", "id", "kill", "true",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        std::fs::copy(probe_bin(), root.join("bin/probe")).unwrap();
        let mknod = Command::new("mknod")
            .args(["-m", "666"])
            .arg(root.join("seed/null"))
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(mknod.success(), "mknod: {mknod}");
        for i in 0..SEED_FILES {
            write_file(root.join(format!("data/sub/f{i:04}")), b"image data\n");
        }
        // (imported as a directory: a device node in it was refused before, tar 0.4 naming
        // the entry by its absolute source path)
        d.ok(&["import", root.to_str().unwrap(), IMAGE]);
        d
    }

    fn volume(&self, name: &str) -> PathBuf {
        self.0
            .path()
            .join("data/berth/named-volumes")
            .join(name)
            .join("_data")
    }

    fn run(&self, args: &[&str]) -> Output {
        // no network: these tests are about volumes and processes (`run` would join the
        // default bridge network, which network.rs exercises in namespaces of its own)
        let mut args = args.to_vec();
        if matches!(args.first(), Some(&"run")) {
            args.splice(1..1, ["--network", "none"]);
        }
        run_with_timeout(
            Command::new(berth_bin())
                .args(&args)
                .env("XDG_DATA_HOME", self.0.path().join("data"))
                .env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ),
            Duration::from_secs(120),
        )
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A runtime that runs berth-runtime on the bundle's config edited by the jq program
    /// `filter`: a control that takes one defence away.
    fn runtime_editing(&self, name: &str, filter: &str) -> PathBuf {
        runtime_editing(self.0.path(), name, filter)
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        let out = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
    }
}

/// A runtime (a shell script in `dir`) that edits the bundle's `config.json` with the jq
/// program `filter` and then execs the berth-runtime next to `berth`.
pub fn runtime_editing(dir: &Path, name: &str, filter: &str) -> PathBuf {
    let real = berth_bin().with_file_name("berth-runtime");
    assert!(
        real.is_file(),
        "build berth-runtime first: {}",
        real.display()
    );
    let program = dir.join(format!("{name}.jq"));
    write_file(&program, filter.as_bytes());
    let script = dir.join(name);
    write_file(
        &script,
        format!(
            "#!/bin/sh\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --bundle ]; then\n    \
             jq -f '{p}' \"$a/config.json\" > \"$a/config.json.edited\" && \
             mv \"$a/config.json.edited\" \"$a/config.json\" || exit 1\n  fi\n  prev=$a\n\
             done\nexec '{real}' \"$@\"\n",
            p = program.display(),
            real = real.display()
        )
        .as_bytes(),
    );
    for p in [&program, &script] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    script
}

/// The jq program that takes `option` out of the mount at `destination`.
fn without_mount_option(destination: &str, option: &str) -> String {
    format!(
        ".mounts |= map(if .destination == \"{destination}\" then .options -= [\"{option}\"] \
         else . end)"
    )
}

fn probe_json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("probe output {out:?}: {e}"))
}

/// Container A's root plants a setuid-root copy of the probe, tries to make files owned
/// outside its range and device nodes in a named volume; container B, of another range,
/// shares the volume. A volume is mounted `nosuid` and `nodev`: the setuid binary runs with
/// the caller's ids in B (even with `no-new-privileges` opened up), and a device node the
/// image seeded into the volume cannot be opened. A control runs the same with each option
/// taken out of the mount (a runtime editing the config): then B's unprivileged user does
/// become root, and the device does open.
#[test]
fn a_volume_neighbour_gets_no_setuid_root_no_device_and_no_foreign_owner() {
    requires_root!();
    requires_tool!("jq");
    let d = Data::new();
    let vol = d.volume("shared");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "planter",
        "--cap-add",
        "CHOWN",
        "--cap-add",
        "MKNOD",
        "-v",
        "shared:/vol",
        IMAGE,
        "sh",
        "-c",
        "cp /bin/probe /vol/suid && chmod 4755 /vol/suid && touch /vol/done; sleep 600",
    ]);
    assert!(
        wait_until(Duration::from_secs(30), || vol.join("done").exists()),
        "the planter did not write"
    );
    let suid = std::fs::metadata(vol.join("suid")).unwrap();
    assert_eq!(
        (suid.uid(), suid.mode() & 0o7777),
        (0, 0o4755),
        "on the host the volume holds a setuid binary of the ids the container sees"
    );

    // owners outside the range and device nodes: refused by the kernel (an unmapped id;
    // mknod needs CAP_MKNOD in the host's user namespace), capabilities notwithstanding
    let chown = d.run(&["exec", "planter", "chown", "65536:65536", "/vol/done"]);
    assert_ne!(chown.status.code(), Some(0), "{chown:?}");
    let mknod = d.run(&["exec", "planter", "mknod", "/vol/mem", "c", "1", "1"]);
    assert_ne!(mknod.status.code(), Some(0), "{mknod:?}");
    for e in walk(&vol) {
        let m = std::fs::symlink_metadata(&e).unwrap();
        assert!(
            m.uid() < 65536 && m.gid() < 65536,
            "{} is owned by {}:{} on the host, outside the ids a container sees",
            e.display(),
            m.uid(),
            m.gid()
        );
        assert!(
            !m.file_type().is_char_device() && !m.file_type().is_block_device(),
            "a device node in the volume: {}",
            e.display()
        );
    }

    // B: another range, an unprivileged user, no_new_privileges opened up
    let euid_in_b = |runtime: Option<&Path>| -> Value {
        let mut args = vec![
            "run",
            "--rm",
            "--user",
            "1000:1000",
            "--security-opt",
            "no-new-privileges=false",
            "-v",
            "shared:/vol",
        ];
        let rt;
        if let Some(r) = runtime {
            rt = r.display().to_string();
            args.extend(["--runtime", rt.as_str()]);
        }
        args.extend([IMAGE, "/vol/suid", "identity"]);
        probe_json(&d.ok(&args))["identity"].clone()
    };
    let held = euid_in_b(None);
    assert_eq!(held["uid"], 1000, "{held}");
    assert_eq!(
        held["euid"], 1000,
        "the setuid binary another container's root planted made B's user root: {held}"
    );
    let planter_map = d.ok(&["exec", "planter", "cat", "/proc/self/uid_map"]);
    assert_ne!(
        held["uid_map"][0][1].to_string().as_str(),
        planter_map.split_whitespace().nth(1).unwrap(),
        "B has a range of its own: {held} / {planter_map}"
    );
    let control = d.runtime_editing("with-suid", &without_mount_option("/vol", "nosuid"));
    let opened = euid_in_b(Some(&control));
    assert_eq!(
        opened["euid"], 0,
        "control: without nosuid the planted binary should give B's user root: {opened}"
    );

    // a device node the image seeded into a new volume (the copy keeps device nodes)
    let open_null = |runtime: Option<&Path>| -> Output {
        let mut args = vec!["run", "--rm", "-v", "devs:/seed"];
        let rt;
        if let Some(r) = runtime {
            rt = r.display().to_string();
            args.extend(["--runtime", rt.as_str()]);
        }
        args.extend([IMAGE, "sh", "-c", "echo x > /seed/null"]);
        d.run(&args)
    };
    let refused = open_null(None);
    assert!(
        d.volume("devs")
            .join("null")
            .metadata()
            .unwrap()
            .file_type()
            .is_char_device(),
        "the image's device node was seeded into the volume"
    );
    assert_ne!(refused.status.code(), Some(0), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
        "{refused:?}"
    );
    let control = d.runtime_editing("with-dev", &without_mount_option("/seed", "nodev"));
    let opened = open_null(Some(&control));
    assert_eq!(
        opened.status.code(),
        Some(0),
        "control: without nodev the device should open: {opened:?}"
    );
    d.ok(&["rm", "-f", "planter"]);
}

/// A symlink a container leaves in a volume points wherever it likes, and is resolved where
/// it is followed: inside another container, in that container's root; on the host, berth
/// never follows it (`volume rm` removes the link, not what it names).
#[test]
fn symlinks_left_in_a_volume_resolve_inside_each_container_and_never_on_the_host() {
    requires_root!();
    let d = Data::new();
    let host = d.0.path().join("host-secret");
    write_file(host.join("key"), b"host secret\n");
    let link = format!("ln -s {} /vol/escape && ln -s / /vol/root", host.display());
    d.ok(&["run", "--rm", "-v", "links:/vol", IMAGE, "sh", "-c", &link]);
    assert_eq!(
        std::fs::read_link(d.volume("links").join("escape")).unwrap(),
        host
    );
    let seen = d.run(&[
        "run",
        "--rm",
        "--hostname",
        "inside-b",
        "-v",
        "links:/vol",
        IMAGE,
        "sh",
        "-c",
        "cat /vol/escape/key; cat /vol/root/etc/hostname",
    ]);
    let stdout = String::from_utf8_lossy(&seen.stdout);
    assert!(!stdout.contains("host secret"), "{seen:?}");
    assert!(stdout.contains("inside-b"), "{seen:?}");
    assert_eq!(d.ok(&["volume", "rm", "links"]), "links\n");
    assert_eq!(
        std::fs::read(host.join("key")).unwrap(),
        b"host secret\n",
        "volume rm followed a link out of the volume"
    );
}

/// A container using a still empty named volume swaps a directory that berth is filling
/// from another container's image (`-v NAME:/data`, docker's copy-up) for a symlink to a
/// host directory, atomically, the moment it appears (the probe's `swap-dir`). berth fills
/// the volume in a staging directory out of the container's reach and moves each entry in
/// whole: nothing is written through the link. (Filling in place by path wrote the image's
/// files into the host directory: this test failed so before the fix.)
#[test]
fn filling_a_volume_a_neighbour_rewrites_never_writes_through_its_symlinks() {
    requires_root!();
    let d = Data::new();
    let target = d.0.path().join("host-dir");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    let swap = format!("swap-dir:/vol/sub:{}:60000", target.display());
    d.ok(&[
        "run",
        "-d",
        "--name",
        "swapper",
        "-v",
        "race:/vol",
        IMAGE,
        "/bin/probe",
        &swap,
    ]);
    // (the swapper polls before this run starts: `run -d` returns once it was started)
    let filled = d.run(&["run", "--rm", "-v", "race:/data", IMAGE, "ls", "/data"]);
    let code = d.ok(&["wait", "swapper"]);
    let report = probe_json(&d.ok(&["logs", "swapper"]));
    eprintln!(
        "swapper: {report}; exit {}; filler: {filled:?}",
        code.trim()
    );
    assert_eq!(
        report[&swap]["ok"], true,
        "the swapper never swapped /vol/sub (the attack did not happen): {report}"
    );
    let written: Vec<_> = std::fs::read_dir(&target).unwrap().flatten().collect();
    assert!(
        written.is_empty(),
        "{} of the image's files were written through the swapped-in symlink into {}",
        written.len(),
        target.display()
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().mode() & 0o7777,
        0o755,
        "the host directory's mode was changed through the symlink"
    );
    assert!(
        filled.status.success(),
        "filling the volume failed: {filled:?}"
    );
    // the image's files are all in the volume (under the name the swapper moved them to)
    let moved = d.volume("race").join("sub.swap");
    assert_eq!(
        std::fs::read_dir(&moved).map(|r| r.count()).unwrap_or(0),
        SEED_FILES,
        "{}",
        moved.display()
    );
    d.ok(&["rm", "-f", "swapper"]);
}

/// The helper berth starts to make a user namespace for id-mapped mounts (a `cat` in a new
/// user namespace with the container's map, as containerd's) is gone before the container
/// starts: no process on the host is in a user namespace of the container's range but the
/// container's own, and from inside, the container sees and can attack only its own
/// processes (`neighbour-scan`: /proc/PID/mem, its descriptors, ptrace).
#[test]
fn no_helper_outlives_the_set_up_of_an_id_mapped_container() {
    requires_root!();
    let d = Data::new();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "mapped",
        "-v",
        "helper:/vol",
        IMAGE,
        "sleep",
        "600",
    ]);
    let inspect: Value = serde_json::from_str(&d.ok(&["container", "inspect", "mapped"])).unwrap();
    let init = inspect[0]["State"]["Pid"].as_i64().unwrap();
    let map = std::fs::read_to_string(format!("/proc/{init}/uid_map")).unwrap();
    // a helper left behind would be in the host's pid namespace (containers, of this test or
    // others, never are), with the container's map; one of another run setting up at this
    // moment lives for milliseconds, so only processes that stay count
    let host_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let strangers = || {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
                continue;
            };
            let Ok(theirs) = std::fs::read_to_string(format!("/proc/{pid}/uid_map")) else {
                continue;
            };
            if theirs.split_whitespace().eq(map.split_whitespace())
                && std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                    .ok()
                    .as_ref()
                    == Some(&host_pidns)
            {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                found.push((pid, comm.trim().to_owned()));
            }
        }
        found
    };
    let mut seen = strangers();
    assert!(
        wait_until(Duration::from_secs(5), || {
            seen = strangers();
            seen.is_empty()
        }),
        "processes of the container's range in the host's pid namespace: {seen:?}"
    );
    let scan = probe_json(&d.ok(&["exec", "mapped", "/bin/probe", "neighbour-scan"]));
    let pids = scan["neighbour-scan"]["pids"].as_object().unwrap();
    let comms: Vec<&str> = pids.values().filter_map(|p| p["comm"].as_str()).collect();
    assert!(
        comms.iter().all(|c| *c == "sleep"),
        "the container sees processes other than its own: {comms:?}"
    );
    d.ok(&["rm", "-f", "mapped"]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
