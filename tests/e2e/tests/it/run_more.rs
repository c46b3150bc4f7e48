//! More of `berth run` as a user types it, over a minimal busybox image: each container's
//! own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` (`berth_engine::etcfiles`), seen
//! from inside containers of all three runtimes (written for the container, owned by its
//! root, gone with it, never the host's files); `--device-write-bps` holding on a real
//! block device.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    LoopDevice, berth_bin, requires_root, requires_tool, run_with_timeout, wait_until, write_file,
};
use serde_json::json;

const IMAGE: &str = "localhost/busybox:etc";

struct Data(tempfile::TempDir);

impl Data {
    fn new() -> Data {
        let d = Data(tempfile::tempdir().unwrap());
        let root = d.0.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in [
            "sh", "cat", "ls", "stat", "echo", "hostname", "dd", "time", "touch", "chown", "rm",
            "sleep",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        // the image's own files, which the container's must cover
        write_file(root.join("etc/hosts"), b"6.6.6.6 image-hosts\n");
        // what a named volume mounted there is filled with (owned by a user of the image)
        write_file(root.join("srv/site/index"), b"from the image\n");
        for p in ["srv/site", "srv/site/index"] {
            std::os::unix::fs::chown(root.join(p), Some(7), Some(7)).unwrap();
        }
        write_file(root.join("etc/resolv.conf"), b"nameserver 6.6.6.6\n");
        d.ok(&["import", root.to_str().unwrap(), IMAGE]);
        d
    }

    fn run(&self, args: &[&str]) -> Output {
        // `run` joins the bridge network by default, which these tests (on the host's
        // network) must not make: none unless a test names one (network.rs runs the default
        // in a namespace of its own)
        let mut args = args.to_vec();
        if matches!(args.first(), Some(&"run" | &"create"))
            && !args
                .iter()
                .any(|a| *a == "--network" || a.starts_with("--network="))
        {
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

/// Named volumes as docker users use them: made by `-v NAME:DST`, kept after the container,
/// shared by containers of different user-namespace ranges with the ids each one sees (the
/// host keeps them unshifted; each container binds the volume id-mapped for its range),
/// filled from the image when empty and only then, `:ro`, refused removal while a container
/// uses it, and `berth volume create|ls|inspect|rm|prune`; no mount left behind.
#[test]
fn named_volumes_persist_are_shared_across_ranges_fill_from_the_image_and_stay_while_used() {
    requires_root!();
    let d = Data::new();
    let data = d.0.path().join("data/berth/named-volumes/data/_data");
    // the first keeps running, so the second gets another range
    d.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--cap-add",
        "CHOWN",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /data/a; touch /data/b; chown 1000:1000 /data/b; touch /data/done; sleep 600",
    ]);
    assert!(
        wait_until(Duration::from_secs(30), || data.join("done").exists()),
        "the first container did not write"
    );
    let first = d.ok(&["exec", "first", "cat", "/proc/self/uid_map"]);
    let second = d.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/self/uid_map; cat /data/a; stat -c '%u:%g %n' /data/a /data/b; echo more >> /data/a",
    ]);
    d.ok(&["rm", "-f", "first"]);
    let start = |out: &str| out.split_whitespace().nth(1).unwrap().to_owned();
    assert_ne!(
        start(&first),
        start(&second),
        "two ranges: {first} / {second}"
    );
    assert!(
        second.contains("hi\n0:0 /data/a\n1000:1000 /data/b"),
        "{second}"
    );
    // on the host: the ids the containers see, not either range's
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &str| std::fs::metadata(data.join(p)).unwrap();
    assert_eq!(
        (meta("a").uid(), meta("b").uid(), meta("b").gid()),
        (0, 1000, 1000)
    );
    assert_eq!(std::fs::read(data.join("a")).unwrap(), b"hi\nmore\n");
    assert_eq!(
        std::fs::metadata(d.0.path().join("data/berth/named-volumes"))
            .unwrap()
            .mode()
            & 0o777,
        0o700,
        "the host's other users cannot reach volumes"
    );
    // --userns host sees the same ids
    let host = d.ok(&[
        "run",
        "--rm",
        "--userns",
        "host",
        "-v",
        "data:/data",
        IMAGE,
        "stat",
        "-c",
        "%u",
        "/data/b",
    ]);
    assert_eq!(host.trim(), "1000");
    // :ro
    let ro = d.run(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        IMAGE,
        "touch",
        "/data/c",
    ]);
    assert_ne!(ro.status.code(), Some(0), "{ro:?}");

    // filled from the image when new (owners as the image has them), and only then
    let site = d.ok(&[
        "run", "--rm",
        "--user",
        "7:7", "-v", "site:/srv/site", IMAGE, "sh", "-c",
        "stat -c '%u:%g' /srv/site/index; cat /srv/site/index; rm /srv/site/index; touch /srv/site/mine",
    ]);
    assert_eq!(site, "7:7\nfrom the image\n");
    let site_dir = d.0.path().join("data/berth/named-volumes/site/_data");
    assert_eq!(std::fs::metadata(&site_dir).unwrap().uid(), 7);
    let again = d.ok(&[
        "run",
        "--rm",
        "-v",
        "site:/srv/site",
        IMAGE,
        "ls",
        "/srv/site",
    ]);
    assert_eq!(again, "mine\n", "a volume with content is not filled again");

    // in use: kept
    d.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "data:/data",
        IMAGE,
        "sleep",
        "600",
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["container", "inspect", "user"])).unwrap();
    let mounts = inspect[0]["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        (
            &mounts[0]["Type"],
            &mounts[0]["Name"],
            &mounts[0]["Destination"],
            &mounts[0]["RW"]
        ),
        (
            &json!("volume"),
            &json!("data"),
            &json!("/data"),
            &json!(true)
        ),
        "{mounts:?}"
    );
    let rm = d.run(&["volume", "rm", "data"]);
    assert_ne!(rm.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&rm.stderr).contains("in use by container(s) user"),
        "{rm:?}"
    );
    assert!(d.ok(&["volume", "prune"]).contains("site"));
    assert!(data.join("a").exists());
    d.ok(&["rm", "-f", "user"]);
    assert_eq!(d.ok(&["volume", "rm", "data"]), "data\n");
    assert!(!data.exists());

    // the management commands
    assert_eq!(
        d.ok(&["volume", "create", "--label", "team=db", "v2"]),
        "v2\n"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "v2\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["volume", "inspect", "v2"])).unwrap();
    assert_eq!(inspect[0]["Labels"]["team"], "db", "{inspect}");
    assert_eq!(inspect[0]["Driver"], "local", "{inspect}");
    let bad = d.run(&["run", "--rm", "-v", "a:/x", IMAGE, "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid volume name"));
    // a run refused for its name makes no volume
    let bad = d.run(&["run", "--rm", "--name", "x", "-v", "zz:/x", IMAGE, "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert_eq!(d.ok(&["volume", "prune"]), "v2\n");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = d.0.path().to_str().unwrap();
    assert!(!mounts.contains(dir), "mounts left under {dir}");
}

/// The whole disk under `path`'s filesystem, as `/dev/NAME` (a partition's parent disk: the
/// throttle acts where bios are queued), or `None` off a block device (tmpfs, overlay).
fn disk_of(path: &Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (libc_major(dev), libc_minor(dev));
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    if sys.join("partition").exists() {
        sys = sys.parent()?.to_owned();
    }
    let uevent = std::fs::read_to_string(sys.join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name))
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
}

/// The seconds busybox `time` reported (`real\t0m 3.01s`) in `stderr`.
fn busybox_real_seconds(stderr: &str) -> f64 {
    let real = stderr
        .lines()
        .find_map(|l| l.strip_prefix("real"))
        .unwrap_or_else(|| panic!("no `real` line from time: {stderr}"));
    let (m, s) = real.trim().split_once('m').unwrap();
    m.trim().parse::<f64>().unwrap() * 60.0 + s.trim().trim_end_matches('s').parse::<f64>().unwrap()
}

/// `--device-write-bps DISK:5mb` on the machine's own disk (the one under the test's
/// directory): 15 MiB written from the container with O_DIRECT at 5 MiB/s ± 10 % (timed
/// inside the container by busybox `time`), while the same write without the limit goes at
/// least twice as fast (so the limit is what was measured). Buffered then fsync'd writes
/// too, asserted where the kernel charges writeback to the container (pure cgroup v2); on
/// cgroup v1 the flusher may write the pages back first, unthrottled (docker documents it):
/// measured and printed only.
#[test]
fn device_write_bps_holds_within_ten_percent_on_the_machines_disk_for_direct_writes() {
    requires_root!();
    let d = Data::new();
    let disk = disk_of(d.0.path()).unwrap_or_else(|| {
        panic!(
            "{} is on no block device: this test needs the machine's disk",
            d.0.path().display()
        )
    });
    let vol = d.0.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    // the container's root (a host id of its range) writes there
    std::fs::set_permissions(&vol, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let volume = format!("{}:/data", vol.display());
    let limit = format!("{}:5mb", disk.display());
    let rate = |flags: &[&str], how: &str| -> f64 {
        let dd = format!("time dd if=/dev/zero of=/data/f bs=64k count=240 {how}");
        let mut args = vec!["run", "--rm", "-v", &volume];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", &dd]);
        let out = d.run(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "berth {args:?}: {err}");
        assert_eq!(std::fs::metadata(vol.join("f")).unwrap().len(), 15 << 20);
        std::fs::remove_file(vol.join("f")).unwrap();
        15.0 / busybox_real_seconds(&err)
    };
    for how in ["oflag=direct", "conv=fsync"] {
        let free = rate(&[], how);
        let limited = rate(&["--device-write-bps", &limit], how);
        eprintln!("{disk:?} {how}: {limited:.2} MiB/s at 5mb, {free:.2} MiB/s without");
        if how == "conv=fsync"
            && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        {
            continue;
        }
        assert!(
            (4.5..=5.5).contains(&limited),
            "{how}: {limited:.2} MiB/s under --device-write-bps 5mb (±10 %)"
        );
        assert!(
            free >= 10.0,
            "{how}: the disk wrote only {free:.2} MiB/s without a limit: the limit proves nothing"
        );
    }
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
