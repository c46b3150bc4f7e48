//! More of `berth run` as a user types it, over a minimal busybox image: each container's
//! own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` (`berth_engine::etcfiles`), seen
//! from inside containers of all three runtimes (written for the container, owned by its
//! root, gone with it, never the host's files); `--device-write-bps` holding on a real
//! block device.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    LoopDevice, berth_bin, requires_root, requires_tool, run_with_timeout, write_file,
};

const IMAGE: &str = "localhost/busybox:etc";

struct Data(tempfile::TempDir);

impl Data {
    fn new() -> Data {
        let d = Data(tempfile::tempdir().unwrap());
        let root = d.0.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in ["sh", "cat", "ls", "stat", "echo", "hostname", "dd"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        // the image's own files, which the container's must cover
        write_file(root.join("etc/hosts"), b"6.6.6.6 image-hosts\n");
        write_file(root.join("etc/resolv.conf"), b"nameserver 6.6.6.6\n");
        d.ok(&["import", root.to_str().unwrap(), IMAGE]);
        d
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new(berth_bin())
                .args(args)
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
}

#[test]
fn containers_get_their_own_hosts_resolv_conf_and_hostname() {
    requires_root!();
    requires_tool!("runc", "crun");
    let d = Data::new();
    for rt in ["berth-runtime", "runc", "crun"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            "--name",
            "web-1",
            "--hostname",
            "box",
            "--add-host",
            "db:10.0.0.9",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:2",
            IMAGE,
            "sh",
            "-c",
            "cat /etc/hostname /etc/hosts /etc/resolv.conf; stat -c %u /etc/hosts; \
             echo '10.1.1.1 extra' >> /etc/hosts && echo hosts-writable",
        ]);
        assert_eq!(
            out,
            "box\n\
             127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tbox web-1\n\
             10.0.0.9\tdb\n\
             search corp.example\nnameserver 192.0.2.53\noptions ndots:2\n\
             0\nhosts-writable\n",
            "{rt}"
        );
    }
    // the host's own files are untouched and nothing of the containers is left
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(!hosts.contains("10.1.1.1 extra"));
    let etc = d.0.path().join("data/berth/etc");
    let left: Vec<_> = std::fs::read_dir(&etc)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn host_network_containers_see_the_hosts_hosts_and_resolvers() {
    requires_root!();
    let d = Data::new();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "extra:10.0.0.7",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf",
    ]);
    let (hosts, resolv) = out.split_once("---\n").unwrap();
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(hosts.starts_with(host_hosts.trim_end()), "{hosts}");
    assert!(hosts.ends_with("10.0.0.7\textra\n"), "{hosts}");
    // every nameserver the host names (loopback ones too: the container shares the host's
    // loopback)
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for ns in host_resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
    {
        assert!(resolv.contains(ns.trim()), "{ns} missing from {resolv}");
    }
    assert!(
        !Path::new(&d.0.path().join("data/berth/etc"))
            .read_dir()
            .is_ok_and(|mut r| r.next().is_some())
    );
}

