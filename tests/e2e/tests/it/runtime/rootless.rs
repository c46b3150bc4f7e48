//! Rootless: each runtime run by an ordinary user, as runc's rootless mode runs. The test
//! runs as root and drops to the user `berth-rootless` (made by scripts/test, with
//! subordinate ids 200000:65536 in /etc/subuid and /etc/subgid) for every runtime command,
//! through `setpriv --reuid --regid --init-groups`, with `XDG_RUNTIME_DIR` a directory the
//! user owns and a bundle the user owns. Each runtime writes its own `spec --rootless`,
//! which the tests then adjust (args, hostname, mappings).

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_test_support::{
    Bundle, COMMAND_TIMEOUT, Runtime, passwd_ids, run_with_timeout, skip_or_fail, wait_until,
};
use serde_json::{Value, json};

use super::runtime_test;

/// The unprivileged user the tests run the runtimes as (scripts/test creates it).
const USER: &str = "berth-rootless";
/// Its subordinate ids in /etc/subuid and /etc/subgid (scripts/test grants them).
const SUBID_START: u32 = 200_000;
const SUBID_COUNT: u32 = 65_536;

/// PATH for the runtimes (newuidmap and newgidmap are in /usr/bin).
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `<verb> --bundle <bundle> <id>`, the arguments of `create` and `run`.
pub(super) fn bundle_args<'a>(verb: &'a str, b: &'a Bundle) -> [&'a OsStr; 4] {
    [
        OsStr::new(verb),
        OsStr::new("--bundle"),
        b.path().as_os_str(),
        OsStr::new(b.id()),
    ]
}

/// A runtime binary run as [`USER`] with its own `XDG_RUNTIME_DIR`.
pub(super) struct Rootless<'r> {
    rt: &'r Runtime,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// `XDG_RUNTIME_DIR`, owned by the user, 0700; removed on drop (by root).
    xdg: tempfile::TempDir,
}

/// Whether `file` grants [`USER`] exactly the subordinate range the tests expect.
fn subids_granted(file: &str) -> bool {
    let want = format!("{USER}:{SUBID_START}:{SUBID_COUNT}");
    std::fs::read_to_string(file).is_ok_and(|t| t.lines().any(|l| l.trim() == want))
}

/// `name` looked up in [`HOST_PATH`] (`name` itself when absent: the spawn then fails
/// with the name in its message).
fn in_host_path(name: &Path) -> PathBuf {
    HOST_PATH
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| name.to_path_buf())
}

