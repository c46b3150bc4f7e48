//! The root filesystem's mount: `linux.rootfsPropagation`, seen in the container's
//! /proc/self/mountinfo.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_test_support::{Bundle, COMMAND_TIMEOUT, run_with_timeout};
use serde_json::Value;

use super::{runtime_test, strings};

/// The bundle's rootfs bind-mounted onto itself and made shared on the host, so that the
/// container's copy of it can be a slave (`master:N`) as well as shared, private or
/// unbindable; lazily unmounted (with whatever propagated under it) on drop.
struct SharedRootfs(PathBuf);

impl SharedRootfs {
    fn new(rootfs: &Path) -> SharedRootfs {
        let p = rootfs.to_string_lossy().into_owned();
        let out = run_with_timeout(
            Command::new("mount").args(["--bind", &p, &p]),
            COMMAND_TIMEOUT,
        );
        assert!(out.status.success(), "mount --bind {p}: {out:?}");
        let guard = SharedRootfs(rootfs.to_owned());
        let out = run_with_timeout(
            Command::new("mount").args(["--make-shared", &p]),
            COMMAND_TIMEOUT,
        );
        assert!(out.status.success(), "mount --make-shared {p}: {out:?}");
        guard
    }
}

impl Drop for SharedRootfs {
    fn drop(&mut self) {
        let _ = run_with_timeout(
            Command::new("umount")
                .arg("--lazy")
                .arg("--recursive")
                .arg(&self.0),
            COMMAND_TIMEOUT,
        );
    }
}

/// The propagation of the container's `/` from its mountinfo's optional fields:
/// `shared`, `slave`, `shared+slave`, `unbindable` or `private`.
fn root_propagation(v: &Value) -> String {
    let mounts = v["mounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no mounts in {v}"));
    // the last mount on / is the visible one
    let root = mounts
        .iter()
        .rev()
        .find(|m| m["mount_point"] == "/")
        .unwrap_or_else(|| panic!("no / in {v}"));
    let opt = strings(&root["optional"]);
    let has = |p: &str| opt.iter().any(|o| o.starts_with(p));
    match (has("shared:"), has("master:"), has("unbindable")) {
        (_, _, true) => "unbindable",
        (true, true, _) => "shared+slave",
        (true, false, _) => "shared",
        (false, true, _) => "slave",
        (false, false, _) => "private",
    }
    .to_owned()
}

runtime_test! {
    /// Every `linux.rootfsPropagation` value, with the rootfs on a shared host mount, as the
    /// container's `/` shows it. berth-runtime makes `/` what the value says: shared (and,
    /// as it was made rslave before the rootfs was bound, still a slave of the host, so
    /// nothing propagates back), slave of the host, private, or unbindable (set last, once
    /// the read-only and masked paths are bound). The peers truly differ, so each one's
    /// behaviour is pinned:
    /// - runc 1.1 applies the value to `/` before binding the rootfs, then makes the
    ///   rootfs mount private when it is shared, and never applies it after pivot_root:
    ///   only `rslave` survives, and `runbindable` fails to bind the rootfs onto itself;
    /// - crun 1.8 makes `/` shared or unbindable as asked but a slave value leaves it
    ///   private, and `runbindable` fails to bind its cgroup v1 hierarchies.
    fn rootfs_propagation_applies_to_the_containers_root(rt) {
        let mut got = Vec::new();
        for prop in [
            "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable",
            "runbindable",
        ] {
            let mut b = Bundle::new();
            let _shared = SharedRootfs::new(&b.rootfs());
            b.config_mut()["linux"]["rootfsPropagation"] = prop.into();
            b.probe(&["mounts"]);
            let out = rt.run(&b);
            let seen = if out.success() {
                root_propagation(&out.json())
            } else {
                assert!(
                    out.stderr_str().contains("nvalid argument"),
                    "{} with {prop}: {out}",
                    rt.name()
                );
                "EINVAL".to_owned()
            };
            got.push(format!("{prop}={seen}"));
        }
        let want = match rt.name() {
            "runc" => [
                "shared=private", "rshared=private", "slave=private", "rslave=slave",
                "private=private", "rprivate=private", "unbindable=private",
                "runbindable=EINVAL",
            ],
            "crun" => [
                "shared=shared", "rshared=shared", "slave=private", "rslave=private",
                "private=private", "rprivate=private", "unbindable=unbindable",
                "runbindable=EINVAL",
            ],
            _ => [
                "shared=shared+slave", "rshared=shared+slave", "slave=slave", "rslave=slave",
                "private=private", "rprivate=private", "unbindable=unbindable",
                "runbindable=unbindable",
            ],
        };
        assert_eq!(got, want, "{}", rt.name());
    }
}
