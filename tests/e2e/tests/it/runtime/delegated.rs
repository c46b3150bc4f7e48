//! Rootless in a delegated cgroup v2 subtree: what systemd's `Delegate=yes` gives a user
//! (a cgroup directory and its `cgroup.procs`, `cgroup.subtree_control` and
//! `cgroup.threads` owned by the user, controllers enabled above it), made here by hand.
//! The runtime runs as the user from a leaf of that subtree (`client`), as a user's
//! processes do under systemd: moving the container's init into `<subtree>/<ctr>` then
//! needs write access to the common ancestor's `cgroup.procs`, which the user has. There
//! the runtime applies limits rootless, as runc does with a delegated v2 tree; outside it
//! (a `cgroupsPath` in a directory the user does not own) it refuses with the kernel's
//! permission error.
//!
//! Pure cgroup v2 only (`scripts/vm-test`'s VM): the hybrid CI host's cgroup2 has no
//! controllers to delegate.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_test_support::{COMMAND_TIMEOUT, cgroup_v2_or_skip, run_with_timeout, wait_until};
use serde_json::{Value, json};

use super::rootless::{Rootless, bundle_args, text};
use super::runtime_test;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The controllers delegated (and limited by the tests).
const CONTROLLERS: &str = "+memory +pids";

/// Whether this is a pure cgroup v2 host; `false` after a skip note.
fn pure_v2() -> bool {
    let mode = berth_cgroups::detect_mode().expect("detect the host's cgroup mode");
    cgroup_v2_or_skip(match mode {
        berth_cgroups::CgroupMode::Legacy => "v1",
        berth_cgroups::CgroupMode::Hybrid => "hybrid",
        berth_cgroups::CgroupMode::Unified => "v2",
    })
}

/// The test process's own cgroup v2 directory (from `/proc/self/cgroup`'s `0::` line).
fn own_cgroup() -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line in /proc/self/cgroup");
    Path::new(CGROUP_ROOT).join(rel.trim_start_matches('/'))
}

/// Write a cgroup interface file in place (cgroupfs takes no atomic renames).
fn write_in_place(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

#[track_caller]
fn write(path: &Path, value: &str) {
    write_in_place(path, value)
        .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
}

/// A cgroup v2 directory delegated to a user, beside the test's own cgroup; on drop,
/// every process left in it is killed (`cgroup.kill`) and the tree removed.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn new(uid: u32, gid: u32) -> Delegated {
        static N: AtomicU64 = AtomicU64::new(0);
        let parent = own_cgroup()
            .parent()
            .expect("the test's cgroup has a parent")
            .to_path_buf();
        // the controllers reach the parent's children (the parent holds no process)
        write(&parent.join("cgroup.subtree_control"), CONTROLLERS);
        let dir = parent.join(format!(
            "berth-delegated-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).expect("create the delegated cgroup");
        let d = Delegated { dir };
        write(&d.dir.join("cgroup.subtree_control"), CONTROLLERS);
        std::fs::create_dir(d.dir.join("client")).expect("create the client leaf");
        // systemd's delegation: the directory and these three files
        for f in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            std::os::unix::fs::chown(d.dir.join(f), Some(uid), Some(gid))
                .expect("chown the delegated cgroup");
        }
        d
    }

    /// `cgroupsPath` of `<subtree>/<leaf>` (absolute: from the cgroup2 root).
    fn cgroups_path(&self, leaf: &str) -> String {
        let rel = self
            .dir
            .join(leaf)
            .strip_prefix(CGROUP_ROOT)
            .expect("below the cgroup2 root")
            .to_string_lossy()
            .into_owned();
        format!("/{rel}")
    }

    /// `cmd` run from the subtree's `client` leaf: a root shell moves itself there, then
    /// execs `cmd` (setpriv, which drops to the user).
    fn inside(&self, cmd: &Command) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(r#"echo $$ >"$0" && exec "$@""#)
            .arg(self.dir.join("client/cgroup.procs"))
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_clear()
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
        c
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = write_in_place(&self.dir.join("cgroup.kill"), "1");
        // deepest first: a child directory keeps its parent busy
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            wait_until(Duration::from_secs(10), || {
                std::fs::remove_dir(d).is_ok() || !d.exists()
            });
        }
    }
}