/// chown -R (symlinks themselves, never followed).
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    let meta = std::fs::symlink_metadata(path).expect("stat");
    if meta.is_dir() {
        for e in std::fs::read_dir(path).expect("read_dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

impl<'r> Rootless<'r> {
    /// The rootless setup for `rt`, or `None` after a skip (a failure under
    /// `BERTH_TEST_REQUIRE_TOOLS=1`) when the user, its subordinate ids, setpriv or
    /// newuidmap is missing.
    pub(super) fn new(rt: &'r Runtime) -> Option<Rootless<'r>> {
        let Some((uid, gid)) = passwd_ids(USER) else {
            skip_or_fail(&format!(
                "no user {USER} (scripts/test creates it with subordinate ids {SUBID_START}:{SUBID_COUNT})"
            ));
            return None;
        };
        if !(subids_granted("/etc/subuid") && subids_granted("/etc/subgid")) {
            skip_or_fail(&format!(
                "{USER} lacks {SUBID_START}:{SUBID_COUNT} in /etc/subuid or /etc/subgid (scripts/test grants it)"
            ));
            return None;
        }
        for tool in ["setpriv", "newuidmap", "newgidmap"] {
            if !berth_test_support::tool_available(tool) {
                skip_or_fail(&format!(
                    "{tool} is not installed (apt-get install uidmap util-linux)"
                ));
                return None;
            }
        }
        let xdg = tempfile::Builder::new()
            .prefix("berth-rootless-xdg-")
            .tempdir()
            .expect("tempdir for XDG_RUNTIME_DIR");
        std::os::unix::fs::chown(xdg.path(), Some(uid), Some(gid)).expect("chown XDG dir");
        Some(Rootless { rt, uid, gid, xdg })
    }

    /// The runtime's default state directory: `$XDG_RUNTIME_DIR/<runtime name>` (runc,
    /// crun, berth-runtime).
    fn default_root(&self) -> PathBuf {
        self.xdg.path().join(self.rt.name())
    }

    /// `setpriv … <runtime> args…` as the user, with a clean environment: PATH (for
    /// newuidmap), USER, HOME and, when `xdg`, XDG_RUNTIME_DIR.
    pub(super) fn command<S: AsRef<OsStr>>(&self, args: &[S], xdg: bool) -> Command {
        self.command_with_path(args, xdg, OsStr::new(HOST_PATH))
    }

    /// As [`Rootless::command`], but the runtime runs as root of a new user namespace
    /// (`unshare --user --map-root-user`, the user's uid mapped to 0), as under
    /// rootlesskit.
    fn command_in_userns<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let cmd = self.command(args, true);
        let inner: Vec<std::ffi::OsString> = cmd.get_args().map(OsStr::to_owned).collect();
        let sep = inner.iter().position(|a| a == "--").expect("setpriv's --");
        let mut new = Command::new(cmd.get_program());
        new.args(&inner[..=sep])
            .arg(in_host_path(Path::new("unshare")))
            .args(["--user", "--map-root-user", "--"])
            .args(&inner[sep + 1..])
            .env_clear()
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
        new
    }

    /// As [`Rootless::command`], with `path` as PATH (the runtime binary is found first).
    fn command_with_path<S: AsRef<OsStr>>(&self, args: &[S], xdg: bool, path: &OsStr) -> Command {
        let bin = if self.rt.bin().is_absolute() {
            self.rt.bin().to_path_buf()
        } else {
            in_host_path(self.rt.bin())
        };
        // found here: with `env_clear`, std looks the program up in the child's PATH
        let mut cmd = Command::new(in_host_path(Path::new("setpriv")));
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(bin)
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("USER", USER)
            .env("HOME", self.xdg.path());
        if xdg {
            cmd.env("XDG_RUNTIME_DIR", self.xdg.path());
        }
        cmd
    }

    /// Run as the user with `XDG_RUNTIME_DIR` set and no `--root` (the default root).
    pub(super) fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run_with_timeout(&mut self.command(args, true), COMMAND_TIMEOUT)
    }

    /// `spec --rootless` written by the user into a fresh directory, parsed (berth-runtime's
    /// is its locked-down default).
    fn spec(&self) -> Value {
        self.spec_with(&[])
    }

    /// `spec --rootless <extra…>` written by the user into a fresh directory, parsed.
    fn spec_with(&self, extra: &[&str]) -> Value {
        let dir = tempfile::tempdir().expect("tempdir for spec");
        std::os::unix::fs::chown(dir.path(), Some(self.uid), Some(self.gid)).expect("chown");
        let mut args = vec!["spec", "--rootless"];
        args.extend_from_slice(extra);
        let out = run_with_timeout(
            self.command(&args, true).current_dir(dir.path()),
            COMMAND_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "{} spec --rootless: {out:?}",
            self.rt.name()
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
        serde_json::from_str(&text).expect("spec writes JSON")
    }

    /// A busybox + probe bundle whose config is this runtime's `spec --rootless`, running
    /// the probe with `steps` (no terminal, hostname `berth-rootless`, writable rootfs),
    /// changed by `edit`, then handed to the user.
    pub(super) fn bundle(&self, steps: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let mut b = Bundle::new();
        let mut config = self.spec();
        let mut args = vec!["/probe"];
        args.extend_from_slice(steps);
        config["process"]["args"] = json!(args);
        config["process"]["terminal"] = json!(false);
        config["hostname"] = json!("berth-rootless");
        config["root"]["readonly"] = json!(false);
        edit(&mut config);
        *b.config_mut() = config;
        b.write_config();
        chown_tree(b.path(), self.uid, self.gid);
        b
    }

    /// A guard that kills and deletes the container `id` as the user on drop.
    pub(super) fn guard<'a>(&'a self, id: &str) -> RootlessGuard<'a, 'r> {
        RootlessGuard {
            rl: self,
            id: id.to_owned(),
        }
    }
}

/// Kills (`kill <id> KILL`) and deletes (`delete --force`) a rootless container on drop,
/// panics included.
pub(super) struct RootlessGuard<'a, 'r> {
    rl: &'a Rootless<'r>,
    id: String,
}

impl Drop for RootlessGuard<'_, '_> {
    fn drop(&mut self) {
        for args in [
            vec!["kill", self.id.as_str(), "KILL"],
            vec!["delete", "--force", self.id.as_str()],
        ] {
            let mut cmd = self.rl.command(&args, true);
            let mut child = berth_test_support::ChildGuard::spawn(
                cmd.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null()),
            );
            if let Some(c) = child.child() {
                wait_until(COMMAND_TIMEOUT, || c.try_wait().ok().flatten().is_some());
            }
        }
    }
}