#[test]
fn a_volume_over_etc_hosts_wins_and_a_bad_add_host_is_refused() {
    requires_root!();
    let d = Data::new();
    let mine = d.0.path().join("myhosts");
    write_file(&mine, b"1.2.3.4 mine\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "--userns",
        "host",
        "-v",
        &format!("{}:/etc/hosts:ro", mine.display()),
        IMAGE,
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(out, "1.2.3.4 mine\n");
    let out = d.run(&["run", "--rm", "--add-host", "nocolon", IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --add-host"));
}

#[test]
fn device_write_bps_holds_on_a_loop_device() {
    requires_root!();
    requires_tool!("losetup", "mkfs.ext4", "mount", "umount");
    let d = Data::new();
    let dev = LoopDevice::new(64);
    let mkfs = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(dev.path())
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "{mkfs:?}");
    let mnt = d.0.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mount = Command::new("mount")
        .arg(dev.path())
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(mount.status.success(), "{mount:?}");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).output();
        }
    }
    let _unmount = Unmount(mnt.clone());
    // the container's root (a host id of its range) writes there
    std::fs::set_permissions(&mnt, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let volume = format!("{}:/data", mnt.display());
    let limit = format!("{}:1mb", dev.path().display());
    // 3 MiB with O_DIRECT (cgroup v1 throttles direct writes; buffered ones are not the
    // container's on v1): at 1 MiB/s at least ~2 s more than without the limit
    let write = [
        "dd",
        "if=/dev/zero",
        "of=/data/f",
        "bs=64k",
        "count=48",
        "oflag=direct",
    ];
    let timed = |flags: &[&str]| {
        let mut args = vec!["run", "--rm", "-v", &volume];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(&write);
        let start = std::time::Instant::now();
        d.ok(&args);
        start.elapsed()
    };
    let free = timed(&[]);
    let limited = timed(&["--device-write-bps", &limit]);
    eprintln!("3 MiB O_DIRECT: {free:?} unlimited, {limited:?} at 1 MiB/s");
    assert!(
        limited >= free + Duration::from_millis(1500),
        "--device-write-bps 1mb did not hold: {limited:?} vs {free:?} without it"
    );
    assert_eq!(std::fs::metadata(mnt.join("f")).unwrap().len(), 3 << 20);
}

#[test]
fn network_container_joins_a_running_containers_network_namespace() {
    requires_root!();
    requires_tool!("runc", "crun");
    let d = Data::new();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "owner",
        "--add-host",
        "db:10.0.0.9",
        IMAGE,
        "sh",
        "-c",
        "exec sleep 300",
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["container", "inspect", "owner"])).unwrap();
    let pid = inspect[0]["State"]["Pid"].as_i64().unwrap();
    let owner_ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let owner_host = d.ok(&["exec", "owner", "hostname"]);
    for rt in ["berth-runtime", "runc", "crun"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            "--network",
            "container:owner",
            IMAGE,
            "sh",
            "-c",
            "readlink /proc/self/ns/net; hostname; cat /etc/hosts",
        ]);
        let mut lines = out.lines();
        assert_eq!(lines.next(), owner_ns.to_str(), "{rt}: {out}");
        assert_eq!(lines.next(), Some(owner_host.trim()), "{rt}: {out}");
        assert!(
            out.contains("10.0.0.9\tdb"),
            "{rt}: the owner's /etc/hosts: {out}"
        );
    }
    let conflict = d.run(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "--hostname",
        "x",
        IMAGE,
        "true",
    ]);
    assert_eq!(conflict.status.code(), Some(125));
    d.ok(&["stop", "-t", "0", "owner"]);
    let stopped = d.run(&["run", "--rm", "--network", "container:owner", IMAGE, "true"]);
    assert_eq!(stopped.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&stopped.stderr).contains("is not running"),
        "{stopped:?}"
    );
    d.ok(&["rm", "owner"]);
}

/// An `--rm` container's root filesystem is a `volatile` overlay: its writable layer is
/// deleted when it exits and never mounted again, so overlayfs skips its syncs (above all the
/// sync of the whole upper filesystem at the unmount, on every `--rm` exit; podman mounts
/// `--rm` containers so). A container that outlives its exit keeps an ordinary overlay.
#[test]
fn an_rm_containers_overlay_is_volatile_and_a_kept_ones_is_not() {
    requires_root!();
    let d = Data::new();
    let root_line = |mountinfo: &str| -> String {
        mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap_or_default()
            .to_owned()
    };
    let rm = d.ok(&["run", "--rm", IMAGE, "cat", "/proc/self/mountinfo"]);
    let line = root_line(&rm);
    assert!(
        line.contains(" - overlay ") && line.contains("volatile"),
        "{rm}"
    );
    let kept = d.ok(&[
        "run",
        "--name",
        "kept",
        IMAGE,
        "cat",
        "/proc/self/mountinfo",
    ]);
    let line = root_line(&kept);
    assert!(
        line.contains(" - overlay ") && !line.contains("volatile"),
        "{kept}"
    );
    d.ok(&["rm", "kept"]);
}
