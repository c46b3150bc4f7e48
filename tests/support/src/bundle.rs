//! OCI runtime bundles for tests: a busybox-static root filesystem with the probe at
//! `/probe`, and a `config.json` modelled on `runc spec`'s default, changed through builder
//! methods.
//!
//! The config is kept as JSON (not typed) on purpose: tests of bad input need configs no
//! typed builder would produce ([`Bundle::config_mut`]). It is written to disk by
//! [`Bundle::write_config`], which the [`Runtime`](crate::Runtime) helpers call before
//! `create` and `run`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::probe::{is_static_elf, probe_bin};
use crate::{run_with_timeout, write_file};

/// Where the static busybox comes from (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// The capabilities of `runc spec`'s default process.
pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// `runc spec`'s masked paths and read-only paths: the configuration every runtime under test
/// gets, runc's own (`berth-runtime spec --runc-compat` writes the same lists).
pub use berth_runtime_spec::defaults::{
    READONLY_PATHS as DEFAULT_READONLY_PATHS, RUNC_MASKED_PATHS as DEFAULT_MASKED_PATHS,
};

/// The hostname a bundle's config sets unless a test changes it.
pub const DEFAULT_HOSTNAME: &str = "berth-probe";

/// Whether a static busybox is installed where bundles take it from.
pub fn busybox_static_available() -> bool {
    is_static_elf(Path::new(BUSYBOX)).unwrap_or(false)
}

fn busybox_applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = run_with_timeout(Command::new(BUSYBOX).arg("--list"), Duration::from_secs(30));
        assert!(out.status.success(), "{BUSYBOX} --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
            .map(str::to_owned)
            .collect()
    })
}

/// A unique suffix for container ids and cgroup paths: pid, a counter, and the clock, so
/// that neither parallel tests nor a crashed earlier run with the same pid collide.
fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{:x}", std::process::id(), t & 0xffff)
}

/// An OCI bundle in a temporary directory (removed on drop).
#[derive(Debug)]
pub struct Bundle {
    dir: tempfile::TempDir,
    id: String,
    config: Value,
}

impl Default for Bundle {
    fn default() -> Self {
        Bundle::new()
    }
}

impl Bundle {
    /// A bundle whose rootfs holds busybox (`/bin/busybox` and every applet as a symlink
    /// in `/bin`), the probe at `/probe`, `/etc/passwd` and `/etc/group` for root and
    /// nobody, and `/proc /sys /dev /tmp /mnt /root /run /var`; and whose config is
    /// [`Bundle::default_config`] with a unique container id and cgroups path.
    ///
    /// Panics when busybox is not static (hint: `apt-get install busybox-static`).
    pub fn new() -> Bundle {
        assert!(
            busybox_static_available(),
            "{BUSYBOX} is missing or not static\nhint: apt-get install -y busybox-static"
        );
        let probe = probe_bin();
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .expect("tempdir");
        // a user-namespaced root (uid 100000 on the host) must be able to reach the rootfs
        set_mode(dir.path(), 0o755);
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin", "proc", "sys", "dev", "etc", "mnt", "root", "run", "var",
        ] {
            std::fs::create_dir_all(rootfs.join(d)).expect("create rootfs directory");
        }
        set_mode(&rootfs, 0o755);
        std::fs::create_dir_all(rootfs.join("tmp")).expect("create /tmp");
        set_mode(&rootfs.join("tmp"), 0o1777);
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in busybox_applets() {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
        std::fs::copy(&probe, rootfs.join("probe")).expect("copy the probe");
        set_mode(&rootfs.join("probe"), 0o755);
        write_file(
            rootfs.join("etc/passwd"),
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        );
        write_file(rootfs.join("etc/group"), b"root:x:0:\nnobody:x:65534:\n");
        for f in ["etc/passwd", "etc/group"] {
            set_mode(&rootfs.join(f), 0o644);
        }
        let id = format!("berth-probe-{}", unique());
        let config = Bundle::default_config(&id);
        Bundle { dir, id, config }
    }

