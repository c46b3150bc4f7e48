//! Each container's own `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`
//! (`berth_engine::etcfiles`), seen from inside containers of all three runtimes: written for
//! the container, owned by its root, gone with it, and never the host's files.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{berth_bin, requires_root, requires_tool, run_with_timeout, write_file};

const IMAGE: &str = "localhost/busybox:etc";

struct Data(tempfile::TempDir);

impl Data {
    fn new() -> Data {
        let d = Data(tempfile::tempdir().unwrap());
        let root = d.0.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in ["sh", "cat", "ls", "stat", "echo", "hostname"] {
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
