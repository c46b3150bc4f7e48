//! Security properties seen from the host and from inside: user namespace mapping,
//! capabilities, no_new_privs, read-only and masked paths, the terminal, descriptors,
//! the sealed runtime binary.

use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::harness::*;

#[test]
fn user_namespace_maps_container_root_to_100000() {
    let mut b = Bundle::new(&["sleep", "300"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.save();
    // the rootfs must be usable by the mapped root
    rustix::fs::chown(
        b.rootfs(),
        Some(rustix::fs::Uid::from_raw(100000)),
        Some(rustix::fs::Gid::from_raw(100000)),
    )
    .unwrap();
    let rt = Runtime::new();
    rt.create("userns", &b);
    rt.ok(&["start", "userns"]);
    let pid = rt.state("userns")["pid"].as_i64().unwrap() as i32;
    let uid = proc_status(pid, "Uid");
    assert!(
        uid.split_whitespace().all(|u| u == "100000"),
        "host uid of container root: {uid}"
    );
    let gid = proc_status(pid, "Gid");
    assert!(
        gid.split_whitespace().all(|g| g == "100000"),
        "host gid: {gid}"
    );
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let out = rt.ok(&[
        "exec",
        "userns",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    assert!(out.starts_with("0\n"), "{out}");
    rt.ok(&["delete", "--force", "userns"]);
}

fn caps_hex(names: &[&str]) -> String {
    let mut bits = 0u64;
    for n in names {
        let i = berth_container::caps::NAMES
            .iter()
            .position(|x| *x == n.trim_start_matches("CAP_"))
            .unwrap();
        bits |= 1 << i;
    }
    format!("{bits:016x}")
}

#[test]
fn capabilities_and_no_new_privs_equal_the_config() {
    let mut b = Bundle::new(&["sleep", "300"]);
    let bounding = [
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_CHOWN",
        "CAP_SETUID",
    ];
    let eff = ["CAP_KILL", "CAP_CHOWN"];
    b.config["process"]["capabilities"] = serde_json::json!({
        "bounding": bounding, "effective": eff, "permitted": bounding,
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
    });
    b.config["process"]["user"] =
        serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
    b.config["process"]["noNewPrivileges"] = true.into();
    b.config["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    b.save();
    let rt = Runtime::new();
    rt.create("caps", &b);
    // the init applied everything before waiting on the exec fifo
    let pid = rt.state("caps")["pid"].as_i64().unwrap() as i32;
    assert_eq!(proc_status(pid, "CapBnd"), caps_hex(&bounding));
    assert_eq!(proc_status(pid, "CapPrm"), caps_hex(&bounding));
    assert_eq!(proc_status(pid, "CapEff"), caps_hex(&eff));
    assert_eq!(proc_status(pid, "CapInh"), caps_hex(&["CAP_KILL"]));
    assert_eq!(proc_status(pid, "CapAmb"), caps_hex(&["CAP_KILL"]));
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    assert_eq!(
        proc_status(pid, "Uid").split_whitespace().next(),
        Some("1000")
    );
    assert_eq!(proc_status(pid, "Groups"), "10 20");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        nofile.split_whitespace().collect::<Vec<_>>()[3..5],
        ["256", "512"]
    );
    rt.ok(&["start", "caps"]);
    wait_for_exec(pid, "sleep");
    // after exec (uid 1000, no file caps): the ambient cap keeps KILL in effective
    assert_eq!(proc_status(pid, "CapEff"), caps_hex(&["CAP_KILL"]));
    rt.ok(&["delete", "--force", "caps"]);
}

#[test]
fn readonly_rootfs_masked_and_readonly_paths() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo rootfs-writable; touch /tmp/y 2>/dev/null && echo tmp-writable; \
         wc -c < /proc/keys; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; mount -t tmpfs t /tmp 2>/dev/null && echo mount-ok; echo done",
    ]);
    let rt = Runtime::new();
    rt.track("ro");
    let out = rt.ok(&["run", "--bundle", b.path().to_str().unwrap(), "ro"]);
    assert_eq!(
        out, "0\n0\ndone\n",
        "read-only root, masked /proc/keys and /sys/firmware, ro /proc/sys, no mount"
    );
}

#[test]
fn no_pivot_and_sysctl_and_domainname() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/shmmni; cat /proc/sys/kernel/domainname; test -e /work -o -e /usr/bin/env && echo HOST-VISIBLE; echo ok",
    ]);
    b.config["linux"]["sysctl"] = serde_json::json!({"kernel.shmmni": "1234"});
    b.config["domainname"] = "example.org".into();
    b.save();
    let rt = Runtime::new();
    rt.track("np");
    let out = rt.ok(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        "np",
    ]);
    assert_eq!(out, "1234\nexample.org\nok\n");
}

fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 256];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            return fds.next().unwrap();
        }
    }
    panic!("no descriptor received on the console socket");
}

#[test]
fn console_socket_delivers_a_working_pty() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "tty; stty size 2>/dev/null; read line; echo got:$line",
    ]);
    b.config["process"]["terminal"] = true.into();
    b.config["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    b.save();
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let rt = Runtime::new();
    rt.track("tty");
    let (tx, rx) = std::sync::mpsc::channel();
    let accept = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        tx.send(recv_fd(&s)).unwrap();
    });
    rt.ok(&[
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        "tty",
    ]);
    accept.join().unwrap();
    let master = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    rt.ok(&["start", "tty"]);
    rustix::io::write(&master, b"hello\n").unwrap();
    let mut f = std::fs::File::from(master);
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    wait_until(
        "the container's output on the pty",
        Duration::from_secs(10),
        || {
            match f.read(&mut buf) {
                Ok(n) if n > 0 => out.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => return Some(()),
            }
            out.contains("got:hello").then_some(())
        },
    );
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("got:hello"), "{out:?}");
    rt.ok(&["delete", "--force", "tty"]);
}

#[test]
fn preserve_fds_are_passed_and_nothing_else_leaks() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.track("fds");
    let (r, w) = rustix::pipe::pipe().unwrap();
    // inheritable descriptors the runtime must not pass on (rustix pipes are not CLOEXEC)
    let leak = std::fs::File::open("/etc/hostname").unwrap();
    rustix::io::fcntl_setfd(&leak, rustix::io::FdFlags::empty()).unwrap();
    let w_raw = w.as_raw_fd();
    let mut cmd = rt.cmd();
    cmd.args([
        "create",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        "fds",
    ]);
    #[expect(unsafe_code, reason = "placing the pipe at fd 3 in the child")]
    // SAFETY: dup2 is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(w_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.ok(&["start", "fds"]);
    let pid = rt.state("fds")["pid"].as_i64().unwrap() as i32;
    wait_for_exec(pid, "sleep");
    let fds_of = |pid: i32| {
        let mut v: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        fds_of(pid),
        [0, 1, 2, 3],
        "only stdio and the preserved fd reach the container"
    );
    let st = rustix::fs::fstat(&w).unwrap();
    let want = format!("pipe:[{}]", st.st_ino);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/3"))
            .unwrap()
            .to_string_lossy(),
        want
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, std::path::Path::new("/"), "cwd is the container's /");
    rt.ok(&["delete", "--force", "fds"]);
    drop((r, w, leak));

    // without --preserve-fds only stdio
    rt.track("fds2");
    rt.create("fds2", &b);
    rt.ok(&["start", "fds2"]);
    let pid = rt.state("fds2")["pid"].as_i64().unwrap() as i32;
    wait_for_exec(pid, "sleep");
    assert_eq!(fds_of(pid), [0, 1, 2]);
    rt.ok(&["delete", "--force", "fds2"]);
}

#[test]
fn runtime_binary_is_not_writable_from_the_container() {
    let b = Bundle::new(&["sleep", "300"]);
    let rt = Runtime::new();
    rt.create("exe", &b);
    let pid = rt.state("exe")["pid"].as_i64().unwrap() as i32;
    // the init (still the runtime) runs from a protected copy, not from the binary on disk
    assert_protected_exe(pid);
    // the same for a process entering with exec, seen from inside the container
    rt.ok(&["start", "exe"]);
    wait_for_exec(pid, "sleep");
    let out = rt.ok(&[
        "exec",
        "exe",
        "sh",
        "-c",
        "readlink /proc/1/exe; echo x >> /proc/1/exe 2>/dev/null && echo WRITABLE; true",
    ]);
    assert_eq!(out, "/bin/busybox\n");
    rt.ok(&["delete", "--force", "exe"]);
}