    /// `runc spec`'s default config (runc 1.1), changed for tests:
    ///
    /// - `process.args` is `["/probe", "identity"]`, `terminal` is false (no console
    ///   socket needed);
    /// - capabilities: bounding, effective and permitted are [`DEFAULT_CAPS`], inheritable
    ///   and ambient are empty (runc 1.1's spec also lists them as ambient, which the kernel
    ///   cannot raise without them being inheritable, so no runtime can honour it);
    /// - `root.readonly` is false (tests write fixtures; [`Bundle::readonly_rootfs`]);
    /// - `hostname` is [`DEFAULT_HOSTNAME`]; `linux.cgroupsPath` is `/<container id>`, unique
    ///   per bundle, so a test can find (and check the removal of) its cgroups.
    pub fn default_config(id: &str) -> Value {
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/probe", "identity"],
                "env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"
                ],
                "cwd": "/",
                "capabilities": {
                    "bounding": DEFAULT_CAPS,
                    "effective": DEFAULT_CAPS,
                    "permitted": DEFAULT_CAPS,
                    "inheritable": [],
                    "ambient": []
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": DEFAULT_HOSTNAME,
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "cgroupsPath": format!("/{id}"),
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "mount"}
                ],
                "maskedPaths": DEFAULT_MASKED_PATHS,
                "readonlyPaths": DEFAULT_READONLY_PATHS
            }
        })
    }

    /// The bundle directory (holds `config.json` and `rootfs/`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The container id the [`Runtime`](crate::Runtime) helpers use for this bundle.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `linux.cgroupsPath`, when the config has one.
    pub fn cgroups_path(&self) -> Option<String> {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .map(str::to_owned)
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config as JSON, for changes no builder method makes (bad input included).
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Write `config.json` (atomically) from the current config.
    pub fn write_config(&self) {
        let text = serde_json::to_vec_pretty(&self.config).expect("serialise config");
        write_file(self.dir.path().join("config.json"), &text);
    }

    fn linux(&mut self) -> &mut serde_json::Map<String, Value> {
        object(&mut self.config, "linux")
    }

    fn process(&mut self) -> &mut serde_json::Map<String, Value> {
        object(&mut self.config, "process")
    }

    /// `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.process().insert("args".into(), json!(args));
        self
    }

    /// `process.args = ["/probe", steps…]` (see tests/probe for the steps).
    pub fn probe(&mut self, steps: &[&str]) -> &mut Self {
        let mut args = vec!["/probe"];
        args.extend_from_slice(steps);
        self.args(&args)
    }

    /// Append `KEY=value` to `process.env`.
    pub fn env(&mut self, kv: &str) -> &mut Self {
        array(self.process(), "env").push(json!(kv));
        self
    }

    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.process().insert("terminal".into(), json!(on));
        self
    }

    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.process().insert("cwd".into(), json!(cwd));
        self
    }

    /// `process.user`: uid, gid and additional gids.
    pub fn user(&mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> &mut Self {
        let mut u = json!({"uid": uid, "gid": gid});
        if !additional_gids.is_empty() {
            u["additionalGids"] = json!(additional_gids);
        }
        self.process().insert("user".into(), u);
        self
    }

    /// Add a namespace of `kind` (`pid`, `network`, `user`, …) unless the config has one.
    pub fn add_namespace(&mut self, kind: &str) -> &mut Self {
        let ns = array(self.linux(), "namespaces");
        if !ns.iter().any(|n| n["type"] == kind) {
            ns.push(json!({"type": kind}));
        }
        self
    }

    /// Remove the namespace of `kind` (the container shares the runtime's).
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        array(self.linux(), "namespaces").retain(|n| n["type"] != kind);
        self
    }

    /// Join the existing namespace of `kind` at `path` (`/proc/<pid>/ns/net`).
    pub fn namespace_path(&mut self, kind: &str, path: &Path) -> &mut Self {
        self.remove_namespace(kind);
        array(self.linux(), "namespaces")
            .push(json!({"type": kind, "path": path.to_string_lossy()}));
        self
    }

    /// Add `{containerID, hostID, size}` to `linux.uidMappings`.
    pub fn uid_mapping(&mut self, container_id: u32, host_id: u32, size: u32) -> &mut Self {
        array(self.linux(), "uidMappings")
            .push(json!({"containerID": container_id, "hostID": host_id, "size": size}));
        self
    }

    /// Add `{containerID, hostID, size}` to `linux.gidMappings`.
    pub fn gid_mapping(&mut self, container_id: u32, host_id: u32, size: u32) -> &mut Self {
        array(self.linux(), "gidMappings")
            .push(json!({"containerID": container_id, "hostID": host_id, "size": size}));
        self
    }

    /// A user namespace mapping container ids `0..size` to host ids `host_id..`.
    pub fn user_namespace(&mut self, host_id: u32, size: u32) -> &mut Self {
        self.add_namespace("user")
            .uid_mapping(0, host_id, size)
            .gid_mapping(0, host_id, size)
    }

    /// Set bounding, effective and permitted to `caps`; inheritable and ambient empty.
    pub fn capabilities(&mut self, caps: &[&str]) -> &mut Self {
        for set in ["bounding", "effective", "permitted"] {
            self.capability_set(set, caps);
        }
        self.capability_set("inheritable", &[])
            .capability_set("ambient", &[])
    }

    /// Set one capability set (`bounding`, `effective`, `permitted`, `inheritable`,
    /// `ambient`).
    pub fn capability_set(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        object(&mut self.config["process"], "capabilities").insert(set.into(), json!(caps));
        self
    }

    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.process().insert("noNewPrivileges".into(), json!(on));
        self
    }

    pub fn readonly_rootfs(&mut self, on: bool) -> &mut Self {
        object(&mut self.config, "root").insert("readonly".into(), json!(on));
        self
    }

    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.config["hostname"] = json!(name);
        self
    }

    /// Append a mount.
    pub fn mount(
        &mut self,
        destination: &str,
        kind: &str,
        source: &str,
        options: &[&str],
    ) -> &mut Self {
        array(object_root(&mut self.config), "mounts").push(json!({
            "destination": destination, "type": kind, "source": source, "options": options,
        }));
        self
    }

    /// Replace `linux.maskedPaths`.
    pub fn masked_paths(&mut self, paths: &[&str]) -> &mut Self {
        self.linux().insert("maskedPaths".into(), json!(paths));
        self
    }

    /// Replace `linux.readonlyPaths`.
    pub fn readonly_paths(&mut self, paths: &[&str]) -> &mut Self {
        self.linux().insert("readonlyPaths".into(), json!(paths));
        self
    }

    /// Merge `resources` (an object like `{"memory": {"limit": 1}}`) into
    /// `linux.resources`, key by key.
    pub fn resources(&mut self, resources: Value) -> &mut Self {
        let r = object(&mut self.config["linux"], "resources");
        if let Value::Object(m) = resources {
            r.extend(m);
        }
        self
    }

    /// `linux.seccomp`.
    pub fn seccomp(&mut self, profile: Value) -> &mut Self {
        self.linux().insert("seccomp".into(), profile);
        self
    }

    /// Append `hook` (`{"path": …, "args": …, "timeout": …}`) to `hooks.<kind>`.
    pub fn hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        let hooks = object(&mut self.config, "hooks");
        let list = hooks.entry(kind).or_insert_with(|| json!([]));
        if let Value::Array(a) = list {
            a.push(hook);
        }
        self
    }

    /// `linux.cgroupsPath` (the default is `/<container id>`).
    pub fn set_cgroups_path(&mut self, path: &str) -> &mut Self {
        self.linux().insert("cgroupsPath".into(), json!(path));
        self
    }

    /// Make the block or character device `host_path` available inside at `container_path`
    /// (`linux.devices`) and allow it in the device cgroup with `access` (`"r"`, `"rw"`…).
    pub fn device(&mut self, container_path: &str, host_path: &Path, access: &str) -> &mut Self {
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(host_path)
            .unwrap_or_else(|e| panic!("failed to stat {}: {e}", host_path.display()));
        let kind = if meta.file_type().is_block_device() {
            "b"
        } else if meta.file_type().is_char_device() {
            "c"
        } else {
            panic!("{} is not a device", host_path.display());
        };
        let (major, minor) = (libc_major(meta.rdev()), libc_minor(meta.rdev()));
        array(self.linux(), "devices").push(json!({
            "path": container_path, "type": kind, "major": major, "minor": minor,
            "fileMode": 0o660, "uid": 0, "gid": 0,
        }));
        let r = object(&mut self.config["linux"], "resources");
        let list = r.entry("devices").or_insert_with(|| json!([]));
        if let Value::Array(a) = list {
            a.push(json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}));
        }
        self
    }
}