pub(super) fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `Uid:` or `Gid:` line of `/proc/<pid>/status`, normalised ("1001 1001 1001 1001"),
/// once the process runs the probe (the ids are set just before exec).
fn host_ids(pid: i64) -> (String, String) {
    let path = format!("/proc/{pid}/status");
    let mut ids = (String::new(), String::new());
    let ran = wait_until(Duration::from_secs(30), || {
        let Ok(s) = std::fs::read_to_string(&path) else {
            return false;
        };
        let field = |k: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        ids = (field("Uid:"), field("Gid:"));
        s.lines()
            .any(|l| l.starts_with("Name:") && l.contains("probe"))
    });
    assert!(
        ran,
        "the container's process did not exec the probe: {path}"
    );
    ids
}

/// Remove what `spec --rootless` may legitimately differ in between runc versions and
/// berth-runtime: the spec version string, and the ambient capabilities (runc 1.1 lists
/// the default caps as ambient as well, which no runtime can raise without them being
/// inheritable; runc 1.2 dropped them and berth-runtime follows runc 1.2).
fn normalise_spec(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("ociVersion");
    }
    if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
        caps.remove("ambient");
    }
    v
}

#[test]
fn spec_rootless_matches_runc_field_by_field() {
    berth_test_support::requires_root!();
    let (Some(runc), Some(berth)) = (Runtime::find("runc"), Runtime::find("berth-runtime")) else {
        skip_or_fail("runc or berth-runtime is not available");
        return;
    };
    let (Some(r), Some(b)) = (Rootless::new(&runc), Rootless::new(&berth)) else {
        return;
    };
    let runc_spec = r.spec();
    // berth-runtime's default is locked down (runtime::spec); `--runc-compat` is runc's
    let berth_spec = b.spec_with(&["--runc-compat"]);
    // the caller's own ids mapped to root, size 1
    let map = json!([{"containerID": 0, "hostID": b.uid, "size": 1}]);
    assert_eq!(berth_spec["linux"]["uidMappings"], map, "{berth_spec:#}");
    let gmap = json!([{"containerID": 0, "hostID": b.gid, "size": 1}]);
    assert_eq!(berth_spec["linux"]["gidMappings"], gmap, "{berth_spec:#}");
    assert!(
        berth_spec["linux"].get("resources").is_none(),
        "no cgroup resources"
    );
    let sys = berth_spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(
        sys,
        &json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    );
    let runc_n = normalise_spec(runc_spec);
    let berth_n = normalise_spec(berth_spec);
    // compare section by section for readable failures, then as a whole
    for key in ["process", "root", "hostname", "mounts", "linux"] {
        assert_eq!(
            berth_n[key], runc_n[key],
            "`{key}` differs from runc's\n--- berth-runtime\n{:#}\n--- runc\n{:#}",
            berth_n[key], runc_n[key]
        );
    }
    assert_eq!(berth_n, runc_n);
}