/// A cgroup interface file's first line.
fn read_value(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
        .trim()
        .to_owned()
}

runtime_test! {
    /// Run as the user from a delegated subtree, with `cgroupsPath` below it: the
    /// container's cgroup is made there (owned by the user), the init is in it, and the
    /// memory and pids limits are set; `delete` removes it.
    fn rootless_limits_apply_in_a_delegated_cgroup_v2_subtree(rt) {
        if !pure_v2() {
            return;
        }
        let Some(rl) = Rootless::new(rt) else { return };
        let d = Delegated::new(rl.uid, rl.gid);
        let cg = d.cgroups_path("ctr");
        let b = rl.bundle(&["wait-signal"], |c| {
            c["linux"]["cgroupsPath"] = json!(cg);
            c["linux"]["resources"] =
                json!({"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 32}});
        });
        let _g = rl.guard(b.id());
        let out = run_with_timeout(
            &mut d.inside(&rl.command(&bundle_args("create", &b), true)),
            COMMAND_TIMEOUT,
        );
        assert!(out.status.success(), "create: {}", text(&out));
        let out = run_with_timeout(&mut d.inside(&rl.command(&["start", b.id()], true)), COMMAND_TIMEOUT);
        assert!(out.status.success(), "start: {}", text(&out));
        let out = rl.run(&["state", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        let state: Value = serde_json::from_slice(&out.stdout).expect("state JSON");
        let pid = state["pid"].as_i64().expect("a pid");

        let ctr = d.dir.join("ctr");
        let owner = std::fs::metadata(&ctr).map(|m| m.uid());
        assert_eq!(owner.ok(), Some(rl.uid), "{} is not the user's", ctr.display());
        assert_eq!(read_value(&ctr.join("memory.max")), (64 * 1024 * 1024).to_string());
        assert_eq!(read_value(&ctr.join("pids.max")), "32");
        let membership = read_value(Path::new(&format!("/proc/{pid}/cgroup")));
        assert_eq!(membership, format!("0::{cg}"));

        let out = rl.run(&["kill", b.id(), "KILL"]);
        assert!(out.status.success(), "{}", text(&out));
        let stopped = wait_until(COMMAND_TIMEOUT, || {
            let out = rl.run(&["state", b.id()]);
            serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["status"] == "stopped")
        });
        assert!(stopped, "the container did not stop");
        let out = rl.run(&["delete", b.id()]);
        assert!(out.status.success(), "delete: {}", text(&out));
        assert!(!ctr.exists(), "delete left {}", ctr.display());
    }
}

runtime_test! {
    /// The same user and client leaf, but a `cgroupsPath` beside the delegated subtree
    /// (in a directory the user does not own): the runtime fails with the kernel's
    /// permission error and runs nothing.
    fn rootless_limits_outside_the_delegated_subtree_are_refused(rt) {
        if !pure_v2() {
            return;
        }
        let Some(rl) = Rootless::new(rt) else { return };
        let d = Delegated::new(rl.uid, rl.gid);
        let outside = d.dir.with_file_name(format!(
            "{}-outside",
            d.dir.file_name().expect("a name").to_string_lossy()
        ));
        let cg = format!(
            "/{}",
            outside.strip_prefix(CGROUP_ROOT).expect("below the root").display()
        );
        let b = rl.bundle(&["identity"], |c| {
            c["linux"]["cgroupsPath"] = json!(cg);
            c["linux"]["resources"] = json!({"pids": {"limit": 32}});
        });
        let _g = rl.guard(b.id());
        let out = run_with_timeout(
            &mut d.inside(&rl.command(&bundle_args("run", &b), true)),
            COMMAND_TIMEOUT,
        );
        let _ = std::fs::remove_dir(&outside);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "the probe ran: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(err.contains("permission denied"), "{}", text(&out));
    }
}