/// Major number of a `dev_t` (Linux encoding, as glibc's `major()`).
pub fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

/// Minor number of a `dev_t` (Linux encoding, as glibc's `minor()`).
pub fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("failed to chmod {}: {e}", path.display()));
}

fn object_root(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("just made an object")
}

/// `v[key]` as an object, created (or replaced, if it was not one) when needed.
fn object<'a>(v: &'a mut Value, key: &str) -> &'a mut serde_json::Map<String, Value> {
    let slot = object_root(v).entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

/// `m[key]` as an array, created (or replaced, if it was not one) when needed.
fn array<'a>(m: &'a mut serde_json::Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = m.entry(key).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("just made an array")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_t_splits_like_glibc() {
        // makedev(7, 3) and makedev(4100, 70000) as glibc encodes them
        assert_eq!((libc_major(0x703), libc_minor(0x703)), (7, 3));
        let makedev = |ma: u64, mi: u64| {
            ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
        };
        let dev = makedev(4100, 70000);
        assert_eq!((libc_major(dev), libc_minor(dev)), (4100, 70000));
    }

    #[test]
    fn builders_edit_the_config_in_place() {
        let mut c = json!({"linux": {"namespaces": [{"type": "pid"}]}, "process": {}});
        array(object(&mut c, "linux"), "namespaces").retain(|n| n["type"] != "pid");
        array(object(&mut c, "linux"), "uidMappings").push(json!(1));
        object(&mut c["process"], "capabilities").insert("bounding".into(), json!([]));
        assert_eq!(
            c,
            json!({"linux": {"namespaces": [], "uidMappings": [1]}, "process": {"capabilities": {"bounding": []}}})
        );
    }
}
