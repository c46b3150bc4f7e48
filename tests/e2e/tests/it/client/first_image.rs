//! `scripts/make-layout`, the README's first image on a machine without internet: its
//! layout pushed with `berth copy`, pulled back by skopeo, unpacked by umoci, and run.

use std::process::Command;
use std::time::Duration;

use berth_test_support::{
    Registry, RegistryOptions, requires_root, requires_tool, run_with_timeout, workspace_root,
};

use super::{Env, tagged_digest};
use crate::common::Skopeo;

#[test]
fn make_layout_builds_an_image_berth_pushes_and_skopeo_pulls_and_it_runs() {
    requires_tool!("skopeo", "umoci", "busybox", "jq", "chroot");
    requires_root!();
    let registry = Registry::start(RegistryOptions::new());
    let env = Env::new();
    let layout = env.path("layout");
    let script = workspace_root().join("scripts/make-layout");
    let made = run_with_timeout(
        Command::new(&script).arg(&layout).arg("v1"),
        Duration::from_secs(120),
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let digest = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert_eq!(tagged_digest(&layout, "v1"), digest);

    // The same inputs make the same image.
    let again = run_with_timeout(
        Command::new(&script).arg(env.path("again")),
        Duration::from_secs(120),
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), digest);

    let reference = format!("{}/demo/busybox:v1", registry.host());
    let pushed = env.berth(&[
        "copy",
        "-q",
        &format!("oci:{}:v1", layout.display()),
        &reference,
    ]);
    assert_eq!(pushed.trim(), digest);

    let out = env.path("out");
    Skopeo::new().run(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:v1", out.display()),
    ]);
    assert_eq!(tagged_digest(&out, "v1"), digest);

    let bundle = env.path("bundle");
    let unpack = run_with_timeout(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", out.display()))
            .arg(&bundle),
        Duration::from_secs(120),
    );
    assert!(
        unpack.status.success(),
        "{}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    let run = run_with_timeout(
        Command::new("chroot").arg(bundle.join("rootfs")).args([
            "/bin/sh",
            "-c",
            "echo hello from $(id -u) in $(pwd)",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello from 0 in /",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