runtime_test! {
    /// The probe under `spec --rootless` run by an ordinary user: root inside, the user
    /// outside; its own hostname and pid namespace.
    fn rootless_container_is_root_inside_and_the_user_outside(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["identity", "pids", "self"], |_| {});
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("run", &b));
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(v["identity"]["uid"], 0, "{v}");
        assert_eq!(v["identity"]["gid"], 0, "{v}");
        if rt.name() == "crun" {
            // peer: crun's `spec --rootless` has no mappings; crun fills them in from
            // /etc/subuid and /etc/subgid through newuidmap/newgidmap (setgroups allowed)
            let sub = json!([[0, rl.uid, 1], [1, SUBID_START, SUBID_COUNT]]);
            assert_eq!(v["identity"]["uid_map"], sub, "{v}");
        } else {
            assert_eq!(v["identity"]["uid_map"], json!([[0, rl.uid, 1]]), "{v}");
            assert_eq!(v["identity"]["gid_map"], json!([[0, rl.gid, 1]]), "{v}");
            // a single self-mapping of the gid needs setgroups denied
            assert_eq!(v["identity"]["setgroups"], "deny", "{v}");
        }
        assert_eq!(v["identity"]["hostname"], "berth-rootless", "{v}");
        assert_eq!(v["self"]["pid"], 1, "{v}");
        assert_eq!(v["pids"], json!([1]), "{v}");

        // and from the host, a running one is the user's uid
        let b = rl.bundle(&["wait-signal"], |_| {});
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("create", &b));
        assert!(out.status.success(), "{}", text(&out));
        let out = rl.run(&["start", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        let out = rl.run(&["state", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        let pid = state["pid"].as_i64().unwrap();
        let (uids, gids) = host_ids(pid);
        assert_eq!(uids, vec![rl.uid.to_string(); 4].join(" "));
        assert_eq!(gids, vec![rl.gid.to_string(); 4].join(" "));
    }
}

runtime_test! {
    /// With more than the caller's own id mapped (container 0 → the user, 1…65536 → its
    /// subordinate ids 200000…), the runtime goes through newuidmap/newgidmap: a file
    /// made by container uid 1 is owned by host uid 200000.
    fn rootless_subordinate_ids_map_through_newuidmap(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let (uid, gid) = (rl.uid, rl.gid);
        let b = rl.bundle(&["identity"], |c| {
            // the probe's own create step removes its file again: busybox makes one to keep
            c["process"]["args"] =
                json!(["/bin/sh", "-c", "/probe identity && touch /tmp/made-by-uid-1"]);
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": uid, "size": 1},
                {"containerID": 1, "hostID": SUBID_START, "size": SUBID_COUNT}]);
            c["linux"]["gidMappings"] = json!([
                {"containerID": 0, "hostID": gid, "size": 1},
                {"containerID": 1, "hostID": SUBID_START, "size": SUBID_COUNT}]);
            c["process"]["user"] = json!({"uid": 1, "gid": 1});
        });
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("run", &b));
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(v["identity"]["uid"], 1, "{v}");
        assert_eq!(
            v["identity"]["uid_map"],
            json!([[0, uid, 1], [1, SUBID_START, SUBID_COUNT]]),
            "{v}"
        );
        assert_eq!(
            v["identity"]["gid_map"],
            json!([[0, gid, 1], [1, SUBID_START, SUBID_COUNT]]),
            "{v}"
        );
        let meta = std::fs::metadata(b.rootfs().join("tmp/made-by-uid-1")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (SUBID_START, SUBID_START));
    }
}

