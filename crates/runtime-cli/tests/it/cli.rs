//! The command line as supervisors use it: kill signal names, list/state formats,
//! JSON logs, spec, features, version, errors.

use crate::harness::*;

#[test]
fn kill_accepts_names_numbers_and_all() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 1; done",
    ]);
    let rt = Runtime::new();
    rt.track("sig");
    rt.ok(&[
        "run",
        "-d",
        "--keep",
        "--bundle",
        b.path().to_str().unwrap(),
        "sig",
    ]);
    assert!(!rt.run(&["kill", "sig", "NOPE"]).status.success());
    rt.ok(&["kill", "sig", "SIGUSR1"]);
    rt.wait_status("sig", "stopped");
    rt.ok(&["delete", "sig"]);
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "sig"]);
    rt.ok(&["exec", "-d", "sig", "sleep", "300"]);
    rt.ok(&["kill", "--all", "sig", "9"]);
    rt.wait_status("sig", "stopped");
    rt.ok(&["delete", "sig"]);
}

#[test]
fn errors_go_to_stderr_and_json_log() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let out = rt.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nosuch",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("nosuch"));
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    // text format without --log: one logrus line on stderr
    let out = rt.run(&["state", "nosuch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("time=\"") && stderr.contains("level=error msg="),
        "{stderr}"
    );
    assert!(!rt.run(&["create", "bad/id"]).status.success());
}

#[test]
fn spec_features_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["spec", "--rootless", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["linux"]["uidMappings"][0]["hostID"], 0);
    let again = std::process::Command::new(BIN)
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "spec refuses to overwrite config.json"
    );

    let out = std::process::Command::new(BIN)
        .arg("features")
        .output()
        .unwrap();
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&"user".into())
    );
    assert!(
        f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".into())
    );

    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.starts_with("berth-runtime version ") && v.contains("\nspec: 1."),
        "{v}"
    );
}