runtime_test! {
    /// A range the user was not granted is refused (newuidmap checks /etc/subuid), with an
    /// error naming it, and nothing is left behind.
    fn rootless_ungranted_range_is_refused(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let uid = rl.uid;
        let b = rl.bundle(&["identity"], |c| {
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": uid, "size": 1},
                {"containerID": 1, "hostID": 300_000, "size": 1000}]);
        });
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("run", &b));
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "the probe did not run: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        if rt.name() == "berth-runtime" {
            assert!(err.contains("newuidmap") && err.contains("/etc/subuid"), "{err}");
        }
        // the state is gone
        let state = rl.run(&["state", b.id()]);
        assert!(!state.status.success(), "{}", text(&state));
    }
}

runtime_test! {
    /// `state`, `list`, `exec`, `kill` and `delete` work under the default root,
    /// `$XDG_RUNTIME_DIR/<runtime>`, which `create` made (0700 and sticky).
    fn rootless_state_list_delete_use_the_default_root(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["wait-signal"], |_| {});
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("create", &b));
        assert!(out.status.success(), "{}", text(&out));
        let root = rl.default_root();
        assert!(root.is_dir(), "{} was not made", root.display());
        let meta = std::fs::metadata(&root).unwrap();
        assert_eq!(meta.uid(), rl.uid, "{} is the user's", root.display());
        // peers: runc sets 01700; crun leaves its directory 0700 without the sticky bit
        let want = if rt.name() == "crun" { 0o700 } else { 0o1700 };
        assert_eq!(meta.mode() & 0o7777, want, "{}", root.display());

        let out = rl.run(&["state", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(state["status"], "created", "{state}");
        let out = rl.run(&["list", "--format", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<&str> = list.as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, [b.id()], "{list}");

        let out = rl.run(&["start", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        // exec joins the running container (its user namespace first) as the same user
        let out = rl.run(&["exec", b.id(), "/probe", "identity"]);
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(v["identity"]["uid"], 0, "{v}");
        assert_eq!(v["identity"]["hostname"], "berth-rootless", "{v}");
        let out = rl.run(&["kill", b.id(), "KILL"]);
        assert!(out.status.success(), "{}", text(&out));
        let stopped = wait_until(Duration::from_secs(30), || {
            let out = rl.run(&["state", b.id()]);
            serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["status"] == "stopped")
        });
        assert!(stopped, "the container did not stop");
        let out = rl.run(&["delete", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(!root.join(b.id()).exists(), "the state directory is removed");
        let out = rl.run(&["list", "--format", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert!(list.as_array().is_none_or(|a| a.is_empty()), "{list}");
    }
}

runtime_test! {
    /// Without a writable state directory (no `--root`, no `XDG_RUNTIME_DIR`; or a
    /// `--root` the user cannot write), `create` fails and runs nothing.
    fn rootless_without_a_writable_root_fails_clearly(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["identity"], |_| {});
        let _g = rl.guard(b.id());
        let args = bundle_args("create", &b);
        let out = run_with_timeout(&mut rl.command(&args, false), COMMAND_TIMEOUT);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        // peers: runc and crun fall back to their root-owned /run directory and fail on
        // it (runc: EACCES; crun: "cannot create state directory" when /run/crun exists,
        // "create directory `/run/crun`: …" on a machine where no crun has run as root
        // yet); berth-runtime says what is missing
        match rt.name() {
            "berth-runtime" => {
                assert!(err.contains("XDG_RUNTIME_DIR") && err.contains("--root"), "{err}");
            }
            "crun" => assert!(
                err.contains("cannot create state directory")
                    || err.contains("create directory `/run/crun`"),
                "{err}"
            ),
            _ => assert!(err.to_lowercase().contains("permission denied"), "{err}"),
        }

        let not_writable = tempfile::tempdir().unwrap(); // root's, 0700
        let mut with_root = vec![OsStr::new("--root"), not_writable.path().as_os_str()];
        with_root.extend(args);
        let out = run_with_timeout(&mut rl.command(&with_root, true), COMMAND_TIMEOUT);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        match rt.name() {
            "berth-runtime" => {
                assert!(err.contains("Permission denied") && err.contains("not writable by uid"), "{err}");
            }
            "crun" => assert!(err.contains("cannot create state directory"), "{err}"),
            _ => assert!(err.to_lowercase().contains("permission denied"), "{err}"),
        }
        assert_eq!(std::fs::read_dir(not_writable.path()).unwrap().count(), 0);
    }
}

runtime_test! {
    /// An unprivileged runtime cannot make a container without a user namespace: refused
    /// before anything runs (runc: "rootless container requires user namespaces").
    fn rootless_config_without_a_user_namespace_is_refused(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["identity"], |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "user");
            let linux = c["linux"].as_object_mut().unwrap();
            linux.remove("uidMappings");
            linux.remove("gidMappings");
        });
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("run", &b));
        if rt.name() == "crun" {
            // peer: crun adds a user namespace itself, mapped from /etc/subuid, and runs
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
            let sub = json!([[0, rl.uid, 1], [1, SUBID_START, SUBID_COUNT]]);
            assert_eq!(v["identity"]["uid_map"], sub, "{v}");
            return;
        }
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "the probe did not run: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("rootless container requires user namespaces"), "{err}");
    }
}

runtime_test! {
    /// A rootless container that asks for limits it cannot get (no cgroup the user may
    /// write, no cgroupsPath) is refused rather than run unlimited.
    fn rootless_limits_without_a_cgroup_are_refused(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["identity"], |c| {
            c["linux"]["resources"] = json!({"pids": {"limit": 64}});
        });
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("run", &b));
        if rt.name() == "crun" {
            // peer: crun (1.8) runs the container without the limit, and exits 0
            assert!(out.status.success(), "{}", text(&out));
            return;
        }
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "the probe did not run: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        if rt.name() == "berth-runtime" {
            assert!(err.contains("asks for cgroup limits") && err.contains("hint"), "{err}");
        } else {
            // runc 1.1 on cgroup v1: "cannot set pids limit: container could not join or create cgroup"
            assert!(err.contains("pids"), "{err}");
        }
    }
}

runtime_test! {
    /// Run by an ordinary user, the runtime still never exposes its binary writable to the
    /// container (the CVE-2019-5736 class): the overlayfs method needs privileges, so the
    /// created init (a fork of the runtime, before `start`) runs from a sealed memfd copy.
    fn rootless_runtime_binary_is_a_sealed_copy(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["identity"], |_| {});
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("create", &b));
        assert!(out.status.success(), "{}", text(&out));
        let out = rl.run(&["state", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        let exe = format!("/proc/{}/exe", state["pid"].as_i64().unwrap());
        let target = std::fs::read_link(&exe).unwrap();
        assert!(
            target.to_string_lossy().starts_with("/memfd:"),
            "{exe} -> {} is not a memfd copy",
            target.display()
        );
        // even root cannot write it: the open is refused or the write is (sealed)
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(&exe)
            .and_then(|mut f| f.write_all(b"x"));
        assert!(written.is_err(), "{exe} was writable");
    }
}

runtime_test! {
    /// A rootless container without a cgroup (the user may not write one) still has its
    /// processes listed by `ps` and reached by `kill --all`: berth-runtime finds them
    /// through the container's pid namespace.
    fn rootless_ps_and_kill_all_without_a_cgroup(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["wait-signal"], |_| {});
        let _g = rl.guard(b.id());
        let out = rl.run(&bundle_args("create", &b));
        assert!(out.status.success(), "{}", text(&out));
        let out = rl.run(&["start", b.id()]);
        assert!(out.status.success(), "{}", text(&out));
        let out = rl.run(&["state", b.id()]);
        let pid = serde_json::from_slice::<Value>(&out.stdout).unwrap()["pid"].as_i64().unwrap();
        let ps = rl.run(&["ps", "--format", "json", b.id()]);
        if rt.name() != "berth-runtime" {
            // peers: without a cgroup runc 1.1 fails `ps` ("unable to get all container
            // pids") and `kill --all`; crun 1.8 fails `ps` ("the container is not using
            // cgroups") and its `kill --all` returns 0 without signalling (seen by hand)
            assert!(!ps.status.success(), "{}", text(&ps));
            return;
        }
        assert!(ps.status.success(), "{}", text(&ps));
        let pids: Value = serde_json::from_slice(&ps.stdout).unwrap();
        assert_eq!(pids, json!([pid]), "{}", text(&ps));
        let out = rl.run(&["kill", "--all", b.id(), "KILL"]);
        assert!(out.status.success(), "{}", text(&out));
        let stopped = wait_until(Duration::from_secs(30), || {
            let out = rl.run(&["state", b.id()]);
            serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["status"] == "stopped")
        });
        assert!(stopped, "kill --all did not stop the container");
    }
}

runtime_test! {
    /// Mapping subordinate ids without newuidmap on PATH fails before the container runs;
    /// berth-runtime says which tool is missing and where it comes from.
    fn rootless_without_newuidmap_fails_clearly(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let (uid, gid) = (rl.uid, rl.gid);
        let b = rl.bundle(&["identity"], |c| {
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": uid, "size": 1},
                {"containerID": 1, "hostID": SUBID_START, "size": SUBID_COUNT}]);
            c["linux"]["gidMappings"] = json!([
                {"containerID": 0, "hostID": gid, "size": 1},
                {"containerID": 1, "hostID": SUBID_START, "size": SUBID_COUNT}]);
        });
        let _g = rl.guard(b.id());
        let empty = tempfile::tempdir().unwrap();
        let args = bundle_args("run", &b);
        let out = run_with_timeout(
            &mut rl.command_with_path(&args, true, empty.path().as_os_str()),
            COMMAND_TIMEOUT,
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "the probe did not run: {}", text(&out));
        if rt.name() == "berth-runtime" {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("newuidmap not found") && err.contains("uidmap package"), "{err}");
        }
        let state = rl.run(&["state", b.id()]);
        assert!(!state.status.success(), "nothing is left: {}", text(&state));
    }
}

runtime_test! {
    /// Root inside a user namespace (not the initial one) is rootless too under
    /// `--rootless auto`: the cgroup it may not create is skipped, the container runs; with
    /// `--rootless false` the same cgroup failure is an error.
    fn rootless_auto_detects_root_in_a_user_namespace(rt) {
        let Some(rl) = Rootless::new(rt) else { return };
        let b = rl.bundle(&["identity"], |c| {
            // already root in a user namespace: the container needs no new one
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "user");
            let linux = c["linux"].as_object_mut().unwrap();
            linux.remove("uidMappings");
            linux.remove("gidMappings");
        });
        let _g = rl.guard(b.id());
        let args = bundle_args("run", &b);
        let out = run_with_timeout(&mut rl.command_in_userns(&args), COMMAND_TIMEOUT);
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(v["identity"]["uid"], 0, "{v}");
        assert_eq!(v["identity"]["uid_map"], json!([[0, rl.uid, 1]]), "{v}");

        let mut forced = vec![OsStr::new("--rootless"), OsStr::new("false")];
        forced.extend(args);
        let out = run_with_timeout(&mut rl.command_in_userns(&forced), COMMAND_TIMEOUT);
        if rt.name() == "crun" {
            // peer: crun 1.8 runs it all the same with --rootless false
            assert!(out.status.success(), "{}", text(&out));
            return;
        }
        assert!(!out.status.success(), "{}", text(&out));
        assert!(out.stdout.is_empty(), "the probe did not run: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ermission denied"), "a cgroup permission error: {err}");
    }
}
